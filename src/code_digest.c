/*
 * code_digest.c — SHA-256 over an unpacked code tree, canonically.
 *
 * The hash input is, for each entry in bytewise order of its relative
 * path (a directory before what it holds, since "a" < "a/..."):
 *     type byte ('d', 'f' or 'l'), mode & 07777 as 4 octal digits,
 *     size as 16 hex digits, the path, a NUL, then the content
 *     (a file's bytes, a symlink's target; nothing for a directory).
 * Sizes are explicit and paths cannot hold NUL, so no two trees share an
 * input. What the archive format adds (timestamps, owners, the order of
 * members, implicit parent directories) never reaches the disk as
 * package.c writes it, so it never reaches the digest either.
 *
 * Owns nothing beyond the call. Must never: follow a symlink, or run on
 * the loop thread (it reads every byte of the code).
 */
#include "code_digest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define DEPTH_MAX 64 /* deeper than package.c's path limit allows */

typedef struct walker {
    crypto_hash_sha256_state st;
    uint64_t bytes;      /* file content so far */
    char path[PATH_MAX]; /* relative path of the entry being hashed */
} walker;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hash_header(walker *w, char type, mode_t mode, unsigned long long size)
{
    char head[32];
    int n = snprintf(head, sizeof head, "%c%04o%016llx", type, (unsigned)(mode & 07777), size);
    crypto_hash_sha256_update(&w->st, (const unsigned char *)head, (unsigned long long)n);
    crypto_hash_sha256_update(&w->st, (const unsigned char *)w->path, strlen(w->path) + 1);
}

static int hash_file(walker *w, int dirfd, const char *name, const struct stat *sb)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    hash_header(w, 'f', sb->st_mode, (unsigned long long)sb->st_size);
    unsigned char buf[65536];
    unsigned long long total = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        crypto_hash_sha256_update(&w->st, buf, (unsigned long long)n);
        total += (unsigned long long)n;
    }
    close(fd);
    if (rc == 0 && total != (unsigned long long)sb->st_size)
        rc = -EIO; /* changed under us: the header would lie */
    w->bytes += total;
    return rc;
}

static int hash_link(walker *w, int dirfd, const char *name, const struct stat *sb)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target);
    if (n < 0)
        return -errno;
    if ((size_t)n >= sizeof target)
        return -ENAMETOOLONG;
    hash_header(w, 'l', sb->st_mode, (unsigned long long)n);
    crypto_hash_sha256_update(&w->st, (const unsigned char *)target, (unsigned long long)n);
    return 0;
}

static int hash_dir(walker *w, int fd, unsigned depth);

/* One entry `name` of the directory open at dirfd; w->path is its parent. */
static int hash_entry(walker *w, int dirfd, const char *name, unsigned depth)
{
    size_t base = strlen(w->path);
    int n = snprintf(w->path + base, sizeof w->path - base, "%s%s", base ? "/" : "", name);
    if (n < 0 || (size_t)n >= sizeof w->path - base)
        return -ENAMETOOLONG;
    struct stat sb;
    int rc = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    if (rc == 0 && S_ISREG(sb.st_mode)) {
        rc = hash_file(w, dirfd, name, &sb);
    } else if (rc == 0 && S_ISLNK(sb.st_mode)) {
        rc = hash_link(w, dirfd, name, &sb);
    } else if (rc == 0 && S_ISDIR(sb.st_mode)) {
        hash_header(w, 'd', sb.st_mode, 0);
        int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = sub < 0 ? -errno : hash_dir(w, sub, depth + 1); /* hash_dir closes sub */
    } else if (rc == 0) {
        rc = -EINVAL;
    }
    w->path[base] = '\0';
    return rc;
}

/* Hashes what the directory open at `fd` holds, sorted; closes fd. */
static int hash_dir(walker *w, int fd, unsigned depth)
{
    if (depth > DEPTH_MAX) {
        close(fd);
        return -ELOOP;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return -err;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **grown = realloc(names, ncap * sizeof *names);
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            names = grown;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = -ENOMEM;
        else
            n++;
    }
    if (rc == 0 && errno)
        rc = -errno;
    if (rc == 0)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = hash_entry(w, dirfd(d), names[i], depth);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int code_digest_tree(const char *dir, char out[CODE_DIGEST_LEN], uint64_t *bytes)
{
    walker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    crypto_hash_sha256_init(&w->st);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : hash_dir(w, fd, 0);
    if (rc == 0) {
        unsigned char md[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_final(&w->st, md);
        memcpy(out, "sha256:", 7);
        sodium_bin2hex(out + 7, CODE_DIGEST_LEN - 7, md, sizeof md);
        if (bytes)
            *bytes = w->bytes;
    }
    sodium_memzero(w, sizeof *w);
    free(w);
    return rc;
}
