/*
 * metrics_cost.c — what /metrics costs, without a daemon: the recording a
 * warm call pays (two monotonic clock reads, metrics_fn_call_done: one
 * histogram bucket search and a status slot), and one scrape of 10,000
 * functions (render time and size). Built by bench/metrics_cost.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "metrics.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t calls = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    size_t nfns = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000;

    /* Recording, as sched.c's finish() does it for a warm 200. */
    static metrics_fn fn;
    volatile uint64_t sink = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        uint64_t arrived = now_ns();
        metrics_fn_call_done(&fn, metrics_trigger_of("invoke"), 200, NULL,
                             (now_ns() - arrived) / 1000 + (i & 1023) * 1000);
    }
    uint64_t t1 = now_ns();
    sink += fn.codes[0].n;
    printf("recording: %.1f ns per call (clock reads included), %zu calls\n",
           (double)(t1 - t0) / (double)calls, calls);

    /* One scrape of nfns functions, each with calls and a cold start. */
    metrics_fn *fns = calloc(nfns, sizeof *fns);
    char(*names)[32] = calloc(nfns, sizeof *names);
    metrics *m = metrics_new("bench");
    metrics_scrape sc = {0};
    if (!fns || !names || !m)
        return 2;
    for (size_t i = 0; i < nfns; i++) {
        snprintf(names[i], sizeof names[i], "function-%06zu", i);
        metrics_fn_call_done(&fns[i], METRICS_TRIGGER_INVOKE, 200, NULL, 1500);
        metrics_fn_call_done(&fns[i], METRICS_TRIGGER_HTTP, 404, NULL, 2500);
        metrics_hist_observe(&fns[i].init, 30000);
    }
    double best = 1e18;
    size_t len = 0;
    for (int round = 0; round < 5; round++) {
        for (size_t i = 0; i < nfns; i++) {
            metrics_fn_view v = {.name = names[nfns - 1 - i], .m = &fns[nfns - 1 - i], .idle = 1};
            if (metrics_scrape_add(&sc, &v) < 0)
                return 2;
        }
        buf out;
        buf_init(&out, METRICS_MAX_TEXT);
        uint64_t r0 = now_ns();
        int rc = metrics_render(m, &sc, &out);
        uint64_t r1 = now_ns();
        if (rc < 0)
            return 2;
        len = out.len;
        buf_release(&out);
        metrics_scrape_release(&sc);
        if ((double)(r1 - r0) < best)
            best = (double)(r1 - r0);
    }
    printf("scrape of %zu functions: %.1f ms to render (best of 5), %zu bytes (%zu per "
           "function)\n",
           nfns, best / 1e6, len, nfns ? len / nfns : 0);
    metrics_free(m);
    free(names);
    free(fns);
    return sink == 0;
}
