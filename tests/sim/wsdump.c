/*
 * kp-wsdump — a tiny WebSocket client for tests: prints every received text frame
 * as one line on stdout until N frames, T seconds or the server closes.
 *
 * Written on plain sockets rather than lws: the lws 4.1 client gives no callback
 * for received PINGs and always answers them, and tests need to count pings and
 * to withhold pongs (--no-pong) to exercise the server's pong timeout. ws:// only.
 *
 * stderr gets one summary line:
 *   kp-wsdump: frames=N pings=N bytes=N secs=S rate=R/s close=CODE
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
"usage: kp-wsdump [options] ws://HOST:PORT/PATH\n"
"  -n, --count N       stop after N text frames (default: unlimited)\n"
"  -t, --timeout S     stop after S seconds (default 30; fractions allowed)\n"
"  -s, --send MSG      send MSG as a text frame after connecting (repeatable, in order)\n"
"  --send-delay-ms MS  wait MS between --send messages (default 0)\n"
"      --count-pings   accepted for readability: pings are always counted in the summary\n"
"      --read-delay S  read nothing for S seconds after the handshake (a slow consumer)\n"
"      --pings N       stop after N pings\n"
"      --no-pong       never answer pings (to test the server's pong timeout)\n"
"  -q, --quiet         do not print frames (throughput measurement)\n"
"  -h, --help\n"
"Summary on stderr: frames= pings= bytes= secs= rate= close=\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Client frames must be masked (RFC 6455 5.3). */
static int send_frame(int fd, int opcode, const void *data, size_t len)
{
    unsigned char hdr[14];
    size_t h = 0;
    uint32_t key = (uint32_t)rand();
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int k = 7; k >= 0; k--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * k));
    }
    unsigned char mask[4] = { (unsigned char)key, (unsigned char)(key >> 8),
                              (unsigned char)(key >> 16), (unsigned char)(key >> 24) };
    memcpy(hdr + h, mask, 4);
    h += 4;
    unsigned char *m = malloc(len + 1);
    if (!m)
        return -1;
    for (size_t k = 0; k < len; k++)
        m[k] = ((const unsigned char *)data)[k] ^ mask[k & 3];
    int rc = write_all(fd, hdr, h) < 0 || write_all(fd, m, len) < 0 ? -1 : 0;
    free(m);
    return rc;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1, rcv = 4 << 20;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "count", 1, 0, 'n' }, { "timeout", 1, 0, 't' }, { "send", 1, 0, 's' },
        { "count-pings", 0, 0, 'P' }, { "pings", 1, 0, 'p' }, { "no-pong", 0, 0, 'N' },
        { "send-delay-ms", 1, 0, 'D' }, { "read-delay", 1, 0, 'R' }, { "quiet", 0, 0, 'q' }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
    };
    long max_frames = -1, max_pings = -1, send_delay_ms = 0;
    double timeout = 30, read_delay = 0;
    bool no_pong = false, quiet = false;
    const char *sends[64];
    int nsends = 0, c;
    while ((c = getopt_long(argc, argv, "n:t:s:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': max_frames = atol(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 's':
            if (nsends < 64)
                sends[nsends++] = optarg;
            break;
        case 'P': break; /* pings are always counted; kept for readability of tests */
        case 'p': max_pings = atol(optarg); break;
        case 'N': no_pong = true; break;
        case 'D': send_delay_ms = atol(optarg); break;
        case 'R': read_delay = atof(optarg); break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc - 1 || strncmp(argv[optind], "ws://", 5) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    char host[256], port[16] = "80";
    const char *path = "/";
    const char *u = argv[optind] + 5;
    size_t hl = strcspn(u, ":/");
    snprintf(host, sizeof host, "%.*s", (int)hl, u);
    u += hl;
    if (*u == ':') {
        size_t pl = strcspn(u + 1, "/");
        snprintf(port, sizeof port, "%.*s", (int)pl, u + 1);
        u += 1 + pl;
    }
    if (*u)
        path = u;

    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int fd = connect_to(host, port);
    if (fd < 0) {
        fprintf(stderr, "kp-wsdump: cannot connect to %s:%s\n", host, port);
        return 1;
    }
    size_t reqcap = strlen(path) + 1024;
    char *req = malloc(reqcap);
    int rl = !req ? -1 : snprintf(req, reqcap,
                      "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                      path, host, port);
    if (rl < 0 || (size_t)rl >= reqcap || write_all(fd, req, (size_t)rl) < 0) {
        fprintf(stderr, "kp-wsdump: cannot send the handshake\n");
        return 1;
    }
    free(req);
    if (read_delay > 0)
        usleep((useconds_t)(read_delay * 1e6));

    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    unsigned char *msg = NULL;  /* reassembly of fragmented messages */
    size_t msglen = 0;
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    double t0 = now_s(), deadline = t0 + timeout;
    bool upgraded = false, done = false;
    long frames = 0, pings = 0;
    long long bytes = 0;
    int close_code = -1, rc = 0;

    while (!done) {
        double left = deadline - now_s();
        if (left <= 0)
            break;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (len == cap) {
            cap *= 2;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                rc = 1;
                break;
            }
            buf = nb;
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break; /* peer closed */
        }
        len += (size_t)n;
        size_t off = 0;
        if (!upgraded) {
            unsigned char *e = memmem(buf, len, "\r\n\r\n", 4);
            if (!e)
                continue;
            if (len < 12 || memcmp(buf + 9, "101", 3) != 0) {
                fprintf(stderr, "kp-wsdump: upgrade refused: %.*s\n", (int)strcspn((char *)buf, "\r\n"), buf);
                rc = 1;
                break;
            }
            upgraded = true;
            off = (size_t)(e + 4 - buf);
            for (int k = 0; k < nsends; k++) {
                if (k && send_delay_ms)
                    usleep((useconds_t)send_delay_ms * 1000);
                if (send_frame(fd, 1, sends[k], strlen(sends[k])) < 0) {
                    rc = 1;
                    done = true;
                }
            }
        }
        while (!done && len - off >= 2) {
            unsigned char *f = buf + off;
            bool fin = f[0] & 0x80;
            int op = f[0] & 0x0f;
            bool masked = f[1] & 0x80;
            uint64_t pl = f[1] & 0x7f;
            size_t h = 2;
            if (pl == 126) {
                if (len - off < 4)
                    break;
                pl = ((uint64_t)f[2] << 8) | f[3];
                h = 4;
            } else if (pl == 127) {
                if (len - off < 10)
                    break;
                pl = 0;
                for (int k = 0; k < 8; k++)
                    pl = (pl << 8) | f[2 + k];
                h = 10;
            }
            if (masked)
                h += 4;
            if (len - off < h + pl)
                break;
            unsigned char *p = f + h;
            if (masked)
                for (uint64_t k = 0; k < pl; k++)
                    p[k] ^= f[h - 4 + (k & 3)];
            off += h + (size_t)pl;
            if (op == 0x9) {
                pings++;
                if (!no_pong && send_frame(fd, 0xA, p, (size_t)pl) < 0)
                    done = true;
                if (max_pings > 0 && pings >= max_pings)
                    done = true;
            } else if (op == 0x8) {
                close_code = pl >= 2 ? (p[0] << 8 | p[1]) : 1005;
                send_frame(fd, 0x8, p, pl >= 2 ? 2 : 0);
                done = true;
            } else if (op == 0x1 || op == 0x2 || op == 0x0) {
                if (!fin || msglen) {
                    unsigned char *nm = realloc(msg, msglen + (size_t)pl);
                    if (!nm) {
                        rc = 1;
                        done = true;
                        break;
                    }
                    msg = nm;
                    memcpy(msg + msglen, p, (size_t)pl);
                    msglen += (size_t)pl;
                    if (!fin)
                        continue;
                    p = msg;
                    pl = msglen;
                    msglen = 0;
                }
                frames++;
                bytes += (long long)pl;
                if (!quiet) {
                    fwrite(p, 1, (size_t)pl, stdout);
                    putchar('\n');
                }
                if (max_frames > 0 && frames >= max_frames)
                    done = true;
            }
        }
        memmove(buf, buf + off, len - off);
        len -= off;
    }
    fflush(stdout);
    double secs = now_s() - t0;
    fprintf(stderr, "kp-wsdump: frames=%ld pings=%ld bytes=%lld secs=%.3f rate=%.0f/s close=%d\n",
            frames, pings, bytes, secs, secs > 0 ? (double)frames / secs : 0.0, close_code);
    close(fd);
    free(buf);
    free(msg);
    if (!upgraded && rc == 0) {
        fprintf(stderr, "kp-wsdump: no upgrade response\n");
        rc = 1;
    }
    return rc;
}
