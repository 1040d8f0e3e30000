/* faults.c — the fault knobs behind /control/<name>?... and the stats counters. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Finds name=value in "a=1&b=2"; copies value. */
static bool qarg(const char *q, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = q;
    while (p && *p) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1, *e = strchr(v, '&');
            size_t l = e ? (size_t)(e - v) : strlen(v);
            snprintf(out, outlen, "%.*s", (int)l, v);
            return true;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return false;
}

static int qnum(const char *q, const char *name, double def, double *out)
{
    char v[64], *e;
    if (!qarg(q, name, v, sizeof v)) {
        *out = def;
        return 0;
    }
    double d = strtod(v, &e);
    if (!*v || *e || d < 0)
        return -1;
    *out = d;
    return 0;
}

int sim_stats_json(char *out, size_t outlen)
{
    const sim_stats_t *s = &g_sim.st;
    const sim_faults_t *f = &g_sim.ft;
    int64_t now = sim_now_ms();
    return snprintf(out, outlen,
        "{\"connections\":%llu,\"connections_total\":%llu,\"connections_refused\":%llu,"
        "\"connections_closed_by_sim\":%llu,\"overflow_closes\":%llu,\"rate_limit_closes\":%llu,"
        "\"pong_timeouts\":%llu,\"klines_sent\":%llu,\"provisional_sent\":%llu,\"control_sent\":%llu,"
        "\"pings_sent\":%llu,\"pongs_received\":%llu,\"malformed_sent\":%llu,\"oversized_sent\":%llu,"
        "\"duplicates_sent\":%llu,\"reordered\":%llu,\"shutdowns_sent\":%llu,\"ws_requests\":%llu,"
        "\"ws_errors\":%llu,\"rest_requests\":%llu,\"rest_429\":%llu,\"rest_418\":%llu,\"rest_errors\":%llu,"
        "\"bytes_sent\":%llu,\"generated_seconds\":%lld,\"start_ms\":%lld,\"real0_ms\":%lld,\"latest_open_time\":%lld,"
        "\"stalled\":%s,\"refusing\":%s,\"pending\":{\"malformed\":%lld,\"oversized\":%lld,\"duplicate\":%lld,"
        "\"reorder\":%lld,\"rest429\":%lld,\"rest418\":%lld}}",
        (unsigned long long)s->conns_open, (unsigned long long)s->conns_total,
        (unsigned long long)s->conns_refused, (unsigned long long)s->conns_closed_by_sim,
        (unsigned long long)s->overflow_closes, (unsigned long long)s->rate_limit_closes,
        (unsigned long long)s->pong_timeouts, (unsigned long long)s->klines_sent,
        (unsigned long long)s->provisional_sent, (unsigned long long)s->control_sent,
        (unsigned long long)s->pings_sent, (unsigned long long)s->pongs_received,
        (unsigned long long)s->malformed_sent, (unsigned long long)s->oversized_sent,
        (unsigned long long)s->duplicates_sent, (unsigned long long)s->reordered,
        (unsigned long long)s->shutdowns_sent, (unsigned long long)s->ws_requests,
        (unsigned long long)s->ws_errors, (unsigned long long)s->rest_requests,
        (unsigned long long)s->rest_429, (unsigned long long)s->rest_418, (unsigned long long)s->rest_errors,
        (unsigned long long)s->bytes_sent, (long long)g_sim.gen_next, (long long)g_sim.cfg.start_ms, (long long)g_sim.real0_ms,
        (long long)(g_sim.gen_next ? sim_open_time(g_sim.gen_next - 1) : -1),
        now < f->stall_until_ms ? "true" : "false", now < f->refuse_until_ms ? "true" : "false",
        (long long)f->malformed, (long long)f->oversized, (long long)f->duplicate, (long long)f->reorder,
        (long long)f->rest429, (long long)f->rest418);
}

int sim_control(const char *name, const char *query, char *out, size_t outlen)
{
    sim_faults_t *f = &g_sim.ft;
    int64_t now = sim_now_ms();
    double secs, n;
    if (qnum(query, "secs", 5, &secs) < 0 || qnum(query, "n", 1, &n) < 0) {
        snprintf(out, outlen, "{\"error\":\"secs and n must be non-negative numbers\"}");
        return 400;
    }
    if (strcmp(name, "stats") == 0) {
        sim_stats_json(out, outlen);
        return 200;
    }
    if (strcmp(name, "close") == 0) {
        char v[8] = "";
        qarg(query, "abrupt", v, sizeof v);
        f->close_abrupt = v[0] == '1' || v[0] == 't';
        f->close_epoch++;
        sim_ws_kick();
    } else if (strcmp(name, "shutdown") == 0) {
        f->shutdown_epoch++;
        sim_ws_kick();
    } else if (strcmp(name, "stall") == 0) {
        f->stall_until_ms = now + (int64_t)(secs * 1000);
        f->stall_epoch++;
    } else if (strcmp(name, "refuse") == 0) {
        f->refuse_until_ms = now + (int64_t)(secs * 1000);
    } else if (strcmp(name, "malformed") == 0) {
        f->malformed += (int64_t)n;
    } else if (strcmp(name, "oversized") == 0) {
        f->oversized += (int64_t)n;
    } else if (strcmp(name, "duplicate") == 0) {
        f->duplicate += (int64_t)n;
    } else if (strcmp(name, "reorder") == 0) {
        f->reorder += (int64_t)n;
    } else if (strcmp(name, "rest429") == 0) {
        f->rest429 += (int64_t)n;
    } else if (strcmp(name, "rest418") == 0) {
        f->rest418 += (int64_t)n;
    } else if (strcmp(name, "reset") == 0) {
        f->stall_until_ms = f->refuse_until_ms = 0;
        f->malformed = f->oversized = f->duplicate = f->reorder = f->rest429 = f->rest418 = 0;
    } else if (strcmp(name, "dump") == 0) {
        char path[1024], err[256];
        if (!qarg(query, "path", path, sizeof path)) {
            if (!g_sim.cfg.dump_truth) {
                snprintf(out, outlen, "{\"error\":\"no --dump-truth file and no path= given\"}");
                return 400;
            }
            snprintf(path, sizeof path, "%s", g_sim.cfg.dump_truth);
        }
        if (sim_truth_dump_file(path, err, sizeof err) < 0) {
            snprintf(out, outlen, "{\"error\":\"dump failed\"}");
            sim_log("error", "truth dump: %s", err);
            return 500;
        }
        snprintf(out, outlen, "{\"ok\":true,\"generated_seconds\":%lld}", (long long)g_sim.gen_next);
        return 200;
    } else {
        snprintf(out, outlen, "{\"error\":\"unknown control\",\"known\":[\"close\",\"shutdown\",\"stall\","
                 "\"refuse\",\"malformed\",\"oversized\",\"duplicate\",\"reorder\",\"rest429\",\"rest418\","
                 "\"reset\",\"dump\",\"stats\"]}");
        return 404;
    }
    sim_log("info", "control: %s %s", name, query);
    snprintf(out, outlen, "{\"ok\":true,\"control\":\"%s\",\"generated_seconds\":%lld,\"latest_open_time\":%lld}",
             name, (long long)g_sim.gen_next, (long long)(g_sim.gen_next ? sim_open_time(g_sim.gen_next - 1) : -1));
    return 200;
}
