/*
 * test_testclock.c — KP_TEST_CLOCK (common/testclock.c): the spec's forms, the refusals,
 * the arithmetic, and cfg_now_ms() following the simulated clock of the environment
 * while cfg_wall_ms() stays real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"

#define REAL 1789499996000LL /* the "real now" the parser is given */

static struct cfg_test_clock tc_ok(const char *spec)
{
    struct cfg_test_clock tc;
    char err[256] = "";
    if (cfg_test_clock_parse(spec, REAL, &tc, err, sizeof err) != 0)
        fail_msg("'%s' refused: %s", spec, err);
    return tc;
}

static const char *tc_bad(const char *spec)
{
    static char err[256];
    struct cfg_test_clock tc = { .sim_ms = 7 };
    err[0] = '\0';
    if (cfg_test_clock_parse(spec, REAL, &tc, err, sizeof err) == 0)
        fail_msg("'%s' accepted", spec);
    assert_int_equal(tc.sim_ms, 7); /* untouched on error */
    assert_true(err[0] != '\0');
    return err;
}

static void test_forms(void **state)
{
    (void)state;
    struct cfg_test_clock tc = tc_ok("1800000000000@1789499990000:5");
    assert_int_equal(tc.sim_ms, 1800000000000LL);
    assert_int_equal(tc.real_ms, 1789499990000LL);
    assert_true(tc.speed == 5);
    /* no @REAL: anchored at the real now given */
    tc = tc_ok("1800000000000:2.5");
    assert_int_equal(tc.real_ms, REAL);
    assert_true(tc.speed == 2.5);
    /* ISO times (with their own colons) and "now" on either side; 0 freezes */
    tc = tc_ok("2026-09-15T19:19:56Z@2026-09-15T19:19:00+00:00:0");
    assert_int_equal(tc.sim_ms, 1789499996000LL);
    assert_int_equal(tc.real_ms, 1789499940000LL);
    assert_true(tc.speed == 0);
    tc = tc_ok("now:60");
    assert_int_equal(tc.sim_ms, REAL);
    tc = tc_ok("1800000000000@now:1");
    assert_int_equal(tc.real_ms, REAL);
}

static void test_refused(void **state)
{
    (void)state;
    assert_string_equal(tc_bad("1800000000000"), "'1800000000000': expected SIM_MS[@REAL_MS]:SPEED");
    assert_string_equal(tc_bad("1800000000000:fast"), "speed 'fast': expected a decimal number");
    assert_string_equal(tc_bad("1800000000000:-1"), "speed '-1': expected a number in [0, 1e+06]");
    assert_true(strstr(tc_bad("1800000000:5"), "simulated start '1800000000': looks like seconds") != NULL);
    assert_true(strstr(tc_bad("1800000000000@yesterday:5"), "real anchor 'yesterday'") != NULL);
    assert_true(strstr(tc_bad("1800000000000:5@1789499990000"), "expected SIM_MS[@REAL_MS]:SPEED") != NULL);
    const char *bad[] = { "", ":", ":5", "@:5", "1800000000000@:5", "1800000000000:", "1800000000000:nan",
                          "1800000000000:inf", "1800000000000:1e3", " 1800000000000:5",
                          "1800000000000@1789499990000@1789499990000:5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        tc_bad(bad[i]);
    char longspec[300];
    memset(longspec, '1', sizeof longspec - 3);
    strcpy(longspec + sizeof longspec - 3, ":5");
    tc_bad(longspec);
}

static void test_arithmetic(void **state)
{
    (void)state;
    struct cfg_test_clock tc = tc_ok("1800000000000@1789499990000:5");
    assert_int_equal(cfg_test_clock_at(&tc, 1789499990000LL), 1800000000000LL);
    assert_int_equal(cfg_test_clock_at(&tc, 1789499991000LL), 1800000005000LL);
    assert_int_equal(cfg_test_clock_at(&tc, 1789499989000LL), 1799999995000LL); /* before the anchor */
    tc = tc_ok("1800000000000@1789499990000:0.5");
    assert_int_equal(cfg_test_clock_at(&tc, 1789499990003LL), 1800000000002LL); /* 1.5 rounds to 2 */
    tc = tc_ok("1800000000000@1789499990000:0");
    assert_int_equal(cfg_test_clock_at(&tc, REAL + 86400000), 1800000000000LL);
    /* 24 h of simulated time at speed 5 is 4.8 h of real time, to the millisecond */
    tc = tc_ok("1800000000000@1789499990000:5");
    assert_int_equal(cfg_test_clock_at(&tc, 1789499990000LL + 17280000), 1800000000000LL + 86400000);
}

/* The environment, read once by the first call: a frozen clock a day ahead. */
static void test_environment(void **state)
{
    (void)state;
    char spec[64], err[256];
    long long ahead = (long long)cfg_wall_ms() + 86400000;
    snprintf(spec, sizeof spec, "%lld@now:0", ahead);
    setenv("KP_TEST_CLOCK", spec, 1);
    assert_int_equal(cfg_test_clock_check(err, sizeof err), 1);
    assert_int_equal(cfg_now_ms(), ahead);
    assert_int_equal(cfg_now_ms(), ahead);
    assert_true(cfg_wall_ms() < ahead - 86000000);
    /* read once: a later change of the variable changes nothing */
    setenv("KP_TEST_CLOCK", "garbage", 1);
    assert_int_equal(cfg_test_clock_check(err, sizeof err), 1);
    assert_int_equal(cfg_now_ms(), ahead);
    /* cfg_parse_time_ms("now") is the program's now */
    int64_t ms = 0;
    assert_int_equal(cfg_parse_time_ms("now", &ms, err, sizeof err), 0);
    assert_int_equal(ms, ahead);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
