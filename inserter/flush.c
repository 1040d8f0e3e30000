/*
 * flush.c — turn records into batch entries, and write batches: the state machine of
 * "PostgreSQL works" / "PostgreSQL does not work, consumption paused, retrying".
 *
 * While PostgreSQL is unavailable the batch is kept as it is and retried with backoff;
 * nothing is committed to Kafka, and the Kafka partitions are paused (not unassigned) so
 * the consumer keeps its group membership and its partitions. One log line per change
 * of state, plus a reminder a minute while it lasts.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FLUSH_BACKOFF_MIN_MS 200
#define FLUSH_BACKOFF_MAX_MS 5000
#define FLUSH_REMIND_MS      60000
#define FLUSH_LIVE_MS        10000

static int64_t flush_down_since_ms, flush_reminded_ms;
static long long flush_attempts;

/* kline_1s derives close_time and last_trade_id and keeps trades and the event time in
 * 32 bits (schema/011, 012), so a 1s record those cannot give back exactly cannot be
 * stored as it came: it is rejected (and kept in `rejected`). */
static bool ins_storable(const kline_t *k, char *why, size_t whylen)
{
    int64_t last = -1;
    if (k->first_trade_id >= 0 && __builtin_add_overflow(k->first_trade_id, k->trades - 1, &last))
        last = INT64_MIN; /* matches no last_trade_id: rejected below */
    if (k->close_time != k->open_time + 999)
        snprintf(why, whylen, "close_time %lld: a 1s kline ends at open_time + 999 ms",
                 (long long)k->close_time);
    else if (k->trades > INT32_MAX)
        snprintf(why, whylen, "trades %lld: more than 2^31 in one second", (long long)k->trades);
    else if (k->last_trade_id != last)
        snprintf(why, whylen, "last_trade_id %lld: not first_trade_id + trades - 1 (or -1 when"
                 " first_trade_id is -1)", (long long)k->last_trade_id);
    else if (k->event_time > 0 && (k->event_time - k->open_time > INT32_MAX ||
                                   k->event_time - k->open_time < INT32_MIN))
        snprintf(why, whylen, "event_time %lld: more than 24 days from open_time",
                 (long long)k->event_time);
    else
        return true;
    return false;
}

int ins_take(ins_app_t *app, const char *buf, size_t len, ins_origin_fn origin_fn,
             const void *origin_ctx, int topic, int32_t part, int64_t off, int64_t ts_ms)
{
    kline_t k;
    char why[256], origin[600];
    if (kline_parse(buf, len, app->opt.symbol_hint, "1s", &k, why, sizeof why) == 0) {
        if (strcmp(k.interval, "1s") != 0) {
            snprintf(why, sizeof why, "interval %s: kline_1s stores 1s klines only", k.interval);
        } else if (ins_storable(&k, why, sizeof why)) {
            /* The aggregator rolls a minute up once its last second is committed, so
             * that second is not held for --flush-ms. Live data only (ended less than
             * FLUSH_LIVE_MS ago): in a backlog every poll meets a :59 and batches must
             * stay large. */
            if (k.closed && k.open_time % 60000 == 59000 &&
                cfg_now_ms() - k.open_time < FLUSH_LIVE_MS)
                app->batch.minute_end = true;
            return ins_batch_add_kline(&app->batch, &k, topic, part, off, ts_ms);
        }
    }
    origin_fn(origin, sizeof origin, origin_ctx);
    log_debug("rejected %s: %s", origin, why);
    return ins_batch_add_reject(&app->batch, buf, len, why, origin, topic, part, off);
}

bool ins_flush_due(ins_app_t *app, int64_t now_ms)
{
    const ins_batch_t *b = &app->batch;
    if (now_ms < app->retry_at_ms)
        return false;
    /* While down, retry even with an empty batch (a rebalance may have emptied it, and
     * the paused partitions bring nothing new): the probe is what resumes them. */
    if (app->pg_down)
        return true;
    return b->nrecords > 0 && ((long long)b->nrecords >= app->opt.batch_rows || b->minute_end ||
                               now_ms - b->started_ms >= app->opt.flush_ms);
}

