/* testclock.c — KP_TEST_CLOCK, the simulated wall clock of accelerated test runs.
 *
 * An accelerated kline-sim makes klines faster than real time, so their open times run
 * ahead of the wall clock: a soak of 24 simulated hours takes a few real hours. What a
 * program decides by "now" (retention's cut-off, the hour a partition is compacted, the
 * inserter's next-hour partition) must then follow the simulated clock, or nothing would
 * ever expire. KP_TEST_CLOCK=SIM_MS[@REAL_MS]:SPEED makes cfg_now_ms() return
 *
 *     SIM_MS + (real now - REAL_MS) x SPEED
 *
 * SIM_MS and REAL_MS are points in time as cfg_parse_time_ms reads them (epoch ms, ISO
 * 8601, "now"); without @REAL_MS the anchor is the first call in this process. Give
 * REAL_MS (the sim's own real start) and every process agrees on the simulated time
 * whenever it started. SPEED is a decimal in [0, 1e6]; 0 freezes the clock at SIM_MS.
 * Unset or empty: the real clock, exactly as in production. An invalid value makes
 * kp_opt_parse() refuse to start (exit 2), so a typo never runs on the real clock. */
#include "cfg.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cfg_test_clock tc_env;
static int tc_state;             /* 0 unset, 1 on, -1 invalid (tc_err) */
static char tc_err[256];
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

/* One point of the spec: "now" is real_now (cfg_parse_time_ms would ask cfg_now_ms). */
static int tc_point(const char *s, int64_t real_now, int64_t *ms, const char *what,
                    char *errbuf, size_t errlen)
{
    char err[200];
    if (strcmp(s, "now") == 0)
        return *ms = real_now, 0;
    if (cfg_parse_time_ms(s, ms, err, sizeof err) < 0)
        return snprintf(errbuf, errlen, "%s '%s': %s", what, s, err), -1;
    return 0;
}

int cfg_test_clock_parse(const char *spec, int64_t real_now_ms, struct cfg_test_clock *tc,
                         char *errbuf, size_t errlen)
{
    char buf[128], err[200];
    if (strlen(spec) >= sizeof buf)
        return snprintf(errbuf, errlen, "too long (expected SIM_MS[@REAL_MS]:SPEED)"), -1;
    strcpy(buf, spec);
    char *colon = strrchr(buf, ':'), *at = strchr(buf, '@');
    if (!colon || (at && at > colon))
        return snprintf(errbuf, errlen, "'%s': expected SIM_MS[@REAL_MS]:SPEED", spec), -1;
    *colon = '\0';
    struct cfg_test_clock t = { .real_ms = real_now_ms };
    if (cfg_parse_double(colon + 1, 0, 1e6, &t.speed, err, sizeof err) < 0)
        return snprintf(errbuf, errlen, "speed '%s': %s", colon + 1, err), -1;
    if (at) {
        *at = '\0';
        if (tc_point(at + 1, real_now_ms, &t.real_ms, "real anchor", errbuf, errlen) < 0)
            return -1;
    }
    if (tc_point(buf, real_now_ms, &t.sim_ms, "simulated start", errbuf, errlen) < 0)
        return -1;
    *tc = t;
    return 0;
}

int64_t cfg_test_clock_at(const struct cfg_test_clock *tc, int64_t real_ms)
{
    return tc->sim_ms + (int64_t)llround((double)(real_ms - tc->real_ms) * tc->speed);
}

static void tc_init(void)
{
    const char *s = getenv("KP_TEST_CLOCK");
    if (!s || !*s)
        return;
    tc_state = cfg_test_clock_parse(s, cfg_wall_ms(), &tc_env, tc_err, sizeof tc_err) == 0 ? 1 : -1;
}

int cfg_test_clock_check(char *errbuf, size_t errlen)
{
    pthread_once(&tc_once, tc_init);
    if (tc_state < 0)
        snprintf(errbuf, errlen, "%s", tc_err);
    return tc_state;
}

int64_t cfg_now_ms(void)
{
    int64_t real = cfg_wall_ms();
    pthread_once(&tc_once, tc_init);
    return tc_state == 1 ? cfg_test_clock_at(&tc_env, real) : real;
}
