/*
 * test_opt.c — the shared layer's option table (common/opt.c, opt_help.c), buffer
 * (common/buf.c) and line reader (common/lines.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "lines.h"
#include "opt.h"

static struct {
    const char *topic;
    int partitions;
    long long bytes;
    bool all;
    int64_t age_ms;
    int loop;
    double speed;
    int nx;
} t_cfg;

static int t_add_x(const char *v, void *dest, char *err, size_t errlen)
{
    if (!strchr(v, '=')) {
        snprintf(err, errlen, "expected KEY=VALUE");
        return -1;
    }
    (*(int *)dest)++;
    return 0;
}

static const kp_opt_t t_opts[] = {
    { KP_OPT_SECTION, .help = "Output" },
    { KP_OPT_STR, "topic", 't', "NAME", "T_TOPIC", "klines", "Kafka topic", .dest = &t_cfg.topic },
    { KP_OPT_INT, "partitions", 0, "N", "T_PARTS", "6", "partitions", KP_OPT_INT_DEST(t_cfg.partitions),
      .min = 1, .max = 100 },
    { KP_OPT_INT, "max-kib", 0, "KIB", NULL, "64", "bound", KP_OPT_INT_DEST(t_cfg.bytes), .min = 1,
      .max = 1024, .scale = 1024, .alias = "max-k" },
    { KP_OPT_FLAG, "all", 'a', NULL, "T_ALL", NULL, "every symbol", .dest = &t_cfg.all },
    { KP_OPT_DUR, "max-age", 0, "DUR", NULL, "23h", "replace after this long\nsecond line", &t_cfg.age_ms,
      .units = "ms s m h d", .bare_ms = 1000, .min = 1000, .max = 86400000LL * 366 },
    { KP_OPT_CHOICE, "event-loop", 0, "uv|poll", NULL, "uv", "loop", .dest = &t_cfg.loop, .choices = "uv|poll" },
    { KP_OPT_DOUBLE, "speed", 0, "F", NULL, "0", "pace", .dest = &t_cfg.speed, .dmin = 0, .dmax = 1e6 },
    { KP_OPT_CALL, NULL, 'X', "KEY=VALUE", NULL, NULL, "librdkafka setting (repeatable)", .dest = &t_cfg.nx,
      .call = t_add_x },
    { KP_OPT_END },
};

static const kp_opt_prog_t t_prog = {
    .name = "kline-test", .summary = "a test program", .synopsis = "usage: kline-test [options]\n",
    .epilog = "Exit: 0 done, 2 usage error.\n", .opts = t_opts,
};

static int t_parse(char *err, size_t errlen, ...)
{
    char *argv[32] = { "kline-test" };
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    t_cfg.nx = 0;
    err[0] = '\0';
    return kp_opt_parse_r(&t_prog, argc, argv, false, err, errlen);
}

static void test_defaults_env_flags(void **state)
{
    (void)state;
    char err[256];
    unsetenv("T_TOPIC");
    unsetenv("T_PARTS");
    assert_int_equal(t_parse(err, sizeof err, NULL), 1);
    assert_string_equal(t_cfg.topic, "klines");
    assert_int_equal(t_cfg.partitions, 6);
    assert_int_equal(t_cfg.bytes, 64 * 1024);
    assert_false(t_cfg.all);
    assert_int_equal(t_cfg.age_ms, 23LL * 3600 * 1000);
    setenv("T_TOPIC", "fromenv", 1);
    setenv("T_PARTS", "9", 1);
    setenv("T_ALL", "yes", 1);
    assert_int_equal(t_parse(err, sizeof err, NULL), 1);
    assert_string_equal(t_cfg.topic, "fromenv");
    assert_int_equal(t_cfg.partitions, 9);
    assert_true(t_cfg.all);
    /* the flag wins over the environment */
    assert_int_equal(t_parse(err, sizeof err, "-t", "flag", "--partitions=3", NULL), 4);
    assert_string_equal(t_cfg.topic, "flag");
    assert_int_equal(t_cfg.partitions, 3);
    setenv("T_PARTS", "0", 1);
    assert_int_equal(t_parse(err, sizeof err, NULL), -1);
    assert_non_null(strstr(err, "T_PARTS=0"));
    unsetenv("T_TOPIC");
    unsetenv("T_PARTS");
    unsetenv("T_ALL");
}

static void test_values_and_errors(void **state)
{
    (void)state;
    char err[256];
    assert_true(t_parse(err, sizeof err, "--max-k", "2", "--max-age", "90", "--event-loop", "poll",
                        "--speed", "1.5", "-X", "a=b", "-Xc=d", NULL) > 0);
    assert_int_equal(t_cfg.bytes, 2048);
    assert_int_equal(t_cfg.age_ms, 90000);
    assert_int_equal(t_cfg.loop, 1);
    assert_true(t_cfg.speed == 1.5);
    assert_int_equal(t_cfg.nx, 2);
    assert_int_equal(t_parse(err, sizeof err, "--partitions", "101", NULL), -1);
    assert_string_equal(err, "--partitions 101: expected an integer in [1, 100]");
    /* DUR honours .min (in ms) as well as .max */
    assert_int_equal(t_parse(err, sizeof err, "--max-age", "999ms", NULL), -1);
    assert_string_equal(err, "--max-age 999ms: too small (at least 1000 ms)");
    assert_true(t_parse(err, sizeof err, "--max-age", "1s", NULL) > 0);
    assert_int_equal(t_cfg.age_ms, 1000);
    assert_int_equal(t_parse(err, sizeof err, "--event-loop", "epoll", NULL), -1);
    assert_non_null(strstr(err, "uv|poll"));
    assert_int_equal(t_parse(err, sizeof err, "-X", "novalue", NULL), -1);
    assert_string_equal(err, "-X novalue: expected KEY=VALUE");
    assert_int_equal(t_parse(err, sizeof err, "--nope", NULL), -1);
    assert_non_null(strstr(err, "unknown option --nope"));
    assert_int_equal(t_parse(err, sizeof err, "--topic", NULL), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(t_parse(err, sizeof err, "extra", NULL), -1);
    assert_non_null(strstr(err, "unexpected argument: extra"));
    assert_int_equal(t_parse(err, sizeof err, "--help=man", NULL), -2);
    assert_int_equal(t_parse(err, sizeof err, "--help=pdf", NULL), -1);
}

static char *t_render(kp_opt_fmt_t fmt)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    kp_opt_help(&t_prog, f, fmt);
    fclose(f);
    return s;
}

