/*
 * test_violations.c — which audit record names a report's call: only its
 * own worker's runtime's (uid and host pid), read since the worker
 * started; records an earlier holder of the uid left are dropped. No
 * kernel log and no loop: records are fed with a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "violations.h"

#define UID    400000
#define PTRACE 101
#define BPF    321

static int setup(void **state)
{
    violations *v = violations_open(NULL, NULL, -1);
    assert_non_null(v);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    violations_close(*state);
    return 0;
}

static violations_worker worker(pid_t pid, uint64_t since_ms)
{
    return (violations_worker){.has_uid = true, .uid = UID, .pid = pid, .since_ms = since_ms};
}

static void test_own_record_is_claimed_once(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 1234, BPF, 100);
    violations_worker w = worker(1234, 50);
    int nr = -1;
    assert_true(violations_claim(v, &w, &nr));
    assert_int_equal(nr, BPF);
    assert_false(violations_claim(v, &w, &nr));
}

/* The attack: a child of the planter, killed while its runtime lived on,
 * left a record nobody claimed; the planter's uid went to the victim. */
static void test_planted_record_is_not_claimed(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 2000, PTRACE, 100); /* the planter's child */
    violations_worker victim = worker(2100, 200);
    violations_seen(v, UID, 2100, BPF, 250);
    int nr = -1;
    assert_true(violations_claim(v, &victim, &nr));
    assert_int_equal(nr, BPF);
}

/* Even read after the victim started (its pid reused, say), a record of
 * another process of the uid names nothing. */
static void test_record_of_another_pid_is_not_claimed(void **state)
{
    violations *v = *state;
    violations_worker w = worker(3000, 100);
    violations_seen(v, UID, 3001, PTRACE, 150); /* its own child's */
    violations_seen(v, UID + 1, 3000, PTRACE, 150);
    int nr = -1;
    assert_false(violations_claim(v, &w, &nr));
    assert_int_equal(nr, -1);
}

/* A record of the uid read before the worker started is an earlier
 * holder's, whatever its pid (recycled): dropped, for every later claim. */
static void test_stale_record_is_dropped(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 4000, PTRACE, 99);
    violations_worker w = worker(4000, 100);
    int nr = -1;
    assert_false(violations_claim(v, &w, &nr));
    violations_worker older = worker(4000, 0);
    assert_false(violations_claim(v, &older, &nr));
    violations_seen(v, UID, 4000, BPF, 100); /* read the ms it started: its own */
    assert_true(violations_claim(v, &w, &nr));
    assert_int_equal(nr, BPF);
}

static void test_unknown_pid_or_uid_names_nothing(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 5000, BPF, 100);
    violations_worker no_pid = worker(0, 50), no_uid = worker(5000, 50);
    no_uid.has_uid = false;
    int nr = -1;
    assert_false(violations_claim(v, &no_pid, &nr));
    assert_false(violations_claim(v, &no_uid, &nr));
    violations_worker w = worker(5000, 50);
    assert_true(violations_claim(v, &w, &nr));
}

static void test_other_architecture_is_claimed_unnamed(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 6000, -1, 100);
    violations_worker w = worker(6000, 50);
    int nr = 7;
    assert_true(violations_claim(v, &w, &nr));
    assert_int_equal(nr, -1);
}

/* The ring keeps the newest records; the oldest are overwritten. */
static void test_ring_keeps_the_newest(void **state)
{
    violations *v = *state;
    violations_seen(v, UID, 7000, BPF, 100);
    for (int i = 0; i < 64; i++)
        violations_seen(v, UID + 1, 8000 + i, PTRACE, 100);
    violations_seen(v, UID, 7001, BPF, 100);
    violations_worker gone = worker(7000, 50), kept = worker(7001, 50);
    int nr = -1;
    assert_false(violations_claim(v, &gone, &nr));
    assert_true(violations_claim(v, &kept, &nr));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_own_record_is_claimed_once),
        T(test_planted_record_is_not_claimed),
        T(test_record_of_another_pid_is_not_claimed),
        T(test_stale_record_is_dropped),
        T(test_unknown_pid_or_uid_names_nothing),
        T(test_other_architecture_is_claimed_unnamed),
        T(test_ring_keeps_the_newest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
