/*
 * input.c — NDJSON (or any line format kline_parse accepts) from stdin or a file (-i).
 *
 * Lines come from common/lines.c, held to KLINE_INPUT_MAX bytes: a longer line is never
 * held whole (an endless line must not exhaust memory); its first KLINE_INPUT_MAX bytes go
 * to `rejected` with the line's true length in the reason. The read waits at most the
 * loop's timeout, so the loop flushes by age while a pipe is quiet.
 */
#include "ins.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Input bytes taken per call at most, so the loop looks at the clock and the stop flag
 * between slices even while a stream brings only blank lines. */
#define INS_INPUT_SLICE (64 * 1024)

int ins_input_open(ins_input_t *in, const char *name, char *errbuf, size_t errlen)
{
    memset(in, 0, sizeof *in);
    in->name = name;
    return kp_lines_open(&in->lines, name, KLINE_INPUT_MAX, errbuf, errlen);
}

void ins_input_close(ins_input_t *in)
{
    kp_lines_close(&in->lines);
}

static void ins_input_origin(char *out, size_t outlen, const void *ctx)
{
    const ins_input_t *in = ctx;
    if (strcmp(in->name, "-") == 0)
        snprintf(out, outlen, "stdin:%lld", in->lines.lineno);
    else
        snprintf(out, outlen, "file:%s:%lld", in->name, in->lines.lineno);
}

/* One line (without its newline): a record, a cut line for `rejected`, or blank. */
static void ins_input_line(ins_app_t *app, const kp_line_t *l)
{
    ins_input_t *in = &app->input;
    int rc = 0;
    if (l->full_len > KLINE_INPUT_MAX) {
        char why[128], origin[320];
        snprintf(why, sizeof why, "line of %zu bytes exceeds %d (first %d kept)", l->full_len,
                 KLINE_INPUT_MAX, KLINE_INPUT_MAX);
        ins_input_origin(origin, sizeof origin, in);
        rc = ins_batch_add_reject(&app->batch, l->data, l->len, why, origin, INS_TOPIC_NONE, -1,
                                  -1);
    } else if (l->len > 0) { /* a blank line carries no record */
        rc = ins_take(app, l->data, l->len, ins_input_origin, in, INS_TOPIC_NONE, -1, -1, 0);
    }
    if (rc < 0)
        fatal("out of memory holding a batch of %zu records", app->batch.nrecords);
}

int ins_input_poll(ins_app_t *app, int timeout_ms)
{
    ins_input_t *in = &app->input;
    char err[512];
    size_t taken = 0;
    /* stops once the batch is full: the rest waits in the reader (--batch-rows holds for -i) */
    while (!in->eof && taken < INS_INPUT_SLICE &&
           (long long)app->batch.nrecords < app->opt.batch_rows) {
        kp_line_t l;
        int r = kp_lines_next(&in->lines, taken ? 0 : timeout_ms, &l, err, sizeof err);
        if (r == 0)
            return 0;
        if (r < 0) {
            log_error("%s", err);
            return -1;
        }
        if (r == 2) {
            in->eof = true;
            break;
        }
        ins_input_line(app, &l);
        taken += l.full_len + 1;
    }
    return in->eof ? 1 : 0;
}
