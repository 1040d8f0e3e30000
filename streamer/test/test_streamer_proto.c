/* Unit tests of streamer/proto.c: a client's WebSocket message and the /api/klines query
 * string, from tables of good and hostile inputs. cmocka, TAP via tests/run.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../proto.h"

/* ---------------------------------------------------------------- helpers */

/* A buffer of n copies of unit between head and tail (malloc'd; caller frees). */
static char *rep(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *b = malloc(hl + ul * n + tl + 1);
    assert_non_null(b);
    memcpy(b, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(b + hl + i * ul, unit, ul);
    memcpy(b + hl + ul * n, tail, tl + 1);
    *len = hl + ul * n + tl;
    return b;
}

static void assert_printable(const char *s)
{
    assert_true(strlen(s) > 0);
    for (; *s; s++)
        assert_true(*s >= 0x20 && *s <= 0x7e);
}

/* ---------------------------------------------------------------- client messages */

struct msg_case {
    const char *in;
    size_t len;            /* 0: strlen(in) */
    int rc;
    const char *err_has;   /* refused: a substring of the reason */
};

static void check_msg_refused(const struct msg_case *t, int max)
{
    struct st_proto_msg m;
    char err[200] = "";
    size_t len = t->len ? t->len : strlen(t->in);
    int rc = st_proto_parse_client(t->in, len, max, &m, err, sizeof err);
    if (rc != -1)
        fail_msg("accepted: %.*s", (int)len, t->in);
    assert_printable(err);
    if (!strstr(err, t->err_has))
        fail_msg("input %.*s: reason \"%s\" lacks \"%s\"", (int)len, t->in, err, t->err_has);
    assert_null(m.symbols);
    assert_int_equal(m.nsymbols, 0);
    assert_int_equal(m.op, ST_OP_NONE);
    st_proto_msg_free(&m);
}

static void test_client_good(void **state)
{
    (void)state;
    struct st_proto_msg m;
    char err[200];

    const char *s = "{\"op\":\"subscribe\",\"symbols\":[\"BTCUSDT\",\"ethusdt\"]}";
    assert_int_equal(st_proto_parse_client(s, strlen(s), 256, &m, err, sizeof err), 0);
    assert_int_equal(m.op, ST_OP_SUBSCRIBE);
    assert_int_equal(m.nsymbols, 2);
    assert_string_equal(m.symbols[0], "BTCUSDT");
    assert_string_equal(m.symbols[1], "ETHUSDT"); /* upper-cased */
    assert_false(m.wildcard);
    st_proto_msg_free(&m);
    assert_null(m.symbols);

    const char *w = "{\"op\":\"unsubscribe\",\"symbols\":[\"a1\",\"*\"]}";
    assert_int_equal(st_proto_parse_client(w, strlen(w), 256, &m, err, sizeof err), 0);
    assert_int_equal(m.op, ST_OP_UNSUBSCRIBE);
    assert_int_equal(m.nsymbols, 2);
    assert_string_equal(m.symbols[1], "*");
    assert_true(m.wildcard);
    st_proto_msg_free(&m);

    const char *p = " {\"id\":-9223372036854775808,\"op\":\"ping\",\"extra\":[1,{}]} ";
    assert_int_equal(st_proto_parse_client(p, strlen(p), 256, &m, err, sizeof err), 0);
    assert_int_equal(m.op, ST_OP_PING);
    assert_true(m.has_id);
    assert_true(m.id == (-9223372036854775807LL - 1));
    st_proto_msg_free(&m);

    const char *p2 = "{\"op\":\"ping\",\"id\":\"7\"}"; /* a non-integer id is not echoed */
    assert_int_equal(st_proto_parse_client(p2, strlen(p2), 256, &m, err, sizeof err), 0);
    assert_false(m.has_id);
    st_proto_msg_free(&m);

    const char *e = "{\"op\":\"subscribe\",\"symbols\":[]}"; /* allowed: changes nothing */
    assert_int_equal(st_proto_parse_client(e, strlen(e), 256, &m, err, sizeof err), 0);
    assert_int_equal(m.nsymbols, 0);
    st_proto_msg_free(&m);

    /* exactly 20 characters, exactly max symbols */
    const char *l = "{\"op\":\"subscribe\",\"symbols\":[\"ABCDEFGHIJKLMNOPQRST\",\"X\"]}";
    assert_int_equal(st_proto_parse_client(l, strlen(l), 2, &m, err, sizeof err), 0);
    assert_string_equal(m.symbols[0], "ABCDEFGHIJKLMNOPQRST");
    st_proto_msg_free(&m);
}

static void test_client_hostile(void **state)
{
    (void)state;
    static const struct msg_case cases[] = {
        {"", 0, -1, "malformed"},
        {"null", 0, -1, "malformed"},
        {"[{\"op\":\"ping\"}]", 0, -1, "malformed"},
        {"\"op\"", 0, -1, "malformed"},
        {"{\"op\":\"ping\"", 0, -1, "malformed"},                  /* truncated */
        {"{\"op\":\"ping\"}{\"op\":\"ping\"}", 0, -1, "malformed"}, /* two documents */
        {"{\"op\":\"ping\",\"op\":\"ping\"}", 0, -1, "malformed"},  /* duplicate key */
        {"{\"op\":\"p\\u0000ing\"}", 0, -1, "malformed"},          /* NUL escape */
        {"{\"op\":\"ping\"}\0junk", 18, -1, "malformed"},          /* raw NUL after the object */
        {"{\"op\":\"\xff\xfe\"}", 0, -1, "malformed"},             /* invalid UTF-8 */
        {"{\"op\":\"\xc0\xaf\"}", 0, -1, "malformed"},             /* overlong encoding */
        {"{\"op\":\"\xed\xa0\x80\"}", 0, -1, "malformed"},         /* UTF-16 surrogate */
        {"{\"symbols\":[\"BTCUSDT\"]}", 0, -1, "missing \"op\""},
        {"{\"op\":7}", 0, -1, "missing \"op\""},
        {"{\"op\":\"SUBSCRIBE\",\"symbols\":[]}", 0, -1, "unknown op"},
        {"{\"op\":\"subscribe \",\"symbols\":[]}", 0, -1, "unknown op"},
        {"{\"op\":\"subscribe\"}", 0, -1, "must be an array"},
        {"{\"op\":\"subscribe\",\"symbols\":\"BTCUSDT\"}", 0, -1, "must be an array"},
        {"{\"op\":\"subscribe\",\"symbols\":{\"0\":\"BTCUSDT\"}}", 0, -1, "must be an array"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"BTCUSDT\",7]}", 0, -1, "symbol #2"},
        {"{\"op\":\"subscribe\",\"symbols\":[null]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[[\"BTCUSDT\"]]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"ABCDEFGHIJKLMNOPQRSTU\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"BTC'; DROP TABLE kline_1s;--\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"BTC USDT\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"BTC*\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"**\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"\\u00e9TH\"]}", 0, -1, "symbol #1"}, /* é */
        {"{\"op\":\"subscribe\",\"symbols\":[\"\xc3\xa9TH\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"BTC\\\"\"]}", 0, -1, "symbol #1"},
        {"{\"op\":\"subscribe\",\"symbols\":[\"A\",\"B\",\"C\"]}", 0, -1, "too many symbols"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_msg_refused(&cases[i], 2);
}

static void test_client_huge(void **state)
{
    (void)state;
    struct st_proto_msg m;
    char err[200];
    size_t len;

    /* deep nesting: jansson's depth limit refuses it without exhausting the stack */
    char *d = rep("", "[", 100000, "", &len);
    assert_int_equal(st_proto_parse_client(d, len, 256, &m, err, sizeof err), -1);
    free(d);
    d = rep("{\"op\":\"ping\",\"x\":", "{\"a\":", 5000, "1", &len);
    assert_int_equal(st_proto_parse_client(d, len, 256, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "malformed"));
    free(d);

    /* a huge array is refused by its size, before any symbol is looked at */
    d = rep("{\"op\":\"subscribe\",\"symbols\":[", "\"BTCUSDT\",", 100000, "\"X\"]}", &len);
    assert_int_equal(st_proto_parse_client(d, len, 256, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many symbols in one request (max 256)"));
    assert_null(m.symbols);
    free(d);
    /* ... and accepted in full when the limit allows it */
    d = rep("{\"op\":\"subscribe\",\"symbols\":[", "\"BTCUSDT\",", 999, "\"X\"]}", &len);
    assert_int_equal(st_proto_parse_client(d, len, 1000, &m, err, sizeof err), 0);
    assert_int_equal(m.nsymbols, 1000);
    assert_string_equal(m.symbols[999], "X");
    st_proto_msg_free(&m);
    free(d);

    /* an overlong symbol and an overlong op */
    d = rep("{\"op\":\"subscribe\",\"symbols\":[\"", "A", 1 << 20, "\"]}", &len);
    assert_int_equal(st_proto_parse_client(d, len, 256, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbol #1"));
    free(d);
    d = rep("{\"op\":\"", "subscribe", 10000, "\"}", &len);
    assert_int_equal(st_proto_parse_client(d, len, 256, &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown op"));
    free(d);

    /* a zero-length buffer and a NULL error buffer are both fine */
    assert_int_equal(st_proto_parse_client("", 0, 256, &m, NULL, 0), -1);
}

/* ---------------------------------------------------------------- /api/klines */

struct q_case {
    const char *qs;
    size_t len;                /* 0: strlen */
    const char *err_has;       /* NULL: accepted with the values below */
    const char *symbol, *interval;
    long long from, to;
    int has_from, limit;
};

#define TMAX ST_PROTO_TIME_MAX

static const struct q_case q_cases[] = {
    /* accepted */
    {"symbol=BTCUSDT", 0, NULL, "BTCUSDT", "1m", 0, TMAX, 0, 500},
    {"symbol=btcusdt&interval=1s&limit=3", 0, NULL, "BTCUSDT", "1s", 0, TMAX, 0, 3},
    {"interval=15m&symbol=E1&from=5&to=5", 0, NULL, "E1", "15m", 5, 5, 1, 500},
    {"symbol=X&from=0&to=253402300799999", 0, NULL, "X", "1m", 0, TMAX, 1, 500},
    {"symbol=X&to=0", 0, NULL, "X", "1m", 0, 0, 0, 500},
    {"symbol=X&limit=5000", 0, NULL, "X", "1m", 0, TMAX, 0, 5000},
    {"symbol=X&limit=5001", 0, NULL, "X", "1m", 0, TMAX, 0, 5000},       /* capped */
    {"symbol=X&limit=1000000", 0, NULL, "X", "1m", 0, TMAX, 0, 5000},
    {"symbol=X&limit=0000000000000000000000000007", 0, NULL, "X", "1m", 0, TMAX, 0, 7},
    {"symbol=BTC%55SDT&interval=%31%64", 0, NULL, "BTCUSDT", "1d", 0, TMAX, 0, 500},
    {"%73ymbol=x", 0, NULL, "X", "1m", 0, TMAX, 0, 500},                  /* encoded name */
    {"symbol=X&&limit=4&", 0, NULL, "X", "1m", 0, TMAX, 0, 4},           /* empty args skipped */
    {"symbol=ABCDEFGHIJKLMNOPQRST", 0, NULL, "ABCDEFGHIJKLMNOPQRST", "1m", 0, TMAX, 0, 500},
    /* refused */
    {"", 0, "symbol is required", 0, 0, 0, 0, 0, 0},
    {"interval=1m", 0, "symbol is required", 0, 0, 0, 0, 0, 0},
    {"symbol", 0, "name=value", 0, 0, 0, 0, 0, 0},
    {"symbol=", 0, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=ABCDEFGHIJKLMNOPQRSTU", 0, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC'%20OR%20'1'='1", 0, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=BTCUSDT%27%3B%20DROP%20TABLE%20kline_1s%3B--", 0, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC-USDT", 0, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC+USDT", 0, "symbol must be", 0, 0, 0, 0, 0, 0},          /* '+' is a space */
    {"symbol=BTC%00USDT", 0, "symbol must be", 0, 0, 0, 0, 0, 0},        /* NUL cannot truncate */
    {"symbol=BTC\0USDT", 15, "symbol must be", 0, 0, 0, 0, 0, 0},
    {"symbol=%C3%A9", 0, "symbol must be", 0, 0, 0, 0, 0, 0},            /* UTF-8 é */
    {"symbol=%FF%FE", 0, "symbol must be", 0, 0, 0, 0, 0, 0},            /* invalid UTF-8 */
    {"symbol=BTC%zzUSDT", 0, "percent-encoding", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC%4", 0, "percent-encoding", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC%", 0, "percent-encoding", 0, 0, 0, 0, 0, 0},
    {"symbol=BTC%%41", 0, "percent-encoding", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=1M", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=2m", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=1m%00", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=1m;DROP TABLE x", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=kline_1m", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&interval=1m%20", 0, "interval must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=0", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=-1", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=1000001", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=99999999999999999999999", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=18446744073709551617", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=1e3", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=0x10", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=%2B5", 0, "limit must be", 0, 0, 0, 0, 0, 0},      /* "+5" */
    {"symbol=X&limit=%205", 0, "limit must be", 0, 0, 0, 0, 0, 0},      /* " 5" */
    {"symbol=X&limit=5%00", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=", 0, "limit must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&from=-1", 0, "from must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&from=253402300800000", 0, "from must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&to=9223372036854775808", 0, "to must be", 0, 0, 0, 0, 0, 0},
    {"symbol=X&from=6&to=5", 0, "not be after", 0, 0, 0, 0, 0, 0},
    {"symbol=X&symbol=Y", 0, "repeated", 0, 0, 0, 0, 0, 0},
    {"symbol=X&limit=1&limit=1", 0, "repeated", 0, 0, 0, 0, 0, 0},
    {"symbol=X&Symbol=Y", 0, "unknown query parameter", 0, 0, 0, 0, 0, 0},
    {"symbol=X&table=kline_1s", 0, "unknown query parameter", 0, 0, 0, 0, 0, 0},
    {"symbol%00=X", 0, "unknown query parameter", 0, 0, 0, 0, 0, 0},
    {"symbol=X&=5", 0, "unknown query parameter", 0, 0, 0, 0, 0, 0},
};

static void check_query(const struct q_case *t)
{
    struct st_db_req r;
    char err[200] = "";
    size_t len = t->len ? t->len : strlen(t->qs);
    int rc = st_proto_parse_klines_query(t->qs, len, &r, err, sizeof err);
    if (!t->err_has) {
        if (rc != 0)
            fail_msg("refused %.*s: %s", (int)len, t->qs, err);
        assert_string_equal(r.symbol, t->symbol);
        assert_string_equal(r.interval, t->interval);
        assert_true(r.from == t->from);
        assert_true(r.to == t->to);
        assert_int_equal(r.has_from, t->has_from);
        assert_int_equal(r.limit, t->limit);
        return;
    }
    if (rc != -1)
        fail_msg("accepted: %.*s", (int)len, t->qs);
    assert_printable(err);
    if (!strstr(err, t->err_has))
        fail_msg("query %.*s: reason \"%s\" lacks \"%s\"", (int)len, t->qs, err, t->err_has);
}

static void test_query_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof q_cases / sizeof q_cases[0]; i++)
        check_query(&q_cases[i]);
}

static void test_query_limits(void **state)
{
    (void)state;
    struct st_db_req r;
    char err[200];
    size_t len;

    /* 16 parameters are fine (empty ones do not count), 17 are not */
    char *q = rep("symbol=X", "&", 100, "", &len);
    assert_int_equal(st_proto_parse_klines_query(q, len, &r, err, sizeof err), 0);
    free(q);
    char many[512] = "symbol=X";
    for (int i = 0; i < 15; i++)
        strcat(many, "&x=1"); /* unknown: refused as such while the count allows */
    assert_int_equal(st_proto_parse_klines_query(many, strlen(many), &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown query parameter"));

    /* a 200-byte argument is looked at, a 201-byte one (after decoding) is not */
    q = rep("symbol=", "A", 193, "", &len);
    assert_int_equal(len, 200);
    assert_int_equal(st_proto_parse_klines_query(q, len, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbol must be"));
    free(q);
    q = rep("symbol=", "A", 194, "", &len);
    assert_int_equal(st_proto_parse_klines_query(q, len, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many or too long"));
    free(q);
    q = rep("symbol=", "%41", 194, "", &len); /* 589 raw bytes, 201 decoded */
    assert_int_equal(st_proto_parse_klines_query(q, len, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many or too long"));
    free(q);
    q = rep("symbol=X&limit=", "9", 1 << 20, "", &len); /* a megabyte of digits */
    assert_int_equal(st_proto_parse_klines_query(q, len, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many or too long"));
    free(q);
}

/* The pre-split form http.c uses (lws has decoded and split already). */
static void test_query_args(void **state)
{
    (void)state;
    struct st_db_req r;
    char err[200];
    const char *a1[] = {"symbol=ethusdt", "interval=4h", "from=100", "limit=2"};
    size_t l1[] = {14, 11, 8, 7};
    assert_int_equal(st_proto_parse_klines_args(a1, l1, 4, &r, err, sizeof err), 0);
    assert_string_equal(r.symbol, "ETHUSDT");
    assert_string_equal(r.interval, "4h");
    assert_true(r.has_from && r.from == 100 && r.to == TMAX && r.limit == 2);

    /* lengths, not NULs, delimit: "limit=5\0 0" is 10 bytes and not a number */
    const char *a2[] = {"symbol=X", "limit=5\0 0"};
    size_t l2[] = {8, 10};
    assert_int_equal(st_proto_parse_klines_args(a2, l2, 2, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit must be"));

    /* the symbol prefix of a longer, not NUL-terminated buffer */
    const char *a3[] = {"symbol=BTCUSDTGARBAGE"};
    size_t l3[] = {14};
    assert_int_equal(st_proto_parse_klines_args(a3, l3, 1, &r, err, sizeof err), 0);
    assert_string_equal(r.symbol, "BTCUSDT");

    const char *a4[17];
    size_t l4[17];
    for (int i = 0; i < 17; i++) {
        a4[i] = i ? "x=1" : "symbol=X";
        l4[i] = strlen(a4[i]);
    }
    assert_int_equal(st_proto_parse_klines_args(a4, l4, 17, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown query parameter")); /* #2 is refused first */
    for (int i = 1; i < 17; i++)
        a4[i] = "", l4[i] = 0;
    assert_int_equal(st_proto_parse_klines_args(a4, l4, 17, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "name=value"));
}

static void test_interval_tables(void **state)
{
    (void)state;
    bool rollup = true;
    assert_string_equal(st_proto_interval_table("1s", &rollup), "kline_1s");
    assert_false(rollup);
    assert_string_equal(st_proto_interval_table("1d", &rollup), "kline_1d");
    assert_true(rollup);
    assert_null(st_proto_interval_table("1M", &rollup));
    assert_null(st_proto_interval_table("", NULL));
    assert_null(st_proto_interval_table(NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_good),
        cmocka_unit_test(test_client_hostile),
        cmocka_unit_test(test_client_huge),
        cmocka_unit_test(test_query_table),
        cmocka_unit_test(test_query_limits),
        cmocka_unit_test(test_query_args),
        cmocka_unit_test(test_interval_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
