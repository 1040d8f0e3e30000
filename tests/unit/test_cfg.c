/*
 * test_cfg.c — command-line times, durations and numbers (common/cfgtime.c): every
 * documented form, and the inputs a strtod/strtoll-based parser let through
 * (nan, inf, exponents, blanks, epoch seconds read as milliseconds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"

static int64_t time_ok(const char *s)
{
    int64_t ms = -1;
    char err[256] = "";
    if (cfg_parse_time_ms(s, &ms, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", s, err);
    return ms;
}

static const char *time_bad(const char *s)
{
    static char err[256];
    int64_t ms = 12345;
    err[0] = '\0';
    if (cfg_parse_time_ms(s, &ms, err, sizeof err) == 0)
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, 12345); /* untouched on error */
    assert_true(err[0] != '\0');
    return err;
}

static void test_time_forms(void **state)
{
    (void)state;
    assert_int_equal(time_ok("1789499996000"), 1789499996000LL);
    assert_int_equal(time_ok("1789499996000ms"), 1789499996000LL);
    assert_int_equal(time_ok("1789499996s"), 1789499996000LL);
    assert_int_equal(time_ok("0s"), 0);
    assert_int_equal(time_ok("2026-09-15T19:19:56Z"), 1789499996000LL);
    assert_int_equal(time_ok("2026-09-15T19:19:56"), 1789499996000LL);
    assert_int_equal(time_ok("2026-09-15T21:19:56+02:00"), 1789499996000LL);
    assert_int_equal(time_ok("2026-09-15T18:19:56-0100"), 1789499996000LL);
    assert_int_equal(time_ok("2026-09-15T19:19:56.25Z"), 1789499996250LL);
    assert_int_equal(time_ok("2026-09-15T19:19Z"), 1789499940000LL);
    assert_int_equal(time_ok("2026-09-15"), 1789430400000LL);
    int64_t now = cfg_now_ms();
    assert_true(time_ok("now") - now < 5000);
}

static void test_time_seconds_refused(void **state)
{
    (void)state;
    assert_string_equal(time_bad("1789499996"), "looks like seconds; write 1789499996s or 1789499996000 (ms)");
    assert_string_equal(time_bad("99999999999"), "looks like seconds; write 99999999999s or 99999999999000 (ms)");
    /* where ×1000 is still below the bar, the suggestion carries the unit */
    assert_string_equal(time_bad("5"), "looks like seconds; write 5s or 5000ms (ms)");
    assert_int_equal(time_ok("100000000000"), 100000000000LL); /* 1e11: the first bare ms */
}

static void test_time_garbage(void **state)
{
    (void)state;
    const char *bad[] = { "", "now ", " 1789499996000", "1789499996000 ", "+1789499996000", "-1s", "1e12",
                          "0x1A0000000000", "1789499996x", "12ms3", "s", "ms", "4102444800001", "4102444801s",
                          "1234567890123456789012", "2026-13-01", "2026-09-15T25:00Z", "2026-09-15T18:39:56+2",
                          "2026-09-15T18:39:56+02:00junk", "2026-09-15Tjunk", "yesterday", "nan", "inf" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        time_bad(bad[i]);
}

static int64_t dur(const char *s, const char *units, double bare, int64_t max)
{
    int64_t ms = -7;
    char err[256] = "";
    if (cfg_parse_duration_ms(s, units, bare, max, &ms, err, sizeof err) != 0)
        return -1;
    return ms;
}

static void test_duration(void **state)
{
    (void)state;
    const char *u = "ms s m h d";
    assert_int_equal(dur("90", u, 1000, INT64_MAX / 2), 90000);
    assert_int_equal(dur("500ms", u, 1000, INT64_MAX / 2), 500);
    assert_int_equal(dur("30s", u, 1000, INT64_MAX / 2), 30000);
    assert_int_equal(dur("15m", u, 1000, INT64_MAX / 2), 900000);
    assert_int_equal(dur("1.5h", u, 1000, INT64_MAX / 2), 5400000);
    assert_int_equal(dur("2d", u, 1000, INT64_MAX / 2), 172800000);
    assert_int_equal(dur("0", u, 1000, INT64_MAX / 2), 0);
    assert_int_equal(dur("1w", "s m h d w", 0, INT64_MAX / 2), 604800000);
    assert_int_equal(dur("1w", u, 1000, INT64_MAX / 2), -1);     /* w not allowed here */
    assert_int_equal(dur("90", "s m h d w", 0, INT64_MAX / 2), -1); /* a unit is required */
    assert_int_equal(dur("25h", u, 1000, 86400000), -1);          /* over max */
    assert_int_equal(dur("24h", u, 1000, 86400000), 86400000);
    const char *bad[] = { "nan", "inf", "infh", "nanms", "NaN", "-1s", "+1s", "1e3s", "1e300h", "0x10",
                          " 1s", "1s ", "1.s", ".5s", "1..5s", "1,5s", "10x", "", "s",
                          "99999999999999999999", "106751991167d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dur(bad[i], u, 1000, INT64_MAX / 2) != -1)
            fail_msg("duration '%s' accepted", bad[i]);
}

static void test_double(void **state)
{
    (void)state;
    double v = -1;
    char err[128];
    assert_int_equal(cfg_parse_double("0", 0, 1e6, &v, err, sizeof err), 0);
    assert_true(v == 0);
    assert_int_equal(cfg_parse_double("2.5", 0, 1e6, &v, err, sizeof err), 0);
    assert_true(v == 2.5);
    assert_int_equal(cfg_parse_double("1000000", 0, 1e6, &v, err, sizeof err), 0);
    const char *bad[] = { "nan", "NAN", "-nan", "inf", "-inf", "infinity", "1e400", "1e3", "0x10", " 1", "1 ",
                          "", "-1", "1000001", "1.2.3", "--1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cfg_parse_double(bad[i], 0, 1e6, &v, err, sizeof err) == 0)
            fail_msg("number '%s' accepted as %g", bad[i], v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_forms),
        cmocka_unit_test(test_time_seconds_refused),
        cmocka_unit_test(test_time_garbage),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
