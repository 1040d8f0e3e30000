/* agg.h — kline-aggregator: checkpoint-driven rollups of kline_1s into kline_1m and
 * coarser bars. Shared types of the files in aggregator/. */
#ifndef AGG_H
#define AGG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#define AGG_PROG "kline-aggregator"
#define AGG_MAX_INTERVALS 6
#define AGG_NOTIFY_ROLLUP "kline_rollup"

/* One bar length the aggregator can write. The table name comes only from this
 * fixed list, so it is safe to splice into SQL text. */
struct agg_interval {
    const char *name;   /* "1m" */
    const char *table;  /* "kline_1m" */
    int seconds;        /* 60 */
    int index;          /* position in agg_intervals[], for per-interval counters */
};

extern const struct agg_interval agg_intervals[AGG_MAX_INTERVALS];
const struct agg_interval *agg_interval_find(const char *name);

/* --retain entry: rows of `table` older than now - keep_s are deleted. */
struct agg_retain {
    const char *key;    /* "1s" or an interval name */
    const char *table;  /* "kline_1s", "kline_1m", ... */
    int64_t keep_s;
};

struct agg_config {
    const char *db_url;             /* NULL → libpq PG* defaults */
    const char *name;               /* aggregator_progress.name */
    const struct agg_interval *iv[AGG_MAX_INTERVALS]; /* ascending; iv[0] is 1m */
    int n_iv;
    bool once;
    int every_s;                    /* loop period when !once */
    int listen;                     /* LISTEN kline_checkpoint in loop mode */
    bool strict;                    /* --once exits 1 on bad state */
    struct agg_retain retain[AGG_MAX_INTERVALS + 1];
    int n_retain;
    int retain_batch;               /* rows per retention DELETE transaction */
    int64_t compact_after_s;        /* rebuild a partition's PK this long after its hour; 0 = off */
    const char *archive_dir;        /* --archive: 1s rows are archived here before deletion */
    int batch_checkpoints;          /* checkpoints consumed per transaction */
    int batch_buckets;              /* buckets rolled up per interval per transaction */
    int connect_timeout_s;          /* --once: connecting gives up after this */
    int pg_timeout_ms;              /* bound on one statement (pgx_set_timeouts) */
    int pg_connect_timeout_ms;      /* bound on one connection attempt */
    int log_level;                  /* log_level_parse */
    const char *metrics_host;
    int metrics_port;               /* 0 = off */
    int stats_interval_s;           /* 0 = off */
    int64_t incomplete_grace_s;     /* hold incomplete buckets this long in data time; 0 = off */
};

/* interval.c: the list above. */

/* opts.c: the option table. Parses argv and the environment into *cfg (exit 2 on a usage
 * error; --help and --version exit 0). */
void agg_opts_parse(int argc, char **argv, struct agg_config *cfg);
/* The structured values, also usable on their own (unit tests): 0, or -1 with the reason
 * in errbuf. dest is the struct agg_config to fill (they are the table's KP_OPT_CALLs). */
int agg_parse_intervals(const char *csv, void *dest, char *errbuf, size_t errlen);
int agg_parse_retain(const char *csv, void *dest, char *errbuf, size_t errlen);
/* A whole positive number with a unit (s m h d w) → seconds: cfg_parse_duration_ms's
 * grammar without fractions or bare numbers. 0 / -1. */
int agg_parse_duration(const char *s, int64_t *seconds);
/* --incomplete-grace: "0" or a duration (agg_parse_duration) up to AGG_GRACE_MAX_S. */
#define AGG_GRACE_MAX_S (7 * 86400)
int agg_parse_grace(const char *s, int64_t *seconds);

/* rollup.c: what one transaction did. */
struct agg_tx_result {
    long checkpoints;               /* consumed */
    long bad_checkpoints;           /* reported (rejected table + log) */
    long buckets[AGG_MAX_INTERVALS];/* rolled up, by agg_interval.index */
    long bars[AGG_MAX_INTERVALS];   /* inserted or changed, by agg_interval.index */
    long held[AGG_MAX_INTERVALS];   /* found incomplete, held for the grace (no bar yet) */
    long incomplete[AGG_MAX_INTERVALS]; /* reported incomplete (incomplete_bar + log) */
    long resolved[AGG_MAX_INTERVALS];   /* reports resolved: rewritten complete */
    int64_t newest_1m_ms;           /* open_time of the newest 1m bar written, -1 if none */
    int more;                       /* a batch limit was hit: run another transaction */
};

/* Runs one transaction: consume new checkpoints (bounded), roll up every ready bucket of
 * every configured interval (bounded), advance progress, COMMIT. -1 on any error (the
 * transaction is rolled back; nothing was consumed). */
