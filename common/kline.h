/*
 * kline.h — the one kline record of klinepipe (docs/ARCHITECTURE.md §2) and its codecs.
 *
 * Prices and volumes are kept as the exact decimal strings the exchange sent,
 * validated but never converted to floating point. Every string lives inside
 * the struct, so a kline_t owns nothing and can be copied with '='.
 */
#ifndef KLINE_H
#define KLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define KLINE_SYMBOL_MAX   24   /* Binance symbols are at most 20 chars, [A-Z0-9] */
#define KLINE_INTERVAL_MAX 4    /* "1s", "15m", "1M" + NUL */
#define KLINE_DEC_MAX      40   /* "12345678901234567890.123456789012345678" + NUL */
#define KLINE_JSON_MAX     1024 /* kline_format never needs more than this */
#define KLINE_INPUT_MAX    (64 * 1024) /* longer input lines are rejected, not parsed */

enum kline_source { KLINE_SRC_WS = 0, KLINE_SRC_REST, KLINE_SRC_REPLAY };

typedef struct kline {
    char    symbol[KLINE_SYMBOL_MAX];      /* upper case */
    char    interval[KLINE_INTERVAL_MAX];  /* "1s", "1m", ... */
    int64_t open_time;                     /* epoch ms, UTC */
    int64_t close_time;                    /* epoch ms, UTC */
    char    open[KLINE_DEC_MAX];
    char    high[KLINE_DEC_MAX];
    char    low[KLINE_DEC_MAX];
    char    close[KLINE_DEC_MAX];
    char    volume[KLINE_DEC_MAX];
    char    quote_volume[KLINE_DEC_MAX];
    int64_t trades;
    char    taker_buy_volume[KLINE_DEC_MAX];
    char    taker_buy_quote_volume[KLINE_DEC_MAX];
    int64_t first_trade_id;                /* -1 when absent / no trades */
    int64_t last_trade_id;                 /* -1 when absent / no trades */
    bool    closed;
    int64_t event_time;                    /* epoch ms; 0 when unknown (REST, CSV) */
    enum kline_source source;
} kline_t;

/*
 * Parse one input line/message of any accepted shape (autodetected):
 *   - the canonical record (source taken from its "source" field);
 *   - a Binance WS kline event, raw {"e":"kline",...} or combined {"stream":..,"data":{..}}  (source ws);
 *   - a REST /api/v3/klines 12-element array                                               (source rest);
 *   - a data.binance.vision CSV row, ms or µs timestamps                                    (source replay).
 * REST rows and CSV rows carry no symbol/interval: symbol_hint supplies the symbol (NULL →
 * rejected with a reason); a NULL interval_hint is inferred from close_time - open_time + 1
 * (fixed-length intervals only, so "1M" needs the hint). REST rows come back closed=true:
 * a caller that fetched up to "now" clears it on a row whose close_time is in the future.
 * Returns 0 and fills *k, or -1 with a short human reason in errbuf. Never crashes on any
 * bytes, of any length; input longer than KLINE_INPUT_MAX is rejected without parsing.
 */
int kline_parse(const char *buf, size_t len, const char *symbol_hint,
                const char *interval_hint, kline_t *k, char *errbuf, size_t errlen);

/* The fast first attempt of kline_parse alone (common/kline_fast.c): 0 and *k when buf
 * is a canonical record as kline_format writes it or a Binance WS kline event (raw or
 * combined) in the plain shape the exchange sends, giving exactly the kline_t
 * kline_parse gives; -1 means "not decided here", never "invalid": ask the full path
 * (kline_parse, or kline_json_load + kline_from_json). No allocation, no length limit. */
int kline_parse_fast(const char *buf, size_t len, kline_t *k);

/* The full path's JSON loader, with the codec's rules (duplicate keys refused): for a
 * caller that looks at the tree itself before kline_from_json. Caller json_decref()s. */
json_t *kline_json_load(const char *buf, size_t len, json_error_t *err);

/* Same, from already-parsed JSON (a WS event, combined wrapper, canonical object,
 * or REST row array). The caller keeps ownership of root. */
int kline_from_json(const json_t *root, const char *symbol_hint, const char *interval_hint,
                    kline_t *k, char *errbuf, size_t errlen);

/* One data.binance.vision CSV row (no newline needed). */
int kline_parse_csv(const char *buf, size_t len, const char *symbol, const char *interval,
                    kline_t *k, char *errbuf, size_t errlen);

/* Checks a filled kline: symbol/interval syntax, decimals, close_time >= open_time,
 * low <= open,close <= high (for trades > 0; a zero-trade kline has o=h=l=c), etc. */
int kline_validate(const kline_t *k, char *errbuf, size_t errlen);

/* Writes the canonical record as one JSON object (no trailing newline) into buf.
 * Returns its length, or -1 if len is too small (KLINE_JSON_MAX always suffices). */
int kline_format(const kline_t *k, char *buf, size_t len);

/* Exact decimal helpers on validated strings (no doubles). */
bool kline_dec_valid(const char *s);            /* [0-9]{1,20}(\.[0-9]{1,18})? */
int  kline_dec_cmp(const char *a, const char *b); /* <0, 0, >0 like strcmp, numerically */
bool kline_symbol_valid(const char *s);         /* [A-Z0-9]{1,20} */
bool kline_interval_valid(const char *s);       /* a Binance kline interval */
int64_t kline_interval_ms(const char *interval); /* 1000 for "1s"; 0 if unknown ("1M" → 0) */

const char *kline_source_name(enum kline_source s); /* "ws", "rest", "replay" */

#endif
