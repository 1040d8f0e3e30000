/* kq.c — librdkafka configuration shared by all Kafka clients of klinepipe. */
#include "kq.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

int kq_xopts_add(const char *kv, void *dest, char *errbuf, size_t errlen)
{
    kq_xopts_t *x = dest;
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        snprintf(errbuf, errlen, "expected KEY=VALUE");
        return -1;
    }
    if (x->n >= (int)(sizeof x->kv / sizeof x->kv[0])) {
        snprintf(errbuf, errlen, "too many -X options");
        return -1;
    }
    x->kv[x->n++] = kv; /* borrowed: argv outlives the conf */
    return 0;
}

/* librdkafka syslog levels → ours, so its messages share our log format. */
static void kq_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int lvl = level <= 3 ? LOG_LVL_ERROR : level == 4 ? LOG_LVL_WARN
            : level <= 6 ? LOG_LVL_INFO : LOG_LVL_DEBUG;
    log_msg(lvl, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int kq_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, char *errbuf, size_t errlen)
{
    char rerr[256];
    if (rd_kafka_conf_set(conf, key, val, rerr, sizeof rerr) != RD_KAFKA_CONF_OK) {
        snprintf(errbuf, errlen, "kafka setting %s=%s: %s", key, val, rerr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kq_conf_new(const char *brokers, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kq_log_cb);
    /* Nagle holds back small produce/fetch requests until the previous one is acked,
     * which on a quiet link costs up to a delayed-ACK period per hop; -X can override */
    if (kq_conf_set(conf, "bootstrap.servers", brokers, errbuf, errlen) < 0 ||
        kq_conf_set(conf, "socket.nagle.disable", "true", errbuf, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf; /* caller owns; rd_kafka_new() takes it over on success */
}

int kq_conf_apply_xopts(rd_kafka_conf_t *conf, const kq_xopts_t *x, char *errbuf, size_t errlen)
{
    for (int i = 0; i < x->n; i++) {
        char key[256];
        const char *eq = strchr(x->kv[i], '=');
        size_t kl = (size_t)(eq - x->kv[i]);
        if (kl >= sizeof key) {
            snprintf(errbuf, errlen, "-X %s: key too long", x->kv[i]);
            return -1;
        }
        memcpy(key, x->kv[i], kl);
        key[kl] = '\0';
        if (kq_conf_set(conf, key, eq + 1, errbuf, errlen) < 0)
            return -1;
    }
    return 0;
}

int kq_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                    long long retention_ms, const char *cleanup_policy, int timeout_ms, char *errbuf,
                    size_t errlen)
{
    char rerr[256];
    int rc = -1;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication, rerr, sizeof rerr);
    if (!nt) {
        snprintf(errbuf, errlen, "topic %s: %s", topic, rerr);
        return -1;
    }
    if (retention_ms > 0) {
        char v[32];
        snprintf(v, sizeof v, "%lld", retention_ms);
        rd_kafka_NewTopic_set_config(nt, "retention.ms", v);
    }
    if (cleanup_policy)
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", cleanup_policy);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, rerr, sizeof rerr);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, rerr, sizeof rerr);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);

    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (!ev) {
        snprintf(errbuf, errlen, "topic %s: no answer from Kafka within %d ms", topic, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errbuf, errlen, "topic %s: %s", topic, rd_kafka_event_error_string(ev));
        goto out_ev;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    if (n == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        snprintf(errbuf, errlen, "topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
        goto out_ev;
    }
    rc = 0;
out_ev:
    rd_kafka_event_destroy(ev);
out:
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}
