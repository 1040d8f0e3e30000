/* sig.c — graceful-stop signals. The handler only records the request; the program's
 * loop notices sig_stop and shuts down. A second request means "now". */
#include "sig.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t sig_stop;

static void sig_on_stop(int signo)
{
    if (sig_stop)
        _exit(1); /* async-signal-safe: the user asked twice */
    sig_stop = signo;
}

void sig_setup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
