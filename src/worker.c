/*
 * worker.c — a runtime process and its four fds: the frame socket (fd 3
 * inside), stdout, stderr, and a pidfd for its exit. Reads frames with a
 * ceiling checked before allocation, writes INVOKE frames without
 * blocking, and feeds output to the log collector.
 *
 * Output is attributed exactly: a runtime flushes stdout/stderr before it
 * writes an answer frame, so a frame that has arrived waits until both
 * pipes are drained (or DRAIN_MAX read) and everything printed during the
 * request lands under its id; the exit waits the same way for the last
 * words. Draining keeps to the log collector's budget of lines per loop
 * turn: when it runs out, the worker stops reading its pipes (the kernel
 * holds the function back), keeps the bytes it could not store yet, and
 * goes on at the next turn.
 *
 * Owns: the process's fds and handles. Must never: decide what a frame
 * means for a request (that is the scheduler's), or block.
 */
#include "worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "spawner.h"

#define READ_CHUNK     (64 * 1024)
#define DRAIN_MAX      (1024 * 1024) /* bound on output drained before a frame */
#define WORKER_HANDLES 5

struct worker_impl {
    worker *w;
    uv_loop_t *loop;
    sandbox_proc proc;
    struct spawner *sp;
    logs *lg;
    bool oom;             /* the reap said the OOM killer struck */
    bool spawning;        /* the spawner has not answered the spawn yet */
    bool kill_on_arrival; /* killed while spawning: stop it as soon as it exists */
    bool reaping;         /* a reap is asked; its answer ends the worker */
    char *special;        /* a claim in flight: the SPECIALIZE frame's meta to send after it */
    size_t special_len;
    worker_events ev;
    log_source src;
    uint32_t max_body;
    uv_poll_t ctl, out, err, pid;
    uv_timer_t abandon; /* the spawner is lost: ends the worker from a fresh stack */
    int handles_open;
    bool out_open, err_open, ctl_open;
    int ctl_events; /* what the ctl poll watches now */
    bool exited;
    bool protocol_error;
    /* output: bytes read but not stored yet (the turn's budget ran out) */
    struct pending_output {
        char *data;
        size_t off, len;
    } pend[2];          /* stdout, stderr */
    bool throttled;     /* waiting for the next turn; pipe polls stopped */
    bool frame_waiting; /* a whole frame waits for the output before it */
    bool exit_waiting;  /* reaped; on_exit waits for the last output */
    int wstatus;        /* the reaped status, while exit_waiting */
    size_t drained;     /* bytes read since a frame or the exit began to wait */
    /* receiving */
    uint8_t hdr[HEARTH_FRAME_HEADER_SIZE];
    size_t hdr_got;
    hearth_frame_header h;
    char *payload;
    size_t payload_got;
    /* sending */
    char *head;
    size_t head_len, head_off;
    const char *body;
    size_t body_len, body_off;
};

static void on_ctl(uv_poll_t *p, int status, int events);
static void on_output(uv_poll_t *p, int status, int events);
static void update_ctl_events(struct worker_impl *im);

/* --- teardown --- */

static void free_worker(struct worker_impl *im)
{
    spawner_release(im->sp, &im->proc);
    logs_source_release(&im->src);
    free(im->pend[0].data);
    free(im->pend[1].data);
    free(im->payload);
    free(im->head);
    free(im->special);
    free(im->w);
    free(im);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct worker_impl *im = h->data;
    if (--im->handles_open > 0)
        return;
    free_worker(im);
}

static void close_handles(struct worker_impl *im)
{
    uv_close((uv_handle_t *)&im->ctl, on_handle_closed);
    uv_close((uv_handle_t *)&im->out, on_handle_closed);
    uv_close((uv_handle_t *)&im->err, on_handle_closed);
    uv_close((uv_handle_t *)&im->pid, on_handle_closed);
    uv_close((uv_handle_t *)&im->abandon, on_handle_closed);
}

