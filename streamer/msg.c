/* msg.c — refcounted message buffers with LWS_PRE headroom, shared between the clients a
 * message goes to (lws thread only: the count is not atomic). The bytes live in a kp_buf:
 * [LWS_PRE headroom][payload]NUL, so lws_write can put the frame header in front. */
#include "streamer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No message comes near this: the largest, a "*" snapshot, is ~0.8 KB per symbol (8 MB
 * at 10,000). It stops a runaway append, not a real message; what a client may hold is
 * bounded by --max-pending-bytes. */
#define ST_MSG_MAX ((size_t)1 << 30)

int st_buf_headroom(kp_buf_t *b)
{
    static const char pre[LWS_PRE];
    kp_buf_reset(b);
    return kp_buf_append(b, pre, sizeof pre);
}

st_msg_t *st_msg_new(size_t cap)
{
    st_msg_t *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->ev_ms = 0;
    kp_buf_init(&m->b, ST_MSG_MAX);
    if (kp_buf_reserve(&m->b, LWS_PRE + cap) < 0 || st_buf_headroom(&m->b) < 0) {
        kp_buf_free(&m->b);
        free(m);
        return NULL;
    }
    return m;
}

st_msg_t *st_msg_dup(const char *s, size_t len)
{
    st_msg_t *m = st_msg_new(len);
    if (m && st_msg_append(m, s, len) < 0) {
        st_msg_unref(m);
        return NULL;
    }
    return m;
}

void st_msg_unref(st_msg_t *m)
{
    if (m && --m->refs == 0) {
        kp_buf_free(&m->b);
        free(m);
    }
}

int st_msg_append(st_msg_t *m, const char *s, size_t len)
{
    return kp_buf_append(&m->b, s, len);
}

int st_msg_puts(st_msg_t *m, const char *s)
{
    return kp_buf_puts(&m->b, s);
}

int st_msg_put_i64(st_msg_t *m, long long v)
{
    return kp_buf_put_i64(&m->b, v);
}

int st_msg_put_g10(st_msg_t *m, double v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.10g", v);
    return n > 0 && (size_t)n < sizeof tmp ? st_msg_append(m, tmp, (size_t)n) : -1;
}

int st_msg_appendf(st_msg_t *m, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return st_msg_append(m, tmp, (size_t)n);
}

st_msg_t *st_msg_end(st_msg_t *m, int rc, const char *tail)
{
    if (rc == 0)
        rc = st_msg_append(m, tail, strlen(tail));
    if (rc == 0)
        return m;
    st_msg_unref(m);
    return NULL;
}
