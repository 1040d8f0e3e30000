/* cfgtime.c — command-line times and durations (cfg.h). Strict: the whole string must
 * be one of the documented forms, so nan, inf, exponents, hex and blanks are errors
 * (strtod would accept them all). */
#include "cfg.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CFG_TIME_MAX_MS 4102444800000LL /* 2100-01-01: later is a typo, not a kline */
#define CFG_TIME_SECONDS_BELOW 100000000000LL /* 1e11 ms is 1973; 1e11 s is year 5138 */

/* Leading decimal digits (at least one, at most 18 so they fit) → *v; returns the rest. */
static const char *cfg_digits(const char *s, long long *v)
{
    const char *p = s;
    long long n = 0;
    while (isdigit((unsigned char)*p) && p - s < 18)
        n = n * 10 + (*p++ - '0');
    if (p == s || isdigit((unsigned char)*p))
        return NULL;
    *v = n;
    return p;
}

/* "<digits>", "<digits>s" or "<digits>ms" → 0 and *ms; 1 = not this form; -1 = error. */
static int cfg_epoch_number(const char *s, int64_t *ms, char *errbuf, size_t errlen)
{
    long long v;
    const char *unit = cfg_digits(s, &v);
    if (!unit)
        return isdigit((unsigned char)*s) ? (snprintf(errbuf, errlen, "too many digits"), -1) : 1;
    long long mul;
    if (strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "s") == 0)
        mul = 1000;
    else if (*unit == '\0') {
        if (v < CFG_TIME_SECONDS_BELOW) {
            /* A bare epoch in seconds read as ms lands in 1970: a silent 50-year backfill. */
            snprintf(errbuf, errlen, "looks like seconds; write %llds or %lld%s (ms)", v, v * 1000,
                     v * 1000 < CFG_TIME_SECONDS_BELOW ? "ms" : "");
            return -1;
        }
        mul = 1;
    } else
        return 1; /* maybe ISO 8601 (2026-...) */
    if (v > CFG_TIME_MAX_MS / mul) {
        snprintf(errbuf, errlen, "after the year 2100");
        return -1;
    }
    *ms = v * mul;
    return 0;
}

/* "+HH:MM", "+HHMM", "+HH" (or '-') → seconds east of UTC; NULL on bad syntax. */
static const char *cfg_utc_offset(const char *p, int64_t *offset_s)
{
    int sign = *p == '+' ? 1 : -1;
    p++;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
        return NULL;
    int hh = (p[0] - '0') * 10 + (p[1] - '0'), mm = 0;
    p += 2;
    if (*p == ':')
        p++;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
        mm = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
    }
    if (hh > 23 || mm > 59)
        return NULL;
    *offset_s = sign * (int64_t)(hh * 3600 + mm * 60);
    return p;
}

/* "HH:MM[:SS[.fff]]" after the 'T' → fills tm and *frac_ms; NULL on bad syntax. */
static const char *cfg_clock_time(const char *p, struct tm *tm, int64_t *frac_ms)
{
    p = strptime(p, "%H:%M", tm);
    if (p && *p == ':') {
        p = strptime(p + 1, "%S", tm);
        if (p && *p == '.') {
            int64_t scale = 100;
            for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                *frac_ms += (*p - '0') * scale;
        }
    }
    return p;
}

static int cfg_iso8601(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int64_t frac_ms = 0, offset_s = 0;
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    if (p && (*p == 'T' || *p == ' ')) {
        p = cfg_clock_time(p + 1, &tm, &frac_ms);
        if (p && *p == 'Z')
            p++;
        else if (p && (*p == '+' || *p == '-'))
            p = cfg_utc_offset(p, &offset_s);
    }
    if (!p || *p)
        return -1;
    *ms = ((int64_t)timegm(&tm) - offset_s) * 1000 + frac_ms;
    return 0;
}

int cfg_parse_time_ms(const char *s, int64_t *ms, char *errbuf, size_t errlen)
{
    if (!s || !*s) {
        snprintf(errbuf, errlen, "empty time");
        return -1;
    }
    if (strcmp(s, "now") == 0) {
        *ms = cfg_now_ms();
        return 0;
    }
    int rc = cfg_epoch_number(s, ms, errbuf, errlen);
    if (rc <= 0)
        return rc;
    if (cfg_iso8601(s, ms) == 0 && *ms >= 0 && *ms <= CFG_TIME_MAX_MS)
        return 0;
    snprintf(errbuf, errlen, "expected epoch ms (1789499996000), seconds with a unit (1789499996s), "
                             "ISO 8601 (2026-11-22T13:00:00Z) or now");
    return -1;
}

/* Is u one of the space-separated names in units? */
static bool cfg_unit_allowed(const char *u, const char *units)
{
    size_t n = strlen(u);
    for (const char *p = units; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, u, n) == 0)
            return true;
        p += len;
        p += strspn(p, " ");
    }
    return false;
}

/* Unit suffix → ms per unit; 0 when unknown or not allowed. No unit: bare_unit_ms. */
static double cfg_unit_ms(const char *u, const char *units, double bare_unit_ms)
{
    static const struct { const char *name; double ms; } tab[] = {
        { "ms", 1 }, { "s", 1e3 }, { "m", 6e4 }, { "h", 3.6e6 }, { "d", 8.64e7 }, { "w", 6.048e8 },
    };
    if (*u == '\0')
        return bare_unit_ms;
    if (!cfg_unit_allowed(u, units))
        return 0;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(u, tab[i].name) == 0)
            return tab[i].ms;
    return 0;
}

int cfg_parse_duration_ms(const char *s, const char *units, double bare_unit_ms, int64_t max_ms,
                          int64_t *ms, char *errbuf, size_t errlen)
{
    long long whole;
    const char *p = s ? cfg_digits(s, &whole) : NULL;
    if (!p) {
        snprintf(errbuf, errlen, "expected a number with a unit (%s)", units);
        return -1;
    }
    double frac = 0, scale = 0.1;
    if (*p == '.') {
        if (!isdigit((unsigned char)p[1])) {
            snprintf(errbuf, errlen, "expected digits after the decimal point");
            return -1;
        }
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    double mul = cfg_unit_ms(p, units, bare_unit_ms);
    if (mul <= 0) {
        snprintf(errbuf, errlen, "unknown unit '%s' (one of: %s%s)", p, units,
                 bare_unit_ms > 0 ? ", or none" : "");
        return -1;
    }
    double v = ((double)whole + frac) * mul;
    if (v > (double)max_ms) {
        snprintf(errbuf, errlen, "too large (at most %lld ms)", (long long)max_ms);
        return -1;
    }
    *ms = (int64_t)v;
    return 0;
}

int cfg_parse_double(const char *s, double min, double max, double *out, char *errbuf, size_t errlen)
{
    /* strtod alone would take "nan", "inf", "0x1p3" and leading blanks */
    bool ok = s && *s;
    for (const char *p = s; ok && *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-' && *p != '+')
            ok = false;
    char *end = NULL;
    double v = ok ? strtod(s, &end) : 0;
    if (!ok || end == s || *end || !isfinite(v)) {
        snprintf(errbuf, errlen, "expected a decimal number");
        return -1;
    }
    if (v < min || v > max) {
        snprintf(errbuf, errlen, "expected a number in [%g, %g]", min, max);
        return -1;
    }
    *out = v;
    return 0;
}
