/* kp-klinegen — writes synthetic canonical 1s klines (NDJSON) for streamer tests and
 * benchmarks: a seeded random walk per symbol.
 *
 *   kp-klinegen [--symbols N|LIST] [--seconds N] [--start MS]      (as fast as possible)
 *   kp-klinegen --realtime [--duration S] [--spread]               (one kline/symbol/second,
 *               event_time = the moment it is written, for latency measurements)
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "kline.h"

static const char *kg_names[] = {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT",
                                 "ADAUSDT", "DOGEUSDT", "AVAXUSDT", "DOTUSDT", "LINKUSDT"};

struct kg_sym {
    char name[KLINE_SYMBOL_MAX];
    double price;
    int64_t trade_id;
};

static double kg_rand(unsigned *seed) { return (double)rand_r(seed) / RAND_MAX; }

static void kg_price(char *dst, double v, int dp)
{
    int n = snprintf(dst, KLINE_DEC_MAX, "%.*f", dp, v);
    while (dp++ < 8 && n < KLINE_DEC_MAX - 1)
        dst[n++] = '0';
    dst[n] = '\0';
}

static int kg_quiet; /* advance the walk without printing (--skip) */

static void kg_emit(struct kg_sym *s, int64_t open_time, int64_t event_time, unsigned *seed)
{
    kline_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.symbol, sizeof k.symbol, "%s", s->name);
    snprintf(k.interval, sizeof k.interval, "1s");
    k.open_time = open_time;
    k.close_time = open_time + 999;
    double o = s->price;
    double c = o * (1.0 + (kg_rand(seed) - 0.5) * 0.002);
    double h = fmax(o, c) * (1.0 + kg_rand(seed) * 0.0005);
    double l = fmin(o, c) * (1.0 - kg_rand(seed) * 0.0005);
    int64_t trades = 1 + (int64_t)(kg_rand(seed) * 40);
    double v = kg_rand(seed) * 2.0;
    /* Binance style: rounded to the symbol's tick, written with 8 decimals */
    int dp = o >= 1000 ? 2 : o >= 10 ? 3 : o >= 1 ? 4 : 6;
    kg_price(k.open, o, dp);
    kg_price(k.high, h, dp);
    kg_price(k.low, l, dp);
    kg_price(k.close, c, dp);
    if (kline_dec_cmp(k.high, k.open) < 0 || kline_dec_cmp(k.high, k.close) < 0)
        snprintf(k.high, sizeof k.high, "%s", kline_dec_cmp(k.open, k.close) > 0 ? k.open : k.close);
    if (kline_dec_cmp(k.low, k.open) > 0 || kline_dec_cmp(k.low, k.close) > 0)
        snprintf(k.low, sizeof k.low, "%s", kline_dec_cmp(k.open, k.close) < 0 ? k.open : k.close);
    snprintf(k.volume, sizeof k.volume, "%.8f", v);
    snprintf(k.quote_volume, sizeof k.quote_volume, "%.8f", v * c);
    snprintf(k.taker_buy_volume, sizeof k.taker_buy_volume, "%.8f", v / 2);
    snprintf(k.taker_buy_quote_volume, sizeof k.taker_buy_quote_volume, "%.8f", v * c / 2);
    s->price = strtod(k.close, NULL);
    k.trades = trades;
    k.first_trade_id = s->trade_id;
    k.last_trade_id = s->trade_id + trades - 1;
    s->trade_id += trades;
    k.closed = true;
    k.event_time = event_time;
    k.source = KLINE_SRC_WS;
    char buf[KLINE_JSON_MAX];
    int n = kline_format(&k, buf, sizeof buf);
    if (n > 0 && !kg_quiet) {
        fwrite(buf, 1, (size_t)n, stdout);
        fputc('\n', stdout);
    }
}

static void kg_sleep_until(int64_t wall_ms)
{
    int64_t d = wall_ms - cfg_now_ms();
    if (d > 0)
        usleep((useconds_t)d * 1000);
}

