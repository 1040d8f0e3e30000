/* kline-streamer — live klines to browsers over WebSocket, with history, indicators and
 * alerts, and the web page that shows them. See docs/streamer.md. */
#include <sys/resource.h>

#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "server.h"
#include "streamer.h"

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

int main(int argc, char **argv)
{
    struct st_config cfg;
    char err[512];
    st_opts_parse(argc, argv, &cfg);
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
    log_info("event loop: %s, --coalesce-ms %d", cfg.event_loop_uv ? "uv" : cfg.event_loop_ev ? "ev" : "poll", cfg.coalesce_ms);

    st_loop_run();

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
