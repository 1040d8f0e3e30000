/* kline-streamer — live klines to browsers over WebSocket, with history, indicators and
 * alerts, and the web page that shows them. See docs/streamer.md. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "server.h"
#include "streamer.h"

static const char *st_synopsis =
    "usage: kline-streamer [--listen HOST:PORT] [-i FILE|-] [-b BROKERS] [-t TOPIC] [OPTIONS]";

static void st_usage(FILE *out)
{
    fprintf(out,
        "%s\n"
        "Streams live klines from Kafka (or NDJSON on stdin) to browsers over WebSocket at /ws,\n"
        "serves the web page, /api/klines history from PostgreSQL, /api/info, /healthz, /metrics.\n\n"
        "  -l, --listen HOST:PORT     listen address (STREAMER_LISTEN, default 0.0.0.0:8080)\n"
        "  -i, --input FILE           read NDJSON klines from FILE ('-' = stdin) instead of Kafka\n"
        "  -b, --brokers LIST         Kafka bootstrap servers (KAFKA_BROKERS, default 127.0.0.1:9092)\n"
        "  -t, --topic NAME           Kafka topic (KAFKA_TOPIC, default klines)\n"
        "  -X, --kafka KEY=VALUE      librdkafka setting, repeatable, applied last\n"
        "  -d, --database-url URL     PostgreSQL for /api/klines (DATABASE_URL, default libpq PG* env)\n"
        "      --db-workers N         threads answering /api/klines (STREAMER_DB_WORKERS, default 2)\n"
        "  -w, --web-root DIR         static page directory (STREAMER_WEB_ROOT, default web/dist of the\n"
        "                             source tree, or PREFIX/share/klinepipe/web when installed)\n"
        "      --sma N                SMA length in closed 1m bars (STREAMER_SMA, default 5)\n"
        "      --stale-secs N         mark a symbol stale after N s without update (STREAMER_STALE_SECS, default 60)\n"
        "      --max-msg BYTES        largest client message (STREAMER_MAX_MSG, default 4096)\n"
        "      --max-rate N           client messages per second (STREAMER_MAX_RATE, default 20)\n"
        "      --max-subs N           symbols per connection (STREAMER_MAX_SUBS, default 256; \"*\" = all)\n"
        "      --max-clients N        WebSocket connections (STREAMER_MAX_CLIENTS, default 20000)\n"
        "      --max-symbols N        symbols clients may name (STREAMER_MAX_SYMBOLS, default 10000)\n"
        "      --queue-max N          pending distinct updates per client before it is cut off\n"
        "                             (STREAMER_QUEUE_MAX, default 8192)\n"
        "      --max-pending-bytes B  bytes queued for one client (replies, snapshots, updates) before\n"
        "                             it is cut off with 4009 (STREAMER_MAX_PENDING_BYTES, default 8 MiB)\n"
        "      --max-placeholders N   names that have not traded yet one connection may follow\n"
        "                             (STREAMER_MAX_PLACEHOLDERS, default 64)\n"
        "      --catchup-secs S       Kafka: on start, read back the last S seconds of every partition\n"
        "                             so every symbol has its latest kline (STREAMER_CATCHUP_SECS,\n"
        "                             default 120, 0 = live records only)\n"
        "      --slow-client-ms MS    cut off a client that makes no progress for MS\n"
        "                             (STREAMER_SLOW_CLIENT_MS, default 5000)\n"
        "      --allow-origin LIST    comma-separated allowed Origin values (STREAMER_ALLOW_ORIGIN, default any)\n"
        "      --tls-cert FILE        serve HTTPS/WSS with this certificate (STREAMER_TLS_CERT)\n"
        "      --tls-key FILE         private key for --tls-cert (STREAMER_TLS_KEY)\n"
        "      --badge TEXT           show a badge on the page, e.g. \"simulated market\" (STREAMER_BADGE;\n"
        "                             KP_SIMULATED=1 means --badge \"simulated market\")\n"
        "      --event-loop uv|poll   uv: libuv (epoll); poll: lws's own poll() loop, about twice the\n"
        "                             CPU with many connections (STREAMER_EVENT_LOOP, default uv)\n"
        "      --coalesce-ms MS       apply feed records at most once per MS, so a busy feed costs one\n"
        "                             service-loop pass per window (STREAMER_COALESCE_MS, default\n"
        "                             0 = off with --event-loop uv, 5 with poll)\n"
        "      --stats-interval SECS  periodic stats log line (STATS_INTERVAL, default 60, 0 = off)\n"
        "      --log-level LEVEL      error, warn, info, debug (LOG_LEVEL, default info)\n"
        "  -h, --help                 this help\n"
        "  -V, --version              program and library versions\n",
        st_synopsis);
}

enum {
    OPT_SMA = 256, OPT_STALE, OPT_MAX_MSG, OPT_MAX_RATE, OPT_MAX_SUBS, OPT_MAX_CLIENTS,
    OPT_MAX_SYMBOLS, OPT_QUEUE_MAX, OPT_SLOW, OPT_ORIGIN, OPT_CERT, OPT_KEY, OPT_BADGE,
    OPT_STATS, OPT_LOG, OPT_DB_WORKERS, OPT_COALESCE, OPT_EVLOOP, OPT_PENDING_BYTES,
    OPT_PLACEHOLDERS, OPT_CATCHUP,
};

static int st_int_opt(const char *name, const char *v, long long min, long long max)
{
    long long x;
    if (cfg_parse_ll(v, min, max, &x) < 0)
        cfg_usage_error(ST_PROG, st_synopsis, "%s: expected an integer in [%lld, %lld], got '%s'",
                        name, min, max, v);
    return (int)x;
}

/* First existing candidate: the source tree's web/dist (bin/ or build/<mode>/bin/ next to it),
 * then an installed PREFIX/share/klinepipe/web. */
