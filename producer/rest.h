/* rest.h — one HTTP GET with libcurl, keeping what Binance's rate limiting needs. */
#ifndef PROD_REST_H
#define PROD_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>

#include "buf.h"

/* The largest answer kept: exchangeInfo of every symbol is some MB, a klines page
 * (1000 rows) about 150 KB; anything past this is an error, not a memory spike. */
#define REST_BODY_MAX ((size_t)64 << 20)

typedef struct rest_resp {
    kp_buf_t body;           /* NUL-terminated; owned by the rest_resp, reused across calls */
    bool     too_big;        /* the answer passed REST_BODY_MAX (the GET failed) */
    long     status;
    long     retry_after_s;  /* Retry-After header, -1 if absent */
    long     used_weight;    /* X-MBX-USED-WEIGHT-1M, -1 if absent */
} rest_resp_t;

/* An empty answer bounded by REST_BODY_MAX; allocates nothing yet. */
void rest_resp_init(rest_resp_t *r);
/* GET url into r (body replaced). 0 when an HTTP answer arrived (any status), -1 on a
 * transport error (errbuf says which). h is a reusable easy handle. */
int  rest_get(CURL *h, const char *url, rest_resp_t *r, long timeout_ms, char *errbuf, size_t errlen);
void rest_resp_free(rest_resp_t *r);

#endif
