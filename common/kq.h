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

typedef struct kq_topic_spec {
    const char *name;
    int partitions;
    int replication;  /* 0 = min(3, brokers in the cluster) */
    int min_insync;   /* 0 = replication - 1 from replication 3 on, else the broker's; -1 = the broker's */
    long long retention_ms;     /* <= 0: the broker's default */
    const char *cleanup_policy; /* NULL: the broker's default */
} kq_topic_spec_t;

/* Creates the topic if it does not exist (Admin API), logging what it chose. Exists
 * already → 0, and nothing about it changes (its settings are the operator's). */
int kq_topic_ensure(rd_kafka_t *rk, const kq_topic_spec_t *spec, int timeout_ms, char *errbuf,
                    size_t errlen);

#endif
