/*
 * test_spawner.c — the privileged spawner refuses what its policy does not
 * allow, and lowers every limit to the policy's ceiling, whatever the
 * (possibly compromised) daemon asks; hostile messages (cut, oversize,
 * unterminated, of unknown type, with fds, naming processes it did not
 * make) are refused. And it serves what the policy allows: a sandbox
 * whose fds arrive over the socket and whose exit it reaps on request.
 * The tests of spawner_check need no root; the others skip without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "spawn_msg.h"
#include "egress.h"
#include "spawner.h"
#include "spawner_wire.h"

#define MIB        (1024ull * 1024)
#define TIMEOUT_MS 5000

struct fixture {
    char root[64]; /* plays the data dir */
    char code_root[PATH_MAX];
    char code[PATH_MAX + 8]; /* one function's code, inside code_root */
    char outside[128];       /* a folder outside code_root */
    spawner_policy pol;
    spawner *sp; /* started with pol; NULL when not root */
};

static const char *const interpreters[] = {"/bin/sh", NULL};
static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};

/* The ceilings every test holds the daemon to; `ulimit` shows them as
 * 327680 KiB of address space (memory + vm_reserve), 64 files, 2048
 * blocks of 512 bytes, 32 processes. */
static const spawner_limits limits = {.memory_bytes = 256 * MIB,
                                      .vm_reserve = 64 * MIB,
                                      .max_file_size = 1 * MIB,
                                      .max_open_files = 64,
                                      .tmp_bytes = 1 * MIB,
                                      .pids_max = 32,
                                      .cpu_millis = 500,
                                      .host_network = false};
static const char ulimits_at_ceiling[] = "327680 64 2048 32\n";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/spawner-test-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    char code_root[PATH_MAX];
    snprintf(code_root, sizeof code_root, "%s/code", f->root);
    mkdir(code_root, 0755);
    if (!realpath(code_root, f->code_root))
        return -1;
    snprintf(f->code, sizeof f->code, "%s/fn", f->code_root);
    snprintf(f->outside, sizeof f->outside, "%s/elsewhere", f->root);
    mkdir(f->code, 0755);
    mkdir(f->outside, 0755);
    f->pol = (spawner_policy){.code_root = f->code_root,
                              .uid_base = 400000,
                              .uid_count = 16,
                              .isolate = false,
                              .interpreters = interpreters,
                              .limits = limits};
    if (geteuid() == 0 && spawner_start(&f->pol, &f->sp) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    spawner_stop(f->sp);
    rmdir(f->code);
    rmdir(f->code_root);
    rmdir(f->outside);
    rmdir(f->root);
    free(f);
    return 0;
}

static struct fixture *need_root(void **state)
{
    struct fixture *f = *state;
    if (!f->sp)
        skip();
    return f;
}

static sandbox_spec spec_for(struct fixture *f, const char *const *argv, uid_t uid)
{
    return (sandbox_spec){.argv = argv,
                          .envp = env,
                          .code_dir = f->code,
                          .uid = uid,
                          .gid = uid,
                          .hostname = "fn",
                          .memory_bytes = 128 * MIB,
                          .pids_max = 8};
}

/* Waits for the worker to end, reaps it through sp, releases it; its
 * stdout (up to cap - 1 bytes) in out. */
static void collect(spawner *sp, sandbox_proc *p, char *out, size_t cap)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    ssize_t n = read(p->out_fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    int wstatus = 0;
    bool oom;
    assert_int_equal(spawner_reap(sp, p, &wstatus, &oom), 1);
    spawner_release(sp, p);
}

/* ---- spawner_check, the one check both kinds of spawner run ---- */

/* Every limit of spec at the policy's ceiling, vm_reserve at `vm_reserve`. */
static void assert_at_ceilings(const sandbox_spec *spec, uint64_t vm_reserve)
{
    assert_int_equal(spec->memory_bytes, limits.memory_bytes);
    assert_int_equal(spec->vm_reserve, vm_reserve);
    assert_int_equal(spec->max_file_size, limits.max_file_size);
    assert_int_equal(spec->max_open_files, limits.max_open_files);
    assert_int_equal(spec->tmp_bytes, limits.tmp_bytes);
    assert_int_equal(spec->pids_max, limits.pids_max);
    assert_int_equal(spec->cpu_millis, limits.cpu_millis);
}

