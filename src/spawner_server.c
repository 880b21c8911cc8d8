/*
 * spawner_server.c — the spawner process: the half of hearthd that alone
 * creates, specialises, signals and reaps sandboxes (as root when hearthd
 * started as root; rootless it keeps the daemon's identity).
 *
 * One single-threaded poll loop serves the daemon's requests
 * (spawner_wire.h) with many in flight: a spawn is begun (cgroup leaf,
 * channels, clone or a template's clone) and finished when its status
 * socket says the runtime started; a claim of a pre-built sandbox is sent
 * to the sandbox's init and answered when the init says the code is
 * attached. Each waits with a deadline. Every message's type and size
 * are checked before use (OpenBSD httpd's imsg discipline): a malformed
 * one, or one that carries fds, ends the spawner and every sandbox it
 * made; a request it refuses gets an errno.
 *
 * Owns: the sandboxes it made (by its own ids), their cgroup leaves and
 * status sockets, the templates (zygote.c), the secrets' private key.
 * Must never: parse anything but these messages, act on a spec before
 * spawner_check passed it, claim a sandbox twice or one it did not
 * pre-build, hold an fd it does not need, or outlive the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dlog.h"
#include "egress.h"
#include "secret_bundle.h"
#include "spawn_msg.h"
#include "spawner_wire.h"
#include "validate.h"
#include "zygote.h"

#define MAX_SANDBOXES 65536
#define SPAWN_MS      30000 /* clone to "started": the sandbox's steps and an exec */
#define ATTACH_MS     5000  /* a claim: the init mounts the code and answers */

enum entry_state {
    E_SPAWNING,  /* begun; its status socket will say how it went */
    E_LIVE,      /* a function's, running */
    E_PREBUILT,  /* ready, no function yet: may be claimed once */
    E_ATTACHING, /* claimed; its init is attaching the code */
};

struct entry {
    int id;
    enum entry_state state;
    sandbox_proc proc;
    uint32_t req;      /* the daemon's request waiting for this entry's answer */
    uint64_t deadline; /* of that wait, monotonic ms */
    bool reply_fds;    /* the answer hands the daemon the sandbox's fds */
    char *argv;        /* a pre-built one's argv, each string NUL-terminated */
    size_t argv_len;
    uid_t uid;
    bool egress;       /* built with "network": "egress" */
    egress_worker net; /* and its connection, ended with the entry */
};

struct server {
    int fd;
    const spawner_policy *pol;
    secret_bundler *bundler; /* NULL: no secrets here */
    struct entry *e;         /* the sandboxes we made and have not reaped */
    size_t n, cap;
    int next_id;
    char *buf; /* SPAWNMSG_MAX + a head */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct entry *find(struct server *s, int id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].id == id)
            return &s->e[i];
    return NULL;
}

static void forget(struct server *s, struct entry *e)
{
    if (e->egress)
        egress_worker_end(s->pol->egress, &e->net);
    free(e->argv);
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

static void reply(struct server *s, struct spw_reply r, const int *fds, int nfds)
{
    spawnmsg_send(s->fd, &r, sizeof r, fds, nfds);
}

/* ---- secrets ---- */

/* A checked spec's secrets, opened into a bundle it carries to the
 * sandbox; drop_bundle closes it once the sandbox has its copy. */
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

static void drop_bundle(sandbox_spec *spec)
{
    if (spec->has_secrets)
        close(spec->secrets_fd);
    spec->has_secrets = false;
}

/* ---- spawning ---- */

/* A pre-built sandbox is the spawner's to shape: at the code root, with
 * nothing of a function (no secrets, no host network, no hostname). */
static int shape_prebuilt(const spawner_policy *pol, sandbox_spec *spec)
{
    if (!pol->isolate)
        return -EOPNOTSUPP; /* without a mount namespace there is nowhere to attach code */
    if ((spec->secrets && spec->secrets[0]) || spec->host_network)
        return -EPERM;
    spec->prebuilt = true;
    spec->code_dir = pol->code_root;
    spec->hostname = NULL;
    spec->secrets = NULL;
    return 0;
}

static char *join_argv(const char *const *argv, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; argv[i]; i++)
        n += strlen(argv[i]) + 1;
    char *out = malloc(n ? n : 1);
    if (!out)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; argv[i]; i++) {
        size_t l = strlen(argv[i]) + 1;
        memcpy(out + at, argv[i], l);
        at += l;
    }
    *len = n;
    return out;
}