/* Forgets the frame being sent. The body is borrowed from a request that
 * may be answered and freed as soon as this worker is given up on, so no
 * byte of it may be written after that. */
static void drop_pending_send(struct worker_impl *im)
{
    im->head_len = im->head_off = 0;
    im->body = NULL;
    im->body_len = im->body_off = 0;
}

static void on_abandon(uv_timer_t *t);

static void stop_process(struct worker_impl *im)
{
    drop_pending_send(im);
    if (im->spawning)
        im->kill_on_arrival = true;
    else if (!spawner_is_lost(im->sp))
        spawner_kill(im->sp, &im->proc);
    else if (!im->exited && !im->reaping)
        /* Nobody can kill or reap it now (it is not ours to signal): end
         * the worker as if reaped, on the next loop turn, since our caller
         * may still be walking the list this worker is on. */
        uv_timer_start(&im->abandon, on_abandon, 0, 0);
}

static void kill_for_protocol(struct worker_impl *im, const char *why)
{
    dlog_warn("worker %d of %s: %s; killing it", (int)im->proc.pid, im->src.function, why);
    im->protocol_error = true;
    stop_process(im);
}

/* --- output --- */

static void step(struct worker_impl *im);

static void on_turn(log_source *src)
{
    struct worker_impl *im =
        (struct worker_impl *)((char *)src - offsetof(struct worker_impl, src));
    im->throttled = false;
    step(im);
}

/* Out of lines for this turn: stop reading the pipes until the next. */
static void throttle(struct worker_impl *im)
{
    if (im->throttled || !logs_source_wait_turn(&im->src, on_turn))
        return; /* waiting already, or shutting down: no budget to wait for */
    im->throttled = true;
    uv_poll_stop(&im->out);
    uv_poll_stop(&im->err);
}

static void resume_polls(struct worker_impl *im)
{
    if (im->out_open && !uv_is_active((uv_handle_t *)&im->out))
        uv_poll_start(&im->out, UV_READABLE, on_output);
    if (im->err_open && !uv_is_active((uv_handle_t *)&im->err))
        uv_poll_start(&im->err, UV_READABLE, on_output);
}

/* Stores what the allowance lets through of the bytes `p` keeps. Returns
 * true when none is left (and frees them). */
static bool feed_pending(struct worker_impl *im, int stream, struct pending_output *p,
                         unsigned *allow)
{
    p->off += logs_source_feed(&im->src, stream, p->data + p->off, p->len - p->off, allow);
    if (p->off < p->len)
        return false;
    free(p->data);
    p->data = NULL;
    return true;
}

/* Stores what the allowance lets through of `len` fresh bytes and keeps a
 * copy of the rest in `p`, which holds nothing yet. Returns false when some
 * is left. */
static bool feed_or_keep(struct worker_impl *im, int stream, struct pending_output *p,
                         const char *data, size_t len, unsigned *allow)
{
    size_t used = logs_source_feed(&im->src, stream, data, len, allow);
    if (used == len)
        return true;
    char *copy = malloc(len - used);
    if (!copy)
        return true; /* out of memory: those bytes are lost, not the loop */
    memcpy(copy, data + used, len - used);
    *p = (struct pending_output){.data = copy, .off = 0, .len = len - used};
    return false;
}

/* Stores `stream`'s pending bytes, then reads and stores more, while the
 * allowance lasts and at most READ_CHUNK new bytes. Returns true when the
 * stream has nothing left to give now (empty pipe or closed). The pending
 * bytes are at most one chunk: the pipe keeps the rest. */
