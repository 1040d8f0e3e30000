/* cfg.h — configuration helpers: flags > environment > defaults; usage errors exit 2. */
#ifndef CFG_H
#define CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Environment value if set and non-empty, else def. */
const char *cfg_env(const char *name, const char *def);

/* Strict integer parse of the whole string; 0 ok, -1 on garbage or out of [min,max]. */
int cfg_parse_ll(const char *s, long long min, long long max, long long *out);
/* Like cfg_parse_ll for an environment variable; missing → def. Bad value → usage error. */
long long cfg_env_ll(const char *name, long long def, long long min, long long max);

/* "HOST:PORT" or ":PORT" or "PORT" → host (may be empty → NULL) and port. 0 / -1. */
int cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Splits "a,b,c" (spaces trimmed, empties skipped) into a NULL-terminated array.
 * The caller owns the result and frees it with cfg_list_free. Returns the count. */
int  cfg_split_list(const char *csv, char ***out);
void cfg_list_free(char **list);

/* Prints "prog: reason" and the synopsis to stderr, exits 2. */
void cfg_usage_error(const char *prog, const char *synopsis, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Prints the program version and the linked library versions (--version). */
void cfg_print_versions(FILE *out, const char *prog);

#define KLINEPIPE_VERSION "0.1.0"

/* Command-line times and durations (cfgtime.c). Each returns 0, or -1 with the reason
 * (without the option name) in errbuf. */

/* A point in time → epoch ms: "now"; ISO 8601 "2026-11-22", "2026-11-22T13:00[:05[.250]]"
 * with "Z" or "+HH[:MM]" (no zone = UTC); "1789499996s" (seconds); "1789499996000ms" or a
 * bare "1789499996000" (ms). A bare integer below 1e11 (1973 in ms) is refused as
 * "looks like seconds": read as ms it would mean 1970. Nothing after 2100. */
int cfg_parse_time_ms(const char *s, int64_t *ms, char *errbuf, size_t errlen);

/* A duration "<digits>[.<digits>]<unit>" → ms, where unit is one of the space-separated
 * names in units (from "ms s m h d w"); no unit means bare_unit_ms per unit (0 = a unit
 * is required). No sign, exponent, nan or inf; more than max_ms is an error. */
int cfg_parse_duration_ms(const char *s, const char *units, double bare_unit_ms, int64_t max_ms,
                          int64_t *ms, char *errbuf, size_t errlen);

/* A finite decimal number in [min, max] ("1", "0.5", "-2.25"; not nan, inf, 1e3, 0x10). */
int cfg_parse_double(const char *s, double min, double max, double *out, char *errbuf, size_t errlen);

/* Time helpers (milliseconds). */
int64_t cfg_now_ms(void);       /* wall clock, epoch ms; KP_TEST_CLOCK's when set */
int64_t cfg_wall_ms(void);      /* the real wall clock, epoch ms, whatever KP_TEST_CLOCK says */
int64_t cfg_mono_ms(void);      /* monotonic ms */
int64_t cfg_mono_us(void);      /* monotonic µs */

/* KP_TEST_CLOCK=SIM_MS[@REAL_MS]:SPEED (testclock.c): cfg_now_ms() returns
 * SIM_MS + (real now - REAL_MS) x SPEED, for accelerated test runs. */
struct cfg_test_clock {
    int64_t sim_ms;  /* simulated time at real_ms */
    int64_t real_ms; /* the real anchor (epoch ms) */
    double speed;    /* simulated ms per real ms; 0 = frozen */
};
/* Parses a spec; a missing @REAL_MS (and "now") is real_now_ms. 0, or -1 with errbuf. */
int cfg_test_clock_parse(const char *spec, int64_t real_now_ms, struct cfg_test_clock *tc,
                         char *errbuf, size_t errlen);
/* The simulated time at a real time. */
int64_t cfg_test_clock_at(const struct cfg_test_clock *tc, int64_t real_ms);
/* KP_TEST_CLOCK of this process: 0 unset, 1 in use, -1 invalid (the reason in errbuf). */
int cfg_test_clock_check(char *errbuf, size_t errlen);

#endif
