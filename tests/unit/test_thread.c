/*
 * test_thread.c — kp_thread_create (common/thread.c): the new thread has every
 * asynchronous signal blocked (so SIGINT/SIGTERM reach the main thread's flag), the
 * faults it may raise itself are not, and the creator's own mask is left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "thread.h"

static void *read_mask(void *arg)
{
    pthread_sigmask(SIG_BLOCK, NULL, (sigset_t *)arg);
    return NULL;
}

static int is_fault(int s)
{
    return s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP || s == SIGSYS;
}

static void test_new_thread_blocks_signals(void **state)
{
    (void)state;
    sigset_t none, mine, theirs;
    sigemptyset(&none);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
    pthread_t th;
    assert_int_equal(kp_thread_create(&th, NULL, read_mask, &theirs), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    for (int s = 1; s < SIGRTMIN; s++) {
        if (s == SIGKILL || s == SIGSTOP || s == 32 || s == 33)
            continue; /* cannot be blocked / glibc's own (SIGCANCEL, SIGSETXID) */
        if (is_fault(s))
            assert_false(sigismember(&theirs, s));
        else if (!sigismember(&theirs, s))
            fail_msg("signal %d (%s) is not blocked in the new thread", s, strsignal(s));
    }
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        if (!sigismember(&theirs, s))
            fail_msg("real-time signal %d is not blocked in the new thread", s);
    /* the creator's mask is what it was before the call */
    pthread_sigmask(SIG_BLOCK, NULL, &mine);
    assert_false(sigismember(&mine, SIGINT));
    assert_false(sigismember(&mine, SIGTERM));
    assert_false(sigismember(&mine, SIGUSR1));
}

static void test_creator_mask_kept(void **state)
{
    (void)state;
    sigset_t some, after;
    sigemptyset(&some);
    sigaddset(&some, SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &some, NULL);
    sigset_t theirs;
    pthread_t th;
    assert_int_equal(kp_thread_create(&th, NULL, read_mask, &theirs), 0);
    pthread_join(th, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    assert_true(sigismember(&after, SIGUSR2));
    assert_false(sigismember(&after, SIGTERM));
    assert_true(sigismember(&theirs, SIGTERM));
    sigemptyset(&some);
    pthread_sigmask(SIG_SETMASK, &some, NULL);
}

static void test_error_is_returned(void **state)
{
    (void)state;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* an impossible stack size: pthread_create's error comes back unchanged */
    if (pthread_attr_setstacksize(&attr, (size_t)1 << 62) == 0) {
        pthread_t th;
        sigset_t theirs;
        assert_int_not_equal(kp_thread_create(&th, &attr, read_mask, &theirs), 0);
    }
    pthread_attr_destroy(&attr);
    sigset_t after;
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    assert_false(sigismember(&after, SIGTERM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_thread_blocks_signals),
        cmocka_unit_test(test_creator_mask_kept),
        cmocka_unit_test(test_error_is_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
