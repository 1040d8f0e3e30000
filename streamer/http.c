/* http.c — the HTTP side of the streamer's port: the static page from --web-root,
 * /api/klines (answered by db.c's workers), /api/info, /healthz and /metrics.
 * Dynamic responses are built into h->resp and written on the next HTTP_WRITEABLE. */
#include "streamer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"

extern const struct st_config *st_cfg; /* server.c: the configuration, read-only */

/* ---------------------------------------------------------------- responses */

static void st_http_reset(struct st_http *h)
{
    free(h->resp);
    h->resp = NULL;
    h->resp_len = 0;
    h->ready = false;
}

/* Takes ownership of body (LWS_PRE headroom; NULL allowed for an empty body). */
static int st_http_send(struct lws *wsi, struct st_http *h, int status, const char *ctype,
                        char *body, size_t len)
{
    st_http_reset(h);
    h->status = status;
    h->ctype = ctype;
    h->resp = body;
    h->resp_len = body ? len : 0;
    h->ready = true;
    lws_callback_on_writable(wsi);
    return 0;
}

static int st_http_text(struct lws *wsi, struct st_http *h, int status, const char *ctype,
                        const char *s, size_t len)
{
    char *b = malloc(LWS_PRE + len + 1);
    if (!b)
        return -1;
    memcpy(b + LWS_PRE, s, len);
    return st_http_send(wsi, h, status, ctype, b, len);
}

static int st_http_error(struct lws *wsi, struct st_http *h, int status, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = s ? st_http_text(wsi, h, status, "application/json", s, strlen(s)) : -1;
    free(s);
    return rc;
}

static int st_http_json(struct lws *wsi, struct st_http *h, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return st_http_error(wsi, h, 500, "out of memory");
    int rc = st_http_text(wsi, h, 200, "application/json", s, strlen(s));
    free(s);
    return rc;
}

int st_http_on_writeable(struct lws *wsi, struct st_http *h)
{
    if (!h->ready)
        return 0;
    unsigned char hdr[LWS_PRE + 1024];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)h->status, h->ctype, h->resp_len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (h->resp_len &&
        lws_write(wsi, (unsigned char *)h->resp + LWS_PRE, h->resp_len, LWS_WRITE_HTTP_FINAL) <
            (int)h->resp_len)
        return -1;
    st_http_reset(h);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void st_http_on_close(struct st_http *h)
{
    if (h->job) {
        st_db_cancel(h->job); /* db.c frees it when the worker hands it back */
        h->job = NULL;
    }
    st_http_reset(h);
}

void st_http_job_done(struct st_db_job *j)
{
    struct lws *wsi = st_db_job_wsi(j);
    struct st_pss *pss = wsi ? lws_wsi_user(wsi) : NULL;
    if (pss && pss->http.job == j) {
        int status;
        char *body;
        size_t len;
        pss->http.job = NULL;
        st_db_job_result(j, &status, &body, &len);
        if (body)
            st_http_send(wsi, &pss->http, status, "application/json", body, len);
        else
            st_http_error(wsi, &pss->http, 500, "internal error");
    }
    st_db_job_free(j);
}

/* ---------------------------------------------------------------- static files */

static const char *st_mime(const char *path)
{
    static const struct { const char *ext, *type; } map[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".map", "application/json"}, {".svg", "image/svg+xml"},
        {".png", "image/png"}, {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcasecmp(dot, map[i].ext))
                return map[i].type;
    return "application/octet-stream";
}

