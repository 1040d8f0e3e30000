/*
 * kline_rules.h — inside the codec only (common/kline*.c, its tests and fuzz/): the one
 * set of rules both decoders apply, the full one (kline.c, jansson) and the fast one
 * (kline_fast.c, a one-pass scanner). Whatever differs between them is which inputs
 * each can read, never what a field may hold: the fast path reads a field with these
 * same functions and ranges, or leaves the whole input to the full path.
 *
 *   duplicate keys   refused (KLINE_JSON_FLAGS; the fast path leaves any repeat to it)
 *   integers         JSON integers only, in the field's range below
 *   decimals         strings [0-9]{1,20}(.[0-9]{1,18}), kept as text (kline_dec_copy)
 *   symbol           [A-Za-z0-9]{1,20}, upper-cased (kline_symbol_copy)
 *   interval         a Binance interval (kline_interval_copy)
 *   source           "ws", "rest" or "replay" (kline_source_from)
 */
#ifndef KLINE_RULES_H
#define KLINE_RULES_H

#include "kline.h"

/* jansson's flags for every kline document: parsers disagree on which of two "h" keys
 * wins, so a message with both is ambiguous and refused. */
#define KLINE_JSON_FLAGS JSON_REJECT_DUPLICATES

/* 9999-12-31T23:59:59.999Z: any later "epoch ms" is garbage (or µs in a field that must
 * be ms), and the bound keeps close_time - open_time + 1 from overflowing. */
#define KLINE_TIME_MAX INT64_C(253402300799999)

/* Integer ranges, as "min, max" argument pairs. */
#define KLINE_RANGE_TIME  INT64_C(0), KLINE_TIME_MAX /* open/close/event time, epoch ms */
#define KLINE_RANGE_COUNT INT64_C(0), INT64_MAX      /* trades */
#define KLINE_RANGE_ID    INT64_C(-1), INT64_MAX     /* trade ids; -1 = none */

/* Field copies: 0, or -1 with "label: why" in errbuf (errbuf may be NULL). */
int kline_symbol_copy(const char *s, size_t n, char dst[KLINE_SYMBOL_MAX], const char *label,
                      char *errbuf, size_t errlen);
int kline_interval_copy(const char *s, size_t n, char dst[KLINE_INTERVAL_MAX],
                        const char *label, char *errbuf, size_t errlen);
int kline_dec_copy(const char *s, size_t n, char dst[KLINE_DEC_MAX], const char *label,
                   char *errbuf, size_t errlen);
int kline_source_from(const char *s, size_t n, enum kline_source *out); /* 0 or -1 */

/* kline_parse without its fast first attempt: what the fast path is checked against. */
int kline_parse_full(const char *buf, size_t len, const char *symbol_hint,
                     const char *interval_hint, kline_t *k, char *errbuf, size_t errlen);

#endif
