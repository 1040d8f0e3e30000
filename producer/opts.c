/* opts.c — the option table of kline-producer (flags > environment > defaults, --help,
 * --help=man from it) and the checks across options that run after it. */
#include "prod.h"
#include "opts.h"
#include "cfg.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

prod_cfg_t prod_cfg;

/* Values the table fills that prod_cfg keeps in another form (checked, split, derived). */
static struct {
    const char *symbols, *backfill, *log_level;
    long long max_frame; /* the parser writes long long; prod_cfg.max_frame is a size_t */
} opts_raw;

/* --replication, --min-insync: a count, or "auto" (0, resolved against the cluster). */
static int opts_auto_count(const char *v, void *dest, char *errbuf, size_t errlen)
{
    long long n = 0;
    if (strcmp(v, "auto") && cfg_parse_ll(v, 1, 100, &n) < 0)
        return snprintf(errbuf, errlen, "expected auto or an integer in [1, 100]"), -1;
    *(int *)dest = (int)n;
    return 0;
}

/* --shard K/N, 1 <= K <= N <= 1024 */
static int opts_shard(const char *v, void *dest, char *errbuf, size_t errlen)
{
    char k[16];
    long long kk, nn;
    const char *slash = strchr(v, '/');
    size_t kl = slash ? (size_t)(slash - v) : 0;
    if (!slash || kl == 0 || kl >= sizeof k)
        return snprintf(errbuf, errlen, "expected K/N, e.g. 1/2"), -1;
    memcpy(k, v, kl);
    k[kl] = '\0';
    if (cfg_parse_ll(slash + 1, 1, 1024, &nn) < 0 || cfg_parse_ll(k, 1, nn, &kk) < 0)
        return snprintf(errbuf, errlen, "expected K/N with 1 <= K <= N <= 1024"), -1;
    *(prod_shard_t *)dest = (prod_shard_t){ (int)kk, (int)nn };
    return 0;
}

