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
    size_t add = sz * n;
    if (r->len + add + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + add + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return 0; /* curl reports a write error */
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
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
    r->len = 0;
    if (r->body)
        r->body[0] = '\0';
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
    if (rc != CURLE_OK) {
        snprintf(errbuf, errlen, "GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) { /* empty answer: keep body a valid string */
        r->body = calloc(1, 1);
        r->cap = r->body ? 1 : 0;
    }
    return 0;
}

void rest_resp_free(rest_resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}
