/* opts.c — kline-aggregator's option table (parsing, environment, --help and the man page
 * come from it), the parsers of its structured values (--intervals, --retain,
 * --incomplete-grace) and the checks across options. */
#include "agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "opt.h"

#define AGG_DEF_INTERVALS "1m"
#define AGG_DEF_GRACE "2m"
/* Units of --retain and --incomplete-grace; a unit is required and fractions were never
 * taken ("0.5h" is refused), so the common grammar is used with those two rules on top. */
#define AGG_DUR_UNITS "s m h d w"
/* Durations become milliseconds later; keep far below INT64_MAX ms. */
#define AGG_DUR_MAX_S (INT64_MAX / 2000)

/* The table's destinations. Filled by kp_opt_parse, copied out by agg_opts_parse. */
static struct agg_config agg_o;
static struct {
    bool once, no_listen;
    const char *every; /* checked after parsing: ignored (even if bad) with --once */
    const char *level;
} agg_raw;

/* A whole positive number with a unit from AGG_DUR_UNITS, at most max_s seconds. */
static int agg_duration_s(const char *s, int64_t max_s, int64_t *seconds, char *errbuf, size_t errlen)
{
    int64_t ms;
    if (strchr(s, '.')) {
        snprintf(errbuf, errlen, "expected a whole number with a unit (%s)", AGG_DUR_UNITS);
        return -1;
    }
    if (cfg_parse_duration_ms(s, AGG_DUR_UNITS, 0, max_s * 1000, &ms, errbuf, errlen) < 0)
        return -1;
    if (ms <= 0) {
        snprintf(errbuf, errlen, "must be more than 0");
        return -1;
    }
    *seconds = ms / 1000;
    return 0;
}

int agg_parse_duration(const char *s, int64_t *seconds)
{
    char err[160];
    return agg_duration_s(s, AGG_DUR_MAX_S, seconds, err, sizeof err);
}

/* --incomplete-grace: "0" (write at once) or a duration up to AGG_GRACE_MAX_S.
 * dest: int64_t seconds. */
static int agg_opt_grace(const char *s, void *dest, char *errbuf, size_t errlen)
{
    if (strcmp(s, "0") == 0) {
        *(int64_t *)dest = 0;
        return 0;
    }
    if (agg_duration_s(s, AGG_GRACE_MAX_S, dest, errbuf, errlen) == 0)
        return 0;
    snprintf(errbuf, errlen, "bad duration '%s' (0, or a number with s, m, h or d, at most 7d)", s);
    return -1;
}

int agg_parse_grace(const char *s, int64_t *seconds)
{
    char err[160];
    return agg_opt_grace(s, seconds, err, sizeof err);
}

int agg_parse_intervals(const char *csv, void *dest, char *errbuf, size_t errlen)
{
    struct agg_config *cfg = dest;
    char **list = NULL;
    int n = cfg_split_list(csv, &list);
    int seen[AGG_MAX_INTERVALS] = { 0 };
    int rc = 0;
    if (n < 0)
        return snprintf(errbuf, errlen, "out of memory"), -1;
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
    if (rc == 0 && !seen[0]) {
        snprintf(errbuf, errlen, "must include 1m (coarser bars are built from it)");
        rc = -1;
    }
    if (rc < 0)
        return -1;
    /* Ascending order matters: each coarse bar is built from 1m bars written earlier in
     * the same transaction. */
    cfg->n_iv = 0;
    for (int i = 0; i < AGG_MAX_INTERVALS; i++)
        if (seen[i])
            cfg->iv[cfg->n_iv++] = &agg_intervals[i];
    return 0;
}

/* One "TABLE=DURATION" entry (item is modified); key/table point at static strings. */
static int agg_retain_entry(char *item, struct agg_retain *r, char *errbuf, size_t errlen)
{
    char *eq = strchr(item, '='), err[160];
    if (!eq)
        return snprintf(errbuf, errlen, "entry '%s' is not TABLE=DURATION (e.g. 1s=2h)", item), -1;
    *eq = '\0';
    const struct agg_interval *iv = agg_interval_find(item);
    if (strcmp(item, "1s") == 0) {
        r->key = "1s";
        r->table = "kline_1s";
    } else if (iv) {
        r->key = iv->name;
        r->table = iv->table;
    } else {
        return snprintf(errbuf, errlen, "unknown table '%s' (1s,1m,5m,15m,1h,4h,1d)", item), -1;
    }
    if (agg_duration_s(eq + 1, AGG_DUR_MAX_S, &r->keep_s, err, sizeof err) < 0)
        return snprintf(errbuf, errlen, "bad duration '%s' for %s: %s", eq + 1, item, err), -1;
    return 0;
}

