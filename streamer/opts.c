/* opts.c — kline-streamer's option table (parsing, the environment, --help and the man
 * page all come from it) and the checks across options that follow the parse. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "opt.h"
#include "streamer.h"

/* Values the table parses into and the checks below turn into the config. */
static struct st_config o_cfg;
static const char *o_listen, *o_web, *o_origins, *o_loglevel;
static int o_evloop; /* index in "uv|poll|ev" */

static const kp_opt_t st_opts[] = {
    { KP_OPT_SECTION, .help = "Network and feed" },
    { KP_OPT_STR, "listen", 'l', "HOST:PORT", "STREAMER_LISTEN", "0.0.0.0:8080",
      "listen address (HTTP, WebSocket /ws and /metrics; :PORT = all interfaces)", .dest = &o_listen },
    { KP_OPT_STR, "input", 'i', "FILE", NULL, NULL,
      "read NDJSON klines from FILE ('-' = stdin) instead of Kafka", .dest = &o_cfg.input },
    { KP_OPT_STR, "brokers", 'b', "LIST", "KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap servers",
      .dest = &o_cfg.brokers },
    { KP_OPT_STR, "topic", 't', "NAME", "KAFKA_TOPIC", "klines", "Kafka topic", .dest = &o_cfg.topic },
    { KP_OPT_CALL, "kafka", 'X', "KEY=VALUE", NULL, NULL, "librdkafka setting, repeatable, applied last",
      .dest = &o_cfg.xopts, .call = kq_xopts_add },
    { KP_OPT_INT, "catchup-secs", 0, "S", "STREAMER_CATCHUP_SECS", "120",
      "Kafka: on start, read back the last S seconds of every partition\n"
      "so every symbol has its latest kline (0 = live records only)",
      KP_OPT_INT_DEST(o_cfg.catchup_secs), .min = 0, .max = 7 * 86400 },
    { KP_OPT_CHOICE, "event-loop", 0, "uv|poll|ev", "STREAMER_EVENT_LOOP", "ev",
      "ev: libev (epoll), which changes a socket's events in place;\n"
      "uv: libuv (epoll), which removes and re-adds the socket on every\n"
      "change, 15-25 % more CPU; poll: lws's own poll() loop, about\n"
      "twice the CPU with many connections",
      .dest = &o_evloop, .choices = "uv|poll|ev" },
    /* No default in the table: it depends on --event-loop (st_opts_check). */
    { KP_OPT_INT, "coalesce-ms", 0, "MS", "STREAMER_COALESCE_MS", NULL,
      "apply feed records at most once per MS, so a busy feed costs one\n"
      "service-loop pass per window (0 = off; default 0 with uv and ev,\n5 with poll)",
      KP_OPT_INT_DEST(o_cfg.coalesce_ms), .min = 0, .max = 1000 },
    { KP_OPT_SECTION, .help = "Database (/api/klines history, SMA seeding)" },
    { KP_OPT_STR, "database-url", 'd', "URL", "DATABASE_URL", NULL,
      "PostgreSQL for /api/klines (unset: libpq PG* environment)", .dest = &o_cfg.database_url },
    { KP_OPT_INT, "db-workers", 0, "N", "STREAMER_DB_WORKERS", "2", "threads answering /api/klines",
      KP_OPT_INT_DEST(o_cfg.db_workers), .min = 1, .max = 8 },
    { KP_OPT_INT, "db-timeout-ms", 0, "MS", "STREAMER_DB_TIMEOUT_MS", "10000",
      "deadline of one query, from its submission (503 after it)",
      KP_OPT_INT_DEST(o_cfg.db_timeout_ms), .min = 100, .max = 3600000 },
    { KP_OPT_SECTION, .help = "Page" },
    { KP_OPT_STR, "web-root", 'w', "DIR", "STREAMER_WEB_ROOT", NULL,
      "static page directory (unset: web/dist of the source tree,\n"
      "or PREFIX/share/klinepipe/web when installed)", .dest = &o_web },
    { KP_OPT_INT, "sma", 0, "N", "STREAMER_SMA", "5", "SMA length in closed 1m bars",
      KP_OPT_INT_DEST(o_cfg.sma_n), .min = 1, .max = 1000 },
    { KP_OPT_INT, "stale-secs", 0, "N", "STREAMER_STALE_SECS", "60", "mark a symbol stale after N s without update",
      KP_OPT_INT_DEST(o_cfg.stale_secs), .min = 1, .max = 86400 },
    { KP_OPT_STR, "badge", 0, "TEXT", "STREAMER_BADGE", NULL,
      "show a badge on the page, e.g. \"simulated market\"\n"
      "(KP_SIMULATED=1 means --badge \"simulated market\"; \"\" = none)", .dest = &o_cfg.badge },
    { KP_OPT_SECTION, .help = "Client limits" },
    { KP_OPT_INT, "max-msg", 0, "BYTES", "STREAMER_MAX_MSG", "4096", "largest client message",
      KP_OPT_INT_DEST(o_cfg.max_msg), .min = 64, .max = 1 << 20 },
    { KP_OPT_INT, "max-rate", 0, "N", "STREAMER_MAX_RATE", "20", "client messages per second",
      KP_OPT_INT_DEST(o_cfg.max_rate), .min = 1, .max = 100000 },
    { KP_OPT_INT, "max-subs", 0, "N", "STREAMER_MAX_SUBS", "256", "symbols per connection (\"*\" = all)",
      KP_OPT_INT_DEST(o_cfg.max_subs), .min = 1, .max = 100000 },
    { KP_OPT_INT, "max-clients", 0, "N", "STREAMER_MAX_CLIENTS", "20000", "WebSocket connections",
      KP_OPT_INT_DEST(o_cfg.max_clients), .min = 1, .max = 1000000 },
    { KP_OPT_INT, "max-symbols", 0, "N", "STREAMER_MAX_SYMBOLS", "10000", "symbols clients may name",
      KP_OPT_INT_DEST(o_cfg.max_symbols), .min = 1, .max = 1000000 },
    { KP_OPT_INT, "queue-max", 0, "N", "STREAMER_QUEUE_MAX", "8192",
      "pending distinct updates per client before it is cut off", KP_OPT_INT_DEST(o_cfg.queue_max),
      .min = 1, .max = 1000000 },
    { KP_OPT_INT, "max-pending-bytes", 0, "B", "STREAMER_MAX_PENDING_BYTES", "8388608",
      "bytes queued for one client (replies, snapshots, updates) before\n"
      "it is cut off with 4009 (8 MiB)", KP_OPT_INT_DEST(o_cfg.max_pending_bytes),
      .min = 64 << 10, .max = 1LL << 40 },
    { KP_OPT_INT, "max-placeholders", 0, "N", "STREAMER_MAX_PLACEHOLDERS", "64",
      "names that have not traded yet one connection may follow", KP_OPT_INT_DEST(o_cfg.max_placeholders),
      .min = 0, .max = 1000000 },
    { KP_OPT_INT, "slow-client-ms", 0, "MS", "STREAMER_SLOW_CLIENT_MS", "5000",
      "cut off a client that makes no progress for MS", KP_OPT_INT_DEST(o_cfg.slow_client_ms),
      .min = 100, .max = 3600000 },
    { KP_OPT_STR, "allow-origin", 0, "LIST", "STREAMER_ALLOW_ORIGIN", NULL,
      "comma-separated allowed Origin values (unset: any)", .dest = &o_origins },
    { KP_OPT_STR, "tls-cert", 0, "FILE", "STREAMER_TLS_CERT", NULL, "serve HTTPS/WSS with this certificate",
      .dest = &o_cfg.tls_cert },
    { KP_OPT_STR, "tls-key", 0, "FILE", "STREAMER_TLS_KEY", NULL, "private key for --tls-cert",
      .dest = &o_cfg.tls_key },
    { KP_OPT_SECTION, .help = "Operation" },
    { KP_OPT_INT, "stats-interval", 0, "SECS", "STATS_INTERVAL", "60", "periodic stats log line (0 = off)",
      KP_OPT_INT_DEST(o_cfg.stats_interval), .min = 0, .max = 86400 },
    { KP_OPT_FLAG, "stage-stamps", 0, NULL, "STREAMER_STAGE_STAMPS", NULL,
      "time every kline from its event_time to Kafka, out of librdkafka,\n"
      "into the service loop and onto each client's socket (histograms\non /metrics)", .dest = &o_cfg.stage_stamps },
    { KP_OPT_STR, "log-level", 0, "LEVEL", "LOG_LEVEL", "info", "error, warn, info, debug", .dest = &o_loglevel },
    { KP_OPT_END },
};

