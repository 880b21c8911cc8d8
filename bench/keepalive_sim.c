/*
 * keepalive_sim.c — replays a synthetic, Azure-shaped week of function
 * calls against a fixed 10-minute keep-alive and against the hybrid
 * histogram policy of src/keepalive.c, and prints a plain-text report:
 * cold-start ratios, idle worker time and wasted memory time, overall, per
 * kind of function and per call rate.
 *
 * Model: one worker per function; calls take no time; a call is cold when
 * no worker is alive at its arrival, and a pre-warmed worker is warm. A
 * worker alive and not running a call is idle; idle time times the
 * function's memory is the paper's wasted memory time. Everything is
 * derived from one seed, so a run is reproducible bit for bit.
 *
 * Owns: the trace it generates (freed before exit). Must never: read a
 * clock or a file, or depend on anything but its arguments.
 *
 * Usage: keepalive_sim [SEED [FUNCTIONS [DAYS]]]   defaults 1, 200, 7.
 * Exit status: 0 if the adaptive policy has both a lower cold-start ratio
 * and fewer idle worker-seconds than the fixed one, 1 if not, 2 on bad
 * arguments or out of memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keepalive.h"

#define SEC          1000ULL
#define MIN          (60 * SEC)
#define HOUR         (60 * MIN)
#define DAY          (24 * HOUR)
#define FIXED_MS     (10 * MIN)
#define MAX_FUNCS    100000
#define MAX_DAYS     60
#define MAX_CALLS_FN 10000000 /* per function: a ceiling on one trace */

enum kind { K_TIMER, K_POISSON, K_BURSTY, NKINDS };
static const char *const kind_names[NKINDS] = {"timer", "poisson", "bursty"};
static const unsigned kind_pct[NKINDS] = {30, 45, 25}; /* share of the population */

/* Timer periods, in minutes: picked uniformly. */
static const unsigned timer_periods[] = {1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440};
#define NPERIODS (sizeof timer_periods / sizeof timer_periods[0])

typedef struct fn {
    enum kind kind;
    double memory_gb;
    uint64_t *t; /* arrivals, ms, ascending */
    size_t n, cap;
} fn;

/* --- deterministic randomness (splitmix64) --- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_exp(rng *r, double mean)
{
    return -log1p(-rng_unit(r)) * mean;
}

static double rng_logu(rng *r, double lo, double hi) /* log-uniform in [lo, hi) */
{
    return exp(log(lo) + rng_unit(r) * (log(hi) - log(lo)));
}

/* --- the trace --- */

