/* opts.c — command line and environment → prod_cfg (flags > environment > defaults). */
#include "prod.h"
#include "opts.h"
#include "cfg.h"
#include "log.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

prod_cfg_t prod_cfg;

static const char opts_synopsis[] =
    "usage: kline-producer [-s SYMBOLS | --all-symbols] [-i INTERVAL] [-o - | -t TOPIC] [options]\n"
    "       kline-producer -s SYMBOLS --backfill FROM..TO [options]\n"
    "       kline-producer --replay FILE [-s SYMBOL] [--replay-speed F] [options]\n"
    "Try 'kline-producer --help' for more.\n";

static const char opts_help[] =
    "kline-producer — Binance klines (WebSocket + REST gap backfill) into Kafka, gap-free.\n"
    "\n"
    "Sources (one of):\n"
    "  -s, --symbols LIST        symbols, comma separated, any case             [SYMBOLS]\n"
    "      --all-symbols         every TRADING symbol of GET /api/v3/exchangeInfo\n"
    "      --quote-asset Q       with --all-symbols: only symbols quoted in Q (e.g. USDT)\n"
    "      --backfill FROM..TO   REST only: open times FROM..TO (inclusive; TO may be 'now'), then exit 0\n"
    "      --replay FILE         publish a data.binance.vision CSV (needs one -s) or canonical NDJSON; '-' = stdin\n"
    "      --replay-speed F      replay pace: 1 = real time, 0 = as fast as possible (default 0, at most 1e6)\n"
    "  -i, --interval I          kline interval (default 1s)\n"
    "\n"
    "Output:\n"
    "  -o, --output -|FILE       NDJSON to stdout ('-') or appended to FILE instead of Kafka\n"
    "  -b, --brokers LIST        Kafka bootstrap servers (default 127.0.0.1:9092)       [KAFKA_BROKERS]\n"
    "  -t, --topic NAME          Kafka topic (default klines)                            [KAFKA_TOPIC]\n"
    "      --dlq-topic NAME      dead-letter topic (default <topic>.rejected, '' = off)\n"
    "      --partitions N        partitions when creating the topic (default 6)\n"
    "      --replication N       replication factor when creating the topic (default 1)\n"
    "      --retention-ms MS     retention.ms when creating the topic (default 604800000 = 7 days)\n"
    "      --flush-timeout-ms MS on exit, wait this long for Kafka acks (default 10000)\n"
    "  -X  KEY=VALUE             librdkafka setting, applied last (repeatable)\n"
    "\n"
    "Exchange:\n"
    "      --ws-url URL          WebSocket base URL (default wss://stream.binance.com:9443)  [BINANCE_WS_URL]\n"
    "      --rest-url URL        REST base URL (default https://api.binance.com)            [BINANCE_REST_URL]\n"
    "      --streams-per-conn N  streams per WebSocket connection, 1..1024 (default 1024)\n"
    "      --max-conn-age DUR    replace a connection after this long (default 23h; e.g. 90s, 30m)\n"
    "      --watchdog-secs N     replace a connection silent this long (default 10)\n"
    "      --dead-after N        exit 1 when nothing was received for N seconds (default 300)\n"
    "      --max-frame BYTES     larger messages are dead-lettered (default 65536)\n"
    "      --provisional         also publish x=false (not yet closed) klines\n"
    "      --since TIME          on start, backfill from TIME instead of the topic's last kline\n"
    "                            TIME: ISO 8601, now, epoch ms (1789499996000) or seconds with 's' (1789499996s);\n"
    "                            a bare number below 1e11 looks like seconds and is refused\n"
    "      --resume-horizon DUR  on start, look this far back in the topic for each symbol's last kline\n"
    "                            (default 6h, 0 = the whole topic); a symbol not found starts live\n"
    "      --rest-weight-limit N pause REST when X-MBX-USED-WEIGHT-1M nears N (default 5000)\n"
    "      --rest-workers N      parallel REST backfill workers (default 4)\n"
    "      --hold-max N          live klines held per symbol during its backfill (default 600)\n"
    "\n"
    "Operations:\n"
    "      --metrics-port PORT   Prometheus /metrics on PORT (default 0 = off)        [METRICS_PORT]\n"
    "      --stats-interval N    one stats log line every N seconds (default 60, 0 = off)\n"
    "      --log-level L         error, warn, info, debug (default info)              [LOG_LEVEL]\n"
    "  -h, --help                this help\n"
    "  -V, --version             versions of the program and its libraries\n"
    "\n"
    "Exit: 0 done (signal, end of --backfill/--replay), 1 runtime failure, 2 usage error.\n";