static int st_http_static(struct lws *wsi, struct st_http *h, const char *uri)
{
    static char root[PATH_MAX];
    static size_t rootlen;
    if (!rootlen) {
        if (!realpath(st_cfg->web_root, root))
            return st_http_error(wsi, h, 404, "web root not found");
        rootlen = strlen(root);
    }
    if (uri[0] != '/' || strlen(uri) > 1024)
        return st_http_error(wsi, h, 400, "bad path");
    char want[PATH_MAX], real[PATH_MAX];
    snprintf(want, sizeof want, "%s%s%s", root, uri, uri[strlen(uri) - 1] == '/' ? "index.html" : "");
    /* realpath resolves "..", symlinks and all: the result must stay under the root. */
    if (!realpath(want, real) || strncmp(real, root, rootlen) || (real[rootlen] != '/'))
        return st_http_error(wsi, h, 404, "not found");
    struct stat sb;
    if (stat(real, &sb) < 0 || !S_ISREG(sb.st_mode))
        return st_http_error(wsi, h, 404, "not found");

    char etag[64], inm[128] = "";
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)sb.st_mtim.tv_sec,
             (unsigned long long)sb.st_mtim.tv_nsec, (unsigned long long)sb.st_size);
    if (lws_hdr_copy(wsi, inm, sizeof inm, WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 && !strcmp(inm, etag)) {
        unsigned char hdr[LWS_PRE + 512];
        unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
        if (lws_add_http_header_status(wsi, HTTP_STATUS_NOT_MODIFIED, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"etag:",
                                        (const unsigned char *)etag, (int)strlen(etag), &p, end) ||
            lws_add_http_header_content_length(wsi, 0, &p, end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    /* The page is small and versionless: let browsers keep it but revalidate each time. */
    char extra[256];
    int n = snprintf(extra, sizeof extra,
                     "Cache-Control: no-cache\x0d\x0a" "ETag: %s\x0d\x0a"
                     "X-Content-Type-Options: nosniff\x0d\x0a", etag);
    int rc = lws_serve_http_file(wsi, real, st_mime(real), extra, n);
    if (rc < 0 || (rc > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- /api/klines */

static int st_api_klines(struct lws *wsi, struct st_http *h)
{
    /* lws has split the query at '&' and percent-decoded each argument; proto.c decides.
     * One argument more than allowed is collected so that proto.c sees the excess. */
    char bufs[ST_PROTO_QUERY_ARGS + 1][ST_PROTO_QUERY_ARG_LEN + 2];
    const char *args[ST_PROTO_QUERY_ARGS + 1];
    size_t lens[ST_PROTO_QUERY_ARGS + 1];
    int n = 0;
    for (; n <= ST_PROTO_QUERY_ARGS; n++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, n);
        if (flen <= 0)
            break;
        if (flen > ST_PROTO_QUERY_ARG_LEN)
            return st_http_error(wsi, h, 400, "too many or too long query parameters");
        int got = lws_hdr_copy_fragment(wsi, bufs[n], sizeof bufs[n], WSI_TOKEN_HTTP_URI_ARGS, n);
        if (got < 0)
            return st_http_error(wsi, h, 400, "bad query parameter");
        args[n] = bufs[n];
        lens[n] = (size_t)got;
    }
    struct st_db_req req;
    char err[200];
    if (st_proto_parse_klines_args(args, lens, n, &req, err, sizeof err) < 0)
        return st_http_error(wsi, h, 400, err);
    st_hub.st.api_requests++;
    h->job = st_db_submit(ST_DB_API, &req, wsi);
    if (!h->job)
        return st_http_error(wsi, h, 503, "too many queries in flight");
    return 0; /* answered from st_http_job_done */
}

/* ---------------------------------------------------------------- small endpoints */

static const char *st_feed_state_name(void)
{
    static const char *names[] = {"starting", "running", "ended", "failed"};
    int s = atomic_load(&st_feed_state);
    return s >= 0 && s < 4 ? names[s] : "unknown";
}

static int st_api_info(struct lws *wsi, struct st_http *h)
{
    json_t *syms = json_array();
    for (struct st_symbol *s = st_hub.symbols; s; s = s->next)
        if (s->has_data && !s->stale)
            json_array_append_new(syms, json_string(s->name));
    json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:i,s:i,s:s,s:o}", "name", "klinepipe", "version",
                          KLINEPIPE_VERSION, "simulated", st_cfg->badge != NULL, "badge",
                          st_cfg->badge ? json_string(st_cfg->badge) : json_null(), "sma_n",
                          st_cfg->sma_n, "stale_secs", st_cfg->stale_secs, "feed", st_feed_kind(),
                          "symbols", syms);
    return st_http_json(wsi, h, o);
}

static int st_healthz(struct lws *wsi, struct st_http *h)
{
    int64_t age = st_hub.latest_ingest_ms ? cfg_now_ms() - st_hub.latest_ingest_ms : -1;
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:I}", "status", "ok", "feed", st_feed_kind(),
                          "feed_state", st_feed_state_name(), "clients", st_hub.nclients,
                          "symbols", st_hub.nsymbols, "last_kline_age_ms", (json_int_t)age);
    return st_http_json(wsi, h, o);
}

static int st_metrics(struct lws *wsi, struct st_http *h)
{
    size_t len;
    char *b = st_prom_render(&len);
    if (!b)
        return st_http_error(wsi, h, 500, "out of memory");
    return st_http_send(wsi, h, 200, "text/plain; version=0.0.4", b, len);
}

/* ---------------------------------------------------------------- dispatch */

int st_http_on_request(struct lws *wsi, struct st_http *h, const char *uri)
{
    st_http_on_close(h); /* a kept-alive connection: forget the previous request */
    st_hub.st.http_requests++;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
        return st_http_error(wsi, h, 405, "only GET is supported");
    if (!strcmp(uri, "/api/klines"))
        return st_api_klines(wsi, h);
    if (!strcmp(uri, "/api/info"))
        return st_api_info(wsi, h);
    if (!strcmp(uri, "/healthz"))
        return st_healthz(wsi, h);
    if (!strcmp(uri, "/metrics"))
        return st_metrics(wsi, h);
    if (!strcmp(uri, "/ws"))
        return st_http_error(wsi, h, 426, "WebSocket upgrade required");
    if (!strncmp(uri, "/api/", 5))
        return st_http_error(wsi, h, 404, "no such endpoint");
    return st_http_static(wsi, h, uri);
}
