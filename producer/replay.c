/* replay.c — history as a source: a data.binance.vision CSV (needs one -s SYMBOL and
 * -i) or canonical NDJSON, published with source "replay", paced by --replay-speed
 * (1 = real time by open_time, 0 = as fast as possible). */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <ctype.h>
#include <errno.h>
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

int replay_run(const char *path, char *errbuf, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "re");
    if (!f) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    const char *sym = prod_cfg.nsymbols == 1 ? prod_cfg.symbols[0] : NULL;
    char *line = NULL; /* getline's buffer, freed below */
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, published = 0;
    int64_t t0_data = PROD_NONE, t0_us = 0;
    int rc = 0;
    char why[192], origin[32];
    snprintf(origin, sizeof origin, "replay");
    while (!sig_stop && !prod_stopping && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        bool json = line[0] == '{' || line[0] == '[';
        if (!json && !isdigit((unsigned char)line[0]) && lineno == 1)
            continue; /* a CSV header row */
        if (!json && !sym) {
            snprintf(errbuf, errlen, "%s: CSV input needs exactly one -s SYMBOL", path);
            rc = -2;
            break;
        }
        kline_t k;
        if (kline_parse(line, (size_t)n, sym, prod_cfg.interval, &k, why, sizeof why) < 0) {
            pub_reject(line, (size_t)n, origin, why);
            continue;
        }
        k.source = KLINE_SRC_REPLAY;
        if (replay_pace(k.open_time, &t0_data, &t0_us) < 0)
            break;
        if (pub_kline(&k, cfg_now_ms(), cfg_mono_us()) < 0) {
            snprintf(errbuf, errlen, "publishing failed at line %ld", lineno);
            rc = -1;
            break;
        }
        if (++published % 1024 == 0)
            pub_poll();
    }
    if (rc == 0 && ferror(f)) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    if (!is_stdin)
        fclose(f);
    log_info("replay of %s: %ld lines, %ld klines published", path, lineno, published);
    return rc;
}
