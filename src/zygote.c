/*
 * zygote.c — the spawning side of runtime templates.
 *
 * A template is a child of ours running the runtime's template program
 * (runtimes/python3/zygote.py) with a SOCK_SEQPACKET socket on fd 3. For a
 * worker, sandbox.c makes the channels and the cgroup leaf as for any
 * spawn, and zygote_starter sends the spec (spawn_msg.c) and the child's
 * fds to the template, which clones itself into the worker with every
 * isolation step of an exec'd one (zygote_child.c, sandbox_clone_template)
 * and answers with its pid. CLONE_PARENT makes that worker our child, so
 * sandbox.c awaits, reaps and kills it like any other.
 *
 * Owns the templates and their sockets. Must never: wait on a template
 * longer than REPLY_MS, or use one again after it failed (it is killed
 * and reaped, and workers are exec'd as without templates).
 */
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "runtimes.h"
#include "spawn_msg.h"

#define MAX_TEMPLATES 8
#define READY_MS      10000 /* the interpreter and the bootstrap loading */
#define REPLY_MS      2000  /* one clone; far more means the template is stuck */

struct zygote {
    const char *const *worker_argv;
    int fd;
    pid_t pid;
};

static struct zygote templates[MAX_TEMPLATES];
static size_t ntemplates;

static bool same_argv(const char *const *a, const char *const *b)
{
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !*a && !*b;
}

static void stop_one(struct zygote *z)
{
    if (z->pid > 0) {
        kill(z->pid, SIGKILL);
        while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (z->fd >= 0)
        close(z->fd);
    *z = templates[--ntemplates];
}

/* Waits up to ms for fd to be readable: 0, -ETIMEDOUT or -errno. */
static int wait_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* The template's process: fd 3 its socket, nothing else of ours, and it
 * dies with us. */
static _Noreturn void exec_template(int sock, const char *const *argv)
{
    static const char *const envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
    /* dup2 onto itself would keep close-on-exec: the socket may be 3 already.
     * Placed first, so that /dev/null cannot land on 3 and be overwritten. */
    int onto3 = sock == 3 ? fcntl(3, F_SETFD, 0) : dup2(sock, 3);
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || onto3 < 0 || (null != 0 && dup2(null, 0) < 0) ||
        syscall(SYS_close_range, 4U, ~0U, 0) < 0)
        _exit(127);
    execve(argv[0], (char *const *)argv, (char *const *)envp);
    _exit(127);
}

int zygote_start(const char *const *worker_argv, const char *const *template_argv)
{
    if (ntemplates == MAX_TEMPLATES)
        return -ENOSPC;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* Not fork(): its atfork handlers (libuv's) close fds they once owned. */
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid == 0)
        exec_template(sv[1], template_argv);
    int err = errno;
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -err;
    }
    struct zygote *z = &templates[ntemplates++];
    *z = (struct zygote){.worker_argv = worker_argv, .fd = sv[0], .pid = pid};
    char ready = 0;
    int rc = wait_readable(z->fd, READY_MS);
    if (rc == 0 && spawnmsg_recv(z->fd, &ready, 1, NULL, 0, NULL) != 1)
        rc = -EPROTO;
    if (rc == 0 && ready != 'R')
        rc = -EPROTO;
    if (rc < 0)
        stop_one(z);
    return rc;
}

/* The child's fds in a fixed order, the cgroup ones flagged in *bits,
 * then the secrets bundle, if any. */
static int pack_fds(const sandbox_spec *spec, const sandbox_child_fds *fds, int *out, uint8_t *bits)
{
    int n = 0;
    out[n++] = fds->devnull;
    out[n++] = fds->out;
    out[n++] = fds->err;
    out[n++] = fds->ctl;
    out[n++] = fds->status;
    *bits = fds->memory_cgroup ? SPAWNMSG_CG_MEMORY : 0;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (fds->cgroup_procs[i] >= 0) {
            *bits |= (uint8_t)(1u << i);
            out[n++] = fds->cgroup_procs[i];
        }
    }
    if (spec->has_secrets) {
        *bits |= SPAWNMSG_SECRETS;
        out[n++] = spec->secrets_fd;
    }
    return n;
}

/* One request, one reply. -ENOTCONN when the template failed us. */
static int ask_template(struct zygote *z, const sandbox_spec *spec, const sandbox_child_fds *fds,
                        pid_t *pid)
{
    static char msg[SPAWNMSG_MAX];
    int sendfds[SPAWNMSG_MAX_FDS];
    uint8_t bits;
    int nfds = pack_fds(spec, fds, sendfds, &bits);
    size_t len;
    int rc = spawnmsg_encode(spec, bits, msg, &len);
    if (rc < 0)
        return rc;
    spawnmsg_reply reply;
    if (spawnmsg_send(z->fd, msg, len, sendfds, nfds) < 0 || wait_readable(z->fd, REPLY_MS) < 0 ||
        spawnmsg_recv(z->fd, &reply, sizeof reply, NULL, 0, NULL) != (ssize_t)sizeof reply ||
        (reply.rc == 0 && reply.pid <= 0))
        return -ENOTCONN;
    if (reply.rc < 0)
        return reply.rc;
    *pid = reply.pid;
    return 0;
}

static int zygote_starter(const sandbox_spec *spec, const sandbox_child_fds *fds, pid_t *pid,
                          void *ud)
{
    return ask_template(ud, spec, fds, pid);
}

/* The template for spec->argv, if one is up. */
static struct zygote *template_for(const sandbox_spec *spec)
{
    for (size_t i = 0; i < ntemplates; i++)
        if (same_argv(templates[i].worker_argv, spec->argv))
            return &templates[i];
    return NULL;
}

int zygote_spawn(const sandbox_spec *spec, sandbox_proc *out)
{
    /* Egress waits for its network on an fd a template could not pass on. */
    struct zygote *z = spec->egress ? NULL : template_for(spec);
    int rc = z ? sandbox_spawn_via(spec, out, zygote_starter, z) : -ENOTCONN;
    if (rc != -ENOTCONN)
        return rc;
    if (z)
        stop_one(z); /* never again: exec from now on */
    return sandbox_spawn(spec, out);
}

int zygote_spawn_begin(const sandbox_spec *spec, sandbox_proc *out)
{
    struct zygote *z = template_for(spec);
    int rc = z ? sandbox_spawn_begin(spec, out, zygote_starter, z) : -ENOTCONN;
    if (rc != -ENOTCONN)
        return rc;
    if (z)
        stop_one(z);
    return sandbox_spawn_begin(spec, out, NULL, NULL);
}

void zygote_start_runtimes(void)
{
    for (size_t i = 0; i < runtimes_count(); i++) {
        const char *name = runtimes_at(i)->name;
        const char *const *argv = runtimes_argv(name), *const *tmpl = runtimes_template_argv(name);
        if (!argv || !tmpl)
            continue;
        int rc = zygote_start(argv, tmpl);
        if (rc < 0)
            dlog_warn("template %s: did not start (%s); its workers exec the interpreter", name,
                      strerror(-rc));
        else
            dlog_info("template %s: ready; cold starts clone it", name);
    }
}

size_t zygote_count(void)
{
    return ntemplates;
}

void zygote_stop_all(void)
{
    while (ntemplates)
        stop_one(&templates[0]);
}
