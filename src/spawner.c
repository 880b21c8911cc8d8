/*
 * spawner.c — the privileged half of hearthd, and the one check of a
 * worker's spec against the policy.
 *
 * Forked at start while hearthd is still root, before it opens its
 * listening socket. It keeps root (namespaces, mounts, cgroups need it)
 * and does nothing but serve the requests of `requests` from the
 * unprivileged daemon: SPAWN a sandbox (the spec is rebuilt from a flat
 * message and held to a fixed policy by spawner_check, so a compromised
 * daemon cannot ask for uid 0, a code folder outside the data dir,
 * another interpreter, a weaker sandbox, more memory, processes, CPU,
 * file size, open files or /tmp than the policy's ceilings, or the host's
 * network when the operator forbade it, or a secret by a name that is not
 * one), KILL one, and REAP one; KILL and
 * REAP name the spawner's own ids, so no other process can be touched.
 * Every message's type and size are checked before use (OpenBSD httpd's
 * imsg discipline): a malformed one, or one that carries fds, ends the
 * spawner and every sandbox it made; a spawn it refuses gets an errno.
 * Replies carry the worker's fds as SCM_RIGHTS. The spawner alone holds
 * the secrets' private key (secret_bundle.c): the daemon sends a worker's
 * secrets by name, and the values reach the sandbox from here, never
 * through the daemon. Rootless, a local spawner runs the same check, and
 * holds the key, in the daemon before spawning there.
 *
 * Must never: parse anything but these messages, act on a spec before
 * spawner_check passed it, hold an fd it does not need, or outlive the
 * daemon (EOF on the socket ends it, after killing every sandbox it made).
 */
#include "spawner.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "secret_bundle.h"
#include "spawn_msg.h"
#include "validate.h"
#include "zygote.h"

#define MAX_SANDBOXES 65536

enum msg_type { MSG_SPAWN = SPAWNMSG_SPAWN, MSG_KILL = 2, MSG_REAP = 3 };

struct id_req {
    uint32_t type;
    int32_t id;
};

struct reap_reply {
    int32_t rc;
    int32_t wstatus;
    int32_t oom;
};

struct spawner {
    int fd;    /* -1: local (rootless), spawns here */
    pid_t pid; /* the forked spawner, or -1 */
    spawner_policy pol;
    char code_root[PATH_MAX]; /* pol.code_root of a local one */
    secret_bundler *bundler;  /* a local one's; NULL: no secrets here */
};

/* ---- the policy ---- */

static int check_interpreter(const spawner_policy *pol, const sandbox_spec *spec)
{
    for (const char *const *i = pol->interpreters; spec->argv[0] && *i; i++)
        if (strcmp(*i, spec->argv[0]) == 0)
            return 0;
    return -EPERM;
}

static int check_identity(const spawner_policy *pol, const sandbox_spec *spec)
{
    if (!pol->uid_count)
        return 0; /* not root: the sandbox keeps our identity whatever is asked */
    if (spec->uid < pol->uid_base || spec->uid - pol->uid_base >= pol->uid_count ||
        spec->gid != spec->uid)
        return -EPERM;
    return 0;
}

static int check_code_dir(const spawner_policy *pol, const sandbox_spec *spec)
{
    char real[PATH_MAX];
    size_t root_len = strlen(pol->code_root);
    if (!realpath(spec->code_dir, real) || strncmp(real, pol->code_root, root_len) != 0 ||
        real[root_len] != '/')
        return -EPERM;
    return 0;
}

/* It becomes the uts name and a line of the sandbox's /etc/hosts. */
static int check_hostname(const sandbox_spec *spec)
{
    return !spec->hostname || validate_function_name(spec->hostname) ? 0 : -EPERM;
}

/* Names only: the values are read here, from our own folder, by name.
 * A worker outside a private root would have nowhere private to put them. */
