/*
 * test_routes.c — the route table (src/events/routes.c): the "routes"
 * setting's rules, precedence and backtracking, greedy segments, methods,
 * conflicts between functions, replacing and removing a function's routes,
 * and a table of 10,000 routes. No daemon: the table alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "events/routes.h"

/* A routes list from JSON text. */
static json_t *list(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return v;
}

/* Sets `fn`'s routes; returns what routes_prepare did (committing on 0). */
static int set(routes_table *t, const char *fn, const char *text, char *err, size_t errlen)
{
    json_t *v = list(text);
    routes_change *c;
    int rc = routes_prepare(t, fn, v, &c, err, errlen);
    if (rc == 0)
        routes_commit(t, c);
    json_decref(v);
    return rc;
}

static void set_ok(routes_table *t, const char *fn, const char *text)
{
    char err[400] = "";
    int rc = set(t, fn, text, err, sizeof err);
    if (rc != 0)
        fail_msg("setting %s for %s: %d %s", text, fn, rc, err);
}

/* Looks up "METHOD" and a plain path ("/a/b"), split on '/'. */
static int look(routes_table *t, const char *method, const char *path, routes_match *m)
{
    static char buf[8192];
    const char *segs[ROUTES_REQ_SEGMENTS];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", path + 1);
    if (buf[0])
        for (char *p = buf;;) {
            segs[n++] = p;
            char *slash = strchr(p, '/');
            if (!slash)
                break;
            *slash = '\0';
            p = slash + 1;
        }
    return routes_lookup(t, method, segs, n, m);
}

/* Asserts `method path` reaches `fn` through `resource`; `params` is the
 * expected pathParameters as JSON text, or NULL for none. */
