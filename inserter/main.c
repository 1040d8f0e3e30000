/*
 * kline-inserter — klines from Kafka (or stdin) into PostgreSQL, in batches, each batch
 * and its checkpoint rows in one transaction, Kafka offsets committed only after COMMIT.
 * See docs/inserter.md. This file: options, set-up, the two main loops, tear-down.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"
#include "pgd.h"
#include "pgx.h"
#include "sig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char synopsis[] =
    "usage: kline-inserter [-b BROKERS] [-t TOPIC] [-g GROUP] [-d DATABASE_URL] [-i FILE|-]\n"
    "                      [--batch-rows N] [--flush-ms MS] [-X key=value]... (--help for all)\n";

static void usage(FILE *out)
{
    fputs(synopsis, out);
    fputs("\n"
"Consumes kline records from Kafka (or reads lines with -i) and writes them to PostgreSQL\n"
"table kline_1s in batches, one transaction each: the rows (COPY straight into kline_1s\n"
"while they are new, else COPY into a staging table and an upsert), one checkpoint row per\n"
"symbol and partition, the rejected inputs. Kafka offsets are committed after COMMIT.\n"
"\n"
"Options (flag > environment > default):\n"
"  -b, --brokers LIST        Kafka bootstrap servers       [KAFKA_BROKERS, 127.0.0.1:9092]\n"
"  -t, --topic NAME          topic to consume              [KAFKA_TOPIC, klines]\n"
"      --dlq-topic NAME      dead-letter topic, \"\" = none  [KAFKA_DLQ_TOPIC, TOPIC.rejected]\n"
"  -g, --group NAME          consumer group                [KAFKA_GROUP, kline-inserter]\n"
"  -d, --database-url URL    libpq URI or conninfo         [DATABASE_URL, libpq PG* vars]\n"
"  -i, --input FILE|-        read lines instead of Kafka; write, exit 0 at end of input\n"
"      --symbol SYM          symbol for -i rows that carry none (REST arrays, CSV rows)\n"
"      --batch-rows N        write a batch at N records    [INSERTER_BATCH_ROWS, 5000]\n"
"      --flush-ms MS         ... or when it is MS old      [INSERTER_FLUSH_MS, 200]\n"
"      --pg-timeout-ms MS    bound on one transaction      [INSERTER_PG_TIMEOUT_MS, 30000]\n"
"      --connect-timeout S   wait for PostgreSQL at start  [INSERTER_CONNECT_TIMEOUT, 60]\n"
"      --rejected-prefix BYTES  bytes of a rejected input stored (its size and\n"
"                            SHA-256 always)  [INSERTER_REJECTED_PREFIX, 65536]\n"
"      --pg-connect-timeout-ms MS  bound on one connection attempt\n"
"                                  [INSERTER_PG_CONNECT_TIMEOUT_MS, 10000]\n"
"  -X key=value              librdkafka setting, applied last (repeatable)\n"
"      --metrics-port PORT   Prometheus /metrics, 0 = off  [METRICS_PORT, 0]\n"
"      --stats-interval S    stats line every S s, 0 = off [STATS_INTERVAL, 60]\n"
"      --log-level LEVEL     error|warn|info|debug         [LOG_LEVEL, info]\n"
"  -h, --help                this text\n"
"  -V, --version             program and library versions\n"
"\n"
"Exit: 0 done (SIGTERM/SIGINT: flush, commit, exit; -i: end of input), 1 runtime failure,\n"
"2 usage or configuration error.\n", out);
}

enum {
    OPT_DLQ = 256, OPT_SYMBOL, OPT_BATCH_ROWS, OPT_FLUSH_MS, OPT_PG_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_PG_CONNECT_TIMEOUT, OPT_REJECTED_PREFIX,
    OPT_METRICS_PORT, OPT_STATS_INTERVAL, OPT_LOG_LEVEL,
};

static long long num_opt(const char *name, const char *v, long long min, long long max)
{
    long long out;
    if (cfg_parse_ll(v, min, max, &out) < 0)
        cfg_usage_error(INS_PROG, synopsis, "%s %s: expected an integer in [%lld, %lld]", name, v,
                        min, max);
    return out;
}

static void parse_args(int argc, char **argv, ins_opts_t *o, int *log_level)
{
    static char dlq_default[512];
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "topic", required_argument, NULL, 't' },
        { "dlq-topic", required_argument, NULL, OPT_DLQ },
        { "group", required_argument, NULL, 'g' },
        { "database-url", required_argument, NULL, 'd' },
        { "input", required_argument, NULL, 'i' },
        { "symbol", required_argument, NULL, OPT_SYMBOL },
        { "batch-rows", required_argument, NULL, OPT_BATCH_ROWS },
        { "flush-ms", required_argument, NULL, OPT_FLUSH_MS },
        { "pg-timeout-ms", required_argument, NULL, OPT_PG_TIMEOUT },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "pg-connect-timeout-ms", required_argument, NULL, OPT_PG_CONNECT_TIMEOUT },
        { "rejected-prefix", required_argument, NULL, OPT_REJECTED_PREFIX },
        { "metrics-port", required_argument, NULL, OPT_METRICS_PORT },
        { "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
        { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *level = cfg_env("LOG_LEVEL", "info");
    bool level_from_env = true;
    memset(o, 0, sizeof *o);
    o->brokers = cfg_env("KAFKA_BROKERS", "127.0.0.1:9092");
    o->topic = cfg_env("KAFKA_TOPIC", "klines");
    o->dlq_topic = getenv("KAFKA_DLQ_TOPIC"); /* "" is meaningful: no dead letters */
    o->group = cfg_env("KAFKA_GROUP", "kline-inserter");
    o->db_url = cfg_env("DATABASE_URL", NULL);
    o->batch_rows = cfg_env_ll("INSERTER_BATCH_ROWS", 5000, 1, 1000000);
    o->flush_ms = cfg_env_ll("INSERTER_FLUSH_MS", 200, 1, 3600000);
    o->pg_timeout_ms = cfg_env_ll("INSERTER_PG_TIMEOUT_MS", 30000, 100, 3600000);
    o->connect_timeout_ms = cfg_env_ll("INSERTER_CONNECT_TIMEOUT", 60, 0, 86400) * 1000;
    o->rejected_prefix = cfg_env_ll("INSERTER_REJECTED_PREFIX", INS_REJECT_PREFIX_DEFAULT, 0,
                                    64 << 20);
    o->pg_connect_timeout_ms = cfg_env_ll("INSERTER_PG_CONNECT_TIMEOUT_MS", 10000, 100, 3600000);
    o->stats_interval_s = cfg_env_ll("STATS_INTERVAL", 60, 0, 86400);
    o->metrics_port = (int)cfg_env_ll("METRICS_PORT", 0, 0, 65535);
    char err[512];
    int c;
    while ((c = getopt_long(argc, argv, "b:t:g:d:i:X:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case 't': o->topic = optarg; break;
        case OPT_DLQ: o->dlq_topic = optarg; break;
        case 'g': o->group = optarg; break;
        case 'd': o->db_url = optarg; break;
        case 'i': o->input = optarg; break;
        case OPT_SYMBOL: o->symbol_hint = optarg; break;
        case OPT_BATCH_ROWS: o->batch_rows = num_opt("--batch-rows", optarg, 1, 1000000); break;
        case OPT_FLUSH_MS: o->flush_ms = num_opt("--flush-ms", optarg, 1, 3600000); break;
        case OPT_PG_TIMEOUT:
            o->pg_timeout_ms = num_opt("--pg-timeout-ms", optarg, 100, 3600000);
            break;
        case OPT_REJECTED_PREFIX:
            o->rejected_prefix = num_opt("--rejected-prefix", optarg, 0, 64 << 20);
            break;
        case OPT_PG_CONNECT_TIMEOUT:
            o->pg_connect_timeout_ms = num_opt("--pg-connect-timeout-ms", optarg, 100, 3600000);
            break;
        case OPT_CONNECT_TIMEOUT:
            o->connect_timeout_ms = num_opt("--connect-timeout", optarg, 0, 86400) * 1000;
            break;
        case OPT_METRICS_PORT: o->metrics_port = (int)num_opt("--metrics-port", optarg, 0, 65535); break;
        case OPT_STATS_INTERVAL:
            o->stats_interval_s = num_opt("--stats-interval", optarg, 0, 86400);
            break;
        case OPT_LOG_LEVEL: level = optarg; level_from_env = false; break;
        case 'X':
            if (kq_xopts_add(&o->xopts, optarg, err, sizeof err) < 0)
                cfg_usage_error(INS_PROG, synopsis, "%s", err);
            break;
        case 'h': usage(stdout); exit(0);
        case 'V': cfg_print_versions(stdout, INS_PROG); exit(0);
        default: cfg_usage_error(INS_PROG, synopsis, "unknown or incomplete option");
        }
    }
    if (optind < argc)
        cfg_usage_error(INS_PROG, synopsis, "unexpected argument: %s", argv[optind]);
    *log_level = log_level_parse(level);
    if (*log_level < 0)
        cfg_usage_error(INS_PROG, synopsis, "%s %s: expected error, warn, info or debug",
                        level_from_env ? "LOG_LEVEL" : "--log-level", level);
    if (!*o->topic)
        cfg_usage_error(INS_PROG, synopsis, "the topic name is empty");
    if (!o->dlq_topic) {
        snprintf(dlq_default, sizeof dlq_default, "%s.rejected", o->topic);
        o->dlq_topic = dlq_default;
    }
    if (o->symbol_hint && !kline_symbol_valid(o->symbol_hint))
        cfg_usage_error(INS_PROG, synopsis, "--symbol %s: expected [A-Z0-9]{1,20}", o->symbol_hint);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* a signal cuts it short: fine, the loop re-checks */
}

