/* pgx.c — libpq helpers: connect with retry, commands, migrations, all on the deadline
 * driver (pgd.c). */
#include "pgx.h"
#include "pgx_schema.h"
#include "cfg.h"
#include "log.h"
#include "pgd.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PGX_MIGRATE_TIMEOUT_MS (4 * 3600 * 1000) /* 009 scans the old kline_1s once (docs/storage.md) */

static int pgx_connect_ms = 10000, pgx_query_ms = 30000;

void pgx_set_timeouts(int connect_ms, int query_ms)
{
    pgx_connect_ms = connect_ms;
    pgx_query_ms = query_ms;
}

int pgx_query_timeout_ms(void)
{
    return pgx_query_ms;
}

static void pgx_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* a signal cuts it short: the loop re-checks the stop flag */
}

PGconn *pgx_connect(const char *url, int timeout_ms, volatile int *stop_flag,
                    char *errbuf, size_t errlen)
{
    int backoff = 100, attempt = 0;
    int64_t give_up = cfg_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = give_up - cfg_mono_ms();
        int per = left > pgx_connect_ms || left <= 0 ? pgx_connect_ms : (int)left;
        PGconn *c = pgd_connect(url, pgd_deadline(per), errbuf, errlen);
        if (c) {
            if (attempt > 0)
                log_info("connected to PostgreSQL after %d retries", attempt);
            return c; /* caller owns: PQfinish */
        }
        if (cfg_mono_ms() >= give_up || (stop_flag && *stop_flag) || pgd_stop_expired())
            return NULL;
        if (attempt++ == 0 || attempt % 10 == 0)
            log_warn("PostgreSQL not reachable (%s); retrying for up to %d s", errbuf,
                     (int)((give_up - cfg_mono_ms()) / 1000));
        pgx_sleep_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

int pgx_exec(PGconn *c, const char *sql, char *errbuf, size_t errlen)
{
    return pgd_run(c, sql, pgd_deadline(pgx_query_ms), NULL, errbuf, errlen);
}

PGresult *pgx_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                    char *errbuf, size_t errlen)
{
    return pgd_query(c, sql, nparams, params, pgd_deadline(pgx_query_ms), errbuf, errlen);
}

int pgx_is_broken(PGconn *c)
{
    return pgd_abandoned(c);
}

static int pgx_applied(PGconn *c, const char *version, char *errbuf, size_t errlen)
{
    const char *params[1] = { version };
    PGresult *r = pgx_query(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                            params, errbuf, errlen);
    if (!r)
        return -1;
    int rc = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int pgx_apply_one(PGconn *c, const struct pgx_migration *m, char *errbuf, size_t errlen)
{
    char err[512];
    const char *params[1] = { m->version };
    if (pgx_exec(c, "BEGIN", err, sizeof err) < 0 ||
        pgd_run(c, m->sql, pgd_deadline(PGX_MIGRATE_TIMEOUT_MS), NULL, err, sizeof err) < 0)
        goto fail;
    PGresult *r = pgx_query(c, "INSERT INTO schema_migrations (version) VALUES ($1)", 1,
                            params, err, sizeof err);
    if (!r)
        goto fail;
    PQclear(r);
    if (pgx_exec(c, "COMMIT", err, sizeof err) < 0)
        goto fail;
    log_info("applied schema migration %s", m->version);
    return 0;
fail:
    snprintf(errbuf, errlen, "schema migration %s failed: %s", m->version, err);
    if (!pgx_is_broken(c))
        pgx_exec(c, "ROLLBACK", err, sizeof err);
    return -1;
}

int pgx_migrate(PGconn *c, char *errbuf, size_t errlen)
{
    char sql[128], err[512];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", PGX_LOCK_MIGRATE);
    /* another program may be migrating: wait for it, but not for ever */
    if (pgd_run(c, sql, pgd_deadline(PGX_MIGRATE_TIMEOUT_MS), NULL, err, sizeof err) < 0) {
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
    if (!pgx_is_broken(c))
        pgx_exec(c, sql, err, sizeof err);
    return rc;
}

int pgx_relation_exists(PGconn *c, const char *name)
{
    char err[256];
    const char *params[1] = { name };
    PGresult *r = pgx_query(c, "SELECT to_regclass($1) IS NOT NULL", 1, params, err, sizeof err);
    if (!r)
        return -1;
    int rc = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}
