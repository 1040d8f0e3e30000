/*
 * fuzz_api_query.c — libFuzzer target for the /api/klines query parser
 * (streamer/proto.c: st_proto_parse_klines_query and, through it, the per-argument
 * validation http.c uses).
 *
 * An accepted query must give a request db.c can run without further checks: a
 * [A-Z0-9]{1,20} symbol, an interval with a table in the allow-list, 0 <= from <= to <=
 * ST_PROTO_TIME_MAX, 1 <= limit <= 5000. It is then written back as a canonical query
 * string, which must parse to the same request both raw and as pre-split arguments
 * (the form lws hands over). A refused query must give a printable ASCII reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void fuzz_die(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_api_query: %s\n", what);
    if (text)
        fprintf(stderr, "  %s\n", text);
    abort();
}

static void fuzz_check_reason(const char *err)
{
    size_t n = strlen(err);
    if (n == 0)
        fuzz_die("empty error reason", NULL);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e)
            fuzz_die("error reason is not printable ASCII", NULL);
}

static void fuzz_same(const struct st_db_req *a, const struct st_db_req *b, const char *text)
{
    if (strcmp(a->symbol, b->symbol) || strcmp(a->interval, b->interval) || a->from != b->from ||
        a->to != b->to || a->has_from != b->has_from || a->limit != b->limit)
        fuzz_die("canonical query parses to a different request", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_db_req r;
    char err[200] = "";
    if (st_proto_parse_klines_query((const char *)data, size, &r, err, sizeof err) < 0) {
        fuzz_check_reason(err);
        return 0;
    }
    size_t sl = strnlen(r.symbol, sizeof r.symbol);
    if (sl == 0 || sl > ST_PROTO_SYMBOL_LEN)
        fuzz_die("symbol length out of range", r.symbol);
    for (size_t i = 0; i < sl; i++)
        if (!((r.symbol[i] >= 'A' && r.symbol[i] <= 'Z') || (r.symbol[i] >= '0' && r.symbol[i] <= '9')))
            fuzz_die("accepted a symbol outside [A-Z0-9]", r.symbol);
    if (!st_proto_interval_table(r.interval, NULL))
        fuzz_die("accepted an interval without a table", r.interval);
    if (r.from < 0 || r.from > r.to || r.to > ST_PROTO_TIME_MAX)
        fuzz_die("time range out of bounds", NULL);
    if (!r.has_from && r.from != 0)
        fuzz_die("from set without has_from", NULL);
    if (r.limit < 1 || r.limit > ST_PROTO_LIMIT_MAX)
        fuzz_die("limit out of range", NULL);

    /* canonical form: every parameter, in a fixed order, from only when given */
    char q[256];
    char a[5][64];
    int n = 0;
    snprintf(a[n++], sizeof a[0], "symbol=%s", r.symbol);
    snprintf(a[n++], sizeof a[0], "interval=%s", r.interval);
    if (r.has_from)
        snprintf(a[n++], sizeof a[0], "from=%lld", (long long)r.from);
    snprintf(a[n++], sizeof a[0], "to=%lld", (long long)r.to);
    snprintf(a[n++], sizeof a[0], "limit=%d", r.limit);
    const char *args[5];
    size_t lens[5];
    size_t ql = 0;
    for (int i = 0; i < n; i++) {
        args[i] = a[i];
        lens[i] = strlen(a[i]);
        ql += (size_t)snprintf(q + ql, sizeof q - ql, "%s%s", i ? "&" : "", a[i]);
    }
    struct st_db_req b;
    if (st_proto_parse_klines_query(q, ql, &b, err, sizeof err) < 0)
        fuzz_die("canonical query refused", q);
    fuzz_same(&r, &b, q);
    if (st_proto_parse_klines_args(args, lens, n, &b, err, sizeof err) < 0)
        fuzz_die("canonical arguments refused", q);
    fuzz_same(&r, &b, q);
    return 0;
}