/* An egress sandbox: cloned here (never from a template), waiting on
 * `go` until egress_worker_begin has connected it. */
static int begin_egress(struct server *s, sandbox_spec *spec, sandbox_proc *proc,
                        egress_worker *net)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return -errno;
    spec->net_wait_fd = go[0];
    int rc = sandbox_spawn_begin(spec, proc, NULL, NULL);
    close(go[0]);
    if (rc == 0) {
        rc = egress_worker_begin(s->pol->egress, proc->pid, go[1], net);
        if (rc < 0)
            sandbox_spawn_abort(proc);
    }
    close(go[1]);
    return rc;
}

static void serve_spawn(struct server *s, const struct spw_head *h, char *msg, size_t len)
{
    sandbox_spec spec;
    const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    const char *secrets[VALIDATE_SECRETS_MAX + 1];
    struct spw_reply r = {.req = h->req};
    r.rc = spawnmsg_decode(msg, len, &spec, argv, envp, secrets, NULL, NULL);
    spec.prebuilt = false; /* the request's type says, not the message */
    if (r.rc == 0 && h->type == SPW_PREBUILD)
        r.rc = shape_prebuilt(s->pol, &spec);
    if (r.rc == 0)
        r.rc = reserve(s);
    if (r.rc == 0)
        r.rc = spawner_check(s->pol, &spec);
    if (r.rc == 0)
        r.rc = add_bundle(s->bundler, &spec);
    sandbox_proc proc;
    egress_worker net = {0};
    if (r.rc == 0)
        r.rc = spec.egress ? begin_egress(s, &spec, &proc, &net) : zygote_spawn_begin(&spec, &proc);
    drop_bundle(&spec); /* the child, or the template, has its own copy now */
    char *key = NULL;
    size_t key_len = 0;
    if (r.rc == 0 && spec.prebuilt && !(key = join_argv(spec.argv, &key_len))) {
        sandbox_spawn_abort(&proc);
        if (spec.egress)
            egress_worker_end(s->pol->egress, &net);
        r.rc = -ENOMEM;
    }
    if (r.rc < 0) {
        reply(s, r, NULL, 0);
        return;
    }
    s->e[s->n++] = (struct entry){.id = new_id(s),
                                  .state = E_SPAWNING,
                                  .proc = proc,
                                  .req = h->req,
                                  .deadline = now_ms() + SPAWN_MS,
                                  .reply_fds = true,
                                  .argv = key,
                                  .argv_len = key_len,
                                  .uid = spec.uid,
                                  .egress = spec.egress,
                                  .net = net};
}

/* The begun spawn of e is over (rc from sandbox_spawn_finish): answer. */
static void spawn_answered(struct server *s, struct entry *e, int rc)
{
    struct spw_reply r = {.req = e->req, .rc = rc};
    if (rc < 0) {
        reply(s, r, NULL, 0);
        forget(s, e);
        return;
    }
    r.id = e->id;
    r.pid = e->proc.pid;
    r.runtime = e->proc.runtime;
    int fds[SPW_SANDBOX_FDS] = {e->proc.pidfd, e->proc.ctl_fd, e->proc.out_fd, e->proc.err_fd};
    reply(s, r, fds, SPW_SANDBOX_FDS);
    /* The daemon owns the channels now; we keep the pidfd, status and cgroup. */
    close(e->proc.ctl_fd);
    close(e->proc.out_fd);
    close(e->proc.err_fd);
    e->proc.ctl_fd = e->proc.out_fd = e->proc.err_fd = -1;
    e->state = e->argv ? E_PREBUILT : E_LIVE;
}

