/*
 * test_kline.c — the kline codec against the real Binance samples in
 * tests/data/binance (every line, every field), and against malformed input.
 *
 * Where the samples live: $KP_TEST_DATA (the folder holding the sample files,
 * or its parent with a binance/ folder) if set, else $KP_ROOT/tests/data/binance,
 * else tests/data/binance from the current directory (tests/run.sh runs from the
 * repo root). A missing sample file fails the test: the files are in the tree.
 *
 * Expected values are read from the files by the test itself (its own JSON and
 * CSV reading), not by the codec, plus a few literals checked by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "kline.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static char test_data_dir[1024];

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fclose(f);
    return 1;
}

static const char *data_dir(void)
{
    if (test_data_dir[0])
        return test_data_dir;
    const char *env = getenv("KP_TEST_DATA");
    const char *root = getenv("KP_ROOT");
    char probe[1200];
    if (env && *env) {
        snprintf(probe, sizeof probe, "%s/ws_kline_samples.jsonl", env);
        if (file_exists(probe))
            snprintf(test_data_dir, sizeof test_data_dir, "%s", env);
        else
            snprintf(test_data_dir, sizeof test_data_dir, "%s/binance", env);
    } else if (root && *root) {
        snprintf(test_data_dir, sizeof test_data_dir, "%s/tests/data/binance", root);
    } else {
        snprintf(test_data_dir, sizeof test_data_dir, "tests/data/binance");
    }
    return test_data_dir;
}

/* Whole file, NUL-terminated; the caller frees. */
static char *slurp(const char *name, size_t *len_out)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", data_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open sample %s (set KP_TEST_DATA or run from the repo root)", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* Splits buf in place into non-empty lines (without "\n"); returns the count. */
static size_t split_lines(char *buf, char **lines, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

static void parse_ok_(const char *buf, size_t len, const char *sh, const char *ih, kline_t *k,
                      const char *file, int line)
{
    char err[256] = "";
    if (kline_parse(buf, len, sh, ih, k, err, sizeof err) != 0) {
        fprintf(stderr, "unexpected reject: %s\n  input: %.300s\n", err, buf);
        _fail(file, line);
    }
}
#define parse_ok(buf, len, sh, ih, k) parse_ok_((buf), (len), (sh), (ih), (k), __FILE__, __LINE__)

/* Asserts a reject with a non-empty reason (containing want, if given) and
 * that *k was not touched. */
static void reject_(const char *buf, size_t len, const char *sh, const char *ih,
                    const char *want, const char *file, int line)
{
    kline_t k, before;
    memset(&k, 0x5a, sizeof k);
    before = k;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = kline_parse(buf, len, sh, ih, &k, err, sizeof err);
    if (rc != -1) {
        fprintf(stderr, "expected reject (want \"%s\"), got rc=%d\n  input: %.300s\n",
                want ? want : "", rc, buf ? buf : "(null)");
        _fail(file, line);
    }
    if (err[0] == '\0') {
        fprintf(stderr, "reject without a reason\n  input: %.300s\n", buf ? buf : "(null)");
        _fail(file, line);
    }
    if (want && !strstr(err, want)) {
        fprintf(stderr, "reason \"%s\" does not mention \"%s\"\n  input: %.300s\n", err, want,
                buf ? buf : "(null)");
        _fail(file, line);
    }
    if (memcmp(&k, &before, sizeof k) != 0) {
        fprintf(stderr, "a rejected parse wrote to *k\n");
        _fail(file, line);
    }
}
#define reject(buf, len, sh, ih, want) reject_((buf), (len), (sh), (ih), (want), __FILE__, __LINE__)
#define reject_s(s, want) reject((s), strlen(s), NULL, NULL, (want))
#define reject_h(s, sh, ih, want) reject((s), strlen(s), (sh), (ih), (want))

static void assert_kline_equal(const kline_t *a, const kline_t *b)
{
    assert_string_equal(a->symbol, b->symbol);
    assert_string_equal(a->interval, b->interval);
    assert_true(a->open_time == b->open_time);
    assert_true(a->close_time == b->close_time);
    assert_string_equal(a->open, b->open);
    assert_string_equal(a->high, b->high);
    assert_string_equal(a->low, b->low);
    assert_string_equal(a->close, b->close);
    assert_string_equal(a->volume, b->volume);
    assert_string_equal(a->quote_volume, b->quote_volume);
    assert_true(a->trades == b->trades);
    assert_string_equal(a->taker_buy_volume, b->taker_buy_volume);
    assert_string_equal(a->taker_buy_quote_volume, b->taker_buy_quote_volume);
    assert_true(a->first_trade_id == b->first_trade_id);
    assert_true(a->last_trade_id == b->last_trade_id);
    assert_int_equal(a->closed, b->closed);
    assert_true(a->event_time == b->event_time);
    assert_int_equal(a->source, b->source);
    /* kline_parse zeroes before filling, so equal klines are equal bytes. */
    assert_memory_equal(a, b, sizeof *a);
}

/* format → parse → identical kline, and formatting again gives the same text. */
static void assert_roundtrip(const kline_t *k)
{
    char out[KLINE_JSON_MAX], out2[KLINE_JSON_MAX];
    int n = kline_format(k, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(strlen(out), (size_t)n);
    assert_null(strchr(out, ' '));
    assert_null(strchr(out, '\n'));
    kline_t back;
    parse_ok(out, (size_t)n, NULL, NULL, &back);
    assert_kline_equal(k, &back);
    assert_int_equal(kline_format(&back, out2, sizeof out2), n);
    assert_string_equal(out, out2);
}

static json_t *json_must(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("test JSON does not load: %s: %s", e.text, text);
    return j;
}

/* Caller frees the result. */
static char *json_text(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(s);
    return s;
}

static void assert_json_str_field(const json_t *obj, const char *key, const char *got)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || !json_is_string(v))
        fail_msg("sample has no string \"%s\"", key);
    assert_string_equal(got, json_string_value(v));
}

static int64_t json_int_field(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return dflt;
    if (!json_is_integer(v))
        fail_msg("sample field \"%s\" is not an integer", key);
    return (int64_t)json_integer_value(v);
}

static const char *const ws_sample_names = "ws_kline_samples.jsonl";

/* The canonical record of docs/ARCHITECTURE.md §2, which is ws sample line 1. */
static const char canonical_example[] =
    "{\"symbol\":\"BTCUSDT\",\"interval\":\"1s\",\"open_time\":1789499996000,"
    "\"close_time\":1789499996999,\"open\":\"76168.36000000\",\"high\":\"76175.97000000\","
    "\"low\":\"76168.36000000\",\"close\":\"76175.97000000\",\"volume\":\"0.18974000\","
    "\"quote_volume\":\"14452.26191960\",\"trades\":114,\"taker_buy_volume\":\"0.08558000\","
    "\"taker_buy_quote_volume\":\"6518.56313820\",\"first_trade_id\":6684854486,"
    "\"last_trade_id\":6684854599,\"closed\":true,\"event_time\":1789499997024,"
    "\"source\":\"ws\"}";

/* The rows SOURCES.md quotes but does not store. */
static const char csv_us_btc_1m[] =
    "1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,"
    "8.21827000,1735689659999999,768978.75522470,2631,3.95157000,369757.32652890,0";
static const char csv_us_official_1h[] =
    "1735689600000000,4.15070000,4.15870000,4.15060000,4.15540000,539.23000000,"
    "1735693199999999,2240.39860900,13,401.82000000,1669.98121300,0";
static const char csv_ms_btc_1s[] =
    "1672531200000,16541.77000000,16543.20000000,16541.73000000,16542.37000000,2.03879000,"
    "1672531200999,33726.64613940,104,1.65187000,27326.28208680,0";

