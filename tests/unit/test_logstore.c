/*
 * test_logstore.c — unit tests for logstore: what a user of
 * `GET /v1/functions/{name}/logs` relies on (every line back, in order, with
 * its fields; filters; bounded retention on disk; survival across restarts
 * and crashes; exact output formats). Each test works in its own mkdtemp
 * folder and removes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "logstore.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024
#define MiB (1024 * 1024)

/* ---- fixture: a temp dir ---- */

struct fixture {
    char dir[64];
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "%s", "/tmp/test_logstore.XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    int rc = nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc;
}

static char *store_dir(void **state)
{
    return ((struct fixture *)*state)->dir;
}

/* ---- helpers ---- */

struct rec_copy {
    int64_t time_ms;
    int stream;
    int64_t version;
    char *request_id;
    char *msg;
    size_t msg_len;
};

struct collected {
    struct rec_copy *v;
    size_t n, cap;
    size_t stop_after; /* 0 = never stop */
};

static int collect(const log_record *rec, void *ud)
{
    struct collected *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        assert_non_null(c->v);
    }
    struct rec_copy *r = &c->v[c->n++];
    r->time_ms = rec->time_ms;
    r->stream = rec->stream;
    r->version = rec->version;
    r->request_id = strdup(rec->request_id);
    r->msg = malloc(rec->msg_len + 1);
    assert_non_null(r->msg);
    memcpy(r->msg, rec->msg, rec->msg_len);
    r->msg[rec->msg_len] = '\0';
    r->msg_len = rec->msg_len;
    return c->stop_after && c->n >= c->stop_after;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].request_id);
        free(c->v[i].msg);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

static void query(logstore *ls, const char *fn, size_t tail, int64_t since, const char *rid,
                  struct collected *out)
{
    log_query q = {.tail = tail, .since_ms = since, .request_id = rid};
    assert_int_equal(logstore_query(ls, fn, &q, collect, out), 0);
}

/* Appends "line <i>" (padded to `pad` bytes when larger) at time 1000+i. */
static void append_numbered(logstore *ls, const char *fn, int i, const char *rid, size_t pad)
{
    char msg[4096];
    int n = snprintf(msg, sizeof msg, "line %d", i);
    size_t len = (size_t)n;
    if (pad > len && pad < sizeof msg) {
        memset(msg + len, '.', pad - len);
        len = pad;
    }
    log_record r = {.time_ms = 1000 + i,
                    .stream = LOG_STDOUT,
                    .version = 1,
                    .request_id = rid ? rid : "",
                    .msg = msg,
                    .msg_len = len};
    assert_int_equal(logstore_append(ls, fn, &r), 0);
}

static int line_number(const struct rec_copy *r)
{
    int i = -1;
    assert_int_equal(sscanf(r->msg, "line %d", &i), 1);
    return i;
}

/* Sum of file sizes in <dir>/<fn>. */
static uint64_t disk_bytes(const char *dir, const char *fn)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, fn);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    struct stat st;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0)
            total += (uint64_t)st.st_size;
    closedir(d);
    return total;
}