static const kp_opt_t opts_table[] = {
    { KP_OPT_SECTION, .help = "Sources (one of)" },
    { KP_OPT_STR, "symbols", 's', "LIST", "SYMBOLS", NULL, "symbols, comma separated, any case",
      .dest = &opts_raw.symbols },
    { KP_OPT_FLAG, "all-symbols", 0, NULL, NULL, NULL, "every TRADING symbol of GET /api/v3/exchangeInfo",
      .dest = &prod_cfg.all_symbols },
    { KP_OPT_STR, "quote-asset", 0, "Q", NULL, NULL, "with --all-symbols: only symbols quoted in Q (e.g. USDT)",
      .dest = &prod_cfg.quote_asset },
    { KP_OPT_CALL, "shard", 0, "K/N", "PRODUCER_SHARD", "1/1",
      "follow only shard K of N of the symbols (FNV-1a of the name mod N):\n"
      "N producers with K = 1..N split the list between them",
      .dest = &prod_cfg.shard, .call = opts_shard },
    { KP_OPT_STR, "backfill", 0, "FROM..TO", NULL, NULL,
      "REST only: open times FROM..TO (inclusive; TO may be 'now'), then exit 0", .dest = &opts_raw.backfill },
    { KP_OPT_STR, "replay", 0, "FILE|DIR", NULL, NULL,
      "publish a data.binance.vision CSV (plain or .gz; the symbol from one -s\n"
      "or the file name SYMBOL-1s-YYYY-MM-DD.csv[.gz]) or canonical NDJSON;\n"
      "DIR: every such file in it and its subdirectories (an aggregator\n"
      "--archive), in name order, -s picks symbols; '-' = stdin",
      .dest = &prod_cfg.replay },
    /* 1e6 x real time is already "as fast as it gets"; nan/inf would reach the pacing maths */
    { KP_OPT_DOUBLE, "replay-speed", 0, "F", NULL, "0", "replay pace: 1 = real time, 0 = as fast as possible",
      .dest = &prod_cfg.replay_speed, .dmin = 0, .dmax = 1e6,
      .range_hint = "1 = real time, 0 = as fast as possible" },
    { KP_OPT_STR, "interval", 'i', "I", NULL, "1s", "kline interval", .dest = &prod_cfg.interval },

    { KP_OPT_SECTION, .help = "Output" },
    { KP_OPT_STR, "output", 'o', "-|FILE", NULL, NULL, "NDJSON to stdout ('-') or appended to FILE instead of Kafka",
      .dest = &prod_cfg.output },
    { KP_OPT_STR, "brokers", 'b', "LIST", "KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap servers",
      .dest = &prod_cfg.brokers },
    { KP_OPT_STR, "topic", 't', "NAME", "KAFKA_TOPIC", "klines", "Kafka topic", .dest = &prod_cfg.topic },
    { KP_OPT_STR, "dlq-topic", 0, "NAME", NULL, NULL, "dead-letter topic (default <topic>.rejected, '' = off)",
      .dest = &prod_cfg.dlq_topic, .flags = KP_OPT_EMPTY_OK },
    { KP_OPT_INT, "partitions", 0, "N", NULL, "6", "partitions when creating the topic",
      KP_OPT_INT_DEST(prod_cfg.partitions), .min = 1, .max = 100000 },
    { KP_OPT_CALL, "replication", 0, "N|auto", "KAFKA_REPLICATION", "auto",
      "replication factor when creating the topics; auto = min(3, brokers)",
      .dest = &prod_cfg.replication, .call = opts_auto_count },
    { KP_OPT_CALL, "min-insync", 0, "N|auto", "KAFKA_MIN_INSYNC", "auto",
      "min.insync.replicas when creating the topics; auto = replication - 1\n"
      "from replication 3 on (acks=all survives a broker down), else the broker's",
      .dest = &prod_cfg.min_insync, .call = opts_auto_count },
    { KP_OPT_INT, "retention-ms", 0, "MS", NULL, "604800000", "retention.ms when creating the topic (7 days)",
      KP_OPT_INT_DEST(prod_cfg.retention_ms), .min = -1, .max = 1LL << 62 },
    { KP_OPT_INT, "flush-timeout-ms", 0, "MS", NULL, "10000", "on exit, wait this long for Kafka acks",
      KP_OPT_INT_DEST(prod_cfg.flush_timeout_ms), .min = 0, .max = 3600000 },
    { KP_OPT_CALL, "kafka", 'X', "KEY=VALUE", NULL, NULL, "librdkafka setting, applied last (repeatable)",
      .dest = &prod_cfg.xopts, .call = kq_xopts_add },

    { KP_OPT_SECTION, .help = "Exchange" },
    { KP_OPT_STR, "ws-url", 0, "URL", "BINANCE_WS_URL", "wss://stream.binance.com:9443", "WebSocket base URL",
      .dest = &prod_cfg.ws_url },
    { KP_OPT_STR, "rest-url", 0, "URL", "BINANCE_REST_URL", "https://api.binance.com", "REST base URL",
      .dest = &prod_cfg.rest_url },
    { KP_OPT_INT, "streams-per-conn", 0, "N", NULL, "1024", "streams per WebSocket connection, 1..1024",
      KP_OPT_INT_DEST(prod_cfg.streams_per_conn), .min = 1, .max = 1024 },
    /* bare number = seconds (as before); a year is far beyond Binance's 24 h cut */
    { KP_OPT_DUR, "max-conn-age", 0, "DUR", NULL, "23h",
      "replace a connection after this long (e.g. 90s, 30m; a bare number is seconds)",
      .dest = &prod_cfg.max_conn_age_ms, .units = "ms s m h d", .bare_ms = 1000, .max = 366LL * 86400000,
      .range_hint = "e.g. 23h, 90m, 30s" },
    { KP_OPT_INT, "watchdog-secs", 0, "N", NULL, "10", "replace a connection silent this long",
      KP_OPT_INT_DEST(prod_cfg.watchdog_ms), .min = 1, .max = 86400, .scale = 1000 },
    { KP_OPT_INT, "dead-after", 0, "N", NULL, "300", "exit 1 when nothing was received for N seconds",
      KP_OPT_INT_DEST(prod_cfg.dead_after_ms), .min = 1, .max = 86400 * 30, .scale = 1000 },
    { KP_OPT_INT, "max-frame", 0, "BYTES", NULL, "65536",
      "larger messages are dead-lettered", KP_OPT_INT_DEST(opts_raw.max_frame),
      .min = 1024, .max = 64 << 20 },
    { KP_OPT_FLAG, "provisional", 0, NULL, NULL, NULL, "also publish x=false (not yet closed) klines",
      .dest = &prod_cfg.provisional },
    { KP_OPT_TIME, "since", 0, "TIME", NULL, NULL,
      "on start, backfill from TIME instead of the topic's last kline\n"
      "TIME: ISO 8601, now, epoch ms (1789499996000) or seconds with 's' (1789499996s);\n"
      "a bare number below 1e11 looks like seconds and is refused",
      .dest = &prod_cfg.since_ms },
    /* bare number = seconds, as --max-conn-age */
    { KP_OPT_DUR, "resume-horizon", 0, "DUR", NULL, "6h",
      "on start, look this far back in the topic for each symbol's last kline\n"
      "(0 = the whole topic; a bare number is seconds); a symbol not found starts live",
      .dest = &prod_cfg.resume_horizon_ms, .units = "ms s m h d", .bare_ms = 1000, .max = 3660LL * 86400000,
      .range_hint = "e.g. 6h, 2d, 0 = the whole topic" },
    { KP_OPT_INT, "rest-weight-limit", 0, "N", NULL, "5000", "pause REST when X-MBX-USED-WEIGHT-1M nears N",
      KP_OPT_INT_DEST(prod_cfg.rest_weight_limit), .min = 10, .max = 1000000 },
    { KP_OPT_INT, "rest-workers", 0, "N", NULL, "4", "parallel REST backfill workers",
      KP_OPT_INT_DEST(prod_cfg.rest_workers), .min = 1, .max = 16 },
    { KP_OPT_INT, "hold-max", 0, "N", NULL, "600", "live klines held per symbol during its backfill",
      KP_OPT_INT_DEST(prod_cfg.buffer_per_symbol), .min = 1, .max = 100000 },

    { KP_OPT_SECTION, .help = "Operations" },
    { KP_OPT_INT, "metrics-port", 0, "PORT", "METRICS_PORT", "0", "Prometheus /metrics on PORT (0 = off)",
      KP_OPT_INT_DEST(prod_cfg.metrics_port), .min = 0, .max = 65535 },
    { KP_OPT_STR, "metrics-host", 0, "HOST", "METRICS_HOST", NULL,
      "address for /metrics (default every local address)", .dest = &prod_cfg.metrics_host },
    { KP_OPT_INT, "stats-interval", 0, "N", NULL, "60", "one stats log line every N seconds (0 = off)",
      KP_OPT_INT_DEST(prod_cfg.stats_interval), .min = 0, .max = 86400 },
    { KP_OPT_STR, "log-level", 0, "L", "LOG_LEVEL", "info", "error, warn, info, debug",
      .dest = &opts_raw.log_level },
    { KP_OPT_END },
};

