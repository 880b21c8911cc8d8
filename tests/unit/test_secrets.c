/*
 * test_secrets.c — the sealed store (secrets.c) and the spawner's bundle
 * (secret_bundle.c) in a temporary data dir: what is sealed opens only
 * for its own name and key, the plaintext is never on disk, and every
 * file the spawner would read is held to the folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret_bundle.h"
#include "secrets.h"
#include "spawn_msg.h"
#include "validate.h"

static char dir[64], old_cwd[4096];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hearth-secrets-XXXXXX");
    if (!getcwd(old_cwd, sizeof old_cwd) || !mkdtemp(dir) || chdir(dir) < 0)
        return -1;
    return secrets_prepare();
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return chdir(old_cwd) == 0 && system(cmd) == 0 ? 0 : -1;
}

/* The whole file, malloc'd, or NULL. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
    return memmem(hay, n, needle, m) != NULL;
}

static void test_key_files(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(SECRETS_KEY_FILE, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(stat(SECRETS_DIR, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* A second start keeps the pair: what was sealed still opens. */
    size_t n1 = 0, n2 = 0;
    unsigned char *k1 = slurp(SECRETS_KEY_FILE, &n1);
    assert_int_equal(secrets_prepare(), 0);
    unsigned char *k2 = slurp(SECRETS_KEY_FILE, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(k1, k2, n1);
    free(k1);
    free(k2);
}

/* Reads the bundle's records back, as sandbox_root.c does. */
static void expect_record(int fd, off_t *off, const char *name, const void *value, uint32_t len)
{
    unsigned char nlen;
    assert_int_equal(pread(fd, &nlen, 1, *off), 1);
    assert_int_equal(nlen, strlen(name));
    char got[64];
    assert_int_equal(pread(fd, got, nlen, *off + 1), nlen);
    assert_memory_equal(got, name, nlen);
    uint32_t vlen;
    assert_int_equal(pread(fd, &vlen, 4, *off + 1 + nlen), 4);
    assert_int_equal(vlen, len);
    unsigned char *v = malloc(len + 1);
    assert_int_equal(pread(fd, v, len, *off + 5 + nlen), (ssize_t)len);
    assert_memory_equal(v, value, len);
    free(v);
    *off += 5 + nlen + len;
}

static void test_round_trip(void **state)
{
    (void)state;
    secrets *s;
    assert_int_equal(secrets_open(&s), 0);
    static const unsigned char bin[] = {0, 1, 2, 0xff, '\n', 0, 'x'};
    const char *plain = "hunter2-plaintext-marker";
    bool created;
    assert_int_equal(secrets_put(s, "db-password", plain, strlen(plain), &created), 0);
    assert_true(created);
    assert_int_equal(secrets_put(s, "blob", bin, sizeof bin, &created), 0);
    assert_int_equal(secrets_put(s, "empty", "", 0, &created), 0);
    assert_int_equal(secrets_put(s, "db-password", plain, strlen(plain), &created), 0);
    assert_false(created);
    /* Nothing of the value on disk. */
    size_t n = 0;
    unsigned char *sealed = slurp(SECRETS_DIR "/db-password", &n);
    assert_non_null(sealed);
    assert_false(contains(sealed, n, plain, strlen(plain)));
    assert_false(contains(sealed, n, "db-password", 11));
    free(sealed);

    secret_bundler *b;
    assert_int_equal(secret_bundle_open(SECRETS_DIR, SECRETS_KEY_FILE, &b), 0);
    const char *names[] = {"db-password", "blob", "empty", NULL};
    int fd = secret_bundle_make(b, names);
    assert_true(fd >= 0);
    off_t off = 0;
    expect_record(fd, &off, "db-password", plain, (uint32_t)strlen(plain));
    expect_record(fd, &off, "blob", bin, sizeof bin);
    expect_record(fd, &off, "empty", "", 0);
    unsigned char end;
    assert_int_equal(pread(fd, &end, 1, off), 0);
    assert_int_equal(write(fd, "x", 1), -1); /* sealed against writes */
    close(fd);
    secret_bundle_close(b);
    secrets_close(s);
}

