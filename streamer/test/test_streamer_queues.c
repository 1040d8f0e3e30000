/* Unit tests of streamer/outq.c (a client's pending queue: byte accounting, latest wins,
 * snapshots superseded, the byte bound, batches) and streamer/sset.c (a client's
 * subscriptions by symbol). cmocka, TAP via tests/run.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../streamer.h"

static st_msg_t *msg(const char *s)
{
    return st_msg_dup(s, strlen(s));
}

static st_msg_t *big(size_t n)
{
    char *s = malloc(n);
    memset(s, 'x', n);
    st_msg_t *m = st_msg_dup(s, n);
    free(s);
    return m;
}

static void test_ctl_bytes_and_order(void **state)
{
    (void)state;
    struct st_outq q = {0};
    int sup;
    assert_int_equal(st_outq_ctl(&q, msg("abc"), ST_CTL_REPLY, 1000, &sup), ST_OUTQ_OK);
    assert_int_equal(st_outq_ctl(&q, msg("defgh"), ST_CTL_REPLY, 1000, &sup), ST_OUTQ_OK);
    assert_int_equal(q.bytes, 8);
    st_msg_t *m;
    assert_true(st_outq_take_ctl(&q, &m));
    assert_string_equal(st_msg_payload(m), "abc");
    st_msg_unref(m);
    assert_int_equal(q.bytes, 5);
    st_outq_free_ctl(&q);
    assert_int_equal(q.bytes, 0);
    assert_true(st_outq_empty(&q));
}

static void test_ctl_ring_full(void **state)
{
    (void)state;
    struct st_outq q = {0};
    int sup;
    for (int i = 0; i < ST_CTL_MAX; i++)
        assert_int_equal(st_outq_ctl(&q, msg("r"), ST_CTL_REPLY, 1 << 20, &sup), ST_OUTQ_OK);
    assert_int_equal(st_outq_ctl(&q, msg("r"), ST_CTL_REPLY, 1 << 20, &sup), ST_OUTQ_FULL);
    assert_int_equal(q.ctl_len, ST_CTL_MAX);
    st_outq_free_ctl(&q);
}

/* One message alone always fits; behind something else it must stay within the bound. */
static void test_byte_bound(void **state)
{
    (void)state;
    struct st_outq q = {0};
    int sup;
    assert_int_equal(st_outq_ctl(&q, big(5000), ST_CTL_SNAPSHOT, 1000, &sup), ST_OUTQ_OK);
    assert_int_equal(st_outq_ctl(&q, msg("reply"), ST_CTL_REPLY, 1000, &sup), ST_OUTQ_OVER);
    assert_int_equal(q.bytes, 5000);
    st_outq_free_ctl(&q);
    struct st_qnode n1 = {0}, n2 = {0};
    assert_int_equal(st_outq_ctl(&q, big(600), ST_CTL_REPLY, 1000, &sup), ST_OUTQ_OK);
    st_msg_t *u = big(300);
    assert_int_equal(st_outq_put(&q, &n1, u, 100, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_put(&q, &n2, u, 100, 1000), ST_OUTQ_OVER);
    assert_null(n2.msg);
    assert_int_equal(q.bytes, 900);
    st_outq_clear(&q, &n1);
    st_outq_free_ctl(&q);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(u->refs, 1);
    st_msg_unref(u);
}

/* A full snapshot replaces the snapshots still waiting; replies stay, in order. */
static void test_snapshot_superseded(void **state)
{
    (void)state;
    struct st_outq q = {0};
    int sup;
    st_outq_ctl(&q, msg("sub1"), ST_CTL_REPLY, 1 << 20, &sup);
    st_outq_ctl(&q, msg("snapA"), ST_CTL_SNAPSHOT, 1 << 20, &sup);
    st_outq_ctl(&q, msg("sub2"), ST_CTL_REPLY, 1 << 20, &sup);
    st_outq_ctl(&q, msg("snapB"), ST_CTL_FULL_SNAPSHOT, 1 << 20, &sup);
    assert_int_equal(sup, 1);
    st_outq_ctl(&q, msg("sub3"), ST_CTL_REPLY, 1 << 20, &sup);
    st_outq_ctl(&q, msg("snapC"), ST_CTL_FULL_SNAPSHOT, 1 << 20, &sup);
    assert_int_equal(sup, 1);
    assert_int_equal(q.bytes, 4 * 3 + 5);
    /* a deferred one (NULL, built by the sender) replaces snapC and counts no bytes */
    st_outq_ctl(&q, NULL, ST_CTL_FULL_SNAPSHOT, 1 << 20, &sup);
    assert_int_equal(sup, 1);
    assert_int_equal(q.bytes, 4 * 3);
    const char *want[] = {"sub1", "sub2", "sub3", NULL};
    for (int i = 0; i < 4; i++) {
        st_msg_t *m;
        assert_true(st_outq_take_ctl(&q, &m));
        if (!want[i]) {
            assert_null(m);
            continue;
        }
        assert_string_equal(st_msg_payload(m), want[i]);
        st_msg_unref(m);
    }
    st_msg_t *m;
    assert_false(st_outq_take_ctl(&q, &m));
    assert_int_equal(q.bytes, 0);
}

/* Latest wins: a newer update takes the queued one's place; bytes follow the payload. */
static void test_updates_conflate_and_batch(void **state)
{
    (void)state;
    struct st_outq q = {0};
    struct st_qnode a = {0}, b = {0};
    st_msg_t *a1 = msg("{\"a\":1}"), *b1 = msg("{\"b\":1}"), *a2 = msg("{\"a\":22}");
    assert_int_equal(st_outq_put(&q, &a, a1, 10, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_put(&q, &b, b1, 10, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_put(&q, &a, a2, 10, 1000), ST_OUTQ_CONFLATED);
    assert_int_equal(q.len, 2);
    assert_int_equal(q.bytes, st_msg_len(a2) + st_msg_len(b1));
    assert_int_equal(a1->refs, 1);
    assert_true(st_outq_batchable(&q, 1024));
    char buf[1100];
    int n;
    size_t len = st_outq_take_batch(&q, buf, 1024, &n);
    buf[len] = '\0';
    assert_int_equal(n, 2);
    assert_string_equal(buf, "{\"type\":\"batch\",\"updates\":[{\"a\":22},{\"b\":1}]}");
    assert_true(st_outq_empty(&q));
    assert_int_equal(q.bytes, 0);
    /* the count bound (--queue-max) */
    assert_int_equal(st_outq_put(&q, &a, a1, 1, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_put(&q, &b, b1, 1, 1000), ST_OUTQ_FULL);
    st_outq_clear(&q, &a);
    st_msg_unref(a1);
    st_msg_unref(b1);
    st_msg_unref(a2);
}

/* st_outq_free lets go of every update slot and every reply, and their references. */
static void test_free_all(void **state)
{
    (void)state;
    struct st_outq q = {0};
    struct st_qnode a = {0}, b = {0};
    st_msg_t *u = msg("{\"u\":1}"), *r = msg("reply");
    int sup;
    assert_int_equal(st_outq_put(&q, &a, u, 10, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_put(&q, &b, u, 10, 1000), ST_OUTQ_OK);
    assert_int_equal(st_outq_ctl(&q, st_msg_ref(r), ST_CTL_REPLY, 1000, &sup), ST_OUTQ_OK);
    assert_int_equal(u->refs, 3);
    assert_int_equal(r->refs, 2);
    st_outq_free(&q);
    assert_true(st_outq_empty(&q));
    assert_int_equal(q.len, 0);
    assert_int_equal(q.bytes, 0);
    assert_null(a.msg);
    assert_null(b.msg);
    assert_null(a.next);
    assert_int_equal(u->refs, 1);
    assert_int_equal(r->refs, 1);
    st_msg_unref(u);
    st_msg_unref(r);
}

/* Thousands of adds and deletes in random order against a plain array of flags. */
static void test_sset_random(void **state)
{
    (void)state;
    enum { N = 3000 };
    static struct st_symbol syms[N];
    static struct st_sub subs[N];
    static bool in[N];
    struct st_sset t = {0};
    int n = 0;
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        syms[i].id = (uint64_t)i + 1;
        subs[i].s = &syms[i];
    }
    for (int step = 0; step < 60000; step++) {
        int i = rand_r(&seed) % N;
        if (in[i]) {
            st_sset_del(&t, &subs[i]);
            n--;
        } else {
            assert_int_equal(st_sset_add(&t, &subs[i], n), 0);
            n++;
        }
        in[i] = !in[i];
        if (step % 1000 == 0)
            for (int k = 0; k < N; k++)
                assert_ptr_equal(st_sset_find(&t, &syms[k]), in[k] ? &subs[k] : NULL);
    }
    assert_true(t.cap >= 2u * (unsigned)n);
    for (int k = 0; k < N; k++)
        assert_ptr_equal(st_sset_find(&t, &syms[k]), in[k] ? &subs[k] : NULL);
    st_sset_free(&t);
    assert_null(st_sset_find(&t, &syms[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_bytes_and_order),
        cmocka_unit_test(test_ctl_ring_full),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_snapshot_superseded),
        cmocka_unit_test(test_updates_conflate_and_batch),
        cmocka_unit_test(test_free_all),
        cmocka_unit_test(test_sset_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