static const kp_opt_prog_t st_prog = {
    .name = ST_PROG,
    .summary = "live klines to browsers over WebSocket, with history, indicators and alerts",
    .synopsis = "usage: kline-streamer [--listen HOST:PORT] [-i FILE|-] [-b BROKERS] [-t TOPIC] [OPTIONS]\n",
    .intro = "Streams live klines from Kafka (or NDJSON on stdin) to browsers over WebSocket at /ws,\n"
             "serves the web page, /api/klines history from PostgreSQL, /api/info, /healthz, /metrics.\n",
    .epilog = "Exit status: 0 stopped by SIGINT/SIGTERM, 1 a runtime failure, 2 a usage error.\n",
    .opts = st_opts,
};

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

/* --badge "" wins over KP_SIMULATED=1 (an empty STREAMER_BADGE counts as unset), as before. */
static void st_opts_badge(struct st_config *c)
{
    if (!c->badge && !strcmp(cfg_env("KP_SIMULATED", "0"), "1"))
        c->badge = "simulated market";
    else if (c->badge && !*c->badge)
        c->badge = NULL;
}

/* -i FILE becomes fd 0, the one reader the feed has. O_NONBLOCK so a FIFO without a writer
 * yet does not block start-up; the feed thread polls before every read anyway. */
