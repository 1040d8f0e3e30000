/* test_producer_attempts — the connection-attempt limiter, on a simulated clock: Binance
 * allows 300 attempts per 5 minutes per IP, in any window, including the first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../attempts.h"

/* Every window of ATT_WINDOW_MS ms holds at most ATT_MAX granted attempts. */
static void check_windows(const int64_t *granted, int n)
{
    for (int i = 0, j = 0; i < n; i++) {
        while (granted[i] - granted[j] >= ATT_WINDOW_MS)
            j++;
        if (i - j + 1 > ATT_MAX)
            fail_msg("%d attempts in the 5 minutes ending at %lld ms", i - j + 1, (long long)granted[i]);
    }
}

static void test_burst_then_wait(void **state)
{
    (void)state;
    att_window_t w;
    att_init(&w);
    int64_t t0 = 1000000;
    for (int i = 0; i < ATT_MAX; i++)
        assert_true(att_take(&w, t0));
    /* the 301st waits the full 5 minutes, not 1 s as a refilling bucket would allow */
    assert_false(att_take(&w, t0 + 1000));
    assert_false(att_take(&w, t0 + ATT_WINDOW_MS - 1));
    assert_true(att_take(&w, t0 + ATT_WINDOW_MS));
}

static void test_reconnect_storm_every_10ms(void **state)
{
    (void)state;
    att_window_t w;
    att_init(&w);
    int cap = 4000, n = 0;
    int64_t *granted = malloc(sizeof *granted * (size_t)cap);
    assert_non_null(granted);
    /* 20 minutes of a connection that fails at once, retried every 10 ms */
    for (int64_t t = 0; t < 20 * 60000 && n < cap; t += 10)
        if (att_take(&w, t))
            granted[n++] = t;
    check_windows(granted, n);
    /* and the limiter is not over-strict: 4 windows' worth went through */
    assert_int_equal(n, 4 * ATT_MAX);
    free(granted);
}

static void test_random_clock(void **state)
{
    (void)state;
    att_window_t w;
    att_init(&w);
    int cap = 100000, n = 0, refused = 0;
    int64_t *granted = malloc(sizeof *granted * (size_t)cap);
    assert_non_null(granted);
    srand(7);
    int64_t t = 0;
    for (int i = 0; i < cap; i++) {
        t += rand() % 1200; /* irregular gaps (mean 0.6 s: twice the limit), some equal */
        if (att_take(&w, t))
            granted[n++] = t;
        else
            refused++;
    }
    check_windows(granted, n);
    assert_true(refused > 0);
    free(granted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_reconnect_storm_every_10ms),
        cmocka_unit_test(test_random_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