/* ---- claiming a pre-built sandbox ---- */

/* "<name>/<version>" of a checked code folder: the part under the code root. */
static int code_rel_of(const spawner_policy *pol, const char *code_dir, char *out, size_t cap)
{
    char real[PATH_MAX];
    size_t root_len = strlen(pol->code_root);
    if (!realpath(code_dir, real) || strncmp(real, pol->code_root, root_len) != 0 ||
        real[root_len] != '/')
        return -EPERM;
    const char *rel = real + root_len + 1, *slash = strchr(rel, '/');
    if (!slash || slash == rel || !slash[1] || strchr(slash + 1, '/') ||
        snprintf(out, cap, "%s", rel) >= (int)cap)
        return -EPERM;
    return 0;
}

/* The claim is for this sandbox as it was built: the same runtime, the same uid. */
static int same_build(const struct entry *e, const sandbox_spec *spec)
{
    size_t len;
    char *key = join_argv(spec->argv, &len);
    bool same = key && len == e->argv_len && memcmp(key, e->argv, len) == 0;
    free(key);
    return same && spec->uid == e->uid ? 0 : -EPERM;
}

/* Checks the claim and sends the init its ATTACH. Past the state check
 * the sandbox is spent whatever happens: single use. */
static int begin_claim(struct server *s, struct entry *e, sandbox_spec *spec)
{
    if (e->state != E_PREBUILT)
        return -EBUSY;
    e->state = E_LIVE;
    int rc = same_build(e, spec);
    if (rc == 0)
        rc = spawner_check(s->pol, spec);
    char rel[PATH_MAX];
    if (rc == 0)
        rc = code_rel_of(s->pol, spec->code_dir, rel, sizeof rel);
    if (rc == 0 && (spec->host_network || spec->egress != e->egress))
        rc = -EPERM; /* its network was built with it: it cannot change */
    bool memory_cgroup = e->proc.has_cgroup && e->proc.cgroup.path[SANDBOX_CGROUP_MEMORY][0];
    if (rc == 0)
        rc = add_bundle(s->bundler, spec);
    if (rc == 0) {
        sandbox_attach a = {
            .code_rel = rel,
            .hostname = spec->hostname ? spec->hostname : "hearth",
            .as_bytes = memory_cgroup ? 0 : spec->memory_bytes + spec->vm_reserve,
            .secrets_fd = spec->has_secrets ? spec->secrets_fd : -1,
        };
        rc = sandbox_attach_send(&e->proc, &a);
    }
    drop_bundle(spec);
    /* While the init attaches: the runtime loads nothing of the function
     * before the claim is answered, and that waits for both. */
    if (rc == 0 && e->proc.has_cgroup)
        rc = sandbox_cgroup_set_memory(&e->proc.cgroup, spec->memory_bytes);
    if (rc == 0)
        e->state = E_ATTACHING;
    else
        sandbox_kill(&e->proc);
    return rc;
}

static void serve_claim(struct server *s, const struct spw_head *h, char *msg, size_t len)
{
    sandbox_spec spec;
    const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    const char *secrets[VALIDATE_SECRETS_MAX + 1];
    struct spw_reply r = {.req = h->req, .rc = -ESRCH};
    int rc = spawnmsg_decode(msg, len, &spec, argv, envp, secrets, NULL, NULL);
    spec.prebuilt = false;
    struct entry *e = find(s, h->id);
    if (rc < 0)
        r.rc = rc;
    else if (e)
        r.rc = begin_claim(s, e, &spec);
    if (r.rc < 0 || !e) {
        reply(s, r, NULL, 0);
        return;
    }
    e->req = h->req;
    e->deadline = now_ms() + ATTACH_MS;
    e->reply_fds = false;
}

static void claim_answered(struct server *s, struct entry *e, int rc)
{
    e->state = E_LIVE;
    if (rc < 0)
        sandbox_kill(&e->proc); /* the daemon reaps it when its pidfd says so */
    reply(s, (struct spw_reply){.req = e->req, .rc = rc}, NULL, 0);
}

