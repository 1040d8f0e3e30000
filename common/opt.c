/* opt.c — the table-driven option parser (see opt.h). */
#include "opt.h"
#include "cfg.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPT_HELP_KEY 0x10001
#define OPT_VERSION_KEY 0x10002
#define OPT_LONG_BASE 0x20000 /* getopt value of a long-only option: base + table index */

static bool opt_takes_value(const kp_opt_t *o)
{
    return o->type != KP_OPT_FLAG && o->type != KP_OPT_SECTION;
}

static bool opt_is_option(const kp_opt_t *o)
{
    return o->type != KP_OPT_SECTION && o->type != KP_OPT_END;
}

static int opt_store_int(const kp_opt_t *o, const char *v, char *err, size_t errlen)
{
    long long x;
    if (cfg_parse_ll(v, o->min, o->max, &x) < 0) {
        snprintf(err, errlen, "expected an integer in [%lld, %lld]", o->min, o->max);
        return -1;
    }
    x *= o->scale ? o->scale : 1;
    if (o->size == sizeof(int))
        *(int *)o->dest = (int)x;
    else
        *(long long *)o->dest = x;
    return 0;
}

/* DUR: the shared grammar, then the table's lower bound (.min, in ms) if it has one. */
static int opt_store_dur(const kp_opt_t *o, const char *v, char *err, size_t errlen)
{
    if (cfg_parse_duration_ms(v, o->units, o->bare_ms, o->max, o->dest, err, errlen) < 0)
        return -1;
    if (*(int64_t *)o->dest >= o->min)
        return 0;
    snprintf(err, errlen, "too small (at least %lld ms)", o->min);
    return -1;
}

static int opt_store_flag(const kp_opt_t *o, const char *v, char *err, size_t errlen)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
            *(bool *)o->dest = !strcasecmp(v, yes[i]);
            return 0;
        }
    }
    snprintf(err, errlen, "expected 1 or 0 (true/false, yes/no, on/off)");
    return -1;
}

static int opt_store_choice(const kp_opt_t *o, const char *v, char *err, size_t errlen)
{
    const char *p = o->choices;
    size_t vl = strlen(v);
    for (int i = 0; p && *p; i++) {
        size_t l = strcspn(p, "|");
        if (l == vl && !strncmp(p, v, l)) {
            *(int *)o->dest = i;
            return 0;
        }
        p += l + (p[l] == '|');
    }
    snprintf(err, errlen, "expected one of %s", o->choices);
    return -1;
}

static int opt_hinted(int rc, const kp_opt_t *o, char *err, size_t errlen)
{
    size_t l = strlen(err);
    if (rc < 0 && o->range_hint && l + 4 < errlen)
        snprintf(err + l, errlen - l, " (%s)", o->range_hint);
    return rc;
}

/* Parses v into o->dest; -1 with the reason (without the option's name) in err. */
static int opt_store(const kp_opt_t *o, const char *v, char *err, size_t errlen)
{
    err[0] = '\0';
    switch (o->type) {
    case KP_OPT_FLAG: return opt_store_flag(o, v, err, errlen);
    case KP_OPT_STR: *(const char **)o->dest = v; return 0;
    case KP_OPT_INT: return opt_store_int(o, v, err, errlen);
    case KP_OPT_CHOICE: return opt_store_choice(o, v, err, errlen);
    case KP_OPT_DOUBLE:
        return opt_hinted(cfg_parse_double(v, o->dmin, o->dmax, o->dest, err, errlen), o, err, errlen);
    case KP_OPT_DUR:
        return opt_hinted(opt_store_dur(o, v, err, errlen), o, err, errlen);
    case KP_OPT_TIME: return opt_hinted(cfg_parse_time_ms(v, o->dest, err, errlen), o, err, errlen);
    case KP_OPT_CALL: return opt_hinted(o->call(v, o->dest, err, errlen), o, err, errlen);
    default: snprintf(err, errlen, "option type %d has no value", (int)o->type); return -1;
    }
}

