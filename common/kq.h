/* kq.h — librdkafka helpers shared by producer, inserter and streamer. */
#ifndef KQ_H
#define KQ_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

/* A list of "key=value" strings from repeated -X flags (pointers borrowed from argv). */
typedef struct kq_xopts {
    const char *kv[64];
    int n;
} kq_xopts_t;

/* -X, --kafka KEY=VALUE as a kp_opt CALL row (.dest = the kq_xopts_t, .call = kq_xopts_add):
 * kv is borrowed (argv outlives the conf). The reason does not repeat the option. */
int kq_xopts_add(const char *kv, void *dest, char *errbuf, size_t errlen);

/* New conf with bootstrap.servers=brokers, routes librdkafka logs into log.h,
 * then applies each -X key=value (after the program's own defaults, so -X wins:
 * call kq_conf_apply_xopts last). The caller owns the conf (rd_kafka_new takes it). */
rd_kafka_conf_t *kq_conf_new(const char *brokers, char *errbuf, size_t errlen);
int kq_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, char *errbuf, size_t errlen);
int kq_conf_apply_xopts(rd_kafka_conf_t *conf, const kq_xopts_t *x, char *errbuf, size_t errlen);

/* Creates the topic if it does not exist (Admin API). retention_ms <= 0 and a NULL
 * cleanup_policy leave the broker defaults. Exists already → 0. */
int kq_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                    long long retention_ms, const char *cleanup_policy, int timeout_ms, char *errbuf,
                    size_t errlen);

#endif