static void expect(routes_table *t, const char *method, const char *path, const char *fn,
                   const char *resource, const char *params)
{
    routes_match m;
    int rc = look(t, method, path, &m);
    if (rc != ROUTES_FOUND)
        fail_msg("%s %s: expected %s, got %d", method, path, fn, rc);
    assert_string_equal(m.function, fn);
    assert_string_equal(m.resource, resource);
    if (!params) {
        assert_null(m.params);
    } else {
        json_t *want = list(params);
        if (!json_equal(want, m.params)) {
            char *got = json_dumps(m.params, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("%s %s: params %s, want %s", method, path, got, params);
        }
        json_decref(want);
    }
    json_decref(m.params);
}

static void expect_none(routes_table *t, const char *method, const char *path)
{
    routes_match m;
    assert_int_equal(look(t, method, path, &m), -ENOENT);
}

/* --- validation --- */

static void expect_invalid(const char *text, const char *needle)
{
    json_t *v = list(text);
    char err[400] = "";
    assert_int_equal(routes_validate(v, err, sizeof err), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("%s: error '%s' does not say '%s'", text, err, needle);
    json_decref(v);
}

static void test_validate_ok(void **state)
{
    (void)state;
    const char *ok[] = {
        "[]",
        "[{\"method\": \"GET\", \"path\": \"/\"}]",
        "[{\"method\": \"GET\", \"path\": \"/users/{id}\"},"
        " {\"method\": \"ANY\", \"path\": \"/hooks/{proxy+}\"}]",
        "[{\"method\": \"POST\", \"path\": \"/a-b/c.d/~e/_f/x:y@z\"}]",
        "[{\"method\": \"GET\", \"path\": \"/healthzone\"}, {\"method\": \"GET\", \"path\": "
        "\"/v2/x\"}, {\"method\": \"GET\", \"path\": \"/fnord\"}]",
        "[{\"method\": \"GET\", \"path\": \"/{proxy+}\"}]",
        "[{\"method\": \"GET\", \"path\": \"/u/{id}\"}, {\"method\": \"PUT\", \"path\": "
        "\"/u/{other}\"}]",
        "[{\"method\": \"GET\", \"path\": \"/u/{id}\"}, {\"method\": \"GET\", \"path\": "
        "\"/u/{id}/x\"}, {\"method\": \"GET\", \"path\": \"/u/{id+}\"}]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        json_t *v = list(ok[i]);
        char err[400] = "";
        if (routes_validate(v, err, sizeof err) != 0)
            fail_msg("%s refused: %s", ok[i], err);
        json_decref(v);
    }
    assert_int_equal(routes_validate(NULL, NULL, 0), 0);
}

static void test_validate_errors(void **state)
{
    (void)state;
    expect_invalid("{}", "routes must be an array");
    expect_invalid("[1]", "routes[0] must be an object");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a\", \"fn\": 1}]",
                   "routes[0]: unknown field 'fn'");
    expect_invalid("[{\"method\": \"get\", \"path\": \"/a\"}]", "routes[0].method must be one of");
    expect_invalid("[{\"method\": \"TRACE\", \"path\": \"/a\"}]", "routes[0].method");
    expect_invalid("[{\"path\": \"/a\"}]", "routes[0].method");
    expect_invalid("[{\"method\": \"GET\"}]", "routes[0].path must be a string");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"a\"}]", "must start with '/'");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/v1/x\"}]",
                   "routes[0].path: '/v1/x' is under the reserved prefix /v1/");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/V1/x\"}]", "reserved prefix /v1/");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/v1\"}]", "reserved prefix /v1/");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/fn/x\"}]", "reserved prefix /fn/");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/healthz\"}]", "reserved prefix /healthz");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/Metrics/{x}\"}]",
                   "reserved prefix /metrics");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a//b\"}]", "empty segment");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/\"}]", "empty segment");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/../b\"}]", "'.' and '..'");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/%2e\"}]", "holds '%'");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a b\"}]", "holds byte 0x20");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/x{id}\"}]", "holds '{'");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{id\"}]", "whole segment");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{1d}\"}]", "parameter names match");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{}\"}]", "parameter names match");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{+}\"}]", "parameter names match");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{id}/{id}\"}]",
                   "names the parameter 'id' twice");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{id}/{id+}\"}]", "twice");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a/{rest+}/b\"}]",
                   "greedy {rest+} must be the last segment");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/caf\\u00e9\"}]", "literal segments");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/a\\u0000b\"}]", "NUL");
    expect_invalid("[{\"method\": \"GET\", \"path\": \"/u/{id}\"},"
                   " {\"method\": \"GET\", \"path\": \"/u/{uid}\"}]",
                   "routes[1]: GET /u/{uid} collides with routes[0] (GET /u/{id})");
    expect_invalid("[{\"method\": \"POST\", \"path\": \"/u\"}, {\"method\": \"ANY\", \"path\": "
                   "\"/u\"}]",
                   "collides");

    char big[4096] = "[";
    for (int i = 0; i <= ROUTES_MAX; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big),
                 "%s{\"method\": \"GET\", \"path\": \"/r%d\"}", i ? "," : "", i);
    snprintf(big + strlen(big), sizeof big - strlen(big), "]");
    expect_invalid(big, "at most 64");

    char longp[ROUTES_PATH_MAX + 64];
    memset(longp, 'a', sizeof longp);
    longp[0] = '/';
    longp[ROUTES_PATH_MAX + 1] = '\0';
    char doc[ROUTES_PATH_MAX + 128];
    snprintf(doc, sizeof doc, "[{\"method\": \"GET\", \"path\": \"%s\"}]", longp);
    expect_invalid(doc, "longer than");
    char deep[256] = "[{\"method\": \"GET\", \"path\": \"";
    for (int i = 0; i <= ROUTES_SEGMENTS_MAX; i++)
        snprintf(deep + strlen(deep), sizeof deep - strlen(deep), "/a");
    snprintf(deep + strlen(deep), sizeof deep - strlen(deep), "\"}]");
    expect_invalid(deep, "more than 32 segments");
}

static void test_reserved_list_covers_the_api(void **state)
{
    (void)state;
    const char *outside = api_route_outside_reserved();
    if (outside)
        fail_msg("the API serves %s outside routes.c's reserved list", outside);
    assert_true(routes_is_reserved("v1", 2));
    assert_true(routes_is_reserved("V1", 2));
    assert_true(routes_is_reserved("HealthZ", 7));
    assert_false(routes_is_reserved("v", 1));
    assert_false(routes_is_reserved("v12", 3));
    assert_false(routes_is_reserved("healthzone", 10));
}

/* --- lookup --- */

static void test_precedence(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "lit", "[{\"method\": \"GET\", \"path\": \"/users/me\"}]");
    set_ok(t, "param", "[{\"method\": \"GET\", \"path\": \"/users/{id}\"}]");
    set_ok(t, "greedy", "[{\"method\": \"GET\", \"path\": \"/users/{rest+}\"}]");
    set_ok(t, "root", "[{\"method\": \"GET\", \"path\": \"/\"}]");
    expect(t, "GET", "/users/me", "lit", "/users/me", NULL);
    expect(t, "GET", "/users/42", "param", "/users/{id}", "{\"id\": \"42\"}");
    expect(t, "GET", "/users/42/x", "greedy", "/users/{rest+}", "{\"rest\": \"42/x\"}");
    expect(t, "GET", "/users/me/x", "greedy", "/users/{rest+}", "{\"rest\": \"me/x\"}");
    expect(t, "GET", "/", "root", "/", NULL);
    expect_none(t, "GET", "/users");
    expect_none(t, "GET", "/other");
    expect_none(t, "GET", "/users/");   /* an empty segment matches nothing */
    expect_none(t, "GET", "/users//x"); /* nor in the middle */
    routes_table_free(t);
}

