/*
 * parse_bench.c — kp-parse-bench: the codec's parse throughput on the two hot inputs,
 * without Kafka or PostgreSQL (bench_producer.sh and bench_inserter.sh measure whole
 * programs; this isolates the parser, so a change to it shows above the noise).
 *
 *   producer  a Binance WS kline event, as msg.c decodes it (kline_parse_fast, else
 *             kline_json_load + kline_from_json)
 *   inserter  the canonical record kline_format writes, as flush.c decodes it (kline_parse)
 *
 * Inputs: the real samples in tests/data/binance/ws_kline_samples.jsonl and their
 * canonical records. Time is thread CPU time, so a loaded machine slows the wall clock
 * but not much the figure. Usage: kp-parse-bench [SAMPLES] [SECONDS per figure].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kline.h"

#define PB_MAX 64

static char *pb_ws[PB_MAX], pb_canon[PB_MAX][KLINE_JSON_MAX];
static size_t pb_ws_len[PB_MAX], pb_canon_len[PB_MAX];
static int pb_n;

static double pb_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pb_producer_one(const char *buf, size_t len, kline_t *k)
{
    char why[192];
    json_error_t jerr;
    if (kline_parse_fast(buf, len, k) == 0)
        return 0;
    json_t *root = kline_json_load(buf, len, &jerr);
    if (!root)
        return -1;
    int rc = kline_from_json(root, NULL, NULL, k, why, sizeof why);
    json_decref(root);
    return rc;
}

static int pb_inserter_one(const char *buf, size_t len, kline_t *k)
{
    char why[256];
    return kline_parse(buf, len, NULL, "1s", k, why, sizeof why);
}

/* Messages per CPU second of one parse function over the inputs, for about secs. */
static double pb_rate(int (*fn)(const char *, size_t, kline_t *), char *const *bufs,
                      const size_t *lens, double secs)
{
    long long n = 0;
    kline_t k;
    double t0 = pb_cpu(), t;
    do {
        for (int r = 0; r < 2000; r++)
            for (int i = 0; i < pb_n; i++, n++)
                if (fn(bufs[i], lens[i], &k) != 0) {
                    fprintf(stderr, "kp-parse-bench: input %d refused\n", i);
                    exit(1);
                }
        t = pb_cpu() - t0;
    } while (t < secs);
    return (double)n / t;
}

static int pb_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (pb_n < PB_MAX && (n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        kline_t k;
        char why[256];
        if (n == 0 || kline_parse(line, (size_t)n, NULL, NULL, &k, why, sizeof why) != 0 ||
            !strstr(line, "\"kline\""))
            continue; /* only kline events are the hot path */
        int m = kline_format(&k, pb_canon[pb_n], KLINE_JSON_MAX);
        if (m < 0)
            continue;
        pb_canon_len[pb_n] = (size_t)m;
        pb_ws[pb_n] = strdup(line);
        pb_ws_len[pb_n] = (size_t)n;
        pb_n++;
    }
    free(line);
    fclose(f);
    return pb_n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "tests/data/binance/ws_kline_samples.jsonl";
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    if (pb_load(path) < 0) {
        fprintf(stderr, "kp-parse-bench: no kline events in %s\n", path);
        return 1;
    }
    char *canon[PB_MAX];
    for (int i = 0; i < pb_n; i++)
        canon[i] = pb_canon[i];
    printf("producer (WS kline event): %.0f msgs per CPU second\n",
           pb_rate(pb_producer_one, pb_ws, pb_ws_len, secs));
    printf("inserter (canonical record): %.0f msgs per CPU second\n",
           pb_rate(pb_inserter_one, canon, pb_canon_len, secs));
    return 0;
}
