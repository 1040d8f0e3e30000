/* msg.c — one message from the exchange: a kline, a subscription reply, a
 * serverShutdown notice, or something to dead-letter. */
#include "prod.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static bool msg_is_shutdown(json_t *root)
{
    const char *stream = json_string_value(json_object_get(root, "stream"));
    if (stream && strcmp(stream, "!serverShutdown") == 0)
        return true;
    json_t *ev = json_object_get(root, "data");
    const char *e = json_string_value(json_object_get(ev ? ev : root, "e"));
    return e && strcmp(e, "serverShutdown") == 0;
}

/* A parsed kline event: ours? closed? then into the per-symbol sequencing. */
static enum msg_kind msg_kline(kline_t *k, const char *buf, size_t len, const char *origin,
                               int64_t recv_ms, int64_t recv_us)
{
    prod_sym_t *s = sym_find(k->symbol);
    if (!s) {
        pub_reject(buf, len, origin, "symbol not subscribed");
        return MSG_REJECTED;
    }
    if (strcmp(k->interval, prod_cfg.interval) != 0) {
        pub_reject(buf, len, origin, "interval not subscribed");
        return MSG_REJECTED;
    }
    if (!k->closed && !prod_cfg.provisional) {
        atomic_fetch_add_explicit(&prod_stats.provisional_skipped, 1, memory_order_relaxed);
        return MSG_SKIPPED;
    }
    k->source = KLINE_SRC_WS;
    seq_live(s, k, recv_ms, recv_us);
    return MSG_KLINE;
}

enum msg_kind msg_handle(const char *buf, size_t len, const char *origin,
                         int64_t recv_ms, int64_t recv_us)
{
    char why[192];
    json_error_t jerr;
    kline_t k;
    atomic_fetch_add_explicit(&prod_stats.received, 1, memory_order_relaxed);
    if (kline_parse_fast(buf, len, &k) == 0)
        return msg_kline(&k, buf, len, origin, recv_ms, recv_us);
    json_t *root = kline_json_load(buf, len, &jerr);
    if (!root) {
        snprintf(why, sizeof why, "malformed JSON: %s", jerr.text);
        pub_reject(buf, len, origin, why);
        return MSG_REJECTED;
    }
    enum msg_kind kind;
    if (json_is_object(root) && json_object_get(root, "id") && json_object_get(root, "result")) {
        /* {"result":null,"id":N}: the answer to a SUBSCRIBE/LIST request */
        atomic_fetch_add_explicit(&prod_stats.replies, 1, memory_order_relaxed);
        kind = MSG_REPLY;
    } else if (json_is_object(root) && json_object_get(root, "id") && json_object_get(root, "error")) {
        /* {"error":{"code":2,"msg":"..."},"id":N}: a request of ours was refused. The
         * streams it named are missing; their gaps show and get backfilled, but the
         * operator must know. */
        char ex[200];
        log_error("%s: the exchange refused a request: %s", origin, log_excerpt(buf, len, 180, ex, sizeof ex));
        atomic_fetch_add_explicit(&prod_stats.replies, 1, memory_order_relaxed);
        kind = MSG_REPLY;
    } else if (json_is_object(root) && msg_is_shutdown(root)) {
        kind = MSG_SHUTDOWN;
    } else if (!json_is_object(root)) {
        pub_reject(buf, len, origin, "not a JSON object");
        kind = MSG_REJECTED;
    } else if (kline_from_json(root, NULL, NULL, &k, why, sizeof why) < 0) {
        pub_reject(buf, len, origin, why);
        kind = MSG_REJECTED;
    } else {
        kind = msg_kline(&k, buf, len, origin, recv_ms, recv_us);
    }
    json_decref(root);
    return kind;
}
