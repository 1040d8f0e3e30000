/* sig.h — SIGINT/SIGTERM set a flag the main loop polls; a second one exits at once. */
#ifndef SIG_H
#define SIG_H

#include <signal.h>

extern volatile sig_atomic_t sig_stop;   /* set (non-zero) by the first SIGINT/SIGTERM */

/* Installs handlers for SIGINT, SIGTERM (second delivery → _exit(1)), ignores SIGPIPE. */
void sig_setup(void);

#endif
