/*
 * package.c — turns an uploaded package (a files map, or a .tar.gz/.tar/.zip
 * held in memory) into a directory tree, and copies an installed one
 * (fsutil_remove_tree removes them).
 *
 * The package comes from a stranger, and the tree it makes is later
 * bind-mounted into a sandbox and read by the root spawner's children; even
 * as the unprivileged daemon (hearthd runs as --user, nobody by default,
 * with a root spawner beside it) a write outside dest_dir could replace
 * another function's code or the daemon's own data. So this file must
 * never create, write or link anything outside dest_dir. It never uses
 * archive_write_disk and never resolves a path through the kernel in one go:
 * every path is validated here, then walked one component at a time from an
 * O_DIRECTORY fd with O_NOFOLLOW, so a symlink placed by an earlier entry can
 * never steer a later one. Sizes in headers are hints only; the byte limit is
 * enforced on the data as it is decompressed.
 */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "fsutil.h"

#define PKG_PATH_MAX   4096 /* bytes in a package-relative path or link target */
#define PKG_NAME_MAX   255  /* bytes in one path component */
#define PKG_COPY_CHUNK (64 * 1024)
#define PKG_SHOW_MAX   100 /* bytes of a hostile path quoted in a message */

/* One unpack or write in progress: the tree's root and what it has used. */
typedef struct pkg_ctx {
    int root; /* O_DIRECTORY fd of dest_dir */
    package_limits lim;
    size_t bytes;   /* regular-file bytes written (or decompressed to skip) */
    size_t entries; /* entries seen plus directories created implicitly */
    size_t files;   /* regular files and hard links created */
    char *err;
    size_t errlen;
} pkg_ctx;

void package_limits_default(package_limits *lim)
{
    lim->max_unpacked = PACKAGE_MAX_UNPACKED;
    lim->max_entries = PACKAGE_MAX_ENTRIES;
}

