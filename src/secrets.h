/*
 * secrets.h — the daemon's side of secrets: the key pair's files, and
 * the store of sealed values under <data-dir>/secrets/, one file per
 * secret. The daemon only ever seals (libsodium's crypto_box_seal, with
 * the public key); opening a value needs the private key, which only the
 * spawner reads (secret_bundle.h). docs/architecture.md, "Secrets".
 */
#ifndef HEARTH_SECRETS_H
#define HEARTH_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRETS_VALUE_MAX (64u * 1024)  /* bytes of one value */
#define SECRETS_STORE_MAX 4096          /* secrets in one data dir */
#define SECRETS_DIR       "secrets"     /* in the data dir: one sealed file per secret */
#define SECRETS_KEY_FILE  "secrets.key" /* the private key, 0600, root's when root runs hearthd */
#define SECRETS_PUB_FILE  "secrets.pub" /* the public key the daemon seals with */

/* What a sealed file holds once opened: the secret's name, a NUL, then
 * its value. The name inside binds the value to its file: a file renamed
 * or copied to another name does not open. */
#define SECRETS_SEALED_MAX(value_len) ((value_len) + 64 + 48 /* crypto_box_SEALBYTES */)

/* In the data dir (the cwd), as whoever starts hearthd, before the
 * spawner forks: makes the secrets folder (0700) and the key pair when
 * missing, (re)writes the public key from the private one, and, as root,
 * makes the private key root's own, mode 0600. 0 or -errno (-EINVAL for
 * a key file of the wrong size). */
int secrets_prepare(void);

/* Reads exactly `len` bytes of the regular file dirfd/name (never through
 * a symlink): a key. 0 or -errno; -EINVAL when its size is not `len`. */
int secrets_read_file(int dirfd, const char *name, void *out, size_t len);

typedef struct secrets secrets;

/* Opens the store in the data dir (the cwd): the public key and the
 * folder. 0 or -errno. */
int secrets_open(secrets **out);
void secrets_close(secrets *s); /* accepts NULL */

/* Seals `value` (len <= SECRETS_VALUE_MAX) for `name` (valid) and
 * replaces its file atomically and durably. *created says whether it is
 * new. 0, -E2BIG, -ENOSPC (SECRETS_STORE_MAX reached) or -errno; on error
 * the old value stays. */
int secrets_put(secrets *s, const char *name, const void *value, size_t len, bool *created);

/* 0, -ENOENT or -errno. */
int secrets_delete(secrets *s, const char *name);

/* When `name` was last set (wall-clock ms). 0 or -ENOENT. */
int secrets_updated_ms(secrets *s, const char *name, int64_t *ms);

typedef int (*secrets_visit_fn)(const char *name, int64_t updated_ms, void *ud);

/* Visits every secret in name order (never a value). Non-zero from
 * `visit` stops the walk and is returned; else 0 or -errno. */
int secrets_list(secrets *s, secrets_visit_fn visit, void *ud);

#endif
