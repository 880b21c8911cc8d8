/*
 * secret_bundle.c — opening sealed secrets for one worker.
 *
 * Runs where the private key is: in the spawner (the daemon, which
 * parses HTTP, never opens it; rootless both run as one user). Each
 * file is read through the folder's fd with O_NOFOLLOW | O_NONBLOCK, must
 * be a regular file no larger than a sealed 64 KiB value, and must open
 * with crypto_box_seal_open to "name\0value" for the very name asked for.
 * The values go into a memfd, sealed against writes, that only the
 * sandbox's init reads (sandbox_root.c); plaintext in our own memory is
 * wiped as soon as it is written there.
 *
 * Must never: follow a path out of the secrets folder, trust a file's
 * size or content before the seal opened, write a value anywhere but the
 * memfd, or log one.
 */
#include "secret_bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "secrets.h"
#include "validate.h"

#define SEALED_MAX SECRETS_SEALED_MAX(SECRETS_VALUE_MAX)

struct secret_bundler {
    int dir;
    unsigned char *sk; /* sodium_malloc: locked, guarded, wiped when freed */
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
};

int secret_bundle_open(const char *dir, const char *key_file, secret_bundler **out)
{
    if (sodium_init() < 0)
        return -ENOSYS;
    secret_bundler *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->dir = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    b->sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
    int rc = b->dir < 0 ? -errno : !b->sk ? -ENOMEM : 0;
    if (rc == 0)
        rc = secrets_read_file(AT_FDCWD, key_file, b->sk, crypto_box_SECRETKEYBYTES);
    if (rc == 0 && crypto_scalarmult_base(b->pk, b->sk) != 0)
        rc = -EINVAL;
    if (rc < 0) {
        secret_bundle_close(b);
        return rc;
    }
    sodium_mprotect_readonly(b->sk);
    *out = b;
    return 0;
}

void secret_bundle_close(secret_bundler *b)
{
    if (!b)
        return;
    if (b->dir >= 0)
        close(b->dir);
    sodium_free(b->sk);
    free(b);
}

/* The sealed bytes of `name` into c (SEALED_MAX), their length in *len. */
static int read_sealed(secret_bundler *b, const char *name, unsigned char *c, size_t *len)
{
    int fd = openat(b->dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -EBADMSG : -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -EBADMSG;
    if (rc == 0 && (st.st_size < crypto_box_SEALBYTES || st.st_size > (off_t)SEALED_MAX))
        rc = -EFBIG;
    ssize_t n = rc == 0 ? read(fd, c, SEALED_MAX) : 0;
    if (rc == 0 && n != st.st_size)
        rc = -EIO;
    close(fd);
    *len = (size_t)n;
    return rc;
}

/* Appends one record (sandbox_root.h) to the memfd. */
static int append_record(int fd, const char *name, const unsigned char *value, uint32_t len)
{
    unsigned char nlen = (unsigned char)strlen(name);
    struct iovec iov[] = {
        {&nlen, 1}, {(void *)name, nlen}, {&len, sizeof len}, {(void *)value, len}};
    ssize_t want = 1 + nlen + (ssize_t)sizeof len + len;
    return writev(fd, iov, 4) == want ? 0 : -EIO;
}

/* Opens one secret and appends it. m is scratch of SEALED_MAX bytes. */
static int add_one(secret_bundler *b, int fd, const char *name, unsigned char *c, unsigned char *m)
{
    size_t clen, nlen = strlen(name);
    int rc = read_sealed(b, name, c, &clen);
    if (rc < 0)
        return rc;
    size_t mlen = clen - crypto_box_SEALBYTES;
    if (crypto_box_seal_open(m, c, clen, b->pk, b->sk) != 0 || mlen <= nlen ||
        memcmp(m, name, nlen + 1) != 0 || mlen - nlen - 1 > SECRETS_VALUE_MAX)
        rc = -EBADMSG;
    if (rc == 0)
        rc = append_record(fd, name, m + nlen + 1, (uint32_t)(mlen - nlen - 1));
    sodium_memzero(m, SEALED_MAX);
    return rc;
}

int secret_bundle_make(secret_bundler *b, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (i >= VALIDATE_SECRETS_MAX || !validate_secret_name(names[i]))
            return -EINVAL;
    int fd = memfd_create("hearth-secrets", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    unsigned char *c = malloc(SEALED_MAX), *m = sodium_malloc(SEALED_MAX);
    int rc = c && m ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && names[i]; i++)
        rc = add_one(b, fd, names[i], c, m);
    free(c);
    sodium_free(m);
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL))
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}
