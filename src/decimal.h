/*
 * decimal.h — the one parser of whole decimal numbers that someone else
 * wrote (a query parameter, a qualifier, a JSON key, a file name): digits
 * only, no sign, no space, no '+', no overflow. Pure; no allocation.
 */
#ifndef HEARTH_DECIMAL_H
#define HEARTH_DECIMAL_H

#include <stdbool.h>
#include <stdint.h>

/* Parses `s` (NUL-terminated, may be NULL) as 1..n decimal digits with a
 * value no larger than `max`. Returns true and sets *out, or false and
 * leaves *out alone (NULL, "", any other byte, or over max). */
bool decimal_parse(const char *s, uint64_t max, uint64_t *out);

/* The same, with no leading zero ("0" itself refused): a version number,
 * where "007" must not name version 7. */
bool decimal_parse_positive(const char *s, uint64_t max, uint64_t *out);

#endif
