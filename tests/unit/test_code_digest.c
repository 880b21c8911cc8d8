/*
 * test_code_digest.c — unit tests for code_digest.c: the same files packed
 * as a .tar.gz and as a .zip (built in memory with libarchive, unpacked
 * with package.c as a deploy does) give the same digest; a changed byte,
 * permission, name or symlink target gives another. Works only under its
 * own mkdtemp directory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "code_digest.h"
#include "fsutil.h"
#include "package.h"

#define OUT_CAP (1u << 20)

typedef struct ent {
    const char *path;
    const char *data; /* NULL: a directory (or a symlink when link is set) */
    mode_t perm;
    const char *link; /* a symlink's target */
} ent;

/* Packs `n` entries as a .tar.gz or a .zip in memory; `stamp` is the
 * mtime given to every entry (it must not matter). Returns the size. */
static size_t pack(const ent *e, size_t n, bool zip, time_t stamp, unsigned char *out)
{
    struct archive *a = archive_write_new();
    if (zip) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
    }
    size_t used = 0;
    assert_int_equal(archive_write_open_memory(a, out, OUT_CAP, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_mtime(ae, stamp, 0);
        if (e[i].link) {
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_perm(ae, 0777);
            archive_entry_set_symlink(ae, e[i].link);
        } else if (!e[i].data) {
            archive_entry_set_filetype(ae, AE_IFDIR);
            archive_entry_set_perm(ae, 0755);
        } else {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, e[i].perm ? e[i].perm : 0644);
            archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
        }
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (e[i].data && !e[i].link)
            archive_write_data(a, e[i].data, strlen(e[i].data));
        archive_entry_free(ae);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return used;
}

/* Packs, unpacks into a fresh directory, digests, cleans up. */
static void digest_of(const ent *e, size_t n, bool zip, time_t stamp, char out[CODE_DIGEST_LEN])
{
    unsigned char *buf = malloc(OUT_CAP);
    assert_non_null(buf);
    size_t len = pack(e, n, zip, stamp, buf);
    char dir[] = "/tmp/hearth-digest-XXXXXX";
    assert_non_null(mkdtemp(dir));
    package_limits lim;
    package_limits_default(&lim);
    char err[256] = "";
    int rc = package_unpack_archive(buf, len, dir, &lim, err, sizeof err);
    if (rc)
        fail_msg("unpack: %s", err);
    assert_int_equal(code_digest_tree(dir, out, NULL), 0);
    fsutil_remove_tree(dir);
    free(buf);
}

static const ent base[] = {
    {.path = "main.py", .data = "def handler(e, c):\n    return 1\n"},
    {.path = "lib/", .data = NULL},
    {.path = "lib/util.py", .data = "X = 1\n"},
    {.path = "run.sh", .data = "#!/bin/sh\n", .perm = 0755},
    {.path = "link", .link = "main.py"},
};
#define NBASE (sizeof base / sizeof *base)

static void tgz_and_zip_agree(void **state)
{
    (void)state;
    char a[CODE_DIGEST_LEN], b[CODE_DIGEST_LEN], c[CODE_DIGEST_LEN];
    digest_of(base, NBASE, false, 1000, a);
    digest_of(base, NBASE, true, 2000000, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), CODE_DIGEST_LEN - 1);
    assert_memory_equal(a, "sha256:", 7);
    /* the member order and an implicit parent directory do not matter */
    const ent shuffled[] = {base[4], base[3], base[2], base[0]};
    digest_of(shuffled, 4, true, 5, c);
    assert_string_equal(a, c);
}

/* Each variant differs from base in one thing; each must change the digest. */
static void any_change_shows(void **state)
{
    (void)state;
    char want[CODE_DIGEST_LEN], got[CODE_DIGEST_LEN];
    digest_of(base, NBASE, false, 1, want);
    ent v[NBASE];
    for (int k = 0; k < 5; k++) {
        memcpy(v, base, sizeof v);
        switch (k) {
        case 0:
            v[0].data = "def handler(e, c):\n    return 2\n";
            break; /* a byte */
        case 1:
            v[0].perm = 0755;
            break; /* a mode */
        case 2:
            v[2].path = "lib/utils.py";
            break; /* a name */
        case 3:
            v[4].link = "run.sh";
            break; /* a link target */
        case 4:
            v[3].data = "#!/bin/sh\n\n";
            break; /* a size */
        }
        digest_of(v, NBASE, k % 2 == 0, 1, got);
        if (strcmp(got, want) == 0)
            fail_msg("variant %d kept the digest", k);
    }
}

/* The bytes of file content, which bound a stack's unpacking; links and
 * directories count nothing. */
static void counts_file_bytes(void **state)
{
    (void)state;
    char dir[] = "/tmp/hearth-digest-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    const char *files[][2] = {{"a", "12345"}, {"sub", NULL}, {"sub/b", "678"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        if (!files[i][1]) {
            assert_int_equal(mkdir(path, 0755), 0);
            continue;
        }
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/link", dir);
    assert_int_equal(symlink("a", path), 0);
    char out[CODE_DIGEST_LEN];
    uint64_t bytes = 0;
    assert_int_equal(code_digest_tree(dir, out, &bytes), 0);
    assert_int_equal(bytes, 8);
    fsutil_remove_tree(dir);
}

static void missing_dir_is_an_error(void **state)
{
    (void)state;
    char out[CODE_DIGEST_LEN];
    assert_int_equal(code_digest_tree("/nonexistent/hearth-digest", out, NULL), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tgz_and_zip_agree),
        cmocka_unit_test(any_change_shows),
        cmocka_unit_test(counts_file_bytes),
        cmocka_unit_test(missing_dir_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
