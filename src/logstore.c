/*
 * logstore.c — durable per-function log lines with bounded retention.
 *
 * Owns the tree <dir>/<function>/<20-digit seq>.ndjson: append-only segment
 * files holding one NDJSON record per line, in the order the lines were
 * appended; folders 0700 and files 0600, since a function may print its
 * secrets. A function's newest segment is the only one ever written; once a
 * segment reaches retention/4 bytes the next one starts, and once the
 * function's bytes exceed its retention the oldest segments are deleted.
 *
 * Memory stays bounded whatever the volume: at most LS_MAX_ACTIVE functions
 * hold an open fd and a LS_BUF_CAP write buffer (the least recently used one
 * is flushed and closed to make room), a message has a ceiling, and a query
 * holds one line plus `tail` file positions, never the lines themselves.
 *
 * Must never: rewrite a line once it is on disk, touch a path outside
 * `dir`, or keep a half-written line where the next record would be glued
 * onto it. Single-threaded (the loop thread owns it).
 */
#include "logstore.h"

#include "fsutil.h"
#include "safetext.h"
#include "strmap.h"
#include "timefmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LS_BUF_CAP      (64 * 1024) /* write buffer per active function */
#define LS_MAX_ACTIVE   64          /* functions holding an fd + buffer */
#define LS_MIN_SEGMENT  (64 * 1024) /* smallest segment size */
#define LS_MAX_MSG      (64 * 1024) /* ceiling for one message (lines are split at 16 KiB) */
#define LS_READ_CHUNK   (64 * 1024) /* first size of the query's line buffer */
#define LS_MAX_NAME     255
#define LS_SEQ_DIGITS   20
#define LS_SEG_SUFFIX   ".ndjson"
#define NDJSON_HEAD_MAX 160 /* an NDJSON line up to its request id: time, stream, version */
#define NDJSON_MID      "\",\"message\":\"" /* between the request id and the message */
#define NDJSON_END      "\"}\n"
/* What follows the head besides the two escaped strings, with the NUL. */
#define NDJSON_SUFFIX_LEN (sizeof NDJSON_MID - 1 + sizeof NDJSON_END)
#define LS_DIR_MODE       0700 /* log lines may carry what a function prints: owner only */
#define LS_FILE_MODE      0600

struct ls_seg {
    uint64_t seq;
    uint64_t size; /* bytes on disk */
};

struct ls_fn {
    char *path;          /* <dir>/<function> */
    struct ls_seg *segs; /* oldest first; the last one is written */
    size_t nseg, segcap;
    uint64_t disk_bytes; /* sum of segs[].size */
    bool tail_broken;    /* newest segment does not end in '\n' (a crash) */
    /* Only while active (fd >= 0): */
    int fd;
    char *buf;
    size_t buf_len;
    struct ls_fn *prev, *next; /* LRU list, most recent first */
};

struct logstore {
    char *dir;
    uint64_t retention;
    uint64_t seg_max;
    strmap fns; /* function name -> struct ls_fn */
    struct ls_fn *lru_head, *lru_tail;
    size_t nactive;
    int pending_err; /* first error met off the caller's path; reported by logstore_flush */
};

/* ---- names and paths ---- */

/* The caller validates names fully; this only keeps paths inside `dir`. */
static int check_name(const char *name)
{
    if (!name || !name[0] || name[0] == '.' || strchr(name, '/'))
        return -EINVAL;
    if (strlen(name) > LS_MAX_NAME)
        return -EINVAL;
    return 0;
}

static void seg_path(const char *fnpath, uint64_t seq, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%0*" PRIu64 "%s", fnpath, LS_SEQ_DIGITS, seq, LS_SEG_SUFFIX);
}

/* Parses "<20 digits>.ndjson"; anything else in the folder is ignored. */
static bool parse_seg_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < LS_SEQ_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (strcmp(name + LS_SEQ_DIGITS, LS_SEG_SUFFIX) != 0)
        return false;
    *seq = v;
    return true;
}

