/* pgx.h — PostgreSQL helpers: connect with retry, run commands, apply migrations.
 * Every call goes through the deadline driver (pgd.h): none can hang on a server or a
 * network that stopped answering. */
#ifndef PGX_H
#define PGX_H

#include <stddef.h>
#include <libpq-fe.h>

/* Process-wide bounds of the calls below: one connection attempt (default 10 s) and one
 * pgx_exec/pgx_query statement (default 30 s). Set once at start-up. */
void pgx_set_timeouts(int connect_ms, int query_ms);
int  pgx_query_timeout_ms(void);

/* Connects to url (libpq URI or conninfo; NULL/"" → libpq's PG* defaults), retrying with
 * backoff for up to timeout_ms (0 = one attempt) while stop_flag (may be NULL) stays 0;
 * each attempt is bounded by the connect timeout. Returns a non-blocking connection the
 * caller owns (PQfinish), or NULL with the reason in errbuf. */
PGconn *pgx_connect(const char *url, int timeout_ms, volatile int *stop_flag,
                    char *errbuf, size_t errlen);

/* Runs a command with no result rows expected; -1 with the server message in errbuf. */
int pgx_exec(PGconn *c, const char *sql, char *errbuf, size_t errlen);

/* One parameterised statement within the query timeout: its result (caller PQclears it)
 * on success, else NULL with the reason in errbuf. The non-blocking PQexecParams. */
PGresult *pgx_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                    char *errbuf, size_t errlen);

/* Applies every embedded schema/NNN_*.sql migration not yet recorded in schema_migrations,
 * each in its own transaction, under a session advisory lock, so concurrent programs
 * starting together are safe. Idempotent. */
int pgx_migrate(PGconn *c, char *errbuf, size_t errlen);

/* True when the connection is unusable and must be re-established (also after a
 * statement timed out: its command is still in flight). */
int pgx_is_broken(PGconn *c);
/* Does the table (or view) exist? 1 / 0, -1 on error. */
int pgx_relation_exists(PGconn *c, const char *name);

/* Advisory lock keys used across programs (one place, so they never collide). */
#define PGX_LOCK_MIGRATE     0x6b6c6e0001LL
#define PGX_LOCK_CHECKPOINT  0x6b6c6e0002LL  /* inserters serialise checkpoint ids with commit order */
#define PGX_LOCK_AGGREGATOR  0x6b6c6e0003LL
#define PGX_LOCK_RETENTION   0x6b6c6e0004LL
#define PGX_LOCK_PARTITION   0x6b6c6e0005LL  /* kline_1s_ensure (schema 010): one partition creator */

#define PGX_NOTIFY_CHANNEL "kline_checkpoint"

#endif