static void test_backtracking(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "deep-lit", "[{\"method\": \"GET\", \"path\": \"/a/b/d\"}]");
    set_ok(t, "deep-param", "[{\"method\": \"GET\", \"path\": \"/a/{x}/c\"}]");
    set_ok(t, "catch", "[{\"method\": \"GET\", \"path\": \"/{all+}\"}]");
    /* The literal b is more specific, but has no c below it. */
    expect(t, "GET", "/a/b/c", "deep-param", "/a/{x}/c", "{\"x\": \"b\"}");
    expect(t, "GET", "/a/b/d", "deep-lit", "/a/b/d", NULL);
    /* Neither branch has e: back up to the root's greedy. */
    expect(t, "GET", "/a/b/e", "catch", "/{all+}", "{\"all\": \"a/b/e\"}");
    expect(t, "GET", "/z", "catch", "/{all+}", "{\"all\": \"z\"}");
    expect_none(t, "GET", "/"); /* a greedy takes at least one segment */

    /* Parameters at several depths, named by each route itself. */
    set_ok(t, "two",
           "[{\"method\": \"GET\", \"path\": \"/o/{org}/r/{repo}\"},"
           " {\"method\": \"GET\", \"path\": \"/o/{name}/members\"}]");
    expect(t, "GET", "/o/acme/r/hearth", "two", "/o/{org}/r/{repo}",
           "{\"org\": \"acme\", \"repo\": \"hearth\"}");
    expect(t, "GET", "/o/acme/members", "two", "/o/{name}/members", "{\"name\": \"acme\"}");
    routes_table_free(t);
}

static void test_methods(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "get",
           "[{\"method\": \"GET\", \"path\": \"/a/b\"},"
           " {\"method\": \"DELETE\", \"path\": \"/a/b\"}]");
    set_ok(t, "any", "[{\"method\": \"ANY\", \"path\": \"/a/{x}\"}]");
    set_ok(t, "only-post", "[{\"method\": \"POST\", \"path\": \"/p\"}]");
    expect(t, "GET", "/a/b", "get", "/a/b", NULL);
    expect(t, "DELETE", "/a/b", "get", "/a/b", NULL);
    /* No POST on the literal: the parameter's ANY takes it. */
    expect(t, "POST", "/a/b", "any", "/a/{x}", "{\"x\": \"b\"}");
    expect(t, "PROPFIND", "/a/c", "any", "/a/{x}", "{\"x\": \"c\"}");
    expect(t, "ANY", "/a/c", "any", "/a/{x}", "{\"x\": \"c\"}");

    routes_match m;
    assert_int_equal(look(t, "GET", "/p", &m), ROUTES_NO_METHOD);
    assert_int_equal(m.allowed, 1u << ROUTES_POST);
    assert_null(m.params);
    assert_int_equal(look(t, "get", "/p", &m), ROUTES_NO_METHOD); /* methods are case-sensitive */
    /* A parameter beats a greedy only for the methods it takes. */
    set_ok(t, "mix",
           "[{\"method\": \"ANY\", \"path\": \"/m/{x+}\"},"
           " {\"method\": \"HEAD\", \"path\": \"/m/{y}\"}]");
    expect(t, "HEAD", "/m/1", "mix", "/m/{y}", "{\"y\": \"1\"}");
    expect(t, "GET", "/m/1", "mix", "/m/{x+}", "{\"x\": \"1\"}");
    routes_table_free(t);
}

