/* config.c — the interval list and the --intervals / --retain parsers. */
#include "agg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

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

int agg_parse_intervals(const char *csv, struct agg_config *cfg, char *errbuf, size_t errlen)
{
    char **list = NULL;
    int n = cfg_split_list(csv, &list);
    int seen[AGG_MAX_INTERVALS] = { 0 };
    int rc = 0;
    if (n < 0) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const struct agg_interval *iv = agg_interval_find(list[i]);
        if (!iv) {
            snprintf(errbuf, errlen, "unknown interval '%s' (known: 1m,5m,15m,1h,4h,1d)", list[i]);
            rc = -1;
        } else {
            seen[iv->index] = 1;
        }
    }
    cfg_list_free(list);
    if (rc < 0)
        return -1;
    if (!seen[0]) {
        snprintf(errbuf, errlen, "--intervals must include 1m (coarser bars are built from it)");
        return -1;
    }
    /* Ascending order matters: each coarse bar is built from 1m bars written earlier in
     * the same transaction. */
    cfg->n_iv = 0;
    for (int i = 0; i < AGG_MAX_INTERVALS; i++)
        if (seen[i])
            cfg->iv[cfg->n_iv++] = &agg_intervals[i];
    return 0;
}

int agg_parse_duration(const char *s, int64_t *seconds)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0)
        return -1;
    int64_t mult;
    if (strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else if (strcmp(end, "w") == 0)
        mult = 7 * 86400;
    else
        return -1;
    if (v > INT64_MAX / mult / 1000) /* later used as milliseconds */
        return -1;
    *seconds = v * mult;
    return 0;
}

int agg_parse_grace(const char *s, int64_t *seconds)
{
    if (strcmp(s, "0") == 0) {
        *seconds = 0;
        return 0;
    }
    int64_t v;
    if (agg_parse_duration(s, &v) < 0 || v > AGG_GRACE_MAX_S)
        return -1;
    *seconds = v;
    return 0;
}

int agg_parse_retain(const char *csv, struct agg_config *cfg, char *errbuf, size_t errlen)
{
    char **list = NULL;
    int n = cfg_split_list(csv, &list);
    int rc = 0;
    if (n < 0) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    cfg->n_retain = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char *eq = strchr(list[i], '=');
        if (!eq) {
            snprintf(errbuf, errlen, "--retain entry '%s' is not TABLE=DURATION (e.g. 1s=2h)", list[i]);
            rc = -1;
            break;
        }
        *eq = '\0';
        struct agg_retain r = { 0 };
        if (strcmp(list[i], "1s") == 0) {
            r.key = "1s";
            r.table = "kline_1s";
        } else {
            const struct agg_interval *iv = agg_interval_find(list[i]);
            if (!iv) {
                snprintf(errbuf, errlen, "--retain: unknown table '%s' (1s,1m,5m,15m,1h,4h,1d)", list[i]);
                rc = -1;
                break;
            }
            r.key = iv->name;
            r.table = iv->table;
        }
        if (agg_parse_duration(eq + 1, &r.keep_s) < 0) {
            snprintf(errbuf, errlen, "--retain %s: bad duration '%s' (a positive number with s, m, h, d or w)",
                     list[i], eq + 1);
            rc = -1;
            break;
        }
        for (int j = 0; j < cfg->n_retain; j++)
            if (strcmp(cfg->retain[j].key, r.key) == 0) {
                snprintf(errbuf, errlen, "--retain: %s given twice", r.key);
                rc = -1;
            }
        if (rc == 0)
            cfg->retain[cfg->n_retain++] = r; /* key/table point at static strings */
    }
    cfg_list_free(list);
    return rc;
}
