/* attempts.h — Binance's limit on WebSocket connection attempts (300 per 5 minutes per
 * IP) as an exact sliding window: the times of the last ATT_MAX attempts are kept, and
 * one more is allowed only once the oldest of them is ATT_WINDOW_MS old. (A token
 * bucket of 300 refilling at 1/s lets ~600 through in the first 5 minutes.) Pure: the
 * caller passes the clock, so tests can drive it. */
#ifndef PROD_ATTEMPTS_H
#define PROD_ATTEMPTS_H

#include <stdbool.h>
#include <stdint.h>

#define ATT_MAX       300
#define ATT_WINDOW_MS 300000

typedef struct att_window {
    int64_t t[ATT_MAX];   /* monotonic ms of past attempts, a ring */
    int n, head;          /* how many recorded; index of the oldest */
} att_window_t;

void att_init(att_window_t *w);
/* Records an attempt at now_ms and returns true if allowed; false (nothing recorded)
 * if ATT_MAX attempts already happened within the last ATT_WINDOW_MS. now_ms must not
 * go backwards (a monotonic clock). */
bool att_take(att_window_t *w, int64_t now_ms);

#endif
