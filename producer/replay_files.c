/* replay_files.c — where --replay's lines come from besides a plain file or stdin:
 * gzip files (the daily .csv.gz of data.binance.vision and of kline-aggregator --archive),
 * what a data.binance.vision file name says (SYMBOL-INTERVAL-YYYY-MM[-DD].csv[.gz]), and
 * the files of an archive directory, in order. */
#include "prod.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cfg.h"
#include "lines.h"

#define REPLAY_GZ_CHUNK 65536

struct replay_gz {
    gzFile gz;
    const char *path;
    char *line;               /* the first max_line bytes of the current line */
    size_t max_line, len, full_len;
    char chunk[REPLAY_GZ_CHUNK];
    size_t rpos, rend;
    bool eof;
    long long lineno;
};

bool replay_is_gzip(const char *path)
{
    unsigned char magic[2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

replay_gz_t *replay_gz_open(const char *path, size_t max_line, char *errbuf, size_t errlen)
{
    replay_gz_t *g = calloc(1, sizeof *g);
    if (g)
        g->line = malloc(max_line);
    if (!g || !g->line) {
        free(g);
        snprintf(errbuf, errlen, "%s: out of memory", path);
        return NULL;
    }
    g->path = path;
    g->max_line = max_line;
    g->gz = gzopen(path, "rb");
    if (!g->gz) {
        snprintf(errbuf, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        replay_gz_close(g);
        return NULL;
    }
    gzbuffer(g->gz, REPLAY_GZ_CHUNK);
    return g;
}

/* Refills the chunk: 0, or -1 on a read or gzip error (a file cut short is one). */
static int replay_gz_fill(replay_gz_t *g, char *errbuf, size_t errlen)
{
    int n = gzread(g->gz, g->chunk, sizeof g->chunk);
    int zerr = Z_OK;
    const char *msg = n < 0 ? gzerror(g->gz, &zerr) : NULL;
    if (n < 0)
        return snprintf(errbuf, errlen, "%s: %s", g->path, msg), -1;
    if (n == 0) {
        msg = gzerror(g->gz, &zerr);
        if (zerr != Z_OK)
            return snprintf(errbuf, errlen, "%s: %s", g->path, msg), -1;
        g->eof = true;
    }
    g->rpos = 0;
    g->rend = (size_t)n;
    return 0;
}

/* As kp_lines_next: 1 a line (cut to max_line, full_len its true length), 2 the end, -1. */
int replay_gz_next(replay_gz_t *g, kp_line_t *ln, char *errbuf, size_t errlen)
{
    g->len = g->full_len = 0;
    for (;;) {
        if (g->rpos == g->rend) {
            if (g->eof && g->full_len == 0)
                return 2;
            if (g->eof)
                break; /* a last line without a newline */
            if (replay_gz_fill(g, errbuf, errlen) < 0)
                return -1;
            continue;
        }
        char *p = g->chunk + g->rpos, *nl = memchr(p, '\n', g->rend - g->rpos);
        size_t seg = nl ? (size_t)(nl - p) : g->rend - g->rpos;
        size_t keep = g->max_line - g->len < seg ? g->max_line - g->len : seg;
        memcpy(g->line + g->len, p, keep);
        g->len += keep;
        g->full_len += seg;
        g->rpos += seg + (nl ? 1 : 0);
        if (nl)
            break;
    }
    g->lineno++;
    *ln = (kp_line_t){ .data = g->line, .len = g->len, .full_len = g->full_len };
    return 1;
}

long long replay_gz_lineno(const replay_gz_t *g)
{
    return g->lineno;
}

void replay_gz_close(replay_gz_t *g)
{
    if (!g)
        return;
    if (g->gz)
        gzclose(g->gz);
    free(g->line);
    free(g);
}

bool replay_name_parse(const char *path, char *sym, size_t symlen, char *interval, size_t ivlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *d1 = strchr(base, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    if (!d1 || !d2 || (size_t)(d1 - base) >= symlen || (size_t)(d2 - d1 - 1) >= ivlen)
        return false;
    /* the date: YYYY-MM (monthly files) or YYYY-MM-DD, then .csv or .csv.gz */
    const char *date = d2 + 1, *dot = strchr(date, '.');
    size_t dl = dot ? (size_t)(dot - date) : 0;
    if ((dl != 7 && dl != 10) || (strcmp(dot, ".csv") != 0 && strcmp(dot, ".csv.gz") != 0))
        return false;
    for (size_t i = 0; i < dl; i++)
        if ((i == 4 || i == 7) ? date[i] != '-' : (date[i] < '0' || date[i] > '9'))
            return false;
    memcpy(sym, base, (size_t)(d1 - base));
    sym[d1 - base] = '\0';
    memcpy(interval, d1 + 1, (size_t)(d2 - d1 - 1));
    interval[d2 - d1 - 1] = '\0';
    return kline_symbol_valid(sym) && kline_interval_valid(interval);
}

/* Appends dir/name to the list. 0 / -1 (out of memory). */
static int replay_list_add(char ***list, int *n, const char *dir, const char *name)
{
    char **l = realloc(*list, (size_t)(*n + 2) * sizeof *l);
    if (!l)
        return -1;
    *list = l;
    size_t len = strlen(dir) + strlen(name) + 2;
    if (!(l[*n] = malloc(len)))
        return -1;
    snprintf(l[*n], len, "%s/%s", dir, name);
    l[++*n] = NULL;
    return 0;
}

/* One level: data.binance.vision files of dir into the list (sorted by name), and, when
 * depth > 0, those of its subdirectories (DIR/SYMBOL/...) in name order. */
static int replay_dir_scan(const char *dir, int depth, char ***list, int *n, char *errbuf, size_t errlen)
{
    struct dirent **ents;
    char sym[32], iv[16];
    int m = scandir(dir, &ents, NULL, alphasort), rc = 0;
    if (m < 0)
        return snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno)), -1;
    for (int i = 0; i < m; i++) {
        const char *name = ents[i]->d_name;
        struct stat st;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, name);
        if (rc == 0 && name[0] != '.' && stat(sub, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth > 0)
                rc = replay_dir_scan(sub, depth - 1, list, n, errbuf, errlen);
            else if (S_ISREG(st.st_mode) && replay_name_parse(name, sym, sizeof sym, iv, sizeof iv) &&
                     replay_list_add(list, n, dir, name) < 0)
                rc = (snprintf(errbuf, errlen, "out of memory"), -1);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int replay_dir_list(const char *dir, char ***list, char *errbuf, size_t errlen)
{
    int n = 0;
    *list = NULL;
    if (replay_dir_scan(dir, 1, list, &n, errbuf, errlen) < 0) {
        replay_list_free(*list);
        *list = NULL;
        return -1;
    }
    return n;
}

void replay_list_free(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}