static int check_secrets(const spawner_policy *pol, sandbox_spec *spec)
{
    spec->has_secrets = false;
    spec->secrets_fd = -1;
    if (!spec->secrets || !spec->secrets[0]) {
        spec->secrets = NULL;
        return 0;
    }
    if (!pol->isolate)
        return -EOPNOTSUPP;
    for (size_t i = 0; spec->secrets[i]; i++)
        if (i >= VALIDATE_SECRETS_MAX || !validate_secret_name(spec->secrets[i]))
            return -EPERM;
    return 0;
}

/* Walks the message's fields: each limit down to its ceiling, each grant
 * refused unless the policy gives it. */
static int hold_to_limits(const spawner_limits *lim, sandbox_spec *spec)
{
    size_t n;
    const spawnmsg_field *f = spawnmsg_fields(&n);
    for (size_t i = 0; i < n; i++, f++) {
        if (f->rule != SPAWNMSG_LIMIT && f->rule != SPAWNMSG_AMOUNT && f->rule != SPAWNMSG_GRANT)
            continue; /* ID: check_identity; OWN: replaced below */
        uint64_t asked = spawnmsg_get(spec, f->offset, f->size);
        uint64_t most = spawnmsg_get(lim, f->limit_offset, f->size);
        if (f->rule == SPAWNMSG_GRANT && asked && !most)
            return -EPERM;
        if (f->rule != SPAWNMSG_GRANT && (asked > most || (f->rule == SPAWNMSG_LIMIT && !asked)))
            spawnmsg_set(spec, f->offset, f->size, most);
    }
    return 0;
}

int spawner_check(const spawner_policy *pol, sandbox_spec *spec)
{
    int rc = check_interpreter(pol, spec);
    if (rc == 0)
        rc = check_identity(pol, spec);
    if (rc == 0)
        rc = check_code_dir(pol, spec);
    if (rc == 0)
        rc = check_hostname(spec);
    if (rc == 0)
        rc = check_secrets(pol, spec);
    if (rc == 0)
        rc = hold_to_limits(&pol->limits, spec);
    if (rc < 0)
        return rc;
    spec->isolate = pol->isolate;
    spec->cgroups = pol->cgroups;
    spec->filter = pol->filter;
    return 0;
}

/* A ceiling of 0 would read as "no limit": a policy must name them all. */
static bool policy_complete(const spawner_policy *pol)
{
    size_t n;
    const spawnmsg_field *f = spawnmsg_fields(&n);
    for (size_t i = 0; i < n; i++, f++)
        if (f->rule == SPAWNMSG_LIMIT && !spawnmsg_get(&pol->limits, f->limit_offset, f->size))
            return false;
    return pol->code_root && pol->code_root[0] == '/' && pol->interpreters;
}

/* ---- the daemon's side ---- */

static bool is_local(const spawner *sp)
{
    return sp->fd < 0;
}

/* A checked spec's secrets, opened into a bundle it carries to the
 * sandbox; spawn_done closes it once the sandbox has its copy. */
static int add_bundle(secret_bundler *b, sandbox_spec *spec)
{
    if (!spec->secrets)
        return 0;
    int fd = b ? secret_bundle_make(b, spec->secrets) : -EOPNOTSUPP;
    if (fd < 0)
        return fd;
    spec->has_secrets = true;
    spec->secrets_fd = fd;
    return 0;
}

static void spawn_done(sandbox_spec *spec)
{
    if (spec->has_secrets)
        close(spec->secrets_fd);
    spec->has_secrets = false;
}

/* Checked, given its secrets, spawned. */
static int spawn_held(const spawner_policy *pol, secret_bundler *b, sandbox_spec *spec,
                      sandbox_proc *out)
{
    int rc = spawner_check(pol, spec);
    if (rc == 0)
        rc = add_bundle(b, spec);
    if (rc == 0)
        rc = zygote_spawn(spec, out);
    spawn_done(spec);
    return rc;
}

static int spawn_local(spawner *sp, const sandbox_spec *spec, sandbox_proc *out)
{
    sandbox_spec held = *spec;
    return spawn_held(&sp->pol, sp->bundler, &held, out);
}

