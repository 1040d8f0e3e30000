/*
 * input.c — NDJSON (or any line format kline_parse accepts) from stdin or a file.
 *
 * Lines are assembled in a buffer of KLINE_INPUT_MAX bytes: a longer line is never held
 * whole (an endless line must not exhaust memory); its first KLINE_INPUT_MAX bytes go to
 * `rejected` with the line's true length in the reason. poll() with a timeout lets the
 * main loop flush by age while a pipe is quiet.
 */
#include "ins.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN_CHUNK (64 * 1024)

int ins_input_open(ins_input_t *in, const char *name, char *errbuf, size_t errlen)
{
    memset(in, 0, sizeof *in);
    in->name = name;
    if (strcmp(name, "-") == 0) {
        in->fd = 0;
    } else {
        in->fd = open(name, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
            snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
            return -1;
        }
    }
    in->buf = malloc(KLINE_INPUT_MAX + IN_CHUNK); /* owned; freed by ins_input_close */
    if (!in->buf) {
        snprintf(errbuf, errlen, "out of memory");
        if (in->fd > 0)
            close(in->fd);
        return -1;
    }
    return 0;
}

void ins_input_close(ins_input_t *in)
{
    if (in->fd > 0)
        close(in->fd);
    free(in->buf);
    in->buf = NULL;
}

static void in_origin(char *out, size_t outlen, const void *ctx)
{
    const ins_input_t *in = ctx;
    if (strcmp(in->name, "-") == 0)
        snprintf(out, outlen, "stdin:%lld", in->lineno);
    else
        snprintf(out, outlen, "file:%s:%lld", in->name, in->lineno);
}

/* One complete line (without its newline) in in->buf[0..len), true length line_bytes. */
static void in_line(ins_app_t *app)
{
    ins_input_t *in = &app->input;
    char origin[320];
    size_t len = in->len;
    in->lineno++;
    int rc;
    if (in->line_bytes > KLINE_INPUT_MAX) {
        char why[128];
        snprintf(why, sizeof why, "line of %zu bytes exceeds %d (first %d kept)",
                 in->line_bytes, KLINE_INPUT_MAX, KLINE_INPUT_MAX);
        in_origin(origin, sizeof origin, in);
        rc = ins_batch_add_reject(&app->batch, in->buf, len, why, origin, INS_TOPIC_NONE, -1, -1);
    } else {
        if (len && in->buf[len - 1] == '\r')
            len--;
        if (len == 0) /* a blank line carries no record */
            rc = 0;
        else
            rc = ins_take(app, in->buf, len, in_origin, in, INS_TOPIC_NONE, -1, -1, 0);
    }
    if (rc < 0)
        fatal("out of memory holding a batch of %zu records", app->batch.nrecords);
    in->len = in->line_bytes = 0;
}

/* Appends bytes of the current line, keeping at most KLINE_INPUT_MAX of them. */
static void in_append(ins_input_t *in, const char *p, size_t n)
{
    size_t room = KLINE_INPUT_MAX - in->len;
    size_t keep = n < room ? n : room;
    memcpy(in->buf + in->len, p, keep);
    in->len += keep;
    in->line_bytes += n;
}

/* Splits the unread part of the last chunk into lines, stopping once the batch is full
 * (the rest waits in the buffer: --batch-rows holds for -i too). */
static void in_scan(ins_app_t *app)
{
    ins_input_t *in = &app->input;
    while (in->rpos < in->rend && (long long)app->batch.nrecords < app->opt.batch_rows) {
        const char *s = in->buf + KLINE_INPUT_MAX + in->rpos;
        size_t n = in->rend - in->rpos;
        const char *nl = memchr(s, '\n', n);
        if (!nl) {
            in_append(in, s, n);
            in->rpos = in->rend;
            break;
        }
        in_append(in, s, (size_t)(nl - s));
        in->rpos += (size_t)(nl - s) + 1;
        in_line(app);
    }
}

int ins_input_poll(ins_app_t *app, int timeout_ms)
{
    ins_input_t *in = &app->input;
    if (in->rpos < in->rend) {
        in_scan(app);
        return 0;
    }
    if (in->eof)
        return 1;
    struct pollfd p = { .fd = in->fd, .events = POLLIN };
    int pr = poll(&p, 1, timeout_ms);
    if (pr == 0 || (pr < 0 && errno == EINTR))
        return 0;
    ssize_t n = read(in->fd, in->buf + KLINE_INPUT_MAX, IN_CHUNK);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        log_error("reading %s: %s", in->name, strerror(errno));
        return -1;
    }
    if (n == 0) {
        if (in->line_bytes > 0) /* last line without a newline */
            in_line(app);
        in->eof = true;
        return 1;
    }
    in->rpos = 0;
    in->rend = (size_t)n;
    in_scan(app);
    return 0;
}
