/* fuzz_rest — producer/restparse.c: what the producer makes of REST answers. The first
 * byte picks the parser (klines body, exchangeInfo body, a header line); the rest is
 * the input. Checks beyond "no crash": counts and header values stay in range, every
 * accepted kline belongs to the symbol asked for and is marked as from REST. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "restparse.h"

#define FZ_MAX 64

static void fz_reject(void *ud, const char *raw, size_t len, const char *why)
{
    (void)raw;
    (void)len;
    (void)why;
    (*(int *)ud)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char err[256];
    switch (data[0] % 3) {
    case 0: {
        static kline_t ks[FZ_MAX];
        int nk = -1, rejected = 0;
        int64_t last = INT64_MIN;
        int rows = rest_parse_klines(p, n, "BTCUSDT", "1s", ks, FZ_MAX, &nk, &last, fz_reject, &rejected,
                                     err, sizeof err);
        if (rows < 0 ? nk != 0 : (nk < 0 || nk > FZ_MAX || nk > rows || rejected > rows))
            abort();
        for (int i = 0; i < nk; i++)
            if (strcmp(ks[i].symbol, "BTCUSDT") != 0 || ks[i].source != KLINE_SRC_REST)
                abort();
        if (nk > 0 && last != ks[nk - 1].open_time)
            abort();
        break;
    }
    case 1: {
        char **list = NULL;
        int c = rest_parse_exchange_info(p, n, (data[0] & 4) ? "USDT" : NULL, &list, err, sizeof err);
        if (c >= 0) {
            for (int i = 0; i < c; i++) {
                if (!list[i] || !*list[i])
                    abort();
                free(list[i]);
            }
            if (list[c])
                abort();
            free(list);
        }
        break;
    }
    default: {
        long ra = -1, w = -1;
        int set = rest_parse_header(p, n, &ra, &w);
        if (ra < -1 || ra > REST_RETRY_AFTER_MAX || w < -1 || (set && ra == -1 && w == -1) ||
            (!set && (ra != -1 || w != -1)))
            abort();
        break;
    }
    }
    return 0;
}
