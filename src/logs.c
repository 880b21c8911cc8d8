/*
 * logs.c — the log collector and its followers.
 *
 * Bytes from a worker's stdout/stderr are cut into lines (at most
 * LOGS_MAX_LINE; longer ones are split), stamped with the time, stream,
 * version and the request in flight, appended to the logstore and copied
 * to every follower of that function. A follower is read by a sink
 * (logs_sink; api.c makes it a chunked HTTP response, so nothing here
 * knows HTTP); each has a bounded backlog, and lines that do not fit are
 * counted and reported instead of growing memory (a slow reader must not
 * make a flooding function cost the daemon memory).
 *
 * Storing a line costs about a microsecond, so a function printing short
 * lines could make one loop turn store tens of thousands of them. Each
 * turn has a budget of LOGS_TURN_LINES, and a source takes at most
 * LOGS_SLICE_LINES at a time; a source that runs out waits for the next
 * turn (the worker stops reading its pipes meanwhile, so the kernel pipe
 * holds the flooder back) and the sources that waited go first then,
 * oldest first. A flooding function slows itself, not the loop.
 *
 * Owns: partial lines, followers, the turn's budget and the sources
 * waiting for the next. Must never: block on a follower or on a worker.
 */
#include "logs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "timefmt.h"

#define FOLLOWER_BACKLOG (4 * 1024 * 1024)

typedef struct logs_follower follower;
struct logs_follower {
    logs *lg;
    logs_sink sink;
    char function[FN_NAME_MAX + 1];
    char request_id[REQID_LEN + 1]; /* "" = every request */
    enum logs_format format;
    buf backlog;
    size_t dropped;
    bool ended;
    follower *next;
};

#define LOGS_DROP_NOTE_MS 10000

struct logs {
    logstore *store;
    follower *followers;
    uv_idle_t turn;  /* active while sources wait: the loop must not sleep */
    unsigned budget; /* lines left in this turn */
    log_source *waiting_head, *waiting_tail;
    bool stopped; /* shutting down: the handle closes once nobody waits */
    bool closing; /* it is closing: no more turns */
    /* Lines the store refused (a full disk): counted, and noted in the
     * daemon's log at most every LOGS_DROP_NOTE_MS, not once per line. */
    uint64_t dropped, dropped_noted;
    uint64_t drop_noted_at; /* loop time of the last note */
};

/* A new turn: a fresh budget, and the sources that waited for it, oldest
 * first. Those the budget does not reach keep their place at the head, so
 * every source gets its turn; those that run out again queue behind. */
static void on_turn(uv_idle_t *h)
{
    logs *lg = h->data;
    lg->budget = LOGS_TURN_LINES;
    log_source *src = lg->waiting_head, *kept_tail = NULL;
    lg->waiting_head = lg->waiting_tail = NULL;
    while (src && lg->budget) {
        log_source *next = src->turn_next;
        src->turn_next = NULL;
        src->turn_waiting = false;
        src->on_turn(src);
        src = next;
    }
    for (log_source *s = src; s; s = s->turn_next)
        kept_tail = s;
    if (src) {
        kept_tail->turn_next = lg->waiting_head;
        lg->waiting_head = src;
        if (!lg->waiting_tail)
            lg->waiting_tail = kept_tail;
    }
    if (!lg->waiting_head)
        uv_idle_stop(&lg->turn);
    if (!lg->waiting_head && lg->stopped && !lg->closing) {
        lg->closing = true;
        uv_close((uv_handle_t *)&lg->turn, NULL);
    }
}

int logs_open(uv_loop_t *loop, logstore *store, logs **out)
{
    logs *lg = calloc(1, sizeof *lg);
    if (!lg)
        return -ENOMEM;
    lg->store = store;
    lg->budget = LOGS_TURN_LINES;
    uv_idle_init(loop, &lg->turn);
    lg->turn.data = lg;
    *out = lg;
    return 0;
}

void logs_stop(logs *lg)
{
    if (!lg)
        return;
    lg->stopped = true;
    if (!lg->waiting_head) {
        lg->closing = true;
        uv_close((uv_handle_t *)&lg->turn, NULL);
    } /* else on_turn closes it once the last waiting source went on */
}

unsigned logs_allowance(const logs *lg)
{
    if (lg->closing)
        return UINT_MAX; /* no turn will come: a worker's last words go as they are */
    return lg->budget < LOGS_SLICE_LINES ? lg->budget : LOGS_SLICE_LINES;
}

