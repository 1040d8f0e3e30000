/* replay.c — history as a source: a data.binance.vision CSV (plain or gzip; the symbol
 * from one -s SYMBOL or from the file's name), canonical NDJSON, or a directory of such
 * CSV files (an --archive of kline-aggregator), published with source "replay", paced by
 * --replay-speed (1 = real time by open_time, 0 = as fast as possible). */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "lines.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Waits until the moment open_time plays at; -1 if asked to stop meanwhile. */
static int replay_pace(int64_t open_time, int64_t *t0_data, int64_t *t0_us)
{
    if (prod_cfg.replay_speed <= 0)
        return 0;
    if (*t0_data == PROD_NONE) {
        *t0_data = open_time;
        *t0_us = cfg_mono_us();
        return 0;
    }
    int64_t due = *t0_us + (int64_t)((double)(open_time - *t0_data) * 1000.0 / prod_cfg.replay_speed);
    for (;;) {
        if (sig_stop || prod_stopping)
            return -1;
        int64_t left = due - cfg_mono_us();
        if (left <= 0)
            return 0;
        pub_poll();
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (left > 100000 ? 100000 : left) * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* One replay: where it reads, what it knows about its input, how far it got. */
typedef struct replay {
    const char *path;
    const char *sym;          /* for CSV rows (they name none): -s or the file name; or NULL */
    long lineno, published;
    int64_t t0_data, t0_us;   /* pacing: the first open_time and when it played */
} replay_t;

/* A line longer than the bound was cut by the reader: its first bytes go to the dead
 * letters with the reason kline_parse gives a line that long (as when it was read whole). */
static void replay_reject_cut(const kp_line_t *ln)
{
    char why[96];
    snprintf(why, sizeof why, "input of %zu bytes exceeds %d", ln->full_len, KLINE_INPUT_MAX);
    pub_reject(ln->data, ln->len, "replay", why);
}

/* One input line. 0 go on, 1 stop (asked to), -1 failure, -2 usage error (errbuf). */
static int replay_line(replay_t *r, const kp_line_t *ln, char *errbuf, size_t errlen)
{
    const char *line = ln->data;
    size_t n = ln->len;
    char why[192], origin[32];
    while (n > 0 && line[n - 1] == '\r')
        n--;
    if (n == 0)
        return 0;
    if (ln->full_len > ln->len) {
        replay_reject_cut(ln);
        return 0;
    }
    bool json = line[0] == '{' || line[0] == '[';
    if (!json && !isdigit((unsigned char)line[0]) && r->lineno == 1)
        return 0; /* a CSV header row */
    if (!json && !r->sym) {
        snprintf(errbuf, errlen, "%s: CSV input needs exactly one -s SYMBOL (or a file named "
                 "SYMBOL-INTERVAL-YYYY-MM-DD.csv[.gz])", r->path);
        return -2;
    }
    const char *sym = r->sym;
    snprintf(origin, sizeof origin, "replay");
    kline_t k;
    if (kline_parse(line, (size_t)n, sym, prod_cfg.interval, &k, why, sizeof why) < 0) {
        pub_reject(line, (size_t)n, origin, why);
        return 0;
    }
    k.source = KLINE_SRC_REPLAY;
    if (replay_pace(k.open_time, &r->t0_data, &r->t0_us) < 0)
        return 1;
    if (pub_kline(&k, cfg_now_ms(), cfg_mono_us()) < 0) {
        snprintf(errbuf, errlen, "publishing failed at line %ld", r->lineno);
        return -1;
    }
    if (++r->published % 1024 == 0)
        pub_poll();
    return 0;
}

/* Lines are bounded like every kline input (KLINE_INPUT_MAX); a quiet pipe still serves
 * delivery reports and notices a signal every REPLAY_WAIT_MS. */
#define REPLAY_WAIT_MS 200

/* The input of one replay: a gzip file, or lines from a plain file or stdin. */
typedef struct replay_src {
    replay_gz_t *gz;
    kp_lines_t lr;
} replay_src_t;

static int replay_src_open(replay_src_t *s, const char *path, char *errbuf, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (strcmp(path, "-") != 0 && replay_is_gzip(path))
        return (s->gz = replay_gz_open(path, KLINE_INPUT_MAX, errbuf, errlen)) ? 0 : -1;
    return kp_lines_open(&s->lr, path, KLINE_INPUT_MAX, errbuf, errlen);
}

static int replay_src_next(replay_src_t *s, kp_line_t *ln, long *lineno, char *errbuf, size_t errlen)
{
    int got = s->gz ? replay_gz_next(s->gz, ln, errbuf, errlen)
                    : kp_lines_next(&s->lr, REPLAY_WAIT_MS, ln, errbuf, errlen);
    *lineno = (long)(s->gz ? replay_gz_lineno(s->gz) : s->lr.lineno);
    return got;
}

static void replay_src_close(replay_src_t *s)
{
    if (s->gz)
        replay_gz_close(s->gz);
    else
        kp_lines_close(&s->lr);
}

/* The symbol of a file's CSV rows: the one -s SYMBOL, else what a data.binance.vision name
 * says (its interval must then be -i's), else none (NDJSON names its own). 0 / -2. */
static int replay_symbol(const char *path, const char **sym, char *buf, size_t buflen,
                         char *errbuf, size_t errlen)
{
    char iv[16];
    bool named = replay_name_parse(path, buf, buflen, iv, sizeof iv);
    *sym = prod_cfg.nsymbols == 1 ? prod_cfg.symbols[0] : named ? buf : NULL;
    if (named && strcmp(iv, prod_cfg.interval) != 0) {
        snprintf(errbuf, errlen, "%s: the file name says interval %s, -i is %s (give -i %s)", path, iv,
                 prod_cfg.interval, iv);
        return -2;
    }
    return 0;
}

/* One file (or stdin) from its first line to its end. */
static int replay_file(const char *path, const char *sym, long *published, char *errbuf, size_t errlen)
{
    replay_src_t src;
    if (replay_src_open(&src, path, errbuf, errlen) < 0)
        return -1;
    replay_t r = { .path = path, .sym = sym, .t0_data = PROD_NONE };
    int rc = 0;
    while (rc == 0 && !sig_stop && !prod_stopping) {
        kp_line_t ln;
        int got = replay_src_next(&src, &ln, &r.lineno, errbuf, errlen);
        if (got == 0) {
            pub_poll();
            continue;
        }
        if (got != 1) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        rc = replay_line(&r, &ln, errbuf, errlen);
    }
    replay_src_close(&src);
    log_info("replay of %s: %ld lines, %ld klines published", path, r.lineno, r.published);
    *published += r.published;
    return rc > 0 ? 0 : rc;
}

/* -s given with a directory: only the files of those symbols. */
static bool replay_wanted(const char *sym)
{
    if (prod_cfg.nsymbols <= 0)
        return true;
    for (int i = 0; i < prod_cfg.nsymbols; i++)
        if (strcmp(prod_cfg.symbols[i], sym) == 0)
            return true;
    return false;
}

/* Every data.binance.vision file of an archive directory, in path order (symbol, then
 * date); each file's symbol is its name's. */
static int replay_dir(const char *dir, char *errbuf, size_t errlen)
{
    char **files;
    char sym[32], iv[16];
    long published = 0, nfiles = 0;
    int n = replay_dir_list(dir, &files, errbuf, errlen), rc = n < 0 ? -1 : 0;
    for (int i = 0; rc == 0 && i < n && !sig_stop && !prod_stopping; i++) {
        replay_name_parse(files[i], sym, sizeof sym, iv, sizeof iv);
        if (!replay_wanted(sym))
            continue;
        if (strcmp(iv, prod_cfg.interval) != 0) {
            rc = -2;
            snprintf(errbuf, errlen, "%s: the file name says interval %s, -i is %s", files[i], iv,
                     prod_cfg.interval);
            break;
        }
        rc = replay_file(files[i], sym, &published, errbuf, errlen);
        nfiles++;
    }
    replay_list_free(files);
    if (rc == 0 && nfiles == 0)
        log_warn("replay of %s: no SYMBOL-%s-YYYY-MM-DD.csv[.gz] files there", dir, prod_cfg.interval);
    log_info("replay of %s: %ld files, %ld klines published", dir, nfiles, published);
    return rc;
}

int replay_run(const char *path, char *errbuf, size_t errlen)
{
    struct stat st;
    char buf[32];
    const char *sym;
    long published = 0;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return replay_dir(path, errbuf, errlen);
    if (replay_symbol(path, &sym, buf, sizeof buf, errbuf, errlen) < 0)
        return -2;
    return replay_file(path, sym, &published, errbuf, errlen);
}