static void note_error(logstore *ls, int err)
{
    if (err && !ls->pending_err)
        ls->pending_err = err;
}

/* ---- file I/O ---- */

/* An existing folder is made LS_DIR_MODE too: older versions made them 0750. */
static int mkdir_exist_ok(const char *path)
{
    if (mkdir(path, LS_DIR_MODE) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    return chmod(path, LS_DIR_MODE) < 0 ? -errno : 0;
}

/* ---- per-function state ---- */

static int fn_push_seg(struct ls_fn *f, uint64_t seq, uint64_t size)
{
    if (f->nseg == f->segcap) {
        size_t cap = f->segcap ? f->segcap * 2 : 8;
        struct ls_seg *s = realloc(f->segs, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        f->segs = s;
        f->segcap = cap;
    }
    f->segs[f->nseg++] = (struct ls_seg){.seq = seq, .size = size};
    f->disk_bytes += size;
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct ls_seg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the segments already in f->path. A missing folder is no segment. */
static int fn_discover(struct ls_fn *f)
{
    DIR *d = opendir(f->path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t seq;
        struct stat st;
        if (!parse_seg_name(de->d_name, &seq))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        rc = fn_push_seg(f, seq, (uint64_t)st.st_size);
        if (rc)
            break;
    }
    closedir(d);
    if (rc || !f->nseg)
        return rc;
    qsort(f->segs, f->nseg, sizeof *f->segs, cmp_seg);

    /* A crash can leave a partial last line; appending after it would corrupt
     * the next record too, so such a segment is never appended to again. */
    struct ls_seg *last = &f->segs[f->nseg - 1];
    if (last->size) {
        char path[PATH_MAX], c = 0;
        seg_path(f->path, last->seq, path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, &c, 1, (off_t)last->size - 1) != 1 || c != '\n')
            f->tail_broken = true;
        if (fd >= 0)
            close(fd);
    }
    return 0;
}

static void fn_free(struct ls_fn *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->segs);
    free(f->buf);
    free(f);
}

/* Deletes the oldest segment file. On failure nothing changes. */
static int fn_drop_oldest(struct ls_fn *f)
{
    char path[PATH_MAX];
    seg_path(f->path, f->segs[0].seq, path);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    f->disk_bytes -= f->segs[0].size;
    memmove(f->segs, f->segs + 1, (f->nseg - 1) * sizeof *f->segs);
    f->nseg--;
    return 0;
}

/* Deletes oldest segments while the function (buffer included) is over its
 * retention; the segment being written is always kept. */
static int fn_enforce_retention(logstore *ls, struct ls_fn *f)
{
    while (f->nseg > 1 && f->disk_bytes + f->buf_len > ls->retention) {
        int rc = fn_drop_oldest(f);
        if (rc)
            return rc;
    }
    return 0;
}

/* Returns the state of `name`, loading it from disk on first use. With
 * `create` false, a function without a folder yields *out = NULL and 0. */
static int fn_get(logstore *ls, const char *name, bool create, struct ls_fn **out)
{
    *out = strmap_get(&ls->fns, name);
    if (*out)
        return 0;
    size_t plen = strlen(ls->dir) + 1 + strlen(name);
    if (plen + 1 + LS_SEQ_DIGITS + strlen(LS_SEG_SUFFIX) >= PATH_MAX)
        return -ENAMETOOLONG;
    struct ls_fn *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->fd = -1;
    f->path = malloc(plen + 1);
    if (!f->path) {
        fn_free(f);
        return -ENOMEM;
    }
    snprintf(f->path, plen + 1, "%s/%s", ls->dir, name);
    if (!create) {
        struct stat st;
        if (stat(f->path, &st) < 0) {
            int err = errno;
            fn_free(f);
            return err == ENOENT ? 0 : -err;
        }
    }
    int rc = fn_discover(f);
    if (!rc)
        rc = strmap_put(&ls->fns, name, f);
    if (rc) {
        fn_free(f);
        return rc;
    }
    /* A smaller retention than in a previous run applies at once. */
    note_error(ls, fn_enforce_retention(ls, f));
    *out = f;
    return 0;
}

/* ---- active functions: open fd + write buffer, LRU ---- */

static void lru_unlink(logstore *ls, struct ls_fn *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        ls->lru_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        ls->lru_tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_push_front(logstore *ls, struct ls_fn *f)
{
    f->prev = NULL;
    f->next = ls->lru_head;
    if (ls->lru_head)
        ls->lru_head->prev = f;
    ls->lru_head = f;
    if (!ls->lru_tail)
        ls->lru_tail = f;
}

/* Writes the buffer to the newest segment. On failure the segment is cut
 * back to its last whole line and the buffer is kept for a later try. */
static int fn_flush(struct ls_fn *f)
{
    if (!f->buf_len)
        return 0;
    struct ls_seg *last = &f->segs[f->nseg - 1];
    int rc = fsutil_write_all(f->fd, f->buf, f->buf_len);
    if (rc) {
        if (ftruncate(f->fd, (off_t)last->size) < 0)
            f->tail_broken = true;
        return rc;
    }
    last->size += f->buf_len;
    f->disk_bytes += f->buf_len;
    f->buf_len = 0;
    return 0;
}

/* Flushes (or, with `discard`, drops) the buffer and closes the fd. Lines
 * that cannot be written are lost; the error is kept for logstore_flush. */
static void fn_deactivate(logstore *ls, struct ls_fn *f, bool discard)
{
    if (f->fd < 0)
        return;
    if (!discard)
        note_error(ls, fn_flush(f));
    close(f->fd);
    f->fd = -1;
    free(f->buf);
    f->buf = NULL;
    f->buf_len = 0;
    lru_unlink(ls, f);
    ls->nactive--;
}

/* Opens a fresh segment after the newest one; returns its fd or a negative
 * errno, with nothing changed on failure. */
static int fn_open_new_segment(struct ls_fn *f)
{
    uint64_t seq = (f->nseg ? f->segs[f->nseg - 1].seq : 0) + 1;
    char path[PATH_MAX];
    seg_path(f->path, seq, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, LS_FILE_MODE);
    if (fd < 0)
        return -errno;
    int rc = fn_push_seg(f, seq, 0);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

/* Gives `f` an fd on its newest segment and a buffer, evicting the least
 * recently used function if LS_MAX_ACTIVE are open. */
static int fn_activate(logstore *ls, struct ls_fn *f)
{
    if (f->fd >= 0) {
        lru_unlink(ls, f);
        lru_push_front(ls, f);
        return 0;
    }
    if (ls->nactive >= LS_MAX_ACTIVE)
        fn_deactivate(ls, ls->lru_tail, false);
    int rc = mkdir_exist_ok(f->path);
    if (rc)
        return rc;
    char *buf = malloc(LS_BUF_CAP);
    if (!buf)
        return -ENOMEM;
    int fd;
    if (!f->nseg || f->tail_broken || f->segs[f->nseg - 1].size >= ls->seg_max) {
        fd = fn_open_new_segment(f);
        if (fd >= 0)
            f->tail_broken = false;
    } else {
        char path[PATH_MAX];
        seg_path(f->path, f->segs[f->nseg - 1].seq, path);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, LS_FILE_MODE);
        if (fd < 0)
            fd = -errno;
        else if (fchmod(fd, LS_FILE_MODE) < 0) { /* an older version's 0640 segment */
            int err = errno;
            close(fd);
            fd = -err;
        }
    }
    if (fd < 0) {
        free(buf);
        return fd;
    }
    f->fd = fd;
    f->buf = buf;
    f->buf_len = 0;
    lru_push_front(ls, f);
    ls->nactive++;
    return 0;
}

/* Moves writing to a new segment; on failure the old one stays in use. */
static int fn_rotate(struct ls_fn *f)
{
    int rc = fn_flush(f);
    if (rc)
        return rc;
    int fd = fn_open_new_segment(f);
    if (fd < 0)
        return fd;
    close(f->fd);
    f->fd = fd;
    return 0;
}

/* Appends one encoded line to an active function. On error the line is not
 * stored and what was stored before is intact. */
static int fn_write_line(logstore *ls, struct ls_fn *f, const char *line, size_t n)
{
    uint64_t cur = f->segs[f->nseg - 1].size + f->buf_len;
    int rc;
    if (cur > 0 && cur + n > ls->seg_max && (rc = fn_rotate(f)))
        return rc;
    if (f->buf_len + n > LS_BUF_CAP && (rc = fn_flush(f)))
        return rc;
    if (n > LS_BUF_CAP) {
        struct ls_seg *last = &f->segs[f->nseg - 1];
        rc = fsutil_write_all(f->fd, line, n);
        if (rc) {
            if (ftruncate(f->fd, (off_t)last->size) < 0)
                f->tail_broken = true;
            return rc;
        }
        last->size += n;
        f->disk_bytes += n;
    } else {
        memcpy(f->buf + f->buf_len, line, n);
        f->buf_len += n;
    }
    /* The line is stored; a failed delete is not its fault. */
    note_error(ls, fn_enforce_retention(ls, f));
    return 0;
}

/* ---- open / close / append / flush ---- */

void logstore_set_retention(logstore *ls, size_t retention_bytes)
{
    if (!ls || !retention_bytes)
        return;
    ls->retention = retention_bytes;
    ls->seg_max = retention_bytes / 4 < LS_MIN_SEGMENT ? LS_MIN_SEGMENT : retention_bytes / 4;
}

int logstore_open(const char *dir, size_t retention_bytes, logstore **out)
{
    if (!dir || !dir[0] || !retention_bytes || !out)
        return -EINVAL;
    int rc = mkdir_exist_ok(dir);
    if (rc)
        return rc;
    logstore *ls = calloc(1, sizeof *ls);
    if (!ls)
        return -ENOMEM;
    ls->dir = strdup(dir);
    if (!ls->dir) {
        free(ls);
        return -ENOMEM;
    }
    ls->retention = retention_bytes;
    ls->seg_max = retention_bytes / 4 < LS_MIN_SEGMENT ? LS_MIN_SEGMENT : retention_bytes / 4;
    strmap_init(&ls->fns);
    *out = ls;
    return 0;
}

static int free_fn_cb(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    fn_free(value);
    return 0;
}

void logstore_close(logstore *ls)
{
    if (!ls)
        return;
    while (ls->lru_head)
        fn_deactivate(ls, ls->lru_head, false);
    strmap_each(&ls->fns, free_fn_cb, NULL);
    strmap_release(&ls->fns);
    free(ls->dir);
    free(ls);
}

int logstore_append(logstore *ls, const char *function, const log_record *rec)
{
    if (!ls || !rec)
        return -EINVAL;
    int rc = check_name(function);
    if (rc)
        return rc;
    if (rec->stream != LOG_STDOUT && rec->stream != LOG_STDERR)
        return -EINVAL;
    if (!rec->msg && rec->msg_len)
        return -EINVAL;
    if (rec->msg_len > LS_MAX_MSG)
        return -E2BIG;
    size_t n;
    char *line = logstore_format_ndjson(rec, &n);
    if (!line)
        return -ENOMEM;
    struct ls_fn *f;
    rc = fn_get(ls, function, true, &f);
    if (!rc)
        rc = fn_activate(ls, f);
    if (!rc)
        rc = fn_write_line(ls, f, line, n);
    free(line);
    return rc;
}

int logstore_flush(logstore *ls)
{
    if (!ls)
        return -EINVAL;
    int first = ls->pending_err;
    ls->pending_err = 0;
    for (struct ls_fn *f = ls->lru_head; f; f = f->next) {
        int rc = fn_flush(f);
        if (rc && !first)
            first = rc;
    }
    return first;
}

/* ---- remove ---- */

int logstore_remove(logstore *ls, const char *function)
{
    if (!ls)
        return -EINVAL;
    int rc = check_name(function);
    if (rc)
        return rc;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", ls->dir, function) >= (int)sizeof path)
        return -ENAMETOOLONG;
    struct ls_fn *f = strmap_remove(&ls->fns, function);
    if (f) {
        fn_deactivate(ls, f, true);
        fn_free(f);
    }
    return fsutil_remove_tree(path);
}

/* ---- query ---- */

struct ls_pos {
    size_t seg;   /* index into the query's segment snapshot */
    uint64_t off; /* byte offset of the line in that segment */
};

/* Return 0 to go on, 1 to stop, or a negative errno. */
typedef int (*line_fn)(const char *line, size_t len, struct ls_pos pos, void *ud);

struct line_reader {
    char *buf;
    size_t cap;
};

/* Feeds each complete line of one segment, from `off` up to `limit` bytes,
 * to `cb`. A last line without '\n' (a crash, or a write in flight) and
 * lines longer than LOGSTORE_LINE_MAX are skipped. */
static int scan_segment(struct line_reader *r, const char *path, size_t segi, uint64_t off,
                        uint64_t limit, line_fn cb, void *ud)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* deleted by retention meanwhile */
    uint64_t base = off;                     /* file offset of r->buf[0] */
    size_t len = 0, scanned = 0;
    bool skipping = false; /* inside an overlong line */
    int rc = 0;
    while (!rc && base + len < limit) {
        size_t want = r->cap - len;
        if (want > limit - (base + len))
            want = (size_t)(limit - (base + len));
        ssize_t got = pread(fd, r->buf + len, want, (off_t)(base + len));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        size_t start = 0;
        char *nl;
        while (!rc && (nl = memchr(r->buf + scanned, '\n', len - scanned))) {
            size_t end = (size_t)(nl - r->buf);
            if (!skipping)
                rc = cb(r->buf + start, end - start, (struct ls_pos){segi, base + start}, ud);
            skipping = false;
            start = scanned = end + 1;
        }
        if (rc)
            break;
        memmove(r->buf, r->buf + start, len - start);
        len -= start;
        base += start;
        scanned = len;
        if (len == r->cap) {
            char *bigger = r->cap < LOGSTORE_LINE_MAX ? realloc(r->buf, r->cap * 2) : NULL;
            if (bigger) {
                r->buf = bigger;
                r->cap *= 2;
            } else {
                skipping = true;
                base += len;
                len = scanned = 0;
            }
        }
    }
    close(fd);
    return rc;
}

/* Feeds every line from `from` to the end of the snapshot to `cb`. */
static int scan_lines(const char *fnpath, const struct ls_seg *segs, size_t nseg,
                      struct ls_pos from, line_fn cb, void *ud)
{
    struct line_reader r = {.buf = malloc(LS_READ_CHUNK), .cap = LS_READ_CHUNK};
    if (!r.buf)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = from.seg; i < nseg && !rc; i++) {
        char path[PATH_MAX];
        seg_path(fnpath, segs[i].seq, path);
        rc = scan_segment(&r, path, i, i == from.seg ? from.off : 0, segs[i].size, cb, ud);
    }
    free(r.buf);
    return rc < 0 ? rc : 0;
}

