/*
 * fuzz_client_msg.c — libFuzzer target for the streamer's client message parser
 * (streamer/proto.c: st_proto_parse_client).
 *
 * Every input is parsed with a few symbol limits (0, 1, the default 256). An accepted
 * message must satisfy what client.c relies on without checking: a known op, at most
 * the limit of symbols, each "*" or [A-Z0-9]{1,20}, wildcard set exactly when "*" is
 * present; a refused one must leave an empty message and a printable ASCII reason
 * (it is sent to the client inside a JSON string). Anything else aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz_client_msg: %s\n", what);
    abort();
}

static void fuzz_check_reason(const char *err)
{
    size_t n = strlen(err);
    if (n == 0 || n >= 200)
        fuzz_die("error reason empty or too long");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e)
            fuzz_die("error reason is not printable ASCII");
}

static void fuzz_check_symbol(const char *s, bool *star)
{
    size_t n = strnlen(s, KLINE_SYMBOL_MAX);
    if (n == 0 || n > ST_PROTO_SYMBOL_LEN)
        fuzz_die("symbol length out of range");
    if (n == 1 && s[0] == '*') {
        *star = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            fuzz_die("accepted a symbol outside [A-Z0-9]");
}

static void fuzz_one(const uint8_t *data, size_t size, int max)
{
    struct st_proto_msg m;
    char err[200] = "";
    int rc = st_proto_parse_client((const char *)data, size, max, &m, err, sizeof err);
    if (rc < 0) {
        fuzz_check_reason(err);
        if (m.symbols || m.nsymbols || m.op != ST_OP_NONE)
            fuzz_die("a refused message is not left empty");
        st_proto_msg_free(&m);
        return;
    }
    if (rc != 0)
        fuzz_die("return code neither 0 nor -1");
    switch (m.op) {
    case ST_OP_SUBSCRIBE:
    case ST_OP_UNSUBSCRIBE: {
        if (m.nsymbols < 0 || m.nsymbols > max || (m.nsymbols && !m.symbols))
            fuzz_die("symbol count out of range");
        bool star = false;
        for (int i = 0; i < m.nsymbols; i++)
            fuzz_check_symbol(m.symbols[i], &star);
        if (star != m.wildcard)
            fuzz_die("wildcard flag disagrees with the symbols");
        if (m.has_id)
            fuzz_die("id outside ping");
        break;
    }
    case ST_OP_PING:
        if (m.nsymbols || m.symbols || m.wildcard)
            fuzz_die("symbols on a ping");
        break;
    default:
        fuzz_die("accepted without an op");
    }
    st_proto_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size, 256);
    fuzz_one(data, size, 1);
    fuzz_one(data, size, 0);
    return 0;
}