/* ------------------------------------------------------------------------ */
/* The real samples, field by field                                          */
/* ------------------------------------------------------------------------ */

static void test_ws_samples_parse_to_file_values(void **state)
{
    (void)state;
    char *buf = slurp(ws_sample_names, NULL);
    char *lines[64];
    size_t n = split_lines(buf, lines, 64);
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++) {
        kline_t k;
        parse_ok(lines[i], strlen(lines[i]), NULL, NULL, &k);
        json_t *root = json_must(lines[i]);
        const json_t *ev = json_object_get(root, "data") ? json_object_get(root, "data") : root;
        const json_t *kk = json_object_get(ev, "k");
        assert_non_null(kk);
        assert_json_str_field(kk, "s", k.symbol);
        assert_json_str_field(kk, "i", k.interval);
        assert_true(k.open_time == json_int_field(kk, "t", -99));
        assert_true(k.close_time == json_int_field(kk, "T", -99));
        assert_json_str_field(kk, "o", k.open);
        assert_json_str_field(kk, "h", k.high);
        assert_json_str_field(kk, "l", k.low);
        assert_json_str_field(kk, "c", k.close);
        assert_json_str_field(kk, "v", k.volume);
        assert_json_str_field(kk, "q", k.quote_volume);
        assert_true(k.trades == json_int_field(kk, "n", -99));
        assert_json_str_field(kk, "V", k.taker_buy_volume);
        assert_json_str_field(kk, "Q", k.taker_buy_quote_volume);
        assert_true(k.first_trade_id == json_int_field(kk, "f", -1));
        assert_true(k.last_trade_id == json_int_field(kk, "L", -1));
        assert_int_equal(k.closed, json_is_true(json_object_get(kk, "x")));
        assert_true(k.event_time == json_int_field(ev, "E", -99));
        assert_int_equal(k.source, KLINE_SRC_WS);
        json_decref(root);

        /* A trailing newline (as read by getline) changes nothing. */
        char withnl[2048];
        int m = snprintf(withnl, sizeof withnl, "%s\n", lines[i]);
        kline_t k2;
        parse_ok(withnl, (size_t)m, NULL, NULL, &k2);
        assert_kline_equal(&k, &k2);
    }

    /* Hand-checked literals: line 1 (combined, 1s), line 5 (zero trades, no B),
     * line 8 (1m, not closed). */
    kline_t k;
    parse_ok(lines[0], strlen(lines[0]), NULL, NULL, &k);
    assert_string_equal(k.symbol, "BTCUSDT");
    assert_string_equal(k.interval, "1s");
    assert_true(k.open_time == INT64_C(1789499996000));
    assert_true(k.close_time == INT64_C(1789499996999));
    assert_string_equal(k.high, "76175.97000000");
    assert_string_equal(k.quote_volume, "14452.26191960");
    assert_true(k.trades == 114);
    assert_true(k.first_trade_id == INT64_C(6684854486));
    assert_true(k.last_trade_id == INT64_C(6684854599));
    assert_true(k.event_time == INT64_C(1789499997024));
    assert_true(k.closed);

    parse_ok(lines[4], strlen(lines[4]), NULL, NULL, &k);
    assert_string_equal(k.symbol, "ETHUSDT");
    assert_true(k.trades == 0);
    assert_true(k.first_trade_id == -1 && k.last_trade_id == -1);
    assert_string_equal(k.volume, "0.00000000");

    parse_ok(lines[7], strlen(lines[7]), NULL, NULL, &k);
    assert_string_equal(k.interval, "1m");
    assert_false(k.closed);
    assert_true(k.close_time - k.open_time + 1 == 60000);
    free(buf);
}

static void check_csv_row(const char *row, const kline_t *k)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", row);
    char *col[13] = { 0 };
    int n = 0;
    char *save = NULL;
    for (char *c = strtok_r(copy, ",\r", &save); c && n < 13; c = strtok_r(NULL, ",\r", &save))
        col[n++] = c;
    assert_int_equal(n, 12);
    int64_t ot = strtoll(col[0], NULL, 10), ct = strtoll(col[6], NULL, 10);
    if (ot >= INT64_C(1000000000000000))
        ot /= 1000;
    if (ct >= INT64_C(1000000000000000))
        ct /= 1000;
    assert_true(k->open_time == ot);
    assert_true(k->close_time == ct);
    assert_string_equal(k->open, col[1]);
    assert_string_equal(k->high, col[2]);
    assert_string_equal(k->low, col[3]);
    assert_string_equal(k->close, col[4]);
    assert_string_equal(k->volume, col[5]);
    assert_string_equal(k->quote_volume, col[7]);
    assert_true(k->trades == strtoll(col[8], NULL, 10));
    assert_string_equal(k->taker_buy_volume, col[9]);
    assert_string_equal(k->taker_buy_quote_volume, col[10]);
    assert_true(k->first_trade_id == -1 && k->last_trade_id == -1);
    assert_true(k->event_time == 0);
    assert_true(k->closed);
    assert_int_equal(k->source, KLINE_SRC_REPLAY);
}

static void test_csv_rows_parse_to_file_values(void **state)
{
    (void)state;
    char *buf = slurp("ADABTC-1m-2021-11-27.csv", NULL);
    char *lines[64];
    size_t n = split_lines(buf, lines, 64);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        kline_t k, k2, k3;
        /* Autodetected with hints, with the interval inferred, and via the CSV entry. */
        parse_ok(lines[i], strlen(lines[i]), "ADABTC", "1m", &k);
        check_csv_row(lines[i], &k);
        assert_string_equal(k.symbol, "ADABTC");
        assert_string_equal(k.interval, "1m");
        parse_ok(lines[i], strlen(lines[i]), "adabtc", NULL, &k2);
        assert_kline_equal(&k, &k2);
        char err[256];
        assert_int_equal(kline_parse_csv(lines[i], strlen(lines[i]), "ADABTC", "1m", &k3, err,
                                         sizeof err), 0);
        assert_kline_equal(&k, &k3);
    }
    kline_t k;
    parse_ok(lines[0], strlen(lines[0]), "ADABTC", "1m", &k);
    assert_true(k.open_time == INT64_C(1637971200000));
    assert_true(k.close_time == INT64_C(1637971259999));
    assert_string_equal(k.open, "0.00002853");
    assert_string_equal(k.volume, "36304.20000000");
    assert_true(k.trades == 79);
    assert_string_equal(k.taker_buy_quote_volume, "0.55694227");
    free(buf);
}

static void test_csv_microsecond_rows_from_sources_md(void **state)
{
    (void)state;
    kline_t k;
    parse_ok(csv_us_btc_1m, strlen(csv_us_btc_1m), "BTCUSDT", NULL, &k);
    check_csv_row(csv_us_btc_1m, &k);
    assert_true(k.open_time == INT64_C(1735689600000));
    assert_true(k.close_time == INT64_C(1735689659999));
    assert_string_equal(k.interval, "1m"); /* inferred from the span */
    assert_string_equal(k.quote_volume, "768978.75522470");
    assert_true(k.trades == 2631);

    parse_ok(csv_us_official_1h, strlen(csv_us_official_1h), "BTCUSDT", NULL, &k);
    check_csv_row(csv_us_official_1h, &k);
    assert_true(k.close_time == INT64_C(1735693199999));
    assert_string_equal(k.interval, "1h");

    parse_ok(csv_ms_btc_1s, strlen(csv_ms_btc_1s), "BTCUSDT", NULL, &k);
    check_csv_row(csv_ms_btc_1s, &k);
    assert_string_equal(k.interval, "1s");
    assert_true(k.trades == 104);

    /* CRLF line ends (files written on Windows) are tolerated. */
    char crlf[512];
    int m = snprintf(crlf, sizeof crlf, "%s\r\n", csv_us_btc_1m);
    kline_t k2;
    parse_ok(crlf, (size_t)m, "BTCUSDT", "1m", &k2);
    assert_true(k2.close_time == INT64_C(1735689659999));
}