static void test_conflicts(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    char err[400];
    set_ok(t, "owner",
           "[{\"method\": \"GET\", \"path\": \"/users/{id}\"},"
           " {\"method\": \"ANY\", \"path\": \"/hooks/{p+}\"}]");
    assert_int_equal(
        set(t, "thief", "[{\"method\": \"GET\", \"path\": \"/users/{uid}\"}]", err, sizeof err),
        -EEXIST);
    assert_string_equal(err, "GET /users/{uid} collides with GET /users/{id} of function 'owner'");
    assert_int_equal(
        set(t, "thief", "[{\"method\": \"ANY\", \"path\": \"/users/{x}\"}]", err, sizeof err),
        -EEXIST);
    assert_int_equal(
        set(t, "thief", "[{\"method\": \"POST\", \"path\": \"/hooks/{q+}\"}]", err, sizeof err),
        -EEXIST);
    assert_non_null(strstr(err, "ANY /hooks/{p+} of function 'owner'"));
    /* A refused list changes nothing, even for its routes that were free. */
    assert_int_equal(set(t, "thief",
                         "[{\"method\": \"GET\", \"path\": \"/free\"},"
                         " {\"method\": \"GET\", \"path\": \"/users/{uid}\"}]",
                         err, sizeof err),
                     -EEXIST);
    assert_int_equal(routes_count(t), 2);
    expect_none(t, "GET", "/free");
    expect(t, "GET", "/users/7", "owner", "/users/{id}", "{\"id\": \"7\"}");
    /* Other shapes and methods are free. */
    set_ok(t, "thief",
           "[{\"method\": \"POST\", \"path\": \"/users/{uid}\"},"
           " {\"method\": \"GET\", \"path\": \"/users/{uid}/x\"},"
           " {\"method\": \"GET\", \"path\": \"/users/me\"},"
           " {\"method\": \"GET\", \"path\": \"/hooks/{p}\"}]");
    expect(t, "POST", "/users/7", "thief", "/users/{uid}", "{\"uid\": \"7\"}");
    expect(t, "GET", "/users/7", "owner", "/users/{id}", "{\"id\": \"7\"}");
    /* A list that does not validate is -EINVAL, and changes nothing. */
    assert_int_equal(
        set(t, "thief", "[{\"method\": \"GET\", \"path\": \"/v1/x\"}]", err, sizeof err), -EINVAL);
    assert_int_equal(routes_count(t), 6);
    routes_table_free(t);
}

static void test_replace_and_remove(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "f",
           "[{\"method\": \"GET\", \"path\": \"/old/{id}\"},"
           " {\"method\": \"GET\", \"path\": \"/keep\"}]");
    set_ok(t, "g", "[{\"method\": \"GET\", \"path\": \"/g\"}]");
    /* A function's own routes never collide with its next list. */
    set_ok(t, "f",
           "[{\"method\": \"ANY\", \"path\": \"/keep\"},"
           " {\"method\": \"GET\", \"path\": \"/new/{id}\"}]");
    expect_none(t, "GET", "/old/1");
    expect(t, "GET", "/new/1", "f", "/new/{id}", "{\"id\": \"1\"}");
    expect(t, "PUT", "/keep", "f", "/keep", NULL);
    assert_int_equal(routes_count(t), 3);

    /* The route another function gave up is free for the taking. */
    set_ok(t, "g",
           "[{\"method\": \"GET\", \"path\": \"/g\"},"
           " {\"method\": \"GET\", \"path\": \"/old/{x}\"}]");
    expect(t, "GET", "/old/1", "g", "/old/{x}", "{\"x\": \"1\"}");

    /* An aborted change leaves the table as it was. */
    json_t *v = list("[{\"method\": \"GET\", \"path\": \"/aborted/{a}/{b}\"}]");
    routes_change *c;
    char err[400];
    assert_int_equal(routes_prepare(t, "h", v, &c, err, sizeof err), 0);
    expect_none(t, "GET", "/aborted/1/2");
    routes_abort(t, c);
    json_decref(v);
    expect_none(t, "GET", "/aborted/1/2");

    routes_remove_function(t, "f");
    routes_remove_function(t, "nobody");
    expect_none(t, "GET", "/new/1");
    expect_none(t, "GET", "/keep");
    expect(t, "GET", "/g", "g", "/g", NULL);
    assert_int_equal(routes_count(t), 2);
    /* An empty list removes them too. */
    set_ok(t, "g", "[]");
    assert_int_equal(routes_count(t), 0);
    expect_none(t, "GET", "/g");

    routes_item *items;
    size_t n;
    assert_int_equal(routes_list(t, &items, &n), 0);
    assert_int_equal(n, 0);
    assert_null(items);
    routes_table_free(t);
}

static void test_list_sorted(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "b",
           "[{\"method\": \"POST\", \"path\": \"/x\"}, {\"method\": \"GET\", \"path\": "
           "\"/y\"}]");
    set_ok(t, "a",
           "[{\"method\": \"GET\", \"path\": \"/x\"}, {\"method\": \"ANY\", \"path\": "
           "\"/a/{p+}\"}]");
    routes_item *items;
    size_t n;
    assert_int_equal(routes_list(t, &items, &n), 0);
    assert_int_equal(n, 4);
    const char *want[][3] = {
        {"ANY", "/a/{p+}", "a"}, {"GET", "/x", "a"}, {"POST", "/x", "b"}, {"GET", "/y", "b"}};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(routes_method_name(items[i].method), want[i][0]);
        assert_string_equal(items[i].path, want[i][1]);
        assert_string_equal(items[i].function, want[i][2]);
    }
    free(items);
    routes_table_free(t);
}

