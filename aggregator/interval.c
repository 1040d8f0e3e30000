/* interval.c — the bar lengths the aggregator can write (the only source of the table
 * names spliced into SQL). */
#include "agg.h"

#include <string.h>

const struct agg_interval agg_intervals[AGG_MAX_INTERVALS] = {
    { "1m", "kline_1m", 60, 0 },
    { "5m", "kline_5m", 300, 1 },
    { "15m", "kline_15m", 900, 2 },
    { "1h", "kline_1h", 3600, 3 },
    { "4h", "kline_4h", 14400, 4 },
    { "1d", "kline_1d", 86400, 5 },
};

const struct agg_interval *agg_interval_find(const char *name)
{
    for (int i = 0; i < AGG_MAX_INTERVALS; i++)
        if (strcmp(agg_intervals[i].name, name) == 0)
            return &agg_intervals[i];
    return NULL;
}
