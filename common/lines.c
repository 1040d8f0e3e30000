/* lines.c — see lines.h. */
#include "lines.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES_CHUNK (64 * 1024)

int kp_lines_from_fd(kp_lines_t *lr, int fd, const char *name, size_t max_line, char *errbuf,
                     size_t errlen)
{
    *lr = (kp_lines_t){ .fd = fd, .name = name, .max_line = max_line };
    lr->buf = malloc(max_line + LINES_CHUNK); /* owned; freed by kp_lines_close */
    if (!lr->buf) {
        snprintf(errbuf, errlen, "%s: out of memory for a %zu-byte line buffer", name, max_line);
        return -1;
    }
    return 0;
}

int kp_lines_open(kp_lines_t *lr, const char *path, size_t max_line, char *errbuf, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (kp_lines_from_fd(lr, fd, is_stdin ? "stdin" : path, max_line, errbuf, errlen) < 0) {
        if (!is_stdin)
            close(fd);
        return -1;
    }
    lr->own_fd = !is_stdin;
    return 0;
}

void kp_lines_close(kp_lines_t *lr)
{
    if (lr->own_fd && lr->fd >= 0)
        close(lr->fd);
    lr->fd = -1;
    free(lr->buf);
    lr->buf = NULL;
}

/* Appends bytes of the current line, keeping at most max_line of them. */
static void lines_append(kp_lines_t *lr, const char *p, size_t n)
{
    size_t room = lr->max_line - lr->len;
    size_t keep = n < room ? n : room;
    memcpy(lr->buf + lr->len, p, keep);
    lr->len += keep;
    lr->line_bytes += n;
}

static void lines_emit(kp_lines_t *lr, kp_line_t *line)
{
    size_t len = lr->len;
    if (lr->line_bytes <= lr->max_line && len && lr->buf[len - 1] == '\r')
        len--;
    *line = (kp_line_t){ .data = lr->buf, .len = len, .full_len = lr->line_bytes };
    lr->lineno++;
    lr->len = lr->line_bytes = 0;
}

/* A complete line from the unread chunk: true, or false with the partial line kept. */
static bool lines_scan(kp_lines_t *lr, kp_line_t *line)
{
    const char *s = lr->buf + lr->max_line + lr->rpos;
    size_t n = lr->rend - lr->rpos;
    const char *nl = memchr(s, '\n', n);
    if (!nl) {
        lines_append(lr, s, n);
        lr->rpos = lr->rend;
        return false;
    }
    lines_append(lr, s, (size_t)(nl - s));
    lr->rpos += (size_t)(nl - s) + 1;
    lines_emit(lr, line);
    return true;
}

/* One read: 1 data, 0 nothing yet, 2 end of input, -1 error. */
static int lines_fill(kp_lines_t *lr, int timeout_ms, char *errbuf, size_t errlen)
{
    struct pollfd p = { .fd = lr->fd, .events = POLLIN };
    int pr = poll(&p, 1, timeout_ms);
    if (pr == 0 || (pr < 0 && errno == EINTR))
        return 0;
    ssize_t n = read(lr->fd, lr->buf + lr->max_line, LINES_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n < 0) {
        snprintf(errbuf, errlen, "reading %s: %s", lr->name, strerror(errno));
        return -1;
    }
    if (n == 0)
        return 2;
    lr->rpos = 0;
    lr->rend = (size_t)n;
    return 1;
}

int kp_lines_next(kp_lines_t *lr, int timeout_ms, kp_line_t *line, char *errbuf, size_t errlen)
{
    while (!lr->eof) {
        if (lr->rpos < lr->rend && lines_scan(lr, line))
            return 1;
        int rc = lines_fill(lr, timeout_ms, errbuf, errlen);
        if (rc == 2) {
            lr->eof = true;
            if (lr->line_bytes > 0) { /* a last line without a newline */
                lines_emit(lr, line);
                return 1;
            }
        } else if (rc <= 0)
            return rc;
    }
    return 2;
}
