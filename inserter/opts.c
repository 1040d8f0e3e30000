/*
 * opts.c — kline-inserter's options: one table gives the parsing, the environment
 * override, --help, the man page and the docs' option table (common/opt.h). After the
 * table, the checks that span options and the derived default of --dlq-topic.
 */
#include "ins.h"
#include "log.h"
#include "opt.h"

#include <stdio.h>
#include <string.h>

/* What the table parses into; ins_opts_parse hands a copy to the caller. */
static ins_opts_t ins_opts_v = { .log_level = LOG_LVL_INFO }; /* a CALL default is not parsed */

/* log.c's names: error, warn (or warning), info, debug, any case. */
static int ins_opts_level(const char *v, void *dest, char *err, size_t errlen)
{
    *(int *)dest = log_level_parse(v);
    if (*(int *)dest >= 0)
        return 0;
    snprintf(err, errlen, "expected error, warn, info or debug");
    return -1;
}

#define INS_DUR_MS .units = "ms s m h", .bare_ms = 1    /* a bare number: ms, as before */
#define INS_DUR_S  .units = "ms s m h", .bare_ms = 1000 /* a bare number: seconds, as before */
#define V ins_opts_v

static const kp_opt_t ins_opts_table[] = {
    { KP_OPT_SECTION, .help = "Kafka" },
    { KP_OPT_STR, "brokers", 'b', "LIST", "KAFKA_BROKERS", "127.0.0.1:9092",
      "Kafka bootstrap servers", .dest = &V.brokers },
    { KP_OPT_STR, "topic", 't', "NAME", "KAFKA_TOPIC", "klines", "topic to consume",
      .dest = &V.topic },
    { KP_OPT_STR, "dlq-topic", 0, "NAME", "KAFKA_DLQ_TOPIC", NULL,
      "dead-letter topic, also consumed (default TOPIC.rejected);\n\"\" = none",
      .dest = &V.dlq_topic, .flags = KP_OPT_EMPTY_OK },
    { KP_OPT_STR, "group", 'g', "NAME", "KAFKA_GROUP", INS_PROG, "consumer group",
      .dest = &V.group },
    { KP_OPT_CALL, "kafka", 'X', "KEY=VALUE", NULL, NULL,
      "librdkafka setting, applied last (repeatable)", .dest = &V.xopts, .call = kq_xopts_add },
    { KP_OPT_SECTION, .help = "Input instead of Kafka" },
    { KP_OPT_STR, "input", 'i', "FILE|-", NULL, NULL,
      "read lines instead of Kafka; write, exit 0 at end of input", .dest = &V.input },
    { KP_OPT_STR, "symbol", 0, "SYM", NULL, NULL,
      "symbol for -i rows that carry none (REST arrays, CSV rows)", .dest = &V.symbol_hint },
    { KP_OPT_SECTION, .help = "PostgreSQL" },
    { KP_OPT_STR, "database-url", 'd', "URL", "DATABASE_URL", NULL,
      "libpq URI or conninfo (unset: libpq's PG* variables)", .dest = &V.db_url },
    { KP_OPT_INT, "batch-rows", 0, "N", "INSERTER_BATCH_ROWS", "5000", "write a batch at N records",
      KP_OPT_INT_DEST(V.batch_rows), .min = 1, .max = 1000000 },
    { KP_OPT_DUR, "flush-ms", 0, "MS", "INSERTER_FLUSH_MS", "200",
      "... or when its oldest record is MS old", .dest = &V.flush_ms, .min = 1, .max = 3600000,
      INS_DUR_MS },
    { KP_OPT_DUR, "pg-timeout-ms", 0, "MS", "INSERTER_PG_TIMEOUT_MS", "30000",
      "bound on one batch transaction; then reconnect and retry", .dest = &V.pg_timeout_ms,
      .min = 100, .max = 3600000, INS_DUR_MS },
    { KP_OPT_DUR, "connect-timeout", 0, "S", "INSERTER_CONNECT_TIMEOUT", "60",
      "how long to wait for PostgreSQL at start-up", .dest = &V.connect_timeout_ms,
      .max = 86400000, INS_DUR_S },
    { KP_OPT_DUR, "pg-connect-timeout-ms", 0, "MS", "INSERTER_PG_CONNECT_TIMEOUT_MS", "10000",
      "client-side bound on one connection attempt\n(start-up retries them for --connect-timeout)",
      .dest = &V.pg_connect_timeout_ms, .min = 100, .max = 3600000, INS_DUR_MS },
    { KP_OPT_INT, "rejected-prefix", 0, "BYTES", "INSERTER_REJECTED_PREFIX", "65536",
      "bytes of a rejected input stored in rejected.raw;\nits size and SHA-256 are always stored",
      KP_OPT_INT_DEST(V.rejected_prefix), .min = 0, .max = 64 << 20 },
    { KP_OPT_SECTION, .help = "Operations" },
    { KP_OPT_STR, "metrics-host", 0, "HOST", "METRICS_HOST", NULL,
      "address for /metrics (unset: every interface)", .dest = &V.metrics_host },
    { KP_OPT_INT, "metrics-port", 0, "PORT", "METRICS_PORT", "0", "Prometheus /metrics (and /healthz), 0 = off",
      KP_OPT_INT_DEST(V.metrics_port), .min = 0, .max = 65535 },
    { KP_OPT_DUR, "stats-interval", 0, "S", "STATS_INTERVAL", "60",
      "one stats line on stderr every S s, 0 = off", .dest = &V.stats_interval_ms, .max = 86400000,
      INS_DUR_S },
    { KP_OPT_CALL, "log-level", 0, "LEVEL", "LOG_LEVEL", "info", "error, warn, info or debug",
      .dest = &V.log_level, .call = ins_opts_level },
    { KP_OPT_END },
};

