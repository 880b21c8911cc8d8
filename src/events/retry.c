/*
 * retry.c — the retry policy of asynchronous invocations: exponential
 * backoff with full jitter (each wait is uniform between zero and the
 * exponential bound, so retries of many failed events spread out instead
 * of arriving together), a retry budget and a maximum event age.
 */
#include "events/retry.h"

/* A throttled event waits this long (plus jitter) before it is offered
 * again: room usually comes back within one call's time. */
#define THROTTLE_WAIT_MS 200

uint64_t retry_backoff_ms(unsigned failures, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd)
{
    uint64_t bound = base_ms;
    for (unsigned i = 1; i < failures && bound < cap_ms; i++)
        bound *= 2;
    if (bound > cap_ms)
        bound = cap_ms;
    return bound ? (uint64_t)rnd % (bound + 1) : 0;
}

bool retry_may_start(const retry_policy *p, uint64_t age_ms)
{
    return age_ms <= p->max_age_ms;
}

retry_decision retry_decide(const retry_policy *p, retry_outcome outcome, unsigned attempts,
                            uint64_t age_ms, uint32_t rnd)
{
    retry_decision d = {RETRY_DONE, 0};
    switch (outcome) {
    case RETRY_SUCCEEDED:
        return d;
    case RETRY_FATAL:
        d.verdict = RETRY_GONE;
        return d;
    case RETRY_THROTTLED:
        d.verdict = retry_may_start(p, age_ms) ? RETRY_WAIT : RETRY_TOO_OLD;
        d.delay_ms = THROTTLE_WAIT_MS + rnd % THROTTLE_WAIT_MS;
        return d;
    case RETRY_FAILED:
        break;
    }
    if (attempts > p->retries) {
        d.verdict = RETRY_EXHAUSTED;
        return d;
    }
    d.delay_ms = retry_backoff_ms(attempts, p->base_ms, RETRY_CAP_MS, rnd);
    d.verdict = retry_may_start(p, age_ms + d.delay_ms) ? RETRY_AGAIN : RETRY_TOO_OLD;
    return d;
}
