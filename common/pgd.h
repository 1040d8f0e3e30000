/* pgd.h — the PostgreSQL driver every program uses: non-blocking libpq, every call
 * bounded by a client-side deadline.
 *
 * A server-side statement_timeout does not help when the server (or the network to it)
 * stops answering: a blocking PQexec/PQconnectdb then waits for TCP to give up, which is
 * hours. Here every wait is a poll() on the libpq socket that ends at the caller's
 * deadline (a monotonic time, cfg_mono_ms()), so a program stays responsive: it answers
 * signals, serves Kafka and WebSocket clients, and retries when the server is back.
 *
 * After a timeout the connection is still CONNECTION_OK but a command is in flight
 * (pgd_abandoned()): the caller must PQfinish it. The server is asked to cancel the
 * command (PQcancel in a short-lived thread: libpq 15's PQcancel blocks without a
 * bound, so it must not run on the caller's thread), unless it is a COMMIT, which is
 * left to finish: its outcome is unknown to the caller either way.
 *
 * A stop request (the flag, sig_stop by default) shortens every wait to PGD_STOP_GRACE_MS
 * after the driver first sees it: a healthy server still completes the final flush, a
 * hung one costs at most the grace. */
#ifndef PGD_H
#define PGD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#define PGD_STOP_GRACE_MS 2000

/* The flag that, once non-zero, cuts waits short (see above). NULL = none. Process-wide;
 * set before the first call. Default: &sig_stop. */
void pgd_set_stop_flag(const volatile sig_atomic_t *flag);

/* The deadline ms from now (monotonic). The thread remembers ms for the timeout message
 * ("no answer from PostgreSQL within ms ms"). */
int64_t pgd_deadline(int ms);

/* True once a stop was requested and its grace has run out: further calls fail at once. */
bool pgd_stop_expired(void);

/* Connects to conninfo (libpq URI or key=value string; NULL or "" = libpq's PG* defaults)
 * with PQconnectStartParams/PQconnectPoll, giving up at deadline. The connection is
 * returned in non-blocking mode with libpq notices logged at debug level; the caller
 * owns it (PQfinish). NULL with the reason in errbuf. */
PGconn *pgd_connect(const char *conninfo, int64_t deadline, char *errbuf, size_t errlen);

/* Runs one or more ';'-separated statements (simple query protocol). The first
 * row-returning result is handed to the caller in *keep when keep is non-NULL (caller
 * PQclears it). 0 when every statement succeeded, -1 with the reason in errbuf. */
int pgd_run(PGconn *c, const char *sql, int64_t deadline, PGresult **keep,
            char *errbuf, size_t errlen);

/* One parameterised statement (text parameters): its result (caller PQclears it) when it
 * succeeded (PGRES_COMMAND_OK or PGRES_TUPLES_OK), else NULL with the reason in errbuf. */
PGresult *pgd_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                    int64_t deadline, char *errbuf, size_t errlen);

/* COPY ... FROM STDIN with len bytes of COPY text. 0, or -1 with the reason in errbuf. */
int pgd_copy_in(PGconn *c, const char *sql, const char *data, size_t len, int64_t deadline,
                char *errbuf, size_t errlen);

/* Waits for the socket to be readable (or writable too when want_write) until deadline.
 * 0, or -1 with the reason (timeout, stop, poll error). For callers that drive libpq
 * themselves (e.g. waiting for NOTIFY). */
int pgd_wait(PGconn *c, bool want_write, int64_t deadline, char *errbuf, size_t errlen);

/* SQLSTATE of the last statement this thread saw fail in the server ("" if none). */
const char *pgd_last_sqlstate(void);

/* True when the connection cannot take another command: broken, or a command timed out
 * and is still in flight. Such a connection must be PQfinished. NULL-safe. */
bool pgd_abandoned(PGconn *c);

#endif
