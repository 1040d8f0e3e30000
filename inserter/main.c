/*
 * kline-inserter — klines from Kafka (or stdin) into PostgreSQL, in batches, each batch
 * and its checkpoint rows in one transaction, Kafka offsets committed only after COMMIT.
 * See docs/inserter.md. This file: set-up, one of the two loops (loop.c), tear-down.
 */
#include "ins.h"
#include "log.h"
#include "pgx.h"
#include "sig.h"

/* Opens what the chosen loop needs: the input or the consumer, PostgreSQL, /metrics.
 * A failure here exits 1 (fatal). */
static void ins_main_open(ins_app_t *app)
{
    char err[1024];
    const ins_opts_t *o = &app->opt;
    if (!app->kafka_mode && ins_input_open(&app->input, o->input, err, sizeof err) < 0)
        fatal("%s", err);
    if (ins_symbols_init(o->batch_rows, err, sizeof err) < 0)
        fatal("%s", err);
    if (ins_store_open(&app->store, o->db_url, (int)o->pg_timeout_ms, (int)o->connect_timeout_ms,
                       err, sizeof err) < 0)
        fatal("PostgreSQL: %s", err);
    if (o->metrics_port > 0 &&
        ins_stats_start_http(o->metrics_host, o->metrics_port, err, sizeof err) < 0)
        fatal("%s", err);
    if (app->kafka_mode && ins_kafka_open(app, err, sizeof err) < 0)
        fatal("%s", err);
}

int main(int argc, char **argv)
{
    static ins_app_t app; /* static: large, and the rebalance callback holds a pointer */
    ins_opts_parse(argc, argv, &app.opt);
    log_init(INS_PROG, app.opt.log_level);
    sig_setup();
    pgx_set_timeouts((int)app.opt.pg_connect_timeout_ms, (int)app.opt.pg_timeout_ms);
    ins_batch_init(&app.batch);
    app.batch.rej_prefix = (size_t)app.opt.rejected_prefix;
    app.kafka_mode = app.opt.input == NULL;
    ins_main_open(&app);
    log_info("writing to PostgreSQL in batches of up to %lld records or %lld ms",
             app.opt.batch_rows, (long long)app.opt.flush_ms);

    int rc = app.kafka_mode ? ins_loop_kafka(&app) : ins_loop_input(&app);

    ins_stats_log();
    if (app.opt.metrics_port > 0)
        ins_stats_stop_http();
    if (!app.kafka_mode)
        ins_input_close(&app.input);
    ins_store_close(&app.store);
    ins_symbols_free();
    ins_batch_free(&app.batch);
    log_info("exit %d", rc);
    return rc;
}