int agg_parse_retain(const char *csv, void *dest, char *errbuf, size_t errlen)
{
    struct agg_config *cfg = dest;
    char **list = NULL;
    int n = cfg_split_list(csv, &list);
    int rc = n < 0 ? -1 : 0;
    if (n < 0)
        snprintf(errbuf, errlen, "out of memory");
    cfg->n_retain = 0; /* the last --retain (flag over AGG_RETAIN) is the whole spec */
    for (int i = 0; i < n && rc == 0; i++) {
        struct agg_retain r = { 0 };
        rc = agg_retain_entry(list[i], &r, errbuf, errlen);
        for (int j = 0; rc == 0 && j < cfg->n_retain; j++)
            if (strcmp(cfg->retain[j].key, r.key) == 0) {
                snprintf(errbuf, errlen, "%s given twice", r.key);
                rc = -1;
            }
        if (rc == 0)
            cfg->retain[cfg->n_retain++] = r;
    }
    cfg_list_free(list);
    return rc;
}

static const kp_opt_t agg_opt_table[] = {
    { KP_OPT_SECTION, .help = "Mode (one of the two)" },
    { KP_OPT_FLAG, "once", 0, NULL, NULL, NULL,
      "do all ready work and exit 0 (also when idle: \"nothing to do\",\nor when another aggregator holds the lock)",
      .dest = &agg_raw.once },
    { KP_OPT_STR, "every", 0, "SECONDS", "AGG_EVERY", NULL,
      "loop; run at least every SECONDS (1-86400), and at once on\nNOTIFY kline_checkpoint; "
      "--once wins", .dest = &agg_raw.every },
    { KP_OPT_SECTION, .help = "Rollup" },
    { KP_OPT_STR, "database-url", 'd', "URL", "DATABASE_URL", NULL,
      "libpq URI or conninfo (unset: libpq's PG* defaults)", .dest = &agg_o.db_url },
    { KP_OPT_CALL, "intervals", 'i', "LIST", "AGG_INTERVALS", AGG_DEF_INTERVALS,
      "bars to write, must include 1m: 1m,5m,15m,1h,4h,1d", .dest = &agg_o, .call = agg_parse_intervals },
    { KP_OPT_CALL, "incomplete-grace", 0, "DUR", "AGG_INCOMPLETE_GRACE", AGG_DEF_GRACE,
      "hold a bar with missing seconds until the symbol's data is\nDUR past its end (data time), "
      "then write and report it;\n0 = write at once; units s m h d, at most 7d",
      .dest = &agg_o.incomplete_grace_s, .call = agg_opt_grace },
    { KP_OPT_FLAG, "strict", 0, NULL, "AGG_STRICT", NULL, "--once exits 1 when a bad checkpoint was found",
      .dest = &agg_o.strict },
    { KP_OPT_FLAG, "no-listen", 0, NULL, NULL, NULL, "loop mode without LISTEN (e.g. behind a pooling proxy in\ntransaction mode): poll every SECONDS only",
      .dest = &agg_raw.no_listen },
    { KP_OPT_STR, "name", 0, "NAME", "AGG_NAME", "default", "progress row name (aggregator_progress.name); a new\nname starts from checkpoint 0",
      .dest = &agg_o.name },
    { KP_OPT_INT, "batch-checkpoints", 0, "N", NULL, "10000", "checkpoints consumed per transaction",
      KP_OPT_INT_DEST(agg_o.batch_checkpoints), .min = 1, .max = 10000000 },
    { KP_OPT_INT, "batch-buckets", 0, "N", NULL, "20000", "buckets per interval per transaction",
      KP_OPT_INT_DEST(agg_o.batch_buckets), .min = 1, .max = 10000000 },
    { KP_OPT_SECTION, .help = "Retention" },
    { KP_OPT_CALL, "retain", 0, "SPEC", "AGG_RETAIN", NULL,
      "delete old rows, e.g. 1s=2h,1m=30d (units s,m,h,d,w); 1s\nrows are kept until rolled up; "
      "unset = off", .dest = &agg_o, .call = agg_parse_retain },
    { KP_OPT_INT, "retain-batch", 0, "N", NULL, "10000", "rows per retention transaction",
      KP_OPT_INT_DEST(agg_o.retain_batch), .min = 1, .max = 10000000 },
    { KP_OPT_CALL, "compact-after", 0, "DUR", "AGG_COMPACT_AFTER", "1h",
      "rebuild the primary key of each hourly kline_1s partition\nonce, DUR after its hour "
      "ends (~40 % smaller index);\n0 = off; units s m h d, at most 7d",
      .dest = &agg_o.compact_after_s, .call = agg_opt_grace },
    { KP_OPT_STR, "archive", 0, "DIR", "AGG_ARCHIVE", NULL,
      "before --retain deletes 1s rows, write them (whole UTC days)\nto "
      "DIR/SYMBOL/SYMBOL-1s-YYYY-MM-DD.csv.gz, data.binance.vision's\nformat "
      "(kline-producer --replay reads them); needs --retain 1s=...", .dest = &agg_o.archive_dir },
    { KP_OPT_SECTION, .help = "PostgreSQL time limits" },
    { KP_OPT_INT, "connect-timeout", 0, "S", NULL, "10", "--once: give up connecting after S seconds (loop mode\nretries forever)",
      KP_OPT_INT_DEST(agg_o.connect_timeout_s), .min = 0, .max = 86400 },
    { KP_OPT_INT, "pg-timeout-ms", 0, "MS", "AGG_PG_TIMEOUT_MS", "60000",
      "client-side bound on one statement; a server or network\nthat stops answering costs this, "
      "then a reconnect", KP_OPT_INT_DEST(agg_o.pg_timeout_ms), .min = 100, .max = 86400000 },
    { KP_OPT_INT, "pg-connect-timeout-ms", 0, "MS", "AGG_PG_CONNECT_TIMEOUT_MS", "10000",
      "bound on one connection attempt", KP_OPT_INT_DEST(agg_o.pg_connect_timeout_ms), .min = 100,
      .max = 3600000 },
    { KP_OPT_SECTION, .help = "Operations" },
    { KP_OPT_INT, "metrics-port", 0, "PORT", "METRICS_PORT", "0", "Prometheus /metrics on this port, 0 = off",
      KP_OPT_INT_DEST(agg_o.metrics_port), .min = 0, .max = 65535 },
    { KP_OPT_STR, "metrics-host", 0, "HOST", "METRICS_HOST", "0.0.0.0", "address for /metrics",
      .dest = &agg_o.metrics_host },
    { KP_OPT_INT, "stats-interval", 0, "S", "STATS_INTERVAL", "60", "loop mode: one stats line on stderr every S seconds,\n0 = off",
      KP_OPT_INT_DEST(agg_o.stats_interval_s), .min = 0, .max = 86400 },
    { KP_OPT_STR, "log-level", 0, "LEVEL", "LOG_LEVEL", "info", "error, warn, info, debug",
      .dest = &agg_raw.level },
    { KP_OPT_END },
};