/* Path of the newest segment of <dir>/<fn> (names sort by sequence). */
static void newest_segment(const char *dir, const char *fn, char *out, size_t cap)
{
    char path[512], best[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, fn);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    closedir(d);
    assert_true(best[0]);
    snprintf(out, cap, "%s/%s", path, best);
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- tests ---- */

static void test_roundtrip_preserves_fields(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    const char rid[] = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const char utf8[] = "caf\xc3\xa9 \xf0\x9f\x94\xa5 \"q\" \\ \t";
    log_record in[] = {
        {1795748701234, LOG_STDOUT, 2, rid, "hello", 5},
        {1795748701235, LOG_STDERR, 3, "", "x\0y", 3},
        {1795748701236, LOG_STDOUT, 2, rid,
         "a\xff"
         "b",
         3},
        {1795748701237, LOG_STDOUT, 2, rid, "", 0},
        {1795748701238, LOG_STDERR, 7, rid, utf8, sizeof utf8 - 1},
    };
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(logstore_append(ls, "fn", &in[i]), 0);

    /* Visible before any flush. */
    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(c.v[i].time_ms, in[i].time_ms);
        assert_int_equal(c.v[i].stream, in[i].stream);
        assert_int_equal(c.v[i].version, in[i].version);
        assert_string_equal(c.v[i].request_id, in[i].request_id);
    }
    assert_int_equal(c.v[0].msg_len, 5);
    assert_memory_equal(c.v[0].msg, "hello", 5);
    assert_int_equal(c.v[1].msg_len, 3);
    assert_memory_equal(c.v[1].msg, "x\0y", 3);
    assert_int_equal(c.v[2].msg_len, 5);
    assert_memory_equal(c.v[2].msg,
                        "a\xef\xbf\xbd"
                        "b",
                        5);
    assert_int_equal(c.v[3].msg_len, 0);
    assert_int_equal(c.v[4].msg_len, in[4].msg_len);
    assert_memory_equal(c.v[4].msg, in[4].msg, in[4].msg_len);
    collected_free(&c);

    /* Same after the bytes are on disk. */
    assert_int_equal(logstore_flush(ls), 0);
    assert_true(disk_bytes(store_dir(state), "fn") > 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 5);
    assert_memory_equal(c.v[1].msg, "x\0y", 3);
    collected_free(&c);
    logstore_close(ls);
}

static void test_ndjson_exact(void **state)
{
    (void)state;
    const char msg[] = "hi \"there\"\n\x01";
    log_record r = {1795748701234, LOG_STDOUT, 2, "abc", msg, sizeof msg - 1};
    size_t len = 0;
    char *s = logstore_format_ndjson(&r, &len);
    assert_non_null(s);
    const char *want = "{\"time\":\"2026-11-27T03:05:01.234Z\",\"time_ms\":1795748701234,"
                       "\"stream\":\"stdout\",\"version\":2,\"request_id\":\"abc\","
                       "\"message\":\"hi \\\"there\\\"\\n\\u0001\"}\n";
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    free(s);

    r.stream = 99;
    assert_null(logstore_format_ndjson(&r, &len));
}

/* Decodes the message of an NDJSON line produced from `msg`. */
static char *ndjson_roundtrip(const char *msg, size_t n, size_t *outlen)
{
    log_record r = {1, LOG_STDERR, 1, "", msg, n};
    char *line = logstore_format_ndjson(&r, NULL);
    assert_non_null(line);
    json_t *o = json_loads(line, JSON_ALLOW_NUL, NULL);
    assert_non_null(o);
    json_t *m = json_object_get(o, "message");
    *outlen = json_string_length(m);
    char *out = malloc(*outlen + 1);
    memcpy(out, json_string_value(m), *outlen + 1);
    json_decref(o);
    free(line);
    return out;
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
#define FFFD "\xef\xbf\xbd"
    struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"ok \xe2\x82\xac \xf0\x9f\x98\x80", 11, "ok \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"\xc0\x80", 2, FFFD FFFD},                   /* overlong NUL */
        {"\xed\xa0\x80", 3, FFFD FFFD FFFD},          /* surrogate */
        {"a\xe2\x82", 3, "a" FFFD},                   /* truncated at end */
        {"\xe2\x82z", 3, FFFD "z"},                   /* broken in the middle */
        {"\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* past U+10FFFF */
        {"\xff\xfe", 2, FFFD FFFD},
        {"\x80", 1, FFFD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *got = ndjson_roundtrip(cases[i].in, cases[i].n, &len);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(got, cases[i].want, len);
        free(got);
    }
#undef FFFD

    /* Whatever bytes a function prints, a record comes out and reads back. */
    uint32_t seed = 12345;
    for (int round = 0; round < 500; round++) {
        unsigned char msg[64];
        size_t n = (size_t)round % sizeof msg;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            msg[i] = (unsigned char)(seed >> 16);
        }
        size_t len;
        char *got = ndjson_roundtrip((const char *)msg, n, &len);
        assert_true(len >= n);
        free(got);
    }
}

