/* replay.c — history as a source: a data.binance.vision CSV (needs one -s SYMBOL and
 * -i) or canonical NDJSON, published with source "replay", paced by --replay-speed
 * (1 = real time by open_time, 0 = as fast as possible). */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "lines.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    const char *sym;          /* the one -s SYMBOL (CSV rows name none), or NULL */
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
        snprintf(errbuf, errlen, "%s: CSV input needs exactly one -s SYMBOL", r->path);
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

int replay_run(const char *path, char *errbuf, size_t errlen)
{
    kp_lines_t lr; /* owns the fd (not stdin's) and the line buffer; closed below */
    if (kp_lines_open(&lr, path, KLINE_INPUT_MAX, errbuf, errlen) < 0)
        return -1;
    replay_t r = { .path = path, .sym = prod_cfg.nsymbols == 1 ? prod_cfg.symbols[0] : NULL,
                   .t0_data = PROD_NONE };
    int rc = 0;
    while (rc == 0 && !sig_stop && !prod_stopping) {
        kp_line_t ln;
        int got = kp_lines_next(&lr, REPLAY_WAIT_MS, &ln, errbuf, errlen);
        if (got == 0) {
            pub_poll();
            continue;
        }
        if (got != 1) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        r.lineno = lr.lineno;
        rc = replay_line(&r, &ln, errbuf, errlen);
    }
    kp_lines_close(&lr);
    log_info("replay of %s: %ld lines, %ld klines published", path, r.lineno, r.published);
    return rc > 0 ? 0 : rc;
}