int ins_flush_wait_ms(ins_app_t *app, int64_t now_ms, int cap_ms)
{
    const ins_batch_t *b = &app->batch;
    if (b->nrecords == 0 && !app->pg_down)
        return cap_ms;
    int64_t due = app->pg_down || (long long)b->nrecords >= app->opt.batch_rows || b->minute_end
                      ? app->retry_at_ms
                      : b->started_ms + app->opt.flush_ms;
    if (due < app->retry_at_ms)
        due = app->retry_at_ms;
    int64_t w = due - now_ms;
    return w <= 0 ? 0 : w > cap_ms ? cap_ms : (int)w;
}

static void flush_recovered(ins_app_t *app)
{
    log_info("PostgreSQL accepts batches again after %lld s (%lld failed attempts); resuming",
             (long long)(cfg_mono_ms() - flush_down_since_ms) / 1000, flush_attempts);
    app->pg_down = false;
    app->retry_at_ms = 0;
    ins_stats_set_pg_up(true);
    if (app->kafka_mode)
        ins_kafka_resume(app);
}

static void flush_failed(ins_app_t *app, const char *err)
{
    int64_t now = cfg_mono_ms();
    flush_attempts++;
    if (!app->pg_down) {
        log_error("cannot write a batch of %zu records to PostgreSQL: %s; %s and retrying "
                  "the same batch until it is written", app->batch.nrecords, err,
                  app->kafka_mode ? "pausing consumption" : "pausing input");
        app->pg_down = true;
        app->backoff_ms = FLUSH_BACKOFF_MIN_MS;
        flush_down_since_ms = flush_reminded_ms = now;
        flush_attempts = 1;
        ins_stats_set_pg_up(false);
        if (app->kafka_mode)
            ins_kafka_pause(app);
    } else {
        app->backoff_ms = app->backoff_ms * 2 > FLUSH_BACKOFF_MAX_MS ? FLUSH_BACKOFF_MAX_MS
                                                                     : app->backoff_ms * 2;
        if (now - flush_reminded_ms >= FLUSH_REMIND_MS) {
            log_warn("still cannot write to PostgreSQL after %lld s and %lld attempts: %s",
                     (long long)(now - flush_down_since_ms) / 1000, flush_attempts, err);
            flush_reminded_ms = now;
        } else {
            log_debug("retry failed: %s", err);
        }
    }
    app->retry_at_ms = now + app->backoff_ms;
}

/* After COMMIT: the Kafka offsets, the metrics, an empty batch. */
static void flush_committed(ins_app_t *app, const ins_result_t *res, int64_t lat_us)
{
    ins_batch_t *b = &app->batch;
    if (app->pg_down)
        flush_recovered(app);
    /* Only now, with the rows committed, may Kafka forget these records. */
    if (app->kafka_mode)
        ins_kafka_commit(app, b);
    int64_t now = cfg_wall_ms(); /* against the producer's real clock, never the test clock */
    for (size_t i = 0; i < b->nrows; i++)
        if (b->rows[i].ts_ms > 0)
            ins_stats_e2e(now - b->rows[i].ts_ms);
    ins_stats_batch(res, b->nrecords, b->ndup, b->nrej, lat_us);
    log_debug("batch: %zu records, %zu rows: %lld inserted, %lld updated, %lld unchanged; "
              "%zu rejected (%lld new), %lld checkpoints, %.1f ms", b->nrecords, b->nrows,
              res->inserted, res->updated, res->unchanged, b->nrej, res->rejected_new,
              res->checkpoints, (double)lat_us / 1000.0);
    ins_batch_reset(b);
    ins_stats_set_pending(0);
}

/* An empty batch while PostgreSQL is down: a probe decides whether to resume. */
static int flush_probe(ins_app_t *app)
{
    char err[1024];
    if (ins_store_probe(&app->store, err, sizeof err) < 0) {
        flush_failed(app, err);
        return -1;
    }
    flush_recovered(app);
    return 0;
}

int ins_flush(ins_app_t *app)
{
    ins_batch_t *b = &app->batch;
    char err[1024];
    ins_result_t res;
    if (b->nrecords == 0)
        return app->pg_down ? flush_probe(app) : 0;
    int64_t t0 = cfg_mono_us();
    if (ins_store_write(&app->store, b, app->opt.topic, &res, err, sizeof err) < 0) {
        flush_failed(app, err);
        ins_stats_set_pending((long long)b->nrecords);
        return -1;
    }
    flush_committed(app, &res, cfg_mono_us() - t0);
    return 0;
}