static void test_check_lowers_every_limit_to_its_ceiling(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    sandbox_spec spec = spec_for(f, sh, 400001);
    spec.memory_bytes = spec.vm_reserve = spec.max_file_size = UINT64_MAX;
    spec.max_open_files = spec.tmp_bytes = UINT64_MAX;
    spec.pids_max = spec.cpu_millis = UINT32_MAX;
    assert_int_equal(spawner_check(&f->pol, &spec), 0);
    assert_at_ceilings(&spec, limits.vm_reserve);
}

static void test_check_reads_no_limit_as_the_ceiling(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    sandbox_spec spec = spec_for(f, sh, 400001);
    spec.memory_bytes = spec.vm_reserve = spec.max_file_size = 0; /* 0 = none */
    spec.max_open_files = spec.tmp_bytes = 0;
    spec.pids_max = spec.cpu_millis = 0;
    assert_int_equal(spawner_check(&f->pol, &spec), 0);
    assert_at_ceilings(&spec, 0); /* vm_reserve is an amount: none is the least */
}

static void test_check_keeps_what_is_within_the_policy(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    sandbox_spec spec = spec_for(f, sh, 400015);
    spec.memory_bytes = 64 * MIB;
    spec.vm_reserve = 1;
    spec.tmp_bytes = limits.tmp_bytes;
    spec.pids_max = 1;
    spec.isolate = true; /* the policy's own, below */
    assert_int_equal(spawner_check(&f->pol, &spec), 0);
    assert_int_equal(spec.memory_bytes, 64 * MIB);
    assert_int_equal(spec.vm_reserve, 1);
    assert_int_equal(spec.tmp_bytes, limits.tmp_bytes);
    assert_int_equal(spec.pids_max, 1);
    assert_false(spec.isolate);
}

static void test_check_grants_host_network_only_when_the_policy_does(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    sandbox_spec spec = spec_for(f, sh, 400001);
    spec.host_network = true;
    assert_int_equal(spawner_check(&f->pol, &spec), -EPERM);
    spawner_policy open = f->pol;
    open.limits.host_network = true; /* no --no-host-network */
    assert_int_equal(spawner_check(&open, &spec), 0);
    assert_true(spec.host_network);
}

/* Egress only where the host has it, never with the host's network, and
 * the resolver is the policy's, whatever the daemon sends. */
static void test_check_grants_egress_only_when_the_policy_does(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    sandbox_spec spec = spec_for(f, sh, 400001);
    spec.egress = true;
    spec.resolver = 0x01020304;
    assert_int_equal(spawner_check(&f->pol, &spec), -EPERM);
    egress_host host = {.usable = true, .dns_addr = 0x0100d50a};
    spawner_policy open = f->pol;
    open.isolate = true;
    open.limits.egress = true;
    open.egress = &host;
    assert_int_equal(spawner_check(&open, &spec), 0);
    assert_true(spec.egress);
    assert_int_equal(spec.resolver, 0x0100d50a);
    spec.host_network = true;
    open.limits.host_network = true;
    assert_int_equal(spawner_check(&open, &spec), -EPERM);
}

static void test_check_refuses_a_hostname_that_is_not_a_function_name(void **state)
{
    struct fixture *f = *state;
    const char *sh[] = {"/bin/sh", NULL};
    const char *bad[] = {"", "fn\n10.0.0.1 evil", "../x", "UPPER",
                         "a234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sandbox_spec spec = spec_for(f, sh, 400001);
        spec.hostname = bad[i];
        assert_int_equal(spawner_check(&f->pol, &spec), -EPERM);
    }
}

static void test_a_policy_without_a_ceiling_is_refused(void **state)
{
    struct fixture *f = *state;
    spawner_policy pol = f->pol;
    pol.limits.cpu_millis = 0; /* would read as "no limit" */
    spawner *sp = NULL;
    assert_int_equal(spawner_start(&pol, &sp), -EINVAL);
    assert_null(sp);
}

/* ---- the forked spawner, through its API ---- */