static void test_rest_rows_parse_to_file_values(void **state)
{
    (void)state;
    char *buf = slurp("rest_klines_BTCUSDT_1m_2021-10-22.json", NULL);
    json_t *arr = json_must(buf);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 10);
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row) {
        char *compact = json_text(row);
        char *pretty = json_dumps(row, JSON_INDENT(2));
        assert_non_null(pretty);
        kline_t k, k2, k3;
        parse_ok(compact, strlen(compact), "BTCUSDT", "1m", &k);
        parse_ok(pretty, strlen(pretty), "btcusdt", NULL, &k2); /* multi-line, inferred 1m */
        assert_kline_equal(&k, &k2);
        char err[256];
        assert_int_equal(kline_from_json(row, "BTCUSDT", "1m", &k3, err, sizeof err), 0);
        assert_kline_equal(&k, &k3);

        assert_string_equal(k.symbol, "BTCUSDT");
        assert_string_equal(k.interval, "1m");
        assert_true(k.open_time == (int64_t)json_integer_value(json_array_get(row, 0)));
        assert_string_equal(k.open, json_string_value(json_array_get(row, 1)));
        assert_string_equal(k.high, json_string_value(json_array_get(row, 2)));
        assert_string_equal(k.low, json_string_value(json_array_get(row, 3)));
        assert_string_equal(k.close, json_string_value(json_array_get(row, 4)));
        assert_string_equal(k.volume, json_string_value(json_array_get(row, 5)));
        assert_true(k.close_time == (int64_t)json_integer_value(json_array_get(row, 6)));
        assert_string_equal(k.quote_volume, json_string_value(json_array_get(row, 7)));
        assert_true(k.trades == (int64_t)json_integer_value(json_array_get(row, 8)));
        assert_string_equal(k.taker_buy_volume, json_string_value(json_array_get(row, 9)));
        assert_string_equal(k.taker_buy_quote_volume, json_string_value(json_array_get(row, 10)));
        assert_true(k.first_trade_id == -1 && k.last_trade_id == -1);
        assert_true(k.event_time == 0);
        assert_true(k.closed);
        assert_int_equal(k.source, KLINE_SRC_REST);
        free(compact);
        free(pretty);
    }
    kline_t k;
    char *first = json_text(json_array_get(arr, 0));
    parse_ok(first, strlen(first), "BTCUSDT", "1m", &k);
    assert_true(k.open_time == INT64_C(1634943780000));
    assert_string_equal(k.quote_volume, "1313200.01340410");
    assert_true(k.trades == 617);
    free(first);
    /* The whole response is not one row. */
    reject(buf, strlen(buf), "BTCUSDT", "1m", "one row at a time");
    json_decref(arr);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Canonical record and round trips                                          */
/* ------------------------------------------------------------------------ */

static void test_canonical_example_formats_byte_exact(void **state)
{
    (void)state;
    kline_t k;
    parse_ok(canonical_example, strlen(canonical_example), NULL, NULL, &k);
    char out[KLINE_JSON_MAX];
    int n = kline_format(&k, out, sizeof out);
    assert_int_equal(n, (int)strlen(canonical_example));
    assert_string_equal(out, canonical_example);

    /* WS line 1 is the same kline: its canonical text is the docs/ARCHITECTURE.md example. */
    char *buf = slurp(ws_sample_names, NULL);
    char *lines[16];
    assert_true(split_lines(buf, lines, 16) >= 1);
    kline_t w;
    parse_ok(lines[0], strlen(lines[0]), NULL, NULL, &w);
    assert_int_equal(kline_format(&w, out, sizeof out), n);
    assert_string_equal(out, canonical_example);
    free(buf);

    /* Field order does not matter on input; lower-case symbols are upper-cased;
     * unknown keys are ignored; optional ids/event_time default. */
    kline_t m;
    const char *shuffled =
        "{\"source\":\"replay\",\"closed\":false,\"trades\":0,\"symbol\":\"ethbtc\","
        "\"interval\":\"1m\",\"close_time\":59999,\"open_time\":0,\"open\":\"1\",\"high\":\"1\","
        "\"low\":\"1\",\"close\":\"1\",\"volume\":\"0\",\"quote_volume\":\"0\","
        "\"taker_buy_volume\":\"0\",\"taker_buy_quote_volume\":\"0\",\"future_field\":[1,2]}";
    parse_ok(shuffled, strlen(shuffled), NULL, NULL, &m);
    assert_string_equal(m.symbol, "ETHBTC");
    assert_true(m.first_trade_id == -1 && m.last_trade_id == -1);
    assert_true(m.event_time == 0);
    assert_false(m.closed);
    assert_int_equal(m.source, KLINE_SRC_REPLAY);
    assert_roundtrip(&m);
}

static void test_roundtrip_every_sample(void **state)
{
    (void)state;
    size_t count = 0;
    kline_t k;
    char *buf = slurp(ws_sample_names, NULL);
    char *lines[64];
    size_t n = split_lines(buf, lines, 64);
    for (size_t i = 0; i < n; i++, count++) {
        parse_ok(lines[i], strlen(lines[i]), NULL, NULL, &k);
        assert_roundtrip(&k);
    }
    free(buf);
    buf = slurp("ADABTC-1m-2021-11-27.csv", NULL);
    n = split_lines(buf, lines, 64);
    for (size_t i = 0; i < n; i++, count++) {
        parse_ok(lines[i], strlen(lines[i]), "ADABTC", "1m", &k);
        assert_roundtrip(&k);
    }
    free(buf);
    buf = slurp("rest_klines_BTCUSDT_1m_2021-10-22.json", NULL);
    json_t *arr = json_must(buf);
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row) {
        char err[256];
        assert_int_equal(kline_from_json(row, "BTCUSDT", NULL, &k, err, sizeof err), 0);
        assert_roundtrip(&k);
        count++;
    }
    json_decref(arr);
    free(buf);
    const char *us[] = { csv_us_btc_1m, csv_us_official_1h, csv_ms_btc_1s };
    for (size_t j = 0; j < 3; j++, count++) {
        parse_ok(us[j], strlen(us[j]), "BTCUSDT", NULL, &k);
        assert_roundtrip(&k);
    }
    assert_int_equal(count, 9 + 10 + 10 + 3);

    /* Extremes of every field survive the trip. */
    kline_t x;
    memset(&x, 0, sizeof x);
    strcpy(x.symbol, "ABCDEFGHIJKLMNOPQRS9");
    strcpy(x.interval, "12h");
    x.open_time = 0;
    x.close_time = INT64_C(253402300799999);
    strcpy(x.open, "12345678901234567890.123456789012345678");
    strcpy(x.high, "99999999999999999999.999999999999999999");
    strcpy(x.low, "0");
    strcpy(x.close, "00000000000000000001");
    strcpy(x.volume, "0.000000000000000001");
    strcpy(x.quote_volume, "1.5");
    strcpy(x.taker_buy_volume, "7");
    strcpy(x.taker_buy_quote_volume, "0.0");
    x.trades = INT64_MAX;
    x.first_trade_id = 0;
    x.last_trade_id = INT64_MAX;
    x.closed = false;
    x.event_time = INT64_C(253402300799999);
    x.source = KLINE_SRC_REST;
    char err[256];
    if (kline_validate(&x, err, sizeof err) != 0)
        fail_msg("extreme kline invalid: %s", err);
    assert_roundtrip(&x);
}

/* ------------------------------------------------------------------------ */
/* Malformed input                                                           */
/* ------------------------------------------------------------------------ */

