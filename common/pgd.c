/* pgd.c — non-blocking libpq with deadlines (see pgd.h for why). */
#include "pgd.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "thread.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PGD_MAX_CANCELS 4   /* cancel threads in flight at once; more are skipped */

static const volatile sig_atomic_t *pgd_stop = &sig_stop;
static _Atomic int64_t pgd_stop_seen_ms;   /* when a wait first saw the stop flag, 0 = not yet */
static atomic_int pgd_cancels;
static _Thread_local int pgd_budget_ms;
static _Thread_local bool pgd_committing; /* the command in flight ends with COMMIT */
static _Thread_local char pgd_sqlstate[6];

void pgd_set_stop_flag(const volatile sig_atomic_t *flag)
{
    pgd_stop = flag;
}

int64_t pgd_deadline(int ms)
{
    pgd_budget_ms = ms;
    return cfg_mono_ms() + ms;
}

const char *pgd_last_sqlstate(void)
{
    return pgd_sqlstate;
}

/* The deadline, shortened to the stop grace once a stop was requested. */
static int64_t pgd_effective(int64_t deadline, bool *stopping)
{
    *stopping = false;
    if (!pgd_stop || !*pgd_stop)
        return deadline;
    int64_t seen = atomic_load(&pgd_stop_seen_ms), zero = 0;
    if (seen == 0) {
        seen = cfg_mono_ms();
        if (!atomic_compare_exchange_strong(&pgd_stop_seen_ms, &zero, seen))
            seen = zero; /* another thread was first */
    }
    if (seen + PGD_STOP_GRACE_MS < deadline) {
        *stopping = true;
        return seen + PGD_STOP_GRACE_MS;
    }
    return deadline;
}

bool pgd_stop_expired(void)
{
    bool stopping;
    int64_t dl = pgd_effective(INT64_MAX, &stopping);
    return stopping && cfg_mono_ms() >= dl;
}

static void pgd_conn_err(PGconn *c, const char *what, char *errbuf, size_t errlen)
{
    const char *m = c ? PQerrorMessage(c) : "not connected";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(errbuf, errlen, "%s: %.*s", what, (int)n, n ? m : "connection lost");
}