/* True when `s` holds a byte or code point that some reader takes for the
 * end of a line: the ASCII ones, NEL (U+0085), U+2028 and U+2029. */
static bool has_line_break(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E))
            return true;
        if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85)
            return true;
        if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
            return true;
    }
    return false;
}

/* A function printing Unicode line breaks, C1 controls or bidi overrides
 * must not start a line of its own in either format (issue 9, point 7). */
static void test_unicode_line_breaks_escaped(void **state)
{
    (void)state;
    struct {
        const char *in, *json;
    } cases[] = {
        {"a\xe2\x80\xa8"
         "2026-01-01T00:00:00.000Z forged",
         "a\\u2028"
         "2026-01-01T00:00:00.000Z forged"},
        {"b\xe2\x80\xa9z", "b\\u2029z"},
        {"c\xc2\x85z", "c\\u0085z"},
        {"d\xc2\x9b"
         "31mz",
         "d\\u009B31mz"},
        {"e\xe2\x80\xaez", "e\\u202Ez"},
        {"f\xe2\x81\xa6z", "f\\u2066z"},
        {"g\xc2\xa0\xe2\x80\xa7z", "g\xc2\xa0\xe2\x80\xa7z"}, /* NBSP, U+2027: harmless, kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        log_record r = {0, LOG_STDOUT, 1, "", cases[i].in, strlen(cases[i].in)};
        size_t len;
        char *line = logstore_format_ndjson(&r, &len);
        assert_non_null(line);
        assert_non_null(strstr(line, cases[i].json));
        assert_false(has_line_break(line, len - 1));
        free(line);
        char text[256];
        size_t n = logstore_format_text(&r, text, sizeof text);
        assert_false(has_line_break(text, n - 1));
    }
}

/* Text of the raw bytes (a follower's path) equals text of the stored
 * NDJSON read back (a query's path), whatever the bytes: 0x9B, U+2028 and
 * ill-formed UTF-8 read the same both ways. */
static void test_text_same_live_and_stored(void **state)
{
    (void)state;
    uint32_t seed = 777;
    for (int round = 0; round < 2000; round++) {
        unsigned char msg[48];
        size_t n = (size_t)round % sizeof msg;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned char b = (unsigned char)(seed >> 16);
            /* Lean on the interesting lead bytes. */
            msg[i] = (seed >> 8) % 4 == 0 ? (unsigned char)(0xC2 + b % 0x33) : b;
        }
        if (round % 7 == 0 && n >= 3)
            memcpy(msg + n - 3, "\xe2\x80\xa8", 3);
        log_record live = {42, LOG_STDOUT, 3, "", (const char *)msg, n};
        size_t stored_len;
        char *stored = ndjson_roundtrip((const char *)msg, n, &stored_len);
        log_record back = {42, LOG_STDOUT, 3, "", stored, stored_len};
        char a[512], b[512];
        size_t na = logstore_format_text(&live, a, sizeof a);
        size_t nb = logstore_format_text(&back, b, sizeof b);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        assert_false(has_line_break(a, na - 1));
        free(stored);
    }
}

static void test_tail(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 100; i++)
        append_numbered(ls, "fn", i, NULL, 0);

    struct collected c = {0};
    query(ls, "fn", 10, 0, NULL, &c);
    assert_int_equal(c.n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(line_number(&c.v[i]), 90 + i);
    collected_free(&c);

    query(ls, "fn", 1000, 0, NULL, &c);
    assert_int_equal(c.n, 100);
    assert_int_equal(line_number(&c.v[0]), 0);
    assert_int_equal(line_number(&c.v[99]), 99);
    collected_free(&c);

    query(ls, "fn", 1, 0, NULL, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(line_number(&c.v[0]), 99);
    collected_free(&c);

    log_query q = {.tail = 10001};
    assert_int_equal(logstore_query(ls, "fn", &q, collect, &c), -EINVAL);
    assert_int_equal(c.n, 0);
    logstore_close(ls);
}

static void test_visitor_stops_early(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 20; i++)
        append_numbered(ls, "fn", i, NULL, 0);
    struct collected c = {.stop_after = 3};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(line_number(&c.v[2]), 2);
    collected_free(&c);
    logstore_close(ls);
}

static void test_request_id_filter(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 30; i++)
        append_numbered(ls, "fn", i, i % 3 == 0 ? "req-a" : (i % 3 == 1 ? "req-b" : ""), 0);

    struct collected c = {0};
    query(ls, "fn", 0, 0, "req-a", &c);
    assert_int_equal(c.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(line_number(&c.v[i]), 3 * i);
        assert_string_equal(c.v[i].request_id, "req-a");
    }
    collected_free(&c);

    query(ls, "fn", 2, 0, "req-b", &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(line_number(&c.v[0]), 25);
    assert_int_equal(line_number(&c.v[1]), 28);
    collected_free(&c);

    query(ls, "fn", 0, 0, "req-none", &c);
    assert_int_equal(c.n, 0);

    /* An id that JSON has to escape still matches exactly. */
    const char *odd = "we\"ird\\id";
    append_numbered(ls, "fn", 30, odd, 0);
    append_numbered(ls, "fn", 31, "we", 0);
    query(ls, "fn", 5, 0, odd, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0].request_id, odd);
    assert_int_equal(line_number(&c.v[0]), 30);
    collected_free(&c);
    append_numbered(ls, "fn", 32, "back\\slash", 0);
    query(ls, "fn", 5, 0, "back\\slash", &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(line_number(&c.v[0]), 32);
    collected_free(&c);
    query(ls, "fn", 5, 0, "we", &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(line_number(&c.v[0]), 31);
    collected_free(&c);
    logstore_close(ls);
}

static void test_since_filter(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 50; i++)
        append_numbered(ls, "fn", i, NULL, 0); /* time_ms = 1000 + i */

    struct collected c = {0};
    query(ls, "fn", 0, 1040, NULL, &c);
    assert_int_equal(c.n, 10);
    assert_int_equal(c.v[0].time_ms, 1040);
    assert_int_equal(line_number(&c.v[9]), 49);
    collected_free(&c);

    /* since and tail together: the last 3 of those since. */
    query(ls, "fn", 3, 1040, NULL, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(line_number(&c.v[0]), 47);
    collected_free(&c);

    query(ls, "fn", 0, 5000, NULL, &c);
    assert_int_equal(c.n, 0);
    logstore_close(ls);
}

/* Checks that lines [first, last] are all there, in order, and nothing else. */
static int assert_contiguous_suffix(struct collected *c, int last)
{
    assert_true(c->n > 0);
    int first = line_number(&c->v[0]);
    for (size_t i = 0; i < c->n; i++)
        assert_int_equal(line_number(&c->v[i]), first + (int)i);
    assert_int_equal(line_number(&c->v[c->n - 1]), last);
    return first;
}

static void test_retention(void **state)
{
    const size_t retention = 256 * KiB, seg = 64 * KiB; /* segments are retention/4, >= 64 KiB */
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), retention, &ls), 0);
    const int lines = 5000; /* ~1.3 MB of records */
    for (int i = 0; i < lines; i++) {
        append_numbered(ls, "fn", i, "rid", 200);
        if (i % 500 == 0) {
            assert_int_equal(logstore_flush(ls), 0);
            assert_true(disk_bytes(store_dir(state), "fn") <= retention + seg);
        }
    }
    assert_int_equal(logstore_flush(ls), 0);
    uint64_t disk = disk_bytes(store_dir(state), "fn");
    assert_true(disk <= retention + seg);
    /* And it keeps using what it may: at least retention minus a segment. */
    assert_true(disk >= retention - seg);

    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    int first = assert_contiguous_suffix(&c, lines - 1);
    assert_true(first > 0); /* the oldest went */
    collected_free(&c);
    logstore_close(ls);
}

