/* server.c — the lws context and its single protocol callback (the loop is loop.c).
 * One protocol serves both HTTP and the /ws WebSocket, so browsers need no subprotocol. */
#include "streamer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "log.h"

#include "server.h"

const struct st_config *st_cfg;
static struct lws_context *st_ctx;

/* ---------------------------------------------------------------- connection filter */

static bool st_origin_ok(struct lws *wsi)
{
    if (!st_cfg->allow_origins)
        return true;
    char origin[256];
    int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return true; /* not a browser: Origin only protects against cross-site pages */
    for (char **o = st_cfg->allow_origins; *o; o++)
        if (!strcasecmp(*o, origin))
            return true;
    return false;
}

static int st_filter(struct lws *wsi)
{
    char uri[64];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws")) {
        log_debug("ws: upgrade refused for a path other than /ws");
        return 1;
    }
    if (st_hub.stopping || st_hub.nclients >= st_cfg->max_clients) {
        log_warn("ws: connection refused: %d clients (max %d)", st_hub.nclients, st_cfg->max_clients);
        return 1;
    }
    if (!st_origin_ok(wsi)) {
        log_info("ws: connection refused: origin not allowed");
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- callback */

static int st_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct st_pss *pss = user;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        st_loop_drain(); /* the feed or a database worker has something for us */
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return st_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        pss->client = st_client_new(wsi);
        return pss->client ? 0 : -1;
    case LWS_CALLBACK_RECEIVE:
        if (pss->client)
            st_client_on_receive(pss->client, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->client ? st_client_on_writeable(pss->client) : 0;
    case LWS_CALLBACK_CLOSED:
        if (pss->client) {
            st_client_free(pss->client);
            pss->client = NULL;
        }
        return 0;
    case LWS_CALLBACK_HTTP:
        return st_http_on_request(wsi, &pss->http, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return st_http_on_writeable(wsi, &pss->http);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (pss)
            st_http_on_close(&pss->http);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* rx_buffer_size is small on purpose: lws allocates it for every connection, and client
 * messages are tiny; longer ones arrive in pieces and client.c reassembles them.
 * tx_packet_size must be set: 0 means "send at most rx_buffer_size bytes per send()", and
 * lws would trickle a 32 KB batch out 512 bytes per service pass. */
static const struct lws_protocols st_protocols[] = {
    {"kp-stream", st_callback, sizeof(struct st_pss), 512, 0, NULL, 256 * 1024},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void st_lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_msg(level == LLL_ERR ? LOG_LVL_WARN : LOG_LVL_DEBUG, "lws: %.*s", (int)n, line);
}

/* ---------------------------------------------------------------- lifecycle */

/* The context's settings from the configuration (listen address, TLS, timeouts). */
static void st_server_info(const struct st_config *cfg, struct lws_context_creation_info *info)
{
    memset(info, 0, sizeof *info);
    info->port = cfg->port;
    info->iface = cfg->listen_host[0] && strcmp(cfg->listen_host, "0.0.0.0") ? cfg->listen_host : NULL;
    info->protocols = st_protocols;
    info->options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strcmp(cfg->listen_host, "0.0.0.0"))
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* No fd_limit_per_thread: with it lws 4.1 looks connections up by a linear scan
     * (wsi_from_fd); without, by a table indexed by fd, sized from RLIMIT_NOFILE (raised
     * to the hard limit in main). --max-clients is enforced in st_filter. */
    info->max_http_header_pool = 1024;
    info->timeout_secs = 20;
    info->ka_time = 60; /* TCP keepalive: dead peers do not hold a slot forever */
    info->ka_probes = 3;
    info->ka_interval = 10;
    if (cfg->tls_cert) {
        info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info->ssl_cert_filepath = cfg->tls_cert;
        info->ssl_private_key_filepath = cfg->tls_key;
    }
}

int st_server_create(const struct st_config *cfg, char *errbuf, size_t errlen)
{
    st_cfg = cfg;
    lws_set_log_level(log_level_get() >= LOG_LVL_DEBUG ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : LLL_ERR,
                      st_lws_log);
    struct lws_context_creation_info info;
    st_server_info(cfg, &info);
    void *loops[1];
    if (st_loop_init(cfg, &loops[0], errbuf, errlen) < 0)
        return -1;
    if (loops[0]) {
        info.options |= cfg->event_loop_ev ? LWS_SERVER_OPTION_LIBEV : LWS_SERVER_OPTION_LIBUV;
        info.foreign_loops = loops;
    }
    const char *host = cfg->listen_host[0] ? cfg->listen_host : "*";
    st_ctx = lws_create_context(&info);
    if (!st_ctx) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d (in use, or bad TLS files?)", host, cfg->port);
        return -1;
    }
    /* lws may keep a context whose listening vhost failed (port in use): refuse to run so. */
    if (cfg->port && st_server_port() <= 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d (address in use?)", host, cfg->port);
        return -1;
    }
    if (st_hub_init(cfg, errbuf, errlen) < 0)
        return -1;
    st_hub.ctx = st_ctx;
    st_loop_start(st_ctx);
    return 0;
}

struct lws_context *st_server_context(void)
{
    return st_ctx;
}

int st_server_port(void)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(st_ctx, "default");
    return vh ? lws_get_vhost_listen_port(vh) : -1;
}

void st_server_destroy(void)
{
    if (st_ctx) {
        st_loop_stop(); /* its timers belong to the context */
        lws_context_destroy(st_ctx);
        st_ctx = NULL;
    }
    st_loop_close();
    st_hub_free();
}