/* Decodes one stored line into `rec`, borrowing from the returned object
 * (caller decrefs). NULL for a corrupt line. */
static json_t *parse_line(const char *line, size_t len, log_record *rec)
{
    if (!len)
        return NULL;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    if (!o)
        return NULL;
    json_t *t = json_object_get(o, "time_ms"), *s = json_object_get(o, "stream"),
           *v = json_object_get(o, "version"), *id = json_object_get(o, "request_id"),
           *m = json_object_get(o, "message");
    const char *st = json_string_value(s);
    if (!json_is_integer(t) || !st || !json_is_integer(v) || !json_is_string(id) ||
        !json_is_string(m))
        goto corrupt;
    if (!strcmp(st, "stdout"))
        rec->stream = LOG_STDOUT;
    else if (!strcmp(st, "stderr"))
        rec->stream = LOG_STDERR;
    else
        goto corrupt;
    rec->time_ms = json_integer_value(t);
    rec->version = json_integer_value(v);
    rec->request_id = json_string_value(id);
    rec->msg = json_string_value(m);
    rec->msg_len = json_string_length(m);
    return o;
corrupt:
    json_decref(o);
    return NULL;
}

struct query_ctx {
    const log_query *q;
    struct ls_pos *ring; /* positions of the last `tail` matches */
    size_t tail;
    size_t count; /* matches seen */
    size_t limit; /* visits allowed; 0 = unbounded */
    size_t visited;
    log_visit_fn visit;
    void *ud;
};