static void pgd_res_err(PGresult *r, char *errbuf, size_t errlen)
{
    const char *m = PQresultErrorMessage(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(pgd_sqlstate, sizeof pgd_sqlstate, "%s", state ? state : "");
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(errbuf, errlen, "%.*s (SQLSTATE %s)", (int)n, m, state ? state : "?");
}

/* ---- cancel: PQcancel blocks without a bound (libpq 15), so it runs on its own thread */

static void *pgd_cancel_main(void *arg)
{
    PGcancel *cn = arg; /* owned by this thread */
    char err[256];
    if (!PQcancel(cn, err, sizeof err))
        log_debug("PostgreSQL cancel request: %s", err);
    PQfreeCancel(cn);
    atomic_fetch_sub(&pgd_cancels, 1);
    return NULL;
}

/* Asks the server to stop the command in flight on c (best effort, never waits). */
static void pgd_cancel(PGconn *c)
{
    if (atomic_fetch_add(&pgd_cancels, 1) >= PGD_MAX_CANCELS) {
        atomic_fetch_sub(&pgd_cancels, 1);
        return;
    }
    PGcancel *cn = PQgetCancel(c); /* a copy: stays valid after PQfinish(c) */
    pthread_attr_t at;
    pthread_t t;
    int rc = -1;
    if (cn && pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        /* signals stay with the program's own threads; cn is handed to the thread */
        rc = kp_thread_create(&t, &at, pgd_cancel_main, cn);
        pthread_attr_destroy(&at);
    }
    if (rc != 0) {
        PQfreeCancel(cn); /* NULL-safe */
        atomic_fetch_sub(&pgd_cancels, 1);
    }
}

/* ---- waiting ---- */

static int pgd_poll(PGconn *c, short events, int64_t deadline, char *errbuf, size_t errlen)
{
    struct pollfd p = { .fd = PQsocket(c), .events = events };
    if (p.fd < 0) {
        snprintf(errbuf, errlen, "PostgreSQL connection has no socket");
        return -1;
    }
    for (;;) {
        bool stopping;
        int64_t left = pgd_effective(deadline, &stopping) - cfg_mono_ms();
        if (left <= 0) {
            if (stopping)
                snprintf(errbuf, errlen, "stopping: gave up waiting for PostgreSQL");
            else
                snprintf(errbuf, errlen, "no answer from PostgreSQL within %d ms", pgd_budget_ms);
            /* A COMMIT is left to finish: it may be committing already, and cancelling
             * the work it does (deferred triggers) would only make the retry repeat it.
             * Its outcome is unknown either way; callers replay safely. */
            if (PQtransactionStatus(c) == PQTRANS_ACTIVE && !pgd_committing)
                pgd_cancel(c);
            return -1;
        }
        /* slices of 100 ms: a stop request is seen promptly even without EINTR (threads) */
        int r = poll(&p, 1, (int)(left > 100 ? 100 : left));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            snprintf(errbuf, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

int pgd_wait(PGconn *c, bool want_write, int64_t deadline, char *errbuf, size_t errlen)
{
    return pgd_poll(c, (short)(POLLIN | (want_write ? POLLOUT : 0)), deadline, errbuf, errlen);
}

bool pgd_abandoned(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_ACTIVE;
}

/* ---- connecting ---- */

/* Logs libpq notices (e.g. "relation already exists, skipping") at debug level
 * instead of letting libpq print them raw to stderr. */
static void pgd_notice(void *arg, const char *msg)
{
    (void)arg;
    log_debug("postgres: %s", msg);
}

PGconn *pgd_connect(const char *conninfo, int64_t deadline, char *errbuf, size_t errlen)
{
    /* dbname with expand_dbname: a URI or key=value string is expanded, "" means defaults */
    const char *const kw[] = { "dbname", NULL };
    const char *const val[] = { conninfo ? conninfo : "", NULL };
    PGconn *c = PQconnectStartParams(kw, val, 1);
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    PostgresPollingStatusType st = PQstatus(c) == CONNECTION_BAD ? PGRES_POLLING_FAILED
                                                                 : PGRES_POLLING_WRITING;
    char err[256];
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            pgd_conn_err(c, "connect", errbuf, errlen);
            goto fail;
        }
        /* the socket may change between calls (several hosts, SSL retry) */
        if (pgd_poll(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, err,
                     sizeof err) < 0) {
            snprintf(errbuf, errlen, "connect: %s", err);
            goto fail;
        }
        st = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) {
        pgd_conn_err(c, "non-blocking mode", errbuf, errlen);
        goto fail;
    }
    PQsetNoticeProcessor(c, pgd_notice, NULL);
    return c; /* caller owns: PQfinish */
fail:
    PQfinish(c);
    return NULL;
}

/* ---- commands ---- */

static int pgd_flush(PGconn *c, int64_t deadline, char *errbuf, size_t errlen)
{
    for (;;) {
        int r = PQflush(c);
        if (r == 0)
            return 0;
        if (r < 0) {
            pgd_conn_err(c, "send", errbuf, errlen);
            return -1;
        }
        if (pgd_wait(c, true, deadline, errbuf, errlen) < 0)
            return -1;
        /* libpq asks us to read while we wait to write, or the server may stall on us */
        if (!PQconsumeInput(c)) {
            pgd_conn_err(c, "receive", errbuf, errlen);
            return -1;
        }
    }
}

/* Next result of the current command, or NULL (and *failed) on timeout / lost link.
 * NULL with !*failed is libpq's "no more results". */
static PGresult *pgd_next(PGconn *c, int64_t deadline, bool *failed, char *errbuf, size_t errlen)
{
    *failed = false;
    while (PQisBusy(c)) {
        if (pgd_wait(c, false, deadline, errbuf, errlen) < 0) {
            *failed = true;
            return NULL;
        }
        if (!PQconsumeInput(c)) {
            pgd_conn_err(c, "receive", errbuf, errlen);
            *failed = true;
            return NULL;
        }
    }
    return PQgetResult(c);
}

/* Drains the results of a command; the first row-returning (or, with any_ok, the first
 * successful) result goes to *keep. 0 if every statement succeeded. */
static int pgd_drain(PGconn *c, int64_t deadline, PGresult **keep, bool any_ok,
                     char *errbuf, size_t errlen)
{
    int rc = 0;
    bool failed;
    PGresult *r;
    while ((r = pgd_next(c, deadline, &failed, errbuf, errlen)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (keep && !*keep && rc == 0 && (st == PGRES_TUPLES_OK || (any_ok && ok))) {
            *keep = r; /* handed to the caller */
            continue;
        }
        if (!ok && rc == 0) {
            pgd_res_err(r, errbuf, errlen);
            rc = -1;
        }
        PQclear(r);
    }
    if (failed || rc < 0) {
        if (keep && *keep) {
            PQclear(*keep);
            *keep = NULL;
        }
        return -1;
    }
    return 0;
}

/* Every command starts here: a stop whose grace is over fails at once. */
static int pgd_ready(PGconn *c, char *errbuf, size_t errlen)
{
    pgd_sqlstate[0] = '\0';
    if (pgd_stop_expired()) {
        snprintf(errbuf, errlen, "stopping: gave up waiting for PostgreSQL");
        return -1;
    }
    if (pgd_abandoned(c)) {
        snprintf(errbuf, errlen, "PostgreSQL connection is not usable");
        return -1;
    }
    return 0;
}

/* Does the last statement of sql commit ("...; COMMIT", "COMMIT", "END")? */
static bool pgd_ends_with_commit(const char *sql)
{
    size_t n = strlen(sql);
    while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\n'))
        n--;
    return (n >= 6 && strncasecmp(sql + n - 6, "COMMIT", 6) == 0) ||
           (n >= 3 && strncasecmp(sql + n - 3, "END", 3) == 0 && (n == 3 || sql[n - 4] == ' '));
}

int pgd_run(PGconn *c, const char *sql, int64_t deadline, PGresult **keep,
            char *errbuf, size_t errlen)
{
    if (pgd_ready(c, errbuf, errlen) < 0)
        return -1;
    pgd_committing = pgd_ends_with_commit(sql);
    if (!PQsendQuery(c, sql)) {
        pgd_conn_err(c, "send", errbuf, errlen);
        return -1;
    }
    if (pgd_flush(c, deadline, errbuf, errlen) < 0)
        return -1;
    return pgd_drain(c, deadline, keep, false, errbuf, errlen);
}

PGresult *pgd_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                    int64_t deadline, char *errbuf, size_t errlen)
{
    PGresult *r = NULL;
    if (pgd_ready(c, errbuf, errlen) < 0)
        return NULL;
    pgd_committing = false;
    if (!PQsendQueryParams(c, sql, nparams, NULL, params, NULL, NULL, 0)) {
        pgd_conn_err(c, "send", errbuf, errlen);
        return NULL;
    }
    if (pgd_flush(c, deadline, errbuf, errlen) < 0 ||
        pgd_drain(c, deadline, &r, true, errbuf, errlen) < 0)
        return NULL;
    if (!r)
        snprintf(errbuf, errlen, "no result");
    return r; /* caller owns: PQclear */
}

/* Sends the COPY data in chunks, pushing libpq's buffer out whenever it is full. */
static int pgd_copy_data(PGconn *c, const char *data, size_t len, int64_t deadline,
                         char *errbuf, size_t errlen)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off > (1 << 16) ? (1 << 16) : len - off;
        int pr = PQputCopyData(c, data + off, (int)n);
        if (pr < 0) {
            pgd_conn_err(c, "COPY", errbuf, errlen);
            return -1;
        }
        if (pr == 0) {
            if (pgd_flush(c, deadline, errbuf, errlen) < 0)
                return -1;
            continue;
        }
        off += n;
    }
    int er;
    while ((er = PQputCopyEnd(c, NULL)) == 0)
        if (pgd_flush(c, deadline, errbuf, errlen) < 0)
            return -1;
    if (er < 0) {
        pgd_conn_err(c, "COPY end", errbuf, errlen);
        return -1;
    }
    return pgd_flush(c, deadline, errbuf, errlen);
}