static void test_survives_reopen(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 10; i++)
        append_numbered(ls, "fn", i, NULL, 0);
    logstore_close(ls); /* flushes */

    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 10; i < 15; i++)
        append_numbered(ls, "fn", i, NULL, 0);
    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 15);
    assert_contiguous_suffix(&c, 14);
    assert_int_equal(line_number(&c.v[0]), 0);
    collected_free(&c);
    logstore_close(ls);

    /* Again, across several segments and a smaller retention on restart. */
    assert_int_equal(logstore_open(store_dir(state), 256 * KiB, &ls), 0);
    for (int i = 15; i < 3000; i++)
        append_numbered(ls, "fn", i, NULL, 200);
    logstore_close(ls);
    assert_int_equal(logstore_open(store_dir(state), 256 * KiB, &ls), 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_contiguous_suffix(&c, 2999);
    collected_free(&c);
    logstore_close(ls);
}

static void test_20mb_through_1mib_stays_bounded(void **state)
{
    const size_t retention = 1 * MiB, seg = 256 * KiB;
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), retention, &ls), 0);
    const int lines = 20 * 1024; /* 1 KiB messages: 20 MiB of text */
    for (int i = 0; i < lines; i++) {
        append_numbered(ls, "fn", i, "0f8fad5b-d9cb-469f-a165-70867728950e", 1024);
        if (i % 2048 == 0)
            assert_true(disk_bytes(store_dir(state), "fn") <= retention + seg);
    }
    assert_int_equal(logstore_flush(ls), 0);
    assert_true(disk_bytes(store_dir(state), "fn") <= retention + seg);

    struct collected c = {0};
    query(ls, "fn", 5, 0, NULL, &c);
    assert_int_equal(c.n, 5);
    assert_int_equal(line_number(&c.v[4]), lines - 1);
    collected_free(&c);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_true(line_number(&c.v[0]) > lines - 1200); /* ~1 MiB of ~1.2 KiB records */
    assert_contiguous_suffix(&c, lines - 1);
    collected_free(&c);
    logstore_close(ls);
}