int main(int argc, char **argv)
{
    const char *syms = "10";
    long long seconds = 60, start = 0, duration = 0, seed = 1, skip = 0;
    int realtime = 0, spread = 0;
    static const struct option opts[] = {
        {"symbols", required_argument, 0, 's'}, {"seconds", required_argument, 0, 'n'},
        {"start", required_argument, 0, 'S'},   {"realtime", no_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'}, {"spread", no_argument, 0, 'p'},
        {"seed", required_argument, 0, 'e'},    {"help", no_argument, 0, 'h'},
        {"skip", required_argument, 0, 'k'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "s:n:S:rd:pe:hk:", opts, NULL)) != -1) {
        switch (o) {
        case 's': syms = optarg; break;
        case 'n': seconds = atoll(optarg); break;
        case 'S': start = atoll(optarg); break;
        case 'r': realtime = 1; break;
        case 'd': duration = atoll(optarg); break;
        case 'p': spread = 1; break;
        case 'e': seed = atoll(optarg); break;
        case 'k': skip = atoll(optarg); break;
        case 'h':
            printf("usage: kp-klinegen [--symbols N|A,B,..] [--seconds N] [--start MS] [--seed N]\n"
                   "       kp-klinegen --realtime [--duration S (0 = forever)] [--spread] [--skip N]\n"
                   "  --skip N: advance the random walk N seconds first (continue a history made\n"
                   "            with the same --seed/--symbols and --seconds N)\n");
            return 0;
        default: return 2;
        }
    }
    struct kg_sym *s = NULL;
    int ns = 0;
    long long count;
    if (cfg_parse_ll(syms, 1, 100000, &count) == 0) {
        ns = (int)count;
        s = calloc((size_t)ns, sizeof *s);
        for (int i = 0; i < ns; i++) {
            if (i < (int)(sizeof kg_names / sizeof kg_names[0]))
                snprintf(s[i].name, sizeof s[i].name, "%s", kg_names[i]);
            else
                snprintf(s[i].name, sizeof s[i].name, "S%05dUSDT", i);
        }
    } else {
        char **list;
        ns = cfg_split_list(syms, &list);
        s = calloc((size_t)(ns > 0 ? ns : 1), sizeof *s);
        for (int i = 0; i < ns; i++)
            snprintf(s[i].name, sizeof s[i].name, "%s", list[i]);
        cfg_list_free(list);
    }
    if (!s || ns <= 0)
        return 2;
    unsigned rs = (unsigned)seed;
    for (int i = 0; i < ns; i++) {
        s[i].price = 10.0 + 1000.0 * kg_rand(&rs) * (i % 3 == 0 ? 50 : 1);
        s[i].trade_id = 1000000 * (int64_t)(i + 1);
    }
    if (!realtime) {
        int64_t t0 = start ? start : (cfg_now_ms() / 1000 - seconds) * 1000;
        for (long long sec = 0; sec < seconds; sec++)
            for (int i = 0; i < ns; i++)
                kg_emit(&s[i], t0 + sec * 1000, t0 + sec * 1000 + 1000 + 15, &rs);
        fflush(stdout);
        free(s);
        return 0;
    }
    kg_quiet = 1;
    for (long long sec = 0; sec < skip; sec++)
        for (int i = 0; i < ns; i++)
            kg_emit(&s[i], 0, 0, &rs);
    kg_quiet = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int64_t end = duration > 0 ? cfg_now_ms() + duration * 1000 : INT64_MAX;
    int64_t sec = cfg_now_ms() / 1000 * 1000 + 1000;
    while (cfg_now_ms() < end) {
        for (int i = 0; i < ns; i++) {
            if (spread)
                kg_sleep_until(sec + (int64_t)i * 1000 / ns);
            else if (i == 0)
                kg_sleep_until(sec);
            kg_emit(&s[i], sec - 1000, cfg_now_ms(), &rs);
        }
        if (ferror(stdout))
            break;
        sec += 1000;
    }
    free(s);
    return 0;
}
