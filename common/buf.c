/* buf.c — see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kp_buf_init(kp_buf_t *b, size_t max)
{
    *b = (kp_buf_t){ .max = max };
}

static int buf_grow(kp_buf_t *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int kp_buf_reserve(kp_buf_t *b, size_t extra)
{
    if (extra > b->max - b->len)
        return -1;
    size_t need = b->len + extra + 1;
    if (need > b->cap && buf_grow(b, need) < 0)
        return -1;
    return 0;
}

int kp_buf_append(kp_buf_t *b, const void *p, size_t n)
{
    if (kp_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kp_buf_puts(kp_buf_t *b, const char *s)
{
    return kp_buf_append(b, s, strlen(s));
}

int kp_buf_putc(kp_buf_t *b, char c)
{
    return kp_buf_append(b, &c, 1);
}

int kp_buf_printf(kp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || kp_buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

const char *kp_i64_decimal(long long v, char tmp[KP_I64_DIGITS])
{
    char *q = tmp + KP_I64_DIGITS;
    /* through unsigned so the most negative value negates without overflow */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    return q;
}

int kp_buf_put_i64(kp_buf_t *b, long long v)
{
    char tmp[KP_I64_DIGITS];
    const char *q = kp_i64_decimal(v, tmp);
    return kp_buf_append(b, q, (size_t)(tmp + KP_I64_DIGITS - q));
}

void kp_buf_consume(kp_buf_t *b, size_t n)
{
    if (n >= b->len) {
        kp_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void kp_buf_reset(kp_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void kp_buf_shrink(kp_buf_t *b, size_t keep)
{
    if (b->cap <= keep + 1 || b->len >= keep)
        return;
    char *p = realloc(b->data, keep + 1);
    if (p) {
        b->data = p;
        b->cap = keep + 1;
    }
}

const char *kp_buf_str(const kp_buf_t *b)
{
    return b->data ? b->data : "";
}

char *kp_buf_take(kp_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void kp_buf_free(kp_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