static void test_truncated_last_line_skipped(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 3; i++)
        append_numbered(ls, "fn", i, NULL, 0);
    logstore_close(ls);

    /* What a kill -9 in the middle of a write leaves behind. */
    char path[600];
    newest_segment(store_dir(state), "fn", path, sizeof path);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("{\"time\":\"2026-11-27T03:05:01.234Z\",\"time_ms\":17957", fp);
    fclose(fp);

    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 3);
    collected_free(&c);
    query(ls, "fn", 10, 0, NULL, &c);
    assert_int_equal(c.n, 3);
    collected_free(&c);

    /* New lines after the crash are not glued onto the partial one. */
    append_numbered(ls, "fn", 3, NULL, 0);
    append_numbered(ls, "fn", 4, NULL, 0);
    assert_int_equal(logstore_flush(ls), 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 5);
    assert_contiguous_suffix(&c, 4);
    collected_free(&c);
    logstore_close(ls);

    /* A corrupt line in the middle is skipped too. */
    newest_segment(store_dir(state), "fn", path, sizeof path);
    fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("not json\n{\"time_ms\":1}\n", fp);
    /* A valid record in another key order is still a line. */
    fputs("{\"message\":\"line 5\",\"request_id\":\"\",\"version\":1,\"stream\":\"stderr\","
          "\"time_ms\":1005,\"time\":\"x\"}\n",
          fp);
    fclose(fp);
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    append_numbered(ls, "fn", 6, NULL, 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 7);
    assert_contiguous_suffix(&c, 6);
    assert_int_equal(c.v[5].stream, LOG_STDERR);
    collected_free(&c);
    query(ls, "fn", 2, 1005, NULL, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(line_number(&c.v[0]), 5);
    collected_free(&c);
    logstore_close(ls);
}

