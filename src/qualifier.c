/*
 * qualifier.c — parses `name:qualifier` and resolves a qualifier to the
 * version one call runs. Every byte of a reference is a client's: the
 * split accepts only the function-name and alias alphabets, so nothing
 * odd reaches a log, a path or the registry.
 *
 * An alias's weighted versions are picked per call with libsodium's
 * randombytes (a real random source: callers cannot steer a canary).
 */
#include "qualifier.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "validate.h"

#define LATEST          "$LATEST"
#define VERSION_MAX_NUM 9007199254740992LL /* 2^53: what JSON numbers carry exactly */

bool qualifier_version(const char *s, int64_t *out)
{
    uint64_t v;
    if (!decimal_parse_positive(s, VERSION_MAX_NUM, &v))
        return false;
    *out = (int64_t)v;
    return true;
}

int qualifier_split(const char *ref, char name[FN_NAME_MAX + 1], char qual[FN_ALIAS_MAX + 1])
{
    name[0] = qual[0] = '\0';
    if (!ref)
        return -EINVAL;
    size_t len = strnlen(ref, FN_QUALIFIED_MAX + 1);
    if (len > FN_QUALIFIED_MAX)
        return -EINVAL;
    const char *colon = memchr(ref, ':', len);
    size_t nlen = colon ? (size_t)(colon - ref) : len;
    if (nlen == 0 || nlen > FN_NAME_MAX)
        return -EINVAL;
    memcpy(name, ref, nlen);
    name[nlen] = '\0';
    if (!validate_function_name(name)) {
        name[0] = '\0';
        return -EINVAL;
    }
    if (!colon)
        return 0;
    size_t qlen = len - nlen - 1;
    int64_t v;
    if (qlen == 0 || qlen > FN_ALIAS_MAX)
        goto bad;
    memcpy(qual, colon + 1, qlen);
    qual[qlen] = '\0';
    if (strcmp(qual, LATEST) == 0 || qualifier_version(qual, &v) || registry_alias_name_valid(qual))
        return 0;
bad:
    name[0] = qual[0] = '\0';
    return -EINVAL;
}

qualifier_kind qualifier_kind_of(const char *qual, int64_t *version)
{
    *version = 0;
    if (!qual[0] || strcmp(qual, LATEST) == 0)
        return QUAL_CURRENT;
    if (qualifier_version(qual, version))
        return QUAL_VERSION;
    return QUAL_ALIAS;
}

int64_t qualifier_pick(const fn_alias *a, double u)
{
    double edge = 0;
    for (unsigned i = 0; i < a->nextra; i++) {
        edge += a->extra_weight[i];
        if (u < edge)
            return a->extra_version[i];
    }
    return a->version;
}

int qualifier_resolve(registry *reg, const char *name, const char *qual, int64_t *version)
{
    qualifier_kind k = qualifier_kind_of(qual, version);
    if (k != QUAL_ALIAS)
        return 0;
    fn_alias a;
    int rc = registry_alias_get(reg, name, qual, &a);
    if (rc < 0)
        return rc;
    /* 2^32 steps are finer than any weight a client can send matters. */
    double u = a.nextra ? (double)randombytes_random() / 4294967296.0 : 0;
    *version = qualifier_pick(&a, u);
    return 0;
}
