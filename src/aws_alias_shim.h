/*
 * aws_alias_shim.h — TEMPORARY: the alias C API of /work/contracts14.md
 * ("Versions and aliases"), declared here only until the versions branch
 * lands it in registry.h. Delete this file and aws_alias_shim.c at merge.
 */
#ifndef HEARTH_AWS_ALIAS_SHIM_H
#define HEARTH_AWS_ALIAS_SHIM_H

#include "registry.h"

#define FN_ALIAS_MAX       63
#define FN_ALIAS_EXTRA_MAX 4
typedef struct fn_alias {
    char function[FN_NAME_MAX + 1];
    char name[FN_ALIAS_MAX + 1];
    int64_t version;
    unsigned nextra;
    int64_t extra_version[FN_ALIAS_EXTRA_MAX];
    double extra_weight[FN_ALIAS_EXTRA_MAX];
    int64_t created_ms, updated_ms;
} fn_alias;
int registry_alias_put(registry *reg, fn_alias *a);
int registry_alias_get(registry *reg, const char *fn, const char *alias, fn_alias *out);
int registry_alias_delete(registry *reg, const char *fn, const char *alias);
typedef int (*registry_alias_fn)(const fn_alias *a, void *ud);
int registry_alias_list(registry *reg, const char *fn, registry_alias_fn visit, void *ud);

#endif
