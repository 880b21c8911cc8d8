/*
 * strmap.h — a string-keyed hash map (open addressing, linear probing).
 * Keys are copied; values are borrowed pointers the caller owns.
 */
#ifndef HEARTH_STRMAP_H
#define HEARTH_STRMAP_H

#include <stddef.h>

typedef struct strmap {
    struct strmap_slot *slots;
    size_t cap;   /* power of two, or 0 */
    size_t count; /* live entries */
    size_t used;  /* live + deleted markers */
} strmap;

void strmap_init(strmap *m);
/* Frees the table and keys, not the values. */
void strmap_release(strmap *m);

void *strmap_get(const strmap *m, const char *key);
/* Inserts or replaces. Returns 0 or -ENOMEM. */
int strmap_put(strmap *m, const char *key, void *value);
/* Removes and returns the value, or NULL. */
void *strmap_remove(strmap *m, const char *key);

typedef int (*strmap_visit_fn)(const char *key, void *value, void *ud);
/* Visits every entry in no particular order; stops on non-zero. The map
 * must not be changed during the visit. */
int strmap_each(const strmap *m, strmap_visit_fn fn, void *ud);

#endif