/* Periodic work shared by both loops: lag gauge, stats line. */
static void tick(ins_app_t *app, int64_t now, int64_t *next_lag, int64_t *next_stats)
{
    if (now >= *next_lag) {
        ins_stats_set_lag(app->kafka_mode ? ins_kafka_lag(app) : 0);
        if (!app->pg_down)
            ins_stats_set_pending((long long)app->batch.nrecords);
        *next_lag = now + 1000;
    }
    if (app->opt.stats_interval_s > 0 && now >= *next_stats) {
        ins_stats_log();
        *next_stats = now + app->opt.stats_interval_s * 1000;
    }
}

/* After a stop request: write what is in hand, retrying for a short while. */
static int final_flush(ins_app_t *app, int64_t budget_ms)
{
    int64_t deadline = cfg_mono_ms() + budget_ms;
    if (app->store.op_timeout_ms > budget_ms) /* a hung server must not hold up the exit */
        app->store.op_timeout_ms = (int)budget_ms;
    while (app->batch.nrecords > 0) {
        int64_t now = cfg_mono_ms();
        if (now >= app->retry_at_ms && ins_flush(app) == 0)
            break;
        if (cfg_mono_ms() >= deadline || pgd_stop_expired()) {
            log_error("giving up with %zu records not written to PostgreSQL%s",
                      app->batch.nrecords,
                      app->kafka_mode ? " (not committed in Kafka: they will be read again)" : "");
            return -1;
        }
        sleep_ms(ins_flush_wait_ms(app, cfg_mono_ms(), 200) + 1);
    }
    return 0;
}

