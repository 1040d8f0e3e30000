/* lines.h — lines from a file descriptor, each held to at most max_line bytes.
 *
 * A longer line is never held whole (an endless line must not exhaust memory): its first
 * max_line bytes are returned with its true length, so the caller can store the prefix
 * in `rejected`. A timeout lets the caller's loop flush by age while a pipe is quiet. */
#ifndef KP_LINES_H
#define KP_LINES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kp_lines {
    int fd;
    bool own_fd;
    const char *name;  /* for messages; borrowed */
    char *buf;         /* owned: [0, max_line) the line, then the read chunk */
    size_t max_line;
    size_t len;        /* bytes of the current line kept */
    size_t line_bytes; /* its true length so far */
    size_t rpos, rend; /* unread part of the chunk */
    bool eof;
    long long lineno;  /* of the line last returned, from 1 */
} kp_lines_t;

typedef struct kp_line {
    const char *data;  /* valid until the next kp_lines_next; no newline, no NUL */
    size_t len;        /* bytes in data (at most max_line; a trailing '\r' removed) */
    size_t full_len;   /* the line's true length: > max_line means it was cut */
} kp_line_t;

/* path "-" = stdin (fd 0, not closed). 0, or -1 with the reason in errbuf. */
int kp_lines_open(kp_lines_t *lr, const char *path, size_t max_line, char *errbuf, size_t errlen);
/* Reads from an fd the caller keeps (a socket, a pipe of its own). */
int kp_lines_from_fd(kp_lines_t *lr, int fd, const char *name, size_t max_line, char *errbuf,
                     size_t errlen);
/* 1: a line in *line; 0: none yet (waited up to timeout_ms, -1 = forever; or EINTR);
 * 2: end of input (a last line without a newline was returned before); -1: read error. */
int kp_lines_next(kp_lines_t *lr, int timeout_ms, kp_line_t *line, char *errbuf, size_t errlen);
void kp_lines_close(kp_lines_t *lr);

#endif