static void test_truncated_input_at_every_offset(void **state)
{
    (void)state;
    char *buf = slurp(ws_sample_names, NULL);
    char *lines[64];
    size_t n = split_lines(buf, lines, 64);
    size_t tried = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]);
        for (size_t cut = 0; cut < len; cut++, tried++)
            reject(lines[i], cut, NULL, NULL, NULL);
    }
    size_t len = strlen(canonical_example);
    for (size_t cut = 0; cut < len; cut++, tried++)
        reject(canonical_example, cut, NULL, NULL, NULL);
    free(buf);

    buf = slurp("rest_klines_BTCUSDT_1m_2021-10-22.json", NULL);
    json_t *arr = json_must(buf);
    char *row = json_text(json_array_get(arr, 0));
    len = strlen(row);
    for (size_t cut = 0; cut < len; cut++, tried++)
        reject(row, cut, "BTCUSDT", "1m", NULL);
    free(row);
    json_decref(arr);
    free(buf);

    /* Every prefix of a CSV row lacks a column or leaves column 12 empty. */
    len = strlen(csv_us_btc_1m);
    for (size_t cut = 0; cut < len; cut++, tried++)
        reject(csv_us_btc_1m, cut, "BTCUSDT", "1m", NULL);
    assert_true(tried > 3000);
}

/* Sets k.<key> (or a top-level key when top) of ws sample line 1 to a value; NULL deletes. */
static char *ws_mutated(const char *key, json_t *value, int top)
{
    json_t *root = json_must("{\"e\":\"kline\",\"E\":1789499997024,\"s\":\"BTCUSDT\",\"k\":{"
                     "\"t\":1789499996000,\"T\":1789499996999,\"s\":\"BTCUSDT\",\"i\":\"1s\","
                     "\"f\":6684854486,\"L\":6684854599,\"o\":\"76168.36000000\","
                     "\"c\":\"76175.97000000\",\"h\":\"76175.97000000\","
                     "\"l\":\"76168.36000000\",\"v\":\"0.18974000\",\"n\":114,\"x\":true,"
                     "\"q\":\"14452.26191960\",\"V\":\"0.08558000\",\"Q\":\"6518.56313820\","
                     "\"B\":\"0\"}}");
    json_t *obj = top ? root : json_object_get(root, "k");
    if (value)
        json_object_set_new(obj, key, value); /* takes the reference */
    else
        json_object_del(obj, key);
    char *s = json_text(root);
    json_decref(root);
    return s;
}

enum ftype { F_INT, F_DEC, F_STR, F_BOOL, F_ANY };

/* Values of every JSON type; each test uses those of the wrong type. */
static json_t *wrong_value(int which)
{
    switch (which) {
    case 0: return json_integer(5);
    case 1: return json_real(1.5);
    case 2: return json_string("5");
    case 3: return json_true();
    case 4: return json_null();
    case 5: return json_object();
    case 6: return json_array();
    case 7: return json_string("1.5");
    }
    return NULL;
}

static int value_fits(enum ftype t, int which)
{
    switch (t) {
    case F_INT:  return which == 0;
    case F_DEC:  return which == 2 || which == 7;
    case F_STR:  return which == 2 || which == 7;
    case F_BOOL: return which == 3;
    case F_ANY:  return 1;
    }
    return 0;
}

static void test_wrong_types_and_missing_fields_ws(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        enum ftype  type;
        int         required;
    } keys[] = {
        { "t", F_INT, 1 }, { "T", F_INT, 1 }, { "s", F_STR, 1 }, { "i", F_STR, 1 },
        { "f", F_INT, 0 }, { "L", F_INT, 0 }, { "o", F_DEC, 1 }, { "c", F_DEC, 1 },
        { "h", F_DEC, 1 }, { "l", F_DEC, 1 }, { "v", F_DEC, 1 }, { "n", F_INT, 1 },
        { "x", F_BOOL, 1 }, { "q", F_DEC, 1 }, { "V", F_DEC, 1 }, { "Q", F_DEC, 1 },
        { "B", F_ANY, 0 },
    };
    char label[16];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(label, sizeof label, "k.%s ", keys[i].key);
        for (int w = 0; w < 8; w++) {
            if (value_fits(keys[i].type, w))
                continue;
            char *s = ws_mutated(keys[i].key, wrong_value(w), 0);
            reject(s, strlen(s), NULL, NULL, label);
            free(s);
        }
        char *s = ws_mutated(keys[i].key, NULL, 0);
        if (keys[i].required) {
            reject(s, strlen(s), NULL, NULL, label);
        } else {
            kline_t k;
            parse_ok(s, strlen(s), NULL, NULL, &k);
            if (keys[i].key[0] == 'f')
                assert_true(k.first_trade_id == -1);
            if (keys[i].key[0] == 'L')
                assert_true(k.last_trade_id == -1);
        }
        free(s);
    }
    /* Top level: e, E, k required; outer s optional but must agree. */
    for (int w = 0; w < 8; w++) {
        char *s;
        if (w != 0) {
            s = ws_mutated("E", wrong_value(w), 1);
            reject(s, strlen(s), NULL, NULL, "E (event_time)");
            free(s);
        }
        if (w != 5) {
            s = ws_mutated("k", wrong_value(w), 1);
            reject(s, strlen(s), NULL, NULL, "k:");
            free(s);
        }
        s = ws_mutated("e", wrong_value(w), 1);
        reject(s, strlen(s), NULL, NULL, "e:");
        free(s);
    }
    char *s = ws_mutated("E", NULL, 1);
    reject(s, strlen(s), NULL, NULL, "E (event_time): missing");
    free(s);
    s = ws_mutated("k", NULL, 1);
    reject(s, strlen(s), NULL, NULL, "k: missing");
    free(s);
    s = ws_mutated("s", NULL, 1);
    kline_t k;
    parse_ok(s, strlen(s), NULL, NULL, &k);
    free(s);
    s = ws_mutated("s", json_string("ETHUSDT"), 1);
    reject(s, strlen(s), NULL, NULL, "disagree");
    free(s);
    s = ws_mutated("s", json_string("btcusdt"), 1); /* same symbol, other case */
    parse_ok(s, strlen(s), NULL, NULL, &k);
    free(s);
    s = ws_mutated("e", json_string("24hrTicker"), 1);
    reject(s, strlen(s), NULL, NULL, "not a kline event");
    free(s);
}

static void test_wrong_types_and_missing_fields_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        enum ftype  type;
        int         required;
    } keys[] = {
        { "symbol", F_STR, 1 },     { "interval", F_STR, 1 },      { "open_time", F_INT, 1 },
        { "close_time", F_INT, 1 }, { "open", F_DEC, 1 },          { "high", F_DEC, 1 },
        { "low", F_DEC, 1 },        { "close", F_DEC, 1 },         { "volume", F_DEC, 1 },
        { "quote_volume", F_DEC, 1 }, { "trades", F_INT, 1 },      { "taker_buy_volume", F_DEC, 1 },
        { "taker_buy_quote_volume", F_DEC, 1 }, { "first_trade_id", F_INT, 0 },
        { "last_trade_id", F_INT, 0 }, { "closed", F_BOOL, 1 },    { "event_time", F_INT, 0 },
        { "source", F_STR, 1 },
    };
    char label[40];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(label, sizeof label, "%s:", keys[i].key);
        for (int w = 0; w < 8; w++) {
            if (value_fits(keys[i].type, w) && keys[i].type != F_STR)
                continue;
            /* "5" and "1.5" are strings but no symbol, interval or source
             * except "5" as a symbol, which is valid. */
            if (w == 2 && strcmp(keys[i].key, "symbol") == 0)
                continue;
            json_t *root = json_must(canonical_example);
            json_object_set_new(root, keys[i].key, wrong_value(w));
            char *s = json_text(root);
            reject(s, strlen(s), NULL, NULL, label);
            free(s);
            json_decref(root);
        }
        json_t *root = json_must(canonical_example);
        json_object_del(root, keys[i].key);
        char *s = json_text(root);
        if (keys[i].required) {
            reject(s, strlen(s), NULL, NULL, strcmp(keys[i].key, "symbol") ? label : "no kline");
        } else {
            kline_t k;
            parse_ok(s, strlen(s), NULL, NULL, &k);
            assert_true(strcmp(keys[i].key, "event_time") ? 1 : k.event_time == 0);
        }
        free(s);
        json_decref(root);
    }
    const char *bad_sources[] = { "WS", "kafka", "", "ws " };
    for (size_t i = 0; i < 4; i++) {
        json_t *root = json_must(canonical_example);
        json_object_set_new(root, "source", json_string(bad_sources[i]));
        char *s = json_text(root);
        reject(s, strlen(s), NULL, NULL, "source");
        free(s);
        json_decref(root);
    }
}