static void test_remove(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    for (int i = 0; i < 10; i++)
        append_numbered(ls, "fn", i, NULL, 0);
    assert_int_equal(logstore_flush(ls), 0);
    append_numbered(ls, "fn", 10, NULL, 0); /* still buffered */
    assert_int_equal(logstore_remove(ls, "fn"), 0);

    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/fn", store_dir(state));
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);

    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 0);
    assert_int_equal(logstore_flush(ls), 0); /* the dropped buffer is not written back */
    assert_int_equal(stat(path, &st), -1);

    /* Removing what is not there is fine; the name can be used again. */
    assert_int_equal(logstore_remove(ls, "fn"), 0);
    assert_int_equal(logstore_remove(ls, "never-existed"), 0);
    append_numbered(ls, "fn", 42, NULL, 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(line_number(&c.v[0]), 42);
    collected_free(&c);
    logstore_close(ls);

    /* And it stays removed across a restart. */
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    assert_int_equal(logstore_remove(ls, "fn"), 0);
    logstore_close(ls);
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 0);
    logstore_close(ls);
}

static void test_format_text(void **state)
{
    (void)state;
    char out[256];
    log_record r = {1795748701234, LOG_STDOUT, 2, "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "hello",       5};
    const char *want =
        "2026-11-27T03:05:01.234Z 0f8fad5b-d9cb-469f-a165-70867728950e v2 stdout hello\n";
    size_t n = logstore_format_text(&r, out, sizeof out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);

    /* Outside a request; control bytes neutralised, tab and UTF-8 kept. */
    log_record r2 = {5, LOG_STDERR, 11, "", "a\rb\x1b[2J\tc\0d\x7f\xc3\xa9", 14};
    const char *want2 = "1970-01-01T00:00:00.005Z - v11 stderr a?b?[2J\tc?d?\xc3\xa9\n";
    n = logstore_format_text(&r2, out, sizeof out);
    assert_int_equal(n, strlen(want2));
    assert_memory_equal(out, want2, n);

    /* Truncated: still ends in a newline, never overruns, never splits UTF-8. */
    char small[64];
    memset(small, 'Z', sizeof small);
    n = logstore_format_text(&r, small, 40);
    assert_int_equal(n, 40);
    assert_memory_equal(small, "2026-11-27T03:05:01.234Z 0f8fad5b-d9cb-\n", 40);
    assert_int_equal(small[40], 'Z');

    log_record r3 = {0, LOG_STDOUT, 1, "", "\xe2\x82\xac\xe2\x82\xac", 6};
    /* "1970-01-01T00:00:00.000Z - v1 stdout " is 37 bytes; room for one euro sign + 1. */
    n = logstore_format_text(&r3, small, 37 + 4 + 1);
    assert_int_equal(n, 37 + 3 + 1);
    assert_memory_equal(small, "1970-01-01T00:00:00.000Z - v1 stdout \xe2\x82\xac\n", n);

    assert_int_equal(logstore_format_text(&r, small, 0), 0);
    assert_int_equal(logstore_format_text(&r, small, 1), 1);
    assert_int_equal(small[0], '\n');
}

static void test_functions_independent(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 256 * KiB, &ls), 0);
    for (int i = 0; i < 10; i++) {
        append_numbered(ls, "alpha", i, NULL, 0);
        append_numbered(ls, "beta", 100 + i, NULL, 0);
    }
    /* Flooding one does not evict the other's lines. */
    for (int i = 10; i < 3000; i++)
        append_numbered(ls, "alpha", i, NULL, 200);

    struct collected c = {0};
    query(ls, "beta", 0, 0, NULL, &c);
    assert_int_equal(c.n, 10);
    assert_int_equal(line_number(&c.v[0]), 100);
    assert_contiguous_suffix(&c, 109);
    collected_free(&c);

    assert_int_equal(logstore_remove(ls, "alpha"), 0);
    query(ls, "beta", 0, 0, NULL, &c);
    assert_int_equal(c.n, 10);
    collected_free(&c);
    query(ls, "alpha", 0, 0, NULL, &c);
    assert_int_equal(c.n, 0);
    query(ls, "gamma", 0, 0, NULL, &c); /* unknown: nothing, not an error */
    assert_int_equal(c.n, 0);
    logstore_close(ls);
}