/* ---- kill, reap ---- */

static void serve_kill(struct server *s, const struct spw_head *h)
{
    struct entry *e = find(s, h->id);
    if (e)
        sandbox_kill(&e->proc); /* a spawn in flight then fails, and says so */
}

/* An id we did not give (or already reaped, or whose spawn is not
 * answered yet) names nothing. */
static void serve_reap(struct server *s, const struct spw_head *h)
{
    struct spw_reply r = {.req = h->req, .rc = -ESRCH};
    struct entry *e = find(s, h->id);
    if (e && e->state == E_SPAWNING)
        e = NULL;
    if (e && e->state == E_ATTACHING)
        claim_answered(s, e, -ESRCH); /* gone before its init answered */
    int wstatus = 0;
    if (e)
        r.rc = sandbox_reap(&e->proc, &wstatus);
    if (e && r.rc == 1) {
        r.wstatus = wstatus;
        r.oom = sandbox_oom_killed(&e->proc);
        sandbox_release(&e->proc);
        forget(s, e);
    }
    reply(s, r, NULL, 0);
}

/* ---- the loop ---- */

/* Every request the spawner accepts: its type and its size. */
static const struct request {
    uint32_t type;
    bool spec; /* a spawn message follows the head (its decoder checks its size) */
} requests[] = {
    {SPW_SPAWN, true},    {SPW_KILL, false}, {SPW_REAP, false},
    {SPW_PREBUILD, true}, {SPW_CLAIM, true},
};

static const struct request *find_request(const char *msg, ssize_t len, struct spw_head *h)
{
    if (len < (ssize_t)sizeof *h)
        return NULL;
    memcpy(h, msg, sizeof *h);
    for (size_t i = 0; i < sizeof requests / sizeof *requests; i++)
        if (requests[i].type == h->type && (requests[i].spec || len == (ssize_t)sizeof *h))
            return &requests[i];
    return NULL;
}

/* One request from the daemon. false: stop serving. */
static bool serve_one(struct server *s)
{
    ssize_t n = spawnmsg_recv(s->fd, s->buf, sizeof(struct spw_head) + SPAWNMSG_MAX, NULL, 0, NULL);
    if (n == -EAGAIN || n == -EINTR)
        return true;
    if (n == 0)
        return false;
    struct spw_head h;
    const struct request *r = find_request(s->buf, n, &h);
    if (!r && n < 0)
        dlog_error("spawner: unreadable message (%s); stopping", strerror((int)-n));
    else if (!r)
        dlog_error("spawner: malformed message (%zd bytes); stopping", n);
    if (!r)
        return false;
    char *body = s->buf + sizeof h;
    size_t len = (size_t)n - sizeof h;
    if (h.type == SPW_SPAWN || h.type == SPW_PREBUILD)
        serve_spawn(s, &h, body, len);
    else if (h.type == SPW_CLAIM)
        serve_claim(s, &h, body, len);
    else if (h.type == SPW_KILL)
        serve_kill(s, &h);
    else
        serve_reap(s, &h);
    return true;
}

static bool waiting(const struct entry *e)
{
    return e->state == E_SPAWNING || e->state == E_ATTACHING;
}

/* An entry whose status socket spoke, or whose deadline passed. */
static void progress(struct server *s, struct entry *e, bool expired)
{
    if (e->state == E_SPAWNING) {
        int rc = sandbox_spawn_finish(&e->proc);
        if (rc == -EAGAIN && !expired)
            return;
        if (rc == -EAGAIN) {
            sandbox_spawn_abort(&e->proc);
            rc = -ETIMEDOUT;
        }
        spawn_answered(s, e, rc);
        return;
    }
    int rc = sandbox_attach_result(&e->proc);
    if (rc == -EAGAIN && !expired)
        return;
    claim_answered(s, e, rc == -EAGAIN ? -ETIMEDOUT : rc);
}