int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out)
{
    *out = (sandbox_proc){
        .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
    if (is_local(sp))
        return spawn_local(sp, spec, out);
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
    if (is_local(sp)) {
        sandbox_kill(proc);
        return;
    }
    struct id_req req = {.type = MSG_KILL, .id = proc->spawner_id};
    spawnmsg_send(sp->fd, &req, sizeof req, NULL, 0);
}

int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom)
{
    if (is_local(sp)) {
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
    if (is_local(sp)) {
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

int spawner_socket(const spawner *sp)
{
    return sp->fd;
}

/* ---- the spawner's side ---- */

struct entry {
    int id;
    sandbox_proc proc;
};

struct server {
    int fd;
    const spawner_policy *pol;
    secret_bundler *bundler; /* NULL: no secrets here */
    struct entry *e;         /* the sandboxes we made and have not reaped */
    size_t n, cap;
    int next_id;
};

static struct entry *find(struct server *s, int id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].id == id)
            return &s->e[i];
    return NULL;
}

static void forget(struct server *s, struct entry *e)
{
    *e = s->e[--s->n];
}

/* Room for one more entry: 0 or -ENOMEM. */
static int reserve(struct server *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct entry *e = cap <= MAX_SANDBOXES ? realloc(s->e, cap * sizeof *e) : NULL;
    if (!e)
        return -ENOMEM;
    s->e = e;
    s->cap = cap;
    return 0;
}

/* Positive, unused, and wrapping without overflow. */
static int new_id(struct server *s)
{
    do
        s->next_id = s->next_id == INT32_MAX ? 1 : s->next_id + 1;
    while (find(s, s->next_id));
    return s->next_id;
}

static void serve_spawn(struct server *s, char *msg, size_t len)
{
    sandbox_spec spec;
    const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    const char *secrets[VALIDATE_SECRETS_MAX + 1];
    struct spawn_reply reply = {
        .rc = spawnmsg_decode(msg, len, &spec, argv, envp, secrets, NULL, NULL)};
    if (reply.rc == 0)
        reply.rc = reserve(s);
    sandbox_proc proc;
    if (reply.rc == 0)
        reply.rc = spawn_held(s->pol, s->bundler, &spec, &proc);
    if (reply.rc < 0) {
        spawnmsg_send(s->fd, &reply, sizeof reply, NULL, 0);
        return;
    }
    reply.id = new_id(s);
    reply.pid = proc.pid;
    reply.runtime = proc.runtime;
    int fds[4] = {proc.pidfd, proc.ctl_fd, proc.out_fd, proc.err_fd};
    spawnmsg_send(s->fd, &reply, sizeof reply, fds, 4);
    /* The daemon owns the channels now; we keep the pidfd, status and cgroup. */
    close(proc.ctl_fd);
    close(proc.out_fd);
    close(proc.err_fd);
    proc.ctl_fd = proc.out_fd = proc.err_fd = -1;
    s->e[s->n++] = (struct entry){.id = reply.id, .proc = proc};
}

/* An id we did not give (or already reaped) names nothing: ignored, and
 * there is no reply (the daemon does not wait on a kill). */
static void serve_kill(struct server *s, char *msg, size_t len)
{
    struct id_req req;
    (void)len; /* sizeof req: find_request saw to it */
    memcpy(&req, msg, sizeof req);
    struct entry *e = find(s, req.id);
    if (e)
        sandbox_kill(&e->proc);
}

static void serve_reap(struct server *s, char *msg, size_t len)
{
    struct id_req req;
    (void)len; /* sizeof req: find_request saw to it */
    memcpy(&req, msg, sizeof req);
    struct reap_reply reply = {.rc = -ESRCH};
    struct entry *e = find(s, req.id);
    int wstatus = 0;
    if (e)
        reply.rc = sandbox_reap(&e->proc, &wstatus);
    if (e && reply.rc == 1) {
        reply.wstatus = wstatus;
        reply.oom = sandbox_oom_killed(&e->proc);
        sandbox_release(&e->proc);
        forget(s, e);
    }
    spawnmsg_send(s->fd, &reply, sizeof reply, NULL, 0);
}

/* Every message the spawner accepts: its type and its size. */
static const struct request {
    uint32_t type;
    size_t size; /* exactly, or 0: a spawn, whose decoder checks its size */
    void (*serve)(struct server *s, char *msg, size_t len);
} requests[] = {
    {MSG_SPAWN, 0, serve_spawn},
    {MSG_KILL, sizeof(struct id_req), serve_kill},
    {MSG_REAP, sizeof(struct id_req), serve_reap},
};

static const struct request *find_request(const char *msg, ssize_t len)
{
    uint32_t type;
    if (len < (ssize_t)sizeof type)
        return NULL;
    memcpy(&type, msg, sizeof type);
    for (size_t i = 0; i < sizeof requests / sizeof *requests; i++)
        if (requests[i].type == type && (!requests[i].size || (ssize_t)requests[i].size == len))
            return &requests[i];
    return NULL;
}

/* The daemon is gone: nothing it started may outlive it. */
static void end_all(struct server *s)
{
    for (size_t i = 0; i < s->n; i++)
        sandbox_kill(&s->e[i].proc);
    for (size_t i = 0; i < s->n; i++) {
        int st;
        while (waitpid(s->e[i].proc.pid, &st, 0) < 0 && errno == EINTR)
            ;
        sandbox_release(&s->e[i].proc);
    }
    s->n = 0;
}

/* Until EOF, or a message that breaks the protocol: a daemon that sends
 * one is not the daemon we started with, so it gets nothing more. */
/* Our own handle on the secrets, opened after the fork so that the
 * daemon never holds the private key; without one, spawns that name
 * secrets fail (and the log says why, once). */
static secret_bundler *open_bundler(const spawner_policy *pol)
{
    secret_bundler *b = NULL;
    int rc = pol->secrets_dir ? secret_bundle_open(pol->secrets_dir, pol->secrets_key, &b) : 0;
    if (rc < 0)
        dlog_error("spawner: cannot open the secrets (%s): workers that list one will not start",
                   strerror(-rc));
    return b;
}

static _Noreturn void serve(int fd, const spawner_policy *pol)
{
    struct server s = {.fd = fd, .pol = pol, .bundler = open_bundler(pol)};
    char *buf = malloc(SPAWNMSG_MAX);
    for (;;) {
        ssize_t n = buf ? spawnmsg_recv(fd, buf, SPAWNMSG_MAX, NULL, 0, NULL) : 0;
        if (n == 0)
            break;
        const struct request *r = find_request(buf, n);
        if (!r && n < 0)
            dlog_error("spawner: unreadable message (%s); stopping", strerror((int)-n));
        else if (!r)
            dlog_error("spawner: malformed message (%zd bytes); stopping", n);
        if (!r)
            break;
        r->serve(&s, buf, (size_t)n);
    }
    end_all(&s);
    secret_bundle_close(s.bundler);
    zygote_stop_all();
    if (pol->cgroups)
        sandbox_cgroup_close(pol->cgroups);
    _exit(0);
}

int spawner_start(const spawner_policy *policy, spawner **out)
{
    if (!policy_complete(policy))
        return -EINVAL;
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

int spawner_open_local(const spawner_policy *policy, spawner **out)
{
    if (!policy_complete(policy) || strlen(policy->code_root) >= PATH_MAX)
        return -EINVAL;
    spawner *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -ENOMEM;
    *sp = (spawner){.fd = -1, .pid = -1, .pol = *policy};
    snprintf(sp->code_root, sizeof sp->code_root, "%s", policy->code_root);
    sp->pol.code_root = sp->code_root;
    sp->bundler = open_bundler(policy);
    if (policy->templates)
        zygote_start_runtimes();
    *out = sp;
    return 0;
}

void spawner_stop(spawner *sp)
{
    if (!sp)
        return;
    if (is_local(sp)) {
        zygote_stop_all(); /* the templates are the spawner's, here too */
        secret_bundle_close(sp->bundler);
        free(sp);
        return;
    }
    close(sp->fd);
    int st;
    while (waitpid(sp->pid, &st, 0) < 0 && errno == EINTR)
        ;
    free(sp);
}
