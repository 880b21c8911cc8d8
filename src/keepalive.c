/*
 * keepalive.c — the hybrid histogram keep-alive policy (Shahrad et al.,
 * ATC '20), minus ARIMA: per-function idle-time histograms and the
 * pre-warm / keep-alive windows read from them.
 *
 * Owns: nothing but the ka_state it is handed. Must never: read a clock,
 * allocate, do I/O, or cost more than O(nbins) per call.
 *
 * Readings of the paper, and where we differ from it:
 * - Idle time is arrival to next arrival (the paper: end of a call to the
 *   next arrival). Hearth's calls last far less than a 1-minute bin.
 * - Head = the lower edge of the bin holding the head percentile; tail =
 *   the upper edge of the bin holding the tail percentile, both over the
 *   in-range idle times. The 10% margins follow the paper: the pre-warm
 *   comes 10% of the head earlier, the window ends 10% of the tail later.
 *   A head in bin 0 means "do not unload": keep until the tail.
 * - Representative means: at least min_samples idle times, at most
 *   oob_max_pct of them beyond the range, and the coefficient of variation
 *   (population std / mean) of the nbins bin counts, empty bins included,
 *   at least cv_min. CV^2 + 1 = nbins / (effective number of bins used),
 *   so CV >= 2 with 240 bins means the idle times crowd into fewer than
 *   about 48 bins' worth. Below it the paper falls back. Caveat: n idle
 *   times in n distinct bins give CV^2 = nbins/n - 1, so the test cannot
 *   refuse a histogram of fewer than nbins/5 idle times (48 with the
 *   paper's 240 bins), however spread; min_samples is the only guard then.
 * - The paper's fallbacks are a 4-hour keep-alive (not representative) and
 *   an ARIMA forecast (too many out of range); ours is the caller's fixed
 *   keep-alive for both, so a function the histogram cannot describe is
 *   treated exactly as without this policy.
 * - The paper does not age its histograms; to stay in 16-bit bins we halve
 *   every count when one would overflow (or when halve_at are held), which
 *   keeps the shape and lets old history fade.
 */
#include "keepalive.h"

#include <errno.h>
#include <string.h>

#define KA_MAX_BIN_MS 86400000ULL /* a day: keeps every product below 2^40 */

_Static_assert(sizeof(ka_state) <= 2048, "ka_state must stay under 2 KiB per function");

void ka_params_default(ka_params *p)
{
    *p = (ka_params){
        .bin_ms = 60000,
        .nbins = 240,
        .head_permille = 50,
        .tail_permille = 990,
        .head_margin_pct = 10,
        .tail_margin_pct = 10,
        .min_samples = 10,
        .oob_max_pct = 50,
        .cv_min = 2.0,
        .halve_at = 0,
        .cap_at_fixed = true,
    };
}

int ka_params_check(const ka_params *p)
{
    if (p->nbins == 0 || p->nbins > KA_MAX_BINS || p->bin_ms == 0 || p->bin_ms > KA_MAX_BIN_MS)
        return -EINVAL;
    if (p->head_permille == 0 || p->head_permille > p->tail_permille || p->tail_permille > 1000)
        return -EINVAL;
    if (p->head_margin_pct >= 100 || p->tail_margin_pct > 100 || p->oob_max_pct > 100)
        return -EINVAL;
    if (!(p->cv_min >= 0)) /* also refuses NaN */
        return -EINVAL;
    /* halving must leave enough samples to stay above min_samples */
    if (p->halve_at != 0 && p->halve_at / 2 < p->min_samples)
        return -EINVAL;
    return 0;
}

void ka_init(ka_state *st)
{
    memset(st, 0, sizeof *st);
}

/* Halves every count, keeping the histogram's shape in half the weight. */
static void halve(ka_state *st, const ka_params *p)
{
    st->n_in = 0;
    for (uint32_t i = 0; i < p->nbins; i++) {
        st->bins[i] /= 2;
        st->n_in += st->bins[i];
    }
    st->n_oob /= 2;
}

