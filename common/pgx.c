/* pgx.c — libpq helpers: connect with retry, commands, migrations. */
#include "pgx.h"
#include "pgx_schema.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void pgx_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void pgx_errmsg(PGconn *c, char *errbuf, size_t errlen)
{
    const char *m = PQerrorMessage(c);
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(errbuf, errlen, "%.*s", (int)n, m);
}

/* Logs libpq notices (e.g. "relation already exists, skipping") at debug level
 * instead of letting libpq print them raw to stderr. */
static void pgx_notice(void *arg, const char *msg)
{
    (void)arg;
    log_debug("postgres: %s", msg);
}

PGconn *pgx_connect(const char *url, int timeout_ms, volatile int *stop_flag,
                    char *errbuf, size_t errlen)
{
    const char *conninfo = (url && *url) ? url : "";
    int backoff = 100, waited = 0, attempt = 0;
    for (;;) {
        PGconn *c = PQconnectdb(conninfo);
        if (c && PQstatus(c) == CONNECTION_OK) {
            PQsetNoticeProcessor(c, pgx_notice, NULL);
            if (attempt > 0)
                log_info("connected to PostgreSQL after %d retries", attempt);
            return c; /* caller owns: PQfinish */
        }
        if (c)
            pgx_errmsg(c, errbuf, errlen);
        else
            snprintf(errbuf, errlen, "out of memory");
        PQfinish(c);
        if (waited >= timeout_ms || (stop_flag && *stop_flag))
            return NULL;
        if (attempt++ == 0 || attempt % 10 == 0)
            log_warn("PostgreSQL not reachable (%s); retrying for up to %d s", errbuf,
                     (timeout_ms - waited) / 1000);
        pgx_sleep_ms(backoff);
        waited += backoff;
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

int pgx_exec(PGconn *c, const char *sql, char *errbuf, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        pgx_errmsg(c, errbuf, errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

int pgx_is_broken(PGconn *c)
{
    return !c || PQstatus(c) != CONNECTION_OK;
}

static int pgx_applied(PGconn *c, const char *version, char *errbuf, size_t errlen)
{
    const char *params[1] = { version };
    PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1",
                               1, NULL, params, NULL, NULL, 0);
    int rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pgx_errmsg(c, errbuf, errlen);
        rc = -1;
    } else {
        rc = PQntuples(r) > 0;
    }
    PQclear(r);
    return rc;
}

static int pgx_apply_one(PGconn *c, const struct pgx_migration *m, char *errbuf, size_t errlen)
{
    char err[512];
    const char *params[1] = { m->version };
    if (pgx_exec(c, "BEGIN", err, sizeof err) < 0 || pgx_exec(c, m->sql, err, sizeof err) < 0)
        goto fail;
    PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations (version) VALUES ($1)",
                               1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        pgx_errmsg(c, err, sizeof err);
        goto fail;
    }
    if (pgx_exec(c, "COMMIT", err, sizeof err) < 0)
        goto fail;
    log_info("applied schema migration %s", m->version);
    return 0;
fail:
    snprintf(errbuf, errlen, "schema migration %s failed: %s", m->version, err);
    pgx_exec(c, "ROLLBACK", err, sizeof err);
    return -1;
}

int pgx_migrate(PGconn *c, char *errbuf, size_t errlen)
{
    char sql[128], err[512];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", PGX_LOCK_MIGRATE);
    if (pgx_exec(c, sql, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "cannot take the migration lock: %s", err);
        return -1;
    }
    int rc = 0;
    if (pgx_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "cannot create schema_migrations: %s", err);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < pgx_migrations_count; i++) {
        int applied = pgx_applied(c, pgx_migrations[i].version, errbuf, errlen);
        if (applied < 0)
            rc = -1;
        else if (!applied)
            rc = pgx_apply_one(c, &pgx_migrations[i], errbuf, errlen);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", PGX_LOCK_MIGRATE);
    pgx_exec(c, sql, err, sizeof err);
    return rc;
}
