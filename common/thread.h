/* thread.h — threads that never take a process signal. */
#ifndef KP_THREAD_H
#define KP_THREAD_H

#include <pthread.h>
#include <signal.h>

/*
 * pthread_create with every asynchronous signal blocked in the new thread (same
 * arguments and return value: 0 or an errno). SIGINT/SIGTERM/SIGHUP/SIGPIPE... are
 * thus always delivered to the main thread, whose loop polls sig_stop; a worker
 * blocked in poll() or libpq never swallows the stop request. The faults a thread
 * raises itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) stay unblocked:
 * blocked, the kernel kills the process without running a handler (no sanitizer report).
 * The caller's own mask is unchanged when this returns.
 */
int kp_thread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

/* The set kp_thread_create blocks (for tests and for threads that check themselves). */
void kp_thread_blocked_set(sigset_t *set);

#endif