/* Polls the daemon's socket and every entry waiting on its status
 * socket, with the earliest deadline as the timeout. */
static bool serve_turn(struct server *s, struct pollfd **pfds, size_t *pcap)
{
    if (*pcap < s->n + 1) {
        struct pollfd *grown = realloc(*pfds, (s->n + 1) * sizeof **pfds);
        if (!grown)
            return false;
        *pfds = grown;
        *pcap = s->n + 1;
    }
    struct pollfd *p = *pfds;
    size_t np = 1;
    uint64_t now = now_ms(), soonest = UINT64_MAX;
    p[0] = (struct pollfd){.fd = s->fd, .events = POLLIN};
    for (size_t i = 0; i < s->n; i++) {
        if (!waiting(&s->e[i]))
            continue;
        p[np++] = (struct pollfd){.fd = s->e[i].proc.status_fd, .events = POLLIN};
        if (s->e[i].deadline < soonest)
            soonest = s->e[i].deadline;
    }
    int timeout = soonest == UINT64_MAX ? -1 : soonest <= now ? 0 : (int)(soonest - now);
    if (poll(p, np, timeout) < 0 && errno != EINTR)
        return false;
    now = now_ms();
    /* Entries first: serving a request may add or move entries. */
    for (size_t i = 0; i < s->n;) {
        struct entry *e = &s->e[i];
        int fd = e->proc.status_fd;
        bool ready = false;
        for (size_t k = 1; k < np && !ready; k++)
            ready = p[k].fd == fd && p[k].revents;
        size_t before = s->n;
        if (waiting(e) && (ready || e->deadline <= now))
            progress(s, e, e->deadline <= now);
        if (s->n == before)
            i++; /* a forgotten entry's place now holds the last one: look at it again */
    }
    if (p[0].revents & POLLIN)
        return serve_one(s);
    return !(p[0].revents & (POLLHUP | POLLERR | POLLNVAL));
}

/* The daemon is gone: nothing it started may outlive it. */
static void end_all(struct server *s)
{
    for (size_t i = 0; i < s->n; i++)
        sandbox_kill(&s->e[i].proc);
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].state == E_SPAWNING) {
            sandbox_spawn_abort(&s->e[i].proc);
            continue;
        }
        int st;
        while (waitpid(s->e[i].proc.pid, &st, 0) < 0 && errno == EINTR)
            ;
        sandbox_release(&s->e[i].proc);
    }
    while (s->n)
        forget(s, &s->e[s->n - 1]);
}

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

/* Until EOF, or a message that breaks the protocol: a daemon that sends
 * one is not the daemon we started with, so it gets nothing more. */
_Noreturn void spawner_serve(int fd, const spawner_policy *pol)
{
    /* Nothing of the daemon's (registry, logs, /dev/kmsg) but stdio. */
    if (fd > 3)
        syscall(SYS_close_range, 3, fd - 1, 0);
    syscall(SYS_close_range, fd + 1, ~0U, 0);
    if (pol->egress)
        pol->egress->lock_fd = -1; /* closed just now: the daemon holds the host's lock */
    prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
    prctl(PR_SET_NAME, (unsigned long)"hearth-spawner", 0L, 0L, 0L);
    signal(SIGINT, SIG_IGN); /* the daemon decides when we stop */
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (pol->templates)
        zygote_start_runtimes();
    struct server s = {.fd = fd,
                       .pol = pol,
                       .bundler = open_bundler(pol),
                       .buf = malloc(sizeof(struct spw_head) + SPAWNMSG_MAX)};
    struct pollfd *pfds = NULL;
    size_t pcap = 0;
    while (s.buf && serve_turn(&s, &pfds, &pcap))
        ;
    free(pfds);
    end_all(&s);
    secret_bundle_close(s.bundler);
    zygote_stop_all();
    if (pol->cgroups)
        sandbox_cgroup_close(pol->cgroups);
    if (pol->egress)
        egress_host_stop(pol->egress);
    _exit(0);
}
