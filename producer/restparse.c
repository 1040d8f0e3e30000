/* restparse.c — Binance REST answers into klines, symbol lists and rate-limit numbers.
 * Everything here is fed bytes from the network: nothing is trusted, nothing is
 * assumed NUL-terminated. */
#include "restparse.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Value of header `name` in the line p[0..n) as a non-negative decimal; -1 if the line is
 * another header, -2 if it is this one but the value is not a number. */
static long rest_header_value(const char *p, size_t n, const char *name)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return -1;
    size_t i = nl + 1;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i == n || !isdigit((unsigned char)p[i]))
        return -2;
    long v = 0;
    for (; i < n && isdigit((unsigned char)p[i]); i++) {
        if (v > (1L << 40)) /* far past any meaningful value: saturate, never overflow */
            continue;
        v = v * 10 + (p[i] - '0');
    }
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i == n ? v : -2; /* "5, 6" or an HTTP date: not a number of seconds */
}

int rest_parse_header(const char *p, size_t n, long *retry_after_s, long *used_weight)
{
    long v;
    if ((v = rest_header_value(p, n, "Retry-After")) >= 0) {
        *retry_after_s = v > REST_RETRY_AFTER_MAX ? REST_RETRY_AFTER_MAX : v;
        return 1;
    }
    if ((v = rest_header_value(p, n, "X-MBX-USED-WEIGHT-1M")) >= 0) {
        *used_weight = v;
        return 1;
    }
    return 0;
}

int rest_parse_klines(const char *body, size_t len, const char *symbol, const char *interval,
                      kline_t *ks, int max, int *nk, int64_t *last_open,
                      rest_reject_fn reject, void *ud, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    *nk = 0;
    if (!json_is_array(root)) {
        snprintf(errbuf, errlen, "not a JSON array: %s", root ? "other JSON" : jerr.text);
        json_decref(root);
        return -1;
    }
    size_t i;
    json_t *row;
    char why[160];
    json_array_foreach(root, i, row) {
        if (*nk >= max)
            break;
        if (kline_from_json(row, symbol, interval, &ks[*nk], why, sizeof why) < 0) {
            if (reject) {
                char *raw = json_dumps(row, JSON_COMPACT | JSON_ENCODE_ANY); /* freed here */
                reject(ud, raw ? raw : "", raw ? strlen(raw) : 0, why);
                free(raw);
            }
            continue;
        }
        ks[*nk].source = KLINE_SRC_REST;
        *last_open = ks[*nk].open_time;
        (*nk)++;
    }
    int rows = (int)json_array_size(root);
    json_decref(root);
    return rows;
}

static void rest_list_free(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

int rest_parse_exchange_info(const char *body, size_t len, const char *quote, char ***out,
                             char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        snprintf(errbuf, errlen, "exchangeInfo: bad JSON: %s", jerr.text);
        return -1;
    }
    json_t *arr = json_object_get(root, "symbols");
    if (!json_is_array(arr)) {
        json_decref(root);
        snprintf(errbuf, errlen, "exchangeInfo: no \"symbols\" array");
        return -1;
    }
    size_t cap = json_array_size(arr) + 1, n = 0;
    char **list = calloc(cap, sizeof *list); /* caller frees with cfg_list_free */
    if (!list) {
        json_decref(root);
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *name = json_string_value(json_object_get(e, "symbol"));
        const char *status = json_string_value(json_object_get(e, "status"));
        const char *qa = json_string_value(json_object_get(e, "quoteAsset"));
        if (!name || !*name || !status || strcmp(status, "TRADING") != 0)
            continue;
        if (quote && *quote && (!qa || strcasecmp(qa, quote) != 0))
            continue;
        if (!(list[n] = strdup(name))) {
            rest_list_free(list);
            json_decref(root);
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
        n++;
    }
    list[n] = NULL;
    json_decref(root);
    *out = list;
    return (int)n;
}
