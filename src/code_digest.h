/*
 * code_digest.h — the content digest of a function's unpacked code, so
 * that the same files give the same digest however they were packed (a
 * .tar.gz, a .zip, a files map) and a stack apply can tell an unchanged
 * function from a changed one without comparing archives.
 */
#ifndef HEARTH_CODE_DIGEST_H
#define HEARTH_CODE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* "sha256:" + 64 lowercase hex digits + NUL */
#define CODE_DIGEST_LEN 72

/*
 * Digests the tree under `dir` (not `dir` itself): every entry in a walk
 * sorted bytewise by relative path, each as its type, its permission bits
 * (mode & 07777), its size and its bytes (a symlink: its target). Symlinks
 * are never followed; an entry that is not a file, directory or symlink
 * is -EINVAL (package.c never writes one). Blocks on the disk: call it
 * off the loop. Returns 0 with `out` filled and *bytes (when not NULL) the
 * total size of the files, or a negative errno.
 */
int code_digest_tree(const char *dir, char out[CODE_DIGEST_LEN], uint64_t *bytes);

#endif
