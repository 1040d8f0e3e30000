/* kp-mock-cluster: librdkafka's in-process mock Kafka cluster as a stand-alone
 * server for tests. It is the fallback broker when the real Apache Kafka jars
 * are not available, and a precise fault injector (request errors, brokers
 * down) for tests that need one.
 *
 * Prints the bootstrap servers on stdout (and to --out FILE, written
 * atomically), then runs until SIGTERM/SIGINT.
 * SIGUSR1 takes every broker down, SIGUSR2 brings them back: the harness maps
 * kafka-stop/kafka-start onto these because the mock keeps its data only in
 * this process's memory. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define KPM_MAX_TOPICS 32
#define KPM_MAX_ERRORS 32

static volatile sig_atomic_t kpm_stop;
static volatile sig_atomic_t kpm_down_req;
static volatile sig_atomic_t kpm_up_req;

static void kpm_on_signal(int sig)
{
	if (sig == SIGUSR1)
		kpm_down_req = 1;
	else if (sig == SIGUSR2)
		kpm_up_req = 1;
	else
		kpm_stop = 1;
}

typedef struct kpm_topic {
	const char *name; /* points into argv */
	int partitions;
} kpm_topic_t;

typedef struct kpm_reqerr {
	int16_t api_key;
	rd_kafka_resp_err_t err;
	size_t count;
} kpm_reqerr_t;

typedef struct kpm_opts {
	int brokers;
	const char *out_path;
	kpm_topic_t topics[KPM_MAX_TOPICS];
	int ntopics;
	kpm_reqerr_t errors[KPM_MAX_ERRORS];
	int nerrors;
	double down_after;  /* seconds; < 0 = never */
	double down_for;    /* seconds; < 0 = stays down */
	int down_broker;    /* 0 = every broker */
	int rtt_ms;
	const char *topic_dir;
} kpm_opts_t;

static void kpm_usage(FILE *f)
{
	fputs("usage: kp-mock-cluster [OPTIONS]\n"
	      "  --brokers N            number of mock brokers (default 3)\n"
	      "  --out FILE             also write the bootstrap servers to FILE\n"
	      "  --topic NAME[:PARTS]   create a topic (repeatable; PARTS default 1)\n"
	      "  --error API:ERR[:CNT]  fail the next CNT (default 1) requests of ApiKey\n"
	      "                         API with error code ERR, e.g. 0:6 = Produce\n"
	      "                         NOT_LEADER_FOR_PARTITION (repeatable)\n"
	      "  --down-after SECS      take brokers down SECS after start\n"
	      "  --down-for SECS        ... and bring them up again SECS later\n"
	      "  --down-broker ID       only this broker (default: all)\n"
	      "  --rtt MS               add MS of round-trip time to every broker\n"
	      "  --topic-dir DIR        create topics on request: a file DIR/NAME holding\n"
	      "                         PARTITIONS becomes DIR/NAME.done (or NAME.err)\n"
	      "Signals: SIGUSR1 all brokers down, SIGUSR2 all up, SIGTERM/SIGINT exit.\n",
	      f);
}

/* Parses "A:B[:C]" integers; returns the number of fields read or -1. */
static int kpm_parse_ints(const char *s, long *v, int max)
{
	int n = 0;
	while (n < max) {
		char *end;
		errno = 0;
		v[n] = strtol(s, &end, 10);
		if (errno || end == s)
			return -1;
		n++;
		if (*end == '\0')
			return n;
		if (*end != ':')
			return -1;
		s = end + 1;
	}
	return -1;
}

