/*
 * spawner.c — the privileged half of hearthd.
 *
 * Forked at start while hearthd is still root, before it opens its
 * listening socket. It keeps root (namespaces, mounts, cgroups need it)
 * and does nothing but serve three requests from the unprivileged daemon:
 * SPAWN a sandbox (the spec is rebuilt from a flat message and checked
 * against a fixed policy, so a compromised daemon cannot ask for uid 0, a
 * code folder outside the data dir, another interpreter, or a weaker
 * sandbox), KILL one, and REAP one. Every message has a fixed header whose
 * sizes are checked before use (OpenBSD httpd's imsg discipline); replies
 * carry the worker's fds as SCM_RIGHTS.
 *
 * Must never: parse anything but these messages, hold an fd it does not
 * need, or outlive the daemon (EOF on the socket ends it, after killing
 * every sandbox it made).
 */
#include "spawner.h"

#include <errno.h>
#include <limits.h>
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
#include "spawn_msg.h"
#include "zygote.h"

#define MAX_SANDBOXES 65536

enum msg_type { MSG_SPAWN = SPAWNMSG_SPAWN, MSG_KILL = 2, MSG_REAP = 3 };

struct id_req {
    uint32_t type;
    int32_t id;
};

struct spawn_reply {
    int32_t rc;
    int32_t id;
    int32_t pid;
    int32_t runtime; /* the runtime's host pid (0 = unknown), for audit records */
};

struct reap_reply {
    int32_t rc;
    int32_t wstatus;
    int32_t oom;
};

struct spawner {
    int fd;
    pid_t pid;
};

/* ---- the daemon's side ---- */

int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out)
{
    if (!sp)
        return zygote_spawn(spec, out);
    *out = (sandbox_proc){
        .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
    char *buf = malloc(SPAWNMSG_MAX);
    if (!buf)
        return -ENOMEM;
    size_t len;
    int rc = spawnmsg_encode(spec, 0, buf, &len);
    if (rc == 0)
        rc = spawnmsg_send(sp->fd, buf, len, NULL, 0);
    free(buf);
    if (rc < 0)
        return rc;
    struct spawn_reply reply;
    int fds[4], nfds = 0;
    ssize_t n = spawnmsg_recv(sp->fd, &reply, sizeof reply, fds, 4, &nfds);
    if (n != (ssize_t)sizeof reply || (reply.rc == 0 && nfds != 4)) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return n < 0 ? (int)n : -EPROTO;
    }
    if (reply.rc < 0)
        return reply.rc;
    out->pid = reply.pid;
    out->runtime = reply.runtime;
    out->spawner_id = reply.id;
    out->pidfd = fds[0];
    out->ctl_fd = fds[1];
    out->out_fd = fds[2];
    out->err_fd = fds[3];
    return 0;
}

void spawner_kill(spawner *sp, const sandbox_proc *proc)
{
    if (!sp) {
        sandbox_kill(proc);
        return;
    }
    struct id_req req = {.type = MSG_KILL, .id = proc->spawner_id};
    spawnmsg_send(sp->fd, &req, sizeof req, NULL, 0);
}

int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom)
{
    if (!sp) {
        int rc = sandbox_reap(proc, wstatus);
        *oom = rc == 1 && sandbox_oom_killed(proc);
        return rc;
    }
    struct id_req req = {.type = MSG_REAP, .id = proc->spawner_id};
    int rc = spawnmsg_send(sp->fd, &req, sizeof req, NULL, 0);
    if (rc < 0)
        return rc;
    struct reap_reply reply;
    ssize_t n = spawnmsg_recv(sp->fd, &reply, sizeof reply, NULL, 0, NULL);
    if (n != (ssize_t)sizeof reply)
        return n < 0 ? (int)n : -EPROTO;
    *wstatus = reply.wstatus;
    *oom = reply.oom != 0;
    return reply.rc;
}

void spawner_release(spawner *sp, sandbox_proc *proc)
{
    if (!sp) {
        sandbox_release(proc);
        return;
    }
    /* The spawner forgot the sandbox when it reaped it; only our fds remain. */
    int *fds[] = {&proc->pidfd, &proc->ctl_fd, &proc->out_fd, &proc->err_fd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* ---- the spawner's side ---- */

struct entry {
    int id;
    sandbox_proc proc;
};

struct table {
    struct entry *e;
    size_t n, cap;
    int next_id;
};

static struct entry *table_find(struct table *t, int id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].id == id)
            return &t->e[i];
    return NULL;
}

static void table_remove(struct table *t, struct entry *e)
{
    *e = t->e[--t->n];
}

/* The daemon is not trusted to ask for anything the policy does not allow. */
static int check_policy(const spawner_policy *pol, sandbox_spec *spec)
{
    bool known = false;
    for (const char *const *i = pol->interpreters; *i; i++)
        known = known || strcmp(*i, spec->argv[0]) == 0;
    if (!known)
        return -EPERM;
    if (pol->uid_count && (spec->uid < pol->uid_base ||
                           spec->uid >= pol->uid_base + pol->uid_count || spec->gid != spec->uid))
        return -EPERM;
    char real[PATH_MAX];
    size_t root_len = strlen(pol->code_root);
    if (!realpath(spec->code_dir, real) || strncmp(real, pol->code_root, root_len) != 0 ||
        real[root_len] != '/')
        return -EPERM;
    spec->isolate = pol->isolate;
    spec->cgroups = pol->cgroups;
    spec->filter = pol->filter;
    return 0;
}