static void pkg_set_err(pkg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void pkg_set_err(pkg_ctx *c, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    /* quoted names are hostile bytes: keep the message printable ASCII so it
     * is always valid UTF-8 for the JSON error body */
    for (char *p = c->err; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

/* Copies a client-supplied path into `out` for quoting in a message: quotes
 * become '?' and long paths are cut with "..." (pkg_set_err does the rest). */
static const char *pkg_show(const char *path, char out[PKG_SHOW_MAX + 4])
{
    size_t i = 0;
    for (; path[i] && i < PKG_SHOW_MAX; i++)
        out[i] = path[i] == '\'' ? '?' : path[i];
    if (path[i])
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

/* Sets a refusal naming `path` and returns -EINVAL. */
static int pkg_refuse(pkg_ctx *c, const char *path, const char *why)
{
    char shown[PKG_SHOW_MAX + 4];
    pkg_set_err(c, "package entry '%s' %s", pkg_show(path, shown), why);
    return -EINVAL;
}

/* Sets a local-failure message for `path` and returns -err (never 0). */
static int pkg_local(pkg_ctx *c, const char *path, const char *what, int err)
{
    char shown[PKG_SHOW_MAX + 4];
    if (err == 0)
        err = EIO;
    pkg_set_err(c, "cannot %s '%s': %s", what, pkg_show(path, shown), strerror(err));
    return -err;
}

/*
 * Normalises a client path into `out` (PKG_PATH_MAX + 1 bytes): strips any
 * leading "./" and trailing "/", then requires a relative path whose
 * components are non-empty, not "." or "..", and at most PKG_NAME_MAX bytes.
 * The package root itself normalises to "". Returns 0 or -EINVAL with `err`.
 */
static int pkg_normalise(pkg_ctx *c, const char *in, size_t inlen, char *out)
{
    if (inlen > PKG_PATH_MAX)
        return pkg_refuse(c, in, "has a path longer than 4096 bytes");
    if (memchr(in, '\0', inlen))
        return pkg_refuse(c, in, "has a NUL byte in its path");
    if (in[0] == '/')
        return pkg_refuse(c, in, "is an absolute path");
    const char *p = in, *end = in + inlen;
    while (end - p >= 2 && p[0] == '.' && p[1] == '/')
        p += 2;
    while (end > p && end[-1] == '/')
        end--;
    if (end - p == 1 && p[0] == '.')
        p = end;
    size_t n = (size_t)(end - p);
    memcpy(out, p, n);
    out[n] = '\0';
    for (const char *s = out; n > 0;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.'))
            return pkg_refuse(c, in, "has an empty or '.' path component");
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return pkg_refuse(c, in, "leaves the package");
        if (len > PKG_NAME_MAX)
            return pkg_refuse(c, in, "has a path component longer than 255 bytes");
        if (!slash)
            break;
        s = slash + 1;
    }
    return 0;
}

/* Counts one more entry against the limit; -EINVAL when over it. */
static int pkg_charge_entry(pkg_ctx *c)
{
    if (++c->entries > c->lim.max_entries) {
        pkg_set_err(c, "package has more than %zu entries", c->lim.max_entries);
        return -EINVAL;
    }
    return 0;
}

/* Counts `n` more bytes against the unpacked limit; -EINVAL when over it. */
static int pkg_charge_bytes(pkg_ctx *c, uint64_t n)
{
    if (n > c->lim.max_unpacked - c->bytes) {
        pkg_set_err(c, "package unpacks to more than %zu bytes", c->lim.max_unpacked);
        return -EINVAL;
    }
    c->bytes += (size_t)n;
    return 0;
}

/* Opens the existing real directory `name` in `dirfd` without following a
 * symlink; creates it (0755) first when missing and `create` is set. */
static int pkg_open_dir(pkg_ctx *c, int dirfd, const char *name, const char *path, bool create)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dirfd, name, flags);
    if (fd < 0 && errno == ENOENT && create) {
        int rc = pkg_charge_entry(c);
        if (rc < 0)
            return rc;
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
            return pkg_local(c, path, "create directory", errno);
        fd = openat(dirfd, name, flags);
        /* mkdirat honours the umask; the sandbox's user must read code */
        if (fd >= 0 && fchmod(fd, 0755) < 0) {
            int e = errno;
            close(fd);
            return pkg_local(c, path, "set the mode of", e);
        }
    }
    if (fd >= 0)
        return fd;
    if (errno == ELOOP || errno == ENOTDIR)
        return pkg_refuse(c, path, "goes through a symlink or a file");
    if (errno == ENOENT)
        return pkg_refuse(c, path, "refers to something not in the package");
    return pkg_local(c, path, "open directory for", errno);
}

/*
 * Opens directory `rel` (normalised, non-empty) below `root` in one syscall
 * that the kernel refuses to resolve through any symlink or out of `root`.
 * Returns an fd or a negative errno; -ENOSYS (or another odd errno) where
 * openat2 is missing, and the caller then walks component by component.
 * Unit tests build with PACKAGE_TEST_NO_OPENAT2 to cover that fallback too.
 */
static int pkg_open_beneath(int root, const char *rel)
{
#if defined(SYS_openat2) && !defined(PACKAGE_TEST_NO_OPENAT2)
    struct open_how how = {
        .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, root, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
#else
    (void)root, (void)rel;
    return -ENOSYS;
#endif
}

/*
 * Finds where a walk to directory `dir` (normalised, non-empty, modified
 * temporarily) can start: the deepest existing ancestor, opened with
 * pkg_open_beneath, so deep trees cost one kernel walk per entry rather than
 * one syscall per component (a 143 KB .tar.gz of deep paths otherwise costs
 * a minute of CPU). Returns an fd and sets *done to the bytes of `dir`
 * already walked (all of it when `dir` exists), or a negative errno.
 */
static int pkg_walk_start(pkg_ctx *c, char *dir, size_t len, const char *path, bool create,
                          size_t *done)
{
    *done = 0;
    int fd = pkg_open_beneath(c->root, dir);
    if (fd >= 0) {
        *done = len;
        return fd;
    }
    if (fd == -ELOOP || fd == -ENOTDIR || fd == -EXDEV)
        return pkg_refuse(c, path, "goes through a symlink or a file");
    if (fd == -ENOENT && !create)
        return pkg_refuse(c, path, "refers to something not in the package");
    /* each probe stops in the kernel at the first missing component, and
     * each missing one is then created and charged as an entry */
    for (size_t i = len; fd == -ENOENT && i-- > 0;) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        fd = pkg_open_beneath(c->root, dir);
        dir[i] = '/';
        if (fd >= 0) {
            *done = i + 1;
            return fd;
        }
    }
    /* nothing below the root exists, or openat2 is unusable: walk it all */
    fd = fcntl(c->root, F_DUPFD_CLOEXEC, 0);
    return fd < 0 ? pkg_local(c, path, "walk to", errno) : fd;
}

/*
 * Walks `path` (normalised, non-empty) from the root up to its last
 * component, creating missing directories when `create` is set. Returns an
 * fd of the parent directory (caller closes it) and sets *leaf to the last
 * component inside `path`, or returns a negative errno with `err`.
 */
static int pkg_walk_parent(pkg_ctx *c, const char *path, bool create, const char **leaf)
{
    char dir[PKG_PATH_MAX + 1];
    const char *last = strrchr(path, '/');
    *leaf = last ? last + 1 : path;
    if (!last) {
        int fd = fcntl(c->root, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? pkg_local(c, path, "walk to", errno) : fd;
    }
    size_t len = (size_t)(last - path), done;
    memcpy(dir, path, len);
    dir[len] = '\0';
    int fd = pkg_walk_start(c, dir, len, path, create, &done);
    char comp[PKG_NAME_MAX + 1];
    for (const char *s = dir + done; fd >= 0 && s < dir + len;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        memcpy(comp, s, n);
        comp[n] = '\0';
        int next = pkg_open_dir(c, fd, comp, path, create);
        close(fd);
        fd = next;
        s += n + 1;
    }
    return fd;
}

/* Makes room for a new regular file or hard link at `leaf`: an earlier
 * regular file is replaced (tar semantics); anything else is refused. */
static int pkg_clear_for_file(pkg_ctx *c, int dirfd, const char *leaf, const char *path)
{
    struct stat st;
    if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : pkg_local(c, path, "inspect", errno);
    if (!S_ISREG(st.st_mode))
        return pkg_refuse(c, path, "would replace a directory or link");
    if (unlinkat(dirfd, leaf, 0) < 0)
        return pkg_local(c, path, "replace", errno);
    return 0;
}

/* Creates regular file `path` (normalised) for writing; returns its fd, which
 * the caller writes, then finishes with pkg_finish_file(). */
static int pkg_create_file(pkg_ctx *c, const char *path)
{
    if (path[0] == '\0')
        return pkg_refuse(c, path, "is a file with an empty name");
    const char *leaf;
    int dirfd = pkg_walk_parent(c, path, true, &leaf);
    if (dirfd < 0)
        return dirfd;
    int rc = pkg_clear_for_file(c, dirfd, leaf, path);
    if (rc == 0) {
        rc = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (rc < 0)
            rc = pkg_local(c, path, "create", errno);
    }
    close(dirfd);
    if (rc >= 0)
        c->files++;
    return rc;
}

/* Sets the final mode (explicitly, ignoring the umask) and closes `fd`. */
static int pkg_finish_file(pkg_ctx *c, int fd, mode_t mode, const char *path)
{
    int rc = fchmod(fd, mode) < 0 ? pkg_local(c, path, "set the mode of", errno) : 0;
    if (close(fd) < 0 && rc == 0)
        rc = pkg_local(c, path, "write", errno);
    return rc;
}

static int pkg_write_all(pkg_ctx *c, int fd, const void *buf, size_t n, const char *path)
{
    int rc = fsutil_write_all(fd, buf, n);
    return rc < 0 ? pkg_local(c, path, "write", -rc) : 0;
}

/* Creates directory `path` (normalised; "" is the root and a no-op). An
 * existing directory is fine; an existing file or link is refused. */
static int pkg_make_dir(pkg_ctx *c, const char *path)
{
    if (path[0] == '\0')
        return 0;
    const char *leaf;
    int dirfd = pkg_walk_parent(c, path, true, &leaf);
    if (dirfd < 0)
        return dirfd;
    int rc = 0;
    if (mkdirat(dirfd, leaf, 0755) < 0 && errno != EEXIST)
        rc = pkg_local(c, path, "create directory", errno);
    if (rc == 0) {
        int fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
            rc = pkg_refuse(c, path, "would replace a file or link with a directory");
        else if (fd < 0)
            rc = pkg_local(c, path, "open directory", errno);
        else if (fchmod(fd, 0755) < 0)
            rc = pkg_local(c, path, "set the mode of", errno);
        if (fd >= 0)
            close(fd);
    }
    close(dirfd);
    return rc;
}

/*
 * Resolves symlink `target` lexically from the directory holding `link`
 * (normalised) and writes to `out` (PKG_PATH_MAX + 1 bytes) an equivalent
 * target that climbs only with leading ".." components and then descends.
 * Writing that form, rather than the client's, matters: a target like
 * "s/../x" where s is itself a symlink would resolve differently in the
 * kernel than lexically. Returns 0 or -EINVAL when the target is absolute,
 * empty or resolves outside the package.
 */
static int pkg_link_target(pkg_ctx *c, const char *link, const char *target, char *out)
{
    size_t tlen = strlen(target);
    if (tlen == 0)
        return pkg_refuse(c, link, "is a symlink with an empty target");
    if (target[0] == '/')
        return pkg_refuse(c, link, "is a symlink to an absolute path");
    if (tlen > PKG_PATH_MAX)
        return pkg_refuse(c, link, "is a symlink with a target longer than 4096 bytes");
    size_t depth = 0; /* directories between the root and the link */
    for (const char *s = link; *s; s++)
        depth += *s == '/';
    size_t up = 0;                    /* ".." that climb above the link's directory */
    char kept[PKG_PATH_MAX + 2] = ""; /* "/a/b": components that descend */
    size_t klen = 0;
    for (const char *s = target; *s;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (klen > 0) {
                while (klen > 0 && kept[--klen] != '/')
                    ;
                kept[klen] = '\0';
            } else if (up < depth) {
                up++;
            } else {
                return pkg_refuse(c, link, "is a symlink that leaves the package");
            }
        } else if (len > PKG_NAME_MAX) {
            return pkg_refuse(c, link, "is a symlink with a target component over 255 bytes");
        } else if (len > 0 && !(len == 1 && s[0] == '.')) {
            kept[klen++] = '/';
            memcpy(kept + klen, s, len);
            klen += len;
            kept[klen] = '\0';
        }
        s += len + (slash != NULL);
    }
    size_t n = 0;
    for (size_t i = 0; i < up; i++, n += 3)
        memcpy(out + n, "../", 3);
    if (klen > 0) {
        memcpy(out + n, kept + 1, klen - 1);
        n += klen - 1;
    } else if (n > 0) {
        n--; /* drop the trailing '/' of the last "../" */
    } else {
        out[n++] = '.';
    }
    out[n] = '\0';
    if (n > PKG_PATH_MAX)
        return pkg_refuse(c, link, "is a symlink with a target longer than 4096 bytes");
    return 0;
}

static int pkg_make_symlink(pkg_ctx *c, const char *path, const char *target)
{
    char canon[PKG_PATH_MAX * 2];
    if (path[0] == '\0')
        return pkg_refuse(c, path, "is a symlink with an empty name");
    int rc = pkg_link_target(c, path, target, canon);
    if (rc < 0)
        return rc;
    const char *leaf;
    int dirfd = pkg_walk_parent(c, path, true, &leaf);
    if (dirfd < 0)
        return dirfd;
    if (symlinkat(canon, dirfd, leaf) < 0)
        rc = errno == EEXIST ? pkg_refuse(c, path, "would replace an earlier entry with a symlink")
                             : pkg_local(c, path, "create symlink", errno);
    close(dirfd);
    return rc;
}

/* Hard-links `path` to `target`, which must name a regular file this package
 * already created (dest_dir started empty, so anything there is ours). */
static int pkg_make_hardlink(pkg_ctx *c, const char *path, const char *target)
{
    char tnorm[PKG_PATH_MAX + 1];
    char shown[PKG_SHOW_MAX + 4];
    if (path[0] == '\0')
        return pkg_refuse(c, path, "is a hard link with an empty name");
    if (pkg_normalise(c, target, strlen(target), tnorm) < 0) {
        pkg_set_err(c, "hard link '%s' points outside the package", pkg_show(path, shown));
        return -EINVAL;
    }
    if (strcmp(tnorm, path) == 0)
        return pkg_refuse(c, path, "is a hard link to itself");
    const char *tleaf, *leaf;
    int tdir = tnorm[0] ? pkg_walk_parent(c, tnorm, false, &tleaf) : -EINVAL;
    if (tdir < 0) {
        pkg_set_err(c, "hard link '%s' must point to an earlier file of the package",
                    pkg_show(path, shown));
        return -EINVAL;
    }
    struct stat st;
    int rc = 0;
    if (fstatat(tdir, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
        pkg_set_err(c, "hard link '%s' must point to an earlier file of the package",
                    pkg_show(path, shown));
        rc = -EINVAL;
    }
    int dirfd = rc == 0 ? pkg_walk_parent(c, path, true, &leaf) : -1;
    if (rc == 0 && dirfd < 0)
        rc = dirfd;
    if (rc == 0)
        rc = pkg_clear_for_file(c, dirfd, leaf, path);
    /* flags 0: linkat never follows a symlink at the old path */
    if (rc == 0 && linkat(tdir, tleaf, dirfd, leaf, 0) < 0)
        rc = pkg_local(c, path, "create hard link", errno);
    if (rc == 0)
        c->files++;
    if (dirfd >= 0)
        close(dirfd);
    close(tdir);
    return rc;
}

/* Returns 0 when the directory behind `fd` has no entries, -ENOTEMPTY when it
 * has, or another negative errno. Does not consume `fd`. */
static int pkg_check_empty(pkg_ctx *c, int fd)
{
    int dup = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0)
        return pkg_local(c, ".", "open destination", errno);
    DIR *d = fdopendir(dup);
    if (!d) {
        close(dup);
        return pkg_local(c, ".", "open destination", errno);
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            pkg_set_err(c, "destination directory is not empty");
            rc = -ENOTEMPTY;
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Opens dest_dir into c->root (the caller's path is trusted) and checks it
 * is empty; fills the rest of `c`. */
static int pkg_ctx_open(pkg_ctx *c, const char *dest_dir, const package_limits *lim, char *err,
                        size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->root = -1;
    c->err = err;
    c->errlen = errlen;
    if (err && errlen > 0)
        err[0] = '\0';
    if (lim)
        c->lim = *lim;
    else
        package_limits_default(&c->lim);
    c->root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->root < 0)
        return pkg_local(c, dest_dir, "open destination", errno);
    int rc = pkg_check_empty(c, c->root);
    if (rc < 0) {
        close(c->root);
        c->root = -1;
    }
    return rc;
}

/* Returns the entry's path in UTF-8 when libarchive can give it, else raw. */
static const char *pkg_entry_path(struct archive_entry *e)
{
    const char *p = archive_entry_pathname_utf8(e);
    return p ? p : archive_entry_pathname(e);
}

static const char *pkg_entry_symlink(struct archive_entry *e)
{
    const char *p = archive_entry_symlink_utf8(e);
    return p ? p : archive_entry_symlink(e);
}

static const char *pkg_entry_hardlink(struct archive_entry *e)
{
    const char *p = archive_entry_hardlink_utf8(e);
    return p ? p : archive_entry_hardlink(e);
}

/* Streams the current entry's data into new file `path`, charging every
 * decompressed byte, so a header that understates the size cannot help. */
static int pkg_extract_file(pkg_ctx *c, struct archive *a, struct archive_entry *e,
                            const char *path, char *buf)
{
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > c->lim.max_unpacked - c->bytes) {
        pkg_set_err(c, "package unpacks to more than %zu bytes", c->lim.max_unpacked);
        return -EINVAL;
    }
    int fd = pkg_create_file(c, path);
    if (fd < 0)
        return fd;
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, PKG_COPY_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            char shown[PKG_SHOW_MAX + 4];
            pkg_set_err(c, "package entry '%s' cannot be read: %s", pkg_show(path, shown),
                        archive_error_string(a) ? archive_error_string(a) : "corrupt data");
            rc = -EINVAL;
            break;
        }
        rc = pkg_charge_bytes(c, (uint64_t)n);
        if (rc == 0)
            rc = pkg_write_all(c, fd, buf, (size_t)n, path);
        if (rc < 0)
            break;
    }
    mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return pkg_finish_file(c, fd, mode, path);
}

/* Creates what one archive entry describes, or refuses it. */
static int pkg_extract_entry(pkg_ctx *c, struct archive *a, struct archive_entry *e, char *buf)
{
    char path[PKG_PATH_MAX + 1];
    const char *raw = pkg_entry_path(e);
    if (!raw) {
        pkg_set_err(c, "package has an entry without a readable name");
        return -EINVAL;
    }
    int rc = pkg_charge_entry(c);
    if (rc == 0)
        rc = pkg_normalise(c, raw, strlen(raw), path);
    if (rc < 0)
        return rc;
    const char *hard = pkg_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    /* libarchive skips data of entries we do not read by decompressing it */
    if ((hard || type != AE_IFREG) && archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
        rc = pkg_charge_bytes(c, (uint64_t)archive_entry_size(e));
        if (rc < 0)
            return rc;
    }
    if (hard)
        return pkg_make_hardlink(c, path, hard);
    switch (type) {
    case AE_IFREG:
        return pkg_extract_file(c, a, e, path, buf);
    case AE_IFDIR:
        return pkg_make_dir(c, path);
    case AE_IFLNK: {
        const char *target = pkg_entry_symlink(e);
        return pkg_make_symlink(c, path, target ? target : "");
    }
    case AE_IFCHR:
    case AE_IFBLK:
        return pkg_refuse(c, raw, "is a device file, which packages may not contain");
    case AE_IFIFO:
        return pkg_refuse(c, raw, "is a FIFO, which packages may not contain");
    case AE_IFSOCK:
        return pkg_refuse(c, raw, "is a socket, which packages may not contain");
    default:
        return pkg_refuse(c, raw, "has a type packages may not contain");
    }
}

/* Reads every entry of the opened archive `a` and extracts it. */
static int pkg_extract_all(pkg_ctx *c, struct archive *a)
{
    char *buf = malloc(PKG_COPY_CHUNK);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        /* WARN covers names libarchive could not convert; they are still checked */
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            const char *why = archive_error_string(a);
            pkg_set_err(c, "package is not a readable .tar.gz, .tar or .zip archive (%s)",
                        why ? why : "corrupt");
            rc = -EINVAL;
            break;
        }
        rc = pkg_extract_entry(c, a, e, buf);
        if (rc < 0)
            break;
    }
    free(buf);
    if (rc == 0 && c->files == 0) {
        pkg_set_err(c, "package is empty: it contains no files");
        rc = -EINVAL;
    }
    return rc;
}

