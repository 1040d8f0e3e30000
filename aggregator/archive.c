/* archive.c — --archive DIR: kline_1s rows written out, before retention deletes them, as
 * data.binance.vision daily files DIR/SYMBOL/SYMBOL-1s-YYYY-MM-DD.csv.gz (12 columns, no
 * header, ordered by open_time; docs/aggregator.md "Cold archive"), which
 * `kline-producer --replay` reads back.
 *
 * One symbol-day at a time, streamed: the table in keyset chunks of AGG_ARCHIVE_CHUNK rows
 * (each query bounded by the statement deadline), merged with the file already there (if
 * any) into a temporary file that is fsynced and renamed over the final name, so a crash
 * leaves either the old file or the new one, never half a file. The merge keeps every row
 * of the old file and every row of the table; where both have an open_time, the table's
 * row wins (it is the newer truth). A day whose merge adds nothing keeps its old file. */
#include "agg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cfg.h"
#include "kline.h"
#include "log.h"
#include "pgx.h"

#define AGG_DAY_MS 86400000LL
#define AGG_ARCHIVE_CHUNK 10000   /* rows per query: a few MB of result at most */
#define AGG_ARCHIVE_LINE 512      /* a row is ~120 bytes; longer lines are not ours */
#define AGG_ARCHIVE_GZ_MODE "wb6" /* level 9 is 3.5x the CPU for ~1% less */

/* Only the columns every kline_1s layout has (close_time is computed: open_time + 999). */
static const char agg_sql_arch_rows[] =
    "SELECT (extract(epoch FROM open_time) * 1000)::bigint, open, high, low, close, volume,"
    "  quote_volume, trades, taker_buy_volume, taker_buy_quote_volume FROM kline_1s"
    " WHERE symbol = $1 AND open_time >= to_timestamp($2::bigint / 1000.0)"
    "   AND open_time < to_timestamp($3::bigint / 1000.0) ORDER BY open_time LIMIT $4::int";
static const char agg_sql_arch_first[] =
    "SELECT (extract(epoch FROM min(open_time)) * 1000)::bigint FROM kline_1s"
    " WHERE symbol = $1 AND open_time >= to_timestamp($2::bigint / 1000.0)"
    "   AND open_time < to_timestamp($3::bigint / 1000.0)";
/* Every symbol kline_1s may hold: the ids of kline_1s_lean (schema/012), and in an
 * upgraded database the names in kline_1s_wide, by a loose index scan on its primary key
 * (one probe per symbol). A symbol without rows in the range costs one probe
 * (agg_arch_first). */
static const char agg_sql_arch_symbols[] =
    "SELECT symbol FROM kline_symbol ORDER BY 1";
static const char agg_sql_arch_symbols_wide[] =
    "WITH RECURSIVE s(sym) AS (SELECT min(symbol) FROM kline_1s_wide"
    "  UNION ALL SELECT (SELECT min(symbol) FROM kline_1s_wide WHERE symbol > s.sym) FROM s"
    "  WHERE s.sym IS NOT NULL)"
    " SELECT sym FROM s WHERE sym IS NOT NULL UNION SELECT symbol FROM kline_symbol ORDER BY 1";

/* The table side of a merge: the current chunk and the next row in it. */
struct agg_arch_src {
    PGconn *c;
    const char *sym;
    long long next_from, to; /* the next chunk starts at next_from */
    PGresult *r;
    int row, done;
};

/* The file side: the old archive file of the day, if any. */
struct agg_arch_old {
    gzFile gz;               /* NULL: no old file */
    char line[AGG_ARCHIVE_LINE];
    long long t;             /* open_time of line; -1 at the end */
    long lineno;
};

struct agg_arch_day {
    const char *path, *tmp;
    long long day;
    long rows, from_table, kept, replaced;
    int changed;             /* the table had a row the old file lacks or differs in */
};

static int agg_arch_src_fill(struct agg_arch_src *s, char *errbuf, size_t errlen)
{
    char from[24], to[24], lim[16], err[512];
    PQclear(s->r);
    s->r = NULL;
    s->row = 0;
    snprintf(from, sizeof from, "%lld", s->next_from);
    snprintf(to, sizeof to, "%lld", s->to);
    snprintf(lim, sizeof lim, "%d", AGG_ARCHIVE_CHUNK);
    const char *p[4] = { s->sym, from, to, lim };
    s->r = pgx_query(s->c, agg_sql_arch_rows, 4, p, err, sizeof err);
    if (!s->r)
        return snprintf(errbuf, errlen, "archive %s: reading kline_1s: %s", s->sym, err), -1;
    int n = PQntuples(s->r);
    if (n < AGG_ARCHIVE_CHUNK)
        s->done = 1; /* a short chunk is the last: no query that returns nothing */
    if (n > 0)
        s->next_from = strtoll(PQgetvalue(s->r, n - 1, 0), NULL, 10) + 1;
    return 0;
}

