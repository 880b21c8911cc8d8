/*
 * fsutil.c — writing a whole buffer and removing a tree (see fsutil.h).
 *
 * Owns: nothing but the two loops. Must never: follow a symlink while
 * removing (a function's package may hold links pointing anywhere).
 */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fsutil_write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Deletes everything below the directory `fd` (consumed), holding one
 * directory fd at a time: it descends into a non-empty subdirectory and climbs
 * back with "..", which is safe because the walk never crosses a symlink
 * (unlinkat removes links themselves). Depth is therefore not limited by fds.
 */
static int empty_dir(int fd)
{
    size_t depth = 0;
    for (;;) {
        DIR *d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            return -e;
        }
        bool removed, descended = false;
        do {
            removed = false;
            struct dirent *de;
            while (!descended && (errno = 0, de = readdir(d)) != NULL) {
                const char *n = de->d_name;
                if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                    continue;
                if (unlinkat(dirfd(d), n, 0) == 0 || ((errno == EISDIR || errno == EPERM) &&
                                                      unlinkat(dirfd(d), n, AT_REMOVEDIR) == 0)) {
                    removed = true;
                    continue;
                }
                if (errno != ENOTEMPTY && errno != EEXIST) {
                    int e = errno;
                    closedir(d);
                    return -e;
                }
                fd = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                    int e = errno;
                    closedir(d);
                    return -e;
                }
                descended = true;
            }
            if (!descended && errno != 0) {
                int e = errno;
                closedir(d);
                return -e;
            }
            /* entries removed while reading may hide others: read again */
            if (removed && !descended)
                rewinddir(d);
        } while (removed && !descended);
        if (descended) {
            closedir(d);
            depth++;
            continue;
        }
        if (depth == 0) {
            closedir(d);
            return 0;
        }
        fd = openat(dirfd(d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        closedir(d);
        if (fd < 0)
            return -e;
        depth--;
    }
}

int fsutil_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = empty_dir(fd);
    if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}