int package_unpack_archive(const void *data, size_t len, const char *dest_dir,
                           const package_limits *lim, char *err, size_t errlen)
{
    pkg_ctx c;
    if (err && errlen > 0)
        err[0] = '\0';
    if (!data || len == 0 || len > PACKAGE_MAX_COMPRESSED) {
        c.err = err, c.errlen = errlen;
        if (!data || len == 0)
            pkg_set_err(&c, "package is empty: it contains no files");
        else
            pkg_set_err(&c, "package is larger than %u MiB compressed",
                        PACKAGE_MAX_COMPRESSED / (1024 * 1024));
        return -EINVAL;
    }
    int rc = pkg_ctx_open(&c, dest_dir, lim, err, errlen);
    if (rc < 0)
        return rc;
    /* libarchive converts entry names to this thread's locale; under the
     * daemon's "C" locale a zip's UTF-8 names would be lost, so read under
     * C.UTF-8, on this thread only. */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
    struct archive *a = archive_read_new();
    if (!a) {
        rc = -ENOMEM;
        goto out;
    }
    /* Exactly these readers: anything else is refused as unrecognised. */
    if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_format_zip(a) != ARCHIVE_OK) {
        pkg_set_err(&c, "cannot set up the archive reader: %s", archive_error_string(a));
        rc = -ENOTSUP;
    } else if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        const char *why = archive_error_string(a);
        pkg_set_err(&c, "package is not a readable .tar.gz, .tar or .zip archive (%s)",
                    why ? why : "corrupt");
        rc = -EINVAL;
    } else {
        rc = pkg_extract_all(&c, a);
    }
    archive_read_free(a);