bool logs_source_wait_turn(log_source *src, void (*on_turn_cb)(log_source *src))
{
    logs *lg = src->lg;
    if (src->turn_waiting)
        return true;
    if (lg->closing)
        return false;
    src->on_turn = on_turn_cb;
    src->turn_waiting = true;
    src->turn_next = NULL;
    if (lg->waiting_tail)
        lg->waiting_tail->turn_next = src;
    else
        lg->waiting_head = src;
    lg->waiting_tail = src;
    uv_idle_start(&lg->turn, on_turn);
    return true;
}

void logs_source_cancel_turn(log_source *src)
{
    logs *lg = src->lg;
    if (!src->turn_waiting)
        return;
    log_source *prev = NULL;
    for (log_source *s = lg->waiting_head; s; prev = s, s = s->turn_next) {
        if (s != src)
            continue;
        if (prev)
            prev->turn_next = s->turn_next;
        else
            lg->waiting_head = s->turn_next;
        if (lg->waiting_tail == s)
            lg->waiting_tail = prev;
        break;
    }
    src->turn_waiting = false;
    src->turn_next = NULL;
}

void logs_close(logs *lg)
{
    if (!lg)
        return;
    /* Followers still here belong to sinks already gone without saying
     * so (connections torn down at shutdown); their memory is ours. */
    while (lg->followers) {
        follower *f = lg->followers;
        lg->followers = f->next;
        buf_release(&f->backlog);
        free(f);
    }
    free(lg);
}

int logs_format(const log_record *rec, enum logs_format format, buf *out)
{
    if (format == LOGS_NDJSON) {
        size_t len;
        char *line = logstore_format_ndjson(rec, &len);
        if (!line)
            return -ENOMEM;
        int rc = buf_append(out, line, len);
        free(line);
        return rc;
    }
    char line[LOGS_MAX_LINE + 256];
    size_t len = logstore_format_text(rec, line, sizeof line);
    return buf_append(out, line, len);
}

/* --- fan-out --- */

static bool follower_wants(const follower *f, const char *function, const log_record *rec)
{
    return !f->ended && strcmp(f->function, function) == 0 &&
           (!f->request_id[0] || strcmp(f->request_id, rec->request_id) == 0);
}

/* A refused line is dropped, never retried (calls go on); the count and
 * the cause reach the daemon's log now and then, and once more when the
 * store takes lines again. */
static void note_store(logs *lg, const char *function, int rc)
{
    uint64_t now = uv_now(lg->turn.loop);
    if (rc < 0) {
        lg->dropped++;
        if (lg->dropped_noted && now - lg->drop_noted_at < LOGS_DROP_NOTE_MS)
            return;
        dlog_warn("logs: %" PRIu64 " line(s) dropped so far (the last of %s: %s); calls go on",
                  lg->dropped, function, strerror(-rc));
        lg->dropped_noted = lg->dropped;
        lg->drop_noted_at = now;
    } else if (lg->dropped) {
        dlog_warn("logs: stored again after dropping %" PRIu64 " line(s)", lg->dropped);
        lg->dropped = lg->dropped_noted = 0;
    }
}

static void publish(logs *lg, const char *function, const log_record *rec)
{
    note_store(lg, function, logstore_append(lg->store, function, rec));
    for (follower *f = lg->followers; f; f = f->next) {
        if (!follower_wants(f, function, rec))
            continue;
        if (logs_format(rec, f->format, &f->backlog) < 0)
            f->dropped++;
        f->sink.wake(f->sink.ctx);
    }
}

static void emit(log_source *src, int stream, const char *msg, size_t len)
{
    log_record rec = {
        .time_ms = timefmt_now_ms(),
        .stream = stream,
        .version = src->version,
        .request_id = src->request_id,
        .msg = msg,
        .msg_len = len,
    };
    publish(src->lg, src->function, &rec);
}

