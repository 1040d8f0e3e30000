/* takeback.h — what a Kafka client that hit a fatal error had not delivered, held until
 * a new client produces it again (publish.c, pub_rebuild), and the pace of rebuilds.
 * Pure apart from its mutex: the caller passes the clock, so tests can drive it. */
#ifndef PROD_TAKEBACK_H
#define PROD_TAKEBACK_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tb_msg {
    int topic;                    /* the caller's topic id (publish.c: enum pub_topic) */
    char *key, *val;              /* one malloc'd block: key then value */
    size_t klen, vlen;
    int64_t ts_ms;                /* the message's CreateTime, kept */
    void *opaque;                 /* its delivery-report opaque, kept */
    rd_kafka_headers_t *hdrs;     /* owned by the entry until produced again, or NULL */
    int64_t open_time;            /* a kline: the order to restore per key; else 0 */
    bool closed;
    size_t seq;                   /* arrival order: the last tie-break */
} tb_msg_t;

/* Takes one undelivered message back (thread-safe: delivery reports run on any thread
 * that polls). The bytes are copied; hdrs (a copy, or NULL) becomes the entry's.
 * is_kline: the value is a canonical kline, whose open_time orders it. 0 / -1 (memory:
 * hdrs is destroyed then). */
int  tb_add(int topic, const void *key, size_t klen, const void *val, size_t vlen, int64_t ts_ms,
            void *opaque, rd_kafka_headers_t *hdrs, bool is_kline);
size_t tb_count(void);
/* Hands every entry to the caller (who frees each with tb_msg_free and the array with
 * free), sorted by topic, key, open_time, closed last, arrival: per symbol the order it
 * was published in. Delivery reports do not come in that order after a fatal error (the
 * purged queue is reported before the in-flight requests, which are older), and the
 * topic must keep a symbol's klines in open_time order (resume.c, the aggregator's
 * watermark). */
tb_msg_t *tb_take_all(size_t *n);
void tb_msg_free(tb_msg_t *m);

/* Rebuilds allowed within TB_PACE_WINDOW_MS; one more waits until the oldest of them is
 * that old, so a client that dies at once again costs a minute, never a spin. */
#define TB_PACE_BURST     5
#define TB_PACE_WINDOW_MS 60000

typedef struct tb_pace {
    int64_t t[TB_PACE_BURST];     /* monotonic ms of the last rebuilds, a ring; 0 = none */
    int next;                     /* the slot the next rebuild overwrites (the oldest) */
} tb_pace_t;

/* ms to wait before a rebuild at now_ms is allowed (0: go ahead). */
int64_t tb_pace_wait_ms(const tb_pace_t *p, int64_t now_ms);
void tb_pace_record(tb_pace_t *p, int64_t now_ms);

#endif
