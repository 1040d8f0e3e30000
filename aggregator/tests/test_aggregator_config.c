/* test_aggregator_config.c — kline-aggregator's option parsers: --intervals, --retain,
 * the durations, and the option table (cmocka). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../agg.h"

static void test_intervals_sorted_and_deduplicated(void **state)
{
    (void)state;
    struct agg_config cfg = { 0 };
    char err[256];
    assert_int_equal(agg_parse_intervals(" 1d, 1m,5m ,1m,4h", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.n_iv, 4);
    assert_string_equal(cfg.iv[0]->name, "1m");
    assert_string_equal(cfg.iv[1]->name, "5m");
    assert_string_equal(cfg.iv[2]->name, "4h");
    assert_string_equal(cfg.iv[3]->name, "1d");
    assert_int_equal(cfg.iv[3]->seconds, 86400);
    assert_string_equal(cfg.iv[2]->table, "kline_4h");
}

static void test_intervals_errors(void **state)
{
    (void)state;
    struct agg_config cfg = { 0 };
    char err[256];
    assert_int_equal(agg_parse_intervals("5m,1h", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "must include 1m"));
    assert_int_equal(agg_parse_intervals("1m,2m", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "'2m'"));
    assert_int_equal(agg_parse_intervals("", &cfg, err, sizeof err), -1);
    assert_int_equal(agg_parse_intervals("1M", &cfg, err, sizeof err), -1);
}

static void test_durations(void **state)
{
    (void)state;
    int64_t s;
    assert_int_equal(agg_parse_duration("90s", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(agg_parse_duration("2h", &s), 0);
    assert_int_equal(s, 7200);
    assert_int_equal(agg_parse_duration("30d", &s), 0);
    assert_int_equal(s, 30 * 86400);
    assert_int_equal(agg_parse_duration("1w", &s), 0);
    assert_int_equal(s, 7 * 86400);
    assert_int_equal(agg_parse_duration("5m", &s), 0);
    assert_int_equal(s, 300);
    assert_int_equal(agg_parse_duration("0h", &s), -1);
    assert_int_equal(agg_parse_duration("-1h", &s), -1);
    assert_int_equal(agg_parse_duration("2", &s), -1);
    assert_int_equal(agg_parse_duration("h", &s), -1);
    assert_int_equal(agg_parse_duration("2hh", &s), -1);
    assert_int_equal(agg_parse_duration("99999999999999999999d", &s), -1);
    assert_int_equal(agg_parse_duration("999999999999999w", &s), -1);
}

static void test_grace(void **state)
{
    (void)state;
    int64_t s = -1;
    assert_int_equal(agg_parse_grace("0", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(agg_parse_grace("2m", &s), 0);
    assert_int_equal(s, 120);
    assert_int_equal(agg_parse_grace("7d", &s), 0);
    assert_int_equal(s, 7 * 86400);
    assert_int_equal(agg_parse_grace("8d", &s), -1); /* longer than AGG_GRACE_MAX_S */
    assert_int_equal(agg_parse_grace("120", &s), -1); /* a unit is required (except 0) */
    assert_int_equal(agg_parse_grace("-1m", &s), -1);
    assert_int_equal(agg_parse_grace("", &s), -1);
}

static void test_retain(void **state)
{
    (void)state;
    struct agg_config cfg = { 0 };
    char err[256];
    assert_int_equal(agg_parse_retain("1s=2h, 1m=30d,1d=52w", &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.n_retain, 3);
    assert_string_equal(cfg.retain[0].table, "kline_1s");
    assert_int_equal(cfg.retain[0].keep_s, 7200);
    assert_string_equal(cfg.retain[1].table, "kline_1m");
    assert_string_equal(cfg.retain[2].key, "1d");
    assert_int_equal(cfg.retain[2].keep_s, 52 * 7 * 86400);
    assert_int_equal(agg_parse_retain("1s", &cfg, err, sizeof err), -1);
    assert_int_equal(agg_parse_retain("2s=1h", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown table"));
    assert_int_equal(agg_parse_retain("1s=1h,1s=2h", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(agg_parse_retain("1m=soon", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad duration"));
}

/* The common grammar without what the aggregator never took: fractions, bare numbers. */
static void test_durations_common_grammar(void **state)
{
    (void)state;
    int64_t s;
    assert_int_equal(agg_parse_duration("0.5h", &s), -1);
    assert_int_equal(agg_parse_duration("1.0h", &s), -1);
    assert_int_equal(agg_parse_duration("90ms", &s), -1); /* no ms for these options */
    assert_int_equal(agg_parse_duration("0s", &s), -1);
    assert_int_equal(agg_parse_grace("1w", &s), 0);
    assert_int_equal(s, 7 * 86400);
    assert_int_equal(agg_parse_grace("0s", &s), -1); /* only a bare 0 means "at once" */
}

/* The table: CALL defaults applied, the environment under the flag, the last --retain wins. */
static void test_opts_table(void **state)
{
    (void)state;
    struct agg_config cfg;
    char *argv1[] = { "kline-aggregator", "--once", NULL };
    unsetenv("AGG_INTERVALS");
    unsetenv("AGG_INCOMPLETE_GRACE");
    setenv("AGG_RETAIN", "1m=1d", 1);
    agg_opts_parse(2, argv1, &cfg);
    assert_true(cfg.once);
    assert_int_equal(cfg.n_iv, 1);
    assert_int_equal(cfg.incomplete_grace_s, 120);
    assert_int_equal(cfg.n_retain, 1);
    assert_string_equal(cfg.retain[0].key, "1m");
    assert_int_equal(cfg.listen, 1);
    char *argv2[] = { "kline-aggregator", "--every", "5", "-i", "1m,1h", "--retain", "1s=2h",
                      "--incomplete-grace", "0", "--no-listen", "--pg-timeout-ms", "500", NULL };
    setenv("AGG_INTERVALS", "1m,5m,1d", 1);
    setenv("AGG_INCOMPLETE_GRACE", "30s", 1);
    agg_opts_parse(12, argv2, &cfg);
    assert_false(cfg.once);
    assert_int_equal(cfg.every_s, 5);
    assert_int_equal(cfg.n_iv, 2);
    assert_string_equal(cfg.iv[1]->name, "1h");
    assert_int_equal(cfg.n_retain, 1);
    assert_string_equal(cfg.retain[0].key, "1s");
    assert_int_equal(cfg.retain[0].keep_s, 7200);
    assert_int_equal(cfg.incomplete_grace_s, 0);
    assert_int_equal(cfg.listen, 0);
    assert_int_equal(cfg.pg_timeout_ms, 500);
    agg_opts_parse(2, argv1, &cfg);
    assert_int_equal(cfg.n_iv, 3); /* from AGG_INTERVALS */
    assert_int_equal(cfg.incomplete_grace_s, 30);
    unsetenv("AGG_INTERVALS");
    unsetenv("AGG_INCOMPLETE_GRACE");
    unsetenv("AGG_RETAIN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intervals_sorted_and_deduplicated),
        cmocka_unit_test(test_intervals_errors),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_grace),
        cmocka_unit_test(test_retain),
        cmocka_unit_test(test_durations_common_grammar),
        cmocka_unit_test(test_opts_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
