/* kp-topic: the few Kafka admin operations tests need, without a JVM start
 * (kafka-topics.sh costs ~2 s per call on this machine).
 *
 *   kp-topic [-b BROKERS] create TOPIC [PARTITIONS [RF]]   create (replication factor RF, default 1),
 *                                                          wait until every partition has a leader
 *   kp-topic [-b BROKERS] count TOPIC                 messages in the topic (high - low watermark, all partitions)
 *   kp-topic [-b BROKERS] partitions TOPIC            number of partitions
 *   kp-topic [-b BROKERS] delete TOPIC
 *   kp-topic [-b BROKERS] config TOPIC                every topic config as KEY=VALUE (DescribeConfigs)
 *
 * BROKERS defaults to $KAFKA_BROKERS. Exit 0 ok, 1 Kafka error, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define KPT_TIMEOUT_MS 30000

static void kpt_usage(FILE *f)
{
	fputs("usage: kp-topic [-b BROKERS] create TOPIC [PARTITIONS [RF]]\n"
	      "       kp-topic [-b BROKERS] count|partitions|delete|config TOPIC\n",
	      f);
}

static long kpt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Returns a producer handle (never used to produce: admin and metadata only) or NULL. */
static rd_kafka_t *kpt_connect(const char *brokers, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errbuf, errlen) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "3", errbuf, errlen) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	/* rd_kafka_new takes conf only on success. */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errlen);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/* Partition count of TOPIC, 0 when it has a partition without a leader yet, -1 on error. */
static int kpt_partitions(rd_kafka_t *rk, const char *topic, char *errbuf, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int n = -1;

	if (!rkt) {
		snprintf(errbuf, errlen, "topic handle: %s", rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
	if (err) {
		snprintf(errbuf, errlen, "metadata: %s", rd_kafka_err2str(err));
	} else if (md->topic_cnt != 1 || md->topics[0].err) {
		snprintf(errbuf, errlen, "%s: %s", topic,
			 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
	} else {
		n = md->topics[0].partition_cnt;
		for (int i = 0; i < md->topics[0].partition_cnt; i++)
			if (md->topics[0].partitions[i].leader < 0)
				n = 0;
		if (n == 0 && md->topics[0].partition_cnt == 0)
			snprintf(errbuf, errlen, "%s: no partitions", topic);
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return n;
}

/* Waits for the result of an admin request sent to Q. Returns the event (the
 * caller destroys it; on a request-level error errbuf says what), or NULL. */
static rd_kafka_event_t *kpt_result(rd_kafka_queue_t *q, char *errbuf, size_t errlen)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, KPT_TIMEOUT_MS + 5000);
	if (!ev)
		snprintf(errbuf, errlen, "no admin result within %d ms", KPT_TIMEOUT_MS + 5000);
	else if (rd_kafka_event_error(ev))
		snprintf(errbuf, errlen, "%s", rd_kafka_event_error_string(ev));
	return ev;
}

/* Runs one CreateTopics or DeleteTopics request and waits for its result. */
static int kpt_admin(rd_kafka_t *rk, int create, const char *topic, int partitions, int rf,
		     char *errbuf, size_t errlen)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(
		rk, create ? RD_KAFKA_ADMIN_OP_CREATETOPICS : RD_KAFKA_ADMIN_OP_DELETETOPICS);
	rd_kafka_event_t *ev = NULL;
	int rc = -1;

	rd_kafka_AdminOptions_set_operation_timeout(opts, KPT_TIMEOUT_MS, errbuf, errlen);
	rd_kafka_AdminOptions_set_request_timeout(opts, KPT_TIMEOUT_MS, errbuf, errlen);
	if (create) {
		rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, errbuf, errlen);
		if (!nt)
			goto out;
		rd_kafka_CreateTopics(rk, &nt, 1, opts, q); /* copies nt */
		rd_kafka_NewTopic_destroy(nt);
	} else {
		rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
		rd_kafka_DeleteTopics(rk, &dt, 1, opts, q); /* copies dt */
		rd_kafka_DeleteTopic_destroy(dt);
	}
	ev = kpt_result(q, errbuf, errlen);
	if (!ev || rd_kafka_event_error(ev))
		goto out;
	const rd_kafka_topic_result_t **res;
	size_t cnt = 0;
	if (create)
		res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
	else
		res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
	if (cnt != 1) {
		snprintf(errbuf, errlen, "%zu topic results, want 1", cnt);
		goto out;
	}
	if (rd_kafka_topic_result_error(res[0])) {
		snprintf(errbuf, errlen, "%s: %s", topic, rd_kafka_topic_result_error_string(res[0]));
		goto out;
	}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	return rc;
}

