/*
 * proto.h — the streamer's parsers of outside input, as pure functions: a client's
 * WebSocket message (JSON → struct st_proto_msg) and the /api/klines query string
 * (→ struct st_db_req). No libwebsockets, no libpq: only jansson and the kline codec's
 * symbol rules, so libFuzzer targets (fuzz/fuzz_client_msg.c, fuzz/fuzz_api_query.c) and
 * unit tests link proto.c alone. Error texts are plain ASCII of our own (they never echo
 * input bytes); callers escape them for JSON.
 */
#ifndef ST_PROTO_H
#define ST_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kline.h"

#define ST_PROTO_SYMBOL_LEN   20                /* [A-Za-z0-9]{1,20} */
#define ST_PROTO_TIME_MAX     253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define ST_PROTO_LIMIT_DEFAULT 500
#define ST_PROTO_LIMIT_MAX    5000              /* rows per answer */
#define ST_PROTO_LIMIT_ASK_MAX 1000000          /* larger asks are refused, up to it capped */
#define ST_PROTO_QUERY_ARGS   16                /* parameters per query string */
#define ST_PROTO_QUERY_ARG_LEN 200              /* bytes per decoded name=value */

/* An /api/klines request (also used by hub.c for SMA seed queries). */
struct st_db_req {
    char symbol[KLINE_SYMBOL_MAX];
    char interval[KLINE_INTERVAL_MAX];
    int64_t from, to;           /* epoch ms, inclusive bounds on open_time */
    bool has_from;
    int limit;
};

/* The table of an interval from the allow-list (never built from input), NULL if the
 * interval is not served; *rollup: the table has row_count (may be NULL). */
const char *st_proto_interval_table(const char *interval, bool *rollup);

/* Fills *out from decoded "name=value" arguments (as libwebsockets splits and
 * percent-decodes a query string; args[i] need not be NUL-terminated, lens[i] bytes).
 * 0: valid; -1: a 400 with the reason in err. */
int st_proto_parse_klines_args(const char *const *args, const size_t *lens, int n,
                               struct st_db_req *out, char *err, size_t errlen);

/* The same from a raw query string (what follows '?', without it): split at '&',
 * '+' is a space, %XX is decoded; a bad escape is a 400. */
int st_proto_parse_klines_query(const char *qs, size_t len, struct st_db_req *out, char *err,
                                size_t errlen);

enum st_proto_op { ST_OP_NONE = 0, ST_OP_SUBSCRIBE, ST_OP_UNSUBSCRIBE, ST_OP_PING };

/* A parsed client message. */
struct st_proto_msg {
    enum st_proto_op op;
    /* subscribe/unsubscribe: the symbols in request order, upper case, "*" kept as is
     * (malloc'd, owned by the message: st_proto_msg_free) */
    char (*symbols)[KLINE_SYMBOL_MAX];
    int nsymbols;
    bool wildcard;              /* "*" is among them */
    bool has_id;                /* ping: an integer "id" to echo */
    long long id;
};

/* Parses one client message of len bytes (not NUL-terminated) allowing at most
 * max_symbols symbols per request. 0: *out filled (free it with st_proto_msg_free);
 * -1: a protocol violation (the caller replies with err and counts a strike), *out is
 * left empty (freeing it is harmless). */
int st_proto_parse_client(const char *buf, size_t len, int max_symbols, struct st_proto_msg *out,
                          char *err, size_t errlen);
void st_proto_msg_free(struct st_proto_msg *m);

#endif