static const kp_opt_prog_t ins_opts_prog = {
    .name = INS_PROG,
    .summary = "klines from Kafka (or stdin) into PostgreSQL, exactly once",
    .synopsis =
        "usage: kline-inserter [-b BROKERS] [-t TOPIC] [-g GROUP] [-d DATABASE_URL] [-i FILE|-]\n"
        "                      [--batch-rows N] [--flush-ms MS] [-X KEY=VALUE]... (--help for all)\n",
    .intro =
        "Consumes kline records from Kafka (or reads lines with -i) and writes them to PostgreSQL\n"
        "table kline_1s in batches, one transaction each: the rows (COPY straight into kline_1s\n"
        "while they are new, else COPY into a staging table and an upsert), one checkpoint row per\n"
        "symbol and partition, the rejected inputs. Kafka offsets are committed after COMMIT.\n"
        "Durations take a unit (ms, s, m, h); a bare number keeps its old meaning (MS or S).\n",
    .epilog = "Exit: 0 done (SIGTERM/SIGINT: flush, commit, exit; -i: end of input), 1 runtime "
              "failure,\n2 usage or configuration error.\n",
    .opts = ins_opts_table,
};

void ins_opts_parse(int argc, char **argv, ins_opts_t *o)
{
    static char dlq_default[512];
    kp_opt_parse(&ins_opts_prog, argc, argv, false);
    *o = ins_opts_v; /* the caller's copy: ins_opts_v is not used again */
    if (!*o->topic)
        kp_opt_usage_error(&ins_opts_prog, "the topic name is empty");
    if (!o->dlq_topic) {
        snprintf(dlq_default, sizeof dlq_default, "%s.rejected", o->topic);
        o->dlq_topic = dlq_default;
    }
    if (o->symbol_hint && !kline_symbol_valid(o->symbol_hint))
        kp_opt_usage_error(&ins_opts_prog, "--symbol %s: expected [A-Z0-9]{1,20}", o->symbol_hint);
}
