/*
 * retry.h — what becomes of an asynchronous invocation after an attempt:
 * the pure policy (no clock, no store), tested with made-up times.
 */
#ifndef HEARTH_RETRY_H
#define HEARTH_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_CAP_MS (5 * 60 * 1000) /* the longest wait between two attempts */

/* How an attempt ended, as the policy sees it. */
typedef enum retry_outcome {
    RETRY_SUCCEEDED, /* the function answered */
    RETRY_FAILED,    /* error, crash, timeout, out of memory, violation: retried */
    RETRY_FATAL,     /* the function is gone: never retried */
    RETRY_THROTTLED, /* no attempt took place (queue full, timed out waiting) */
} retry_outcome;

typedef struct retry_policy {
    unsigned retries;    /* attempts after the first (async_retries) */
    uint64_t base_ms;    /* async_retry_base_ms */
    uint64_t max_age_ms; /* async_max_age_s, in ms */
} retry_policy;

typedef enum retry_verdict {
    RETRY_DONE,      /* succeeded */
    RETRY_AGAIN,     /* retry after delay_ms */
    RETRY_WAIT,      /* throttled: run again after delay_ms, attempt not counted */
    RETRY_EXHAUSTED, /* dead: no attempts left */
    RETRY_TOO_OLD,   /* dead: older than max_age */
    RETRY_GONE,      /* dead: cannot ever run */
} retry_verdict;

typedef struct retry_decision {
    retry_verdict verdict;
    uint64_t delay_ms;
} retry_decision;

/* Exponential backoff with full jitter: a delay drawn from
 * [0, min(cap, base * 2^(failures - 1))] by `rnd` (any 32 random bits). */
uint64_t retry_backoff_ms(unsigned failures, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);

/* The decision after attempt number `attempts` (1 = the first) ended with
 * `outcome`, for an event `age_ms` old. */
retry_decision retry_decide(const retry_policy *p, retry_outcome outcome, unsigned attempts,
                            uint64_t age_ms, uint32_t rnd);

/* Whether an event of `age_ms` may start an attempt at all. */
bool retry_may_start(const retry_policy *p, uint64_t age_ms);

#endif