void ka_record(ka_state *st, const ka_params *p, uint64_t now_ms)
{
    if (!st->has_last) {
        st->has_last = true;
        st->last_ms = now_ms;
        return;
    }
    uint64_t idle = now_ms > st->last_ms ? now_ms - st->last_ms : 0;
    st->last_ms = now_ms;
    uint64_t bin = idle / p->bin_ms;
    if (bin < p->nbins && st->bins[bin] == UINT16_MAX)
        halve(st, p);
    if (bin < p->nbins) {
        st->bins[bin]++;
        st->n_in++;
    } else {
        if (st->n_oob == UINT32_MAX)
            halve(st, p);
        st->n_oob++;
    }
    if (p->halve_at && st->n_in + st->n_oob >= p->halve_at)
        halve(st, p);
}

/* The first bin at which at least permille/1000 of the n_in counts lie. */
static uint32_t percentile_bin(const ka_state *st, const ka_params *p, uint32_t permille)
{
    uint64_t need = ((uint64_t)st->n_in * permille + 999) / 1000;
    if (need == 0)
        need = 1;
    uint64_t cum = 0;
    for (uint32_t i = 0; i < p->nbins; i++) {
        cum += st->bins[i];
        if (cum >= need)
            return i;
    }
    return p->nbins - 1;
}

/* CV < cv_min, from CV^2 = nbins * sum(c^2) / n^2 - 1 (population variance). */
static bool too_spread(const ka_state *st, const ka_params *p)
{
    uint64_t sumsq = 0;
    for (uint32_t i = 0; i < p->nbins; i++)
        sumsq += (uint64_t)st->bins[i] * st->bins[i];
    double n = (double)st->n_in;
    double cv2 = (double)p->nbins * (double)sumsq / (n * n) - 1.0;
    return cv2 < p->cv_min * p->cv_min;
}

static ka_decision fallback(ka_reason why, uint64_t fixed_keep_alive_ms)
{
    return (ka_decision){
        .prewarm_after_ms = 0, .keep_alive_ms = fixed_keep_alive_ms, .reason = why};
}

ka_decision ka_decide(const ka_state *st, const ka_params *p, uint64_t fixed_keep_alive_ms)
{
    uint64_t held = (uint64_t)st->n_in + st->n_oob;
    if (held < p->min_samples || held == 0)
        return fallback(KA_FEW_SAMPLES, fixed_keep_alive_ms);
    if ((uint64_t)st->n_oob * 100 > (uint64_t)p->oob_max_pct * held || st->n_in == 0)
        return fallback(KA_OUT_OF_RANGE, fixed_keep_alive_ms);
    if (too_spread(st, p))
        return fallback(KA_SPREAD, fixed_keep_alive_ms);

    uint64_t head = (uint64_t)percentile_bin(st, p, p->head_permille) * p->bin_ms;
    uint64_t tail = ((uint64_t)percentile_bin(st, p, p->tail_permille) + 1) * p->bin_ms;
    uint64_t prewarm = head * (100 - p->head_margin_pct) / 100;
    uint64_t until = tail * (100 + p->tail_margin_pct) / 100;
    uint64_t keep = until - prewarm;
    /* The histogram may shorten the wait or move it, not lengthen it: a
     * function whose calls are spread out keeps the fixed window. */
    if (p->cap_at_fixed && keep > fixed_keep_alive_ms)
        keep = fixed_keep_alive_ms;
    return (ka_decision){
        .prewarm_after_ms = prewarm, .keep_alive_ms = keep, .reason = KA_HISTOGRAM};
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void ka_window(const ka_decision *d, uint64_t last_ms, uint64_t *from, uint64_t *until)
{
    *from = add_sat(last_ms, d->prewarm_after_ms);
    *until = add_sat(*from, d->keep_alive_ms);
}

bool ka_wants_worker(const ka_decision *d, uint64_t last_ms, uint64_t now_ms)
{
    uint64_t from, until;
    ka_window(d, last_ms, &from, &until);
    return now_ms >= from && now_ms < until;
}

const char *ka_reason_name(ka_reason r)
{
    switch (r) {
    case KA_HISTOGRAM:
        return "histogram";
    case KA_FEW_SAMPLES:
        return "few_samples";
    case KA_OUT_OF_RANGE:
        return "out_of_range";
    case KA_SPREAD:
        return "spread";
    }
    return "unknown";
}