out:
    if (utf8) {
        uselocale(old);
        freelocale(utf8);
    }
    close(c.root);
    return rc;
}

int package_write_files(const json_t *files, const char *dest_dir, const package_limits *lim,
                        char *err, size_t errlen)
{
    pkg_ctx c;
    if (err && errlen > 0)
        err[0] = '\0';
    if (!json_is_object(files)) {
        c.err = err, c.errlen = errlen;
        pkg_set_err(&c, "files must be an object mapping paths to file text");
        return -EINVAL;
    }
    int rc = pkg_ctx_open(&c, dest_dir, lim, err, errlen);
    if (rc < 0)
        return rc;
    const char *key;
    size_t klen;
    json_t *val;
    char path[PKG_PATH_MAX + 1];
    /* jansson's iterators take a non-const object but do not modify it */
    json_t *obj = (json_t *)files;
    json_object_keylen_foreach(obj, key, klen, val)
    {
        rc = pkg_charge_entry(&c);
        if (rc == 0)
            rc = pkg_normalise(&c, key, klen, path);
        if (rc == 0 && !json_is_string(val))
            rc = pkg_refuse(&c, key, "must have a string as its content");
        if (rc == 0)
            rc = pkg_charge_bytes(&c, json_string_length(val));
        if (rc < 0)
            break;
        int fd = pkg_create_file(&c, path);
        if (fd < 0) {
            rc = fd;
            break;
        }
        rc = pkg_write_all(&c, fd, json_string_value(val), json_string_length(val), path);
        if (rc < 0) {
            close(fd);
            break;
        }
        rc = pkg_finish_file(&c, fd, 0644, path);
        if (rc < 0)
            break;
    }
    if (rc == 0 && c.files == 0) {
        pkg_set_err(&c, "package is empty: files has no entries");
        rc = -EINVAL;
    }
    close(c.root);
    return rc;
}