/* Errors a topic shows for a moment after creation or a broker restart,
 * while leadership settles. */
static int kpt_transient(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	       err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
	       err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
	       err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
	       err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR;
}

/* Sums high - low watermarks; retries transient errors until DEADLINE (ms). */
static int kpt_sum(rd_kafka_t *rk, const char *topic, int n, long deadline, long long *total,
		   char *errbuf, size_t errlen)
{
	for (;;) {
		rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
		int p;
		*total = 0;
		for (p = 0; p < n; p++) {
			int64_t lo, hi;
			err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000);
			if (err)
				break;
			*total += hi - lo;
		}
		if (!err)
			return 0;
		snprintf(errbuf, errlen, "%s[%d] watermarks: %s", topic, p, rd_kafka_err2str(err));
		if (!kpt_transient(err) || kpt_now_ms() >= deadline)
			return -1;
		usleep(100 * 1000);
	}
}

static int kpt_create(rd_kafka_t *rk, const char *topic, int partitions, int rf, char *errbuf,
		      size_t errlen)
{
	long deadline;
	long long total;

	if (kpt_admin(rk, 1, topic, partitions, rf, errbuf, errlen) != 0)
		return -1;
	/* CreateTopics returns before the partitions have leaders, and metadata
	 * names a leader before that broker serves the partition: wait until
	 * every partition answers a watermark query, as a producer needs. */
	deadline = kpt_now_ms() + KPT_TIMEOUT_MS;
	while (kpt_now_ms() < deadline) {
		int n = kpt_partitions(rk, topic, errbuf, errlen);
		if (n == partitions)
			return kpt_sum(rk, topic, n, deadline, &total, errbuf, errlen);
		usleep(50 * 1000);
	}
	snprintf(errbuf, errlen, "%s: partitions have no leader after %d ms", topic, KPT_TIMEOUT_MS);
	return -1;
}

/* Prints TOPIC's effective configuration, one KEY=VALUE a line (what the
 * broker applies: topic overrides and the broker defaults). */
static int kpt_config(rd_kafka_t *rk, const char *topic, char *errbuf, size_t errlen)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_event_t *ev = NULL;
	int rc = -1;

	rd_kafka_AdminOptions_set_request_timeout(opts, KPT_TIMEOUT_MS, errbuf, errlen);
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, q); /* copies res */
	ev = kpt_result(q, errbuf, errlen);
	if (!ev || rd_kafka_event_error(ev))
		goto out;
	size_t nres = 0, ncfg = 0;
	const rd_kafka_ConfigResource_t **rs =
		rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
	if (nres != 1) {
		snprintf(errbuf, errlen, "%zu config results, want 1", nres);
		goto out;
	}
	if (rd_kafka_ConfigResource_error(rs[0])) {
		snprintf(errbuf, errlen, "%s", rd_kafka_ConfigResource_error_string(rs[0]));
		goto out;
	}
	const rd_kafka_ConfigEntry_t **cfg = rd_kafka_ConfigResource_configs(rs[0], &ncfg);
	for (size_t i = 0; i < ncfg; i++) {
		const char *v = rd_kafka_ConfigEntry_value(cfg[i]);
		printf("%s=%s\n", rd_kafka_ConfigEntry_name(cfg[i]), v ? v : "");
	}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(res);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_queue_destroy(q);
	return rc;
}

