/*
 * aws_alias_shim.c — TEMPORARY: a memory-only stand-in for the versions
 * branch's registry alias API, so the AWS API builds and runs before that
 * branch lands. Not durable, one process only. Delete at merge.
 */
#include "aws_alias_shim.h"

#include <errno.h>
#include <string.h>

#include "timefmt.h"

static fn_alias table[32];
static unsigned used;

static fn_alias *find(const char *fn, const char *alias)
{
    for (unsigned i = 0; i < used; i++)
        if (strcmp(table[i].function, fn) == 0 && strcmp(table[i].name, alias) == 0)
            return &table[i];
    return NULL;
}

int registry_alias_put(registry *reg, fn_alias *a)
{
    fn_config cfg;
    if (registry_get_version(reg, a->function, a->version, &cfg) < 0)
        return -ENOENT;
    fn_config_release(&cfg);
    fn_alias *slot = find(a->function, a->name);
    if (!slot && used == sizeof table / sizeof *table)
        return -EIO;
    int64_t now = timefmt_now_ms();
    a->created_ms = slot ? slot->created_ms : now;
    a->updated_ms = now;
    *(slot ? slot : &table[used++]) = *a;
    return 0;
}

int registry_alias_get(registry *reg, const char *fn, const char *alias, fn_alias *out)
{
    (void)reg;
    const fn_alias *a = find(fn, alias);
    if (!a)
        return -ENOENT;
    *out = *a;
    return 0;
}

int registry_alias_delete(registry *reg, const char *fn, const char *alias)
{
    (void)reg;
    fn_alias *a = find(fn, alias);
    if (!a)
        return -ENOENT;
    *a = table[--used];
    return 0;
}

int registry_alias_list(registry *reg, const char *fn, registry_alias_fn visit, void *ud)
{
    (void)reg;
    for (unsigned i = 0; i < used; i++)
        if (strcmp(table[i].function, fn) == 0 && visit(&table[i], ud) != 0)
            return 1;
    return 0;
}