int agg_rollup_tx(PGconn *c, const struct agg_config *cfg, struct agg_tx_result *res,
                  char *errbuf, size_t errlen);

/* Session set-up every new connection needs (jit off, LISTEN). */
int agg_session_init(PGconn *c, const struct agg_config *cfg, char *errbuf, size_t errlen);

/* loop.c */
/* Session-level pg_try_advisory_lock(PGX_LOCK_AGGREGATOR): 1 got it, 0 busy, -1 error. */
int agg_try_lock(PGconn *c, char *errbuf, size_t errlen);
/* Waits up to timeout_ms for a NOTIFY on the connection: 1 notified, 0 timeout or
 * signal, -1 connection broken. */
int agg_wait_notify(PGconn *c, int timeout_ms);
/* Runs transactions until no ready work is left or a stop is requested. 0 / -1. Counts
 * go to agg_stats; *did_work set when anything was consumed or written. */
int agg_run_until_idle(PGconn *c, const struct agg_config *cfg, int *did_work,
                       char *errbuf, size_t errlen);
/* --once: connect, lock, roll up until idle, retention. Returns the exit code. */
int agg_once(const struct agg_config *cfg);
/* The --every loop: reconnects, waits for the lock, runs, sleeps or is woken by NOTIFY.
 * Returns the exit code. */
int agg_loop(const struct agg_config *cfg);

/* compact.c: rebuilds the primary key of at most one hourly kline_1s partition whose
 * hour ended --compact-after ago (see compact.c for why). 0 (also when there is none), -1. */
int agg_compact_run(PGconn *c, const struct agg_config *cfg, char *errbuf, size_t errlen);

/* retention.c: deletes at most max_batches batches (0 = no limit) across the configured
 * tables. Returns 0 when done, 1 when more remains, -1 on error. */
int agg_retention_run(PGconn *c, const struct agg_config *cfg, int max_batches,
                      char *errbuf, size_t errlen);

/* archive.c: kline_1s as data.binance.vision daily files DIR/SYMBOL/SYMBOL-1s-DAY.csv.gz. */
struct agg_archive_stats {
    long files;                     /* files written (a day whose merge added nothing: none) */
    long long rows;                 /* kline_1s rows now in those files */
};
/* Archives every kline_1s row with open_time in [from_ms, to_ms) (whole UTC days), merged
 * with the files already there (the table's row wins a tie); each file is replaced
 * atomically (temp, fsync, rename). 0, or -1 with the reason (files written before the
 * failure stay, complete). */
int agg_archive_range(PGconn *c, long long from_ms, long long to_ms, const char *dir,
                      struct agg_archive_stats *st, char *errbuf, size_t errlen);
/* Retention's hook (cfg->archive_dir set): unless a pass is still being deleted, archives
 * every whole day before *cut_ms; then lowers *cut_ms to the archived bound and *guard_id
 * (checkpoints above it protect their rows) to the last checkpoint the archive saw, so
 * only archived rows are deleted. -1 (nothing may be deleted) on failure. */
int agg_archive_before_retention(PGconn *c, const struct agg_config *cfg, int64_t *cut_ms,
                                 long long *guard_id, char *errbuf, size_t errlen);
/* The 1s deletion of the last pass is complete: the next run archives again. */
void agg_archive_retention_done(void);

/* stats.c: counters read by the metrics thread (atomics only). */
struct agg_stats {
    atomic_llong runs;
    atomic_llong run_errors;
    atomic_llong transactions;
    atomic_llong checkpoints;
    atomic_llong bad_state;
    atomic_llong buckets[AGG_MAX_INTERVALS];
    atomic_llong bars[AGG_MAX_INTERVALS];
    atomic_llong incomplete[AGG_MAX_INTERVALS];
    atomic_llong resolved[AGG_MAX_INTERVALS];
    atomic_llong pending;           /* gauge: aggregator_pending rows after the last run */
    atomic_llong held;              /* gauge: ...of which held incomplete */
    atomic_llong last_run_us;       /* gauge */
    atomic_llong last_lag_ms;       /* gauge: commit time − end of the newest 1m bar */
    atomic_llong max_lag_ms;
    atomic_llong retention_deleted;
    atomic_llong retention_partitions; /* hourly kline_1s partitions dropped */
    atomic_llong compacted;            /* hourly kline_1s partitions whose PK was rebuilt */
    atomic_llong reconnects;
    atomic_llong lock_busy;
};
extern struct agg_stats agg_stats;

void agg_stats_add_tx(const struct agg_tx_result *r);
int  agg_stats_metrics_start(const struct agg_config *cfg, char *errbuf, size_t errlen);
void agg_stats_log(const char *what);
/* Refreshes the pending-buckets gauge from the database (cheap: PK index). */
void agg_stats_refresh_pending(PGconn *c, const struct agg_config *cfg);

#endif
