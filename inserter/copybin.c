/* copybin.c — the direct COPY's rows in PostgreSQL's binary COPY format (the "Binary
 * Format" section of the COPY reference page): PostgreSQL then parses no text for them.
 * In text form the eight numerics and the timestamp of a row were most of what the server
 * spent per row (numeric_in, timestamptz_in); binary they are copied in as digits and
 * microseconds. The upsert path stays text (ins_stage): it is the rare one.
 *
 * Every value is big-endian, each field prefixed by its length (-1 = NULL). A numeric is
 * ndigits, weight, sign, dscale, then base-10,000 digits; the server strips leading and
 * trailing zero digits itself, and dscale (the decimals as written) keeps "1.50000000"
 * printing as it came, as numeric_in would. */
#include "ins.h"

#include <string.h>

#define INS_COPYBIN_PG_EPOCH_MS 946684800000LL /* 2000-01-01 00:00 UTC: timestamptz's zero */
#define INS_COPYBIN_FIELDS      14             /* INS_STORE_LEAN_COLS */

static unsigned char *ins_copybin_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

static unsigned char *ins_copybin_u32(unsigned char *p, uint32_t v)
{
    p = ins_copybin_u16(p, v >> 16);
    return ins_copybin_u16(p, v & 0xffff);
}

static unsigned char *ins_copybin_u64(unsigned char *p, uint64_t v)
{
    p = ins_copybin_u32(p, (uint32_t)(v >> 32));
    return ins_copybin_u32(p, (uint32_t)v);
}

/* A field of an integer type: its length, then the value. */
static unsigned char *ins_copybin_int(unsigned char *p, int bytes, int64_t v)
{
    p = ins_copybin_u32(p, (uint32_t)bytes);
    if (bytes == 2)
        return ins_copybin_u16(p, (unsigned)(uint16_t)v);
    if (bytes == 4)
        return ins_copybin_u32(p, (uint32_t)v);
    return ins_copybin_u64(p, (uint64_t)v);
}

/* The value of n <= 4 decimal digits. */
static unsigned ins_copybin_digits(const char *s, size_t n)
{
    unsigned d = 0;
    for (size_t i = 0; i < n; i++)
        d = d * 10 + (unsigned)(s[i] - '0');
    return d;
}

/* A numeric field from a decimal kline_validate passed: [0-9]{1,20}(.[0-9]{1,18})?. */
static unsigned char *ins_copybin_numeric(unsigned char *p, const char *s)
{
    const char *dot = strchr(s, '.');
    size_t ni = dot ? (size_t)(dot - s) : strlen(s);
    const char *frac = dot ? dot + 1 : s + ni;
    size_t nf = strlen(frac);
    size_t gi = (ni + 3) / 4, gf = (nf + 3) / 4, lead = ni - 4 * (gi - 1);
    p = ins_copybin_u32(p, (uint32_t)(8 + 2 * (gi + gf)));
    p = ins_copybin_u16(p, (unsigned)(gi + gf));
    p = ins_copybin_u16(p, (unsigned)(gi - 1)); /* weight: of the first digit */
    p = ins_copybin_u16(p, 0);                  /* sign: positive */
    p = ins_copybin_u16(p, (unsigned)nf);       /* dscale */
    static const unsigned scale[] = { 1, 1000, 100, 10, 1 }; /* fraction digits short of 4 */
    p = ins_copybin_u16(p, ins_copybin_digits(s, lead)); /* what is left over on the left */
    for (size_t g = 1; g < gi; g++)
        p = ins_copybin_u16(p, ins_copybin_digits(s + lead + 4 * (g - 1), 4));
    for (size_t g = 0; g < gf; g++) {
        size_t n = nf - 4 * g < 4 ? nf - 4 * g : 4;
        p = ins_copybin_u16(p, ins_copybin_digits(frac + 4 * g, n) * scale[n]);
    }
    return p;
}

size_t ins_copybin_header(unsigned char *out)
{
    static const unsigned char sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
    memcpy(out, sig, sizeof sig);
    unsigned char *p = ins_copybin_u32(out + sizeof sig, 0); /* flags: no OIDs */
    p = ins_copybin_u32(p, 0);                                /* no header extension */
    return (size_t)(p - out);
}

size_t ins_copybin_trailer(unsigned char *out)
{
    return (size_t)(ins_copybin_u16(out, 0xffff) - out);
}

size_t ins_copybin_lean(unsigned char *out, const kline_t *k, int32_t symbol_id)
{
    const char *dec[] = { k->open, k->high, k->low, k->close, k->volume, k->quote_volume,
                          k->taker_buy_volume, k->taker_buy_quote_volume };
    unsigned char *p = ins_copybin_u16(out, INS_COPYBIN_FIELDS);
    p = ins_copybin_int(p, 4, symbol_id);
    p = ins_copybin_int(p, 8, (k->open_time - INS_COPYBIN_PG_EPOCH_MS) * 1000);
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++)
        p = ins_copybin_numeric(p, dec[i]);
    p = ins_copybin_int(p, 4, k->trades);
    p = ins_copybin_int(p, 8, k->first_trade_id);
    p = ins_copybin_int(p, 2, (k->closed ? 1 : 0) | 2 * (int)k->source);
    if (k->event_time <= 0)
        return (size_t)(ins_copybin_u32(p, 0xffffffffu) - out); /* NULL */
    return (size_t)(ins_copybin_int(p, 4, k->event_time - k->open_time) - out);
}
