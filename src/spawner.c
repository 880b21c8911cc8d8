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

#define MSG_MAX       (192 * 1024) /* a spawn request: argv (with the runtime program) + env */
#define MAX_STRINGS   512
#define MAX_SANDBOXES 65536

enum msg_type { MSG_SPAWN = 1, MSG_KILL = 2, MSG_REAP = 3 };

struct spawn_req {
    uint32_t type;
    uint32_t uid, gid;
    uint64_t memory_bytes, max_file_size, max_open_files, tmp_bytes;
    uint32_t pids_max, cpu_millis;
    uint8_t host_network;
    uint8_t pad[3];
    uint32_t argc, envc;
    /* then argc + envc + 2 (code_dir, hostname) NUL-terminated strings */
};

struct id_req {
    uint32_t type;
    int32_t id;
};

struct spawn_reply {
    int32_t rc;
    int32_t id;
    int32_t pid;
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

static int append_str(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s) + 1;
    if (*len + n > MSG_MAX)
        return -E2BIG;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

static int count_strings(const char *const *v, uint32_t *n)
{
    for (*n = 0; v[*n]; (*n)++)
        if (*n >= MAX_STRINGS)
            return -E2BIG;
    return 0;
}

static int encode_spawn(const sandbox_spec *spec, char *buf, size_t *len)
{
    struct spawn_req req = {
        .type = MSG_SPAWN,
        .uid = (uint32_t)spec->uid,
        .gid = (uint32_t)spec->gid,
        .memory_bytes = spec->memory_bytes,
        .max_file_size = spec->max_file_size,
        .max_open_files = spec->max_open_files,
        .tmp_bytes = spec->tmp_bytes,
        .pids_max = spec->pids_max,
        .cpu_millis = spec->cpu_millis,
        .host_network = spec->host_network,
    };
    int rc = count_strings(spec->argv, &req.argc);
    if (rc == 0)
        rc = count_strings(spec->envp, &req.envc);
    if (rc < 0)
        return rc;
    memcpy(buf, &req, sizeof req);
    *len = sizeof req;
    for (uint32_t i = 0; rc == 0 && i < req.argc; i++)
        rc = append_str(buf, len, spec->argv[i]);
    for (uint32_t i = 0; rc == 0 && i < req.envc; i++)
        rc = append_str(buf, len, spec->envp[i]);
    if (rc == 0)
        rc = append_str(buf, len, spec->code_dir);
    if (rc == 0)
        rc = append_str(buf, len, spec->hostname ? spec->hostname : "hearth");
    return rc;
}

/* Receives one message and up to `maxfds` fds. Returns its length, 0 on
 * EOF, or a negative errno. */
static ssize_t recv_msg(int fd, void *buf, size_t cap, int *fds, int maxfds, int *nfds)
{
    char control[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = {buf, cap};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fds) {
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)maxfds);
    }
    ssize_t n;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (nfds)
        *nfds = 0;
    for (struct cmsghdr *c = fds ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (*nfds < maxfds)
                fds[(*nfds)++] = got;
            else
                close(got);
        }
    }
    if (mh.msg_flags & MSG_TRUNC)
        return -EMSGSIZE;
    return n;
}

static int send_msg(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
    char control[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out)
{
    if (!sp)
        return sandbox_spawn(spec, out);
    *out = (sandbox_proc){
        .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
    char *buf = malloc(MSG_MAX);
    if (!buf)
        return -ENOMEM;
    size_t len;
    int rc = encode_spawn(spec, buf, &len);
    if (rc == 0)
        rc = send_msg(sp->fd, buf, len, NULL, 0);
    free(buf);
    if (rc < 0)
        return rc;
    struct spawn_reply reply;
    int fds[4], nfds = 0;
    ssize_t n = recv_msg(sp->fd, &reply, sizeof reply, fds, 4, &nfds);
    if (n != (ssize_t)sizeof reply || (reply.rc == 0 && nfds != 4)) {
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
        return n < 0 ? (int)n : -EPROTO;
    }
    if (reply.rc < 0)
        return reply.rc;
    out->pid = reply.pid;
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
    send_msg(sp->fd, &req, sizeof req, NULL, 0);
}

int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom)
{
    if (!sp) {
        int rc = sandbox_reap(proc, wstatus);
        *oom = rc == 1 && sandbox_oom_killed(proc);
        return rc;
    }
    struct id_req req = {.type = MSG_REAP, .id = proc->spawner_id};
    int rc = send_msg(sp->fd, &req, sizeof req, NULL, 0);
    if (rc < 0)
        return rc;
    struct reap_reply reply;
    ssize_t n = recv_msg(sp->fd, &reply, sizeof reply, NULL, 0, NULL);
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

/* Rebuilds the spec from a message, or says why it is refused. Strings
 * point into `buf`; argv/envp into the given arrays. */
static int decode_spawn(char *buf, size_t len, sandbox_spec *spec, const char **argv,
                        const char **envp)
{
    struct spawn_req req;
    if (len < sizeof req)
        return -EPROTO;
    memcpy(&req, buf, sizeof req);
    if (req.argc == 0 || req.argc >= MAX_STRINGS || req.envc >= MAX_STRINGS)
        return -EPROTO;
    char *p = buf + sizeof req, *end = buf + len;
    const char *strs[2 * MAX_STRINGS + 2];
    uint32_t want = req.argc + req.envc + 2;
    for (uint32_t i = 0; i < want; i++) {
        char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul)
            return -EPROTO;
        strs[i] = p;
        p = nul + 1;
    }
    if (p != end)
        return -EPROTO;
    for (uint32_t i = 0; i < req.argc; i++)
        argv[i] = strs[i];
    argv[req.argc] = NULL;
    for (uint32_t i = 0; i < req.envc; i++)
        envp[i] = strs[req.argc + i];
    envp[req.envc] = NULL;
    *spec = (sandbox_spec){
        .argv = argv,
        .envp = envp,
        .code_dir = strs[req.argc + req.envc],
        .hostname = strs[req.argc + req.envc + 1],
        .uid = (uid_t)req.uid,
        .gid = (gid_t)req.gid,
        .memory_bytes = req.memory_bytes,
        .max_file_size = req.max_file_size,
        .max_open_files = req.max_open_files,
        .tmp_bytes = req.tmp_bytes,
        .pids_max = req.pids_max,
        .cpu_millis = req.cpu_millis,
        .host_network = req.host_network != 0,
    };
    return 0;
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
    const char *argv[MAX_STRINGS + 1], *envp[MAX_STRINGS + 1];
    struct spawn_reply reply = {.rc = decode_spawn(buf, len, &spec, argv, envp)};
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
        reply.rc = sandbox_spawn(&spec, &proc);
    if (reply.rc < 0) {
        send_msg(fd, &reply, sizeof reply, NULL, 0);
        return;
    }
    reply.id = ++t->next_id;
    reply.pid = proc.pid;
    int fds[4] = {proc.pidfd, proc.ctl_fd, proc.out_fd, proc.err_fd};
    send_msg(fd, &reply, sizeof reply, fds, 4);
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
    send_msg(fd, &reply, sizeof reply, NULL, 0);
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
    char *buf = malloc(MSG_MAX);
    for (;;) {
        ssize_t n = buf ? recv_msg(fd, buf, MSG_MAX, NULL, 0, NULL) : 0;
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
    int size = MSG_MAX + 4096;
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
