/* log.c — stderr logging: one line per event, written with a single write(2) so lines
 * from several threads never interleave. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "klinepipe";
static int log_level = LOG_LVL_INFO;
static const char *const log_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void log_init(const char *prog, int level)
{
    log_prog = prog;
    log_level = level;
}

int log_level_get(void) { return log_level; }

int log_level_parse(const char *name)
{
    if (!name || !*name)
        return -1;
    for (int i = 0; i <= LOG_LVL_DEBUG; i++)
        if (strcasecmp(name, log_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_prog, (int)getpid(),
                     log_names[level < 0 ? 0 : level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still one line */
    /* A message must stay on its own line even if it carried newlines. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_LVL_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

const char *log_excerpt(const void *buf, size_t len, size_t max, char *out, size_t outlen)
{
    const unsigned char *p = buf;
    size_t n = 0;
    if (outlen == 0)
        return out;
    size_t take = len < max ? len : max;
    for (size_t i = 0; i < take && n + 1 < outlen; i++)
        out[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    if (take < len)
        for (int i = 0; i < 3 && n + 1 < outlen; i++)
            out[n++] = '.';
    out[n] = '\0';
    return out;
}
