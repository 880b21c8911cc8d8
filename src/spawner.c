/*
 * spawner.c — the daemon's side of the spawner: requests written without
 * blocking, answers read from the loop and matched to their request by
 * id. The one check of a worker's spec against the policy is
 * spawner_check.c's.
 *
 * The spawner itself (spawner_server.c) is forked at start, while hearthd
 * may still be root, before it opens its listening socket; the rest of
 * hearthd (HTTP, JSON, the registry) then drops to an unprivileged user.
 * The spawner holds every spec to a fixed policy (spawner_check.c), so a
 * compromised daemon cannot ask for uid 0, a code folder outside the data
 * dir, another interpreter, a weaker sandbox, more memory, processes, CPU,
 * file size, open files or /tmp than the policy's ceilings, or the host's
 * network when the operator forbade it, or a secret by a name that is not
 * one. KILL, REAP and CLAIM name the spawner's own ids, so no other
 * process can be touched. The spawner alone holds the secrets' private
 * key (secret_bundle.c): the daemon names a worker's secrets, and the
 * values reach the sandbox from there, never through the daemon.
 *
 * Must never: block the daemon's loop on the spawner (a request the
 * socket does not take waits in a queue; answers come to the loop), or
 * call a callback before the request that asked for it has returned.
 */
#include "spawner.h"

#include "egress.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "spawn_msg.h"
#include "spawner_wire.h"
#include "validate.h"

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

/* A request in flight, or written to the queue. */
struct pending {
    uint32_t req;
    uint32_t type;
    union {
        spawner_spawned_fn spawned;
        spawner_claimed_fn claimed;
        spawner_reaped_fn reaped;
    } done;
    void *ud;
    struct pending *next;
};

/* A request the socket did not take yet, in order. */
struct outgoing {
    char *msg;
    size_t len;
    struct outgoing *next;
};

struct spawner {
    int fd;    /* non-blocking */
    pid_t pid; /* the forked spawner */
    uint32_t next_req;
    struct pending *inflight;
    struct outgoing *out_head, *out_tail;
    uv_loop_t *loop; /* NULL until spawner_watch */
    uv_poll_t poll;
    int poll_events;
    bool lost;
    char *buf; /* a request being encoded: a head and SPAWNMSG_MAX */
    void (*on_lost)(void *ud);
    void *lost_ud;
    struct dropped *dropped; /* sandboxes being reaped after their fds were dropped */
};

static void update_poll(spawner *sp);