static void test_help_formats(void **state)
{
    (void)state;
    char *text = t_render(KP_OPT_FMT_TEXT);
    assert_non_null(strstr(text, "  -t, --topic NAME"));
    assert_non_null(strstr(text, "[T_TOPIC; default klines]"));
    assert_non_null(strstr(text, "\nOutput:\n"));
    assert_non_null(strstr(text, "second line"));
    assert_non_null(strstr(text, "Exit: 0 done"));
    free(text);
    char *man = t_render(KP_OPT_FMT_MAN);
    assert_non_null(strstr(man, ".TH KLINE-TEST 1"));
    assert_non_null(strstr(man, "\\fB\\-\\-max\\-age\\fR \\fIDUR\\fR"));
    assert_non_null(strstr(man, ".B T_PARTS"));
    assert_non_null(strstr(man, "Also accepted as \\fB\\-\\-max\\-k\\fR"));
    free(man);
    char *md = t_render(KP_OPT_FMT_MARKDOWN);
    assert_non_null(strstr(md, "| `-t`, `--topic NAME` | `T_TOPIC` | `klines` | Kafka topic |"));
    assert_non_null(strstr(md, "uv\\|poll"));
    free(md);
}

static void test_buf_bounded(void **state)
{
    (void)state;
    kp_buf_t b;
    kp_buf_init(&b, 10);
    assert_string_equal(kp_buf_str(&b), "");
    assert_int_equal(kp_buf_puts(&b, "hello"), 0);
    assert_int_equal(kp_buf_printf(&b, "%d", 12345), 0);
    assert_string_equal(kp_buf_str(&b), "hello12345");
    assert_int_equal(kp_buf_putc(&b, 'x'), -1); /* past max: refused, nothing changed */
    assert_int_equal(b.len, 10);
    kp_buf_consume(&b, 5);
    assert_string_equal(kp_buf_str(&b), "12345");
    size_t len;
    char *p = kp_buf_take(&b, &len);
    assert_int_equal(len, 5);
    assert_null(b.data);
    free(p);
    kp_buf_free(&b);
}

/* kp_buf_put_i64 writes what printf's %lld would, the extremes included */
static void test_buf_put_i64(void **state)
{
    (void)state;
    static const long long vals[] = { 0, 7, -7, 1796683184123LL, LLONG_MAX, LLONG_MIN };
    kp_buf_t b;
    kp_buf_init(&b, 1024);
    char want[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        assert_int_equal(kp_buf_put_i64(&b, vals[i]), 0);
        assert_int_equal(kp_buf_putc(&b, ','), 0);
        n += (size_t)snprintf(want + n, sizeof want - n, "%lld,", vals[i]);
    }
    assert_string_equal(kp_buf_str(&b), want);
    kp_buf_t small;
    kp_buf_init(&small, 3);
    assert_int_equal(kp_buf_put_i64(&small, 1234), -1); /* past max: refused, nothing changed */
    assert_int_equal(small.len, 0);
    kp_buf_free(&small);
    kp_buf_free(&b);
}

static void test_lines_long_and_last(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char in[] = "ab\r\n0123456789XYZ\n\nlast";
    assert_int_equal(write(fds[1], in, sizeof in - 1), (ssize_t)(sizeof in - 1));
    close(fds[1]);
    kp_lines_t lr;
    kp_line_t l;
    char err[128];
    assert_int_equal(kp_lines_from_fd(&lr, fds[0], "pipe", 10, err, sizeof err), 0);
    assert_int_equal(kp_lines_next(&lr, 1000, &l, err, sizeof err), 1);
    assert_int_equal(l.len, 2);
    assert_memory_equal(l.data, "ab", 2);
    assert_int_equal(kp_lines_next(&lr, 1000, &l, err, sizeof err), 1);
    assert_int_equal(l.len, 10); /* cut at max_line, true length kept */
    assert_int_equal(l.full_len, 13);
    assert_int_equal(kp_lines_next(&lr, 1000, &l, err, sizeof err), 1);
    assert_int_equal(l.len, 0);
    assert_int_equal(kp_lines_next(&lr, 1000, &l, err, sizeof err), 1);
    assert_memory_equal(l.data, "last", 4);
    assert_int_equal(lr.lineno, 4);
    assert_int_equal(kp_lines_next(&lr, 1000, &l, err, sizeof err), 2);
    kp_lines_close(&lr);
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_env_flags), cmocka_unit_test(test_values_and_errors),
        cmocka_unit_test(test_help_formats),       cmocka_unit_test(test_buf_bounded),
        cmocka_unit_test(test_buf_put_i64),
        cmocka_unit_test(test_lines_long_and_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