static void st_default_web_root(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    snprintf(out, len, "web/dist");
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    static const char *rel[] = {"/../web/dist", "/../../../web/dist", "/../share/klinepipe/web"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 32];
        struct stat sb;
        snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
        if (stat(cand, &sb) == 0 && S_ISDIR(sb.st_mode) && strlen(cand) < len) {
            memcpy(out, cand, strlen(cand) + 1);
            return;
        }
    }
}

static void st_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot raise the open files limit");
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_debug("open files limit: %llu", (unsigned long long)rl.rlim_cur);
}

static void st_parse(int argc, char **argv, struct st_config *c)
{
    char err[256];
    memset(c, 0, sizeof *c);
    const char *listen = cfg_env("STREAMER_LISTEN", "0.0.0.0:8080");
    c->brokers = cfg_env("KAFKA_BROKERS", "127.0.0.1:9092");
    c->topic = cfg_env("KAFKA_TOPIC", "klines");
    c->database_url = cfg_env("DATABASE_URL", NULL);
    const char *web = cfg_env("STREAMER_WEB_ROOT", NULL);
    c->sma_n = (int)cfg_env_ll("STREAMER_SMA", 5, 1, 1000);
    c->stale_secs = (int)cfg_env_ll("STREAMER_STALE_SECS", 60, 1, 86400);
    c->max_msg = (int)cfg_env_ll("STREAMER_MAX_MSG", 4096, 64, 1 << 20);
    c->max_rate = (int)cfg_env_ll("STREAMER_MAX_RATE", 20, 1, 100000);
    c->max_subs = (int)cfg_env_ll("STREAMER_MAX_SUBS", 256, 1, 100000);
    c->max_clients = (int)cfg_env_ll("STREAMER_MAX_CLIENTS", 20000, 1, 1000000);
    c->max_symbols = (int)cfg_env_ll("STREAMER_MAX_SYMBOLS", 10000, 1, 1000000);
    c->queue_max = (int)cfg_env_ll("STREAMER_QUEUE_MAX", 8192, 1, 1000000);
    c->max_pending_bytes = cfg_env_ll("STREAMER_MAX_PENDING_BYTES", 8 << 20, 64 << 10, 1LL << 40);
    c->max_placeholders = (int)cfg_env_ll("STREAMER_MAX_PLACEHOLDERS", 64, 0, 1000000);
    c->catchup_secs = (int)cfg_env_ll("STREAMER_CATCHUP_SECS", 120, 0, 7 * 86400);
    c->slow_client_ms = (int)cfg_env_ll("STREAMER_SLOW_CLIENT_MS", 5000, 100, 3600000);
    c->stats_interval = (int)cfg_env_ll("STATS_INTERVAL", 60, 0, 86400);
    c->db_workers = (int)cfg_env_ll("STREAMER_DB_WORKERS", 2, 1, 8);
    c->coalesce_ms = (int)cfg_env_ll("STREAMER_COALESCE_MS", -1, 0, 1000); /* -1: by loop */
    const char *origins = cfg_env("STREAMER_ALLOW_ORIGIN", NULL);
    c->tls_cert = cfg_env("STREAMER_TLS_CERT", NULL);
    c->tls_key = cfg_env("STREAMER_TLS_KEY", NULL);
    c->badge = cfg_env("STREAMER_BADGE", NULL);
    if (!c->badge && !strcmp(cfg_env("KP_SIMULATED", "0"), "1"))
        c->badge = "simulated market";
    const char *loglevel = cfg_env("LOG_LEVEL", "info");
    const char *evloop = cfg_env("STREAMER_EVENT_LOOP", "uv");

    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},      {"input", required_argument, 0, 'i'},
        {"brokers", required_argument, 0, 'b'},     {"topic", required_argument, 0, 't'},
        {"kafka", required_argument, 0, 'X'},       {"database-url", required_argument, 0, 'd'},
        {"web-root", required_argument, 0, 'w'},    {"sma", required_argument, 0, OPT_SMA},
        {"stale-secs", required_argument, 0, OPT_STALE},
        {"max-msg", required_argument, 0, OPT_MAX_MSG},
        {"max-rate", required_argument, 0, OPT_MAX_RATE},
        {"max-subs", required_argument, 0, OPT_MAX_SUBS},
        {"max-clients", required_argument, 0, OPT_MAX_CLIENTS},
        {"max-symbols", required_argument, 0, OPT_MAX_SYMBOLS},
        {"queue-max", required_argument, 0, OPT_QUEUE_MAX},
        {"slow-client-ms", required_argument, 0, OPT_SLOW},
        {"max-pending-bytes", required_argument, 0, OPT_PENDING_BYTES},
        {"max-placeholders", required_argument, 0, OPT_PLACEHOLDERS},
        {"catchup-secs", required_argument, 0, OPT_CATCHUP},
        {"allow-origin", required_argument, 0, OPT_ORIGIN},
        {"tls-cert", required_argument, 0, OPT_CERT},
        {"tls-key", required_argument, 0, OPT_KEY},
        {"badge", required_argument, 0, OPT_BADGE},
        {"stats-interval", required_argument, 0, OPT_STATS},
        {"log-level", required_argument, 0, OPT_LOG},
        {"db-workers", required_argument, 0, OPT_DB_WORKERS},
        {"coalesce-ms", required_argument, 0, OPT_COALESCE},
        {"event-loop", required_argument, 0, OPT_EVLOOP},
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "l:i:b:t:X:d:w:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen = optarg; break;
        case 'i': c->input = optarg; break;
        case 'b': c->brokers = optarg; break;
        case 't': c->topic = optarg; break;
        case 'X':
            if (kq_xopts_add(&c->xopts, optarg, err, sizeof err) < 0)
                cfg_usage_error(ST_PROG, st_synopsis, "-X %s", err);
            break;
        case 'd': c->database_url = optarg; break;
        case 'w': web = optarg; break;
        case OPT_SMA: c->sma_n = st_int_opt("--sma", optarg, 1, 1000); break;
        case OPT_STALE: c->stale_secs = st_int_opt("--stale-secs", optarg, 1, 86400); break;
        case OPT_MAX_MSG: c->max_msg = st_int_opt("--max-msg", optarg, 64, 1 << 20); break;
        case OPT_MAX_RATE: c->max_rate = st_int_opt("--max-rate", optarg, 1, 100000); break;
        case OPT_MAX_SUBS: c->max_subs = st_int_opt("--max-subs", optarg, 1, 100000); break;
        case OPT_MAX_CLIENTS: c->max_clients = st_int_opt("--max-clients", optarg, 1, 1000000); break;
        case OPT_MAX_SYMBOLS: c->max_symbols = st_int_opt("--max-symbols", optarg, 1, 1000000); break;
        case OPT_QUEUE_MAX: c->queue_max = st_int_opt("--queue-max", optarg, 1, 1000000); break;
        case OPT_PENDING_BYTES:
            if (cfg_parse_ll(optarg, 64 << 10, 1LL << 40, &c->max_pending_bytes) < 0)
                cfg_usage_error(ST_PROG, st_synopsis, "--max-pending-bytes: expected an integer in "
                                "[65536, 2^40], got '%s'", optarg);
            break;
        case OPT_PLACEHOLDERS: c->max_placeholders = st_int_opt("--max-placeholders", optarg, 0, 1000000); break;
        case OPT_CATCHUP: c->catchup_secs = st_int_opt("--catchup-secs", optarg, 0, 7 * 86400); break;
        case OPT_SLOW: c->slow_client_ms = st_int_opt("--slow-client-ms", optarg, 100, 3600000); break;
        case OPT_ORIGIN: origins = optarg; break;
        case OPT_CERT: c->tls_cert = optarg; break;
        case OPT_KEY: c->tls_key = optarg; break;
        case OPT_BADGE: c->badge = *optarg ? optarg : NULL; break;
        case OPT_STATS: c->stats_interval = st_int_opt("--stats-interval", optarg, 0, 86400); break;
        case OPT_LOG: loglevel = optarg; break;
        case OPT_DB_WORKERS: c->db_workers = st_int_opt("--db-workers", optarg, 1, 8); break;
        case OPT_EVLOOP: evloop = optarg; break;
        case OPT_COALESCE: c->coalesce_ms = st_int_opt("--coalesce-ms", optarg, 0, 1000); break;
        case 'h': st_usage(stdout); exit(0);
        case 'V': cfg_print_versions(stdout, ST_PROG); exit(0);
        default: cfg_usage_error(ST_PROG, st_synopsis, "unknown option (see --help)");
        }
    }
    if (optind < argc)
        cfg_usage_error(ST_PROG, st_synopsis, "unexpected argument '%s'", argv[optind]);
    if (strcmp(evloop, "uv") && strcmp(evloop, "poll"))
        cfg_usage_error(ST_PROG, st_synopsis, "--event-loop: expected uv or poll, got '%s'", evloop);
    c->event_loop_uv = !strcmp(evloop, "uv");
    /* The window bounds poll()'s O(all connections) passes; an epoll pass costs only the
     * ready sockets, so with uv records are applied at once (bench_streamer: p50 and p99
     * halved at 10,000 clients for +7 % CPU). */
    if (c->coalesce_ms < 0)
        c->coalesce_ms = c->event_loop_uv ? 0 : 5;
    int lvl = log_level_parse(loglevel);
    if (lvl < 0)
        cfg_usage_error(ST_PROG, st_synopsis, "unknown log level '%s'", loglevel);
    log_init(ST_PROG, lvl);
    if (cfg_parse_hostport(listen, c->listen_host, sizeof c->listen_host, &c->port) < 0)
        cfg_usage_error(ST_PROG, st_synopsis, "--listen: expected HOST:PORT, got '%s'", listen);
    if (!c->listen_host[0])
        snprintf(c->listen_host, sizeof c->listen_host, "0.0.0.0");
    if (!c->tls_cert != !c->tls_key)
        cfg_usage_error(ST_PROG, st_synopsis, "--tls-cert and --tls-key go together");
    if (origins && cfg_split_list(origins, &c->allow_origins) <= 0)
        cfg_usage_error(ST_PROG, st_synopsis, "--allow-origin: expected a list of origins");
    if (web)
        snprintf(c->web_root, sizeof c->web_root, "%s", web);
    else
        st_default_web_root(c->web_root, sizeof c->web_root);
    if (c->input && strcmp(c->input, "-")) {
        /* O_NONBLOCK so a FIFO without a writer yet does not block start-up; the feed
         * thread polls before every read anyway. */
        int fd = open(c->input, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || dup2(fd, 0) < 0)
            cfg_usage_error(ST_PROG, st_synopsis, "--input %s: cannot open", c->input);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    struct st_config cfg;
    char err[512];
    st_parse(argc, argv, &cfg);
    sig_setup();
    st_raise_nofile();

    if (st_server_create(&cfg, err, sizeof err) < 0)
        fatal("%s", err);
    struct lws_context *ctx = st_server_context();
    if (st_db_start(&cfg, ctx, err, sizeof err) < 0)
        fatal("database workers: %s", err);
    if (st_feed_start(&cfg, ctx, err, sizeof err) < 0)
        fatal("feed: %s", err);
    if (cfg.input)
        log_info("listening on %s:%d (%s), page from %s, feed: %s", cfg.listen_host, st_server_port(),
                 cfg.tls_cert ? "TLS" : "plain", cfg.web_root, cfg.input);
    else
        log_info("listening on %s:%d (%s), page from %s, feed: kafka %s topic %s", cfg.listen_host,
                 st_server_port(), cfg.tls_cert ? "TLS" : "plain", cfg.web_root, cfg.brokers, cfg.topic);
    log_info("event loop: %s, --coalesce-ms %d", cfg.event_loop_uv ? "uv" : "poll", cfg.coalesce_ms);

    st_server_run();

    /* Order matters: the feed and db threads call lws_cancel_service on the context, so they
     * stop first; jobs are freed only after the context has closed their connections. */
    st_feed_stop();
    st_db_stop();
    st_server_destroy();
    st_db_cleanup();
    cfg_list_free(cfg.allow_origins);
    log_info("stopped");
    return 0;
}