static int opt_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int opt_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Defaults are the program's own text: a bad one is a bug, reported like a usage error. */
static int opt_apply_defaults(const kp_opt_prog_t *p, char *errbuf, size_t errlen)
{
    char err[256];
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        if (!opt_is_option(o))
            continue;
        if (o->type == KP_OPT_FLAG && !o->def)
            *(bool *)o->dest = false;
        else if (o->type == KP_OPT_STR && !o->def)
            *(const char **)o->dest = NULL;
        else if (o->def && opt_store(o, o->def, err, sizeof err) < 0)
            return opt_fail(errbuf, errlen, "built-in default of --%s '%s': %s", o->name ? o->name : "?",
                            o->def, err);
    }
    return 0;
}

static int opt_apply_env(const kp_opt_prog_t *p, char *errbuf, size_t errlen)
{
    char err[256];
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        if (!v || (!*v && !(o->flags & KP_OPT_EMPTY_OK)))
            continue;
        if (opt_store(o, v, err, sizeof err) < 0)
            return opt_fail(errbuf, errlen, "environment variable %s=%s: %s", o->env, v, err);
    }
    return 0;
}

static int opt_count(const kp_opt_prog_t *p)
{
    int n = 0;
    while (p->opts[n].type != KP_OPT_END)
        n++;
    return n;
}

static void opt_long_add(struct option *lo, int *n, const char *name, bool value, int val)
{
    lo[*n] = (struct option){name, value ? required_argument : no_argument, NULL, val};
    (*n)++;
}

/* getopt_long's tables built from ours; the caller owns *longs (free). */
static int opt_getopt_tables(const kp_opt_prog_t *p, struct option **longs, char *shorts, size_t slen)
{
    int n = opt_count(p), k = 0;
    size_t s = 0;
    struct option *lo = calloc((size_t)(2 * n + 3), sizeof *lo);
    if (!lo)
        return -1;
    shorts[s++] = ':'; /* a missing value is reported as ':', not '?' */
    for (int i = 0; i < n; i++) {
        const kp_opt_t *o = &p->opts[i];
        if (!opt_is_option(o))
            continue;
        int val = o->key ? o->key : OPT_LONG_BASE + i;
        if (o->name)
            opt_long_add(lo, &k, o->name, opt_takes_value(o), val);
        if (o->alias)
            opt_long_add(lo, &k, o->alias, opt_takes_value(o), val);
        if (o->key && s + 3 < slen) {
            shorts[s++] = (char)o->key;
            if (opt_takes_value(o))
                shorts[s++] = ':';
        }
    }
    lo[k++] = (struct option){"help", optional_argument, NULL, OPT_HELP_KEY};
    lo[k++] = (struct option){"version", no_argument, NULL, OPT_VERSION_KEY};
    memcpy(shorts + s, "hV", 3);
    *longs = lo;
    return 0;
}

static const kp_opt_t *opt_by_key(const kp_opt_prog_t *p, int key)
{
    if (key >= OPT_LONG_BASE)
        return &p->opts[key - OPT_LONG_BASE];
    for (const kp_opt_t *o = p->opts; o->type != KP_OPT_END; o++)
        if (opt_is_option(o) && o->key == key)
            return o;
    return NULL;
}

static int opt_help_format(const char *v, kp_opt_fmt_t *fmt)
{
    if (!v || !strcmp(v, "text"))
        *fmt = KP_OPT_FMT_TEXT;
    else if (!strcmp(v, "man"))
        *fmt = KP_OPT_FMT_MAN;
    else if (!strcmp(v, "markdown"))
        *fmt = KP_OPT_FMT_MARKDOWN;
    else
        return -1;
    return 0;
}

/* The name a user typed, for messages: "--partitions" or "-s". */
static void opt_display_name(const kp_opt_t *o, const char *typed, char *out, size_t len)
{
    if (!o->name || (typed && typed[0] == '-' && typed[1] != '-' && o->key))
        snprintf(out, len, "-%c", o->key);
    else
        snprintf(out, len, "--%s", o->name);
}