static struct pending *take_pending(spawner *sp, uint32_t req)
{
    for (struct pending **pp = &sp->inflight; *pp; pp = &(*pp)->next) {
        if ((*pp)->req == req) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Hands a reply to its request's callback (fds: a sandbox's, or none). */
static void deliver(struct pending *p, const struct spw_reply *r, int *fds, int nfds)
{
    switch (p->type) {
    case SPW_SPAWN:
    case SPW_PREBUILD: {
        sandbox_proc proc = {
            .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
        int rc = r->rc;
        if (rc == 0 && nfds != SPW_SANDBOX_FDS)
            rc = -EPROTO;
        if (rc == 0) {
            proc = (sandbox_proc){.pid = r->pid,
                                  .runtime = r->runtime,
                                  .pidfd = fds[0],
                                  .ctl_fd = fds[1],
                                  .out_fd = fds[2],
                                  .err_fd = fds[3],
                                  .status_fd = -1,
                                  .spawner_id = r->id};
        } else {
            close_fds(fds, nfds);
        }
        p->done.spawned(p->ud, rc < 0 ? rc : 0, &proc);
        break;
    }
    case SPW_CLAIM:
        close_fds(fds, nfds);
        p->done.claimed(p->ud, r->rc);
        break;
    default:
        close_fds(fds, nfds);
        p->done.reaped(p->ud, r->rc, r->wstatus, r->oom != 0);
        break;
    }
    free(p);
}

static void drop_queue(spawner *sp)
{
    while (sp->out_head) {
        struct outgoing *o = sp->out_head;
        sp->out_head = o->next;
        free(o->msg);
        free(o);
    }
    sp->out_tail = NULL;
}

/* Every request in flight gets -EPIPE, once; the queue is dropped. */
static void fail_all(spawner *sp)
{
    struct spw_reply r = {.rc = -EPIPE};
    while (sp->inflight) {
        struct pending *p = sp->inflight;
        sp->inflight = p->next;
        deliver(p, &r, NULL, 0);
    }
    drop_queue(sp);
}

static void lose(spawner *sp, const char *why)
{
    if (sp->lost)
        return;
    sp->lost = true;
    dlog_error("spawner: %s: no sandbox can be started or stopped any more", why);
    if (sp->loop && sp->poll_events) {
        uv_poll_stop(&sp->poll);
        sp->poll_events = 0;
    }
    fail_all(sp);
    if (sp->on_lost)
        sp->on_lost(sp->lost_ud);
}

/* A sandbox the daemon could not take (its fds were dropped): killed,
 * then asked after until the spawner says it is gone, so that it forgets
 * it. The spawner reaps with WNOHANG, so each "not yet" waits a little
 * longer before asking again (a sandbox stuck in D state must not keep
 * both processes busy). */
struct dropped {
    spawner *sp;
    int32_t id;
    unsigned delay_ms;
    uv_timer_t timer;
    struct dropped *next;
};

#define DROPPED_FIRST_MS 5
#define DROPPED_MAX_MS   1000

static void free_dropped(uv_handle_t *h)
{
    free(h->data);
}

static void end_dropped(struct dropped *d)
{
    for (struct dropped **pp = &d->sp->dropped; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&d->timer, free_dropped);
}

static void on_dropped_reaped(void *ud, int rc, int wstatus, bool oom);

static void reap_dropped(uv_timer_t *t)
{
    struct dropped *d = t->data;
    sandbox_proc proc = {.spawner_id = d->id};
    if (spawner_reap_async(d->sp, &proc, on_dropped_reaped, d) < 0)
        end_dropped(d); /* the spawner is gone, and its sandboxes with it */
}

static void on_dropped_reaped(void *ud, int rc, int wstatus, bool oom)
{
    (void)wstatus;
    (void)oom;
    struct dropped *d = ud;
    if (rc != 0 || d->sp->lost) {
        end_dropped(d);
        return;
    }
    uv_timer_start(&d->timer, reap_dropped, d->delay_ms, 0); /* killed, not exited yet */
    d->delay_ms = d->delay_ms * 2 > DROPPED_MAX_MS ? DROPPED_MAX_MS : d->delay_ms * 2;
}

static void start_dropped(spawner *sp, int32_t id)
{
    struct dropped *d = sp->loop ? malloc(sizeof *d) : NULL;
    if (!d)
        return; /* killed; the spawner keeps its entry until it stops */
    *d = (struct dropped){.sp = sp, .id = id, .delay_ms = DROPPED_FIRST_MS, .next = sp->dropped};
    sp->dropped = d;
    uv_timer_init(sp->loop, &d->timer);
    d->timer.data = d;
    reap_dropped(&d->timer);
}

/* Out of descriptors, the kernel dropped the fds of a reply: that request
 * fails with -EMFILE (the call gets a 503) and the sandbox made for it is
 * killed and reaped. The spawner is fine; the daemon goes on. */
static int fds_dropped(spawner *sp, const struct spw_reply *r)
{
    struct pending *p = take_pending(sp, r->req);
    if (!p) {
        lose(sp, "an answer to no request");
        return -1;
    }
    bool made = (p->type == SPW_SPAWN || p->type == SPW_PREBUILD) && r->rc == 0;
    struct spw_reply failed = *r;
    if (made)
        failed.rc = -EMFILE;
    dlog_warn("spawner: out of file descriptors: the fds of a reply were dropped%s",
              made ? "; its sandbox is stopped and its call fails" : "");
    deliver(p, &failed, NULL, 0);
    if (made) {
        sandbox_proc proc = {.spawner_id = r->id};
        spawner_kill(sp, &proc);
        start_dropped(sp, r->id);
    }
    return 1;
}

/* Reads one reply. 1: delivered, 0: none waiting, -1: the spawner is lost. */
static int read_reply(spawner *sp)
{
    struct spw_reply r;
    int fds[SPW_SANDBOX_FDS], nfds = 0;
    ssize_t n = spawnmsg_recv(sp->fd, &r, sizeof r, fds, SPW_SANDBOX_FDS, &nfds);
    if (n == -EAGAIN)
        return 0;
    if (n == -EMFILE)
        return fds_dropped(sp, &r);
    if (n != (ssize_t)sizeof r) {
        close_fds(fds, nfds);
        lose(sp, n == 0 ? "it exited" : "it broke the protocol");
        return -1;
    }
    struct pending *p = take_pending(sp, r.req);
    if (!p) {
        close_fds(fds, nfds);
        lose(sp, "an answer to no request");
        return -1;
    }
    deliver(p, &r, fds, nfds);
    return 1;
}

/* Writes queued requests while the socket takes them. -1: lost. */
static int flush_queue(spawner *sp)
{
    while (sp->out_head) {
        struct outgoing *o = sp->out_head;
        int rc = spawnmsg_send(sp->fd, o->msg, o->len, NULL, 0);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0) {
            lose(sp, "its socket failed");
            return -1;
        }
        sp->out_head = o->next;
        if (!sp->out_head)
            sp->out_tail = NULL;
        free(o->msg);
        free(o);
    }
    return 0;
}

static void on_socket(uv_poll_t *h, int status, int events)
{
    spawner *sp = h->data;
    if (status < 0) {
        lose(sp, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && flush_queue(sp) < 0)
        return;
    /* A bounded batch, so that a burst of answers shares the loop. */
    for (int i = 0; i < 64 && (events & (UV_READABLE | UV_DISCONNECT)); i++) {
        int rc = read_reply(sp);
        if (rc < 0)
            return;
        if (rc == 0)
            break;
    }
    update_poll(sp);
}

static void update_poll(spawner *sp)
{
    if (!sp->loop || sp->lost)
        return;
    int want = UV_READABLE | (sp->out_head ? UV_WRITABLE : 0);
    if (want != sp->poll_events) {
        sp->poll_events = want;
        uv_poll_start(&sp->poll, want, on_socket);
    }
}

void spawner_watch(spawner *sp, uv_loop_t *loop, void (*on_lost)(void *ud), void *ud)
{
    sp->loop = loop;
    sp->on_lost = on_lost;
    sp->lost_ud = ud;
    uv_poll_init(loop, &sp->poll, sp->fd);
    sp->poll.data = sp;
    update_poll(sp);
}

bool spawner_is_lost(const spawner *sp)
{
    return sp->lost;
}

static void on_poll_closed(uv_handle_t *h)
{
    (void)h;
}

void spawner_unwatch(spawner *sp)
{
    if (!sp || !sp->loop)
        return;
    uv_close((uv_handle_t *)&sp->poll, on_poll_closed);
    while (sp->dropped) /* their requests were dropped with the rest */
        end_dropped(sp->dropped);
    sp->loop = NULL;
    sp->poll_events = 0;
}

/* Writes a request now, or queues it behind those the socket did not
 * take yet (order matters: a KILL must not pass the SPAWN it names). */
static int post(spawner *sp, const void *msg, size_t len)
{
    if (sp->lost)
        return -EPIPE;
    int rc = sp->out_head ? -EAGAIN : spawnmsg_send(sp->fd, msg, len, NULL, 0);
    if (rc != -EAGAIN)
        return rc;
    struct outgoing *o = malloc(sizeof *o);
    char *copy = malloc(len);
    if (!o || !copy) {
        free(o);
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, msg, len);
    *o = (struct outgoing){.msg = copy, .len = len};
    if (sp->out_tail)
        sp->out_tail->next = o;
    else
        sp->out_head = o;
    sp->out_tail = o;
    update_poll(sp);
    return 0;
}

/* Sends head (+ spec) and, when a reply is due, remembers its callback. */
static int ask(spawner *sp, struct spw_head head, const sandbox_spec *spec, void *done, void *ud)
{
    struct pending *p = calloc(1, sizeof *p);
    char *buf = sp->buf; /* one for the daemon's life: a fresh 192 KiB each time is an mmap */
    if (!p)
        return -ENOMEM;
    head.req = ++sp->next_req ? sp->next_req : ++sp->next_req;
    size_t len = 0;
    int rc = spec ? spawnmsg_encode(spec, 0, buf + sizeof head, &len) : 0;
    if (rc == 0) {
        if (spec) {
            memcpy(buf, &head, sizeof head);
            rc = post(sp, buf, sizeof head + len);
        } else {
            rc = post(sp, &head, sizeof head);
        }
    }
    if (rc < 0) {
        free(p);
        return rc;
    }
    *p = (struct pending){.req = head.req, .type = head.type, .ud = ud, .next = sp->inflight};
    p->done.spawned = (spawner_spawned_fn)done; /* the union's members share a representation */
    sp->inflight = p;
    return 0;
}

int spawner_spawn_async(spawner *sp, const sandbox_spec *spec, spawner_spawned_fn done, void *ud)
{
    struct spw_head head = {.type = spec->prebuilt ? SPW_PREBUILD : SPW_SPAWN};
    return ask(sp, head, spec, (void *)done, ud);
}

int spawner_claim_async(spawner *sp, const sandbox_proc *proc, const sandbox_spec *spec,
                        spawner_claimed_fn done, void *ud)
{
    struct spw_head head = {.type = SPW_CLAIM, .id = proc->spawner_id};
    return ask(sp, head, spec, (void *)done, ud);
}

int spawner_reap_async(spawner *sp, const sandbox_proc *proc, spawner_reaped_fn done, void *ud)
{
    struct spw_head head = {.type = SPW_REAP, .id = proc->spawner_id};
    return ask(sp, head, NULL, (void *)done, ud);
}

void spawner_kill(spawner *sp, const sandbox_proc *proc)
{
    struct spw_head head = {.type = SPW_KILL, .id = proc->spawner_id};
    post(sp, &head, sizeof head);
}

void spawner_release(spawner *sp, sandbox_proc *proc)
{
    (void)sp; /* the spawner forgot the sandbox when it reaped it; only our fds remain */
    int *fds[] = {&proc->pidfd, &proc->ctl_fd, &proc->out_fd, &proc->err_fd, &proc->status_fd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* ---- waiting for an answer (tools and tests) ---- */

struct sync_answer {
    bool done;
    int rc, wstatus;
    bool oom;
    sandbox_proc proc;
};

static void sync_spawned(void *ud, int rc, const sandbox_proc *proc)
{
    struct sync_answer *a = ud;
    a->done = true;
    a->rc = rc;
    a->proc = *proc;
}

static void sync_claimed(void *ud, int rc)
{
    struct sync_answer *a = ud;
    a->done = true;
    a->rc = rc;
}

static void sync_reaped(void *ud, int rc, int wstatus, bool oom)
{
    struct sync_answer *a = ud;
    a->done = true;
    a->rc = rc;
    a->wstatus = wstatus;
    a->oom = oom;
}

/* Reads answers (delivering each) until `a` has its own. */
static int await_answer(spawner *sp, int asked, struct sync_answer *a)
{
    if (asked < 0)
        return asked;
    while (!a->done && !sp->lost) {
        struct pollfd pfd = {.fd = sp->fd, .events = POLLIN | (sp->out_head ? POLLOUT : 0)};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -errno;
        if ((pfd.revents & POLLOUT) && flush_queue(sp) < 0)
            break;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            read_reply(sp);
    }
    return a->done ? a->rc : -EPIPE;
}

int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out)
{
    struct sync_answer a = {0};
    int rc = await_answer(sp, spawner_spawn_async(sp, spec, sync_spawned, &a), &a);
    *out = a.proc;
    if (rc < 0)
        *out = (sandbox_proc){
            .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
    return rc;
}

int spawner_claim(spawner *sp, const sandbox_proc *proc, const sandbox_spec *spec)
{
    struct sync_answer a = {0};
    return await_answer(sp, spawner_claim_async(sp, proc, spec, sync_claimed, &a), &a);
}

int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom)
{
    struct sync_answer a = {0};
    int rc = await_answer(sp, spawner_reap_async(sp, proc, sync_reaped, &a), &a);
    *wstatus = a.wstatus;
    *oom = a.oom;
    return rc;
}

int spawner_socket(const spawner *sp)
{
    return sp->fd;
}

pid_t spawner_pid(const spawner *sp)
{
    return sp->pid;
}

int spawner_start(const spawner_policy *policy, spawner **out)
{
    if (!policy_complete(policy))
        return -EINVAL;
    spawner *sp = calloc(1, sizeof *sp);
    char *buf = malloc(sizeof(struct spw_head) + SPAWNMSG_MAX);
    if (!sp || !buf) {
        free(sp);
        free(buf);
        return -ENOMEM;
    }
    sp->buf = buf;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        int err = errno;
        free(buf);
        free(sp);
        return -err;
    }
    /* Room for many requests in flight before the daemon has to queue. */
    int size = 4 * SPAWNMSG_MAX;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        free(buf);
        free(sp);
        return -err;
    }
    if (pid == 0) {
        close(sv[0]);
        spawner_serve(sv[1], policy);
    }
    close(sv[1]);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    sp->fd = sv[0];
    sp->pid = pid;
    *out = sp;
    return 0;
}

/* At the end: whoever asked is being freed, so nobody is called back. */
static void drop_all(spawner *sp)
{
    while (sp->inflight) {
        struct pending *p = sp->inflight;
        sp->inflight = p->next;
        free(p);
    }
    drop_queue(sp);
}

void spawner_stop(spawner *sp)
{
    if (!sp)
        return;
    drop_all(sp);
    spawner_unwatch(sp);
    close(sp->fd);
    int st;
    while (waitpid(sp->pid, &st, 0) < 0 && errno == EINTR)
        ;
    free(sp->buf);
    free(sp);
}
