/* kline-producer — Binance klines into Kafka (or NDJSON), gap-free.
 * main.c only wires the parts together: options, set-up, the chosen loop, tear-down. */
#include "prod.h"
#include "loop.h"
#include "opts.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <unistd.h>

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

    int rc = (prod_cfg.replay ? loop_replay() : loop_exchange()) < 0;
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
