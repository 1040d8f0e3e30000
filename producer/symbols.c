/* symbols.c — the symbol table (open addressing, FNV-1a) and exchangeInfo. */
#include "prod.h"
#include "rest.h"
#include "restparse.h"
#include "cfg.h"
#include "hash.h"
#include "log.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

prod_sym_t *prod_syms;
int prod_nsyms;

static int32_t *sym_slots;   /* index into prod_syms, -1 empty */
static uint32_t sym_mask;

prod_sym_t *sym_find(const char *name)
{
    if (!sym_slots)
        return NULL;
    for (uint32_t i = (uint32_t)kp_fnv1a(name) & sym_mask;; i = (i + 1) & sym_mask) {
        int32_t ix = sym_slots[i];
        if (ix < 0)
            return NULL;
        if (strcmp(prod_syms[ix].name, name) == 0)
            return &prod_syms[ix];
    }
}

/* --shard K/N: a symbol belongs to shard FNV-1a(name) mod N + 1, the same on every
 * machine and release, so N producers with K = 1..N split any list without talking. */
static bool sym_in_shard(const char *upper_name)
{
    return prod_cfg.shard.n <= 1 || (int)(kp_fnv1a(upper_name) % (uint64_t)prod_cfg.shard.n) == prod_cfg.shard.k - 1;
}

int sym_table_init(char **names, int n, char *errbuf, size_t errlen)
{
    if (n <= 0) {
        snprintf(errbuf, errlen, "no symbols");
        return -1;
    }
    uint32_t size = 16;
    while (size < (uint32_t)n * 2)
        size *= 2;
    prod_syms = calloc((size_t)n, sizeof *prod_syms);
    sym_slots = malloc(sizeof *sym_slots * size);
    if (!prod_syms || !sym_slots) {
        snprintf(errbuf, errlen, "out of memory for %d symbols", n);
        return -1;
    }
    memset(sym_slots, 0xff, sizeof *sym_slots * size);
    sym_mask = size - 1;
    prod_nsyms = 0;
    for (int i = 0; i < n; i++) {
        char up[KLINE_SYMBOL_MAX];
        size_t l = strlen(names[i]);
        if (l >= sizeof up) {
            snprintf(errbuf, errlen, "symbol %s: too long", names[i]);
            return -1;
        }
        for (size_t j = 0; j <= l; j++)
            up[j] = (char)toupper((unsigned char)names[i][j]);
        if (!kline_symbol_valid(up)) {
            snprintf(errbuf, errlen, "symbol %s: not a Binance symbol ([A-Z0-9], at most 20)", names[i]);
            return -1;
        }
        if (sym_find(up) || !sym_in_shard(up))
            continue; /* listed twice: once is enough; or another shard's */
        prod_sym_t *s = &prod_syms[prod_nsyms];
        memcpy(s->name, up, l + 1);
        s->last_pub = PROD_NONE;
        s->pending_max = PROD_NONE;
        s->stale_mark = PROD_NONE;
        uint32_t h = (uint32_t)kp_fnv1a(up) & sym_mask;
        while (sym_slots[h] >= 0)
            h = (h + 1) & sym_mask;
        sym_slots[h] = prod_nsyms++;
    }
    if (prod_cfg.shard.n > 1)
        log_info("--shard %d/%d: %d of %d symbols", prod_cfg.shard.k, prod_cfg.shard.n, prod_nsyms, n);
    if (prod_nsyms == 0)
        return snprintf(errbuf, errlen, "--shard %d/%d: none of the %d symbols is in this shard",
                        prod_cfg.shard.k, prod_cfg.shard.n, n), -1;
    return 0;
}

void sym_table_free(void)
{
    for (int i = 0; i < prod_nsyms; i++)
        free(prod_syms[i].held);
    free(prod_syms);
    free(sym_slots);
    prod_syms = NULL;
    sym_slots = NULL;
    prod_nsyms = 0;
}

int sym_fetch_all(const char *rest_url, const char *quote_asset, char ***out,
                  char *errbuf, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/api/v3/exchangeInfo", rest_url);
    CURL *h = curl_easy_init();
    rest_resp_t r; /* owns the answer; freed below */
    rest_resp_init(&r);
    int rc = -1;
    if (!h) {
        snprintf(errbuf, errlen, "curl_easy_init failed");
        return -1;
    }
    for (int attempt = 1; attempt <= 5; attempt++) {
        if (rest_get(h, url, &r, 30000, errbuf, errlen) == 0 && r.status == 200) {
            rc = rest_parse_exchange_info(kp_buf_str(&r.body), r.body.len, quote_asset, out, errbuf, errlen);
            break;
        }
        if (r.status)
            snprintf(errbuf, errlen, "GET %s: HTTP %ld", url, r.status);
        log_warn("exchangeInfo attempt %d: %s", attempt, errbuf);
        if (prod_stopping)
            break;
        struct timespec ts = { .tv_sec = r.retry_after_s > 0 ? r.retry_after_s : attempt, .tv_nsec = 0 };
        nanosleep(&ts, NULL);
    }
    rest_resp_free(&r);
    curl_easy_cleanup(h);
    return rc;
}
