/*
 * failalloc.c — the failing allocator of failalloc.h: link-time wrappers
 * (-Wl,--wrap=malloc,...) that count allocations and fail the armed one.
 * Unarmed, each wrapper is one atomic load and the real call.
 */
#include "failalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);

static atomic_ulong left; /* allocations before the failing one; 0 = disarmed */
static atomic_bool fired;

/* True when this allocation is the one to fail. */
static bool fail_now(void)
{
    unsigned long n = atomic_load_explicit(&left, memory_order_relaxed);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&left, &n, n - 1)) {
            if (n == 1) {
                atomic_store(&fired, true);
                return true;
            }
            return false;
        }
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL; /* p stays the caller's, as realloc leaves it */
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
    if (fail_now()) {
        errno = ENOMEM;
        return -1; /* *out is undefined, as glibc says: leave it */
    }
    return __real_vasprintf(out, fmt, ap);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = __wrap_vasprintf(out, fmt, ap);
    va_end(ap);
    return rc;
}

/* jansson allocates inside its shared library: it is told to come here. */
static void *json_alloc(size_t n)
{
    return __wrap_malloc(n);
}

static void json_release(void *p)
{
    free(p);
}

void failalloc_arm(unsigned long nth)
{
    static bool hooked;
    if (!hooked) {
        json_set_alloc_funcs(json_alloc, json_release);
        hooked = true;
    }
    atomic_store(&fired, false);
    atomic_store(&left, nth);
}

bool failalloc_fired(void)
{
    return atomic_load(&fired);
}

unsigned long failalloc_run(const char *name, failalloc_scenario fn, void *ud,
                            unsigned long max_runs)
{
    if (!max_runs)
        max_runs = 100000;
    for (unsigned long n = 1; n <= max_runs; n++) {
        failalloc_arm(n);
        int rc = fn(ud);
        bool hit = failalloc_fired();
        failalloc_arm(0);
        if (rc != 0 && rc != -ENOMEM)
            fail_msg("%s: with allocation %lu failing it returned %d (%s), not 0 or -ENOMEM", name,
                     n, rc, strerror(rc < 0 ? -rc : rc));
        if (!hit) {
            if (rc != 0)
                fail_msg("%s: failed (%d) with no allocation failing", name, rc);
            return n - 1;
        }
    }
    fail_msg("%s: still allocating after %lu runs", name, max_runs);
    return 0;
}
