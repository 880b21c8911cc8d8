/*
 * secrets.c — the key pair's files and the store of sealed secrets.
 *
 * Owns <data-dir>/secrets/ (one file per secret: crypto_box_seal of
 * "name\0value" with the public key, written to a dot-file, fsynced and
 * renamed over the old one) and the two key files beside it. The daemon
 * reads only the public key; the private key is read here once, at
 * start, to derive the public one, and wiped.
 *
 * Must never: hold or write a plaintext value anywhere but the caller's
 * buffer and a wiped scratch copy, follow a symlink in the folder, log a
 * value, or read the private key after secrets_prepare.
 */
#include "secrets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "validate.h"

_Static_assert(crypto_box_SEALBYTES == 48, "SECRETS_SEALED_MAX counts 48 bytes of seal");
_Static_assert(VALIDATE_SECRET_NAME_MAX + 1 <= 64, "SECRETS_SEALED_MAX counts 64 bytes of name");

struct secrets {
    int dir; /* the secrets folder */
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
};

int secrets_read_file(int dirfd, const char *name, void *out, size_t len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size != (off_t)len))
        rc = -EINVAL;
    if (rc == 0 && read(fd, out, len) != (ssize_t)len)
        rc = -EIO;
    close(fd);
    return rc;
}

/* Writes data to dirfd/name through a dot-file: fsync, rename, fsync the
 * folder. 0 or -errno; on error name is as it was. */
static int write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    char tmp[VALIDATE_SECRET_NAME_MAX + 16];
    snprintf(tmp, sizeof tmp, ".tmp-%s", name);
    unlinkat(dirfd, tmp, 0); /* left by a crash */
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = fsutil_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    else
        fsync(dirfd);
    return rc;
}

static int make_key_pair(int cwd)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
    crypto_box_keypair(pk, sk);
    /* The public key first: a crash between the two leaves no private key,
     * and the next start makes a new pair (no secret was sealed yet). */
    int rc = write_atomic(cwd, SECRETS_PUB_FILE, pk, sizeof pk, 0600);
    if (rc == 0)
        rc = write_atomic(cwd, SECRETS_KEY_FILE, sk, sizeof sk, 0600);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

/* As root: the private key is root's, 0600, whoever made it (a rootless
 * run of the same data dir, or a restore). */
static int own_private_key(int cwd)
{
    if (geteuid() != 0)
        return 0;
    int fd = openat(cwd, SECRETS_KEY_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fchown(fd, 0, 0) == 0 && fchmod(fd, 0600) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* The public key, derived from the private one, on disk. */
static int refresh_public_key(int cwd)
{
    unsigned char sk[crypto_box_SECRETKEYBYTES], pk[crypto_box_PUBLICKEYBYTES];
    unsigned char on_disk[crypto_box_PUBLICKEYBYTES];
    int rc = secrets_read_file(cwd, SECRETS_KEY_FILE, sk, sizeof sk);
    if (rc == 0 && crypto_scalarmult_base(pk, sk) != 0)
        rc = -EINVAL;
    sodium_memzero(sk, sizeof sk);
    if (rc == 0 && (secrets_read_file(cwd, SECRETS_PUB_FILE, on_disk, sizeof on_disk) < 0 ||
                    sodium_memcmp(on_disk, pk, sizeof pk) != 0))
        rc = write_atomic(cwd, SECRETS_PUB_FILE, pk, sizeof pk, 0600);
    return rc;
}

int secrets_prepare(void)
{
    if (sodium_init() < 0)
        return -ENOSYS;
    if (mkdir(SECRETS_DIR, 0700) < 0 && errno != EEXIST)
        return -errno;
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstatat(cwd, SECRETS_KEY_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = errno == ENOENT ? make_key_pair(cwd) : -errno;
    if (rc == 0)
        rc = own_private_key(cwd);
    if (rc == 0)
        rc = refresh_public_key(cwd);
    close(cwd);
    return rc;
}

int secrets_open(secrets **out)
{
    if (sodium_init() < 0)
        return -ENOSYS;
    secrets *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->dir = open(SECRETS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc =
        s->dir < 0 ? -errno : secrets_read_file(AT_FDCWD, SECRETS_PUB_FILE, s->pk, sizeof s->pk);
    if (rc < 0) {
        secrets_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void secrets_close(secrets *s)
{
    if (!s)
        return;
    if (s->dir >= 0)
        close(s->dir);
    free(s);
}

static bool exists(secrets *s, const char *name)
{
    struct stat st;
    return fstatat(s->dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int count_visit(const char *name, int64_t ms, void *ud)
{
    (void)name, (void)ms;
    ++*(size_t *)ud;
    return 0;
}

int secrets_put(secrets *s, const char *name, const void *value, size_t len, bool *created)
{
    if (len > SECRETS_VALUE_MAX || !validate_secret_name(name))
        return len > SECRETS_VALUE_MAX ? -E2BIG : -EINVAL;
    *created = !exists(s, name);
    size_t count = 0;
    if (*created && (secrets_list(s, count_visit, &count) < 0 || count >= SECRETS_STORE_MAX))
        return -ENOSPC;
    size_t name_len = strlen(name), mlen = name_len + 1 + len;
    unsigned char *m = malloc(mlen), *c = malloc(mlen + crypto_box_SEALBYTES);
    int rc = m && c ? 0 : -ENOMEM;
    if (rc == 0) {
        memcpy(m, name, name_len + 1);
        if (len)
            memcpy(m + name_len + 1, value, len);
        rc = crypto_box_seal(c, m, mlen, s->pk) == 0 ? 0 : -EIO;
        sodium_memzero(m, mlen);
    }
    if (rc == 0)
        rc = write_atomic(s->dir, name, c, mlen + crypto_box_SEALBYTES, 0600);
    free(m);
    free(c);
    return rc;
}

int secrets_delete(secrets *s, const char *name)
{
    if (!validate_secret_name(name))
        return -ENOENT;
    if (unlinkat(s->dir, name, 0) < 0)
        return -errno;
    fsync(s->dir);
    return 0;
}

int secrets_updated_ms(secrets *s, const char *name, int64_t *ms)
{
    struct stat st;
    if (!validate_secret_name(name) || fstatat(s->dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
        return -ENOENT;
    *ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the folder (dot-files and strays skipped), sorted; the
 * caller frees each and the array. 0 or -errno. */
static int read_names(secrets *s, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    int fd = dup(s->dir);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    rewinddir(d);
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) && *n < SECRETS_STORE_MAX) {
        if (!validate_secret_name(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **more = realloc(*names, cap * sizeof *more);
            rc = more ? 0 : -ENOMEM;
            if (more)
                *names = more;
        }
        if (rc == 0 && !((*names)[*n] = strdup(e->d_name)))
            rc = -ENOMEM;
        if (rc == 0)
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, by_name);
    return rc;
}

int secrets_list(secrets *s, secrets_visit_fn visit, void *ud)
{
    char **names;
    size_t n;
    int rc = read_names(s, &names, &n);
    for (size_t i = 0; i < n; i++) {
        int64_t ms;
        if (rc == 0 && secrets_updated_ms(s, names[i], &ms) == 0)
            rc = visit(names[i], ms, ud);
        free(names[i]);
    }
    free(names);
    return rc;
}
