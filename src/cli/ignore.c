/*
 * ignore.c — .hearthignore rules (see ignore.h), matched with fnmatch(3).
 *
 * Owns: parsing rule lines, deciding one path.
 * Must never: read anything but the one file it is given.
 */
#include "ignore.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ignore_add(ignore *ig, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* trailing spaces are dropped unless escaped */
    while (n && line[n - 1] == ' ' && !(n >= 2 && line[n - 2] == '\\'))
        n--;
    if (n == 0 || line[0] == '#')
        return 0;
    ignore_rule r = {0};
    const char *p = line;
    if (*p == '!') {
        r.negate = true;
        p++;
        n--;
    } else if (*p == '\\' && (p[1] == '#' || p[1] == '!')) {
        p++;
        n--;
    }
    if (n && p[n - 1] == '/') {
        r.dir_only = true;
        n--;
    }
    if (n && *p == '/') {
        r.anchored = true;
        p++;
        n--;
    }
    if (n == 0)
        return 0;
    if (memchr(p, '/', n))
        r.anchored = true;
    r.pat = strndup(p, n);
    if (!r.pat)
        return -ENOMEM;
    ignore_rule *rules = realloc(ig->rules, (ig->n + 1) * sizeof(*rules));
    if (!rules) {
        free(r.pat);
        return -ENOMEM;
    }
    ig->rules = rules;
    ig->rules[ig->n++] = r;
    return 0;
}

int ignore_load(ignore *ig, const char *path)
{
    ig->rules = NULL;
    ig->n = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[4096];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f))
        rc = ignore_add(ig, line);
    fclose(f);
    return rc;
}

static bool rule_matches(const ignore_rule *r, const char *rel)
{
    if (!r->anchored) {
        const char *base = strrchr(rel, '/');
        base = base ? base + 1 : rel;
        return fnmatch(r->pat, base, 0) == 0;
    }
    if (strstr(r->pat, "**")) {
        /* `**` crosses '/': without FNM_PATHNAME '*' does too, and a
         * leading "**" + "/" also matches at the top. */
        if (fnmatch(r->pat, rel, 0) == 0)
            return true;
        return strncmp(r->pat, "**/", 3) == 0 && fnmatch(r->pat + 3, rel, 0) == 0;
    }
    return fnmatch(r->pat, rel, FNM_PATHNAME) == 0;
}

bool ignore_match(const ignore *ig, const char *rel, bool is_dir)
{
    bool out = false;
    for (size_t i = 0; i < ig->n; i++) {
        const ignore_rule *r = &ig->rules[i];
        if (r->dir_only && !is_dir)
            continue;
        if (rule_matches(r, rel))
            out = !r->negate;
    }
    return out;
}

void ignore_release(ignore *ig)
{
    for (size_t i = 0; i < ig->n; i++)
        free(ig->rules[i].pat);
    free(ig->rules);
    ig->rules = NULL;
    ig->n = 0;
}