static void test_refusals(void **state)
{
    (void)state;
    secrets *s;
    assert_int_equal(secrets_open(&s), 0);
    bool created;
    char *big = calloc(1, SECRETS_VALUE_MAX + 1);
    assert_int_equal(secrets_put(s, "big", big, SECRETS_VALUE_MAX + 1, &created), -E2BIG);
    assert_int_equal(secrets_put(s, "big", big, SECRETS_VALUE_MAX, &created), 0);
    free(big);
    assert_int_equal(secrets_put(s, "../x", "v", 1, &created), -EINVAL);
    assert_int_equal(secrets_put(s, "a/b", "v", 1, &created), -EINVAL);
    assert_int_equal(secrets_put(s, ".hidden", "v", 1, &created), -EINVAL);
    assert_int_equal(secrets_put(s, "one", "1", 1, &created), 0);
    assert_int_equal(secrets_put(s, "two", "2", 1, &created), 0);

    secret_bundler *b;
    assert_int_equal(secret_bundle_open(SECRETS_DIR, SECRETS_KEY_FILE, &b), 0);
    const char *missing[] = {"nope", NULL};
    assert_int_equal(secret_bundle_make(b, missing), -ENOENT);
    const char *bad[] = {"..", NULL};
    assert_int_equal(secret_bundle_make(b, bad), -EINVAL);
    /* A sealed value copied to another name does not open there. */
    assert_int_equal(system("cp " SECRETS_DIR "/one " SECRETS_DIR "/copied"), 0);
    const char *copied[] = {"copied", NULL};
    assert_int_equal(secret_bundle_make(b, copied), -EBADMSG);
    /* A symlink to a file outside the folder is not followed. */
    assert_int_equal(symlink("/etc/passwd", SECRETS_DIR "/link"), 0);
    const char *link[] = {"link", NULL};
    assert_int_equal(secret_bundle_make(b, link), -EBADMSG);
    /* A flipped byte: the seal does not open. */
    int fd = open(SECRETS_DIR "/two", O_RDWR);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, 40), 1);
    c ^= 1;
    assert_int_equal(pwrite(fd, &c, 1, 40), 1);
    close(fd);
    const char *two[] = {"two", NULL};
    assert_int_equal(secret_bundle_make(b, two), -EBADMSG);
    secret_bundle_close(b);
    /* The daemon's list: names only, sorted, strays skipped. */
    assert_int_equal(secrets_delete(s, "one"), 0);
    assert_int_equal(secrets_delete(s, "one"), -ENOENT);
    secrets_close(s);
}

static int names_visit(const char *name, int64_t ms, void *ud)
{
    assert_true(ms > 0);
    char *seen = ud; /* 512 bytes: see the caller */
    size_t used = strlen(seen);
    snprintf(seen + used, 512 - used, "%s ", name);
    return 0;
}

static void test_list(void **state)
{
    (void)state;
    secrets *s;
    assert_int_equal(secrets_open(&s), 0);
    char seen[512] = "";
    assert_int_equal(secrets_list(s, names_visit, seen), 0);
    /* "link" is a symlink, not a sealed file: not listed. */
    assert_string_equal(seen, "big blob copied db-password empty two ");
    secrets_close(s);
}

static void test_secret_list_rules(void **state)
{
    (void)state;
    json_t *ok = json_pack("[s,s]", "a", "db-password");
    assert_int_equal(validate_secret_list(ok, NULL, 0), 0);
    json_decref(ok);
    json_t *dup = json_pack("[s,s]", "a", "a");
    char err[160];
    assert_int_equal(validate_secret_list(dup, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    json_decref(dup);
    json_t *bad = json_pack("[s]", "a/b");
    assert_int_equal(validate_secret_list(bad, NULL, 0), -EINVAL);
    json_decref(bad);
    json_t *nul = json_array();
    json_array_append_new(nul, json_stringn("a\0b", 3));
    assert_int_equal(validate_secret_list(nul, NULL, 0), -EINVAL);
    json_decref(nul);
    json_t *many = json_array();
    for (int i = 0; i <= VALIDATE_SECRETS_MAX; i++) {
        char n[8];
        snprintf(n, sizeof n, "s%d", i);
        json_array_append_new(many, json_string(n));
    }
    assert_int_equal(validate_secret_list(many, NULL, 0), -EINVAL);
    json_decref(many);
    json_t *str = json_string("a");
    assert_int_equal(validate_secret_list(str, NULL, 0), -EINVAL);
    json_decref(str);
}

/* The names travel in the spawn message; values never do. */
static void test_spawn_message(void **state)
{
    (void)state;
    const char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL}, *names[] = {"a", "b-2", NULL};
    sandbox_spec spec = {
        .argv = argv, .envp = envp, .code_dir = "/x", .hostname = "fn", .secrets = names};
    char *buf = malloc(SPAWNMSG_MAX);
    size_t len;
    assert_int_equal(spawnmsg_encode(&spec, 0, buf, &len), 0);
    sandbox_spec out;
    const char *av[SPAWNMSG_MAX_STRINGS + 1], *ev[SPAWNMSG_MAX_STRINGS + 1];
    const char *sv[VALIDATE_SECRETS_MAX + 1];
    assert_int_equal(spawnmsg_decode(buf, len, &out, av, ev, sv, NULL, NULL), 0);
    assert_string_equal(out.secrets[0], "a");
    assert_string_equal(out.secrets[1], "b-2");
    assert_null(out.secrets[2]);
    assert_false(out.has_secrets);
    /* A count beyond the limit is refused before any string is read. */
    buf[14] = VALIDATE_SECRETS_MAX + 1; /* the header's nsecrets */
    assert_int_equal(spawnmsg_decode(buf, len, &out, av, ev, sv, NULL, NULL), -EPROTO);
    spec.secrets = NULL;
    assert_int_equal(spawnmsg_encode(&spec, 0, buf, &len), 0);
    assert_int_equal(spawnmsg_decode(buf, len, &out, av, ev, sv, NULL, NULL), 0);
    assert_null(out.secrets);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_files),         cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_list),
        cmocka_unit_test(test_secret_list_rules), cmocka_unit_test(test_spawn_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