static int run_kafka(ins_app_t *app)
{
    int64_t now = cfg_mono_ms(), next_lag = now + 1000;
    int64_t next_stats = now + app->opt.stats_interval_s * 1000;
    while (!sig_stop) {
        now = cfg_mono_ms();
        if (ins_flush_due(app, now))
            ins_flush(app);
        /* Polling goes on while PostgreSQL is down: the partitions are paused, but the
         * call serves rebalances and keeps max.poll.interval.ms from expiring. */
        ins_kafka_poll(app, ins_flush_wait_ms(app, now, 100));
        tick(app, cfg_mono_ms(), &next_lag, &next_stats);
    }
    log_info("stopping: writing the %zu records in hand", app->batch.nrecords);
    int rc = final_flush(app, 5000);
    ins_kafka_close(app);
    return rc == 0 ? 0 : 1;
}

static int run_input(ins_app_t *app)
{
    int64_t now = cfg_mono_ms(), next_lag = now, next_stats = now + app->opt.stats_interval_s * 1000;
    bool eof = false;
    while (!sig_stop && !eof) {
        now = cfg_mono_ms();
        if (ins_flush_due(app, now))
            ins_flush(app);
        int wait = ins_flush_wait_ms(app, now, 100);
        if (app->pg_down || (long long)app->batch.nrecords >= app->opt.batch_rows) {
            sleep_ms(wait); /* hold the input until the batch is written */
        } else {
            int r = ins_input_poll(app, wait);
            if (r < 0)
                break;
            eof = r == 1;
        }
        tick(app, cfg_mono_ms(), &next_lag, &next_stats);
    }
    /* End of input: the batch is written however young it is. PostgreSQL being down
     * is waited out (the input cannot be read again) until a signal says stop. */
    int rc = 0;
    while (app->batch.nrecords > 0 && !sig_stop) {
        if (cfg_mono_ms() >= app->retry_at_ms && ins_flush(app) == 0)
            break;
        sleep_ms(ins_flush_wait_ms(app, cfg_mono_ms(), 200) + 1);
    }
    if (app->batch.nrecords > 0)
        rc = final_flush(app, 5000);
    if (rc < 0)
        return 1;
    return eof || sig_stop ? 0 : 1; /* not eof and no signal: a read error */
}