static const kp_opt_prog_t agg_prog = {
    .name = AGG_PROG,
    .summary = "roll 1-second klines up into 1-minute and coarser bars",
    .synopsis = "usage: kline-aggregator (--once | --every SECONDS) [-d URL] [-i INTERVALS] [--retain SPEC]\n"
                "                        [--strict] [--no-listen] [--metrics-port PORT] ...   (--help for all)\n",
    .intro = "Rolls kline_1s up into kline_1m (and coarser bars), driven by the inserter's\n"
             "checkpoints. Cron: `kline-aggregator --once`; service: `--every 60`.\n",
    .epilog = "Exit codes: 0 done (or nothing to do), 1 runtime failure (or bad state with --strict),\n"
              "2 usage or configuration error.\n",
    .opts = agg_opt_table,
};

/* --archive only acts before the 1s retention deletes. */
static void agg_opts_check_archive(const struct agg_config *cfg)
{
    int has_1s = 0;
    if (!cfg->archive_dir)
        return;
    if (!*cfg->archive_dir)
        kp_opt_usage_error(&agg_prog, "--archive: empty directory name");
    for (int i = 0; i < cfg->n_retain; i++)
        has_1s |= strcmp(cfg->retain[i].key, "1s") == 0;
    if (!has_1s)
        kp_opt_usage_error(&agg_prog, "--archive needs --retain with a 1s entry (e.g. 1s=7d): it archives "
                           "what retention deletes");
}

/* Checks across options, and the values only known once every option is read. */
static void agg_opts_check(struct agg_config *cfg)
{
    long long every = 0;
    cfg->log_level = log_level_parse(agg_raw.level); /* first, as before: LOG_LEVEL=loud alone */
    if (cfg->log_level < 0)
        kp_opt_usage_error(&agg_prog, "unknown log level '%s'", agg_raw.level);
    cfg->once = agg_raw.once;
    cfg->listen = !agg_raw.no_listen;
    if (!cfg->once && !agg_raw.every)
        kp_opt_usage_error(&agg_prog, "give --once (cron) or --every SECONDS (loop)");
    if (!cfg->once && cfg_parse_ll(agg_raw.every, 1, 86400, &every) < 0)
        kp_opt_usage_error(&agg_prog, "--every %s: expected an integer in [1, 86400]", agg_raw.every);
    cfg->every_s = cfg->once ? 0 : (int)every;
    if (!*cfg->name)
        kp_opt_usage_error(&agg_prog, "--name must not be empty");
    agg_opts_check_archive(cfg);
}

void agg_opts_parse(int argc, char **argv, struct agg_config *cfg)
{
    memset(&agg_o, 0, sizeof agg_o);
    kp_opt_parse(&agg_prog, argc, argv, false);
    agg_opts_check(&agg_o);
    *cfg = agg_o; /* strings point into argv, the environment or the table: never freed */
}
