/*
 * pack.h — a function's directory as a .tar.gz in memory, honouring its
 * .hearthignore (ignore.h), with files in name order and owners zeroed, so
 * the same tree packs the same way.
 */
#ifndef HEARTH_CLI_PACK_H
#define HEARTH_CLI_PACK_H

#include "buf.h"

#define PACK_MAX (50u << 20) /* the daemon's limit for a compressed package */

/* Packs `dir` into out (initialised here; the caller releases it). Returns
 * 0, or -1 with the reason printed. */
int pack_dir(const char *dir, buf *out);

/* Base64 of data (the caller frees it), or NULL when out of memory. */
char *pack_base64(const char *data, size_t len);

#endif