/* --- copying an installed version --- */

static int copy_file(int sfd, int dfd, const char *name, mode_t mode)
{
    int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    int rc = out < 0 ? -errno : 0;
    char chunk[65536];
    ssize_t n;
    while (rc == 0 && (n = read(in, chunk, sizeof chunk)) != 0) {
        if (n < 0)
            rc = -errno;
        else
            rc = fsutil_write_all(out, chunk, (size_t)n);
    }
    if (out >= 0 && rc == 0 && fchmod(out, mode) < 0)
        rc = -errno;
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

static int copy_dir(int sfd, int dfd, unsigned depth)
{
    if (depth > 64)
        return -ELOOP;
    DIR *d = fdopendir(sfd);
    if (!d) {
        close(sfd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            int s2 = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = -1;
            if (s2 < 0 || mkdirat(dfd, e->d_name, 0755) < 0 ||
                (d2 = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                rc = -errno;
            if (rc == 0)
                rc = copy_dir(s2, d2, depth + 1); /* takes s2 */
            else if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        } else if (S_ISREG(st.st_mode)) {
            rc = copy_file(dirfd(d), dfd, e->d_name, st.st_mode & 0755);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PKG_PATH_MAX + 1];
            ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
            if (n < 0)
                rc = -errno;
            else {
                target[n] = '\0';
                if (symlinkat(target, dfd, e->d_name) < 0)
                    rc = -errno;
            }
        }
    }
    closedir(d);
    return rc;
}

int package_copy_tree(const char *src, const char *dest_dir)
{
    int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0)
        return -errno;
    int dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int err = errno;
        close(sfd);
        return -err;
    }
    int rc = copy_dir(sfd, dfd, 0);
    close(dfd);
    return rc;
}
