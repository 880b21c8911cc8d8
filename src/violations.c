/*
 * violations.c — naming the call behind a seccomp kill.
 *
 * The kernel writes an audit record ("type=1326 ... uid=U ... pid=P ...
 * syscall=N") for every seccomp kill, asynchronously and rate-limited. The
 * records are read from /dev/kmsg as they come, each stamped with the loop
 * time it was read, into a small ring. A report waits for its record a few
 * times 100 ms, then writes one line to the function's log, with the
 * call's name when the record came.
 *
 * A record names a report's call only if it is of the worker's uid, of
 * the worker's runtime (P is the host pid its sandbox init reported) and
 * was read since the worker started. uids are handed out again, lowest
 * first, and a function can leave records nobody claims (a child process
 * killed while its runtime lives on): matching the uid alone would let
 * one function choose the name in the next holder's note. Records of the
 * uid read before the worker started are an earlier holder's and are
 * dropped. Limits: a runtime pid recycled to the same uid within the
 * ring's life is told apart only by the time; a runtime killed by another
 * thread's call names that call (same process, same pid).
 *
 * Owns: the /dev/kmsg fd and its poll handle, the ring, pending reports.
 * Must never: block, name a call from a record of another process, or
 * trust a record of another architecture to name an x86_64 call.
 */
#include "violations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlog.h"
#include "registry.h"
#include "reqid.h"
#include "sandbox_seccomp.h"

#define KILLS_KEPT    32
#define NOTE_DELAY_MS 100
#define NOTE_TRIES    5

struct kill_record {
    uid_t uid;
    pid_t pid; /* host pid of the killed process */
    int nr;    /* -1: another architecture */
    uint64_t seen_ms;
    bool claimed; /* or dropped */
};

struct violations {
    uv_loop_t *loop;
    logs *lg;
    int kmsg_fd;
    uv_poll_t poll;
    bool polling;
    struct kill_record kills[KILLS_KEPT];
    unsigned nkills;
    struct report *reports; /* pending, newest first */
};

typedef struct report {
    uv_timer_t timer;
    violations *v;
    struct report *next;
    bool forgotten; /* its function was deleted: no line is written */
    char function[FN_NAME_MAX + 1];
    int64_t version;
    char request_id[REQID_LEN + 1];
    violations_worker who;
    int tries;
} report;

static void remember_kill(uid_t uid, pid_t pid, int nr, void *ud)
{
    violations *v = ud;
    violations_seen(v, uid, pid, nr, v->loop ? uv_now(v->loop) : 0);
}

/* Reads every record logged since the last read. */
static void read_kills(violations *v)
{
    sandbox_seccomp_audit_read(v->kmsg_fd, remember_kill, v);
}

static void on_kmsg(uv_poll_t *h, int status, int events)
{
    (void)events;
    violations *v = h->data;
    if (status < 0) {
        dlog_warn("stopped reading the kernel log for seccomp kills: %s", uv_strerror(status));
        violations_stop(v);
        return;
    }
    read_kills(v);
}

/* Watches the fd so that each record is stamped near the time it was
 * logged, not when the next report happens to look. */
static int watch_kmsg(violations *v)
{
    if (uv_poll_init(v->loop, &v->poll, v->kmsg_fd) < 0)
        return -1;
    v->poll.data = v;
    v->polling = true;
    if (uv_poll_start(&v->poll, UV_READABLE, on_kmsg) < 0) {
        violations_stop(v);
        return -1;
    }
    return 0;
}

violations *violations_open(uv_loop_t *loop, logs *lg, int kmsg_fd)
{
    violations *v = calloc(1, sizeof *v);
    if (!v) {
        if (kmsg_fd >= 0)
            close(kmsg_fd);
        return NULL;
    }
    v->loop = loop;
    v->lg = lg;
    v->kmsg_fd = kmsg_fd;
    if (kmsg_fd >= 0 && watch_kmsg(v) < 0)
        dlog_warn("cannot watch /dev/kmsg: seccomp kill records are read only when a report looks");
    return v;
}

void violations_stop(violations *v)
{
    if (v && v->polling) {
        uv_close((uv_handle_t *)&v->poll, NULL);
        v->polling = false;
    }
}

void violations_close(violations *v)
{
    if (!v)
        return;
    if (v->kmsg_fd >= 0)
        close(v->kmsg_fd);
    free(v);
}

void violations_seen(violations *v, uid_t uid, pid_t pid, int nr, uint64_t seen_ms)
{
    struct kill_record *k = &v->kills[v->nkills++ % KILLS_KEPT];
    *k = (struct kill_record){.uid = uid, .pid = pid, .nr = nr, .seen_ms = seen_ms};
}

bool violations_claim(violations *v, const violations_worker *w, int *nr)
{
    if (!w->has_uid)
        return false;
    unsigned first = v->nkills > KILLS_KEPT ? v->nkills - KILLS_KEPT : 0;
    for (unsigned i = first; i < v->nkills; i++) {
        struct kill_record *k = &v->kills[i % KILLS_KEPT];
        if (k->claimed || k->uid != w->uid)
            continue;
        if (k->seen_ms < w->since_ms) {
            k->claimed = true; /* an earlier holder's: never anyone's now */
            continue;
        }
        if (w->pid > 0 && k->pid == w->pid) {
            k->claimed = true;
            *nr = k->nr;
            return true;
        }
    }
    return false;
}

static void free_report(uv_handle_t *h)
{
    report *r = h->data;
    for (report **pp = &r->v->reports; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    free(r);
}

static void write_report(uv_timer_t *t)
{
    report *r = t->data;
    violations *v = r->v;
    read_kills(v);
    int nr = -1;
    bool found = violations_claim(v, &r->who, &nr);
    bool may_come = r->who.has_uid && r->who.pid > 0 && v->kmsg_fd >= 0;
    if (r->forgotten) {
        uv_close((uv_handle_t *)t, free_report);
        return;
    }
    if (!found && may_come && ++r->tries < NOTE_TRIES) {
        uv_timer_start(t, write_report, NOTE_DELAY_MS, 0);
        return;
    }
    char name[48] = "a forbidden system call";
    if (nr >= 0)
        sandbox_seccomp_syscall_name(nr, name, sizeof name);
    logs_note(v->lg, r->function, r->version, r->request_id,
              "hearth: sandbox violation: the worker called %s and was killed (see "
              "docs/security.md)",
              name);
    uv_close((uv_handle_t *)t, free_report);
}

void violations_report(violations *v, const char *function, int64_t version, const char *request_id,
                       const violations_worker *w)
{
    report *r = v ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return;
    r->v = v;
    snprintf(r->function, sizeof r->function, "%s", function);
    r->version = version;
    snprintf(r->request_id, sizeof r->request_id, "%s", request_id);
    r->who = *w;
    r->next = v->reports;
    v->reports = r;
    uv_timer_init(v->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, write_report, NOTE_DELAY_MS, 0);
}

void violations_forget(violations *v, const char *function)
{
    for (report *r = v ? v->reports : NULL; r; r = r->next)
        if (strcmp(r->function, function) == 0)
            r->forgotten = true;
}
