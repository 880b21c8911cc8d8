/*
 * qualifier.h — Lambda's qualified function references, `name`,
 * `name:3`, `name:prod` or `name:$LATEST`, and what one resolves to: the
 * version a call runs, an alias's weighted choice made per call.
 */
#ifndef HEARTH_QUALIFIER_H
#define HEARTH_QUALIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

/* The longest qualified reference: name ':' qualifier. */
#define FN_QUALIFIED_MAX (FN_NAME_MAX + 1 + FN_ALIAS_MAX)

/* A version number as text: decimal digits, no sign, no leading zero, at
 * most 2^53 (what a JSON number carries exactly). Returns true and sets
 * *out, or false. */
bool qualifier_version(const char *s, int64_t *out);

/* Splits `ref` at its one ':' into name and qualifier ("" when none).
 * Returns 0, or -EINVAL when the name is not a valid function name or the
 * qualifier is not a version number (1 to 2^53), an alias name or $LATEST. */
int qualifier_split(const char *ref, char name[FN_NAME_MAX + 1], char qual[FN_ALIAS_MAX + 1]);

/* What a qualifier addresses. */
typedef enum qualifier_kind {
    QUAL_CURRENT, /* "" or $LATEST */
    QUAL_VERSION, /* a number */
    QUAL_ALIAS,   /* an alias name */
} qualifier_kind;

/* The kind of a qualifier qualifier_split accepted; *version for a number. */
qualifier_kind qualifier_kind_of(const char *qual, int64_t *version);

/* The version a call of `name` with `qual` runs: 0 for the current one, a
 * number as given, an alias's version or one of its weighted versions
 * picked at random by their weights. Returns 0, -ENOENT for an unknown
 * alias (the caller checks the function and numbered versions), -EIO. */
int qualifier_resolve(registry *reg, const char *name, const char *qual, int64_t *version);

/* An alias's pick for one call: `u` uniform in [0, 1). Exposed for tests. */
int64_t qualifier_pick(const fn_alias *a, double u);

#endif