static void test_wrong_types_rest_row(void **state)
{
    (void)state;
    static const enum ftype types[12] = { F_INT, F_DEC, F_DEC, F_DEC, F_DEC, F_DEC,
                                          F_INT, F_DEC, F_INT, F_DEC, F_DEC, F_ANY };
    const char *row = "[1634943780000,\"60685.22000000\",\"60729.84000000\",\"60670.90000000\","
                      "\"60719.27000000\",\"21.63272000\",1634943839999,\"1313200.01340410\","
                      "617,\"12.28492000\",\"745719.41022840\",\"0\"]";
    kline_t k;
    parse_ok(row, strlen(row), "BTCUSDT", "1m", &k);
    char label[8];
    for (size_t pos = 0; pos < 12; pos++) {
        snprintf(label, sizeof label, "[%zu] (", pos);
        for (int w = 0; w < 8; w++) {
            json_t *a = json_must(row);
            json_array_set_new(a, pos, wrong_value(w));
            char *s = json_text(a);
            if (value_fits(types[pos], w)) {
                /* Still the right type: only the ignored element or a decimal that
                 * keeps high >= low... "5"/"1.5" break the OHLC order except in volumes. */
                kline_t k2;
                char err[256];
                int rc = kline_parse(s, strlen(s), "BTCUSDT", "1m", &k2, err, sizeof err);
                if (types[pos] == F_ANY || (types[pos] == F_DEC && pos >= 5))
                    assert_int_equal(rc, 0);
            } else {
                reject(s, strlen(s), "BTCUSDT", "1m", label);
            }
            free(s);
            json_decref(a);
        }
    }
    reject_s("[1634943780000]", "expected 12 elements");
    reject_h("[1,\"1\",\"1\",\"1\",\"1\",\"1\",2,\"1\",3,\"1\",\"1\",\"0\",\"0\"]", "X", "1m",
           "expected 12 elements");
    reject(row, strlen(row), NULL, "1m", "symbol hint");
}

static void test_bad_decimals_rejected_naming_field(void **state)
{
    (void)state;
    const char *bad[] = {
        "NaN", "nan", "Infinity", "-Infinity", "inf", "1e5", "1E5", "1.0e-3", "-1", "+1", "",
        " 1", "1 ", "1.", ".5", "1..2", "0x10", "1,5", "1_000", "\xef\xbc\x91" /* fullwidth 1 */,
        "123456789012345678901",                   /* 21 integer digits */
        "1.1234567890123456789",                   /* 19 fraction digits */
        "12345678901234567890.1234567890123456789", /* 20 + 19 */
        "1234567890123456789012345678901234567890123456789012345678901234567890",
    };
    const char *ws_keys[] = { "o", "c", "h", "l", "v", "q", "V", "Q" };
    char label[8];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t j = 0; j < 8; j++) {
            snprintf(label, sizeof label, "k.%s ", ws_keys[j]);
            char *s = ws_mutated(ws_keys[j], json_string(bad[i]), 0);
            reject(s, strlen(s), NULL, NULL, label);
            free(s);
        }
        /* The same in CSV column 6 (volume). */
        char row[512];
        int m = snprintf(row, sizeof row, "1637971200000,1,1,1,1,%s,1637971259999,1,1,1,1,0",
                         bad[i]);
        if (strchr(bad[i], ','))
            reject(row, (size_t)m, "ADABTC", "1m", "columns");
        else
            reject(row, (size_t)m, "ADABTC", "1m", "column 6 (volume)");
    }
    /* JSON numbers where a decimal string belongs. */
    char *s = ws_mutated("o", json_real(76168.36), 0);
    reject(s, strlen(s), NULL, NULL, "k.o (open): expected a decimal string, got real");
    free(s);
    s = ws_mutated("v", json_integer(0), 0);
    reject(s, strlen(s), NULL, NULL, "k.v (volume): expected a decimal string, got integer");
    free(s);
    /* Exponents, NaN and Infinity as raw JSON tokens. */
    const char *raw[] = {
        "{\"e\":\"kline\",\"E\":1,\"k\":{\"o\":NaN}}",
        "{\"e\":\"kline\",\"E\":1,\"k\":{\"o\":Infinity}}",
        "{\"e\":\"kline\",\"E\":1,\"k\":{\"o\":-Infinity}}",
    };
    for (size_t i = 0; i < 3; i++)
        reject_s(raw[i], "invalid JSON");
    s = ws_mutated("t", json_real(1e5), 0);
    reject(s, strlen(s), NULL, NULL, "k.t (open_time): expected an integer, got real");
    free(s);
    char big[] = "{\"e\":\"kline\",\"E\":1e5,\"s\":\"BTCUSDT\",\"k\":{}}";
    reject_s(big, "E (event_time)");
    s = ws_mutated("t", json_integer(-1), 0);
    reject(s, strlen(s), NULL, NULL, "k.t (open_time): -1 out of range");
    free(s);
    s = ws_mutated("n", json_integer(-1), 0);
    reject(s, strlen(s), NULL, NULL, "k.n (trades)");
    free(s);
    s = ws_mutated("f", json_integer(-2), 0);
    reject(s, strlen(s), NULL, NULL, "k.f (first_trade_id)");
    free(s);
    s = ws_mutated("T", json_integer(INT64_C(1789499996999000)), 0); /* µs in WS: no */
    reject(s, strlen(s), NULL, NULL, "k.T (close_time)");
    free(s);
    reject_s("{\"e\":\"kline\",\"E\":99999999999999999999999,\"k\":{}}", "invalid JSON");

    /* The widest valid decimals are accepted. */
    s = ws_mutated("v", json_string("99999999999999999999.999999999999999999"), 0);
    kline_t k;
    parse_ok(s, strlen(s), NULL, NULL, &k);
    assert_string_equal(k.volume, "99999999999999999999.999999999999999999");
    free(s);
}

static void test_oversized_input(void **state)
{
    (void)state;
    size_t big = 1024 * 1024;
    char *buf = malloc(big + 1);
    assert_non_null(buf);
    /* A 1 MB line that would otherwise be a fine JSON object. */
    size_t n = strlen(canonical_example);
    memset(buf, ' ', big);
    memcpy(buf, canonical_example, n);
    buf[big] = '\0';
    reject(buf, big, NULL, NULL, "exceeds");
    char err[256];
    kline_t k;
    assert_int_equal(kline_parse_csv(buf, big, "X", "1m", &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "exceeds"));
    /* The limit itself is inclusive. */
    parse_ok(buf, KLINE_INPUT_MAX, NULL, NULL, &k);
    reject(buf, KLINE_INPUT_MAX + 1, NULL, NULL, "exceeds");
    /* Deep nesting is refused by the JSON parser, not by the stack. */
    memset(buf, '[', KLINE_INPUT_MAX);
    reject(buf, KLINE_INPUT_MAX, "X", "1m", NULL);
    memset(buf, '{', KLINE_INPUT_MAX);
    reject(buf, KLINE_INPUT_MAX, NULL, NULL, "invalid JSON");
    free(buf);
}

