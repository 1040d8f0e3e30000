/* rest.h — one HTTP GET with libcurl, keeping what Binance's rate limiting needs. */
#ifndef PROD_REST_H
#define PROD_REST_H

#include <stddef.h>
#include <curl/curl.h>

typedef struct rest_resp {
    char  *body;             /* NUL-terminated; owned by the rest_resp, reused across calls */
    size_t len, cap;
    long   status;
    long   retry_after_s;    /* Retry-After header, -1 if absent */
    long   used_weight;      /* X-MBX-USED-WEIGHT-1M, -1 if absent */
} rest_resp_t;

/* GET url into r (body replaced). 0 when an HTTP answer arrived (any status), -1 on a
 * transport error (errbuf says which). h is a reusable easy handle. */
int  rest_get(CURL *h, const char *url, rest_resp_t *r, long timeout_ms, char *errbuf, size_t errlen);
void rest_resp_free(rest_resp_t *r);

#endif