const kp_opt_prog_t opts_prog = {
    .name = PROD_NAME,
    .summary = "Binance klines (WebSocket + REST gap backfill) into Kafka, gap-free",
    .synopsis =
        "usage: kline-producer [-s SYMBOLS | --all-symbols] [-i INTERVAL] [-o - | -t TOPIC] [options]\n"
        "       kline-producer -s SYMBOLS --backfill FROM..TO [options]\n"
        "       kline-producer --replay FILE|DIR [-s SYMBOL] [--replay-speed F] [options]\n",
    .epilog = "Exit: 0 done (signal, end of --backfill/--replay), 1 runtime failure, 2 usage error.\n",
    .opts = opts_table,
};

#define USAGE(...) kp_opt_usage_error(&opts_prog, __VA_ARGS__)

/* SYMBOLS → prod_cfg.symbols, upper case, each a valid Binance name. */
static void opts_symbols(void)
{
    if (!opts_raw.symbols)
        return;
    prod_cfg.nsymbols = cfg_split_list(opts_raw.symbols, &prod_cfg.symbols);
    if (prod_cfg.nsymbols < 0)
        USAGE("out of memory");
    for (int i = 0; i < prod_cfg.nsymbols; i++) {
        for (char *p = prod_cfg.symbols[i]; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!kline_symbol_valid(prod_cfg.symbols[i]))
            USAGE("symbol %s: not a Binance symbol ([A-Z0-9], at most 20 characters)", prod_cfg.symbols[i]);
    }
}

