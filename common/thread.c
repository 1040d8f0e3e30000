/* thread.c — kp_thread_create: a new thread starts with the signal mask in force at
 * pthread_create, so the creator blocks the signals for the duration of the call. */
#include "thread.h"

void kp_thread_blocked_set(sigset_t *set)
{
    sigfillset(set);
    /* synchronous faults: undefined (in practice: a silent kill) when blocked */
    sigdelset(set, SIGSEGV);
    sigdelset(set, SIGBUS);
    sigdelset(set, SIGFPE);
    sigdelset(set, SIGILL);
    sigdelset(set, SIGTRAP);
    sigdelset(set, SIGSYS);
}

int kp_thread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    sigset_t block, old;
    kp_thread_blocked_set(&block);
    int rc = pthread_sigmask(SIG_BLOCK, &block, &old);
    if (rc != 0)
        return rc;
    rc = pthread_create(th, attr, fn, arg);
    /* restoring the caller's mask cannot fail with a valid how/set */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
