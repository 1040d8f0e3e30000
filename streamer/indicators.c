/* indicators.c — live 1m bar, SMA of closed bars and price/SMA crossovers, per symbol.
 *
 * The bar follows the aggregator's rules: OHLC come from the seconds that had trades
 * (a zero-trade second only carries the previous close); until a traded second arrives
 * the bar is flat at the first second's close. Prices stay exact decimal strings (kline_dec_cmp);
 * volume, SMA and the crossover use doubles because they are for display only. */
#include "streamer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_ind_init(struct st_ind *ind, int sma_n)
{
    memset(ind, 0, sizeof *ind);
    ind->closes = calloc((size_t)sma_n, sizeof *ind->closes);
    if (!ind->closes)
        return -1;
    ind->n = sma_n;
    return 0;
}

void st_ind_free(struct st_ind *ind)
{
    free(ind->closes);
    ind->closes = NULL;
}

bool st_ind_sma(const struct st_ind *ind, double *sma)
{
    if (ind->count < ind->n)
        return false;
    double sum = 0;
    for (int i = 0; i < ind->n; i++)
        sum += ind->closes[i];
    *sma = sum / ind->n;
    return true;
}

static void st_bar_close(struct st_ind *ind)
{
    ind->closes[ind->head] = strtod(ind->bar.close, NULL);
    ind->head = (ind->head + 1) % ind->n;
    if (ind->count < ind->n)
        ind->count++;
}

static void st_bar_start(struct st_bar *b, int64_t minute)
{
    memset(b, 0, sizeof *b);
    b->open_time = minute;
}

static void st_bar_set_flat(struct st_bar *b, const char *px)
{
    snprintf(b->open, sizeof b->open, "%s", px);
    snprintf(b->high, sizeof b->high, "%s", px);
    snprintf(b->low, sizeof b->low, "%s", px);
    snprintf(b->close, sizeof b->close, "%s", px);
}

static void st_bar_fold(struct st_bar *b, const kline_t *k, bool same_second)
{
    if (k->trades > 0) {
        if (!b->has_trades) {
            snprintf(b->open, sizeof b->open, "%s", k->open);
            snprintf(b->high, sizeof b->high, "%s", k->high);
            snprintf(b->low, sizeof b->low, "%s", k->low);
            b->has_trades = true;
        } else {
            if (kline_dec_cmp(k->high, b->high) > 0)
                snprintf(b->high, sizeof b->high, "%s", k->high);
            if (kline_dec_cmp(k->low, b->low) < 0)
                snprintf(b->low, sizeof b->low, "%s", k->low);
        }
        snprintf(b->close, sizeof b->close, "%s", k->close);
    } else if (!b->has_trades) {
        st_bar_set_flat(b, k->close);
    }
    /* A repeated second (provisional then final) refines prices but is not counted twice. */
    if (!same_second) {
        b->volume += strtod(k->volume, NULL);
        b->trades += k->trades;
        b->seconds++;
    }
    b->last_second = k->open_time;
}

void st_ind_update(struct st_ind *ind, const kline_t *k, enum st_alert_dir *dir,
                   double *price, double *sma)
{
    *dir = ST_ALERT_NONE;
    int64_t minute = k->open_time - (k->open_time % 60000);
    struct st_bar *b = &ind->bar;
    if (b->open_time == 0) {
        st_bar_start(b, minute);
    } else if (minute < b->open_time) {
        return;
    } else if (minute > b->open_time) {
        if (b->seconds > 0)
            st_bar_close(ind);
        st_bar_start(b, minute);
    }
    if (b->seconds > 0 && k->open_time < b->last_second)
        return;
    st_bar_fold(b, k, b->seconds > 0 && k->open_time == b->last_second);

    double avg;
    if (!st_ind_sma(ind, &avg))
        return;
    double px = strtod(k->close, NULL);
    int side = px > avg ? 1 : px < avg ? -1 : 0;
    if (side == 0)
        return; /* touching the SMA is not a cross; keep the last side */
    if (ind->side == -1 && side == 1)
        *dir = ST_ALERT_BULLISH;
    else if (ind->side == 1 && side == -1)
        *dir = ST_ALERT_BEARISH;
    ind->side = side;
    *price = px;
    *sma = avg;
}

void st_ind_seed(struct st_ind *ind, int64_t bar_open, const double *closes, int n)
{
    if (ind->count > 0 || ind->bar.open_time != bar_open)
        return;
    if (n > ind->n)
        n = ind->n;
    for (int i = n - 1; i >= 0; i--) {
        ind->closes[ind->head] = closes[i];
        ind->head = (ind->head + 1) % ind->n;
        ind->count++;
    }
}

static int st_bar_json(const struct st_bar *b, st_msg_t *m)
{
    int rc = st_msg_puts(m, ",\"bar\":{\"open_time\":");
    rc |= st_msg_put_i64(m, b->open_time);
    rc |= st_msg_puts(m, ",\"close_time\":");
    rc |= st_msg_put_i64(m, b->open_time + 59999);
    rc |= st_msg_puts(m, ",\"open\":\"");
    rc |= st_msg_puts(m, b->open);
    rc |= st_msg_puts(m, "\",\"high\":\"");
    rc |= st_msg_puts(m, b->high);
    rc |= st_msg_puts(m, "\",\"low\":\"");
    rc |= st_msg_puts(m, b->low);
    rc |= st_msg_puts(m, "\",\"close\":\"");
    rc |= st_msg_puts(m, b->close);
    rc |= st_msg_puts(m, "\",\"volume\":");
    rc |= st_msg_put_g10(m, b->volume);
    rc |= st_msg_puts(m, ",\"trades\":");
    rc |= st_msg_put_i64(m, b->trades);
    rc |= st_msg_puts(m, ",\"seconds\":");
    rc |= st_msg_put_i64(m, b->seconds);
    return rc | st_msg_puts(m, "}");
}

/* rc |= ...: each append is 0 or -1, the first failure sticks */
int st_ind_json(const struct st_ind *ind, st_msg_t *m)
{
    const struct st_bar *b = &ind->bar;
    int rc = b->open_time == 0 || b->seconds == 0 ? st_msg_puts(m, ",\"bar\":null") : st_bar_json(b, m);
    double sma;
    rc |= st_msg_puts(m, ",\"sma\":");
    rc |= st_ind_sma(ind, &sma) ? st_msg_put_g10(m, sma) : st_msg_puts(m, "null");
    rc |= st_msg_puts(m, ",\"sma_n\":");
    return rc | st_msg_put_i64(m, ind->n);
}