void logs_note(logs *lg, const char *function, int64_t version, const char *request_id,
               const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_record rec = {
        .time_ms = timefmt_now_ms(),
        .stream = LOG_STDERR,
        .version = version,
        .request_id = request_id,
        .msg = msg,
        .msg_len = n < 0 ? 0 : ((size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1),
    };
    publish(lg, function, &rec);
}

/* --- sources --- */

void logs_source_init(log_source *src, logs *lg, const char *function, int64_t version)
{
    src->lg = lg;
    snprintf(src->function, sizeof src->function, "%s", function);
    src->version = version;
    src->request_id[0] = '\0';
    src->muted = false;
    src->on_turn = NULL;
    src->turn_next = NULL;
    src->turn_waiting = false;
    buf_init(&src->partial[0], LOGS_MAX_LINE);
    buf_init(&src->partial[1], LOGS_MAX_LINE);
}

void logs_source_set_request(log_source *src, const char *request_id)
{
    snprintf(src->request_id, sizeof src->request_id, "%s", request_id);
}

/* One line stored: the allowance and the turn's budget go down by one. */
static void charge_line(log_source *src, unsigned *allowance)
{
    (*allowance)--;
    if (src->lg->budget)
        src->lg->budget--;
}

size_t logs_source_feed(log_source *src, int stream, const char *data, size_t n,
                        unsigned *allowance)
{
    if (src->muted)
        return n;
    buf *pb = &src->partial[stream == LOG_STDERR];
    size_t total = n;
    while (n && *allowance) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        size_t room = LOGS_MAX_LINE - pb->len;
        bool complete = nl != NULL;
        if (take >= room) {
            take = room; /* an overlong line is cut here; the rest follows */
            complete = true;
            nl = NULL;
        }
        if (complete && pb->len == 0) {
            emit(src, stream, data, take);
        } else {
            buf_append(pb, data, take);
            if (complete) {
                emit(src, stream, pb->data, pb->len);
                buf_reset(pb);
            }
        }
        if (complete)
            charge_line(src, allowance);
        size_t used = take + (nl ? 1 : 0);
        data += used;
        n -= used;
    }
    return total - n;
}

void logs_source_flush(log_source *src)
{
    for (int i = 0; i < 2; i++) {
        buf *pb = &src->partial[i];
        if (pb->len) {
            emit(src, i == 0 ? LOG_STDOUT : LOG_STDERR, pb->data, pb->len);
            buf_reset(pb);
        }
    }
}

void logs_source_mute(log_source *src)
{
    src->muted = true;
    buf_reset(&src->partial[0]);
    buf_reset(&src->partial[1]);
}

void logs_source_release(log_source *src)
{
    logs_source_cancel_turn(src);
    buf_release(&src->partial[0]);
    buf_release(&src->partial[1]);
}

/* --- followers --- */

ssize_t logs_follower_pull(follower *f, char *dst, size_t max)
{
    if (f->backlog.len == 0 && f->dropped) {
        char note[128];
        int n =
            snprintf(note, sizeof note,
                     "hearth: %zu log lines dropped: this follower reads too slowly\n", f->dropped);
        f->dropped = 0;
        buf_append(&f->backlog, note, (size_t)n);
    }
    if (f->backlog.len == 0)
        return f->ended ? -1 : 0;
    size_t n = f->backlog.len < max ? f->backlog.len : max;
    memcpy(dst, f->backlog.data, n);
    buf_consume(&f->backlog, n);
    return (ssize_t)n;
}

void logs_follower_closed(follower *f)
{
    for (follower **pp = &f->lg->followers; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    buf_release(&f->backlog);
    free(f);
}

static int backlog_visit(const log_record *rec, void *ud)
{
    follower *f = ud;
    if (logs_format(rec, f->format, &f->backlog) < 0)
        f->dropped++;
    return 0;
}

logs_follower *logs_follow(logs *lg, const char *function, const log_query *q,
                           enum logs_format format, logs_sink sink)
{
    follower *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->lg = lg;
    f->sink = sink;
    f->format = format;
    snprintf(f->function, sizeof f->function, "%s", function);
    snprintf(f->request_id, sizeof f->request_id, "%s", q->request_id ? q->request_id : "");
    buf_init(&f->backlog, FOLLOWER_BACKLOG);
    logstore_query(lg->store, function, q, backlog_visit, f);
    f->next = lg->followers;
    lg->followers = f;
    return f;
}

const char *logs_content_type(enum logs_format format)
{
    return format == LOGS_NDJSON ? "application/x-ndjson" : "text/plain; charset=utf-8";
}

static void end_matching(logs *lg, const char *function)
{
    for (follower *f = lg->followers; f; f = f->next) {
        if (function && strcmp(f->function, function) != 0)
            continue;
        f->ended = true;
        f->sink.wake(f->sink.ctx);
    }
}

void logs_end_function(logs *lg, const char *function)
{
    end_matching(lg, function);
}

void logs_end_all(logs *lg)
{
    end_matching(lg, NULL);
}