int pgd_copy_in(PGconn *c, const char *sql, const char *data, size_t len, int64_t deadline,
                char *errbuf, size_t errlen)
{
    if (pgd_ready(c, errbuf, errlen) < 0)
        return -1;
    pgd_committing = false;
    if (!PQsendQuery(c, sql)) {
        pgd_conn_err(c, "send", errbuf, errlen);
        return -1;
    }
    if (pgd_flush(c, deadline, errbuf, errlen) < 0)
        return -1;
    bool failed;
    PGresult *r = pgd_next(c, deadline, &failed, errbuf, errlen);
    if (!r) {
        if (!failed)
            snprintf(errbuf, errlen, "COPY: no result");
        return -1;
    }
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        pgd_res_err(r, errbuf, errlen);
        PQclear(r);
        char scratch[256] = "";
        char state[6];
        memcpy(state, pgd_sqlstate, sizeof state);
        pgd_drain(c, deadline, NULL, false, scratch, sizeof scratch); /* the first error counts */
        memcpy(pgd_sqlstate, state, sizeof state);
        return -1;
    }
    PQclear(r);
    if (pgd_copy_data(c, data, len, deadline, errbuf, errlen) < 0)
        return -1;
    return pgd_drain(c, deadline, NULL, false, errbuf, errlen);
}
