/* log.h — one line per event on stderr: time, program, level, message. Thread-safe. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* prog is kept by pointer: pass a string literal or argv[0]-lifetime string. */
void log_init(const char *prog, int level);
int  log_level_parse(const char *name);         /* "error".."debug" → level, -1 if unknown */
int  log_level_get(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);
/* Start-up only: logs at error level and exits 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level_get() >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

/* Copies at most max bytes of buf into a printable excerpt (non-printables as '?'),
 * with "..." when cut. For logging bad input without flooding the log. */
const char *log_excerpt(const void *buf, size_t len, size_t max, char *out, size_t outlen);

#endif