static void st_opts_input(const struct st_config *c)
{
    if (!c->input || !strcmp(c->input, "-"))
        return;
    int fd = open(c->input, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || dup2(fd, 0) < 0)
        kp_opt_usage_error(&st_prog, "--input %s: cannot open", c->input);
    close(fd);
}

static void st_opts_check(struct st_config *c)
{
    c->event_loop_uv = o_evloop == 0;
    c->event_loop_ev = o_evloop == 2;
    /* The window bounds poll()'s O(all connections) passes; an epoll pass costs only the
     * ready sockets, so with uv records are applied at once (bench_streamer: p50 and p99
     * halved at 10,000 clients for +7 % CPU). */
    if (c->coalesce_ms < 0)
        c->coalesce_ms = c->event_loop_uv || c->event_loop_ev ? 0 : 5;
    int lvl = log_level_parse(o_loglevel);
    if (lvl < 0)
        kp_opt_usage_error(&st_prog, "unknown log level '%s'", o_loglevel);
    log_init(ST_PROG, lvl);
    if (cfg_parse_hostport(o_listen, c->listen_host, sizeof c->listen_host, &c->port) < 0)
        kp_opt_usage_error(&st_prog, "--listen: expected HOST:PORT, got '%s'", o_listen);
    if (!c->listen_host[0])
        snprintf(c->listen_host, sizeof c->listen_host, "0.0.0.0");
    if (!c->tls_cert != !c->tls_key)
        kp_opt_usage_error(&st_prog, "--tls-cert and --tls-key go together");
    if (o_origins && cfg_split_list(o_origins, &c->allow_origins) <= 0)
        kp_opt_usage_error(&st_prog, "--allow-origin: expected a list of origins");
    if (o_web)
        snprintf(c->web_root, sizeof c->web_root, "%s", o_web);
    else
        st_default_web_root(c->web_root, sizeof c->web_root);
    st_opts_badge(c);
    st_opts_input(c);
}

void st_opts_parse(int argc, char **argv, struct st_config *c)
{
    memset(&o_cfg, 0, sizeof o_cfg);
    o_cfg.coalesce_ms = -1; /* by the loop, unless given */
    kp_opt_parse(&st_prog, argc, argv, false);
    st_opts_check(&o_cfg);
    *c = o_cfg; /* the caller's copy is the one the program uses from here on */
}