static int kpm_parse_args(int argc, char **argv, kpm_opts_t *o, char *errbuf, size_t errlen)
{
	static const struct option longopts[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"out", required_argument, NULL, 'o'},
		{"topic", required_argument, NULL, 't'},
		{"error", required_argument, NULL, 'e'},
		{"down-after", required_argument, NULL, 'd'},
		{"down-for", required_argument, NULL, 'f'},
		{"down-broker", required_argument, NULL, 'B'},
		{"rtt", required_argument, NULL, 'r'},
		{"topic-dir", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	long v[3];
	char *colon;

	memset(o, 0, sizeof(*o));
	o->brokers = 3;
	o->down_after = -1;
	o->down_for = -1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->brokers = atoi(optarg);
			if (o->brokers < 1 || o->brokers > 16) {
				snprintf(errbuf, errlen, "--brokers must be 1..16");
				return -1;
			}
			break;
		case 'o':
			o->out_path = optarg;
			break;
		case 't':
			if (o->ntopics == KPM_MAX_TOPICS) {
				snprintf(errbuf, errlen, "too many --topic");
				return -1;
			}
			o->topics[o->ntopics].name = optarg;
			o->topics[o->ntopics].partitions = 1;
			colon = strrchr(optarg, ':');
			if (colon) {
				*colon = '\0'; /* argv is ours to edit */
				o->topics[o->ntopics].partitions = atoi(colon + 1);
				if (o->topics[o->ntopics].partitions < 1) {
					snprintf(errbuf, errlen, "bad partition count in --topic");
					return -1;
				}
			}
			o->ntopics++;
			break;
		case 'e': {
			int n = kpm_parse_ints(optarg, v, 3);
			if (n < 2 || o->nerrors == KPM_MAX_ERRORS) {
				snprintf(errbuf, errlen, "bad --error '%s' (want API:ERR[:COUNT])", optarg);
				return -1;
			}
			o->errors[o->nerrors].api_key = (int16_t)v[0];
			o->errors[o->nerrors].err = (rd_kafka_resp_err_t)v[1];
			o->errors[o->nerrors].count = n == 3 ? (size_t)v[2] : 1;
			o->nerrors++;
			break;
		}
		case 'd':
			o->down_after = atof(optarg);
			break;
		case 'f':
			o->down_for = atof(optarg);
			break;
		case 'B':
			o->down_broker = atoi(optarg);
			break;
		case 'r':
			o->rtt_ms = atoi(optarg);
			break;
		case 'T':
			o->topic_dir = optarg;
			break;
		case 'h':
			kpm_usage(stdout);
			exit(0);
		default:
			snprintf(errbuf, errlen, "unknown option");
			return -1;
		}
	}
	if (optind != argc) {
		snprintf(errbuf, errlen, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

static void kpm_set_state(rd_kafka_mock_cluster_t *mc, const kpm_opts_t *o, int only, int up)
{
	for (int id = 1; id <= o->brokers; id++) {
		if (only && id != only)
			continue;
		rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, id)
					     : rd_kafka_mock_broker_set_down(mc, id);
		if (err)
			fprintf(stderr, "kp-mock-cluster: broker %d %s: %s\n", id, up ? "up" : "down",
				rd_kafka_err2str(err));
	}
	fprintf(stderr, "kp-mock-cluster: %s %s\n", only ? "one broker" : "all brokers", up ? "up" : "down");
}

static int kpm_write_out(const char *path, const char *bootstraps, char *errbuf, size_t errlen)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(errbuf, errlen, "--out path too long");
		return -1;
	}
	f = fopen(tmp, "w");
	if (!f) {
		snprintf(errbuf, errlen, "%s.tmp: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%s\n", bootstraps);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The mock cluster of librdkafka 2.0 has no controller, so CreateTopics from
 * a client times out; tests ask for topics through files instead. A request
 * is renamed only after the topic exists, so the asker can wait for it. */
static void kpm_topic_requests(rd_kafka_mock_cluster_t *mc, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[4096], done[4200];
		FILE *f;
		int parts = 1;

		if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
			continue; /* topic names used by tests have no dots; results do */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &parts) != 1 || parts < 1)
			parts = 1;
		fclose(f);
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, de->d_name, parts, 1);
		snprintf(done, sizeof(done), "%s.%s", path, err ? "err" : "done");
		if (err) {
			f = fopen(path, "w");
			if (f) {
				fprintf(f, "%s\n", rd_kafka_err2str(err));
				fclose(f);
			}
		}
		if (rename(path, done) != 0)
			unlink(path);
	}
	closedir(d);
}

static double kpm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	kpm_opts_t o;
	char errbuf[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	struct sigaction sa;
	double t0, down_at = -1, up_at = -1;

	if (kpm_parse_args(argc, argv, &o, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "kp-mock-cluster: %s\n", errbuf);
		kpm_usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kpm_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The mock cluster lives inside a client handle; this one never sends. */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "3", errbuf, sizeof(errbuf)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kp-mock-cluster: %s\n", errbuf);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, sizeof(errbuf)); /* takes conf */
	if (!rk) {
		fprintf(stderr, "kp-mock-cluster: rd_kafka_new: %s\n", errbuf);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, o.brokers);
	if (!mc) {
		fprintf(stderr, "kp-mock-cluster: rd_kafka_mock_cluster_new failed\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (int i = 0; i < o.ntopics; i++) {
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, o.topics[i].name,
								     o.topics[i].partitions, 1);
		if (err)
			fprintf(stderr, "kp-mock-cluster: topic %s: %s\n", o.topics[i].name,
				rd_kafka_err2str(err));
	}
	for (int i = 0; i < o.nerrors; i++) {
		rd_kafka_resp_err_t *errs = calloc(o.errors[i].count, sizeof(*errs));
		if (!errs) {
			fprintf(stderr, "kp-mock-cluster: out of memory\n");
			break;
		}
		for (size_t k = 0; k < o.errors[i].count; k++)
			errs[k] = o.errors[i].err;
		/* The mock copies the array. */
		rd_kafka_mock_push_request_errors_array(mc, o.errors[i].api_key, o.errors[i].count, errs);
		free(errs);
	}
	if (o.rtt_ms > 0)
		for (int id = 1; id <= o.brokers; id++)
			rd_kafka_mock_broker_set_rtt(mc, id, o.rtt_ms);

	const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
	fprintf(stderr, "kp-mock-cluster: librdkafka %s mock cluster, %d brokers: %s\n",
		rd_kafka_version_str(), o.brokers, bootstraps);
	printf("%s\n", bootstraps);
	fflush(stdout);
	if (o.out_path && kpm_write_out(o.out_path, bootstraps, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "kp-mock-cluster: %s\n", errbuf);
		rd_kafka_mock_cluster_destroy(mc);
		rd_kafka_destroy(rk);
		return 1;
	}

	t0 = kpm_now();
	if (o.down_after >= 0)
		down_at = t0 + o.down_after;
	while (!kpm_stop) {
		double now = kpm_now();
		if (down_at >= 0 && now >= down_at) {
			kpm_set_state(mc, &o, o.down_broker, 0);
			down_at = -1;
			if (o.down_for >= 0)
				up_at = now + o.down_for;
		}
		if (up_at >= 0 && now >= up_at) {
			kpm_set_state(mc, &o, o.down_broker, 1);
			up_at = -1;
		}
		if (o.topic_dir)
			kpm_topic_requests(mc, o.topic_dir);
		if (kpm_down_req) {
			kpm_down_req = 0;
			kpm_set_state(mc, &o, 0, 0);
		}
		if (kpm_up_req) {
			kpm_up_req = 0;
			kpm_set_state(mc, &o, 0, 1);
		}
		usleep(50 * 1000);
	}

	fprintf(stderr, "kp-mock-cluster: stopping\n");
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
