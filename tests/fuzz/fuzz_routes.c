/*
 * fuzz_routes.c — route matching: functions' "routes" settings and the
 * request paths looked up in them (src/events/routes.c). Input: a JSON
 * array whose i-th element is function fi's routes (as a deploy gives
 * them), then lines "METHOD /path" looked up in the table those routes
 * made. Each list goes through routes_validate, then routes_prepare
 * (collisions with the other functions) and routes_commit; a lookup's
 * answer must name a function of the table, and the listing must hold
 * what was committed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/routes.h"
#include "safetext.h"

#define FUNCTIONS 4

static const char *const names[FUNCTIONS] = {"f0", "f1", "f2", "f3"};

static bool known_function(const char *f)
{
    for (size_t i = 0; i < FUNCTIONS; i++)
        if (strcmp(f, names[i]) == 0)
            return true;
    return false;
}

/* "METHOD /a/b": segments as api.c hands them over (no '/', no NUL, UTF-8). */
static void look_up(const routes_table *t, char *line)
{
    char *path = strchr(line, ' ');
    if (!path)
        return;
    *path++ = '\0';
    if (path[0] != '/' || !safetext_is_utf8(path, strlen(path)))
        return;
    const char *segs[ROUTES_REQ_SEGMENTS];
    size_t n = 0;
    for (char *p = path + 1, *save = NULL, *s = strtok_r(p, "/", &save); s;
         s = strtok_r(NULL, "/", &save)) {
        if (n == ROUTES_REQ_SEGMENTS)
            return;
        segs[n++] = s;
    }
    routes_match m;
    memset(&m, 0, sizeof m);
    int rc = routes_lookup(t, line, segs, n, &m);
    if (rc == ROUTES_FOUND && (!m.function || !known_function(m.function)))
        abort();
    json_decref(m.params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    json_error_t jerr;
    json_t *lists = json_loadb((const char *)data, size, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!json_is_array(lists)) {
        json_decref(lists);
        return 0;
    }
    routes_table *t = routes_table_new();
    if (!t)
        abort();
    char err[512];
    for (size_t i = 0; i < json_array_size(lists) && i < FUNCTIONS; i++) {
        json_t *routes = json_array_get(lists, i);
        int valid = routes_validate(routes, err, sizeof err);
        routes_change *c = NULL;
        int rc = routes_prepare(t, names[i], routes, &c, err, sizeof err);
        if (rc == 0 && valid < 0)
            abort(); /* the table took a list validation refused */
        if (rc == 0)
            routes_commit(t, c);
    }
    size_t used = (size_t)jerr.position;
    if (used < size) {
        char *rest = malloc(size - used + 1);
        if (!rest)
            abort();
        memcpy(rest, data + used, size - used);
        rest[size - used] = '\0';
        for (char *save = NULL, *line = strtok_r(rest, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            look_up(t, line);
        free(rest);
    }
    routes_item *items;
    size_t n;
    if (routes_list(t, &items, &n) == 0) {
        if (n != routes_count(t))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!known_function(items[i].function))
                abort();
        free(items);
    }
    for (size_t i = 0; i < FUNCTIONS; i++)
        routes_remove_function(t, names[i]);
    if (routes_count(t) != 0)
        abort();
    routes_table_free(t);
    json_decref(lists);
    return 0;
}
