/* cfg.c — flags > environment > defaults, strict number parsing, usage errors, versions. */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <libwebsockets.h>

const char *cfg_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int cfg_parse_ll(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || end == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

long long cfg_env_ll(const char *name, long long def, long long min, long long max)
{
    const char *v = cfg_env(name, NULL);
    long long out;
    if (!v)
        return def;
    if (cfg_parse_ll(v, min, max, &out) < 0) {
        fprintf(stderr, "environment variable %s=%s: expected an integer in [%lld, %lld]\n",
                name, v, min, max);
        exit(2);
    }
    return out;
}

int cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    if (!s || !*s || hostlen == 0)
        return -1;
    const char *colon = strrchr(s, ':');
    const char *ps = colon ? colon + 1 : s;
    size_t hl = colon ? (size_t)(colon - s) : 0;
    /* [::1]:8080 */
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl >= hostlen)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    long long p;
    if (cfg_parse_ll(ps, 0, 65535, &p) < 0)
        return -1;
    *port = (int)p;
    return 0;
}

int cfg_split_list(const char *csv, char ***out)
{
    int cap = 8, n = 0;
    char **list = malloc(sizeof(char *) * (size_t)(cap + 1));
    if (!list)
        return -1;
    const char *p = csv ? csv : "";
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        if (end == start)
            continue;
        if (n == cap) {
            cap *= 2;
            char **nl = realloc(list, sizeof(char *) * (size_t)(cap + 1));
            if (!nl) {
                list[n] = NULL;
                cfg_list_free(list);
                return -1;
            }
            list = nl;
        }
        list[n++] = strndup(start, (size_t)(end - start));
    }
    list[n] = NULL;
    *out = list; /* caller frees with cfg_list_free */
    return n;
}

void cfg_list_free(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

void cfg_usage_error(const char *prog, const char *synopsis, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", synopsis);
    exit(2);
}

void cfg_print_versions(FILE *out, const char *prog)
{
    int pqv = PQlibVersion();
    fprintf(out, "%s %s\n", prog, KLINEPIPE_VERSION);
    fprintf(out, "  librdkafka     %s\n", rd_kafka_version_str());
    fprintf(out, "  libwebsockets  %s\n", lws_get_library_version());
    fprintf(out, "  libpq          %d.%d\n", pqv / 10000, pqv % 10000);
    fprintf(out, "  jansson        %s\n", jansson_version_str());
    fprintf(out, "  libcurl        %s\n", curl_version_info(CURLVERSION_NOW)->version);
}

static int64_t cfg_clock(clockid_t id, int64_t div)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * (1000000000 / div) + ts.tv_nsec / div;
}

int64_t cfg_wall_ms(void) { return cfg_clock(CLOCK_REALTIME, 1000000); }
int64_t cfg_mono_ms(void) { return cfg_clock(CLOCK_MONOTONIC, 1000000); }
int64_t cfg_mono_us(void) { return cfg_clock(CLOCK_MONOTONIC, 1000); }
