/* kq.c — librdkafka configuration shared by all Kafka clients of klinepipe. */
#include "kq.h"
#include "log.h"

#include <stdbool.h>
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

/* Brokers in the cluster's metadata, or -1 with the reason. */
static int kq_broker_count(rd_kafka_t *rk, int timeout_ms, char *errbuf, size_t errlen)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errbuf, errlen, "cluster metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    int n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* replication 0 → min(3, brokers); min_insync 0 → RF − 1 from RF 3 on (one replica may be
 * down and writes with acks=all go on; two copies of every acked record), else the
 * broker's default; -1 → the broker's default. */
static int kq_topic_resolve(rd_kafka_t *rk, const kq_topic_spec_t *in, kq_topic_spec_t *out,
                            int timeout_ms, char *errbuf, size_t errlen)
{
    *out = *in;
    if (out->replication == 0) {
        int brokers = kq_broker_count(rk, timeout_ms, errbuf, errlen);
        if (brokers < 0)
            return -1;
        out->replication = brokers < 3 ? (brokers > 0 ? brokers : 1) : 3;
    }
    if (out->min_insync == 0)
        out->min_insync = out->replication >= 3 ? out->replication - 1 : -1;
    return 0;
}

static rd_kafka_NewTopic_t *kq_new_topic(const kq_topic_spec_t *t, char *errbuf, size_t errlen)
{
    char rerr[256], v[32];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(t->name, t->partitions, t->replication, rerr, sizeof rerr);
    if (!nt) {
        snprintf(errbuf, errlen, "topic %s: %s", t->name, rerr);
        return NULL;
    }
    if (t->retention_ms > 0) {
        snprintf(v, sizeof v, "%lld", t->retention_ms);
        rd_kafka_NewTopic_set_config(nt, "retention.ms", v);
    }
    if (t->min_insync > 0) {
        snprintf(v, sizeof v, "%d", t->min_insync);
        rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", v);
    }
    if (t->cleanup_policy)
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", t->cleanup_policy);
    return nt;
}

/* The CreateTopics answer: 1 created, 0 there already, -1 with the reason. */
static int kq_create_result(rd_kafka_event_t *ev, const char *topic, int timeout_ms, char *errbuf,
                            size_t errlen)
{
    if (!ev)
        return snprintf(errbuf, errlen, "topic %s: no answer from Kafka within %d ms", topic, timeout_ms), -1;
    if (rd_kafka_event_error(ev))
        return snprintf(errbuf, errlen, "topic %s: %s", topic, rd_kafka_event_error_string(ev)), -1;
    size_t n;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return snprintf(errbuf, errlen, "topic %s: %s", topic, rd_kafka_topic_result_error_string(tr[0])), -1;
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Does the cluster list the topic, with partitions? Asked for all topics (a request for
 * one topic by name could auto-create it). Then CreateTopics would only answer "already
 * exists"; and a cluster without CreateTopics (librdkafka 2.0.2's mock cluster, used by
 * producer_fatal.bats) serves a topic made beforehand. */
static bool kq_topic_listed(rd_kafka_t *rk, const char *name, int timeout_ms)
{
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool found = false;
    for (int i = 0; i < md->topic_cnt && !found; i++)
        found = !strcmp(md->topics[i].topic, name) && !md->topics[i].err && md->topics[i].partition_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return found;
}

int kq_topic_ensure(rd_kafka_t *rk, const kq_topic_spec_t *spec, int timeout_ms, char *errbuf,
                    size_t errlen)
{
    char rerr[256];
    kq_topic_spec_t t;
    if (kq_topic_listed(rk, spec->name, timeout_ms))
        return 0;
    if (kq_topic_resolve(rk, spec, &t, timeout_ms, errbuf, errlen) < 0)
        return -1;
    rd_kafka_NewTopic_t *nt = kq_new_topic(&t, errbuf, errlen);
    if (!nt)
        return -1;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, rerr, sizeof rerr);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, rerr, sizeof rerr);
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    int rc = kq_create_result(ev, t.name, timeout_ms, errbuf, errlen);
    if (rc == 1)
        log_info("created topic %s: %d partitions, replication %d, min.insync.replicas %d "
                 "(0: the broker's default)", t.name, t.partitions, t.replication, t.min_insync > 0 ? t.min_insync : 0);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc < 0 ? -1 : 0;
}
