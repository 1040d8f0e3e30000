/* takeback.c — undelivered messages of a failed Kafka client, in publishing order,
 * and the pace of client rebuilds (takeback.h). */
#include "takeback.h"
#include "kline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t tb_mu = PTHREAD_MUTEX_INITIALIZER;
static tb_msg_t *tb_v;
static size_t tb_n, tb_cap, tb_seq;

static int tb_grow(void)
{
    if (tb_n < tb_cap)
        return 0;
    size_t cap = tb_cap ? tb_cap * 2 : 1024;
    tb_msg_t *v = realloc(tb_v, cap * sizeof *v);
    if (!v)
        return -1;
    tb_v = v;
    tb_cap = cap;
    return 0;
}

static void tb_order(tb_msg_t *e, bool is_kline)
{
    kline_t k;
    char why[128];
    e->open_time = 0;
    e->closed = true;
    if (is_kline && kline_parse(e->val, e->vlen, NULL, NULL, &k, why, sizeof why) == 0) {
        e->open_time = k.open_time;
        e->closed = k.closed;
    }
}

int tb_add(int topic, const void *key, size_t klen, const void *val, size_t vlen, int64_t ts_ms,
           void *opaque, rd_kafka_headers_t *hdrs, bool is_kline)
{
    tb_msg_t e = { .topic = topic, .klen = klen, .vlen = vlen, .ts_ms = ts_ms, .opaque = opaque, .hdrs = hdrs };
    e.key = malloc(klen + vlen + 1);
    if (!e.key) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        return -1;
    }
    if (klen)
        memcpy(e.key, key, klen);
    e.val = e.key + klen;
    if (vlen)
        memcpy(e.val, val, vlen);
    e.val[vlen] = '\0';
    tb_order(&e, is_kline);
    pthread_mutex_lock(&tb_mu);
    int rc = tb_grow();
    if (rc == 0) {
        e.seq = tb_seq++;
        tb_v[tb_n++] = e; /* the entry (bytes, hdrs) is the list's now */
    }
    pthread_mutex_unlock(&tb_mu);
    if (rc < 0)
        tb_msg_free(&e);
    return rc;
}

size_t tb_count(void)
{
    pthread_mutex_lock(&tb_mu);
    size_t n = tb_n;
    pthread_mutex_unlock(&tb_mu);
    return n;
}

static int tb_cmp(const void *pa, const void *pb)
{
    const tb_msg_t *a = pa, *b = pb;
    if (a->topic != b->topic)
        return a->topic < b->topic ? -1 : 1;
    size_t m = a->klen < b->klen ? a->klen : b->klen;
    int c = m ? memcmp(a->key, b->key, m) : 0;
    if (c || a->klen != b->klen)
        return c ? c : a->klen < b->klen ? -1 : 1;
    if (a->open_time != b->open_time)
        return a->open_time < b->open_time ? -1 : 1;
    if (a->closed != b->closed)
        return a->closed ? 1 : -1; /* a provisional kline went out before its closed one */
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

tb_msg_t *tb_take_all(size_t *n)
{
    pthread_mutex_lock(&tb_mu);
    tb_msg_t *v = tb_v;
    *n = tb_n;
    tb_v = NULL;
    tb_n = tb_cap = 0;
    pthread_mutex_unlock(&tb_mu);
    if (v && *n > 1)
        qsort(v, *n, sizeof *v, tb_cmp);
    return v;
}

void tb_msg_free(tb_msg_t *m)
{
    free(m->key);
    m->key = m->val = NULL;
    if (m->hdrs)
        rd_kafka_headers_destroy(m->hdrs);
    m->hdrs = NULL;
}

int64_t tb_pace_wait_ms(const tb_pace_t *p, int64_t now_ms)
{
    int64_t oldest = p->t[p->next];
    if (!oldest)
        return 0;
    int64_t until = oldest + TB_PACE_WINDOW_MS;
    return until > now_ms ? until - now_ms : 0;
}

void tb_pace_record(tb_pace_t *p, int64_t now_ms)
{
    p->t[p->next] = now_ms ? now_ms : 1; /* 0 means "none" */
    p->next = (p->next + 1) % TB_PACE_BURST;
}
