/* msg.c — refcounted message buffers with LWS_PRE headroom, shared between the clients a
 * message goes to (lws thread only: the count is not atomic). */
#include "streamer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_msg_t *st_msg_new(size_t cap)
{
    st_msg_t *m = malloc(sizeof *m + LWS_PRE + cap + 1);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = 0;
    m->cap = cap;
    m->buf[LWS_PRE] = '\0';
    return m;
}

st_msg_t *st_msg_dup(const char *s, size_t len)
{
    st_msg_t *m = st_msg_new(len);
    if (!m)
        return NULL;
    memcpy(st_msg_payload(m), s, len);
    m->len = len;
    st_msg_payload(m)[len] = '\0';
    return m;
}

void st_msg_unref(st_msg_t *m)
{
    if (m && --m->refs == 0)
        free(m);
}

int st_msg_append(st_msg_t **mp, const char *s, size_t len)
{
    st_msg_t *m = *mp;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        while (cap < m->len + len)
            cap *= 2;
        st_msg_t *n = realloc(m, sizeof *m + LWS_PRE + cap + 1);
        if (!n)
            return -1;
        n->cap = cap;
        *mp = m = n;
    }
    memcpy(st_msg_payload(m) + m->len, s, len);
    m->len += len;
    st_msg_payload(m)[m->len] = '\0';
    return 0;
}

int st_msg_appendf(st_msg_t **mp, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return st_msg_append(mp, tmp, (size_t)n);
}

