/* stage.c — --stage-stamps: where a kline's time goes between the moment it was made (its
 * event_time, wall clock) and the moment its frame is handed to a client's socket. Four
 * histograms, each measured from event_time (cumulative, so "p99 by the time it was
 * consumed" reads directly):
 *
 *   kafka_ts  the Kafka message timestamp (CreateTime: the feeder's produce call)
 *   consumed  the lws thread took it from librdkafka's consumer queue (stdin: 0, not timed)
 *   drained   the lws thread applies it (st_hub_ingest; = consumed plus the parse of its
 *             slice; before the feed thread was taken out of the path, consumed was its
 *             rd_kafka_consumer_poll and drained the lws thread's take from its queue)
 *   written   lws_write of the frame (or of the batch frame) that carries it, per client
 *
 * Shown on /metrics as Prometheus histograms (kline_streamer_stage_seconds) so that a
 * bench can diff two scrapes around its window. Off (the default): one branch per record
 * and per frame, nothing else. Only the lws thread records (the feed thread's stamp rides
 * in the feed item), so nothing here is locked. */
#include "streamer.h"

#include <time.h>

#include "buf.h"

/* upper bounds in ms; the last bucket is +Inf */
static const double st_stage_le[] = {1,   2,   3,   4,   5,   6,   8,   10,  12,  15,  20,  25,  30,
                                     40,  50,  60,  70,  80,  90,  100, 120, 140, 160, 180, 200, 250,
                                     300, 350, 400, 500, 600, 800, 1000, 1500, 2000, 5000};
#define ST_STAGE_NB ((int)(sizeof st_stage_le / sizeof st_stage_le[0]))

static const char *const st_stage_names[ST_STAGE_N] = {"kafka_ts", "consumed", "drained", "written"};

static struct {
    bool on;
    uint64_t n[ST_STAGE_N][ST_STAGE_NB + 1];
    uint64_t count[ST_STAGE_N];
    double sum_ms[ST_STAGE_N];
} sg_;

void st_stage_enable(bool on)
{
    sg_.on = on;
}

bool st_stage_on(void)
{
    return sg_.on;
}

int64_t st_stage_now_us(void)
{
    struct timespec ts; /* wall clock: compared with event_time, stamped by another process */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void st_stage_add(enum st_stage st, int64_t ev_ms, int64_t at_us)
{
    if (!sg_.on || ev_ms <= 0)
        return;
    double ms = (double)(at_us - ev_ms * 1000) / 1000.0;
    int b = 0;
    while (b < ST_STAGE_NB && ms > st_stage_le[b])
        b++;
    sg_.n[st][b]++;
    sg_.count[st]++;
    sg_.sum_ms[st] += ms;
}

void st_stage_item(const kline_t *k, int64_t kafka_ms, int64_t consumed_us, int64_t drained_us)
{
    if (!sg_.on)
        return;
    st_stage_add(ST_STAGE_KAFKA_TS, k->event_time, kafka_ms * 1000);
    st_stage_add(ST_STAGE_CONSUMED, k->event_time, consumed_us);
    st_stage_add(ST_STAGE_DRAINED, k->event_time, drained_us);
}

void st_stage_written(const st_msg_t *m, int64_t at_us)
{
    if (sg_.on && m)
        st_stage_add(ST_STAGE_WRITTEN, m->ev_ms, at_us);
}

void st_stage_render(kp_buf_t *b)
{
    if (!sg_.on)
        return;
    kp_buf_puts(b, "# HELP kline_streamer_stage_seconds Time from a kline's event_time to each stage "
                   "(--stage-stamps).\n# TYPE kline_streamer_stage_seconds histogram\n");
    for (int s = 0; s < ST_STAGE_N; s++) {
        uint64_t cum = 0;
        for (int i = 0; i <= ST_STAGE_NB; i++) {
            cum += sg_.n[s][i];
            if (i < ST_STAGE_NB)
                kp_buf_printf(b, "kline_streamer_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n",
                              st_stage_names[s], st_stage_le[i] / 1000.0, (unsigned long long)cum);
            else
                kp_buf_printf(b, "kline_streamer_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n",
                              st_stage_names[s], (unsigned long long)cum);
        }
        kp_buf_printf(b, "kline_streamer_stage_seconds_sum{stage=\"%s\"} %.6f\n", st_stage_names[s],
                      sg_.sum_ms[s] / 1000.0);
        kp_buf_printf(b, "kline_streamer_stage_seconds_count{stage=\"%s\"} %llu\n", st_stage_names[s],
                      (unsigned long long)sg_.count[s]);
    }
}
