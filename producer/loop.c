/* loop.c — the three ways kline-producer runs, each until it is done or stopped:
 * live (WebSocket streams, REST for the gaps), --backfill (REST only) and --replay. */
#include "prod.h"
#include "loop.h"
#include "opts.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <time.h>

/* --backfill FROM..TO: every symbol's range through the REST workers, then exit. */
static int loop_backfill_wait(void)
{
    int64_t iv = prod_cfg.interval_ms;
    int64_t from = prod_cfg.bf_from - (prod_cfg.bf_from % iv + iv) % iv; /* align down */
    if (prod_cfg.bf_to_now) {
        /* REST also returns the kline still open: stop at the last closed one */
        int64_t now = cfg_now_ms();
        prod_cfg.bf_to = now - now % iv - iv;
    }
    log_info("backfilling %d symbols, %lld..%lld", prod_nsyms, (long long)from, (long long)prod_cfg.bf_to);
    for (int i = 0; i < prod_nsyms; i++) {
        seq_seed(&prod_syms[i], from - iv, true);
        seq_request(&prod_syms[i], prod_cfg.bf_to);
    }
    while (!sig_stop && !prod_stopping && !bf_idle()) {
        pub_poll();
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (sig_stop)
        log_info("signal %d: stopping the backfill", (int)sig_stop);
    if (prod_stats.rest_giveups) {
        log_error("%llu range(s) could not be fetched", (unsigned long long)prod_stats.rest_giveups);
        return -1;
    }
    return prod_failed ? -1 : 0;
}

/* Where each symbol starts: --since for all of them, else the topic's last klines. */
static void loop_resume(void)
{
    char err[512];
    if (prod_cfg.since_ms != PROD_NONE) {
        for (int i = 0; i < prod_nsyms; i++)
            seq_seed(&prod_syms[i], prod_cfg.since_ms - prod_cfg.interval_ms, true);
        log_info("resuming every symbol from --since %lld", (long long)prod_cfg.since_ms);
        if (pub_resume_points(prod_cfg.since_ms, err, sizeof err) < 0)
            fatal("%s", err);
    } else if (pub_is_kafka() && resume_from_kafka(err, sizeof err) < 0)
        fatal("resume: %s", err);
}

/* Live: the streams until a signal or a failure; REST fills every gap meanwhile. */
static void loop_live(void)
{
    char err[512];
    loop_resume();
    if (ws_init(err, sizeof err) < 0)
        fatal("%s", err);
    ws_run();
    if (sig_stop)
        log_info("signal %d: stopping", (int)sig_stop);
}

int loop_exchange(void)
{
    char err[512];
    int rc = 0;
    seq_init();
    if (bf_start(err, sizeof err) < 0)
        fatal("%s", err);
    if (prod_cfg.backfill_mode)
        rc = loop_backfill_wait();
    else
        loop_live();
    bf_stop();
    ws_destroy();
    return rc;
}

int loop_replay(void)
{
    char err[512];
    int r = replay_run(prod_cfg.replay, err, sizeof err);
    if (r == -2) {
        pub_close();
        kp_opt_usage_error(&opts_prog, "%s", err);
    }
    if (r < 0)
        log_error("%s", err);
    return r < 0 ? -1 : 0;
}
