/* opt.h — one option table per program gives parsing, the environment override, --help,
 * the man page and the docs' option tables (in the spirit of redis's config table).
 *
 * Precedence: command line > environment > the table's default. A default is written as a
 * user would type it and goes through the same parser, so the help shows what is applied. */
#ifndef KP_OPT_H
#define KP_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    KP_OPT_END = 0,
    KP_OPT_SECTION, /* a heading in --help: .help is its title */
    KP_OPT_FLAG,    /* bool; from the environment: 1/0, true/false, yes/no, on/off */
    KP_OPT_STR,     /* const char * pointing into argv, environ or the table */
    KP_OPT_INT,     /* int or long long (by .size), in [min, max], stored times .scale */
    KP_OPT_DOUBLE,  /* double in [dmin, dmax]: finite decimal, no exponent */
    KP_OPT_DUR,     /* int64_t ms in [min, max]: "<number><unit>", units .units, a bare number .bare_ms each */
    KP_OPT_TIME,    /* int64_t epoch ms: ISO 8601, now, 123s, 123ms (see cfg_parse_time_ms) */
    KP_OPT_CHOICE,  /* int: index of the value in .choices ("uv|poll") */
    KP_OPT_CALL,    /* .call(value, .dest) parses and stores; repeatable (-X k=v); a .def goes
                     * through .call too (a repeatable row has none) */
} kp_opt_type_t;

enum {
    KP_OPT_EMPTY_OK = 1 << 0, /* STR: an empty value (also from the environment) is a value, not "unset" */
    KP_OPT_HIDDEN = 1 << 1,   /* parsed, left out of --help (old names are aliases, not hidden) */
};

typedef int (*kp_opt_call_fn)(const char *value, void *dest, char *errbuf, size_t errlen);

typedef struct kp_opt {
    kp_opt_type_t type;
    const char *name;  /* long name without dashes */
    int key;           /* short option letter, 0 = none */
    const char *arg;   /* value placeholder in --help ("N", "LIST"); NULL for flags */
    const char *env;   /* environment variable, NULL = none */
    const char *def;   /* default as typed by a user, NULL = unset (STR: NULL) */
    const char *help;  /* what it does; '\n' starts a continuation line */
    void *dest;
    size_t size;       /* INT: sizeof *dest (4 or 8) */
    long long min, max;
    double dmin, dmax;
    long long scale;   /* INT: stored = given × scale (0 means 1) */
    const char *units; /* DUR: allowed units, from "ms s m h d w" */
    double bare_ms;    /* DUR: a bare number counts this many ms, 0 = a unit is required */
    const char *choices;
    kp_opt_call_fn call;
    const char *alias; /* an older long name, still accepted */
    int flags;
    const char *range_hint; /* DUR, DOUBLE, CALL: what a valid value looks like, for errors */
} kp_opt_t;

typedef struct kp_opt_prog {
    const char *name;     /* "kline-producer" */
    const char *summary;  /* one line: what the program does (NAME line of the man page) */
    const char *synopsis; /* "usage: ..." lines, each ending in '\n' */
    const char *intro;    /* paragraph after the summary in --help, NULL = none */
    const char *epilog;   /* exit codes etc. after the options, NULL = none */
    const kp_opt_t *opts; /* ends with an entry of type KP_OPT_END */
} kp_opt_prog_t;

typedef enum { KP_OPT_FMT_TEXT, KP_OPT_FMT_MAN, KP_OPT_FMT_MARKDOWN } kp_opt_fmt_t;

/* Applies defaults, then the environment, then argv. -h/--help[=text|man|markdown] and
 * -V/--version print and exit 0; a bad value or unknown option prints the reason and the
 * synopsis and exits 2. Returns the index of the first operand (none are accepted unless
 * allow_operands). */
int kp_opt_parse(const kp_opt_prog_t *prog, int argc, char **argv, bool allow_operands);

/* Same, but returns -1 with the reason in errbuf instead of exiting (for tests), and
 * never prints help or versions (returns -2 for those). */
int kp_opt_parse_r(const kp_opt_prog_t *prog, int argc, char **argv, bool allow_operands,
                   char *errbuf, size_t errlen);

/* --help in the given format. */
void kp_opt_help(const kp_opt_prog_t *prog, FILE *out, kp_opt_fmt_t fmt);

/* "prog: reason" and the synopsis to stderr, exit 2: for checks across options. */
void kp_opt_usage_error(const kp_opt_prog_t *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Shorthands for table rows: destination and its size in one go. */
#define KP_OPT_INT_DEST(x) .dest = &(x), .size = sizeof(x)

#endif