static void serve_spawn(int fd, const spawner_policy *pol, struct table *t, char *buf, size_t len)
{
    sandbox_spec spec;
    const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    struct spawn_reply reply = {.rc = spawnmsg_decode(buf, len, &spec, argv, envp, NULL, NULL)};
    if (reply.rc == 0)
        reply.rc = check_policy(pol, &spec);
    if (reply.rc == 0 && t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct entry *e = cap <= MAX_SANDBOXES ? realloc(t->e, cap * sizeof *e) : NULL;
        if (e) {
            t->e = e;
            t->cap = cap;
        } else {
            reply.rc = -ENOMEM;
        }
    }
    sandbox_proc proc;
    if (reply.rc == 0)
        reply.rc = zygote_spawn(&spec, &proc);
    if (reply.rc < 0) {
        spawnmsg_send(fd, &reply, sizeof reply, NULL, 0);
        return;
    }
    reply.id = ++t->next_id;
    reply.pid = proc.pid;
    reply.runtime = proc.runtime;
    int fds[4] = {proc.pidfd, proc.ctl_fd, proc.out_fd, proc.err_fd};
    spawnmsg_send(fd, &reply, sizeof reply, fds, 4);
    /* The daemon owns the channels now; we keep the pidfd, status and cgroup. */
    close(proc.ctl_fd);
    close(proc.out_fd);
    close(proc.err_fd);
    proc.ctl_fd = proc.out_fd = proc.err_fd = -1;
    t->e[t->n++] = (struct entry){.id = reply.id, .proc = proc};
}

static void serve_reap(int fd, struct table *t, int id)
{
    struct reap_reply reply = {.rc = -ESRCH};
    struct entry *e = table_find(t, id);
    int wstatus = 0;
    if (e)
        reply.rc = sandbox_reap(&e->proc, &wstatus);
    if (e && reply.rc == 1) {
        reply.wstatus = wstatus;
        reply.oom = sandbox_oom_killed(&e->proc);
        sandbox_release(&e->proc);
        table_remove(t, e);
    }
    spawnmsg_send(fd, &reply, sizeof reply, NULL, 0);
}

/* The daemon is gone: nothing it started may outlive it. */
static void end_all(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        sandbox_kill(&t->e[i].proc);
    for (size_t i = 0; i < t->n; i++) {
        int st;
        while (waitpid(t->e[i].proc.pid, &st, 0) < 0 && errno == EINTR)
            ;
        sandbox_release(&t->e[i].proc);
    }
    t->n = 0;
}

static _Noreturn void serve(int fd, const spawner_policy *pol)
{
    struct table t = {0};
    char *buf = malloc(SPAWNMSG_MAX);
    for (;;) {
        ssize_t n = buf ? spawnmsg_recv(fd, buf, SPAWNMSG_MAX, NULL, 0, NULL) : 0;
        if (n <= 0 && n != -EMSGSIZE)
            break;
        uint32_t type = 0;
        if (n >= (ssize_t)sizeof type)
            memcpy(&type, buf, sizeof type);
        struct id_req req = {0};
        if ((type == MSG_KILL || type == MSG_REAP) && n == (ssize_t)sizeof req)
            memcpy(&req, buf, sizeof req);
        if (type == MSG_SPAWN && n > 0) {
            serve_spawn(fd, pol, &t, buf, (size_t)n);
        } else if (type == MSG_KILL && n == (ssize_t)sizeof req) {
            struct entry *e = table_find(&t, req.id);
            if (e)
                sandbox_kill(&e->proc);
        } else if (type == MSG_REAP && n == (ssize_t)sizeof req) {
            serve_reap(fd, &t, req.id);
        } else {
            dlog_error("spawner: malformed message (type %u, %zd bytes); stopping", type, n);
            break;
        }
    }
    end_all(&t);
    zygote_stop_all();
    if (pol->cgroups)
        sandbox_cgroup_close(pol->cgroups);
    _exit(0);
}

int spawner_start(const spawner_policy *policy, spawner **out)
{
    spawner *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -ENOMEM;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        int err = errno;
        free(sp);
        return -err;
    }
    int size = SPAWNMSG_MAX + 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        free(sp);
        return -err;
    }
    if (pid == 0) {
        close(sv[0]);
        /* Nothing of the daemon's (registry, logs, /dev/kmsg) but stdio. */
        if (sv[1] > 3)
            syscall(SYS_close_range, 3, sv[1] - 1, 0);
        syscall(SYS_close_range, sv[1] + 1, ~0U, 0);
        prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
        prctl(PR_SET_NAME, (unsigned long)"hearth-spawner", 0L, 0L, 0L);
        signal(SIGINT, SIG_IGN); /* the daemon decides when we stop */
        signal(SIGTERM, SIG_IGN);
        if (policy->templates)
            zygote_start_runtimes();
        serve(sv[1], policy);
    }
    close(sv[1]);
    sp->fd = sv[0];
    sp->pid = pid;
    *out = sp;
    return 0;
}

void spawner_stop(spawner *sp)
{
    if (!sp)
        return;
    close(sp->fd);
    int st;
    while (waitpid(sp->pid, &st, 0) < 0 && errno == EINTR)
        ;
    free(sp);
}
