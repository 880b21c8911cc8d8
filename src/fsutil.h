/*
 * fsutil.h — the two file-system helpers every store needs: writing a
 * whole buffer, and removing a tree without following links. One home,
 * used by the code store, the log store, secrets and the daemon's start.
 */
#ifndef HEARTH_FSUTIL_H
#define HEARTH_FSUTIL_H

#include <stddef.h>

/* Writes all `n` bytes of `p` to `fd`, again after EINTR and short
 * writes. Returns 0, or a negative errno (-EIO when write returns 0);
 * what was written before an error stays written. */
int fsutil_write_all(int fd, const void *p, size_t n);

/* Removes `path` and everything below it without following symlinks,
 * holding one directory fd at a time (depth is not limited by fds).
 * Returns 0 or a negative errno; a missing path is 0. */
int fsutil_remove_tree(const char *path);

#endif
