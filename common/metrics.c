/* metrics.c — GET /metrics in Prometheus text format on a small background thread.
 * One request at a time is plenty for a scraper; anything else gets 404. */
#include "metrics.h"
#include "log.h"
#include "thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_BODY_MAX (256 * 1024)

static struct {
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    int running;
    metrics_render_fn fn;
    void *ud;
} metrics = { .listen_fd = -1, .stop_pipe = { -1, -1 } };

size_t metrics_put(char *buf, size_t len, size_t off, const char *name, const char *type,
                   const char *help, double value)
{
    if (off >= len)
        return off;
    int n = snprintf(buf + off, len - off, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
                     name, help, name, type, name, value);
    if (n < 0)
        return off;
    return off + (size_t)n >= len ? len : off + (size_t)n;
}

int metrics_process(double *rss_bytes, double *cpu_seconds)
{
    long pages = 0, resident = 0;
    unsigned long utime = 0, stime = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    int ok = f && fscanf(f, "%ld %ld", &pages, &resident) == 2;
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "re");
    char line[1024];
    const char *p = f && fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    /* after "pid (comm)": state is field 3, utime 14 and stime 15 */
    ok = ok && p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2;
    if (f)
        fclose(f);
    if (!ok)
        return -1;
    *rss_bytes = (double)resident * (double)sysconf(_SC_PAGESIZE);
    *cpu_seconds = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

size_t metrics_put_process(char *buf, size_t len, size_t off)
{
    double rss, cpu;
    if (metrics_process(&rss, &cpu) < 0)
        return off;
    off = metrics_put(buf, len, off, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    return metrics_put(buf, len, off, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
                       cpu);
}

static void metrics_reply(int fd, const char *status, const char *ctype, const char *body, size_t blen)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, ctype, blen);
    if (write(fd, head, (size_t)hl) < 0 || (blen && write(fd, body, blen) < 0))
        log_debug("metrics: client went away: %s", strerror(errno));
}

static void metrics_serve_one(int fd, char *body)
{
    char req[2048];
    size_t got = 0;
    /* Wait briefly for the request line; a scraper sends it at once. */
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (got < sizeof req - 1 && poll(&p, 1, 2000) == 1) {
        ssize_t n = read(fd, req + got, sizeof req - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[got] = '\0';
    if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
        size_t n = metrics.fn(body, METRICS_BODY_MAX, metrics.ud);
        n = metrics_put_process(body, METRICS_BODY_MAX, n); /* the standard process_* pair */
        metrics_reply(fd, "200 OK", "text/plain; version=0.0.4", body, n);
    } else if (strncmp(req, "GET /healthz ", 13) == 0) {
        metrics_reply(fd, "200 OK", "text/plain", "ok\n", 3);
    } else {
        metrics_reply(fd, "404 Not Found", "text/plain", "not found\n", 10);
    }
}

static void *metrics_thread(void *arg)
{
    (void)arg;
    char *body = malloc(METRICS_BODY_MAX); /* owned by this thread */
    if (!body)
        return NULL;
    struct pollfd fds[2] = { { .fd = metrics.listen_fd, .events = POLLIN },
                             { .fd = metrics.stop_pipe[0], .events = POLLIN } };
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            break;
        if (fds[0].revents & POLLIN) {
            int fd = accept(metrics.listen_fd, NULL, NULL);
            if (fd >= 0) {
                metrics_serve_one(fd, body);
                close(fd);
            }
        }
    }
    free(body);
    return NULL;
}

int metrics_http_start(const char *host, int port, metrics_render_fn fn, void *ud,
                       char *errbuf, size_t errlen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host && *host ? host : NULL, ps, &hints, &ai);
    if (gai) {
        snprintf(errbuf, errlen, "metrics address %s:%d: %s", host ? host : "", port, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        snprintf(errbuf, errlen, "metrics listen on %s:%d: %s", host ? host : "*", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    if (pipe2(metrics.stop_pipe, O_CLOEXEC) < 0) {
        snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
        close(fd);
        return -1;
    }
    metrics.listen_fd = fd;
    metrics.fn = fn;
    metrics.ud = ud;
    if (kp_thread_create(&metrics.thread, NULL, metrics_thread, NULL) != 0) {
        snprintf(errbuf, errlen, "cannot start the metrics thread");
        return -1;
    }
    metrics.running = 1;
    return 0;
}

void metrics_http_stop(void)
{
    if (!metrics.running)
        return;
    if (write(metrics.stop_pipe[1], "x", 1) < 0)
        log_debug("metrics: stop pipe: %s", strerror(errno));
    pthread_join(metrics.thread, NULL);
    close(metrics.listen_fd);
    close(metrics.stop_pipe[0]);
    close(metrics.stop_pipe[1]);
    metrics.running = 0;
}
