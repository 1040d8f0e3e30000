/* main.c — kline-aggregator: options, set-up, --once or --every, tear-down. */
#include "agg.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "pgx.h"
#include "sig.h"

static const char agg_synopsis[] =
    "usage: kline-aggregator (--once | --every SECONDS) [-d URL] [-i INTERVALS] [--retain SPEC]\n"
    "                        [--strict] [--no-listen] [--metrics-port PORT] ...   (--help for all)\n";

static void agg_help(void)
{
    printf("kline-aggregator — roll kline_1s up into kline_1m (and coarser bars), driven by the\n"
           "inserter's checkpoints. Cron: `kline-aggregator --once`; service: `--every 60`.\n\n"
           "%s\n"
           "  --once                   do all ready work, exit 0 (also when idle or another\n"
           "                           aggregator holds the lock)\n"
           "  --every SECONDS          loop; run at least every SECONDS, and at once on NOTIFY\n"
           "                           kline_checkpoint  [AGG_EVERY]\n"
           "  -d, --database-url URL   libpq URI or conninfo  [DATABASE_URL; unset: PG* defaults]\n"
           "  -i, --intervals LIST     bars to write, must include 1m: 1m,5m,15m,1h,4h,1d\n"
           "                           [AGG_INTERVALS; default 1m]\n"
           "      --retain SPEC        delete old rows, e.g. 1s=2h,1m=30d (units s,m,h,d,w); 1s\n"
           "                           rows are kept until rolled up  [AGG_RETAIN; default off]\n"
           "      --retain-batch N     rows per retention transaction  [default 10000]\n"
           "      --incomplete-grace DUR  hold a bar with missing seconds until the symbol's data is\n"
           "                           DUR past its end (data time), then write and report it;\n"
           "                           0 = write at once  [AGG_INCOMPLETE_GRACE; default 2m]\n"
           "      --strict             --once exits 1 when a bad checkpoint was found  [AGG_STRICT=1]\n"
           "      --no-listen          loop mode: poll every SECONDS only, no LISTEN\n"
           "      --name NAME          progress row name (aggregator_progress.name)  [AGG_NAME; default default]\n"
           "      --batch-checkpoints N  checkpoints consumed per transaction  [default 10000]\n"
           "      --batch-buckets N    buckets per interval per transaction  [default 20000]\n"
           "      --connect-timeout S  --once: give up connecting after S seconds  [default 10]\n"
           "      --pg-timeout-ms MS   client-side bound on one statement; a server or network\n"
           "                           that stops answering costs this, then a reconnect\n"
           "                           [AGG_PG_TIMEOUT_MS; default 60000]\n"
           "      --pg-connect-timeout-ms MS  bound on one connection attempt\n"
           "                           [AGG_PG_CONNECT_TIMEOUT_MS; default 10000]\n"
           "      --metrics-port PORT  Prometheus /metrics on this port, 0 = off  [METRICS_PORT; default 0]\n"
           "      --metrics-host HOST  address for /metrics  [METRICS_HOST; default 0.0.0.0]\n"
           "      --stats-interval S   one stats log line every S seconds, 0 = off  [STATS_INTERVAL; default 60]\n"
           "      --log-level LEVEL    error, warn, info, debug  [LOG_LEVEL; default info]\n"
           "  -h, --help               this help\n"
           "  -V, --version            program and library versions\n\n"
           "Exit codes: 0 done (or nothing to do), 1 runtime failure (or bad state with --strict),\n"
           "2 usage or configuration error.\n",
           agg_synopsis);
}

enum {
    OPT_ONCE = 256, OPT_EVERY, OPT_RETAIN, OPT_RETAIN_BATCH, OPT_STRICT, OPT_NO_LISTEN,
    OPT_NAME, OPT_BATCH_CP, OPT_BATCH_BK, OPT_CONNECT_TIMEOUT, OPT_METRICS_PORT,
    OPT_METRICS_HOST, OPT_STATS, OPT_LOG_LEVEL, OPT_PG_TIMEOUT, OPT_PG_CONNECT_TIMEOUT, OPT_GRACE
};

static long long agg_num(const char *opt, const char *v, long long min, long long max)
{
    long long out;
    if (cfg_parse_ll(v, min, max, &out) < 0)
        cfg_usage_error(AGG_PROG, agg_synopsis, "%s: expected an integer in [%lld, %lld], got '%s'",
                        opt, min, max, v);
    return out;
}

