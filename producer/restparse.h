/* restparse.h — parsing of Binance REST answers, pure (no curl, no globals), so the
 * fuzzer (fuzz/fuzz_rest.c) and the unit test can drive it directly. */
#ifndef PROD_RESTPARSE_H
#define PROD_RESTPARSE_H

#include <stddef.h>
#include <stdint.h>
#include "kline.h"

/* Longest Retry-After honoured, seconds: a hostile or broken header must neither stall
 * the backfill for days nor overflow the ms arithmetic. */
#define REST_RETRY_AFTER_MAX 3600L

/* One raw header line ("Name: value\r\n"). Sets *retry_after_s (0..REST_RETRY_AFTER_MAX)
 * or *used_weight (>= 0) when the line is that header with a decimal value; other
 * lines and unparsable values leave both alone. Returns 1 if a field was set, else 0. */
int rest_parse_header(const char *p, size_t n, long *retry_after_s, long *used_weight);

/* A row REST sent that is not a kline: raw JSON text (not NUL-terminated), why. */
typedef void (*rest_reject_fn)(void *ud, const char *raw, size_t len, const char *why);

/* /api/v3/klines body (array of arrays) for symbol/interval into ks[0..max). Rows that
 * are not klines go to reject (may be NULL). *nk = klines stored, *last_open = newest
 * open_time stored (untouched if none). Returns the number of rows in the answer
 * (valid or not), -1 if the body is not a JSON array (errbuf says why). */
int rest_parse_klines(const char *body, size_t len, const char *symbol, const char *interval,
                      kline_t *ks, int max, int *nk, int64_t *last_open,
                      rest_reject_fn reject, void *ud, char *errbuf, size_t errlen);

/* /api/v3/exchangeInfo body → names of TRADING symbols (only those quoted in quote,
 * case-insensitive, when quote is non-empty). *out is a NULL-terminated malloc'd list of
 * malloc'd strings the caller frees with cfg_list_free. Returns the count, -1 (errbuf). */
int rest_parse_exchange_info(const char *body, size_t len, const char *quote, char ***out,
                             char *errbuf, size_t errlen);

#endif