/* 160 functions with 63 routes each: 10,080 routes, every one found. */
static void test_ten_thousand(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    char doc[64 * 80], fn[32], path[64];
    for (int f = 0; f < 160; f++) {
        snprintf(doc, sizeof doc, "[");
        for (int r = 0; r < 63; r++)
            snprintf(doc + strlen(doc), sizeof doc - strlen(doc),
                     "%s{\"method\": \"GET\", \"path\": \"/t%d/r%d/{id}\"}", r ? "," : "", f, r);
        snprintf(doc + strlen(doc), sizeof doc - strlen(doc), "]");
        snprintf(fn, sizeof fn, "fn%d", f);
        set_ok(t, fn, doc);
    }
    assert_int_equal(routes_count(t), 160 * 63);
    for (int f = 0; f < 160; f++)
        for (int r = 0; r < 63; r += 7) {
            char res[64];
            snprintf(fn, sizeof fn, "fn%d", f);
            snprintf(path, sizeof path, "/t%d/r%d/42", f, r);
            snprintf(res, sizeof res, "/t%d/r%d/{id}", f, r);
            expect(t, "GET", path, fn, res, "{\"id\": \"42\"}");
        }
    expect_none(t, "GET", "/t160/r0/1");
    routes_item *items;
    size_t n;
    assert_int_equal(routes_list(t, &items, &n), 0);
    assert_int_equal(n, 160 * 63);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(items[i - 1].path, items[i].path) <= 0);
    free(items);
    for (int f = 0; f < 160; f += 2) {
        snprintf(fn, sizeof fn, "fn%d", f);
        routes_remove_function(t, fn);
    }
    assert_int_equal(routes_count(t), 80 * 63);
    expect_none(t, "GET", "/t0/r0/1");
    expect(t, "GET", "/t1/r0/1", "fn1", "/t1/r0/{id}", "{\"id\": \"1\"}");
    routes_table_free(t);
}

/* A set (a stack apply): a route may move between functions of the set;
 * a collision inside the set or with a function outside it changes
 * nothing and names the failing function's index. */
static void test_sets(void **state)
{
    (void)state;
    routes_table *t = routes_table_new();
    set_ok(t, "a", "[{\"method\": \"GET\", \"path\": \"/x\"}]");
    set_ok(t, "b", "[{\"method\": \"GET\", \"path\": \"/y\"}]");
    set_ok(t, "out", "[{\"method\": \"GET\", \"path\": \"/z\"}]");
    const char *fns[] = {"a", "b"};
    json_t *swap[] = {list("[{\"method\": \"GET\", \"path\": \"/y\"}]"),
                      list("[{\"method\": \"GET\", \"path\": \"/x\"}]")};
    routes_set *s;
    size_t bad;
    char err[400];
    assert_int_equal(
        routes_prepare_set(t, fns, (const json_t *const *)swap, 2, &s, &bad, err, sizeof err), 0);
    routes_commit_set(t, s);
    expect(t, "GET", "/x", "b", "/x", NULL);
    expect(t, "GET", "/y", "a", "/y", NULL);
    json_t *inside[] = {list("[{\"method\": \"ANY\", \"path\": \"/w\"}]"),
                        list("[{\"method\": \"GET\", \"path\": \"/w\"}]")};
    assert_int_equal(
        routes_prepare_set(t, fns, (const json_t *const *)inside, 2, &s, &bad, err, sizeof err),
        -EEXIST);
    assert_int_equal(bad, 1);
    json_t *outside[] = {list("[]"), list("[{\"method\": \"GET\", \"path\": \"/z\"}]")};
    assert_int_equal(
        routes_prepare_set(t, fns, (const json_t *const *)outside, 2, &s, &bad, err, sizeof err),
        -EEXIST);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(err, "'out'"));
    expect(t, "GET", "/x", "b", "/x", NULL);
    expect(t, "GET", "/y", "a", "/y", NULL);
    expect(t, "GET", "/z", "out", "/z", NULL);
    assert_int_equal(routes_count(t), 3);
    for (int i = 0; i < 2; i++) {
        json_decref(swap[i]);
        json_decref(inside[i]);
        json_decref(outside[i]);
    }
    routes_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_validate_errors),
        cmocka_unit_test(test_reserved_list_covers_the_api),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_backtracking),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_replace_and_remove),
        cmocka_unit_test(test_list_sorted),
        cmocka_unit_test(test_ten_thousand),
        cmocka_unit_test(test_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
