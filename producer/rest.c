/* rest.c — HTTP GET for REST klines and exchangeInfo. */
#include "rest.h"
#include "restparse.h"
#include "cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t rest_on_body(char *p, size_t sz, size_t n, void *ud)
{
    rest_resp_t *r = ud;
    if (kp_buf_append(&r->body, p, sz * n) < 0) {
        r->too_big = r->body.len + sz * n > r->body.max; /* else out of memory */
        return 0; /* curl reports a write error */
    }
    return sz * n;
}

static size_t rest_on_header(char *p, size_t sz, size_t n, void *ud)
{
    rest_resp_t *r = ud;
    size_t len = sz * n;
    rest_parse_header(p, len, &r->retry_after_s, &r->used_weight);
    return len;
}

int rest_get(CURL *h, const char *url, rest_resp_t *r, long timeout_ms, char *errbuf, size_t errlen)
{
    char cerr[CURL_ERROR_SIZE] = "";
    kp_buf_reset(&r->body);
    kp_buf_shrink(&r->body, 1 << 20); /* after exchangeInfo, keep a page's worth */
    r->too_big = false;
    r->status = 0;
    r->retry_after_s = -1;
    r->used_weight = -1;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rest_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rest_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);        /* worker threads: no SIGALRM */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip where offered */
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kline-producer/" KLINEPIPE_VERSION);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK && r->too_big) {
        snprintf(errbuf, errlen, "GET %s: answer larger than %zu bytes", url, r->body.max);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(errbuf, errlen, "GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

void rest_resp_init(rest_resp_t *r)
{
    *r = (rest_resp_t){ .retry_after_s = -1, .used_weight = -1 };
    kp_buf_init(&r->body, REST_BODY_MAX);
}

void rest_resp_free(rest_resp_t *r)
{
    kp_buf_free(&r->body);
}