static int fn_push(fn *f, uint64_t t)
{
    if (f->n == f->cap) {
        if (f->cap >= MAX_CALLS_FN)
            return -E2BIG;
        size_t cap = f->cap ? f->cap * 2 : 256;
        uint64_t *p = realloc(f->t, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        f->t = p;
        f->cap = cap;
    }
    f->t[f->n++] = t;
    return 0;
}

/* Fires every period from a random phase, each call late by up to 1% of
 * the period (at least 1 s): cron-like timers. */
static int gen_timer(fn *f, rng *r, uint64_t horizon)
{
    uint64_t period = timer_periods[rng_next(r) % NPERIODS] * MIN;
    uint64_t jitter = period / 100 > SEC ? period / 100 : SEC;
    for (uint64_t base = (uint64_t)(rng_unit(r) * (double)period); base < horizon; base += period) {
        uint64_t t = base + (uint64_t)(rng_unit(r) * (double)jitter);
        int rc = t < horizon ? fn_push(f, t) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* Poisson arrivals, mean interval log-uniform from 10 s to a day. */
static int gen_poisson(fn *f, rng *r, uint64_t horizon)
{
    double mean = rng_logu(r, 10.0 * SEC, (double)DAY);
    for (double t = rng_exp(r, mean); t < (double)horizon; t += rng_exp(r, mean)) {
        int rc = fn_push(f, (uint64_t)t);
        if (rc)
            return rc;
    }
    return 0;
}

/* On/off: bursts of Poisson calls (mean interval 5-60 s) lasting ~2-60
 * min, separated by silences of ~30 min to a day (exponential lengths). */
static int gen_bursty(fn *f, rng *r, uint64_t horizon)
{
    double gap = rng_logu(r, 5.0 * SEC, 60.0 * SEC);
    double on = rng_logu(r, 2.0 * MIN, 60.0 * MIN);
    double off = rng_logu(r, 30.0 * MIN, (double)DAY);
    double t = rng_exp(r, off);
    while (t < (double)horizon) {
        double end = t + rng_exp(r, on);
        for (; t < end && t < (double)horizon; t += rng_exp(r, gap)) {
            int rc = fn_push(f, (uint64_t)t);
            if (rc)
                return rc;
        }
        t = end + rng_exp(r, off);
    }
    return 0;
}

static enum kind kind_of(unsigned i, unsigned nfuncs)
{
    unsigned pct = (unsigned)((uint64_t)i * 100 / nfuncs), acc = 0;
    for (int k = 0; k < NKINDS; k++)
        if (pct < (acc += kind_pct[k]))
            return (enum kind)k;
    return K_BURSTY;
}

static int gen_trace(fn *fns, unsigned nfuncs, uint64_t seed, uint64_t horizon)
{
    for (unsigned i = 0; i < nfuncs; i++) {
        rng r = {seed * 0x100000001b3ULL + i};
        rng_next(&r);
        fn *f = &fns[i];
        f->kind = kind_of(i, nfuncs);
        f->memory_gb = rng_logu(&r, 0.125, 1.0); /* 128 MB to 1 GB */
        int rc = f->kind == K_TIMER     ? gen_timer(f, &r, horizon)
                 : f->kind == K_POISSON ? gen_poisson(f, &r, horizon)
                                        : gen_bursty(f, &r, horizon);
        if (rc)
            return rc;
    }
    return 0;
}

/* --- replay --- */

typedef struct policy {
    const char *name;
    bool adaptive;
    ka_params p;
    uint64_t fixed_ms; /* the keep-alive, or the adaptive policy's fallback */
} policy;

typedef struct tally {
    uint64_t calls, cold, starts; /* starts: cold starts + pre-warms */
    double idle_s, waste_gbs;
    uint64_t reasons[4];   /* adaptive decisions, one per call */
    ka_reason last_reason; /* the decision after the last call (not summed) */
} tally;

static void tally_add(tally *a, const tally *b)
{
    a->calls += b->calls;
    a->cold += b->cold;
    a->starts += b->starts;
    a->idle_s += b->idle_s;
    a->waste_gbs += b->waste_gbs;
    for (int i = 0; i < 4; i++)
        a->reasons[i] += b->reasons[i];
}

/* Idle time of the window [from, until) that the next call at `next` (or
 * the horizon) cuts short; a window not yet open cost nothing. */
static uint64_t window_idle(uint64_t from, uint64_t until, uint64_t next)
{
    if (next <= from)
        return 0;
    return (next < until ? next : until) - from;
}

static void replay(const fn *f, const policy *pol, uint64_t horizon, tally *out)
{
    ka_state st;
    ka_init(&st);
    memset(out, 0, sizeof *out);
    uint64_t from = 0, until = 0, idle = 0;
    bool prewarm = false;
    for (size_t i = 0; i < f->n; i++) {
        uint64_t now = f->t[i];
        bool warm = i > 0 && now >= from && now < until;
        if (i > 0) {
            idle += window_idle(from, until, now);
            out->starts += prewarm && now >= from;
        }
        out->cold += !warm;
        out->starts += !warm;
        ka_decision d = {.prewarm_after_ms = 0, .keep_alive_ms = pol->fixed_ms};
        if (pol->adaptive) {
            ka_record(&st, &pol->p, now);
            d = ka_decide(&st, &pol->p, pol->fixed_ms);
            out->reasons[d.reason]++;
            out->last_reason = d.reason;
        }
        ka_window(&d, now, &from, &until);
        prewarm = d.prewarm_after_ms > 0;
    }
    if (f->n) {
        idle += window_idle(from, until, horizon);
        out->starts += prewarm && horizon > from;
    }
    out->calls = f->n;
    out->idle_s = (double)idle / SEC;
    out->waste_gbs = out->idle_s * f->memory_gb;
}

/* --- the report --- */

static double pct(uint64_t a, uint64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

static double change(double fixed, double adaptive)
{
    return fixed > 0 ? 100.0 * (adaptive - fixed) / fixed : 0.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 75th percentile (nearest rank) of the per-function cold-start ratios
 * of functions with at least one call; `scratch` holds nfuncs doubles. */
static double p75_cold(const tally *per_fn, unsigned nfuncs, double *scratch)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nfuncs; i++)
        if (per_fn[i].calls)
            scratch[n++] = pct(per_fn[i].cold, per_fn[i].calls);
    if (!n)
        return 0;
    qsort(scratch, n, sizeof *scratch, cmp_double);
    unsigned rank = (3 * n + 3) / 4; /* ceil(0.75 n) */
    return scratch[rank - 1];
}

typedef struct result {
    tally all;
    double p75;
} result;

static void run_policy(const fn *fns, unsigned nfuncs, const policy *pol, uint64_t horizon,
                       tally *per_fn, double *scratch, result *res)
{
    memset(res, 0, sizeof *res);
    for (unsigned i = 0; i < nfuncs; i++) {
        replay(&fns[i], pol, horizon, &per_fn[i]);
        tally_add(&res->all, &per_fn[i]);
    }
    res->p75 = p75_cold(per_fn, nfuncs, scratch);
}

/* The fixed keep-alive whose idle time is closest to (not below) idle_s,
 * by bisection: idle time grows with the keep-alive. Fills *res for it. */
static uint64_t equal_idle_keep_alive(const fn *fns, unsigned nfuncs, uint64_t horizon,
                                      double idle_s, tally *per_fn, double *scratch, result *res)
{
    policy pol = {.name = "fixed", .adaptive = false};
    uint64_t lo = 0, hi = horizon;
    while (hi - lo > SEC) {
        pol.fixed_ms = lo + (hi - lo) / 2;
        run_policy(fns, nfuncs, &pol, horizon, per_fn, scratch, res);
        if (res->all.idle_s < idle_s)
            lo = pol.fixed_ms;
        else
            hi = pol.fixed_ms;
    }
    pol.fixed_ms = hi;
    run_policy(fns, nfuncs, &pol, horizon, per_fn, scratch, res);
    return hi;
}

static void print_trace(const fn *fns, unsigned nfuncs, unsigned days)
{
    printf("trace (synthetic, shaped like the Azure Functions trace; seeded, deterministic):\n");
    printf("  %-8s %9s %10s   %-23s %s\n", "kind", "functions", "calls", "calls/day (min..max)",
           "shape");
    static const char *const shape[NKINDS] = {
        "fixed period from {1,2,5,10,15,30,60,120,180,360,720,1440} min, late by <= 1% (>= 1 s)",
        "Poisson, mean interval log-uniform 10 s .. 1 day",
        "on/off: bursts of ~2-60 min at 5-60 s mean interval, silences of ~30 min .. 1 day",
    };
    unsigned hourly = 0, minutely = 0, active = 0;
    uint64_t total = 0;
    for (int k = 0; k < NKINDS; k++) {
        unsigned n = 0;
        uint64_t calls = 0;
        double lo = INFINITY, hi = 0;
        for (unsigned i = 0; i < nfuncs; i++) {
            if (fns[i].kind != (enum kind)k)
                continue;
            double per_day = (double)fns[i].n / days;
            n++;
            calls += fns[i].n;
            lo = per_day < lo ? per_day : lo;
            hi = per_day > hi ? per_day : hi;
        }
        printf("  %-8s %9u %10" PRIu64 "   %9.1f .. %-9.0f %s\n", kind_names[k], n, calls,
               n ? lo : 0, hi, shape[k]);
        total += calls;
    }
    for (unsigned i = 0; i < nfuncs; i++) {
        double per_day = (double)fns[i].n / days;
        active += fns[i].n > 0;
        hourly += per_day <= 24;
        minutely += per_day <= 1440;
    }
    printf("  %-8s %9u %10" PRIu64
           "   %u functions with calls; memory log-uniform 128 MB .. 1 GB\n",
           "all", nfuncs, total, active);
    printf("  %.0f%% of functions average <= 1 call/hour (paper: 45%% of apps), %.0f%% <= 1/min "
           "(paper: 81%%)\n",
           pct(hourly, nfuncs), pct(minutely, nfuncs));
}

static void print_row(const char *label, int decimals, double f, double a)
{
    printf("  %-38s %12.*f %12.*f   %+7.1f%%\n", label, decimals, f, decimals, a, change(f, a));
}

static void print_main(const result *rf, const result *ra)
{
    printf("\n  %-38s %12s %12s   %8s\n", "", "fixed 10 min", "adaptive", "change");
    print_row("cold-start ratio, all calls (%)", 2, pct(rf->all.cold, rf->all.calls),
              pct(ra->all.cold, ra->all.calls));
    print_row("cold-start ratio, p75 per function (%)", 2, rf->p75, ra->p75);
    print_row("cold starts", 0, (double)rf->all.cold, (double)ra->all.cold);
    print_row("idle worker-hours", 1, rf->all.idle_s / 3600, ra->all.idle_s / 3600);
    print_row("wasted memory time (GB-hours)", 1, rf->all.waste_gbs / 3600,
              ra->all.waste_gbs / 3600);
    print_row("worker starts (cold + pre-warm)", 0, (double)rf->all.starts, (double)ra->all.starts);
}

/* One line per group of functions (`group_of` returns -1 to skip one). */
static void print_groups(const char *title, const char *const *names, int ngroups,
                         int (*group_of)(const fn *, unsigned days), const fn *fns, unsigned nfuncs,
                         unsigned days, const tally *tf, const tally *ta)
{
    printf("\n%s\n", title);
    printf("  %-16s %5s %9s  %8s %8s  %10s %10s %8s\n", "", "fns", "calls", "cold% fx", "cold% ad",
           "idle h fx", "idle h ad", "idle chg");
    for (int g = 0; g < ngroups; g++) {
        tally f = {0}, a = {0};
        unsigned n = 0;
        for (unsigned i = 0; i < nfuncs; i++) {
            if (group_of(&fns[i], days) != g)
                continue;
            n++;
            tally_add(&f, &tf[i]);
            tally_add(&a, &ta[i]);
        }
        printf("  %-16s %5u %9" PRIu64 "  %8.2f %8.2f  %10.1f %10.1f %+7.1f%%\n", names[g], n,
               f.calls, pct(f.cold, f.calls), pct(a.cold, a.calls), f.idle_s / 3600,
               a.idle_s / 3600, change(f.idle_s, a.idle_s));
    }
}

static int group_kind(const fn *f, unsigned days)
{
    (void)days;
    return (int)f->kind;
}

static const char *const rate_names[] = {"< 1 min", "1 .. 10 min", "10 min .. 1 h", "1 h .. 4 h",
                                         ">= 4 h"};

/* By the average interval between calls over the whole trace. */
static int group_rate(const fn *f, unsigned days)
{
    if (f->n == 0)
        return 4;
    double mean = (double)days * DAY / (double)f->n;
    return mean < MIN ? 0 : mean < 10 * MIN ? 1 : mean < HOUR ? 2 : mean < 4 * HOUR ? 3 : 4;
}

static void print_reasons(const tally *a, const tally *per_fn, unsigned nfuncs)
{
    uint64_t n = 0, last[4] = {0};
    for (int r = 0; r < 4; r++)
        n += a->reasons[r];
    for (unsigned i = 0; i < nfuncs; i++)
        if (per_fn[i].calls)
            last[per_fn[i].last_reason]++;
    printf("\nadaptive decisions, one per call:  ");
    for (int r = 0; r < 4; r++)
        printf(" %s %.1f%%", ka_reason_name((ka_reason)r), pct(a->reasons[r], n));
    printf("\nadaptive, functions by last decision:");
    for (int r = 0; r < 4; r++)
        printf(" %s %" PRIu64, ka_reason_name((ka_reason)r), last[r]);
    printf("\n");
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned seed = 1, nfuncs = 200, days = 7;
    if (argc > 4 || (argc > 1 && parse_uint(argv[1], 0, UINT32_MAX, &seed)) ||
        (argc > 2 && parse_uint(argv[2], 1, MAX_FUNCS, &nfuncs)) ||
        (argc > 3 && parse_uint(argv[3], 1, MAX_DAYS, &days))) {
        fprintf(stderr, "usage: keepalive_sim [SEED [FUNCTIONS (1..%d) [DAYS (1..%d)]]]\n",
                MAX_FUNCS, MAX_DAYS);
        return 2;
    }
    uint64_t horizon = days * DAY;

    policy fixed = {.name = "fixed", .adaptive = false, .fixed_ms = FIXED_MS};
    policy adaptive = {.name = "adaptive", .adaptive = true, .fixed_ms = FIXED_MS};
    ka_params_default(&adaptive.p);
    if (ka_params_check(&adaptive.p)) {
        fprintf(stderr, "keepalive_sim: default parameters refused\n");
        return 2;
    }
    /* Other readings and settings; reported, not judged. */
    enum { NVARIANTS = 6 };
    policy variants[NVARIANTS] = {adaptive, adaptive, adaptive, adaptive, adaptive, adaptive};
    variants[0].name = "no head margin (pre-warm at the head bin's edge)";
    variants[0].p.head_margin_pct = 0;
    variants[1].name = "paper's own fallback (keep 4 h, not 10 min)";
    variants[1].fixed_ms = 4 * HOUR;
    variants[2].name = "range 2 h (120 bins)";
    variants[2].p.nbins = 120;
    variants[3].name = "range 1 h (60 bins)";
    variants[3].p.nbins = 60;
    variants[4].name = "halve_at 1000 (old history fades)";
    variants[4].p.halve_at = 1000;
    variants[5].name = "the paper's window, uncapped (may outlast 10 min)";
    variants[5].p.cap_at_fixed = false;

    fn *fns = calloc(nfuncs, sizeof *fns);
    tally *tf = calloc(nfuncs, sizeof *tf), *ta = calloc(nfuncs, sizeof *ta);
    tally *tv = calloc(nfuncs, sizeof *tv);
    double *scratch = calloc(nfuncs, sizeof *scratch);
    int status = 2;
    if (!fns || !tf || !ta || !tv || !scratch || gen_trace(fns, nfuncs, seed, horizon)) {
        fprintf(stderr, "keepalive_sim: out of memory\n");
        goto out;
    }

    printf("keepalive_sim: hybrid histogram keep-alive (Shahrad et al., ATC '20) vs a fixed "
           "10-minute keep-alive\n");
    printf("seed %u, %u functions, %u days; one worker per function, calls take no time, a call "
           "is cold when no worker is alive at its arrival\n\n",
           seed, nfuncs, days);
    print_trace(fns, nfuncs, days);

    printf("\npolicies:\n");
    printf("  fixed     a worker stays 10 min after each call\n");
    printf("  adaptive  idle time = arrival to next arrival, 240 bins of 1 min (4 h); pre-warm "
           "at the 5th percentile's bin - 10%%,\n"
           "            keep until the 99th percentile's bin + 10%% (head in bin 0: no unload); "
           "falls back to the fixed 10 min\n"
           "            with < 10 idle times, > 50%% of them beyond 4 h (the paper's ARIMA "
           "case), or bin counts' CV < 2;\n"
           "            the window never lasts longer than the fixed 10 min (Hearth's cap; the "
           "paper's uncapped window is a variant below)\n");

    result rf, ra;
    run_policy(fns, nfuncs, &fixed, horizon, tf, scratch, &rf);
    run_policy(fns, nfuncs, &adaptive, horizon, ta, scratch, &ra);
    print_main(&rf, &ra);
    print_groups("by kind:", kind_names, NKINDS, group_kind, fns, nfuncs, days, tf, ta);
    print_groups("by average interval between calls:", rate_names, 5, group_rate, fns, nfuncs, days,
                 tf, ta);
    print_reasons(&ra.all, ta, nfuncs);

    result re;
    uint64_t k = equal_idle_keep_alive(fns, nfuncs, horizon, ra.all.idle_s, tv, scratch, &re);
    printf("\nat equal idle time: a fixed keep-alive of %.1f min idles %.1f h (adaptive: %.1f h) "
           "with cold-start ratio %.2f%% (adaptive: %.2f%%), p75 per function %.2f%% (adaptive: "
           "%.2f%%)\n",
           (double)k / MIN, re.all.idle_s / 3600, ra.all.idle_s / 3600,
           pct(re.all.cold, re.all.calls), pct(ra.all.cold, ra.all.calls), re.p75, ra.p75);

    printf("\nvariants of the adaptive policy (information only, not in the exit status):\n");
    printf("  %-50s %8s %8s %10s %10s\n", "", "cold%", "p75 %", "idle h", "GB-h");
    printf("  %-50s %8.2f %8.2f %10.1f %10.1f\n", "fixed 10 min", pct(rf.all.cold, rf.all.calls),
           rf.p75, rf.all.idle_s / 3600, rf.all.waste_gbs / 3600);
    printf("  %-50s %8.2f %8.2f %10.1f %10.1f\n", "adaptive (above)",
           pct(ra.all.cold, ra.all.calls), ra.p75, ra.all.idle_s / 3600, ra.all.waste_gbs / 3600);
    for (int v = 0; v < NVARIANTS; v++) {
        result rv;
        run_policy(fns, nfuncs, &variants[v], horizon, tv, scratch, &rv);
        printf("  %-50s %8.2f %8.2f %10.1f %10.1f\n", variants[v].name,
               pct(rv.all.cold, rv.all.calls), rv.p75, rv.all.idle_s / 3600,
               rv.all.waste_gbs / 3600);
    }

    bool fewer_cold = ra.all.cold * rf.all.calls < rf.all.cold * ra.all.calls;
    bool less_idle = ra.all.idle_s < rf.all.idle_s;
    printf("\nverdict: cold-start ratio %s, idle worker-seconds %s -> %s\n",
           fewer_cold ? "lower" : "NOT lower", less_idle ? "lower" : "NOT lower",
           fewer_cold && less_idle ? "adaptive wins (exit 0)" : "adaptive does not win (exit 1)");
    status = fewer_cold && less_idle ? 0 : 1;
out:
    for (unsigned i = 0; fns && i < nfuncs; i++)
        free(fns[i].t);
    free(fns);
    free(tf);
    free(ta);
    free(tv);
    free(scratch);
    return status;
}