static void test_refuses_what_the_policy_does_not_allow(void **state)
{
    struct fixture *f = need_root(state);
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    const char *other[] = {"/usr/bin/env", "true", NULL};
    sandbox_proc p;
    sandbox_spec spec = spec_for(f, sh, 0); /* root */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 65534); /* outside the uid range */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 400001);
    spec.gid = 0; /* a gid of its own choosing */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, other, 400001); /* not an allowed interpreter */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 400001);
    spec.code_dir = f->outside; /* code outside the data dir's code folder */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec.code_dir = "/"; /* or the host's root */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 400001);
    spec.host_network = true; /* the policy does not grant it */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
    spec = spec_for(f, sh, 400001);
    spec.hostname = "fn\n10.0.0.1 evil"; /* a line of its /etc/hosts */
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), -EPERM);
}

static const char *const show_ulimits[] = {
    "/bin/sh", "-c", "echo $(ulimit -v) $(ulimit -n) $(ulimit -f) $(ulimit -p)", NULL};

/* A worker asking for everything without bound gets the ceilings. */
static void spawn_greedy_worker(spawner *sp, struct fixture *f)
{
    sandbox_spec spec = spec_for(f, show_ulimits, 400002);
    spec.memory_bytes = spec.vm_reserve = UINT64_MAX / 4;
    spec.max_file_size = 0;
    spec.max_open_files = 1u << 20;
    spec.pids_max = 0;
    sandbox_proc p;
    assert_int_equal(spawner_spawn(sp, &spec, &p), 0);
    char out[128];
    collect(sp, &p, out, sizeof out);
    assert_string_equal(out, ulimits_at_ceiling);
}

static void test_spawns_with_every_limit_at_most_the_ceiling(void **state)
{
    struct fixture *f = need_root(state);
    spawn_greedy_worker(f->sp, f);
}

static void test_serves_a_sandbox_and_reaps_it(void **state)
{
    struct fixture *f = need_root(state);
    const char *argv[] = {"/bin/sh", "-c", "echo uid=$(id -u); exit 5", NULL};
    sandbox_spec spec = spec_for(f, argv, 400003);
    sandbox_proc p;
    assert_int_equal(spawner_spawn(f->sp, &spec, &p), 0);
    char out[64] = "";
    struct pollfd pfd = {.fd = p.out_fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    ssize_t n = read(p.out_fd, out, sizeof out - 1);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "uid=400003\n");
    pfd = (struct pollfd){.fd = p.pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1); /* the passed pidfd works here too */
    int wstatus = 0;
    bool oom = true;
    assert_int_equal(spawner_reap(f->sp, &p, &wstatus, &oom), 1);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 5);
    assert_false(oom);
    spawner_release(f->sp, &p);
    assert_int_equal(spawner_reap(f->sp, &p, &wstatus, &oom), -ESRCH); /* forgotten */
}

/* ---- many requests in flight; pre-built sandboxes and their claims ---- */

struct answer {
    int rc;
    sandbox_proc proc;
    bool done;
};

static void on_answer(void *ud, int rc, const sandbox_proc *proc)
{
    struct answer *a = ud;
    a->rc = rc;
    a->proc = *proc;
    a->done = true;
}

