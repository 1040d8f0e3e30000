/* buf.h — a growable byte buffer with a hard bound in bytes (every buffer is bounded). */
#ifndef KP_BUF_H
#define KP_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kp_buf {
    char *data;  /* owned; always NUL-terminated after len when data != NULL */
    size_t len;
    size_t cap;  /* bytes allocated, including the NUL's byte */
    size_t max;  /* len never exceeds this: appends past it fail and change nothing */
} kp_buf_t;

/* An empty buffer that may grow to max bytes; allocates nothing yet. */
void kp_buf_init(kp_buf_t *b, size_t max);
/* Room for extra more bytes: 0, or -1 when that would pass max or memory is short. */
int kp_buf_reserve(kp_buf_t *b, size_t extra);
int kp_buf_append(kp_buf_t *b, const void *p, size_t n);
int kp_buf_puts(kp_buf_t *b, const char *s);
int kp_buf_putc(kp_buf_t *b, char c);
int kp_buf_printf(kp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A decimal integer, without printf (hot paths: one call per kline per field). */
int kp_buf_put_i64(kp_buf_t *b, long long v);
/* Room for any long long in decimal, its sign included. */
#define KP_I64_DIGITS 24
/* v in decimal, written to the end of tmp (it ends at tmp + KP_I64_DIGITS, no NUL);
 * returns where it starts. kp_buf_put_i64 and kline_format's integers. */
const char *kp_i64_decimal(long long v, char tmp[KP_I64_DIGITS]);
/* Drops the first n bytes (a consumed prefix of a queue). */
void kp_buf_consume(kp_buf_t *b, size_t n);
/* len = 0, memory kept for the next use. */
void kp_buf_reset(kp_buf_t *b);
/* Gives back memory above keep bytes (after a burst), keeping the contents. */
void kp_buf_shrink(kp_buf_t *b, size_t keep);
/* The contents as a C string ("" for a buffer that never held anything). */
const char *kp_buf_str(const kp_buf_t *b);
/* Hands the allocation to the caller (who frees it); the buffer is empty again. */
char *kp_buf_take(kp_buf_t *b, size_t *len);
void kp_buf_free(kp_buf_t *b);

#endif
