/*
 * keepalive.h — the adaptive keep-alive policy of "Serverless in the Wild"
 * (Shahrad et al., USENIX ATC '20, §4.2: the hybrid histogram policy),
 * without its ARIMA branch.
 *
 * Per function it keeps a histogram of idle times, measured here from one
 * call's arrival to the next call's arrival. After each call, ka_decide()
 * reads the histogram and says how long to keep a worker, or when to
 * release it and start one again ahead of the expected next call. When the
 * histogram does not describe the function well, it falls back to the
 * fixed keep-alive the caller passes.
 *
 * Pure logic: no I/O, no clock, no allocation. Times are milliseconds on
 * any monotonic clock the caller chooses (uv_now() in the daemon).
 */
#ifndef HEARTH_KEEPALIVE_H
#define HEARTH_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#define KA_MAX_BINS 256 /* ceiling for ka_params.nbins (the paper's 240 fits) */

/* Tunables, shared by every function (the scheduler holds one copy). A
 * state must be reset with ka_init() if bin_ms or nbins change. */
typedef struct ka_params {
    uint64_t bin_ms;          /* width of one bin (paper: 60000) */
    uint32_t nbins;           /* 1..KA_MAX_BINS; range = nbins * bin_ms (paper: 240 = 4 h) */
    uint32_t head_permille;   /* pre-warm percentile (paper: 50 = 5th) */
    uint32_t tail_permille;   /* keep-alive percentile (paper: 990 = 99th) */
    uint32_t head_margin_pct; /* pre-warm this much earlier than the head (paper: 10) */
    uint32_t tail_margin_pct; /* keep until this much past the tail (paper: 10) */
    uint32_t min_samples;     /* fewer idle times recorded: fall back (10) */
    uint32_t oob_max_pct;     /* more idle times beyond the range than this: fall back (50) */
    double cv_min;            /* bin counts' coefficient of variation below it: fall back (2) */
    uint32_t halve_at;        /* halve all counts when this many are held (0 = only when a
                                 bin would overflow); makes old history fade */
    bool cap_at_fixed;        /* never keep a worker idle longer at a stretch than the fixed
                                 keep-alive would (Hearth: true; the paper: false) */
} ka_params;

/* Per-function state, plain data: embed it, zero it with ka_init(). */
typedef struct ka_state {
    uint64_t last_ms;           /* the previous call's arrival, if has_last */
    uint32_t n_in;              /* sum of bins */
    uint32_t n_oob;             /* idle times >= range */
    bool has_last;              /* false until the first call */
    uint16_t bins[KA_MAX_BINS]; /* idle times per bin; halved rather than overflowing */
} ka_state;

/* Why a decision was taken (for logs and metrics). */
typedef enum ka_reason {
    KA_HISTOGRAM,    /* the histogram's head and tail */
    KA_FEW_SAMPLES,  /* fallback: fewer than min_samples idle times */
    KA_OUT_OF_RANGE, /* fallback: too many idle times beyond the range (the paper's ARIMA case) */
    KA_SPREAD,       /* fallback: idle times too evenly spread (CV < cv_min) */
} ka_reason;

/* After the call that arrived at last_ms:
 *   prewarm_after_ms == 0: keep a worker until last_ms + keep_alive_ms;
 *   prewarm_after_ms  > 0: release the worker once idle, start one at
 *     last_ms + prewarm_after_ms and keep it until
 *     last_ms + prewarm_after_ms + keep_alive_ms.
 * A worker still busy at its release time is released when it frees,
 * unless by then it is inside the window. */
typedef struct ka_decision {
    uint64_t prewarm_after_ms;
    uint64_t keep_alive_ms;
    ka_reason reason;
} ka_decision;

/* The paper's parameters: 1-minute bins over 4 hours, 5th/99th
 * percentiles, 10% margins, at least 10 idle times, CV >= 2, at most 50%
 * out of range, no halving but on overflow. */
void ka_params_default(ka_params *p);

/* Returns 0, or -EINVAL for parameters ka_record/ka_decide cannot use
 * (nbins 0 or above KA_MAX_BINS, bin_ms 0 or above a day, percentiles not
 * 1 <= head <= tail <= 1000, head margin >= 100%, tail margin > 100%,
 * oob_max_pct > 100, cv_min negative or NaN, halve_at nonzero but below
 * 2 * min_samples). */
int ka_params_check(const ka_params *p);

/* An empty state: no call seen. */
void ka_init(ka_state *st);

/* A call of the function arrived at now_ms: records the idle time since the
 * previous arrival (none for the first call). A time before the previous
 * one counts as an idle time of 0. Record every arrival, also one while
 * other calls run (idle time ~0, bin 0: such functions are not unloaded).
 * `p` must have passed ka_params_check. */
void ka_record(ka_state *st, const ka_params *p, uint64_t now_ms);

/* What to do after the last recorded call; O(nbins). fixed_keep_alive_ms is
 * the fallback (prewarm 0, keep = fixed). `p` must have passed
 * ka_params_check. */
ka_decision ka_decide(const ka_state *st, const ka_params *p, uint64_t fixed_keep_alive_ms);

/* The absolute window [*from, *until) in which a worker is wanted after
 * the call at last_ms (from == last_ms when prewarm_after_ms is 0). */
void ka_window(const ka_decision *d, uint64_t last_ms, uint64_t *from, uint64_t *until);

/* True if a worker should be alive at now_ms under `d` (busy ones aside). */
bool ka_wants_worker(const ka_decision *d, uint64_t last_ms, uint64_t now_ms);

/* "histogram", "few_samples", "out_of_range", "spread". */
const char *ka_reason_name(ka_reason r);

#endif