/* One getopt result: 0 go on, 1 help/version asked (fmt filled, *version set), -1 error. */
static int opt_one(const kp_opt_prog_t *p, int c, char **argv, kp_opt_fmt_t *fmt, bool *version,
                   char *errbuf, size_t errlen)
{
    char err[256], shown[64];
    if (c == OPT_HELP_KEY || c == 'h') {
        if (opt_help_format(optarg, fmt) < 0)
            return opt_fail(errbuf, errlen, "--help=%s: expected text, man or markdown", optarg);
        return 1;
    }
    if (c == OPT_VERSION_KEY || c == 'V')
        return *version = true, 1;
    if (c == ':')
        return opt_fail(errbuf, errlen, "%s needs a value", argv[optind - 1]);
    const kp_opt_t *o = c == '?' ? NULL : opt_by_key(p, c);
    if (!o)
        return opt_fail(errbuf, errlen, "unknown option %s", argv[optind - 1]);
    if (o->type == KP_OPT_FLAG)
        return *(bool *)o->dest = true, 0;
    if (opt_store(o, optarg, err, sizeof err) == 0)
        return 0;
    opt_display_name(o, argv[optind - (optarg == argv[optind - 1] ? 2 : 1)], shown, sizeof shown);
    return opt_fail(errbuf, errlen, "%s %s: %s", shown, optarg, err);
}

static int opt_run_getopt(const kp_opt_prog_t *p, int argc, char **argv, kp_opt_fmt_t *fmt,
                          bool *version, char *errbuf, size_t errlen)
{
    struct option *longs;
    char shorts[256];
    if (opt_getopt_tables(p, &longs, shorts, sizeof shorts) < 0)
        return opt_fail(errbuf, errlen, "out of memory");
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1)
        rc = opt_one(p, c, argv, fmt, version, errbuf, errlen);
    free(longs);
    return rc;
}

/* Defaults, environment, argv: 0 parsed, 1 help or version asked (fmt, *version), -1 error. */
static int opt_parse_all(const kp_opt_prog_t *p, int argc, char **argv, bool allow_operands,
                         kp_opt_fmt_t *fmt, bool *version, char *errbuf, size_t errlen)
{
    if (opt_apply_defaults(p, errbuf, errlen) < 0 || opt_apply_env(p, errbuf, errlen) < 0)
        return -1;
    int rc = opt_run_getopt(p, argc, argv, fmt, version, errbuf, errlen);
    if (rc == 0 && !allow_operands && optind < argc)
        return opt_fail(errbuf, errlen, "unexpected argument: %s", argv[optind]);
    return rc;
}

int kp_opt_parse_r(const kp_opt_prog_t *p, int argc, char **argv, bool allow_operands,
                   char *errbuf, size_t errlen)
{
    kp_opt_fmt_t fmt = KP_OPT_FMT_TEXT;
    bool version = false;
    int rc = opt_parse_all(p, argc, argv, allow_operands, &fmt, &version, errbuf, errlen);
    return rc < 0 ? -1 : rc > 0 ? -2 : optind;
}

void kp_opt_usage_error(const kp_opt_prog_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", p->name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%sTry '%s --help' for more.\n", p->synopsis, p->name);
    exit(2);
}

/* KP_TEST_CLOCK (common/testclock.c): refused at start-up when invalid, announced when set. */
static void opt_test_clock(const kp_opt_prog_t *p)
{
    char err[256];
    int on = cfg_test_clock_check(err, sizeof err);
    if (on < 0)
        kp_opt_usage_error(p, "KP_TEST_CLOCK: %s", err);
    if (on > 0)
        fprintf(stderr, "%s: KP_TEST_CLOCK=%s: the clock is simulated (a test hook), now %lld\n",
                p->name, getenv("KP_TEST_CLOCK"), (long long)cfg_now_ms());
}

int kp_opt_parse(const kp_opt_prog_t *p, int argc, char **argv, bool allow_operands)
{
    char err[512];
    kp_opt_fmt_t fmt = KP_OPT_FMT_TEXT;
    bool version = false;
    int rc = opt_parse_all(p, argc, argv, allow_operands, &fmt, &version, err, sizeof err);
    if (rc < 0)
        kp_opt_usage_error(p, "%s", err);
    if (rc == 0)
        return opt_test_clock(p), optind;
    if (version)
        cfg_print_versions(stdout, p->name);
    else
        kp_opt_help(p, stdout, fmt);
    exit(0);
}