enum {
    O_ALL = 256, O_QUOTE, O_BACKFILL, O_REPLAY, O_REPLAY_SPEED, O_DLQ, O_PARTITIONS, O_REPLICATION,
    O_RETENTION, O_FLUSH, O_WS_URL, O_REST_URL, O_SPC, O_MAX_AGE, O_WATCHDOG, O_DEAD, O_MAX_FRAME,
    O_PROVISIONAL, O_SINCE, O_HORIZON, O_WEIGHT, O_WORKERS, O_HOLD, O_METRICS, O_STATS, O_LOGLEVEL,
};

static const struct option opts_long[] = {
    { "symbols", required_argument, NULL, 's' },
    { "all-symbols", no_argument, NULL, O_ALL },
    { "quote-asset", required_argument, NULL, O_QUOTE },
    { "backfill", required_argument, NULL, O_BACKFILL },
    { "replay", required_argument, NULL, O_REPLAY },
    { "replay-speed", required_argument, NULL, O_REPLAY_SPEED },
    { "interval", required_argument, NULL, 'i' },
    { "output", required_argument, NULL, 'o' },
    { "brokers", required_argument, NULL, 'b' },
    { "topic", required_argument, NULL, 't' },
    { "dlq-topic", required_argument, NULL, O_DLQ },
    { "partitions", required_argument, NULL, O_PARTITIONS },
    { "replication", required_argument, NULL, O_REPLICATION },
    { "retention-ms", required_argument, NULL, O_RETENTION },
    { "flush-timeout-ms", required_argument, NULL, O_FLUSH },
    { "ws-url", required_argument, NULL, O_WS_URL },
    { "rest-url", required_argument, NULL, O_REST_URL },
    { "streams-per-conn", required_argument, NULL, O_SPC },
    { "max-conn-age", required_argument, NULL, O_MAX_AGE },
    { "watchdog-secs", required_argument, NULL, O_WATCHDOG },
    { "dead-after", required_argument, NULL, O_DEAD },
    { "max-frame", required_argument, NULL, O_MAX_FRAME },
    { "provisional", no_argument, NULL, O_PROVISIONAL },
    { "since", required_argument, NULL, O_SINCE },
    { "resume-horizon", required_argument, NULL, O_HORIZON },
    { "rest-weight-limit", required_argument, NULL, O_WEIGHT },
    { "rest-workers", required_argument, NULL, O_WORKERS },
    { "hold-max", required_argument, NULL, O_HOLD },
    { "metrics-port", required_argument, NULL, O_METRICS },
    { "stats-interval", required_argument, NULL, O_STATS },
    { "log-level", required_argument, NULL, O_LOGLEVEL },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

#define USAGE(...) cfg_usage_error(PROD_NAME, opts_synopsis, __VA_ARGS__)

static long long opts_ll(const char *name, const char *v, long long min, long long max)
{
    long long out;
    if (cfg_parse_ll(v, min, max, &out) < 0)
        USAGE("%s %s: expected an integer in [%lld, %lld]", name, v, min, max);
    return out;
}

static void opts_defaults(void)
{
    prod_cfg.brokers = cfg_env("KAFKA_BROKERS", "127.0.0.1:9092");
    prod_cfg.topic = cfg_env("KAFKA_TOPIC", "klines");
    prod_cfg.dlq_topic = NULL; /* derived from the topic after parsing */
    prod_cfg.interval = "1s";
    prod_cfg.ws_url = cfg_env("BINANCE_WS_URL", "wss://stream.binance.com:9443");
    prod_cfg.rest_url = cfg_env("BINANCE_REST_URL", "https://api.binance.com");
    prod_cfg.streams_per_conn = 1024;
    prod_cfg.partitions = 6;
    prod_cfg.replication = 1;
    prod_cfg.retention_ms = 7LL * 24 * 3600 * 1000;
    prod_cfg.max_conn_age_ms = 23LL * 3600 * 1000;
    prod_cfg.watchdog_ms = 10000;
    prod_cfg.dead_after_ms = 300000;
    prod_cfg.rest_weight_limit = 5000;
    prod_cfg.rest_workers = 4;
    prod_cfg.max_frame = 64 * 1024;
    prod_cfg.flush_timeout_ms = 10000;
    prod_cfg.metrics_port = (int)cfg_env_ll("METRICS_PORT", 0, 0, 65535);
    prod_cfg.stats_interval = 60;
    prod_cfg.since_ms = PROD_NONE;
    prod_cfg.resume_horizon_ms = 6LL * 3600 * 1000;
    prod_cfg.replay_speed = 0;
    prod_cfg.buffer_per_symbol = 600;
}

int opts_parse(int argc, char **argv, int *log_level)
{
    char err[256];
    const char *symbols = cfg_env("SYMBOLS", NULL);
    const char *dlq = NULL;
    bool dlq_given = false;
    const char *backfill = NULL, *since = NULL;
    const char *lvl = cfg_env("LOG_LEVEL", "info");
    opts_defaults();
    int c;
    while ((c = getopt_long(argc, argv, "s:i:o:b:t:X:hV", opts_long, NULL)) != -1) {
        switch (c) {
        case 's': symbols = optarg; break;
        case O_ALL: prod_cfg.all_symbols = true; break;
        case O_QUOTE: prod_cfg.quote_asset = optarg; break;
        case O_BACKFILL: backfill = optarg; break;
        case O_REPLAY: prod_cfg.replay = optarg; break;
        case O_REPLAY_SPEED: {
            /* 1e6 x real time is already "as fast as it gets"; nan/inf would reach the pacing maths */
            if (cfg_parse_double(optarg, 0, 1e6, &prod_cfg.replay_speed, err, sizeof err) < 0)
                USAGE("--replay-speed %s: %s (1 = real time, 0 = as fast as possible)", optarg, err);
            break;
        }
        case 'i': prod_cfg.interval = optarg; break;
        case 'o': prod_cfg.output = optarg; break;
        case 'b': prod_cfg.brokers = optarg; break;
        case 't': prod_cfg.topic = optarg; break;
        case O_DLQ: dlq = optarg; dlq_given = true; break;
        case O_PARTITIONS: prod_cfg.partitions = (int)opts_ll("--partitions", optarg, 1, 100000); break;
        case O_REPLICATION: prod_cfg.replication = (int)opts_ll("--replication", optarg, 1, 100); break;
        case O_RETENTION: prod_cfg.retention_ms = opts_ll("--retention-ms", optarg, -1, 1LL << 62); break;
        case O_FLUSH: prod_cfg.flush_timeout_ms = (int)opts_ll("--flush-timeout-ms", optarg, 0, 3600000); break;
        case O_WS_URL: prod_cfg.ws_url = optarg; break;
        case O_REST_URL: prod_cfg.rest_url = optarg; break;
        case O_SPC: prod_cfg.streams_per_conn = (int)opts_ll("--streams-per-conn", optarg, 1, 1024); break;
        case O_MAX_AGE:
            /* bare number = seconds (as before); a year is far beyond Binance's 24 h cut */
            if (cfg_parse_duration_ms(optarg, "ms s m h d", 1000, 366LL * 86400000, &prod_cfg.max_conn_age_ms, err,
                                      sizeof err) < 0)
                USAGE("--max-conn-age %s: %s (e.g. 23h, 90m, 30s)", optarg, err);
            if (prod_cfg.max_conn_age_ms < 1000)
                USAGE("--max-conn-age %s: at least 1s", optarg);
            break;
        case O_WATCHDOG: prod_cfg.watchdog_ms = 1000 * opts_ll("--watchdog-secs", optarg, 1, 86400); break;
        case O_DEAD: prod_cfg.dead_after_ms = 1000 * opts_ll("--dead-after", optarg, 1, 86400 * 30); break;
        case O_MAX_FRAME: prod_cfg.max_frame = (size_t)opts_ll("--max-frame", optarg, 1024, 64 << 20); break;
        case O_PROVISIONAL: prod_cfg.provisional = true; break;
        case O_SINCE: since = optarg; break;
        case O_HORIZON:
            /* bare number = seconds, as --max-conn-age */
            if (cfg_parse_duration_ms(optarg, "ms s m h d", 1000, 3660LL * 86400000, &prod_cfg.resume_horizon_ms,
                                      err, sizeof err) < 0)
                USAGE("--resume-horizon %s: %s (e.g. 6h, 2d, 0 = the whole topic)", optarg, err);
            break;
        case O_WEIGHT: prod_cfg.rest_weight_limit = (int)opts_ll("--rest-weight-limit", optarg, 10, 1000000); break;
        case O_WORKERS: prod_cfg.rest_workers = (int)opts_ll("--rest-workers", optarg, 1, 16); break;
        case O_HOLD: prod_cfg.buffer_per_symbol = (int)opts_ll("--hold-max", optarg, 1, 100000); break;
        case O_METRICS: prod_cfg.metrics_port = (int)opts_ll("--metrics-port", optarg, 0, 65535); break;
        case O_STATS: prod_cfg.stats_interval = (int)opts_ll("--stats-interval", optarg, 0, 86400); break;
        case O_LOGLEVEL: lvl = optarg; break;
        case 'X':
            if (kq_xopts_add(&prod_cfg.xopts, optarg, err, sizeof err) < 0)
                USAGE("%s", err);
            break;
        case 'h': fputs(opts_help, stdout); exit(0);
        case 'V': cfg_print_versions(stdout, PROD_NAME); exit(0);
        default: USAGE("unknown or incomplete option");
        }
    }
    if (optind < argc)
        USAGE("unexpected argument: %s", argv[optind]);
    *log_level = log_level_parse(lvl);
    if (*log_level < 0)
        USAGE("--log-level %s: expected error, warn, info or debug", lvl);
    if (!kline_interval_valid(prod_cfg.interval) || kline_interval_ms(prod_cfg.interval) <= 0)
        USAGE("--interval %s: not a fixed-length Binance kline interval", prod_cfg.interval);
    prod_cfg.interval_ms = kline_interval_ms(prod_cfg.interval);
    if (symbols) {
        prod_cfg.nsymbols = cfg_split_list(symbols, &prod_cfg.symbols);
        if (prod_cfg.nsymbols < 0)
            USAGE("out of memory");
        for (int i = 0; i < prod_cfg.nsymbols; i++) {
            for (char *p = prod_cfg.symbols[i]; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            if (!kline_symbol_valid(prod_cfg.symbols[i]))
                USAGE("symbol %s: not a Binance symbol ([A-Z0-9], at most 20 characters)", prod_cfg.symbols[i]);
        }
    }
    if (prod_cfg.replay && backfill)
        USAGE("--replay and --backfill exclude each other");
    if (prod_cfg.all_symbols && prod_cfg.nsymbols > 0)
        USAGE("give either --symbols/SYMBOLS or --all-symbols");
    if (!prod_cfg.replay && !prod_cfg.all_symbols && prod_cfg.nsymbols <= 0)
        USAGE("no symbols: use -s SYMBOLS (or SYMBOLS=...) or --all-symbols");
    if (prod_cfg.quote_asset && !prod_cfg.all_symbols)
        USAGE("--quote-asset only makes sense with --all-symbols");
    if (!*prod_cfg.topic)
        USAGE("the topic name is empty");
    if (prod_cfg.output && !*prod_cfg.output)
        USAGE("--output: empty path");
    if (dlq_given)
        prod_cfg.dlq_topic = dlq;
    else {
        static char dlqbuf[512];
        snprintf(dlqbuf, sizeof dlqbuf, "%s.rejected", prod_cfg.topic);
        prod_cfg.dlq_topic = dlqbuf;
    }
    static char resumebuf[512];
    snprintf(resumebuf, sizeof resumebuf, "%s.resume", prod_cfg.topic);
    prod_cfg.resume_topic = resumebuf;
    if (since && cfg_parse_time_ms(since, &prod_cfg.since_ms, err, sizeof err) < 0)
        USAGE("--since %s: %s", since, err);
    if (backfill) {
        const char *dots = strstr(backfill, "..");
        char from[64];
        if (!dots || (size_t)(dots - backfill) >= sizeof from)
            USAGE("--backfill %s: expected FROM..TO", backfill);
        memcpy(from, backfill, (size_t)(dots - backfill));
        from[dots - backfill] = '\0';
        const char *to = dots[2] ? dots + 2 : "now";
        prod_cfg.bf_to_now = strcmp(to, "now") == 0;
        if (cfg_parse_time_ms(from, &prod_cfg.bf_from, err, sizeof err) < 0)
            USAGE("--backfill %s: FROM %s: %s", backfill, from, err);
        if (cfg_parse_time_ms(to, &prod_cfg.bf_to, err, sizeof err) < 0)
            USAGE("--backfill %s: TO %s: %s", backfill, to, err);
        if (prod_cfg.bf_to < prod_cfg.bf_from)
            USAGE("--backfill %s: TO is before FROM", backfill);
        prod_cfg.backfill_mode = true;
    }
    if (!prod_cfg.output)
        prod_cfg.output = NULL;
    return 0;
}

const char *opts_synopsis_text(void) { return opts_synopsis; }
