/*
 * secret_bundle.h — the spawner's side of secrets: it alone holds the
 * private key, opens the sealed values a worker's spec names, and hands
 * them to the sandbox as one in-memory bundle (sandbox_root.h describes
 * its records), never as a file on disk.
 */
#ifndef HEARTH_SECRET_BUNDLE_H
#define HEARTH_SECRET_BUNDLE_H

typedef struct secret_bundler secret_bundler;

/* Reads the private key file and opens the secrets folder (both relative
 * to the cwd, the data dir; neither may be a symlink). The key lives in
 * locked, guarded memory (sodium_malloc). 0 or -errno. */
int secret_bundle_open(const char *dir, const char *key_file, secret_bundler **out);
void secret_bundle_close(secret_bundler *b); /* wipes the key; accepts NULL */

/* Opens the sealed file of each name (valid names, NULL-terminated) and
 * writes the values into a new sealed memfd. Returns the fd (the caller
 * closes it), or -ENOENT (a secret is missing), -EBADMSG (a file that
 * does not open with our key for that name: tampered, or renamed), -EFBIG,
 * -EINVAL (a name), -ENOMEM or -errno. */
int secret_bundle_make(secret_bundler *b, const char *const *names);

#endif
