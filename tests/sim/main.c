/*
 * kline-sim — a simulated Binance exchange for klinepipe's tests and benchmarks.
 * See `kline-sim --help` and docs/DEVELOPING.md. main.c: options, the sim clock
 * timer, the lws context and the single service loop.
 */
#include "sim.h"

#include <libwebsockets.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

sim_t g_sim;

static volatile sig_atomic_t sim_stop_sig;
static lws_sorted_usec_list_t tick_sul;
static bool limit_logged;

static const char usage_text[] =
"usage: kline-sim [options]\n"
"A simulated Binance spot exchange: WebSocket kline_1s streams, REST klines, truth, fault knobs.\n"
"\n"
"  --listen HOST:PORT       listen address (default 127.0.0.1:0; port 0 picks a free port)\n"
"  --port-file FILE         write the chosen port to FILE (atomically) once listening\n"
"  --symbols A,B,C          symbols to simulate (default BTCUSDT,ETHUSDT,BNBUSDT)\n"
"  --num-symbols N          simulate SYM0001USDT .. SYMnnnnUSDT instead\n"
"  --seed N                 random seed (default 1); same seed = same klines\n"
"  --start-time MS          open_time of the first simulated second (default: now, whole second)\n"
"  --speed F|max            sim seconds per real second (default 1); max = as fast as clients read\n"
"  --duration S             generate S sim seconds, then keep serving REST/truth only\n"
"  --replay FILE            replay klines from FILE (canonical NDJSON, WS events or data.binance.vision CSV;\n"
"                           CSV rows take their symbol from the first of --symbols)\n"
"  --provisional            also send an x=false update in the middle of every second\n"
"  --ping-interval S        server ping period (default 20; 0 = never)\n"
"  --pong-timeout S         close a connection without pong for S seconds (default 60; 0 = never)\n"
"  --max-conn-age S         cut every connection after S seconds (default 86400)\n"
"  --max-streams N          streams per connection (default 1024)\n"
"  --msg-rate-limit N       incoming messages per second per connection before a cut (default 5)\n"
"  --queue-secs N           seconds a client may lag before it is cut (default 64)\n"
"  --rest-weight-limit N    REST request weight per minute before 429 (default 6000)\n"
"  --dump-truth FILE        write the truth (canonical NDJSON) at exit and on /control/dump\n"
"  --deflate                offer permessage-deflate (Binance does not compress klines)\n"
"  --close-after-msgs N     close each connection after N klines\n"
"  --close-after-secs T     close each connection after T seconds\n"
"  --malformed N, --oversized N, --duplicate N, --reorder N, --rest429 N, --rest418 N\n"
"                           start with N of that fault pending (see /control below)\n"
"  --stall-secs T           start stalled for T seconds;  --refuse-secs T  refuse new streams for T s\n"
"  --shutdown-grace-ms MS   delay between serverShutdown and close (default 1000)\n"
"  --log-level LEVEL        error|warn|info|debug (default info)\n"
"  -h, --help               this text\n"
"\n"
"Stream: /ws/<sym>@kline_1s, /stream?streams=a@kline_1s/b@kline_1s, SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS.\n"
"REST:   /api/v3/klines, /api/v3/exchangeInfo, /api/v3/ping, /api/v3/time.\n"
"Truth:  /truth?symbol=&from=&to=[&interval=1m]   (canonical NDJSON, inclusive open_time range;\n"
"        1m: the bars of those seconds by the aggregator's rules, with row_count)\n"
"Control (GET or POST): /control/close[?abrupt=1], shutdown, stall?secs=T, refuse?secs=T,\n"
"        malformed?n=N, oversized?n=N, duplicate?n=N, reorder?n=N, rest429?n=N, rest418?n=N,\n"
"        reset, dump[?path=FILE], stats\n";

static int log_lvl = 2; /* 0 error, 1 warn, 2 info, 3 debug */

void sim_log(const char *lvl, const char *fmt, ...)
{
    int l = strcmp(lvl, "error") == 0 ? 0 : strcmp(lvl, "warn") == 0 ? 1 : strcmp(lvl, "info") == 0 ? 2 : 3;
    if (l > log_lvl)
        return;
    char msg[1024], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s kline-sim %s: %s\n", ts, lvl, msg);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kline-sim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    exit(2);
}

