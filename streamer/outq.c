/* outq.c — one client's outgoing queue, the only code that touches it. Runs only on the
 * lws service thread.
 *
 * Two parts, sent in this order: replies (acks, errors, pongs, snapshots) in a small ring,
 * then the pending updates, at most one per (symbol, kind) — the node lives in the
 * subscription (struct st_sub), so a newer update of the same symbol replaces the queued
 * one in place (latest wins). Every queued message is counted in q->bytes by its payload
 * length, so a client's backlog is bounded in bytes (--max-pending-bytes), not only in
 * counts: a "*" snapshot at 2,000 symbols is ~1.6 MB, and 32 of them used to fit. A "*"
 * snapshot waits as a NULL entry and is built by the sender when its turn comes. */
#include "streamer.h"

#include <string.h>

/* One message larger than the bound (a "*" snapshot of 10,000 symbols is ~8 MB) must still
 * be deliverable: it is refused only when something else is already waiting. */
static bool st_outq_fits(const struct st_outq *q, size_t len, size_t max_bytes)
{
    return st_outq_empty(q) || q->bytes + len <= max_bytes;
}

/* A full snapshot carries the newest state of everything the client follows: earlier
 * snapshots still waiting are superseded. Returns how many were dropped. */
static int st_outq_drop_snapshots(struct st_outq *q)
{
    int kept = 0, dropped = 0;
    for (int i = 0; i < q->ctl_len; i++) {
        int at = (q->ctl_head + i) % ST_CTL_MAX;
        st_msg_t *m = q->ctl[at];
        enum st_ctl_kind k = q->ctl_kind[at];
        if (k != ST_CTL_REPLY) {
            q->bytes -= m ? st_msg_len(m) : 0;
            st_msg_unref(m);
            dropped++;
            continue;
        }
        int to = (q->ctl_head + kept++) % ST_CTL_MAX;
        q->ctl[to] = m;
        q->ctl_kind[to] = k;
    }
    q->ctl_len = kept;
    return dropped;
}

enum st_outq_rc st_outq_ctl(struct st_outq *q, st_msg_t *m, enum st_ctl_kind kind, size_t max_bytes,
                            int *superseded)
{
    *superseded = kind == ST_CTL_FULL_SNAPSHOT ? st_outq_drop_snapshots(q) : 0;
    size_t len = m ? st_msg_len(m) : 0;
    enum st_outq_rc rc = ST_OUTQ_OK;
    if (q->ctl_len == ST_CTL_MAX)
        rc = ST_OUTQ_FULL;
    else if (!st_outq_fits(q, len, max_bytes))
        rc = ST_OUTQ_OVER;
    if (rc != ST_OUTQ_OK) {
        st_msg_unref(m);
        return rc;
    }
    int at = (q->ctl_head + q->ctl_len) % ST_CTL_MAX;
    q->ctl[at] = m; /* the queue takes the caller's reference */
    q->ctl_kind[at] = kind;
    q->ctl_len++;
    q->bytes += len;
    return ST_OUTQ_OK;
}

enum st_outq_rc st_outq_put(struct st_outq *q, struct st_qnode *n, st_msg_t *m, int max_len,
                            size_t max_bytes)
{
    if (n->msg) {
        /* Latest wins: keep the queue position, swap the payload (sizes are alike). */
        q->bytes = q->bytes - st_msg_len(n->msg) + st_msg_len(m);
        st_msg_unref(n->msg);
        n->msg = st_msg_ref(m);
        return ST_OUTQ_CONFLATED;
    }
    if (q->len >= max_len)
        return ST_OUTQ_FULL;
    if (!st_outq_fits(q, st_msg_len(m), max_bytes))
        return ST_OUTQ_OVER;
    n->msg = st_msg_ref(m); /* the node holds its own reference while queued */
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->len++;
    q->bytes += st_msg_len(m);
    return ST_OUTQ_OK;
}

static void st_outq_unlink(struct st_outq *q, struct st_qnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->prev = n->next = NULL;
    q->len--;
    q->bytes -= st_msg_len(n->msg);
}

void st_outq_clear(struct st_outq *q, struct st_qnode *n)
{
    if (!n->msg)
        return;
    st_outq_unlink(q, n);
    st_msg_unref(n->msg);
    n->msg = NULL;
}

bool st_outq_take_ctl(struct st_outq *q, st_msg_t **m)
{
    if (!q->ctl_len)
        return false;
    *m = q->ctl[q->ctl_head]; /* the caller gets the queue's reference */
    q->ctl_head = (q->ctl_head + 1) % ST_CTL_MAX;
    q->ctl_len--;
    q->bytes -= *m ? st_msg_len(*m) : 0;
    return true;
}

st_msg_t *st_outq_take(struct st_outq *q)
{
    struct st_qnode *n = q->head;
    if (!n)
        return NULL;
    st_msg_t *m = n->msg;
    st_outq_unlink(q, n);
    n->msg = NULL;
    return m; /* the caller gets the node's reference */
}

bool st_outq_batchable(const struct st_outq *q, size_t cap)
{
    return q->len >= 2 && st_msg_len(q->head->msg) + st_msg_len(q->head->next->msg) < cap / 2;
}

size_t st_outq_take_batch(struct st_outq *q, char *dst, size_t cap, int *count)
{
    static const char head[] = "{\"type\":\"batch\",\"updates\":[";
    size_t len = sizeof head - 1;
    int n = 0;
    int64_t at = st_stage_on() ? st_stage_now_us() : 0;
    memcpy(dst, head, len);
    while (q->head && len + st_msg_len(q->head->msg) + 3 <= cap) {
        st_msg_t *m = st_outq_take(q);
        if (n++)
            dst[len++] = ',';
        memcpy(dst + len, st_msg_payload(m), st_msg_len(m));
        len += st_msg_len(m);
        if (at)
            st_stage_written(m, at);
        st_msg_unref(m);
    }
    dst[len++] = ']';
    dst[len++] = '}';
    *count = n;
    return len;
}

void st_outq_free_ctl(struct st_outq *q)
{
    st_msg_t *m;
    while (st_outq_take_ctl(q, &m))
        st_msg_unref(m);
}

void st_outq_free(struct st_outq *q)
{
    while (q->head)
        st_outq_clear(q, q->head);
    st_outq_free_ctl(q);
}
