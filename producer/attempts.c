/* attempts.c — see attempts.h. */
#include "attempts.h"

#include <string.h>

void att_init(att_window_t *w) { memset(w, 0, sizeof *w); }

bool att_take(att_window_t *w, int64_t now_ms)
{
    if (w->n < ATT_MAX) {
        w->t[(w->head + w->n++) % ATT_MAX] = now_ms;
        return true;
    }
    if (now_ms - w->t[w->head] < ATT_WINDOW_MS)
        return false;
    /* the oldest left the window: its slot takes the newest */
    w->t[w->head] = now_ms;
    w->head = (w->head + 1) % ATT_MAX;
    return true;
}