static void test_many_functions_bound_fds(void **state)
{
    int before = count_open_fds();
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    char name[16];
    for (int round = 0; round < 3; round++)
        for (int f = 0; f < 150; f++) {
            snprintf(name, sizeof name, "fn-%d", f);
            append_numbered(ls, name, round, NULL, 0);
        }
    assert_true(count_open_fds() <= before + 64);

    for (int f = 0; f < 150; f++) {
        struct collected c = {0};
        snprintf(name, sizeof name, "fn-%d", f);
        query(ls, name, 0, 0, NULL, &c);
        assert_int_equal(c.n, 3);
        assert_contiguous_suffix(&c, 2);
        collected_free(&c);
    }
    logstore_close(ls);
    assert_int_equal(count_open_fds(), before);
}

static void test_bad_arguments(void **state)
{
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 1 * MiB, &ls), 0);
    log_record r = {1, LOG_STDOUT, 1, "", "x", 1};
    log_query q = {0};
    struct collected c = {0};
    const char *bad[] = {"", ".", "..", ".hidden", "a/b", "../escape"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(logstore_append(ls, bad[i], &r), -EINVAL);
        assert_int_equal(logstore_query(ls, bad[i], &q, collect, &c), -EINVAL);
        assert_int_equal(logstore_remove(ls, bad[i]), -EINVAL);
    }
    r.stream = 3;
    assert_int_equal(logstore_append(ls, "fn", &r), -EINVAL);

    /* A message past the ceiling is refused, not stored half. */
    size_t big = 64 * KiB + 1;
    char *msg = calloc(1, big);
    log_record huge = {1, LOG_STDOUT, 1, "", msg, big};
    assert_int_equal(logstore_append(ls, "fn", &huge), -E2BIG);
    free(msg);
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 0);
    logstore_close(ls);

    assert_int_equal(logstore_open(store_dir(state), 0, &ls), -EINVAL);
}

static void test_large_messages(void **state)
{
    /* Records larger than the write buffer (a 64 KiB message of NULs becomes
     * ~384 KiB of JSON) are written whole and read back whole. */
    logstore *ls;
    assert_int_equal(logstore_open(store_dir(state), 4 * MiB, &ls), 0);
    size_t n = 64 * KiB;
    char *msg = calloc(1, n);
    log_record r = {7, LOG_STDOUT, 1, "", msg, n};
    assert_int_equal(logstore_append(ls, "fn", &r), 0);
    append_numbered(ls, "fn", 1, NULL, 0);
    assert_int_equal(logstore_append(ls, "fn", &r), 0);
    struct collected c = {0};
    query(ls, "fn", 0, 0, NULL, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.v[0].msg_len, n);
    assert_memory_equal(c.v[0].msg, msg, n);
    assert_int_equal(line_number(&c.v[1]), 1);
    assert_int_equal(c.v[2].msg_len, n);
    collected_free(&c);
    free(msg);
    logstore_close(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_preserves_fields, setup, teardown),
        cmocka_unit_test(test_ndjson_exact),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_unicode_line_breaks_escaped),
        cmocka_unit_test(test_text_same_live_and_stored),
        cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visitor_stops_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_id_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_since_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_20mb_through_1mib_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_last_line_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test(test_format_text),
        cmocka_unit_test_setup_teardown(test_functions_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_functions_bound_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
