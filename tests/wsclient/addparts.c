/* kp-addparts — grows a Kafka topic to N partitions (Admin API CreatePartitions), for the
 * streamer's "partitions added later" test.   kp-addparts BROKERS TOPIC N */
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: kp-addparts BROKERS TOPIC TOTAL_PARTITIONS\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kp-addparts: %s\n", err);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kp-addparts: %s\n", err);
        return 1;
    }
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(argv[2], (size_t)atoi(argv[3]), err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 1;
    if (ev && !rd_kafka_event_error(ev)) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        rc = 0;
        for (size_t i = 0; i < n; i++)
            if (rd_kafka_topic_result_error(res[i])) {
                fprintf(stderr, "kp-addparts: %s\n", rd_kafka_topic_result_error_string(res[i]));
                rc = 1;
            }
    } else {
        fprintf(stderr, "kp-addparts: %s\n", ev ? rd_kafka_event_error_string(ev) : "timed out");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
