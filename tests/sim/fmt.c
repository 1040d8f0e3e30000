/* fmt.c — hand-rolled formatting of kline events, REST rows and canonical records.
 * snprintf with 20 conversions per message would cap the benchmark load source,
 * so numbers are written digit by digit into caller buffers (SIM_MSG_MAX bytes). */
#include "sim.h"

#include <string.h>

char *sim_fmt_i64(char *out, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u;
    if (v < 0) {
        *out++ = '-';
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *out++ = tmp[--n];
    return out;
}

/* v in units of 1e-8 (never negative for klines) → "123.45000000" */
int sim_fmt_dec(char *out, int64_t v)
{
    char *p = out;
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    p = sim_fmt_i64(p, v / SIM_SCALE);
    *p++ = '.';
    int64_t frac = v % SIM_SCALE;
    for (int d = 7; d >= 0; d--) {
        p[d] = (char)('0' + frac % 10);
        frac /= 10;
    }
    p += 8;
    return (int)(p - out);
}

#define PUT(lit) do { memcpy(p, lit, sizeof(lit) - 1); p += sizeof(lit) - 1; } while (0)
#define PUTS(str) do { size_t l_ = strlen(str); memcpy(p, str, l_); p += l_; } while (0)
#define DEC(v) do { *p++ = '"'; p += sim_fmt_dec(p, v); *p++ = '"'; } while (0)

int sim_fmt_event(char *out, size_t i, int64_t s, const sim_k_t *k, bool closed,
                  int64_t E, bool combined)
{
    const sim_symbol_t *y = &g_sim.syms[i];
    int64_t t = sim_open_time(s);
    char *p = out;
    if (combined) {
        PUT("{\"stream\":\"");
        PUTS(y->lname);
        PUT("@kline_1s\",\"data\":");
    }
    PUT("{\"e\":\"kline\",\"E\":");
    p = sim_fmt_i64(p, E);
    PUT(",\"s\":\"");
    PUTS(y->name);
    PUT("\",\"k\":{\"t\":");
    p = sim_fmt_i64(p, t);
    PUT(",\"T\":");
    p = sim_fmt_i64(p, t + 999);
    PUT(",\"s\":\"");
    PUTS(y->name);
    PUT("\",\"i\":\"1s\",\"f\":");
    p = sim_fmt_i64(p, k->f);
    PUT(",\"L\":");
    p = sim_fmt_i64(p, k->L);
    PUT(",\"o\":"); DEC(k->o);
    PUT(",\"c\":"); DEC(k->c);
    PUT(",\"h\":"); DEC(k->h);
    PUT(",\"l\":"); DEC(k->l);
    PUT(",\"v\":"); DEC(k->v);
    PUT(",\"n\":");
    p = sim_fmt_i64(p, k->n);
    if (closed)
        PUT(",\"x\":true");
    else
        PUT(",\"x\":false");
    PUT(",\"q\":"); DEC(k->q);
    PUT(",\"V\":"); DEC(k->V);
    PUT(",\"Q\":"); DEC(k->Q);
    PUT(",\"B\":\"0\"}}");
    if (combined)
        *p++ = '}';
    return (int)(p - out);
}

int sim_fmt_rest_row(char *out, int64_t s, const sim_k_t *k)
{
    int64_t t = sim_open_time(s);
    char *p = out;
    *p++ = '[';
    p = sim_fmt_i64(p, t);
    *p++ = ','; DEC(k->o);
    *p++ = ','; DEC(k->h);
    *p++ = ','; DEC(k->l);
    *p++ = ','; DEC(k->c);
    *p++ = ','; DEC(k->v);
    *p++ = ',';
    p = sim_fmt_i64(p, t + 999);
    *p++ = ','; DEC(k->q);
    *p++ = ',';
    p = sim_fmt_i64(p, k->n);
    *p++ = ','; DEC(k->V);
    *p++ = ','; DEC(k->Q);
    PUT(",\"0\"]");
    return (int)(p - out);
}

/* ,"open":... to ,"last_trade_id":..., the fields a record and a bar share; returns the end. */
static char *fmt_fields(char *p, const sim_k_t *k)
{
    PUT(",\"open\":"); DEC(k->o);
    PUT(",\"high\":"); DEC(k->h);
    PUT(",\"low\":"); DEC(k->l);
    PUT(",\"close\":"); DEC(k->c);
    PUT(",\"volume\":"); DEC(k->v);
    PUT(",\"quote_volume\":"); DEC(k->q);
    PUT(",\"trades\":");
    p = sim_fmt_i64(p, k->n);
    PUT(",\"taker_buy_volume\":"); DEC(k->V);
    PUT(",\"taker_buy_quote_volume\":"); DEC(k->Q);
    PUT(",\"first_trade_id\":");
    p = sim_fmt_i64(p, k->f);
    PUT(",\"last_trade_id\":");
    p = sim_fmt_i64(p, k->L);
    return p;
}

/* Canonical record (docs/ARCHITECTURE.md §2), same field order as kline_format.
 * event_time is the nominal send time (close_time + 1): the truth does not know
 * when (or whether) a kline was actually sent. */
int sim_fmt_canonical(char *out, size_t i, int64_t s, const sim_k_t *k)
{
    const sim_symbol_t *y = &g_sim.syms[i];
    int64_t t = sim_open_time(s);
    char *p = out;
    PUT("{\"symbol\":\"");
    PUTS(y->name);
    PUT("\",\"interval\":\"1s\",\"open_time\":");
    p = sim_fmt_i64(p, t);
    PUT(",\"close_time\":");
    p = sim_fmt_i64(p, t + 999);
    p = fmt_fields(p, k);
    PUT(",\"closed\":true,\"event_time\":");
    p = sim_fmt_i64(p, t + 1000);
    PUT(",\"source\":\"ws\"}");
    return (int)(p - out);
}

/* A 1m bar in the canonical record's field order, with the bar's row_count; "error" set
 * (and the decimals meaningless) when a sum overflowed. */
int sim_fmt_bar(char *out, size_t i, const sim_bar_t *b)
{
    const sim_k_t *k = &b->k;
    char *p = out;
    PUT("{\"symbol\":\"");
    PUTS(g_sim.syms[i].name);
    PUT("\",\"interval\":\"1m\",\"open_time\":");
    p = sim_fmt_i64(p, b->open_ms);
    PUT(",\"close_time\":");
    p = sim_fmt_i64(p, b->open_ms + 59999);
    p = fmt_fields(p, k);
    PUT(",\"row_count\":");
    p = sim_fmt_i64(p, b->rows);
    if (b->overflow)
        PUT(",\"error\":\"a sum does not fit in 64 bits\"");
    PUT("}");
    return (int)(p - out);
}

/* "123.4500" → 12345000000 (1e-8 units). More than 8 decimals or overflow → -1. */
int sim_parse_dec(const char *s, size_t len, int64_t *out)
{
    size_t k = 0;
    int64_t ip = 0, fp = 0;
    int fd = 0;
    if (len == 0)
        return -1;
    for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
        if (ip > (INT64_MAX / SIM_SCALE) / 10)
            return -1;
        ip = ip * 10 + (s[k] - '0');
    }
    if (k == 0)
        return -1;
    if (k < len) {
        if (s[k] != '.' || k + 1 == len)
            return -1;
        for (k++; k < len; k++) {
            if (s[k] < '0' || s[k] > '9')
                return -1;
            if (fd == 8) {
                if (s[k] != '0') /* only trailing zeros beyond 8 places are exact */
                    return -1;
                continue;
            }
            fp = fp * 10 + (s[k] - '0');
            fd++;
        }
    }
    while (fd++ < 8)
        fp *= 10;
    *out = ip * SIM_SCALE + fp;
    return 0;
}