static int kpt_count(rd_kafka_t *rk, const char *topic, long long *total, char *errbuf, size_t errlen)
{
	long deadline = kpt_now_ms() + 10000;
	int n;

	while ((n = kpt_partitions(rk, topic, errbuf, errlen)) == 0 && kpt_now_ms() < deadline)
		usleep(100 * 1000);
	if (n <= 0) {
		if (n == 0)
			snprintf(errbuf, errlen, "%s: a partition has no leader", topic);
		return -1;
	}
	return kpt_sum(rk, topic, n, deadline, total, errbuf, errlen);
}

int main(int argc, char **argv)
{
	const char *brokers = getenv("KAFKA_BROKERS");
	char errbuf[512] = "";
	int argi = 1, rc = 1;
	rd_kafka_t *rk;

	if (argc > 2 && strcmp(argv[1], "-b") == 0) {
		brokers = argv[2];
		argi = 3;
	}
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		kpt_usage(stdout);
		return 0;
	}
	if (argc - argi < 2 || !brokers || !*brokers) {
		if (!brokers || !*brokers)
			fputs("kp-topic: no brokers (-b or KAFKA_BROKERS)\n", stderr);
		kpt_usage(stderr);
		return 2;
	}
	const char *cmd = argv[argi], *topic = argv[argi + 1];
	int partitions = 1, rf = 1;
	if (strcmp(cmd, "create") == 0 && (argc - argi == 3 || argc - argi == 4)) {
		partitions = atoi(argv[argi + 2]);
		if (argc - argi == 4)
			rf = atoi(argv[argi + 3]);
		if (partitions < 1 || rf < 1) {
			fputs("kp-topic: PARTITIONS and RF must be >= 1\n", stderr);
			return 2;
		}
	} else if (argc - argi != 2) {
		kpt_usage(stderr);
		return 2;
	}

	rk = kpt_connect(brokers, errbuf, sizeof(errbuf));
	if (!rk) {
		fprintf(stderr, "kp-topic: %s\n", errbuf);
		return 1;
	}
	if (strcmp(cmd, "create") == 0) {
		rc = kpt_create(rk, topic, partitions, rf, errbuf, sizeof(errbuf)) == 0 ? 0 : 1;
	} else if (strcmp(cmd, "delete") == 0) {
		rc = kpt_admin(rk, 0, topic, 0, 1, errbuf, sizeof(errbuf)) == 0 ? 0 : 1;
	} else if (strcmp(cmd, "config") == 0) {
		rc = kpt_config(rk, topic, errbuf, sizeof(errbuf)) == 0 ? 0 : 1;
	} else if (strcmp(cmd, "count") == 0) {
		long long total;
		rc = kpt_count(rk, topic, &total, errbuf, sizeof(errbuf)) == 0 ? 0 : 1;
		if (rc == 0)
			printf("%lld\n", total);
	} else if (strcmp(cmd, "partitions") == 0) {
		int n = kpt_partitions(rk, topic, errbuf, sizeof(errbuf));
		rc = n > 0 ? 0 : 1;
		if (rc == 0)
			printf("%d\n", n);
		else if (n == 0)
			snprintf(errbuf, sizeof(errbuf), "%s: a partition has no leader", topic);
	} else {
		fprintf(stderr, "kp-topic: unknown command '%s'\n", cmd);
		kpt_usage(stderr);
		rd_kafka_destroy(rk);
		return 2;
	}
	if (rc != 0)
		fprintf(stderr, "kp-topic: %s %s: %s\n", cmd, topic, errbuf);
	rd_kafka_destroy(rk);
	return rc;
}
