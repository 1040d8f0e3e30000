/* test_producer_replay_files — what --replay takes from a data.binance.vision file name,
 * and the gzip line reader (bounded lines, a last line without a newline, a file cut
 * short). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "../prod.h"
#include "lines.h"

static void test_names(void **state)
{
    (void)state;
    char sym[32], iv[16];
    assert_true(replay_name_parse("BTCUSDT-1s-2026-11-29.csv.gz", sym, sizeof sym, iv, sizeof iv));
    assert_string_equal(sym, "BTCUSDT");
    assert_string_equal(iv, "1s");
    assert_true(replay_name_parse("/a/b-c/ADABTC-1m-2021-11-27.csv", sym, sizeof sym, iv, sizeof iv));
    assert_string_equal(sym, "ADABTC");
    assert_string_equal(iv, "1m");
    assert_true(replay_name_parse("ETHBTC-1h-2021-11.csv", sym, sizeof sym, iv, sizeof iv)); /* monthly */
    const char *bad[] = {
        "btcusdt-1s-2026-11-29.csv",   /* symbols are upper case */
        "BTCUSDT-1s-2026-11-29.csv.zip", "BTCUSDT-1s-2026-11-29.gz", "BTCUSDT-1s-2026-1-29.csv",
        "BTCUSDT-2s-2026-11-29.csv",   /* no such interval */
        "BTCUSDT-1s-2026_11_29.csv", "BTCUSDT.csv", "truth.ndjson", "-1s-2026-11-29.csv",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ-1s-2026-11-29.csv", /* longer than a symbol */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (replay_name_parse(bad[i], sym, sizeof sym, iv, sizeof iv))
            fail_msg("%s taken as a data.binance.vision name", bad[i]);
}

/* Writes text gzipped to a temporary file (path in buf); cut: keep only the first half. */
static void write_gz(char *path, const char *text, bool cut)
{
    struct stat st;
    strcpy(path, "/tmp/test_replay_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    gzFile g = gzdopen(fd, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(g), Z_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 1000 || !cut);
    if (cut)
        assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void test_gz_lines(void **state)
{
    (void)state;
    char path[64], err[256];
    kp_line_t ln;
    write_gz(path, "one\n0123456789abcdef\n\nlast", false);
    assert_true(replay_is_gzip(path));
    replay_gz_t *g = replay_gz_open(path, 8, err, sizeof err);
    assert_non_null(g);
    assert_int_equal(replay_gz_next(g, &ln, err, sizeof err), 1);
    assert_int_equal(ln.len, 3);
    assert_memory_equal(ln.data, "one", 3);
    assert_int_equal(replay_gz_next(g, &ln, err, sizeof err), 1); /* cut, with its true length */
    assert_int_equal(ln.len, 8);
    assert_int_equal(ln.full_len, 16);
    assert_memory_equal(ln.data, "01234567", 8);
    assert_int_equal(replay_gz_next(g, &ln, err, sizeof err), 1);
    assert_int_equal(ln.full_len, 0);
    assert_int_equal(replay_gz_next(g, &ln, err, sizeof err), 1); /* no newline at the end */
    assert_memory_equal(ln.data, "last", 4);
    assert_int_equal(replay_gz_lineno(g), 4);
    assert_int_equal(replay_gz_next(g, &ln, err, sizeof err), 2);
    replay_gz_close(g);
    unlink(path);
}

static void test_gz_cut_short(void **state)
{
    (void)state;
    char path[64], err[256], text[40000];
    kp_line_t ln;
    uint32_t x = 12345; /* pseudo-random letters: gzip cannot shrink them to nothing */
    for (size_t i = 0; i < sizeof text - 1; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = i % 41 == 40 ? '\n' : (char)('a' + (x >> 16) % 26);
    }
    text[sizeof text - 1] = '\0';
    write_gz(path, text, true);
    replay_gz_t *g = replay_gz_open(path, 100, err, sizeof err);
    assert_non_null(g);
    int got;
    while ((got = replay_gz_next(g, &ln, err, sizeof err)) == 1)
        ;
    assert_int_equal(got, -1);
    replay_gz_close(g);
    unlink(path);
    assert_false(replay_is_gzip("/dev/null"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_gz_lines),
        cmocka_unit_test(test_gz_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