static int64_t num_arg(const char *opt, const char *v, int64_t min, int64_t max)
{
    char *e;
    errno = 0;
    long long x = strtoll(v, &e, 10);
    if (errno || !*v || *e || x < min || x > max)
        usage_error("%s: expected an integer in [%lld, %lld], got '%s'", opt, (long long)min, (long long)max, v);
    return x;
}

static void on_signal(int sig) { (void)sig; sim_stop_sig++; if (sim_stop_sig > 1) _exit(1); }

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP:
        return sim_http_callback(wsi, (int)reason, user, in, len);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_RECEIVE_PONG:
        return sim_ws_callback(wsi, (int)reason, user, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static struct lws_protocols protocols[] = {
    { "kline-sim", callback, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_extension deflate_exts[] = {
    { "permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate; client_no_context_takeover" },
    { NULL, NULL, NULL }
};

static void tick(lws_sorted_usec_list_t *sul)
{
    int64_t now = sim_now_ms();
    int64_t delay_ms = 100;
    if (g_sim.cfg.speed > 0) {
        int64_t due = sim_due_seconds(now);
        char err[128];
        while (g_sim.gen_next < due)
            if (sim_gen_advance(err, sizeof err) <= 0)
                break;
        int64_t next_ms = g_sim.real0_ms + (int64_t)((double)(g_sim.gen_next + 1) * 1000.0 / g_sim.cfg.speed);
        if (g_sim.cfg.provisional) {
            int64_t mid = g_sim.real0_ms + (int64_t)(((double)g_sim.gen_next + 0.5) * 1000.0 / g_sim.cfg.speed);
            if (mid > now && mid < next_ms)
                next_ms = mid;
        }
        if (next_ms - now < delay_ms)
            delay_ms = next_ms - now;
        if (delay_ms < 1)
            delay_ms = 1;
    }
    if (g_sim.gen_limit >= 0 && g_sim.gen_next >= g_sim.gen_limit && !limit_logged) {
        limit_logged = true;
        sim_log("info", "generated all %lld seconds; serving REST and truth only", (long long)g_sim.gen_limit);
    }
    sim_ws_housekeeping(now);
    sim_ws_kick();
    if (sim_stop_sig)
        g_sim.stop = 1;
    lws_sul_schedule(g_sim.ctx, 0, sul, tick, delay_ms * 1000);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void symbols_from_list(const char *arg)
{
    size_t n = 0, cap = 0;
    char *list = strdup(arg), *save = NULL; /* strtok_r writes into it: keep argv intact for ps */
    if (!list) {
        fprintf(stderr, "kline-sim: out of memory\n");
        exit(1);
    }
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t l = strlen(tok);
        while (l && isspace((unsigned char)tok[l - 1]))
            tok[--l] = 0;
        if (!l)
            continue;
        if (l > 20)
            usage_error("--symbols: '%s' is longer than 20 characters", tok);
        for (size_t k = 0; k < l; k++)
            if (!isalnum((unsigned char)tok[k]))
                usage_error("--symbols: '%s' is not [A-Za-z0-9]", tok);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            g_sim.syms = realloc(g_sim.syms, cap * sizeof *g_sim.syms);
            if (!g_sim.syms) {
                fprintf(stderr, "kline-sim: out of memory\n");
                exit(1);
            }
        }
        memset(&g_sim.syms[n], 0, sizeof g_sim.syms[n]);
        for (size_t k = 0; k <= l; k++)
            g_sim.syms[n].name[k] = (char)toupper((unsigned char)tok[k]);
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(g_sim.syms[k].name, g_sim.syms[n].name) == 0;
        if (!dup)
            n++;
    }
    free(list);
    g_sim.nsyms = n;
}

enum {
    O_LISTEN = 1000, O_PORT_FILE, O_SYMBOLS, O_NUM_SYMBOLS, O_SEED, O_START, O_SPEED, O_DURATION, O_REPLAY,
    O_PROV, O_PING, O_PONG, O_AGE, O_MAXSTREAMS, O_RATE, O_QUEUE, O_WEIGHT, O_DUMP, O_DEFLATE, O_CAM, O_CAS,
    O_MALFORMED, O_OVERSIZED, O_DUPLICATE, O_REORDER, O_R429, O_R418, O_STALL, O_REFUSE, O_GRACE, O_LOG
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", 1, 0, O_LISTEN }, { "port-file", 1, 0, O_PORT_FILE }, { "symbols", 1, 0, O_SYMBOLS },
        { "num-symbols", 1, 0, O_NUM_SYMBOLS }, { "seed", 1, 0, O_SEED }, { "start-time", 1, 0, O_START },
        { "speed", 1, 0, O_SPEED }, { "duration", 1, 0, O_DURATION }, { "replay", 1, 0, O_REPLAY },
        { "provisional", 0, 0, O_PROV }, { "ping-interval", 1, 0, O_PING }, { "pong-timeout", 1, 0, O_PONG },
        { "max-conn-age", 1, 0, O_AGE }, { "max-streams", 1, 0, O_MAXSTREAMS },
        { "msg-rate-limit", 1, 0, O_RATE }, { "queue-secs", 1, 0, O_QUEUE },
        { "rest-weight-limit", 1, 0, O_WEIGHT }, { "dump-truth", 1, 0, O_DUMP }, { "deflate", 0, 0, O_DEFLATE },
        { "close-after-msgs", 1, 0, O_CAM }, { "close-after-secs", 1, 0, O_CAS },
        { "malformed", 1, 0, O_MALFORMED }, { "oversized", 1, 0, O_OVERSIZED },
        { "duplicate", 1, 0, O_DUPLICATE }, { "reorder", 1, 0, O_REORDER }, { "rest429", 1, 0, O_R429 },
        { "rest418", 1, 0, O_R418 }, { "stall-secs", 1, 0, O_STALL }, { "refuse-secs", 1, 0, O_REFUSE },
        { "shutdown-grace-ms", 1, 0, O_GRACE }, { "log-level", 1, 0, O_LOG }, { "help", 0, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    sim_cfg_t *cf = &g_sim.cfg;
    char *symlist = NULL;
    int64_t num_symbols = 0, stall = 0, refuse = 0;
    snprintf(cf->host, sizeof cf->host, "127.0.0.1");
    cf->seed = 1;
    cf->speed = 1;
    cf->duration = -1;
    cf->ping_interval = 20;
    cf->pong_timeout = 60;
    cf->max_streams = 1024;
    cf->msg_rate_limit = 5;
    cf->max_conn_age = 86400;
    cf->rest_weight_limit = 6000;
    cf->queue_secs = 64;
    cf->shutdown_grace_ms = 1000;

    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case O_LISTEN: {
            const char *colon = strrchr(optarg, ':');
            const char *ps = colon ? colon + 1 : optarg;
            if (colon)
                snprintf(cf->host, sizeof cf->host, "%.*s", (int)(colon - optarg), optarg);
            cf->port = (int)num_arg("--listen", ps, 0, 65535);
            break;
        }
        case O_PORT_FILE: cf->port_file = optarg; break;
        case O_SYMBOLS: symlist = optarg; break;
        case O_NUM_SYMBOLS: num_symbols = num_arg("--num-symbols", optarg, 1, 9999); break;
        case O_SEED: cf->seed = (uint64_t)num_arg("--seed", optarg, 0, INT64_MAX); break;
        case O_START: cf->start_ms = num_arg("--start-time", optarg, 0, INT64_MAX / 4); cf->start_given = true; break;
        case O_SPEED:
            if (strcmp(optarg, "max") == 0) {
                cf->speed = 0;
            } else {
                char *e;
                cf->speed = strtod(optarg, &e);
                if (*e || !(cf->speed > 0) || cf->speed > 1e6)
                    usage_error("--speed: expected a positive number or 'max', got '%s'", optarg);
            }
            break;
        case O_DURATION: cf->duration = num_arg("--duration", optarg, 0, INT64_MAX / 4); break;
        case O_REPLAY: cf->replay = optarg; break;
        case O_PROV: cf->provisional = true; break;
        case O_PING: cf->ping_interval = (int)num_arg("--ping-interval", optarg, 0, 86400); break;
        case O_PONG: cf->pong_timeout = (int)num_arg("--pong-timeout", optarg, 0, 86400); break;
        case O_AGE: cf->max_conn_age = num_arg("--max-conn-age", optarg, 1, INT64_MAX / 4000); break;
        case O_MAXSTREAMS: cf->max_streams = (int)num_arg("--max-streams", optarg, 1, 100000); break;
        case O_RATE: cf->msg_rate_limit = (int)num_arg("--msg-rate-limit", optarg, 1, 1000000); break;
        case O_QUEUE: cf->queue_secs = (int)num_arg("--queue-secs", optarg, 4, 100000); break;
        case O_WEIGHT: cf->rest_weight_limit = (int)num_arg("--rest-weight-limit", optarg, 1, 100000000); break;
        case O_DUMP: cf->dump_truth = optarg; break;
        case O_DEFLATE: cf->deflate = true; break;
        case O_CAM: cf->close_after_msgs = num_arg("--close-after-msgs", optarg, 0, INT64_MAX); break;
        case O_CAS: cf->close_after_secs = num_arg("--close-after-secs", optarg, 0, INT64_MAX / 4000); break;
        case O_MALFORMED: g_sim.ft.malformed = num_arg("--malformed", optarg, 0, INT64_MAX); break;
        case O_OVERSIZED: g_sim.ft.oversized = num_arg("--oversized", optarg, 0, INT64_MAX); break;
        case O_DUPLICATE: g_sim.ft.duplicate = num_arg("--duplicate", optarg, 0, INT64_MAX); break;
        case O_REORDER: g_sim.ft.reorder = num_arg("--reorder", optarg, 0, INT64_MAX); break;
        case O_R429: g_sim.ft.rest429 = num_arg("--rest429", optarg, 0, INT64_MAX); break;
        case O_R418: g_sim.ft.rest418 = num_arg("--rest418", optarg, 0, INT64_MAX); break;
        case O_STALL: stall = num_arg("--stall-secs", optarg, 0, 86400); break;
        case O_REFUSE: refuse = num_arg("--refuse-secs", optarg, 0, 86400); break;
        case O_GRACE: cf->shutdown_grace_ms = (int)num_arg("--shutdown-grace-ms", optarg, 0, 600000); break;
        case O_LOG:
            if (strcmp(optarg, "error") == 0) log_lvl = 0;
            else if (strcmp(optarg, "warn") == 0) log_lvl = 1;
            else if (strcmp(optarg, "info") == 0) log_lvl = 2;
            else if (strcmp(optarg, "debug") == 0) log_lvl = 3;
            else usage_error("--log-level: unknown level '%s'", optarg);
            break;
        default:
            usage_error("unknown option");
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (symlist && num_symbols)
        usage_error("--symbols and --num-symbols are exclusive");

    char defsyms[] = "BTCUSDT,ETHUSDT,BNBUSDT";
    if (num_symbols) {
        g_sim.syms = calloc((size_t)num_symbols, sizeof *g_sim.syms);
        if (!g_sim.syms) {
            fprintf(stderr, "kline-sim: out of memory\n");
            return 1;
        }
        for (int64_t k = 0; k < num_symbols; k++)
            snprintf(g_sim.syms[k].name, SIM_SYM_MAX, "SYM%04dUSDT", (int)(k + 1) % 10000);
        g_sim.nsyms = (size_t)num_symbols;
    } else if (!cf->replay || symlist) {
        symbols_from_list(symlist ? symlist : defsyms);
        if (!g_sim.nsyms)
            usage_error("--symbols: no symbols given");
    }

    int64_t now = sim_now_ms();
    g_sim.gen_limit = cf->duration;
    if (cf->replay) {
        char err[512];
        char **names = NULL;
        int nnames = 0;
        if (g_sim.nsyms) {
            names = calloc(g_sim.nsyms, sizeof *names);
            for (size_t k = 0; names && k < g_sim.nsyms; k++)
                names[nnames++] = g_sim.syms[k].name;
        }
        /* the loader replaces g_sim.syms with the replayed symbols; names points into
         * the old array, so keep it alive until the loader returns */
        sim_symbol_t *old = g_sim.syms;
        int rc = sim_replay_load(cf->replay, names, nnames, err, sizeof err);
        free(names);
        if (old != g_sim.syms)
            free(old);
        if (rc < 0) {
            fprintf(stderr, "kline-sim: --replay %s: %s\n", cf->replay, err);
            return 2;
        }
        if (g_sim.gen_limit < 0 || g_sim.gen_limit > g_sim.replay_n)
            g_sim.gen_limit = g_sim.replay_n;
    } else {
        sim_symbols_init_generated();
    }
    if (!cf->start_given && !cf->replay)
        cf->start_ms = now / 1000 * 1000;
    /* at speed 1 with the default start the sim clock is the wall clock (t = E
     * minus the send delay); otherwise sim second 0 begins now */
    g_sim.real0_ms = cf->start_given || cf->replay || cf->speed != 1 ? now : cf->start_ms;
    g_sim.ring_n = cf->queue_secs;
    g_sim.ring = calloc((size_t)g_sim.ring_n * g_sim.nsyms, sizeof *g_sim.ring);
    if (!g_sim.ring) {
        fprintf(stderr, "kline-sim: out of memory for %zu symbols x %lld s\n", g_sim.nsyms, (long long)g_sim.ring_n);
        return 1;
    }
    if (stall) {
        g_sim.ft.stall_until_ms = now + stall * 1000;
        g_sim.ft.stall_epoch++;
    }
    if (refuse)
        g_sim.ft.refuse_until_ms = now + refuse * 1000;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lws_set_log_level(log_lvl >= 3 ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, NULL);
    size_t pss = sim_ws_session_size();
    if (sim_http_session_size() > pss)
        pss = sim_http_session_size();
    protocols[0].per_session_data_size = pss;
    protocols[0].rx_buffer_size = 64 * 1024;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cf->port ? cf->port : 0;
    info.iface = cf->host[0] && strcmp(cf->host, "0.0.0.0") != 0 ? cf->host : NULL;
    info.protocols = protocols;
    info.extensions = cf->deflate ? deflate_exts : NULL;
    info.max_http_header_data = 60000;   /* a /stream URL with 1024 streams is ~20 KB */
    info.max_http_header_pool = 64;
    info.timeout_secs = 30;
    g_sim.ctx = lws_create_context(&info);
    if (!g_sim.ctx) {
        fprintf(stderr, "kline-sim: cannot listen on %s:%d\n", cf->host, cf->port);
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(g_sim.ctx, "default");
    int port = vh ? lws_get_vhost_listen_port(vh) : cf->port;
    if (cf->port_file && write_port_file(cf->port_file, port) < 0) {
        fprintf(stderr, "kline-sim: cannot write %s: %s\n", cf->port_file, strerror(errno));
        lws_context_destroy(g_sim.ctx);
        return 1;
    }
    sim_log("info", "listening on %s:%d, %zu symbols, seed %llu, start %lld, speed %s%g, duration %lld",
            cf->host, port, g_sim.nsyms, (unsigned long long)cf->seed, (long long)cf->start_ms,
            cf->speed > 0 ? "" : "max ", cf->speed, (long long)g_sim.gen_limit);

    lws_sul_schedule(g_sim.ctx, 0, &tick_sul, tick, 1000);
    while (!g_sim.stop && !sim_stop_sig)
        if (lws_service(g_sim.ctx, 0) < 0)
            break;

    int rc = 0;
    if (cf->dump_truth) {
        char err[256];
        if (sim_truth_dump_file(cf->dump_truth, err, sizeof err) < 0) {
            sim_log("error", "truth dump: %s", err);
            rc = 1;
        } else {
            sim_log("info", "truth (%lld seconds) written to %s", (long long)g_sim.gen_next, cf->dump_truth);
        }
    }
    lws_context_destroy(g_sim.ctx);
    for (size_t k = 0; k < g_sim.nsyms; k++) {
        free(g_sim.syms[k].ckpt);
        free(g_sim.syms[k].replay);
        free(g_sim.syms[k].present);
    }
    free(g_sim.syms);
    free(g_sim.ring);
    sim_log("info", "exit");
    return rc;
}