/* The table's next row as an archive line in out (and its open_time): 1, 0 at the end, -1. */
static int agg_arch_src_next(struct agg_arch_src *s, char *out, size_t outlen, long long *t,
                             char *errbuf, size_t errlen)
{
    while (!s->r || s->row >= PQntuples(s->r)) {
        if (s->r && s->done)
            return 0;
        if (agg_arch_src_fill(s, errbuf, errlen) < 0)
            return -1;
    }
    PGresult *r = s->r;
    int i = s->row++;
#define V(col) PQgetvalue(r, i, col)
    *t = strtoll(V(0), NULL, 10);
    int n = snprintf(out, outlen, "%lld,%s,%s,%s,%s,%s,%lld,%s,%s,%s,%s,0\n", *t, V(1), V(2), V(3),
                     V(4), V(5), *t + 999, V(6), V(7), V(8), V(9));
#undef V
    if (n < 0 || (size_t)n >= outlen)
        return snprintf(errbuf, errlen, "archive %s: row at %lld too long", s->sym, *t), -1;
    return 1;
}

/* Reads the old file's next line: 0 (t = -1 at its end) or -1 when it is not an archive
 * file in open_time order (then nothing is overwritten). */
static int agg_arch_old_next(struct agg_arch_old *o, const char *path, char *errbuf, size_t errlen)
{
    long long prev = o->t;
    o->t = -1;
    if (!o->gz)
        return 0;
    if (!gzgets(o->gz, o->line, sizeof o->line)) {
        int zerr;
        const char *msg = gzerror(o->gz, &zerr);
        /* the end of a whole file is Z_OK; one cut short is Z_BUF_ERROR */
        if (zerr != Z_OK)
            return snprintf(errbuf, errlen, "archive: reading %s: %s; not overwritten", path, msg), -1;
        return 0;
    }
    o->lineno++;
    char *end;
    size_t len = strlen(o->line);
    int zerr;
    const char *zmsg = gzerror(o->gz, &zerr);
    if (zerr != Z_OK) /* a file cut short ends in a partial line: say why */
        return snprintf(errbuf, errlen, "archive: reading %s: %s; not overwritten", path, zmsg), -1;
    long long t = strtoll(o->line, &end, 10);
    if (len == 0 || o->line[len - 1] != '\n' || *end != ',' || t <= prev)
        return snprintf(errbuf, errlen, "archive: %s line %ld is not an archive row in open_time "
                        "order; not overwritten", path, o->lineno), -1;
    o->t = t;
    return 0;
}

static int agg_arch_put(gzFile out, const char *line, const char *tmp, char *errbuf, size_t errlen)
{
    size_t n = strlen(line);
    if (gzwrite(out, line, (unsigned)n) != (int)n) {
        int zerr;
        return snprintf(errbuf, errlen, "archive: writing %s: %s", tmp, gzerror(out, &zerr)), -1;
    }
    return 0;
}

/* The merge of the table's rows (src) with the old file (old) into out, both in open_time
 * order; the table wins a tie. */
static int agg_arch_merge(struct agg_arch_src *src, struct agg_arch_old *old, gzFile out,
                          struct agg_arch_day *d, char *errbuf, size_t errlen)
{
    char row[AGG_ARCHIVE_LINE];
    long long t = -1;
    int have = agg_arch_src_next(src, row, sizeof row, &t, errbuf, errlen);
    if (have < 0 || agg_arch_old_next(old, d->path, errbuf, errlen) < 0)
        return -1;
    while (have == 1 || old->t >= 0) {
        int take_old = old->t >= 0 && (have != 1 || old->t < t);
        if (!take_old && old->t == t) { /* the same second in both: the table's wins */
            d->replaced++;
            d->changed |= strcmp(old->line, row) != 0;
        } else if (!take_old) {
            d->changed = 1;
        }
        if (agg_arch_put(out, take_old ? old->line : row, d->tmp, errbuf, errlen) < 0)
            return -1;
        d->rows++;
        if (take_old)
            d->kept++;
        else
            d->from_table++;
        if ((take_old || old->t == t) && agg_arch_old_next(old, d->path, errbuf, errlen) < 0)
            return -1;
        if (!take_old && (have = agg_arch_src_next(src, row, sizeof row, &t, errbuf, errlen)) < 0)
            return -1;
    }
    return 0;
}