static void test_invalid_utf8_rejected(void **state)
{
    (void)state;
    const char *seqs[] = {
        "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80", "\xc3",
        "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x88\x80\x80\x80",
    };
    char buf[1024];
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        /* In a value the codec ignores, so only the encoding is wrong. */
        int m = snprintf(buf, sizeof buf,
                         "{\"stream\":\"btcusdt@kline_1s%s\",\"data\":{\"e\":\"kline\"}}", seqs[i]);
        reject(buf, (size_t)m, NULL, NULL, "invalid JSON");
        m = snprintf(buf, sizeof buf, "%.*s%s}", (int)strlen(canonical_example) - 1,
                     canonical_example, seqs[i]);
        reject(buf, (size_t)m, NULL, NULL, "invalid JSON");
        m = snprintf(buf, sizeof buf, "%.*s%s", (int)strlen(csv_ms_btc_1s) - 1, csv_ms_btc_1s,
                     seqs[i]); /* in the ignored column 12 */
        reject(buf, (size_t)m, "BTCUSDT", "1s", "invalid UTF-8");
        m = snprintf(buf, sizeof buf, "1672531200000,%s1,1,1,1,1,1672531200999,1,1,1,1,0",
                     seqs[i]);
        reject(buf, (size_t)m, "BTCUSDT", "1s", "invalid UTF-8 at byte 14");
    }
    /* Valid UTF-8 where any text is allowed is fine; where a number is, it is not. */
    const char *ok = "{\"stream\":\"caf\xc3\xa9\",\"data\":{\"e\":\"kline\",\"E\":1789499997024,"
                     "\"k\":{\"t\":0,\"T\":999,\"s\":\"BTCUSDT\",\"i\":\"1s\",\"o\":\"1\","
                     "\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\",\"n\":0,\"x\":true,"
                     "\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"\xe2\x82\xac\xf0\x9f\x98\x80\"}}}";
    kline_t k;
    parse_ok(ok, strlen(ok), NULL, NULL, &k);
    assert_true(k.first_trade_id == -1);
    int m = snprintf(buf, sizeof buf, "%.*s\xc3\xa9", (int)strlen(csv_ms_btc_1s) - 1,
                     csv_ms_btc_1s);
    reject(buf, (size_t)m, "BTCUSDT", "1s", "column 12 (ignore)"); /* valid UTF-8, no number */
    reject_s("1672531200000,1\xc3\xa9,1,1,1,1,1672531200999,1,1,1,1,0", NULL);
    char *s = ws_mutated("s", json_string("BTC\xc3\x9cSDT"), 0);
    reject(s, strlen(s), NULL, NULL, "k.s (symbol)");
    free(s);
}