static bool pump_stream(struct worker_impl *im, int stream, unsigned *allow)
{
    struct pending_output *p = &im->pend[stream == LOG_STDERR];
    if (p->data && !feed_pending(im, stream, p, allow))
        return false;
    int fd = stream == LOG_STDOUT ? im->proc.out_fd : im->proc.err_fd;
    bool *open = stream == LOG_STDOUT ? &im->out_open : &im->err_open;
    char chunk[READ_CHUNK];
    size_t got = 0;
    /* Out of allowance, one read still tells an empty pipe from a full one
     * (what it brings is kept): a worker with nothing to say never waits a
     * turn to hand over its answer. */
    while (*open && got < READ_CHUNK && (*allow || !got)) {
        ssize_t n = read(fd, chunk, sizeof chunk - got);
        if (n > 0) {
            got += (size_t)n;
            im->drained += (size_t)n;
            if (!feed_or_keep(im, stream, p, chunk, (size_t)n, allow))
                return false;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        *open = false;
        uv_poll_stop(stream == LOG_STDOUT ? &im->out : &im->err);
    }
    return !*open;
}

/* Moves output along within this wake-up's allowance. Returns true when
 * both pipes are drained for now; otherwise the worker waits a turn. */
static bool pump_output(struct worker_impl *im)
{
    unsigned allow = logs_allowance(im->src.lg);
    bool out_done = pump_stream(im, LOG_STDOUT, &allow);
    bool err_done = pump_stream(im, LOG_STDERR, &allow);
    if (out_done && err_done)
        return true;
    throttle(im);
    return false;
}

static void on_output(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    step(p->data);
}

/* --- receiving frames --- */

/* The frame read last, now that the output before it is stored. */
static void deliver_frame(struct worker_impl *im)
{
    im->frame_waiting = false;
    json_error_t jerr;
    json_t *meta = im->h.meta_len ? json_loadb(im->payload, im->h.meta_len, JSON_ALLOW_NUL, &jerr)
                                  : json_object();
    if (!json_is_object(meta)) {
        json_decref(meta);
        free(im->payload);
        im->payload = NULL;
        im->hdr_got = im->payload_got = 0;
        kill_for_protocol(im, "frame metadata is not a JSON object");
        return;
    }
    /* Hand over the body alone: move it to the front of the payload. */
    char *body = im->payload;
    size_t len = im->h.body_len;
    memmove(body, body + im->h.meta_len, len);
    body[len] = '\0';
    im->payload = NULL;
    im->hdr_got = im->payload_got = 0;

    logs_source_flush(&im->src);
    logs_source_set_request(&im->src, "");
    im->ev.on_frame(im->w, im->h.type, meta, body, len);
    json_decref(meta);
}

static void finish_exit(struct worker_impl *im)
{
    im->exit_waiting = false;
    logs_source_cancel_turn(&im->src);
    im->throttled = false;
    logs_source_flush(&im->src);
    im->ev.on_exit(im->w, im->wstatus, im->protocol_error);
    close_handles(im);
}

/* Reads output, then hands over what waited for it: a frame once its
 * output is stored (or DRAIN_MAX read), the exit once the pipes are empty
 * (or DRAIN_MAX read: what is left is lost with the worker). */
static void step(struct worker_impl *im)
{
    if (im->throttled)
        return; /* the next turn calls again */
    bool drained = pump_output(im);
    bool enough = drained || im->drained >= DRAIN_MAX;
    if (im->frame_waiting && enough) {
        deliver_frame(im);
        if (!im->exit_waiting)
            update_ctl_events(im); /* read the next frame */
    }
    if (im->exit_waiting && !im->frame_waiting && enough) {
        finish_exit(im);
        return;
    }
    if (!im->throttled)
        resume_polls(im);
}

/* A whole frame is in: it waits for the output written before it. */
static void frame_complete(struct worker_impl *im)
{
    if (im->head_off < im->head_len || im->body_off < im->body_len) {
        kill_for_protocol(im, "answered before reading the whole request");
        return;
    }
    im->frame_waiting = true;
    im->drained = 0;
    step(im);
    if (im->frame_waiting)
        update_ctl_events(im); /* no next frame until this one is delivered */
}

/* Reads until EAGAIN, delivering each complete frame. Returns -1 when the
 * worker must be dropped. */
static int receive(struct worker_impl *im)
{
    for (;;) {
        if (im->hdr_got < HEARTH_FRAME_HEADER_SIZE) {
            ssize_t n = read(im->proc.ctl_fd, im->hdr + im->hdr_got,
                             HEARTH_FRAME_HEADER_SIZE - im->hdr_got);
            if (n <= 0)
                return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
            im->hdr_got += (size_t)n;
            if (im->hdr_got < HEARTH_FRAME_HEADER_SIZE)
                continue;
            if (hearth_frame_decode(im->hdr, HEARTH_FRAME_MAX_META, im->max_body, &im->h)) {
                kill_for_protocol(im, "bad frame header or frame over the size limit");
                return -1;
            }
            im->payload = malloc((size_t)im->h.meta_len + im->h.body_len + 1);
            if (!im->payload) {
                kill_for_protocol(im, "out of memory for a frame");
                return -1;
            }
            im->payload_got = 0;
        }
        size_t want = (size_t)im->h.meta_len + im->h.body_len;
        if (im->payload_got < want) {
            ssize_t n =
                read(im->proc.ctl_fd, im->payload + im->payload_got, want - im->payload_got);
            if (n <= 0)
                return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
            im->payload_got += (size_t)n;
            if (im->payload_got < want)
                continue;
        }
        frame_complete(im);
        /* One answer per request: return without the read that would only
         * say EAGAIN. Level-triggered polling brings us back for more. */
        return im->protocol_error || im->exited || !im->ctl_open ? -1 : 0;
    }
}

/* --- sending frames --- */

static void update_ctl_events(struct worker_impl *im)
{
    if (!im->ctl_open)
        return;
    bool sending = im->head_off < im->head_len || im->body_off < im->body_len;
    int events = (im->frame_waiting ? 0 : UV_READABLE) | (sending ? UV_WRITABLE : 0);
    /* uv_poll_start re-registers the fd with epoll: only when it changes. */
    if (events != im->ctl_events) {
        im->ctl_events = events;
        if (events)
            uv_poll_start(&im->ctl, events, on_ctl);
        else
            uv_poll_stop(&im->ctl);
    }
}

/* Writes what the socket takes now. Returns 0, or -1 when the peer is gone. */
static int send_pending(struct worker_impl *im)
{
    while (im->head_off < im->head_len || im->body_off < im->body_len) {
        struct iovec iov[2];
        int n = 0;
        if (im->head_off < im->head_len)
            iov[n++] = (struct iovec){im->head + im->head_off, im->head_len - im->head_off};
        if (im->body_off < im->body_len)
            iov[n++] = (struct iovec){(char *)im->body + im->body_off, im->body_len - im->body_off};
        ssize_t w = writev(im->proc.ctl_fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        size_t left = (size_t)w, h = im->head_len - im->head_off;
        size_t from_head = left < h ? left : h;
        im->head_off += from_head;
        im->body_off += left - from_head;
    }
    return 0;
}

static void on_ctl(uv_poll_t *p, int status, int events)
{
    struct worker_impl *im = p->data;
    int rc = 0;
    if (status < 0)
        rc = -1;
    if (rc == 0 && (events & UV_WRITABLE))
        rc = send_pending(im);
    if (rc == 0 && (events & (UV_READABLE | UV_DISCONNECT)))
        rc = receive(im);
    if (rc < 0) {
        /* The runtime closed its end (it is exiting, or broke the protocol,
         * and kill_for_protocol already struck). No kill here: the sandbox's
         * init must live to report how the runtime ended. A runtime that
         * closes fd 3 and lingers is stopped by its call's deadline, or by
         * the failed send of the next call. */
        if (im->ctl_open) {
            im->ctl_open = false;
            uv_poll_stop(&im->ctl);
        }
        /* A pre-built runtime that is gone leaves its init waiting for a
         * claim that will never come: end the sandbox. */
        if (im->w->prebuilt)
            stop_process(im);
        return;
    }
    update_ctl_events(im);
}

/* Writes one frame (what the socket takes now; the rest when writable). */
static int send_frame(struct worker_impl *im, uint8_t type, const char *meta, size_t meta_len,
                      const void *body, size_t body_len)
{
    if (!im->ctl_open || im->exited)
        return -EPIPE;
    char *head = malloc(HEARTH_FRAME_HEADER_SIZE + meta_len);
    if (!head)
        return -ENOMEM;
    hearth_frame_header h = {
        .type = type, .meta_len = (uint32_t)meta_len, .body_len = (uint32_t)body_len};
    hearth_frame_encode(&h, (uint8_t *)head);
    memcpy(head + HEARTH_FRAME_HEADER_SIZE, meta, meta_len);
    free(im->head);
    im->head = head;
    im->head_len = HEARTH_FRAME_HEADER_SIZE + meta_len;
    im->head_off = 0;
    im->body = body;
    im->body_len = body_len;
    im->body_off = 0;
    if (send_pending(im) < 0)
        return -EPIPE;
    update_ctl_events(im);
    return 0;
}

int worker_invoke(worker *w, const char *request_id, const char *meta, size_t meta_len,
                  const void *body, size_t body_len)
{
    logs_source_set_request(&w->impl->src, request_id);
    return send_frame(w->impl, HEARTH_FRAME_INVOKE, meta, meta_len, body, body_len);
}

/* --- exit --- */

static void on_pidfd(uv_poll_t *p, int status, int events);

/* The spawner's answer to the reap asked when the pidfd said "exited". */
static void on_reaped(void *ud, int rc, int wstatus, bool oom)
{
    struct worker_impl *im = ud;
    im->reaping = false;
    if (rc == 0) {
        uv_poll_start(&im->pid, UV_READABLE, on_pidfd); /* not yet: ask again */
        return;
    }
    im->oom = rc == 1 && oom;
    if (rc < 0) {
        dlog_error("worker %d of %s: cannot reap: %s", (int)im->proc.pid, im->src.function,
                   strerror(-rc));
        wstatus = W_EXITCODE(0, SIGKILL);
    }
    im->exited = true;
    /* Take down anything it left in its process group, then collect its
     * last words: they belong to the request it was serving. */
    stop_process(im);
    im->wstatus = wstatus;
    im->exit_waiting = true;
    im->drained = 0;
    step(im);
}

static void on_abandon(uv_timer_t *t)
{
    struct worker_impl *im = t->data;
    if (im->exited || im->reaping)
        return;
    uv_poll_stop(&im->pid);
    on_reaped(im, -EPIPE, 0, false);
}

static void on_pidfd(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    struct worker_impl *im = p->data;
    uv_poll_stop(&im->pid); /* one reap at a time */
    if (im->reaping)
        return;
    int rc = spawner_reap_async(im->sp, &im->proc, on_reaped, im);
    if (rc < 0)
        on_reaped(im, rc, 0, false);
    else
        im->reaping = true;
}

/* --- creation --- */

/* The sandbox exists: watch its fds. */
static void start_handles(struct worker_impl *im)
{
    uv_poll_init(im->loop, &im->ctl, im->proc.ctl_fd);
    uv_poll_init(im->loop, &im->out, im->proc.out_fd);
    uv_poll_init(im->loop, &im->err, im->proc.err_fd);
    uv_poll_init(im->loop, &im->pid, im->proc.pidfd);
    uv_timer_init(im->loop, &im->abandon);
    im->ctl.data = im->out.data = im->err.data = im->pid.data = im->abandon.data = im;
    im->handles_open = WORKER_HANDLES;
    im->ctl_events = UV_READABLE;
    uv_poll_start(&im->ctl, UV_READABLE, on_ctl);
    uv_poll_start(&im->out, UV_READABLE, on_output);
    uv_poll_start(&im->err, UV_READABLE, on_output);
    uv_poll_start(&im->pid, UV_READABLE, on_pidfd);
}

/* The spawner's answer to the spawn. A worker that never started ends
 * through on_exit all the same, with spawn_error saying why. */
static void on_spawned(void *ud, int rc, const sandbox_proc *proc)
{
    struct worker_impl *im = ud;
    im->spawning = false;
    if (rc < 0) {
        im->w->spawn_error = rc;
        im->ev.on_exit(im->w, W_EXITCODE(127, 0), false);
        free_worker(im);
        return;
    }
    im->proc = *proc;
    start_handles(im);
    if (im->kill_on_arrival)
        stop_process(im);
    else if (im->ev.on_started)
        im->ev.on_started(im->w);
}

int worker_spawn(uv_loop_t *loop, struct spawner *sp, logs *lg, const sandbox_spec *spec,
                 const char *function, int64_t version, uint32_t max_body, const worker_events *ev,
                 worker **out)
{
    worker *w = calloc(1, sizeof *w);
    struct worker_impl *im = calloc(1, sizeof *im);
    if (!w || !im) {
        free(w);
        free(im);
        return -ENOMEM;
    }
    im->proc = (sandbox_proc){
        .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
    int rc = spawner_spawn_async(sp, spec, on_spawned, im);
    if (rc < 0) {
        free(w);
        free(im);
        return rc;
    }
    w->impl = im;
    w->state = WORKER_STARTING;
    w->version = version;
    w->prebuilt = spec->prebuilt;
    im->w = w;
    im->sp = sp;
    im->lg = lg;
    im->loop = loop;
    im->ev = *ev;
    im->max_body = max_body;
    im->spawning = true;
    im->out_open = im->err_open = im->ctl_open = true;
    logs_source_init(&im->src, lg, function, version);
    *out = w;
    return 0;
}

/* The frame that gives a pre-built runtime its function: its environment. */
static char *specialize_meta(const sandbox_spec *spec, size_t *len)
{
    json_t *env = json_array();
    for (size_t i = 0; spec->envp[i]; i++)
        json_array_append_new(env, json_string(spec->envp[i]));
    json_t *meta = json_pack("{s:o}", "env", env);
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    *len = text ? strlen(text) : 0;
    return text;
}

static void on_claimed(void *ud, int rc)
{
    struct worker_impl *im = ud;
    char *meta = im->special;
    im->special = NULL;
    if (rc == 0)
        rc = send_frame(im, HEARTH_FRAME_SPECIALIZE, meta, im->special_len, NULL, 0);
    free(meta);
    if (rc < 0) {
        dlog_warn("pre-built worker %d for %s: the claim failed (%s)", (int)im->proc.pid,
                  im->src.function, strerror(-rc));
        im->w->spawn_error = rc; /* its exit then fails the start with this cause */
        stop_process(im);
    }
}

int worker_specialize(worker *w, const sandbox_spec *spec, const char *function, int64_t version,
                      const worker_events *ev)
{
    struct worker_impl *im = w->impl;
    if (!w->prebuilt || im->spawning || im->exited || !im->ctl_open)
        return -EINVAL;
    im->special = specialize_meta(spec, &im->special_len);
    if (!im->special)
        return -ENOMEM;
    int rc = spawner_claim_async(im->sp, &im->proc, spec, on_claimed, im);
    if (rc < 0) {
        free(im->special);
        im->special = NULL;
        return rc;
    }
    w->prebuilt = false;
    w->version = version;
    im->ev = *ev;
    logs_source_release(&im->src);
    logs_source_init(&im->src, im->lg, function, version);
    return 0;
}

void worker_mute_logs(worker *w)
{
    logs_source_mute(&w->impl->src);
}

void worker_kill(worker *w)
{
    stop_process(w->impl);
}

pid_t worker_pid(const worker *w)
{
    return w->impl->proc.pid;
}

pid_t worker_runtime_pid(const worker *w)
{
    return w->impl->proc.runtime;
}

bool worker_oom_killed(const worker *w)
{
    return w->impl->oom;
}
