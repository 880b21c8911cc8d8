/*
 * bench/routes_cost.c — what one route lookup costs, alone, with 1, 100
 * and 10,000 routes in the table (in the same run): routes_lookup() on
 * paths that hit a route with a parameter, on paths that hit a greedy
 * route after backing up, and on paths no route has. The tables are what
 * a deploy builds (routes_prepare + routes_commit, at most 64 routes per
 * function); the looked-up paths are already split and decoded, as api.c
 * hands them over. Run by bench/routes_cost.sh.
 *
 * Usage: routes_cost [N]   (default 2000000 lookups per case)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/routes.h"

#define PER_FN 63

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Route r of function f: shapes an API has (collections, items, actions,
 * a file tree), spread over 160 services. */
static void route_path(int f, int r, char *out, size_t cap)
{
    switch (r % 4) {
    case 0:
        snprintf(out, cap, "/svc%d/r%d/{id}", f, r);
        break;
    case 1:
        snprintf(out, cap, "/svc%d/r%d", f, r);
        break;
    case 2:
        snprintf(out, cap, "/svc%d/r%d/{id}/items/{item}", f, r);
        break;
    default:
        snprintf(out, cap, "/svc%d/r%d/{path+}", f, r);
        break;
    }
}

/* A table of `total` routes over ceil(total / PER_FN) functions. */
static routes_table *build(int total)
{
    routes_table *t = routes_table_new();
    for (int f = 0; t && f * PER_FN < total; f++) {
        json_t *list = json_array();
        for (int r = 0; r < PER_FN && f * PER_FN + r < total; r++) {
            char path[96];
            route_path(f, r, path, sizeof path);
            json_array_append_new(list, json_pack("{s:s,s:s}", "method", "GET", "path", path));
        }
        char name[32], err[400];
        snprintf(name, sizeof name, "fn%d", f);
        routes_change *c;
        if (routes_prepare(t, name, list, &c, err, sizeof err) < 0) {
            fprintf(stderr, "routes_cost: %s\n", err);
            exit(2);
        }
        routes_commit(t, c);
        json_decref(list);
    }
    return t;
}

typedef struct req {
    const char *segs[8];
    size_t n;
    char text[128];
} req;

/* Splits "/a/b" into r (the text is kept in r). */
static void req_of(req *r, const char *path)
{
    snprintf(r->text, sizeof r->text, "%s", path + 1);
    r->n = 0;
    for (char *p = r->text; *p;) {
        r->segs[r->n++] = p;
        char *s = strchr(p, '/');
        if (!s)
            break;
        *s = '\0';
        p = s + 1;
    }
}

#define NREQ 256

/* ns per lookup over NREQ requests, each `want` (ROUTES_FOUND or -ENOENT). */
static double per_lookup(routes_table *t, req *reqs, long n, int want)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        routes_match m;
        int rc = routes_lookup(t, "GET", reqs[i % NREQ].segs, reqs[i % NREQ].n, &m);
        if (rc != want) {
            fprintf(stderr, "routes_cost: lookup %ld gave %d, not %d\n", i, rc, want);
            exit(1);
        }
        json_decref(m.params);
    }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    static const int sizes[] = {1, 100, 10000};
    static req hit[NREQ], greedy[NREQ], miss[NREQ];
    printf("route lookup alone (routes_lookup, %ld lookups per case, decoded segments in)\n", n);
    printf("%-8s %10s %14s %14s %14s\n", "routes", "functions", "param hit ns", "greedy ns",
           "miss ns");
    double first = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int total = sizes[k];
        routes_table *t = build(total);
        /* Requests spread over the table's functions and routes: hits on a
         * route with a parameter (r % 4 == 0), greedy hits (r % 4 == 3,
         * after the literal branch found nothing deeper; the 1-route table
         * has none and repeats the parameter hit), and misses. */
        int nfn = (total + PER_FN - 1) / PER_FN;
        for (int i = 0; i < NREQ; i++) {
            int f = i % nfn;
            int in_fn = total - f * PER_FN < PER_FN ? total - f * PER_FN : PER_FN;
            int nparam = (in_fn + 3) / 4, ngreedy = in_fn / 4; /* r % 4 == 0, == 3 */
            char path[96];
            snprintf(path, sizeof path, "/svc%d/r%d/%d", f, 4 * (i % nparam), i);
            req_of(&hit[i], path);
            if (ngreedy)
                snprintf(path, sizeof path, "/svc%d/r%d/a/b/c%d", f, 3 + 4 * (i % ngreedy), i);
            else
                snprintf(path, sizeof path, "/svc%d/r0/%d", f, i); /* no greedy in the table */
            req_of(&greedy[i], path);
            snprintf(path, sizeof path, "/svc%d/nope%d/x", f, i);
            req_of(&miss[i], path);
        }
        double h = per_lookup(t, hit, n, ROUTES_FOUND);
        double g = per_lookup(t, greedy, n, ROUTES_FOUND);
        double m = per_lookup(t, miss, n, -ENOENT);
        if (k == 0)
            first = h;
        printf("%-8zu %10d %14.1f %14.1f %14.1f   (hit: %.2fx the 1-route table)\n",
               routes_count(t), (total + PER_FN - 1) / PER_FN, h, g, m, h / first);
        routes_table_free(t);
    }
    return 0;
}