int main(int argc, char **argv)
{
    static ins_app_t app; /* static: large, and the rebalance callback holds a pointer */
    int level;
    char err[1024];
    parse_args(argc, argv, &app.opt, &level);
    log_init(INS_PROG, level);
    sig_setup();
    pgx_set_timeouts((int)app.opt.pg_connect_timeout_ms, (int)app.opt.pg_timeout_ms);
    ins_batch_init(&app.batch);
    app.batch.rej_prefix = (size_t)app.opt.rejected_prefix;
    app.kafka_mode = app.opt.input == NULL;

    if (!app.kafka_mode && ins_input_open(&app.input, app.opt.input, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (ins_store_open(&app.store, app.opt.db_url, (int)app.opt.pg_timeout_ms,
                       (int)app.opt.connect_timeout_ms, err, sizeof err) < 0)
        fatal("PostgreSQL: %s", err);
    if (app.opt.metrics_port > 0 && ins_stats_start_http(app.opt.metrics_port, err, sizeof err) < 0)
        fatal("%s", err);
    if (app.kafka_mode && ins_kafka_open(&app, err, sizeof err) < 0)
        fatal("%s", err);
    log_info("writing to PostgreSQL in batches of up to %lld records or %lld ms",
             app.opt.batch_rows, app.opt.flush_ms);

    int rc = app.kafka_mode ? run_kafka(&app) : run_input(&app);

    ins_stats_log();
    if (app.opt.metrics_port > 0)
        ins_stats_stop_http();
    if (!app.kafka_mode)
        ins_input_close(&app.input);
    ins_store_close(&app.store);
    ins_batch_free(&app.batch);
    log_info("exit %d", rc);
    return rc;
}