static bool query_matches(const log_query *q, const log_record *rec)
{
    if (q->since_ms && rec->time_ms < q->since_ms)
        return false;
    if (q->request_id && strcmp(q->request_id, rec->request_id) != 0)
        return false;
    return true;
}

/* Consumes the literal `lit` at p, or returns NULL. */
static const char *eat(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if (!p || (size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* Consumes an optionally negative decimal integer, or returns NULL. */
static const char *eat_int(const char *p, const char *end, int64_t *v)
{
    bool neg = p < end && *p == '-';
    p += neg;
    const char *start = p;
    uint64_t u = 0;
    for (; p < end && *p >= '0' && *p <= '9' && p - start < 18; p++)
        u = u * 10 + (uint64_t)(*p - '0');
    if (p == start || (p < end && *p >= '0' && *p <= '9'))
        return NULL;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return p;
}

/* Decides a line against the query from its fixed-layout head (as
 * logstore_format_ndjson writes it) without parsing it: 1 matches, 0 does
 * not, -1 unknown (other layout, escapes in the request id, 19+ digit
 * times) so the caller parses it. Parsing every line costs ~12 us per KiB
 * and a query runs on the loop thread; this makes the counting pass of a
 * tail query over 32 MiB a matter of milliseconds. */
static int quick_match(const log_query *q, const char *line, size_t len)
{
    const char *p = line, *end = line + len, *rid;
    int64_t t, v;
    if (len < 2 || end[-1] != '}')
        return -1;
    p = eat(p, end, "{\"time\":\"");
    p = p ? memchr(p, '"', (size_t)(end - p)) : NULL;
    p = eat(p, end, "\",\"time_ms\":");
    if (!p || !(p = eat_int(p, end, &t)))
        return -1;
    p = eat(p, end, ",\"stream\":\"");
    p = p ? memchr(p, '"', (size_t)(end - p)) : NULL;
    p = eat(p, end, "\",\"version\":");
    if (!p || !(p = eat_int(p, end, &v)))
        return -1;
    rid = p = eat(p, end, ",\"request_id\":\"");
    p = p ? memchr(p, '"', (size_t)(end - p)) : NULL;
    if (!p || memchr(rid, '\\', (size_t)(p - rid)) || !eat(p, end, "\",\"message\":\""))
        return -1;
    if (q->since_ms && t < q->since_ms)
        return 0;
    if (q->request_id) {
        size_t n = strlen(q->request_id);
        if (n != (size_t)(p - rid) || memcmp(q->request_id, rid, n) != 0)
            return 0;
    }
    return 1;
}

/* Pass 1 of a tail query. A line counted from its head alone but found
 * corrupt further on by pass 2 would leave one visit short: only a file
 * edited by hand has such a line, since a crash leaves at most an
 * unterminated last line, which the reader skips. */
static int count_cb(const char *line, size_t len, struct ls_pos pos, void *ud)
{
    struct query_ctx *c = ud;
    int m = quick_match(c->q, line, len);
    if (m < 0) {
        log_record rec;
        json_t *o = parse_line(line, len, &rec);
        m = o && query_matches(c->q, &rec);
        json_decref(o);
    }
    if (m)
        c->ring[c->count++ % c->tail] = pos;
    return 0;
}

static int visit_cb(const char *line, size_t len, struct ls_pos pos, void *ud)
{
    (void)pos;
    struct query_ctx *c = ud;
    if (!quick_match(c->q, line, len))
        return 0;
    log_record rec;
    json_t *o = parse_line(line, len, &rec);
    int rc = 0;
    if (o && query_matches(c->q, &rec)) {
        rc = c->visit(&rec, c->ud) ? 1 : 0;
        if (c->limit && ++c->visited >= c->limit)
            rc = 1;
    }
    json_decref(o);
    return rc;
}

/* Lines are read from a snapshot of the segment list and sizes taken after
 * the flush, so a visitor that appends (or removes) cannot make the query
 * loop or read a line twice. With `tail`, a first pass records where the
 * last N matches start and the second visits from the oldest of them. */
int logstore_query(logstore *ls, const char *function, const log_query *q, log_visit_fn visit,
                   void *ud)
{
    if (!ls || !q || !visit)
        return -EINVAL;
    int rc = check_name(function);
    if (rc)
        return rc;
    if (q->tail > LOGSTORE_TAIL_MAX)
        return -EINVAL;
    struct ls_fn *f;
    rc = fn_get(ls, function, false, &f);
    if (rc || !f)
        return rc;
    if (f->fd >= 0 && (rc = fn_flush(f)))
        return rc;
    if (!f->nseg)
        return 0;

    size_t nseg = f->nseg;
    struct ls_seg *segs = malloc(nseg * sizeof *segs);
    char *path = strdup(f->path);
    struct query_ctx c = {.q = q, .tail = q->tail, .visit = visit, .ud = ud};
    if (c.tail)
        c.ring = malloc(c.tail * sizeof *c.ring);
    if (!segs || !path || (c.tail && !c.ring)) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(segs, f->segs, nseg * sizeof *segs);

    struct ls_pos from = {0, 0};
    if (c.tail) {
        rc = scan_lines(path, segs, nseg, from, count_cb, &c);
        if (rc || !c.count)
            goto out;
        from = c.count > c.tail ? c.ring[c.count % c.tail] : c.ring[0];
        c.limit = c.count > c.tail ? c.tail : c.count;
    }
    rc = scan_lines(path, segs, nseg, from, visit_cb, &c);
out:
    free(c.ring);
    free(path);
    free(segs);
    return rc;
}

/* ---- formatting ---- */

static const char *stream_name(int stream)
{
    return stream == LOG_STDERR ? "stderr" : "stdout";
}

static char *json_put_escape(char *o, uint32_t cp)
{
    static const char hex[] = "0123456789ABCDEF";
    memcpy(o, "\\u", 2);
    o[2] = hex[cp >> 12 & 15];
    o[3] = hex[cp >> 8 & 15];
    o[4] = hex[cp >> 4 & 15];
    o[5] = hex[cp & 15];
    return o + 6;
}

/* Writes s[0..n) as the inside of a JSON string at o, which has room for
 * 6 * n bytes, and returns the new end. Ill-formed UTF-8 becomes U+FFFD;
 * quote, backslash and control bytes are escaped exactly as jansson's
 * compact dump does, so lines read the same whoever wrote them, and so are
 * the code points of safetext_breaks_lines(): valid JSON may hold them raw, but a
 * tool that splits NDJSON at them would cut a record in two. Written by
 * hand because this runs once per log line: jansson's object building cost
 * a flooding function's daemon most of its time. */
static char *json_put_string(char *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x80) {
            uint32_t cp;
            k = safetext_utf8_next(u + i, n - i, &cp);
            if (cp != SAFETEXT_ILL_FORMED && safetext_breaks_lines(cp)) {
                o = json_put_escape(o, cp);
            } else if (cp != SAFETEXT_ILL_FORMED) {
                memcpy(o, s + i, k);
                o += k;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
            }
            i += k;
            continue;
        }
        i++;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            o = json_put_escape(o - 1, c);
        }
    }
    return o;
}

