/* main.c — kline-aggregator: options, set-up, --once or the --every loop, tear-down. */
#include "agg.h"

#include "log.h"
#include "metrics.h"
#include "pgx.h"
#include "sig.h"

int main(int argc, char **argv)
{
    struct agg_config cfg;
    char err[512];
    agg_opts_parse(argc, argv, &cfg);
    log_init(AGG_PROG, cfg.log_level);
    pgx_set_timeouts(cfg.pg_connect_timeout_ms, cfg.pg_timeout_ms);
    sig_setup();
    if (agg_stats_metrics_start(&cfg, err, sizeof err) < 0)
        fatal("%s", err);
    int rc = cfg.once ? agg_once(&cfg) : agg_loop(&cfg);
    if (cfg.metrics_port > 0)
        metrics_http_stop();
    return rc;
}
