/*
 * loop.c — the two run loops: Kafka (until a stop signal) and -i (until end of input).
 * Both write a batch when it is full or old enough (flush.c decides), do the periodic
 * work (lag gauge, stats line) and, at the end, write what is in hand within a bound.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"
#include "pgd.h"
#include "sig.h"

#include <time.h>

#define INS_LOOP_FINAL_MS 5000 /* after a stop request: how long the last batch may take */

static void ins_loop_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* a signal cuts it short: fine, the loop re-checks */
}

/* When the periodic work is due next (monotonic ms). */
typedef struct ins_loop_ticks {
    int64_t lag, stats;
} ins_loop_ticks_t;

static void ins_loop_ticks_init(const ins_app_t *app, ins_loop_ticks_t *t, int64_t first_lag)
{
    int64_t now = cfg_mono_ms();
    t->lag = now + first_lag;
    t->stats = now + app->opt.stats_interval_ms;
}

/* Periodic work shared by both loops: lag gauge, stats line. */
static void ins_loop_tick(ins_app_t *app, ins_loop_ticks_t *t)
{
    int64_t now = cfg_mono_ms();
    if (now >= t->lag) {
        ins_stats_set_lag(app->kafka_mode ? ins_kafka_lag(app) : 0);
        if (!app->pg_down)
            ins_stats_set_pending((long long)app->batch.nrecords);
        t->lag = now + 1000;
    }
    if (app->opt.stats_interval_ms > 0 && now >= t->stats) {
        ins_stats_log();
        t->stats = now + app->opt.stats_interval_ms;
    }
}

/* After a stop request: write what is in hand, retrying for a short while. */
static int ins_loop_final_flush(ins_app_t *app, int64_t budget_ms)
{
    int64_t deadline = cfg_mono_ms() + budget_ms;
    if (app->store.op_timeout_ms > budget_ms) /* a hung server must not hold up the exit */
        app->store.op_timeout_ms = (int)budget_ms;
    while (app->batch.nrecords > 0) {
        int64_t now = cfg_mono_ms();
        if (now >= app->retry_at_ms && ins_flush(app) == 0)
            break;
        if (cfg_mono_ms() >= deadline || pgd_stop_expired()) {
            log_error("giving up with %zu records not written to PostgreSQL%s",
                      app->batch.nrecords,
                      app->kafka_mode ? " (not committed in Kafka: they will be read again)" : "");
            return -1;
        }
        ins_loop_sleep_ms(ins_flush_wait_ms(app, cfg_mono_ms(), 200) + 1);
    }
    return 0;
}

int ins_loop_kafka(ins_app_t *app)
{
    ins_loop_ticks_t ticks;
    ins_loop_ticks_init(app, &ticks, 1000);
    while (!sig_stop) {
        int64_t now = cfg_mono_ms();
        if (ins_flush_due(app, now))
            ins_flush(app);
        /* Polling goes on while PostgreSQL is down: the partitions are paused, but the
         * call serves rebalances and keeps max.poll.interval.ms from expiring. */
        ins_kafka_poll(app, ins_flush_wait_ms(app, now, 100));
        ins_loop_tick(app, &ticks);
    }
    log_info("stopping: writing the %zu records in hand", app->batch.nrecords);
    int rc = ins_loop_final_flush(app, INS_LOOP_FINAL_MS);
    ins_kafka_close(app);
    return rc == 0 ? 0 : 1;
}

/* Reads -i until its end, a read error (-1) or a stop signal. 1 = end of input. */
static int ins_loop_read(ins_app_t *app)
{
    ins_loop_ticks_t ticks;
    ins_loop_ticks_init(app, &ticks, 0);
    int r = 0;
    while (!sig_stop && r == 0) {
        int64_t now = cfg_mono_ms();
        if (ins_flush_due(app, now))
            ins_flush(app);
        int wait = ins_flush_wait_ms(app, now, 100);
        if (app->pg_down || (long long)app->batch.nrecords >= app->opt.batch_rows)
            ins_loop_sleep_ms(wait); /* hold the input until the batch is written */
        else
            r = ins_input_poll(app, wait);
        ins_loop_tick(app, &ticks);
    }
    return r;
}

int ins_loop_input(ins_app_t *app)
{
    int r = ins_loop_read(app);
    /* End of input: the batch is written however young it is. PostgreSQL being down
     * is waited out (the input cannot be read again) until a signal says stop. */
    while (app->batch.nrecords > 0 && !sig_stop) {
        if (cfg_mono_ms() >= app->retry_at_ms && ins_flush(app) == 0)
            break;
        ins_loop_sleep_ms(ins_flush_wait_ms(app, cfg_mono_ms(), 200) + 1);
    }
    if (app->batch.nrecords > 0 && ins_loop_final_flush(app, INS_LOOP_FINAL_MS) < 0)
        return 1;
    return r == 1 || sig_stop ? 0 : 1; /* neither end of input nor a signal: a read error */
}