static void agg_parse_args(int argc, char **argv, struct agg_config *cfg)
{
    static const struct option opts[] = {
        { "once", no_argument, NULL, OPT_ONCE },
        { "every", required_argument, NULL, OPT_EVERY },
        { "database-url", required_argument, NULL, 'd' },
        { "intervals", required_argument, NULL, 'i' },
        { "retain", required_argument, NULL, OPT_RETAIN },
        { "retain-batch", required_argument, NULL, OPT_RETAIN_BATCH },
        { "strict", no_argument, NULL, OPT_STRICT },
        { "incomplete-grace", required_argument, NULL, OPT_GRACE },
        { "no-listen", no_argument, NULL, OPT_NO_LISTEN },
        { "name", required_argument, NULL, OPT_NAME },
        { "batch-checkpoints", required_argument, NULL, OPT_BATCH_CP },
        { "batch-buckets", required_argument, NULL, OPT_BATCH_BK },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "pg-timeout-ms", required_argument, NULL, OPT_PG_TIMEOUT },
        { "pg-connect-timeout-ms", required_argument, NULL, OPT_PG_CONNECT_TIMEOUT },
        { "metrics-port", required_argument, NULL, OPT_METRICS_PORT },
        { "metrics-host", required_argument, NULL, OPT_METRICS_HOST },
        { "stats-interval", required_argument, NULL, OPT_STATS },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    char err[256];
    const char *intervals = cfg_env("AGG_INTERVALS", "1m");
    const char *retain = cfg_env("AGG_RETAIN", NULL);
    const char *every = cfg_env("AGG_EVERY", NULL);
    const char *level = cfg_env("LOG_LEVEL", "info");
    const char *grace = cfg_env("AGG_INCOMPLETE_GRACE", "2m");
    cfg->db_url = cfg_env("DATABASE_URL", NULL);
    cfg->name = cfg_env("AGG_NAME", "default");
    cfg->strict = cfg_env_ll("AGG_STRICT", 0, 0, 1);
    cfg->listen = 1;
    cfg->retain_batch = 10000;
    cfg->batch_checkpoints = 10000;
    cfg->batch_buckets = 20000;
    cfg->connect_timeout_s = 10;
    cfg->metrics_host = cfg_env("METRICS_HOST", "0.0.0.0");
    cfg->metrics_port = (int)cfg_env_ll("METRICS_PORT", 0, 0, 65535);
    cfg->stats_interval_s = (int)cfg_env_ll("STATS_INTERVAL", 60, 0, 86400);
    int once = 0;
    int ch;
    long long pg_timeout_ms = cfg_env_ll("AGG_PG_TIMEOUT_MS", 60000, 100, 86400000);
    long long pg_connect_ms = cfg_env_ll("AGG_PG_CONNECT_TIMEOUT_MS", 10000, 100, 3600000);
    while ((ch = getopt_long(argc, argv, "d:i:hV", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_ONCE: once = 1; break;
        case OPT_EVERY: every = optarg; break;
        case 'd': cfg->db_url = optarg; break;
        case 'i': intervals = optarg; break;
        case OPT_RETAIN: retain = optarg; break;
        case OPT_RETAIN_BATCH: cfg->retain_batch = (int)agg_num("--retain-batch", optarg, 1, 10000000); break;
        case OPT_STRICT: cfg->strict = 1; break;
        case OPT_GRACE: grace = optarg; break;
        case OPT_NO_LISTEN: cfg->listen = 0; break;
        case OPT_NAME: cfg->name = optarg; break;
        case OPT_BATCH_CP: cfg->batch_checkpoints = (int)agg_num("--batch-checkpoints", optarg, 1, 10000000); break;
        case OPT_BATCH_BK: cfg->batch_buckets = (int)agg_num("--batch-buckets", optarg, 1, 10000000); break;
        case OPT_PG_TIMEOUT: pg_timeout_ms = agg_num("--pg-timeout-ms", optarg, 100, 86400000); break;
        case OPT_PG_CONNECT_TIMEOUT:
            pg_connect_ms = agg_num("--pg-connect-timeout-ms", optarg, 100, 3600000);
            break;
        case OPT_CONNECT_TIMEOUT: cfg->connect_timeout_s = (int)agg_num("--connect-timeout", optarg, 0, 86400); break;
        case OPT_METRICS_PORT: cfg->metrics_port = (int)agg_num("--metrics-port", optarg, 0, 65535); break;
        case OPT_METRICS_HOST: cfg->metrics_host = optarg; break;
        case OPT_STATS: cfg->stats_interval_s = (int)agg_num("--stats-interval", optarg, 0, 86400); break;
        case OPT_LOG_LEVEL: level = optarg; break;
        case 'h': agg_help(); exit(0);
        case 'V': cfg_print_versions(stdout, AGG_PROG); exit(0);
        default: cfg_usage_error(AGG_PROG, agg_synopsis, "unknown option or missing argument");
        }
    }
    if (optind < argc)
        cfg_usage_error(AGG_PROG, agg_synopsis, "unexpected argument '%s'", argv[optind]);
    int lvl = log_level_parse(level);
    if (lvl < 0)
        cfg_usage_error(AGG_PROG, agg_synopsis, "unknown log level '%s'", level);
    log_init(AGG_PROG, lvl);
    pgx_set_timeouts((int)pg_connect_ms, (int)pg_timeout_ms);
    /* The flag wins over AGG_EVERY: --once on the command line means once. */
    if (once)
        every = NULL;
    if (!once && !every)
        cfg_usage_error(AGG_PROG, agg_synopsis, "give --once (cron) or --every SECONDS (loop)");
    cfg->once = once;
    if (every)
        cfg->every_s = (int)agg_num("--every", every, 1, 86400);
    if (!*cfg->name)
        cfg_usage_error(AGG_PROG, agg_synopsis, "--name must not be empty");
    if (agg_parse_intervals(intervals, cfg, err, sizeof err) < 0)
        cfg_usage_error(AGG_PROG, agg_synopsis, "%s", err);
    if (agg_parse_grace(grace, &cfg->incomplete_grace_s) < 0)
        cfg_usage_error(AGG_PROG, agg_synopsis, "--incomplete-grace: bad duration '%s' (0, or a "
                        "number with s, m, h or d, at most 7d)", grace);
    if (retain && agg_parse_retain(retain, cfg, err, sizeof err) < 0)
        cfg_usage_error(AGG_PROG, agg_synopsis, "%s", err);
}

/* --once: lock, roll up until idle, retention, exit code. */
static int agg_once(const struct agg_config *cfg)
{
    char err[512];
    PGconn *c = pgx_connect(cfg->db_url, cfg->connect_timeout_s * 1000, &sig_stop, err, sizeof err);
    if (!c) {
        log_error("cannot connect to PostgreSQL: %s", err);
        return 1;
    }
    int rc = 0;
    if (pgx_migrate(c, err, sizeof err) < 0 || agg_session_init(c, cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        PQfinish(c);
        return 1;
    }
    int got = agg_try_lock(c, err, sizeof err);
    if (got <= 0) {
        if (got < 0)
            log_error("%s", err);
        else
            log_info("another aggregator is running; nothing to do");
        PQfinish(c);
        return got < 0 ? 1 : 0;
    }
    int did = 0;
    if (agg_run_until_idle(c, cfg, &did, err, sizeof err) < 0) {
        log_error("rollup failed (rolled back; the next run retries): %s", err);
        rc = 1;
    } else if (cfg->n_retain && !sig_stop && agg_retention_run(c, cfg, 0, err, sizeof err) < 0) {
        log_error("%s", err);
        rc = 1;
    }
    PQfinish(c); /* also releases the session advisory lock */
    if (rc == 0 && !did)
        log_info("nothing to do");
    else
        agg_stats_log("done");
    long long bad = atomic_load(&agg_stats.bad_state);
    if (rc == 0 && bad && cfg->strict) {
        log_error("%lld bad checkpoints found (--strict); see table rejected", bad);
        rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct agg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    agg_parse_args(argc, argv, &cfg);
    sig_setup();
    char err[512];
    if (agg_stats_metrics_start(&cfg, err, sizeof err) < 0)
        fatal("%s", err);
    int rc;
    if (cfg.once) {
        rc = agg_once(&cfg);
    } else {
        char ivs[64] = "";
        for (int i = 0; i < cfg.n_iv; i++)
            snprintf(ivs + strlen(ivs), sizeof ivs - strlen(ivs), "%s%s", i ? "," : "", cfg.iv[i]->name);
        log_info("looping every %d s%s; intervals %s%s", cfg.every_s,
                 cfg.listen ? ", woken by NOTIFY " PGX_NOTIFY_CHANNEL : "", ivs,
                 cfg.n_retain ? "; retention on" : "");
        rc = agg_loop(&cfg);
    }
    if (cfg.metrics_port > 0)
        metrics_http_stop();
    return rc;
}
