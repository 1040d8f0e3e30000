/* kline-producer — Binance klines into Kafka (or NDJSON), gap-free.
 * main.c only wires the parts together: options, set-up, the chosen mode, tear-down. */
#include "prod.h"
#include "opts.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

atomic_int prod_failed;
atomic_int prod_stopping;

static int main_symbols(char *err, size_t errlen)
{
    if (prod_cfg.all_symbols) {
        char **all = NULL;
        int n = sym_fetch_all(prod_cfg.rest_url, prod_cfg.quote_asset, &all, err, errlen);
        if (n < 0)
            return -1;
        log_info("exchangeInfo: %d trading symbols%s%s", n, prod_cfg.quote_asset ? " quoted in " : "",
                 prod_cfg.quote_asset ? prod_cfg.quote_asset : "");
        prod_cfg.symbols = all; /* owned by prod_cfg, freed at exit */
        prod_cfg.nsymbols = n;
    }
    return sym_table_init(prod_cfg.symbols, prod_cfg.nsymbols, err, errlen);
}

/* --backfill FROM..TO: every symbol's range through the REST workers, then exit. */
static int main_backfill(void)
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

static void main_seed_since(void)
{
    for (int i = 0; i < prod_nsyms; i++)
        seq_seed(&prod_syms[i], prod_cfg.since_ms - prod_cfg.interval_ms, true);
    log_info("resuming every symbol from --since %lld", (long long)prod_cfg.since_ms);
}

int main(int argc, char **argv)
{
    int level;
    char err[512];
    opts_parse(argc, argv, &level);
    log_init(PROD_NAME, level);
    sig_setup();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)cfg_mono_us() ^ (unsigned)getpid());

    if (!prod_cfg.replay && main_symbols(err, sizeof err) < 0)
        fatal("%s", err);
    if (pub_init(err, sizeof err) < 0)
        fatal("%s", err);
    if (stats_start(err, sizeof err) < 0)
        fatal("%s", err);

    int rc = 0;
    if (prod_cfg.replay) {
        int r = replay_run(prod_cfg.replay, err, sizeof err);
        if (r == -2) {
            pub_close();
            kp_opt_usage_error(&opts_prog, "%s", err);
        }
        if (r < 0) {
            log_error("%s", err);
            rc = 1;
        }
    } else {
        seq_init();
        if (bf_start(err, sizeof err) < 0)
            fatal("%s", err);
        if (prod_cfg.backfill_mode) {
            if (main_backfill() < 0)
                rc = 1;
        } else {
            if (prod_cfg.since_ms != PROD_NONE) {
                main_seed_since();
                if (pub_resume_points(prod_cfg.since_ms, err, sizeof err) < 0)
                    fatal("%s", err);
            }
            else if (pub_is_kafka() && resume_from_kafka(err, sizeof err) < 0)
                fatal("resume: %s", err);
            if (ws_init(err, sizeof err) < 0)
                fatal("%s", err);
            ws_run();
            if (sig_stop)
                log_info("signal %d: stopping", (int)sig_stop);
        }
        bf_stop();
        ws_destroy();
    }
    if (pub_flush(prod_cfg.flush_timeout_ms) < 0 || prod_failed)
        rc = 1;
    stats_log_line();
    stats_stop();
    pub_close();
    sym_table_free();
    cfg_list_free(prod_cfg.symbols);
    curl_global_cleanup();
    return rc;
}