static void test_embedded_nul_rejected(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = strlen(canonical_example);
    memcpy(buf, canonical_example, n + 1);
    buf[20] = '\0';
    reject(buf, n, NULL, NULL, "NUL byte at offset 20");
    memcpy(buf, canonical_example, n + 1);
    reject(buf, n + 1, NULL, NULL, "NUL byte"); /* strlen + 1 */
    n = strlen(csv_ms_btc_1s);
    memcpy(buf, csv_ms_btc_1s, n + 1);
    buf[3] = '\0';
    reject(buf, n, "BTCUSDT", "1s", "NUL byte at offset 3");
    char err[256];
    kline_t k;
    assert_int_equal(kline_parse_csv(buf, n, "BTCUSDT", "1s", &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
    /* Escaped NUL inside a JSON string. */
    char *s = ws_mutated("B", json_stringn("0\0", 2), 0);
    reject(s, strlen(s), NULL, NULL, "invalid JSON");
    free(s);
}

static void test_semantic_violations_rejected(void **state)
{
    (void)state;
    char *s = ws_mutated("h", json_string("76168.35000000"), 0); /* high < low */
    reject(s, strlen(s), NULL, NULL, "high");
    free(s);
    s = ws_mutated("o", json_string("76175.98"), 0); /* open > high */
    reject(s, strlen(s), NULL, NULL, "open");
    free(s);
    s = ws_mutated("c", json_string("076168.3599"), 0); /* close < low, leading zero */
    reject(s, strlen(s), NULL, NULL, "close");
    free(s);
    s = ws_mutated("T", json_integer(INT64_C(1789499995999)), 0);
    reject(s, strlen(s), NULL, NULL, "close_time");
    free(s);
    s = ws_mutated("L", json_integer(INT64_C(6684854485)), 0);
    reject(s, strlen(s), NULL, NULL, "last_trade_id");
    free(s);
    /* Equal bounds are fine, and so are trailing zeros that make no difference. */
    s = ws_mutated("h", json_string("76175.970"), 0);
    kline_t k;
    parse_ok(s, strlen(s), NULL, NULL, &k);
    free(s);
    reject_s("1637971260000,1,2,1,1,1,1637971259999,1,1,1,1,0", NULL); /* no hints */
    reject_h("1637971260000,1,2,1,1,1,1637971259999,1,1,1,1,0", "ADABTC", "1m", "close_time");
    reject_h("1637971200000,1,2,3,1,1,1637971259999,1,1,1,1,0", "ADABTC", "1m", "high");
    reject_h("[1634943840000,\"1\",\"1\",\"1\",\"1\",\"1\",1634943839999,\"1\",1,\"1\","
             "\"1\",\"0\"]", "BTCUSDT", "1m", "close_time");

    /* kline_validate on hand-built records. */
    kline_t v;
    parse_ok(canonical_example, strlen(canonical_example), NULL, NULL, &v);
    char err[256];
    assert_int_equal(kline_validate(&v, err, sizeof err), 0);
    kline_t b = v;
    strcpy(b.symbol, "btcusdt");
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    strcpy(b.interval, "2m");
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    strcpy(b.low, "1e3");
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    assert_non_null(strstr(err, "low"));
    b = v;
    b.trades = -1;
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    b.close_time = b.open_time - 1;
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    b.source = (enum kline_source)7;
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    memset(b.volume, '1', sizeof b.volume); /* no NUL inside the array */
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
    b = v;
    b.event_time = -5;
    assert_int_equal(kline_validate(&b, err, sizeof err), -1);
}

static void test_hints_and_interval_inference(void **state)
{
    (void)state;
    const char *row = "1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,"
                      "1637971259999,1.03547608,79,19523.0,0.55694227,0";
    size_t n = strlen(row);
    kline_t k;
    reject(row, n, NULL, "1m", "symbol hint");
    reject(row, n, "ADA-BTC", "1m", "symbol hint");
    reject(row, n, "ADABTCADABTCADABTCADA", "1m", "symbol hint"); /* 21 chars */
    reject(row, n, "", "1m", "symbol hint");
    reject(row, n, "ADABTC", "2m", "interval hint");
    reject(row, n, "ADABTC", "1min", "interval hint");
    parse_ok(row, n, "AdaBtc", "1M", &k); /* the hint wins over the span */
    assert_string_equal(k.symbol, "ADABTC");
    assert_string_equal(k.interval, "1M");
    /* A span that is no interval cannot be inferred. */
    const char *odd = "1637971200000,1,1,1,1,1,1637971319999,1,1,1,1,0";
    reject(odd, strlen(odd), "ADABTC", NULL, "no interval hint");
    parse_ok(odd, strlen(odd), "ADABTC", "1m", &k);
    /* Each fixed interval is inferred from its span. */
    const char *names[] = { "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h",
                            "4h", "6h", "8h", "12h", "1d", "3d", "1w" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char buf[256];
        int64_t open = INT64_C(1637971200000);
        int m = snprintf(buf, sizeof buf, "%lld,1,1,1,1,1,%lld,1,1,1,1,0", (long long)open,
                         (long long)(open + kline_interval_ms(names[i]) - 1));
        parse_ok(buf, (size_t)m, "X", NULL, &k);
        assert_string_equal(k.interval, names[i]);
    }
    /* Hints do not override a self-describing record. */
    parse_ok(canonical_example, strlen(canonical_example), "ETHUSDT", "1m", &k);
    assert_string_equal(k.symbol, "BTCUSDT");
    assert_string_equal(k.interval, "1s");
    /* CSV rows themselves: columns and integers. */
    reject_s("1,2,3", "expected 12 columns");
    reject_h("1,2,3", "X", "1m", "expected 12 columns, got 3");
    reject_h("1,1,1,1,1,1,1,1,1,1,1,0,0", "X", "1m", "more than 12 columns");
    reject_h("-1,1,1,1,1,1,1,1,1,1,1,0", "X", "1m", NULL);
    reject_h("1,1,1,1,1,1,99999999999999999999,1,1,1,1,0", "X", "1m", "too large");
    reject_h("1,1,1,1,1,1,1000000000000000000,1,1,1,1,0", "X", "1m", "out of range");
    reject_h("1,1,1,1,1,1,2,1,-3,1,1,0", "X", "1m", "column 9 (trades)");
    reject_h("1,1,1,1,1,1,2,1,3.0,1,1,0", "X", "1m", "column 9 (trades)");
    reject_h("1,1,1,1,1,1,,1,3,1,1,0", "X", "1m", "column 7 (close_time): empty");
    reject_h("1 ,1,1,1,1,1,2,1,3,1,1,0", "X", "1m", "column 1 (open_time)");
    reject_h("\"1\",1,1,1,1,1,2,1,3,1,1,0", "X", "1m", "unrecognised input");
    reject_h("1,1,1,1,1,1,2,1,3,1,1,0\n\n", "X", "1m", "column 12 (ignore)");
    reject_h("1,1,1,1,1,1,2,1,3,1,1,0 x", "X", "1m", "column 12 (ignore)");
    reject_h("1,1,1,1,1,1,2,1,3,1,1,0\n1,1,1,1,1,1,2,1,3,1,1,0", "X", "1m", "columns");
    kline_t one;
    parse_ok("1,1,1,1,1,1,2,1,3,1,1,0\n", 24, "X", "3m", &one); /* one newline is fine */
    assert_true(one.close_time == 2 && one.trades == 3);
    reject_s("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
             "taker_buy_volume,taker_buy_quote_volume,ignore", "unrecognised input");
}

static void test_autodetect_and_shapes(void **state)
{
    (void)state;
    kline_t k;
    char buf[2048];
    int m = snprintf(buf, sizeof buf, " \t\r\n%s\r\n", canonical_example);
    parse_ok(buf, (size_t)m, NULL, NULL, &k);
    m = snprintf(buf, sizeof buf, "  %s", csv_ms_btc_1s);
    parse_ok(buf, (size_t)m, "BTCUSDT", NULL, &k);
    reject_s("", "empty input");
    reject_s(" \n\t", "empty input");
    reject(NULL, 0, NULL, NULL, "no input");
    reject_s("garbage", "unrecognised input");
    reject_s("\"{}\"", "unrecognised input");
    reject_s("null", "unrecognised input");
    reject_s("-1", "unrecognised input");
    reject_s("{}", "no kline");
    reject_s("[]", "expected 12 elements");
    reject_h("[]", "X", "1m", "expected 12 elements");
    reject_s("{\"e\":\"serverShutdown\",\"E\":1}", "not a kline event");
    reject_s("{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":1}}",
             "not a kline event");
    reject_s("{\"stream\":\"x\",\"data\":[]}", "data: expected an object");
    reject_s("{\"stream\":\"x\"}", "data: missing");
    reject_s("{\"stream\":1,\"data\":{}}", "stream");
    reject_s("{\"data\":{\"e\":\"kline\"}}", "stream");
    reject_s("{\"stream\":\"x\",\"data\":{\"symbol\":\"BTCUSDT\"}}", "data.e");
    reject_s("{\"result\":null,\"id\":1}", "no kline");
    m = snprintf(buf, sizeof buf, "%s%s", canonical_example, canonical_example);
    reject(buf, (size_t)m, NULL, NULL, "invalid JSON");
    m = snprintf(buf, sizeof buf, "%s x", canonical_example);
    reject(buf, (size_t)m, NULL, NULL, "invalid JSON");
    /* Duplicate keys are ambiguous: rejected, whichever value would have won. */
    m = snprintf(buf, sizeof buf, "{\"high\":\"1\",%s", canonical_example + 1);
    reject(buf, (size_t)m, NULL, NULL, "duplicate");
    /* Lower-case symbols from the stream are upper-cased; bad characters are not. */
    char *s = ws_mutated("s", json_string("btcusdt"), 0);
    parse_ok(s, strlen(s), NULL, NULL, &k);
    assert_string_equal(k.symbol, "BTCUSDT");
    free(s);
    const char *badsym[] = { "BTC-USDT", "BTC USDT", "", "ABCDEFGHIJKLMNOPQRSTU", "btc\"usdt" };
    for (size_t i = 0; i < 5; i++) {
        s = ws_mutated("s", json_string(badsym[i]), 0);
        reject(s, strlen(s), NULL, NULL, "k.s (symbol)");
        free(s);
    }
    const char *badint[] = { "1S", "1min", "", "2m", "60s", "1y", "1mm" };
    for (size_t i = 0; i < 7; i++) {
        s = ws_mutated("i", json_string(badint[i]), 0);
        reject(s, strlen(s), NULL, NULL, "k.i (interval)");
        free(s);
    }
    /* kline_from_json on values that are no kline. */
    char err[256];
    json_t *j = json_string("x");
    assert_int_equal(kline_from_json(j, NULL, NULL, &k, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    json_decref(j);
    assert_int_equal(kline_from_json(NULL, NULL, NULL, &k, err, sizeof err), -1);
    /* A NULL or zero-sized errbuf is allowed. */
    assert_int_equal(kline_parse("x", 1, NULL, NULL, &k, NULL, 0), -1);
    assert_int_equal(kline_parse("x", 1, NULL, NULL, &k, err, 0), -1);
    /* A tiny errbuf gets a truncated but terminated reason. */
    char tiny[8];
    memset(tiny, 'Z', sizeof tiny);
    assert_int_equal(kline_parse("x", 1, NULL, NULL, &k, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* ------------------------------------------------------------------------ */
/* Helpers of the header                                                     */
/* ------------------------------------------------------------------------ */

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_dec_cmp_table(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int         want;
    } t[] = {
        { "0", "0", 0 },
        { "0", "0.0", 0 },
        { "00", "0", 0 },
        { "1", "1.000000", 0 },
        { "0001.5", "1.50", 0 },
        { "1", "2", -1 },
        { "2", "10", -1 },
        { "9.99", "10", -1 },
        { "10", "9.99999999", 1 },
        { "0.1", "0.09", 1 },
        { "0.00002853", "0.00002854", -1 },
        { "0.000028540", "0.00002854", 0 },
        { "76175.97000000", "76168.36000000", 1 },
        { "76168.36", "76168.36000001", -1 },
        { "1.000000000000000001", "1", 1 },
        { "99999999999999999999.999999999999999999", "100000000000000000000", -1 },
        { "12345678901234567890", "12345678901234567891", -1 },
        { "0.5", "0.50000000000000001", -1 },
        { "000000000000000000001", "1", 0 },
        { "5", "5.", 0 }, /* not valid, but compares sanely */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int got = sign(kline_dec_cmp(t[i].a, t[i].b));
        if (got != t[i].want)
            fail_msg("kline_dec_cmp(\"%s\", \"%s\") = %d, want %d", t[i].a, t[i].b, got,
                     t[i].want);
        assert_int_equal(sign(kline_dec_cmp(t[i].b, t[i].a)), -t[i].want);
        assert_int_equal(kline_dec_cmp(t[i].a, t[i].a), 0);
    }
}

static void test_syntax_predicates(void **state)
{
    (void)state;
    const char *dec_ok[] = { "0", "1.5", "00.00", "12345678901234567890",
                             "12345678901234567890.123456789012345678", "0.000000000000000001" };
    const char *dec_bad[] = { "", ".", "1.", ".1", "-1", "+1", "1e5", "NaN", "Infinity", " 1",
                              "1 ", "123456789012345678901", "0.1234567890123456789", "1.2.3",
                              "0x1" };
    for (size_t i = 0; i < sizeof dec_ok / sizeof dec_ok[0]; i++)
        assert_true(kline_dec_valid(dec_ok[i]));
    for (size_t i = 0; i < sizeof dec_bad / sizeof dec_bad[0]; i++)
        if (kline_dec_valid(dec_bad[i]))
            fail_msg("kline_dec_valid(\"%s\") accepted", dec_bad[i]);
    assert_false(kline_dec_valid(NULL));

    assert_true(kline_symbol_valid("BTCUSDT"));
    assert_true(kline_symbol_valid("1000SATSUSDT"));
    assert_true(kline_symbol_valid("ABCDEFGHIJKLMNOPQRST")); /* 20 */
    assert_false(kline_symbol_valid("ABCDEFGHIJKLMNOPQRSTU")); /* 21 */
    assert_false(kline_symbol_valid("btcusdt"));
    assert_false(kline_symbol_valid(""));
    assert_false(kline_symbol_valid("BTC_USDT"));
    assert_false(kline_symbol_valid(NULL));

    const char *iv_ok[] = { "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h",
                            "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M" };
    for (size_t i = 0; i < 16; i++)
        assert_true(kline_interval_valid(iv_ok[i]));
    const char *iv_bad[] = { "", "1", "1S", "1H", "1W", "1D", "2m", "10m", "12m", "1s ", "1mo" };
    for (size_t i = 0; i < sizeof iv_bad / sizeof iv_bad[0]; i++)
        assert_false(kline_interval_valid(iv_bad[i]));
    assert_false(kline_interval_valid(NULL));

    assert_string_equal(kline_source_name(KLINE_SRC_WS), "ws");
    assert_string_equal(kline_source_name(KLINE_SRC_REST), "rest");
    assert_string_equal(kline_source_name(KLINE_SRC_REPLAY), "replay");
}

static void test_interval_ms(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t     ms;
    } t[] = {
        { "1s", 1000 },          { "1m", 60000 },        { "3m", 180000 },
        { "5m", 300000 },        { "15m", 900000 },      { "30m", 1800000 },
        { "1h", 3600000 },       { "2h", 7200000 },      { "4h", 14400000 },
        { "6h", 21600000 },      { "8h", 28800000 },     { "12h", 43200000 },
        { "1d", 86400000 },      { "3d", 259200000 },    { "1w", 604800000 },
        { "1M", 0 },             { "2m", 0 },            { "", 0 },
        { "1mm", 0 },            { "15m ", 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (kline_interval_ms(t[i].name) != t[i].ms)
            fail_msg("kline_interval_ms(\"%s\") = %lld, want %lld", t[i].name,
                     (long long)kline_interval_ms(t[i].name), (long long)t[i].ms);
    assert_true(kline_interval_ms(NULL) == 0);
}

static void test_format_buffer_limits(void **state)
{
    (void)state;
    kline_t k;
    parse_ok(canonical_example, strlen(canonical_example), NULL, NULL, &k);
    char out[KLINE_JSON_MAX];
    int n = kline_format(&k, out, sizeof out);
    assert_int_equal(n, (int)strlen(canonical_example));
    /* Exactly n + 1 bytes fit (text + NUL); n bytes do not, and nothing is
     * written past len. */
    char small[KLINE_JSON_MAX + 8];
    memset(small, '#', sizeof small);
    assert_int_equal(kline_format(&k, small, (size_t)n + 1), n);
    assert_string_equal(small, canonical_example);
    assert_int_equal(small[n + 1], '#');
    memset(small, '#', sizeof small);
    assert_int_equal(kline_format(&k, small, (size_t)n), -1);
    assert_int_equal(small[0], '\0');
    assert_int_equal(small[n], '#');
    assert_int_equal(kline_format(&k, small, 0), -1);
    assert_int_equal(kline_format(&k, NULL, 100), -1);

    /* Records that never passed validation are refused, not written as bad JSON. */
    kline_t b = k;
    strcpy(b.symbol, "BTC\"USDT");
    assert_int_equal(kline_format(&b, out, sizeof out), -1);
    b = k;
    memset(b.open, '7', sizeof b.open);
    assert_int_equal(kline_format(&b, out, sizeof out), -1);
    b = k;
    b.source = (enum kline_source)9;
    assert_int_equal(kline_format(&b, out, sizeof out), -1);

    /* The widest possible record fits in KLINE_JSON_MAX. */
    kline_t w;
    memset(&w, 0, sizeof w);
    memset(w.symbol, 'W', 20);
    strcpy(w.interval, "12h");
    const char *widest = "99999999999999999999.999999999999999999";
    strcpy(w.open, widest);
    strcpy(w.high, widest);
    strcpy(w.low, widest);
    strcpy(w.close, widest);
    strcpy(w.volume, widest);
    strcpy(w.quote_volume, widest);
    strcpy(w.taker_buy_volume, widest);
    strcpy(w.taker_buy_quote_volume, widest);
    w.open_time = w.close_time = w.event_time = INT64_MIN;
    w.trades = w.first_trade_id = w.last_trade_id = INT64_MIN;
    w.closed = false;
    w.source = KLINE_SRC_REPLAY;
    n = kline_format(&w, out, sizeof out);
    assert_true(n > 0 && n < KLINE_JSON_MAX);
    assert_non_null(strstr(out, "\"trades\":-9223372036854775808,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_samples_parse_to_file_values),
        cmocka_unit_test(test_csv_rows_parse_to_file_values),
        cmocka_unit_test(test_csv_microsecond_rows_from_sources_md),
        cmocka_unit_test(test_rest_rows_parse_to_file_values),
        cmocka_unit_test(test_canonical_example_formats_byte_exact),
        cmocka_unit_test(test_roundtrip_every_sample),
        cmocka_unit_test(test_truncated_input_at_every_offset),
        cmocka_unit_test(test_wrong_types_and_missing_fields_ws),
        cmocka_unit_test(test_wrong_types_and_missing_fields_canonical),
        cmocka_unit_test(test_wrong_types_rest_row),
        cmocka_unit_test(test_bad_decimals_rejected_naming_field),
        cmocka_unit_test(test_oversized_input),
        cmocka_unit_test(test_invalid_utf8_rejected),
        cmocka_unit_test(test_embedded_nul_rejected),
        cmocka_unit_test(test_semantic_violations_rejected),
        cmocka_unit_test(test_hints_and_interval_inference),
        cmocka_unit_test(test_autodetect_and_shapes),
        cmocka_unit_test(test_dec_cmp_table),
        cmocka_unit_test(test_syntax_predicates),
        cmocka_unit_test(test_interval_ms),
        cmocka_unit_test(test_format_buffer_limits),
    };
    return cmocka_run_group_tests_name("kline", tests, NULL, NULL);
}