/* mkdir that accepts an existing directory. */
static int agg_arch_mkdir(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return snprintf(errbuf, errlen, "archive: mkdir %s: %s", path, strerror(errno)), -1;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return snprintf(errbuf, errlen, "archive: %s exists and is not a directory", path), -1;
    return 0;
}

/* fsync of a directory, so that a rename in it survives a power cut. */
static int agg_arch_sync_dir(const char *dir, char *errbuf, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) < 0) {
        snprintf(errbuf, errlen, "archive: fsync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Opens the old file of the day for the merge: 0 (o->gz NULL when there is none) or -1. */
static int agg_arch_old_open(struct agg_arch_old *o, const char *path, char *errbuf, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->t = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || !(o->gz = gzdopen(fd, "rb"))) {
        snprintf(errbuf, errlen, "archive: opening %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

/* Writes the temporary file: the merge, gzip trailer, fsync. 0 / -1 (the caller unlinks). */
static int agg_arch_write_tmp(struct agg_arch_src *src, struct agg_arch_old *old,
                              struct agg_arch_day *d, char *errbuf, size_t errlen)
{
    int fd = open(d->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return snprintf(errbuf, errlen, "archive: creating %s: %s", d->tmp, strerror(errno)), -1;
    int zfd = dup(fd); /* gzclose closes its own descriptor; fd stays for the fsync */
    gzFile out = zfd >= 0 ? gzdopen(zfd, AGG_ARCHIVE_GZ_MODE) : NULL;
    if (!out) {
        snprintf(errbuf, errlen, "archive: gzip %s: %s", d->tmp, strerror(errno));
        if (zfd >= 0)
            close(zfd);
        close(fd);
        return -1;
    }
    int rc = agg_arch_merge(src, old, out, d, errbuf, errlen);
    int zrc = gzclose(out);
    if (rc == 0 && zrc != Z_OK)
        rc = (snprintf(errbuf, errlen, "archive: writing %s: gzip error %d", d->tmp, zrc), -1);
    if (rc == 0 && fsync(fd) < 0)
        rc = (snprintf(errbuf, errlen, "archive: fsync %s: %s", d->tmp, strerror(errno)), -1);
    close(fd);
    return rc;
}

/* One symbol-day: DIR/SYM/SYM-1s-DATE.csv.gz holds, afterwards, every row the table has for
 * that day plus the rows the old file had. 0 / -1 (the old file is then untouched). */
static int agg_arch_day(PGconn *c, const char *dir, const char *sym, long long day,
                        struct agg_archive_stats *st, char *errbuf, size_t errlen)
{
    char sdir[4096], path[4200], tmp[4300], date[16];
    time_t secs = (time_t)(day / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    snprintf(sdir, sizeof sdir, "%s/%s", dir, sym);
    snprintf(path, sizeof path, "%s/%s-1s-%s.csv.gz", sdir, sym, date);
    /* One retention (PGX_LOCK_RETENTION) at a time per database writes here: a fixed name
     * that a crashed run left behind is simply overwritten. */
    snprintf(tmp, sizeof tmp, "%s/.%s-1s-%s.csv.gz.tmp", sdir, sym, date);
    if (agg_arch_mkdir(sdir, errbuf, errlen) < 0)
        return -1;
    struct agg_arch_src src = { .c = c, .sym = sym, .next_from = day, .to = day + AGG_DAY_MS };
    struct agg_arch_old old;
    struct agg_arch_day d = { .path = path, .tmp = tmp, .day = day };
    if (agg_arch_old_open(&old, path, errbuf, errlen) < 0)
        return -1;
    int rc = agg_arch_write_tmp(&src, &old, &d, errbuf, errlen);
    PQclear(src.r);
    if (old.gz)
        gzclose(old.gz);
    /* Nothing new for a file that exists, or no row at all: the old state stays. */
    int publish = d.rows > 0 && (d.changed || !old.gz);
    if (rc == 0 && publish) {
        if (rename(tmp, path) < 0)
            rc = (snprintf(errbuf, errlen, "archive: rename to %s: %s", path, strerror(errno)), -1);
        else
            rc = agg_arch_sync_dir(sdir, errbuf, errlen);
    }
    if (rc < 0 || !publish)
        unlink(tmp);
    if (rc == 0) {
        st->files += publish;
        st->rows += d.from_table;
        log_debug("archive: %s: %ld rows (%ld from kline_1s, %ld kept from the old file)%s", path,
                  d.rows, d.from_table, d.kept, publish ? "" : "; unchanged");
    }
    return rc;
}

/* The open_time of the symbol's first row in [from, to), or -1 when there is none; -2 on
 * error. */
static long long agg_arch_first(PGconn *c, const char *sym, long long from, long long to,
                                char *errbuf, size_t errlen)
{
    char s_from[24], s_to[24], err[512];
    snprintf(s_from, sizeof s_from, "%lld", from);
    snprintf(s_to, sizeof s_to, "%lld", to);
    const char *p[3] = { sym, s_from, s_to };
    PGresult *r = pgx_query(c, agg_sql_arch_first, 3, p, err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "archive %s: %s", sym, err), -2;
    long long t = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return t;
}

/* Every day of one symbol in [from, to) that has rows, day by day (empty days are skipped
 * by asking for the next row). */
static int agg_arch_symbol(PGconn *c, const char *dir, const char *sym, long long from,
                           long long to, struct agg_archive_stats *st, char *errbuf, size_t errlen)
{
    if (!kline_symbol_valid(sym)) /* it becomes a path: never anything but [A-Z0-9] */
        return snprintf(errbuf, errlen, "archive: kline_1s symbol '%s' is not a Binance symbol", sym), -1;
    long long t = from;
    while (t < to) {
        t = agg_arch_first(c, sym, t, to, errbuf, errlen);
        if (t < -1)
            return -1;
        if (t < 0)
            break;
        long long day = t - t % AGG_DAY_MS;
        if (agg_arch_day(c, dir, sym, day, st, errbuf, errlen) < 0)
            return -1;
        t = day + AGG_DAY_MS;
    }
    return 0;
}

int agg_archive_range(PGconn *c, long long from_ms, long long to_ms, const char *dir,
                      struct agg_archive_stats *st, char *errbuf, size_t errlen)
{
    char err[512];
    memset(st, 0, sizeof *st);
    if (from_ms < 0 || from_ms % AGG_DAY_MS || to_ms % AGG_DAY_MS)
        return snprintf(errbuf, errlen, "archive: [%lld, %lld) is not whole UTC days", from_ms, to_ms), -1;
    if (to_ms <= from_ms)
        return 0;
    if (agg_arch_mkdir(dir, errbuf, errlen) < 0)
        return -1;
    int wide = pgx_relation_exists(c, "kline_1s_wide");
    if (wide < 0)
        return snprintf(errbuf, errlen, "archive: is there a kline_1s_wide?"), -1;
    PGresult *r = pgx_query(c, wide ? agg_sql_arch_symbols_wide : agg_sql_arch_symbols, 0, NULL,
                            err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "archive: symbols of kline_1s: %s", err), -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = agg_arch_symbol(c, dir, PQgetvalue(r, i, 0), from_ms, to_ms, st, errbuf, errlen);
    PQclear(r);
    return rc;
}

/* What the last archive pass covered, for the deletions that follow it (retention may take
 * several runs to delete it in loop mode). */
static struct {
    int valid;
    long long through_ms;   /* every row before it was archived... */
    long long ckpt_id;      /* ...as of this checkpoint id: rows committed later are newer */
} agg_arch_state;

static int agg_arch_max_checkpoint(PGconn *c, long long *id, char *errbuf, size_t errlen)
{
    char err[512];
    PGresult *r = pgx_query(c, "SELECT coalesce(max(id), 0) FROM checkpoint", 0, NULL, err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "archive: checkpoint ids: %s", err), -1;
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int agg_archive_before_retention(PGconn *c, const struct agg_config *cfg, int64_t *cut_ms,
                                 long long *guard_id, char *errbuf, size_t errlen)
{
    if (!agg_arch_state.valid) {
        struct agg_archive_stats st;
        long long ckpt, through = *cut_ms - *cut_ms % AGG_DAY_MS;
        /* The id first: a row committed after it has a newer checkpoint, which keeps it
         * from deletion until a later pass has archived it. */
        if (agg_arch_max_checkpoint(c, &ckpt, errbuf, errlen) < 0 ||
            agg_archive_range(c, 0, through, cfg->archive_dir, &st, errbuf, errlen) < 0)
            return -1;
        if (st.files)
            log_info("archive: %lld rows of kline_1s before %lld written to %ld files in %s", st.rows,
                     through, st.files, cfg->archive_dir);
        agg_arch_state.valid = 1;
        agg_arch_state.through_ms = through;
        agg_arch_state.ckpt_id = ckpt;
    }
    if (*cut_ms > agg_arch_state.through_ms)
        *cut_ms = agg_arch_state.through_ms;
    if (*guard_id > agg_arch_state.ckpt_id)
        *guard_id = agg_arch_state.ckpt_id;
    return 0;
}

void agg_archive_retention_done(void)
{
    agg_arch_state.valid = 0;
}
