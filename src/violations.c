/*
 * violations.c — naming the call behind a seccomp kill.
 *
 * The kernel writes an audit record ("type=1326 ... uid=U ... syscall=N")
 * for every seccomp kill, asynchronously and rate-limited. A report waits
 * for its record a few times 100 ms, then writes one line to the
 * function's log, with the call's name when the record came. Records are
 * kept in a small ring and claimed oldest first per uid, so that a uid
 * handed to the next worker cannot make one report take another's record.
 *
 * Owns: the /dev/kmsg fd, the ring, pending reports. Must never: block, or
 * trust a record of another architecture to name an x86_64 call.
 */
#include "violations.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "registry.h"
#include "reqid.h"
#include "sandbox_seccomp.h"

#define KILLS_KEPT    32
#define NOTE_DELAY_MS 100
#define NOTE_TRIES    5

struct kill_record {
    uid_t uid;
    int nr; /* -1: another architecture */
    bool claimed;
};

struct violations {
    uv_loop_t *loop;
    logs *lg;
    int kmsg_fd;
    struct kill_record kills[KILLS_KEPT];
    unsigned nkills;
};

typedef struct report {
    uv_timer_t timer;
    violations *v;
    char function[FN_NAME_MAX + 1];
    int64_t version;
    char request_id[REQID_LEN + 1];
    uid_t uid;
    bool has_uid;
    int tries;
} report;

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
    return v;
}

void violations_close(violations *v)
{
    if (!v)
        return;
    if (v->kmsg_fd >= 0)
        close(v->kmsg_fd);
    free(v);
}

static void remember_kill(uid_t uid, int nr, void *ud)
{
    violations *v = ud;
    struct kill_record *k = &v->kills[v->nkills++ % KILLS_KEPT];
    *k = (struct kill_record){.uid = uid, .nr = nr};
}

/* Claims the oldest unclaimed record of `uid`: true and *nr when found. */
static bool claim_kill(violations *v, uid_t uid, int *nr)
{
    unsigned first = v->nkills > KILLS_KEPT ? v->nkills - KILLS_KEPT : 0;
    for (unsigned i = first; i < v->nkills; i++) {
        struct kill_record *k = &v->kills[i % KILLS_KEPT];
        if (!k->claimed && k->uid == uid) {
            k->claimed = true;
            *nr = k->nr;
            return true;
        }
    }
    return false;
}

static void free_report(uv_handle_t *h)
{
    free(h->data);
}

static void write_report(uv_timer_t *t)
{
    report *r = t->data;
    violations *v = r->v;
    sandbox_seccomp_audit_read(v->kmsg_fd, remember_kill, v);
    int nr = -1;
    bool found = r->has_uid && claim_kill(v, r->uid, &nr);
    if (!found && r->has_uid && v->kmsg_fd >= 0 && ++r->tries < NOTE_TRIES) {
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
                       bool has_uid, uid_t uid)
{
    report *r = v ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return;
    r->v = v;
    snprintf(r->function, sizeof r->function, "%s", function);
    r->version = version;
    snprintf(r->request_id, sizeof r->request_id, "%s", request_id);
    r->has_uid = has_uid;
    r->uid = uid;
    uv_timer_init(v->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, write_report, NOTE_DELAY_MS, 0);
}