/* Reads a worker's stdout until it closes (up to cap - 1 bytes). */
static void read_all(int fd, char *out, size_t cap)
{
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
        ssize_t n = read(fd, out + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
}

/* Six spawns asked at once are all served, each answer reaching the
 * request it belongs to, through the daemon's own loop. */
static void test_many_spawns_in_flight_are_answered_by_id(void **state)
{
    struct fixture *f = need_root(state);
    uv_loop_t loop;
    uv_loop_init(&loop);
    spawner_watch(f->sp, &loop, NULL, NULL);
    enum { N = 6 };
    struct answer a[N];
    char script[N][64];
    const char *argv[N][4];
    for (int i = 0; i < N; i++) {
        snprintf(script[i], sizeof script[i], "echo %d", i);
        argv[i][0] = "/bin/sh", argv[i][1] = "-c", argv[i][2] = script[i], argv[i][3] = NULL;
        sandbox_spec spec = spec_for(f, argv[i], 400010 + (uid_t)i);
        a[i] = (struct answer){.rc = 1};
        assert_int_equal(spawner_spawn_async(f->sp, &spec, on_answer, &a[i]), 0);
        assert_false(a[i].done); /* never before the call returns */
    }
    for (int spins = 0; spins < 1000; spins++) {
        bool all = true;
        for (int i = 0; i < N; i++)
            all &= a[i].done;
        if (all)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < N; i++) {
        assert_true(a[i].done);
        assert_int_equal(a[i].rc, 0);
        char out[32], want[8];
        read_all(a[i].proc.out_fd, out, sizeof out);
        snprintf(want, sizeof want, "%d\n", i);
        assert_string_equal(out, want);
        collect(f->sp, &a[i].proc, out, sizeof out);
    }
    spawner_unwatch(f->sp);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* An isolating spawner of its own, and a function's folder "<name>/<version>". */
static spawner *isolating_spawner(struct fixture *f, char *fn_dir, size_t cap)
{
    assert_true(strlen(f->code_root) + sizeof "/claimed/1" <= cap);
    snprintf(fn_dir, cap, "%s/claimed", f->code_root);
    mkdir(fn_dir, 0755);
    snprintf(fn_dir, cap, "%s/claimed/1", f->code_root);
    mkdir(fn_dir, 0755);
    char file[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/handler.txt", fn_dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    spawner_policy pol = f->pol;
    pol.isolate = true;
    spawner *sp;
    assert_int_equal(spawner_start(&pol, &sp), 0);
    return sp;
}

static void remove_fn_dir(const char *fn_dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/handler.txt", fn_dir);
    unlink(path);
    rmdir(fn_dir);
    snprintf(path, sizeof path, "%s", fn_dir);
    *strrchr(path, '/') = '\0';
    rmdir(path);
}

/* The pre-built "runtime": waits for a line on fd 3 (our SPECIALIZE),
 * then shows what it has at /var/task and its hostname. */
static const char *const waiting_runtime[] = {"/bin/sh", "-c",
                                              "read line <&3; ls /var/task; hostname", NULL};

static sandbox_spec prebuilt_spec(struct fixture *f, uid_t uid)
{
    sandbox_spec spec = spec_for(f, waiting_runtime, uid);
    spec.prebuilt = true;
    return spec;
}

/* A claim holds the function to the policy and to the sandbox as it was
 * built, and a sandbox is claimed once: then it shows that function's
 * code and name, and nothing before. */
static void test_a_prebuilt_sandbox_is_claimed_once(void **state)
{
    struct fixture *f = need_root(state);
    char fn_dir[PATH_MAX];
    spawner *sp = isolating_spawner(f, fn_dir, sizeof fn_dir);
    sandbox_spec built = prebuilt_spec(f, 400012);
    sandbox_proc p, plain;
    assert_int_equal(spawner_spawn(sp, &built, &p), 0);
    sandbox_spec claim = spec_for(f, waiting_runtime, 400012);
    claim.code_dir = fn_dir;
    claim.hostname = "claimed";
    assert_int_equal(spawner_claim(sp, &p, &claim), 0);
    assert_int_equal(spawner_claim(sp, &p, &claim), -EBUSY); /* single use */
    assert_int_equal(write(p.ctl_fd, "go\n", 3), 3);
    char out[256];
    read_all(p.out_fd, out, sizeof out);
    assert_string_equal(out, "handler.txt\nclaimed\n");
    collect(sp, &p, out, sizeof out);

    /* Not as it was built: another uid, another runtime. Either spends it. */
    sandbox_proc q;
    assert_int_equal(spawner_spawn(sp, &built, &q), 0);
    claim.uid = claim.gid = 400013;
    assert_int_equal(spawner_claim(sp, &q, &claim), -EPERM);
    claim.uid = claim.gid = 400012;
    assert_int_equal(spawner_claim(sp, &q, &claim), -EBUSY);
    collect(sp, &q, out, sizeof out);

    /* Outside the code root, or a sandbox that was never pre-built. */
    assert_int_equal(spawner_spawn(sp, &built, &q), 0);
    claim.code_dir = f->outside;
    assert_int_equal(spawner_claim(sp, &q, &claim), -EPERM);
    collect(sp, &q, out, sizeof out);
    const char *sh[] = {"/bin/sh", "-c", "sleep 5", NULL};
    sandbox_spec ordinary = spec_for(f, sh, 400014);
    assert_int_equal(spawner_spawn(sp, &ordinary, &plain), 0);
    claim.code_dir = fn_dir;
    claim.uid = claim.gid = 400014;
    claim.argv = sh;
    assert_int_equal(spawner_claim(sp, &plain, &claim), -EBUSY);
    spawner_kill(sp, &plain);
    collect(sp, &plain, out, sizeof out);
    spawner_stop(sp);
    remove_fn_dir(fn_dir);
}

/* ---- hostile messages, written by hand ---- */

struct raw {
    char *buf;
    size_t len;
};

/* A valid spawn message for spec, to be spoilt by the test. */
static struct raw encode(const sandbox_spec *spec, uint8_t cgroup_bits)
{
    struct spw_head head = {.type = SPW_SPAWN, .req = 1};
    struct raw r = {.buf = calloc(1, sizeof head + SPAWNMSG_MAX + 64)};
    memcpy(r.buf, &head, sizeof head);
    assert_int_equal(spawnmsg_encode(spec, cgroup_bits, r.buf + sizeof head, &r.len), 0);
    r.len += sizeof head;
    return r;
}

/* Where two messages first differ: the wire offset of what tells them
 * apart, found without knowing the layout. */
static size_t first_difference(struct raw a, struct raw b)
{
    size_t i = 0;
    while (i < a.len && i < b.len && a.buf[i] == b.buf[i])
        i++;
    assert_true(i < a.len);
    return i;
}

/* Sends a spawn message as is: the reply's rc (a worker, should one be
 * started, is killed and reaped). */
static int send_spawn(spawner *sp, struct raw r)
{
    assert_int_equal(spawnmsg_send(spawner_socket(sp), r.buf, r.len, NULL, 0), 0);
    free(r.buf);
    struct spw_reply reply;
    int fds[4], nfds = 0;
    struct pollfd pfd = {.fd = spawner_socket(sp), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    assert_int_equal(spawnmsg_recv(spawner_socket(sp), &reply, sizeof reply, fds, 4, &nfds),
                     sizeof reply);
    assert_int_equal(reply.req, 1);
    sandbox_proc p = {.pid = reply.pid, .spawner_id = reply.id, .pidfd = fds[0]};
    if (reply.rc == 0) { /* it should not have been: do not leave it running */
        spawner_kill(sp, &p);
        int st;
        bool oom;
        while (spawner_reap(sp, &p, &st, &oom) == 0)
            poll(NULL, 0, 10);
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    return reply.rc;
}

static void test_refuses_spawn_messages_that_break_the_format(void **state)
{
    struct fixture *f = need_root(state);
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL}, *sh1[] = {"/bin/sh", "-c", NULL};
    sandbox_spec spec = spec_for(f, sh, 400004), fewer = spec_for(f, sh1, 400004);
    struct raw r = encode(&spec, 0), s = encode(&fewer, 0);
    size_t argc_at = first_difference(r, s) & ~(size_t)3; /* its low byte, in a uint32 */
    free(s.buf);
    free(r.buf);
    uint32_t counts[] = {0, SPAWNMSG_MAX_STRINGS + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        r = encode(&spec, 0);
        memcpy(r.buf + argc_at, &counts[i], sizeof counts[i]);
        assert_int_equal(send_spawn(f->sp, r), -EPROTO);
    }
    r = encode(&spec, 0);
    r.len = sizeof(struct spw_head) + 20; /* cut inside its fixed fields */
    assert_int_equal(send_spawn(f->sp, r), -EPROTO);
    r = encode(&spec, 0);
    r.buf[r.len - 1] = 'x'; /* the last string has no NUL */
    assert_int_equal(send_spawn(f->sp, r), -EPROTO);
    r = encode(&spec, 0);
    r.len += 3; /* bytes after the last string */
    assert_int_equal(send_spawn(f->sp, r), -EPROTO);
    assert_int_equal(send_spawn(f->sp, encode(&spec, 0)), 0); /* and it still serves */
}

static void test_refuses_a_bool_or_a_cgroup_bit_that_cannot_be(void **state)
{
    struct fixture *f = need_root(state);
    const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    sandbox_spec spec = spec_for(f, sh, 400005), host = spec;
    host.host_network = true;
    struct raw r = encode(&spec, 0), s = encode(&host, 0);
    size_t host_at = first_difference(r, s);
    free(s.buf);
    r.buf[host_at] = 2; /* neither false nor true */
    assert_int_equal(send_spawn(f->sp, r), -EPROTO);
    r = encode(&spec, 0), s = encode(&spec, 1);
    size_t bits_at = first_difference(r, s);
    free(s.buf);
    r.buf[bits_at] = 0x20; /* no such cgroup (0x40 is SPAWNMSG_SECRETS) */
    assert_int_equal(send_spawn(f->sp, r), -EPROTO);
}

/* Sends len bytes (and fd, if >= 0) to a spawner of its own, which must
 * then stop: EOF on the socket, not a reply. */
static void assert_stops_on(struct fixture *f, const void *msg, size_t len, int fd)
{
    spawner *sp;
    assert_int_equal(spawner_start(&f->pol, &sp), 0);
    int sock = spawner_socket(sp);
    assert_int_equal(spawnmsg_send(sock, msg, len, fd >= 0 ? &fd : NULL, fd >= 0), 0);
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    char reply[64];
    assert_int_equal(spawnmsg_recv(sock, reply, sizeof reply, NULL, 0, NULL), 0);
    spawner_stop(sp);
}

static void test_stops_on_a_message_that_breaks_the_protocol(void **state)
{
    struct fixture *f = need_root(state);
    uint32_t unknown[2] = {99, 1};
    assert_stops_on(f, unknown, sizeof unknown, -1);
    assert_stops_on(f, unknown, 2, -1);          /* too short for a type */
    uint32_t kill_long[4] = {SPW_KILL, 1, 0, 0}; /* a kill of the wrong size */
    assert_stops_on(f, kill_long, sizeof kill_long, -1);
    uint32_t reap_short[2] = {SPW_REAP, 1};
    assert_stops_on(f, reap_short, sizeof reap_short, -1);
    size_t too_big = sizeof(struct spw_head) + SPAWNMSG_MAX + 1; /* more than any spawn */
    char *big = calloc(1, too_big);
    uint32_t spawn_type = SPW_SPAWN;
    memcpy(big, &spawn_type, sizeof spawn_type);
    assert_stops_on(f, big, too_big, -1);
    free(big);
    uint32_t reap_with_fd[3] = {SPW_REAP, 1, 1}; /* the spawner is sent no fds */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_stops_on(f, reap_with_fd, sizeof reap_with_fd, devnull);
    close(devnull);
}

/* KILL and REAP name the spawner's ids: a pid it did not make, or an id
 * it never gave, touches nothing. */
static void test_kill_and_reap_touch_only_what_the_spawner_made(void **state)
{
    struct fixture *f = need_root(state);
    pid_t bystander = fork();
    if (bystander == 0) {
        pause();
        _exit(0);
    }
    assert_true(bystander > 0);
    int32_t ids[] = {bystander, 0, -1, INT32_MAX, INT32_MIN, 1};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        sandbox_proc p = {.pid = bystander, .spawner_id = ids[i]};
        spawner_kill(f->sp, &p);
        int st;
        bool oom;
        int rc = spawner_reap(f->sp, &p, &st, &oom); /* also orders it after the kill */
        assert_true(rc == -ESRCH || ids[i] == 1);    /* 1: maybe an earlier test's, reaped */
    }
    assert_int_equal(waitpid(bystander, NULL, WNOHANG), 0); /* alive */
    kill(bystander, SIGKILL);
    waitpid(bystander, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_lowers_every_limit_to_its_ceiling),
        cmocka_unit_test(test_check_reads_no_limit_as_the_ceiling),
        cmocka_unit_test(test_check_keeps_what_is_within_the_policy),
        cmocka_unit_test(test_check_grants_host_network_only_when_the_policy_does),
        cmocka_unit_test(test_check_grants_egress_only_when_the_policy_does),
        cmocka_unit_test(test_check_refuses_a_hostname_that_is_not_a_function_name),
        cmocka_unit_test(test_a_policy_without_a_ceiling_is_refused),
        cmocka_unit_test(test_refuses_what_the_policy_does_not_allow),
        cmocka_unit_test(test_spawns_with_every_limit_at_most_the_ceiling),
        cmocka_unit_test(test_serves_a_sandbox_and_reaps_it),
        cmocka_unit_test(test_many_spawns_in_flight_are_answered_by_id),
        cmocka_unit_test(test_a_prebuilt_sandbox_is_claimed_once),
        cmocka_unit_test(test_refuses_spawn_messages_that_break_the_format),
        cmocka_unit_test(test_refuses_a_bool_or_a_cgroup_bit_that_cannot_be),
        cmocka_unit_test(test_stops_on_a_message_that_breaks_the_protocol),
        cmocka_unit_test(test_kill_and_reap_touch_only_what_the_spawner_made),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