char *logstore_format_ndjson(const log_record *rec, size_t *len)
{
    if (!rec || (!rec->msg && rec->msg_len))
        return NULL;
    if (rec->stream != LOG_STDOUT && rec->stream != LOG_STDERR)
        return NULL;
    const char *rid = rec->request_id ? rec->request_id : "";
    size_t rid_len = strlen(rid);
    char iso[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(rec->time_ms, iso);
    char *out = malloc(NDJSON_HEAD_MAX + 6 * (rid_len + rec->msg_len));
    if (!out)
        return NULL;
    int head = snprintf(out, NDJSON_HEAD_MAX,
                        "{\"time\":\"%s\",\"time_ms\":%" PRId64
                        ",\"stream\":\"%s\",\"version\":%" PRId64 ",\"request_id\":\"",
                        iso, rec->time_ms, stream_name(rec->stream), rec->version);
    /* The escaped strings take at most 6 bytes a byte; the head and the
     * suffix share NDJSON_HEAD_MAX. */
    if (head < 0 || (size_t)head > NDJSON_HEAD_MAX - NDJSON_SUFFIX_LEN) {
        free(out);
        return NULL;
    }
    char *o = out + head;
    o = json_put_string(o, rid, rid_len);
    memcpy(o, NDJSON_MID, sizeof NDJSON_MID - 1);
    o = json_put_string(o + sizeof NDJSON_MID - 1, rec->msg ? rec->msg : "", rec->msg_len);
    memcpy(o, NDJSON_END, sizeof NDJSON_END); /* with the NUL */
    if (len)
        *len = (size_t)(o + sizeof NDJSON_END - 1 - out);
    return out;
}

struct text_out {
    char *p;
    size_t room; /* bytes left before the reserved final '\n' */
    size_t len;
};

static void text_put(struct text_out *t, const char *s, size_t n)
{
    if (n > t->room)
        n = t->room;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->room -= n;
}

/* Copies well-formed UTF-8 as it is, except that C0 control bytes other
 * than tab, DEL and the code points of safetext_breaks_lines() become '?': a
 * function's output must not be able to move a reader's cursor, clear
 * their screen, retitle their terminal or start a line of its own (an
 * '\r' would let one line overwrite another, a U+2028 forge a new one).
 * Ill-formed UTF-8 becomes U+FFFD, as in the NDJSON, so a line followed
 * live reads byte for byte as the same line read back from the store. A
 * character that does not fit is left out whole. */
static void text_put_sanitized(struct text_out *t, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k;
    for (size_t i = 0; i < n; i += k) {
        uint32_t cp;
        k = safetext_utf8_next(u + i, n - i, &cp);
        const char *out = s + i;
        size_t len = k;
        if (cp == SAFETEXT_ILL_FORMED) {
            out = "\xEF\xBF\xBD";
            len = 3;
        } else if ((cp < 0x20 && cp != '\t') || cp == 0x7F || safetext_breaks_lines(cp)) {
            out = "?";
            len = 1;
        }
        if (len > t->room)
            break;
        memcpy(t->p + t->len, out, len);
        t->len += len;
        t->room -= len;
    }
}

/* The result always ends in '\n' (cap >= 1); a NUL follows only when it
 * fits, so callers use the returned length. */
size_t logstore_format_text(const log_record *rec, char *out, size_t cap)
{
    if (!rec || !out || !cap)
        return 0;
    struct text_out t = {.p = out, .room = cap - 1, .len = 0};
    char head[TIMEFMT_ISO_LEN + 32];
    timefmt_iso_ms(rec->time_ms, head);
    text_put(&t, head, strlen(head));
    text_put(&t, " ", 1);
    const char *rid = rec->request_id && rec->request_id[0] ? rec->request_id : "-";
    text_put_sanitized(&t, rid, strlen(rid));
    int n =
        snprintf(head, sizeof head, " v%" PRId64 " %s ", rec->version, stream_name(rec->stream));
    text_put(&t, head, (size_t)n);
    if (rec->msg)
        text_put_sanitized(&t, rec->msg, rec->msg_len);
    out[t.len++] = '\n';
    if (t.len < cap)
        out[t.len] = '\0';
    return t.len;
}
