/*
 * test_spawner.c — the privileged spawner refuses what its policy does not
 * allow, whatever the (possibly compromised) daemon asks, and serves what
 * it does: a sandbox whose fds arrive over the socket and whose exit it
 * reaps on request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawner.h"

struct fixture {
    char root[64]; /* plays the data dir */
    char code_root[128];
    char code[160];    /* one function's code, inside code_root */
    char outside[128]; /* a folder outside code_root */
    spawner *sp;
};

static const char *const interpreters[] = {"/bin/sh", NULL};

static int setup(void **state)
{
    if (geteuid() != 0)
        return 0;
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/spawner-test-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->code_root, sizeof f->code_root, "%s/code", f->root);
    snprintf(f->code, sizeof f->code, "%s/fn", f->code_root);
    snprintf(f->outside, sizeof f->outside, "%s/elsewhere", f->root);
    mkdir(f->code_root, 0755);
    mkdir(f->code, 0755);
    mkdir(f->outside, 0755);
    spawner_policy pol = {.code_root = f->code_root,
                          .uid_base = 400000,
                          .uid_count = 16,
                          .isolate = false,
                          .interpreters = interpreters};
    if (spawner_start(&pol, &f->sp) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    spawner_stop(f->sp);
    rmdir(f->code);
    rmdir(f->code_root);
    rmdir(f->outside);
    rmdir(f->root);
    free(f);
    return 0;
}

static sandbox_spec spec_for(struct fixture *f, const char *const *argv, uid_t uid)
{
    static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    return (sandbox_spec){.argv = argv, .envp = env, .code_dir = f->code, .uid = uid, .gid = uid};
}

static void test_refuses_what_the_policy_does_not_allow(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip();
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    const char *other[] = {"/usr/bin/env", "true", NULL};
    sandbox_proc p;
    sandbox_spec spec = spec_for(f, sh, 0); /* root */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 65534); /* outside the uid range */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, other, 400001); /* not an allowed interpreter */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 400001);
    spec.code_dir = f->outside; /* code outside the data dir's code folder */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec.code_dir = "/"; /* or the host's root */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
}

static void test_serves_a_sandbox_and_reaps_it(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip();
    const char *argv[] = {"/bin/sh", "-c", "echo uid=$(id -u); exit 5", NULL};
    sandbox_spec spec = spec_for(f, argv, 400003);
    sandbox_proc p;
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), 0);
    char out[64] = "";
    struct pollfd pfd = {.fd = p.out_fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ssize_t n = read(p.out_fd, out, sizeof out - 1);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "uid=400003\n");
    pfd = (struct pollfd){.fd = p.pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1); /* the passed pidfd works here too */
    int wstatus = 0;
    bool oom = true;
    assert_int_equal(spawner_reap(f->sp, &p, &wstatus, &oom), 1);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 5);
    assert_false(oom);
    spawner_release(f->sp, &p);
    assert_int_equal(spawner_reap(f->sp, &p, &wstatus, &oom), -ESRCH); /* forgotten */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_what_the_policy_does_not_allow),
        cmocka_unit_test(test_serves_a_sandbox_and_reaps_it),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
