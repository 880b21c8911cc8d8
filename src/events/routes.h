/*
 * routes.h — HTTP routes: a function's "routes" setting, and the one table
 * of every function's routes that the API looks requests up in.
 *
 * A route is a method and a path template: literal segments, `{param}`
 * segments, and at most one greedy `{name+}` as the last segment. The
 * table is a trie keyed by path segment, so a lookup walks the request's
 * segments and never the list of routes. The table belongs to the loop
 * thread; nothing in it locks.
 */
#ifndef HEARTH_EVENTS_ROUTES_H
#define HEARTH_EVENTS_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "registry.h"

#define ROUTES_MAX          64   /* routes of one function */
#define ROUTES_PATH_MAX     256  /* bytes of one path template */
#define ROUTES_SEGMENTS_MAX 32   /* segments of one path template */
#define ROUTES_REQ_PATH_MAX 4096 /* bytes of a request path looked up (as sent) */
#define ROUTES_REQ_SEGMENTS 128  /* segments of a request path looked up */

/* The methods a route may name, in the order of their bit in a mask;
 * ROUTES_ANY matches every method, those outside the list included. */
enum routes_method {
    ROUTES_GET,
    ROUTES_POST,
    ROUTES_PUT,
    ROUTES_PATCH,
    ROUTES_DELETE,
    ROUTES_HEAD,
    ROUTES_OPTIONS,
    ROUTES_ANY,
    ROUTES_METHODS
};

/* The method's name ("GET", ..., "ANY"). */
const char *routes_method_name(enum routes_method m);

/* The one list of top-level path segments Hearth serves itself (v1, fn,
 * healthz, metrics). True when the `len` bytes of `seg` (one segment,
 * percent-decoded, without slashes) are one of them, in any letter case.
 * No route may start with one, and a request under one never reaches the
 * route table. api.c checks its own table against this list
 * (api_route_outside_reserved). */
bool routes_is_reserved(const char *seg, size_t len);

/* The reserved segments as text for messages: "/v1/, /fn/, /healthz, /metrics, /ui/". */
const char *routes_reserved_text(void);

/* Checks a "routes" setting: a JSON array of at most ROUTES_MAX objects
 * {"method": "...", "path": "/..."} whose templates are well formed, outside
 * the reserved prefixes, and do not collide with each other. Returns 0, or
 * -EINVAL with a sentence in `err` naming the item ("routes[2].path: ...");
 * `err` may be NULL. */
int routes_validate(const json_t *v, char *err, size_t errlen);

typedef struct routes_table routes_table;

/* A new, empty table; NULL when out of memory. */
routes_table *routes_table_new(void);
void routes_table_free(routes_table *t); /* accepts NULL */

/* Replacing one function's routes is two steps so that it can sit around
 * another commit (the registry's): routes_prepare checks the new list
 * against every OTHER function's routes and allocates all it needs;
 * routes_commit then swaps the function's routes in without failing, or
 * routes_abort drops the change. Nothing may change the table between the
 * two steps (the loop thread does both in one turn).
 *
 * `routes` is a list routes_validate accepted, or NULL/empty for none.
 * Returns 0 with *out set; -EEXIST when a route collides with another
 * function's (err names both routes and the other function); -EINVAL for
 * a list that does not validate; -ENOMEM. On error the table is unchanged. */
typedef struct routes_change routes_change;
int routes_prepare(routes_table *t, const char *function, const json_t *routes, routes_change **out,
                   char *err, size_t errlen);
void routes_commit(routes_table *t, routes_change *c);
void routes_abort(routes_table *t, routes_change *c);

/* The same for several functions at once (a stack apply): each list is
 * checked against the routes of every function OUTSIDE the set, and the
 * lists against each other; routes_commit_set then swaps all of them in
 * together (every old route of the set out before any new one goes in, so
 * a route may move between functions of the set), or routes_abort_set
 * drops them all. A NULL/empty list removes the function's routes.
 * Function names must be distinct. On error *bad is the index of the
 * function whose list failed, with the same codes as routes_prepare. */
typedef struct routes_set routes_set;
int routes_prepare_set(routes_table *t, const char *const *functions, const json_t *const *lists,
                       size_t n, routes_set **out, size_t *bad, char *err, size_t errlen);
void routes_commit_set(routes_table *t, routes_set *s);
void routes_abort_set(routes_table *t, routes_set *s);

/* Removes every route of `function` (none is fine). Never fails. */
void routes_remove_function(routes_table *t, const char *function);

/* Fills the table from the current version of every function in `reg`.
 * A function whose routes collide with an earlier one's is logged and left
 * without routes. Returns 0 or a negative errno. */
int routes_load(routes_table *t, registry *reg);

/* Number of routes in the table. */
size_t routes_count(const routes_table *t);

/* What a lookup found. `function` and `resource` (the template) are
 * borrowed from the table: valid until it next changes. `params` is a new
 * object of parameter name -> decoded value (NULL when the route has none);
 * the caller decrefs it. `allowed` is the mask (1 << method) of the
 * methods some route takes on this path, set when the answer is
 * ROUTES_NO_METHOD. */
typedef struct routes_match {
    const char *function;
    const char *qualifier; /* the route's "qualifier" ("" = the current version) */
    const char *resource;
    json_t *params;
    unsigned allowed;
} routes_match;

#define ROUTES_FOUND     0
#define ROUTES_NO_METHOD 1 /* the path has routes, none for this method */

/* Looks up a request: `method` as sent, and its path as `n` segments,
 * already percent-decoded, NUL-terminated, each valid UTF-8 without '/' or
 * NUL (api.c checks that). The path "/" is zero segments. The most
 * specific route wins: at each segment a literal before a parameter before
 * a greedy `{name+}`, backing up when a branch finds nothing deeper; at the
 * end an exact method before ANY. Returns ROUTES_FOUND, ROUTES_NO_METHOD,
 * -ENOENT (no route has this path) or -ENOMEM. */
int routes_lookup(const routes_table *t, const char *method, const char *const *segs, size_t n,
                  routes_match *m);

/* One route of the table, for listing. Borrowed from the table. */
typedef struct routes_item {
    enum routes_method method;
    const char *path;
    const char *function;
    const char *qualifier; /* "" when none */
} routes_item;

/* Every route, sorted by path, then method name, into a malloc'd array the
 * caller frees (*out is NULL when the table is empty). Returns 0 or
 * -ENOMEM. */
int routes_list(const routes_table *t, routes_item **out, size_t *n);

#endif