/* --backfill FROM..TO (TO empty = now) → bf_from, bf_to, bf_to_now. */
static void opts_backfill(const char *v)
{
    char err[256], from[64];
    const char *dots = strstr(v, "..");
    if (!dots || (size_t)(dots - v) >= sizeof from)
        USAGE("--backfill %s: expected FROM..TO", v);
    memcpy(from, v, (size_t)(dots - v));
    from[dots - v] = '\0';
    const char *to = dots[2] ? dots + 2 : "now";
    prod_cfg.bf_to_now = strcmp(to, "now") == 0;
    if (cfg_parse_time_ms(from, &prod_cfg.bf_from, err, sizeof err) < 0)
        USAGE("--backfill %s: FROM %s: %s", v, from, err);
    if (cfg_parse_time_ms(to, &prod_cfg.bf_to, err, sizeof err) < 0)
        USAGE("--backfill %s: TO %s: %s", v, to, err);
    if (prod_cfg.bf_to < prod_cfg.bf_from)
        USAGE("--backfill %s: TO is before FROM", v);
    prod_cfg.backfill_mode = true;
}

/* Which source: exactly one of symbols, --all-symbols, --replay (and what goes with it). */
static void opts_check_sources(void)
{
    if (prod_cfg.replay && opts_raw.backfill)
        USAGE("--replay and --backfill exclude each other");
    if (prod_cfg.all_symbols && prod_cfg.nsymbols > 0)
        USAGE("give either --symbols/SYMBOLS or --all-symbols");
    if (!prod_cfg.replay && !prod_cfg.all_symbols && prod_cfg.nsymbols <= 0)
        USAGE("no symbols: use -s SYMBOLS (or SYMBOLS=...) or --all-symbols");
    if (prod_cfg.quote_asset && !prod_cfg.all_symbols)
        USAGE("--quote-asset only makes sense with --all-symbols");
}

/* The topics derived from --topic: <topic>.rejected unless --dlq-topic, and <topic>.resume. */
static void opts_topics(void)
{
    static char dlqbuf[512], resumebuf[512];
    if (!*prod_cfg.topic)
        USAGE("the topic name is empty");
    if (!prod_cfg.dlq_topic) {
        snprintf(dlqbuf, sizeof dlqbuf, "%s.rejected", prod_cfg.topic);
        prod_cfg.dlq_topic = dlqbuf;
    }
    snprintf(resumebuf, sizeof resumebuf, "%s.resume", prod_cfg.topic);
    prod_cfg.resume_topic = resumebuf;
    /* more in-sync replicas than replicas: every acks=all write would be refused */
    if (prod_cfg.replication && prod_cfg.min_insync > prod_cfg.replication)
        USAGE("--min-insync %d is more than --replication %d", prod_cfg.min_insync, prod_cfg.replication);
}

int opts_parse(int argc, char **argv, int *log_level)
{
    prod_cfg.since_ms = PROD_NONE; /* --since has no default: not given */
    kp_opt_parse(&opts_prog, argc, argv, false);
    prod_cfg.max_frame = (size_t)opts_raw.max_frame;
    *log_level = log_level_parse(opts_raw.log_level);
    if (*log_level < 0)
        USAGE("--log-level %s: expected error, warn, info or debug", opts_raw.log_level);
    if (prod_cfg.max_conn_age_ms < 1000)
        USAGE("--max-conn-age %lld ms: at least 1s", (long long)prod_cfg.max_conn_age_ms);
    if (!kline_interval_valid(prod_cfg.interval) || kline_interval_ms(prod_cfg.interval) <= 0)
        USAGE("--interval %s: not a fixed-length Binance kline interval", prod_cfg.interval);
    prod_cfg.interval_ms = kline_interval_ms(prod_cfg.interval);
    opts_symbols();
    opts_check_sources();
    opts_topics();
    if (prod_cfg.output && !*prod_cfg.output)
        USAGE("--output: empty path");
    if (opts_raw.backfill)
        opts_backfill(opts_raw.backfill);
    return 0;
}
