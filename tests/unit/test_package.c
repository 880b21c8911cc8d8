/*
 * test_package.c — unit tests for package.c: archives are built in memory
 * with libarchive's write API, unpacked into a fresh temp dir, and every
 * refusal is checked to have written nothing outside that dir. Never touches
 * anything outside its own mkdtemp directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "failalloc.h"
#include "fsutil.h"
#include "package.h"

#define OUT_CAP (8u * 1024 * 1024)

/* Per test: base/pkg is dest_dir, base/outside holds a file an attack would hit. */
typedef struct fixture {
    char base[64];
    char dest[128];
    char outside[128];
    char err[256];
} fixture;

typedef enum { FMT_TGZ, FMT_TAR, FMT_ZIP } fmt;

/* One archive entry to build; data == NULL with size > 0 means zeros. */
typedef struct tent {
    const char *path;
    mode_t type;
    mode_t perm;
    const char *data;
    size_t size;
    const char *link; /* symlink target, or hard link target when hard */
    bool hard;
} tent;

#define FILE_(p, d)                                                                                \
    {                                                                                              \
        .path = (p), .type = AE_IFREG, .perm = 0644, .data = (d)                                   \
    }
#define DIR_(p)                                                                                    \
    {                                                                                              \
        .path = (p), .type = AE_IFDIR, .perm = 0755                                                \
    }
#define SYMLINK_(p, t)                                                                             \
    {                                                                                              \
        .path = (p), .type = AE_IFLNK, .perm = 0777, .link = (t)                                   \
    }
#define HARDLINK_(p, t)                                                                            \
    {                                                                                              \
        .path = (p), .type = AE_IFREG, .perm = 0644, .link = (t), .hard = true                     \
    }

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->base, sizeof fx->base, "%s", "/tmp/hearth-pkgtest.XXXXXX");
    assert_non_null(mkdtemp(fx->base));
    snprintf(fx->dest, sizeof(fx->dest), "%s/pkg", fx->base);
    snprintf(fx->outside, sizeof(fx->outside), "%s/outside", fx->base);
    assert_int_equal(mkdir(fx->dest, 0755), 0);
    assert_int_equal(mkdir(fx->outside, 0755), 0);
    char secret[160];
    snprintf(secret, sizeof(secret), "%s/secret", fx->outside);
    write_text(secret, "s");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    int rc = fsutil_remove_tree(fx->base);
    free(fx);
    return rc;
}

/* Empties dest so one test can try several packages. */
static void reset_dest(fixture *fx)
{
    assert_int_equal(fsutil_remove_tree(fx->dest), 0);
    assert_int_equal(mkdir(fx->dest, 0755), 0);
}

static size_t count_dir(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static char *read_rel(const fixture *fx, const char *rel, size_t *len)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", fx->dest, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(OUT_CAP);
    assert_non_null(buf);
    size_t n = fread(buf, 1, OUT_CAP - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void assert_content(const fixture *fx, const char *rel, const char *want)
{
    char *got = read_rel(fx, rel, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static mode_t lmode(const fixture *fx, const char *rel)
{
    char path[8192];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", fx->dest, rel);
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode;
}

static bool exists_rel(const fixture *fx, const char *rel)
{
    char path[8192];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", fx->dest, rel);
    return lstat(path, &st) == 0;
}

/* base holds only pkg and outside; outside holds only the untouched secret. */
static void assert_outside_untouched(const fixture *fx)
{
    assert_int_equal(count_dir(fx->base), 2);
    assert_int_equal(count_dir(fx->outside), 1);
    char secret[160];
    snprintf(secret, sizeof(secret), "%s/secret", fx->outside);
    struct stat st;
    assert_int_equal(lstat(secret, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 1);
    assert_int_equal(st.st_nlink, 1);
}

static void assert_refused(const fixture *fx, int rc)
{
    if (getenv("PKG_TEST_VERBOSE"))
        fprintf(stderr, "    refused %d: %s\n", rc, fx->err);
    assert_int_equal(rc, -EINVAL);
    assert_true(strlen(fx->err) > 0);
    assert_outside_untouched(fx);
}

/* Builds an archive of `n` entries; the caller frees the result. */
static unsigned char *build(fmt f, const tent *ents, size_t n, size_t *len)
{
    unsigned char *out = malloc(OUT_CAP);
    assert_non_null(out);
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (f == FMT_ZIP) {
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_set_options(a, "zip:hdrcharset=UTF-8"), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        if (f == FMT_TGZ)
            assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    }
    assert_int_equal(archive_write_open_memory(a, out, OUT_CAP, len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        const tent *t = &ents[i];
        struct archive_entry *e = archive_entry_new();
        /* the tar writer stores raw bytes (as GNU tar does); the zip one is
         * told the names are UTF-8 and flags them so (as Python's zipfile) */
        if (f == FMT_ZIP)
            archive_entry_set_pathname_utf8(e, t->path);
        else
            archive_entry_set_pathname(e, t->path);
        archive_entry_set_filetype(e, t->type);
        archive_entry_set_perm(e, t->perm);
        size_t size = t->data ? strlen(t->data) : t->size;
        if (t->hard) {
            archive_entry_set_hardlink(e, t->link);
            size = 0;
        } else if (t->type == AE_IFLNK) {
            archive_entry_set_symlink(e, t->link);
        }
        if (t->type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(1, 3));
        archive_entry_set_size(e, t->type == AE_IFREG ? (la_int64_t)size : 0);
        int r = archive_write_header(a, e);
        /* WARN: pax stored a name it could not convert as raw bytes */
        assert_true(r == ARCHIVE_OK || r == ARCHIVE_WARN);
        if (t->type == AE_IFREG && size > 0) {
            void *zeros = t->data ? NULL : calloc(1, size);
            const void *p = t->data ? (const void *)t->data : zeros;
            assert_int_equal(archive_write_data(a, p, size), (la_ssize_t)size);
            free(zeros);
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return out;
}

static int unpack_with(fixture *fx, fmt f, const tent *ents, size_t n, const package_limits *lim)
{
    size_t len;
    unsigned char *buf = build(f, ents, n, &len);
    fx->err[0] = '\0';
    int rc = package_unpack_archive(buf, len, fx->dest, lim, fx->err, sizeof(fx->err));
    free(buf);
    return rc;
}

static int unpack(fixture *fx, fmt f, const tent *ents, size_t n)
{
    return unpack_with(fx, f, ents, n, NULL);
}

#define N(arr) (sizeof(arr) / sizeof((arr)[0]))

static void check_normal_package(void **state, fmt f)
{
    fixture *fx = *state;
    const tent ents[] = {
        FILE_("main.py", "print('hi')\n"),
        DIR_("lib/"),
        FILE_("lib/util/helpers.py", "def h(): pass\n"),
        {.path = "bin/run.sh", .type = AE_IFREG, .perm = 04775, .data = "#!/bin/sh\n"},
        {.path = "secret.txt", .type = AE_IFREG, .perm = 0600, .data = "x"},
        {.path = "conf", .type = AE_IFDIR, .perm = 03777},
        FILE_("./dot.txt", "dot"),
        FILE_("h\xc3\xa9llo.txt", "utf-8 name"),
    };
    assert_int_equal(unpack(fx, f, ents, N(ents)), 0);
    assert_content(fx, "main.py", "print('hi')\n");
    assert_content(fx, "lib/util/helpers.py", "def h(): pass\n");
    assert_content(fx, "bin/run.sh", "#!/bin/sh\n");
    assert_content(fx, "dot.txt", "dot");
    assert_content(fx, "h\xc3\xa9llo.txt", "utf-8 name");
    assert_int_equal(lmode(fx, "main.py"), S_IFREG | 0644);
    assert_int_equal(lmode(fx, "bin/run.sh"), S_IFREG | 0755); /* setuid dropped, x kept */
    assert_int_equal(lmode(fx, "secret.txt"), S_IFREG | 0644);
    assert_int_equal(lmode(fx, "lib"), S_IFDIR | 0755);
    assert_int_equal(lmode(fx, "lib/util"), S_IFDIR | 0755);
    assert_int_equal(lmode(fx, "conf"), S_IFDIR | 0755); /* setgid and sticky dropped */
    assert_int_equal(count_dir(fx->dest), 7);
    assert_outside_untouched(fx);
}

static void test_targz_normal_package(void **state)
{
    check_normal_package(state, FMT_TGZ);
}

static void test_zip_normal_package(void **state)
{
    check_normal_package(state, FMT_ZIP);
}

static void test_plain_tar_normal_package(void **state)
{
    check_normal_package(state, FMT_TAR);
}

static void test_umask_does_not_narrow_modes(void **state)
{
    fixture *fx = *state;
    const tent ents[] = {FILE_("a/b.py", "x")};
    mode_t old = umask(077);
    int rc = unpack(fx, FMT_TGZ, ents, N(ents));
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(lmode(fx, "a"), S_IFDIR | 0755);
    assert_int_equal(lmode(fx, "a/b.py"), S_IFREG | 0644);
}

static void test_absolute_path_refused(void **state)
{
    fixture *fx = *state;
    char evil[200];
    snprintf(evil, sizeof(evil), "%s/evil", fx->outside);
    const fmt fmts[] = {FMT_TGZ, FMT_ZIP};
    for (size_t i = 0; i < N(fmts); i++) {
        const tent ents[] = {FILE_("ok.py", "x"), FILE_(evil, "pwned")};
        assert_refused(fx, unpack(fx, fmts[i], ents, N(ents)));
        assert_non_null(strstr(fx->err, "absolute"));
        reset_dest(fx);
    }
}

static void test_dotdot_refused(void **state)
{
    fixture *fx = *state;
    const char *paths[] = {
        "../outside/evil", "a/../../outside/evil", "a/../b", "a/..", "..", "a/./b", "a//b"};
    const fmt fmts[] = {FMT_TGZ, FMT_ZIP};
    for (size_t f = 0; f < N(fmts); f++) {
        for (size_t i = 0; i < N(paths); i++) {
            const tent ents[] = {FILE_("ok.py", "x"), FILE_(paths[i], "pwned")};
            assert_refused(fx, unpack(fx, fmts[f], ents, N(ents)));
            assert_false(exists_rel(fx, "b"));
            reset_dest(fx);
        }
    }
    const tent ents[] = {FILE_("../x", "pwned")};
    assert_refused(fx, unpack(fx, FMT_TGZ, ents, N(ents)));
    assert_string_equal(fx->err, "package entry '../x' leaves the package");
}

static void test_long_names_refused(void **state)
{
    fixture *fx = *state;
    char comp[300];
    memset(comp, 'c', 256);
    comp[256] = '\0';
    const tent a[] = {FILE_(comp, "x")};
    assert_refused(fx, unpack(fx, FMT_TGZ, a, N(a)));
    reset_dest(fx);

    char *longp = malloc(5000);
    assert_non_null(longp);
    size_t n = 0;
    while (n < 4100)
        memcpy(longp + n, "abcd/", 5), n += 5;
    memcpy(longp + n, "f", 2);
    const tent b[] = {FILE_(longp, "x")};
    assert_refused(fx, unpack(fx, FMT_TGZ, b, N(b)));
    free(longp);
}

static void test_symlinks_inside_ok(void **state)
{
    fixture *fx = *state;
    const tent ents[] = {
        FILE_("lib/real.txt", "real"),
        SYMLINK_("link", "lib/real.txt"),
        SYMLINK_("lib/up", "../link"),
        SYMLINK_("lib/self", "."),
        SYMLINK_("dangling", "not/yet"),
        /* s resolves to the root, so the kernel would take "s/../c" above it;
         * the target is stored in its lexical form instead */
        SYMLINK_("a/b/s", "../.."),
        SYMLINK_("a/b/L", "s/../c"),
    };
    assert_int_equal(unpack(fx, FMT_TGZ, ents, N(ents)), 0);
    assert_content(fx, "link", "real");
    assert_content(fx, "lib/up", "real");
    assert_true(S_ISLNK(lmode(fx, "link")));
    char path[256], target[256];
    snprintf(path, sizeof(path), "%s/a/b/L", fx->dest);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "c");
    snprintf(path, sizeof(path), "%s/a/b/s", fx->dest);
    n = readlink(path, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../..");
    assert_outside_untouched(fx);
}

static void test_zip_symlink_inside_ok(void **state)
{
    fixture *fx = *state;
    const tent ents[] = {FILE_("real.txt", "real"), SYMLINK_("link", "real.txt")};
    assert_int_equal(unpack(fx, FMT_ZIP, ents, N(ents)), 0);
    assert_true(S_ISLNK(lmode(fx, "link")));
    assert_content(fx, "link", "real");
}

static void test_symlink_outward_refused(void **state)
{
    fixture *fx = *state;
    const char *targets[] = {fx->outside, "/etc", "../../etc", "..", "a/../..", "../outside", ""};
    for (size_t i = 0; i < N(targets); i++) {
        const tent ents[] = {FILE_("ok.py", "x"), SYMLINK_("evil", targets[i]),
                             FILE_("evil/secret", "pwned")};
        assert_refused(fx, unpack(fx, FMT_TGZ, ents, N(ents)));
        assert_false(exists_rel(fx, "evil"));
        reset_dest(fx);
    }
    const tent deep[] = {FILE_("ok.py", "x"), SYMLINK_("a/b/evil", "../../../outside")};
    assert_refused(fx, unpack(fx, FMT_TGZ, deep, N(deep)));
    reset_dest(fx);
    const tent zip[] = {FILE_("ok.py", "x"), SYMLINK_("evil", "../outside")};
    assert_refused(fx, unpack(fx, FMT_ZIP, zip, N(zip)));
}

static void test_write_through_symlink_refused(void **state)
{
    fixture *fx = *state;
    const tent self[] = {SYMLINK_("d", "."), FILE_("d/x", "pwned")};
    assert_refused(fx, unpack(fx, FMT_TGZ, self, N(self)));
    assert_false(exists_rel(fx, "x"));
    reset_dest(fx);

    /* the symlink is a middle component of a directory that exists */
    const tent sub[] = {DIR_("sub/deeper/"), SYMLINK_("s", "sub"), FILE_("s/deeper/x", "pwned")};
    assert_refused(fx, unpack(fx, FMT_TGZ, sub, N(sub)));
    assert_int_equal(count_dir(fx->dest), 2);
    assert_false(exists_rel(fx, "sub/deeper/x"));
    assert_int_equal(count_dir(fx->base), 2);
    reset_dest(fx);

    /* a file entry on the symlink's own path must not write through it */
    const tent onto[] = {FILE_("real", "r"), SYMLINK_("l", "real"), FILE_("l", "pwned")};
    assert_refused(fx, unpack(fx, FMT_TGZ, onto, N(onto)));
    assert_content(fx, "real", "r");
    assert_true(S_ISLNK(lmode(fx, "l")));
    reset_dest(fx);

    /* a destination that is not empty (here: a planted link) is not used */
    char link[200];
    snprintf(link, sizeof(link), "%s/planted", fx->dest);
    assert_int_equal(symlink(fx->outside, link), 0);
    const tent through[] = {FILE_("planted/evil", "pwned")};
    fx->err[0] = '\0';
    size_t len;
    unsigned char *buf = build(FMT_TGZ, through, N(through), &len);
    int rc = package_unpack_archive(buf, len, fx->dest, NULL, fx->err, sizeof(fx->err));
    free(buf);
    assert_int_equal(rc, -ENOTEMPTY); /* dest must start empty */
    assert_outside_untouched(fx);
}

static void test_hardlinks(void **state)
{
    fixture *fx = *state;
    const tent ok[] = {FILE_("lib/a.txt", "A"), HARDLINK_("b.txt", "lib/a.txt"),
                       HARDLINK_("c.txt", "./lib/a.txt")};
    assert_int_equal(unpack(fx, FMT_TAR, ok, N(ok)), 0);
    assert_content(fx, "b.txt", "A");
    char p1[200], p2[200];
    struct stat s1, s2;
    snprintf(p1, sizeof(p1), "%s/lib/a.txt", fx->dest);
    snprintf(p2, sizeof(p2), "%s/c.txt", fx->dest);
    assert_int_equal(stat(p1, &s1), 0);
    assert_int_equal(stat(p2, &s2), 0);
    assert_int_equal(s1.st_ino, s2.st_ino);
    assert_int_equal(s1.st_nlink, 3);
    reset_dest(fx);

    char abs_secret[200];
    snprintf(abs_secret, sizeof(abs_secret), "%s/secret", fx->outside);
    const char *targets[] = {abs_secret, "/etc/passwd", "../outside/secret",
                             "nope",     "dir",         "sym",
                             "sym/f",    "x.txt",       "nodir/f"};
    for (size_t i = 0; i < N(targets); i++) {
        const tent bad[] = {FILE_("ok.txt", "x"), DIR_("dir/"), SYMLINK_("sym", "dir"),
                            HARDLINK_("x.txt", targets[i])};
        assert_refused(fx, unpack(fx, FMT_TGZ, bad, N(bad)));
        assert_false(exists_rel(fx, "x.txt"));
        reset_dest(fx);
    }
}

static void test_special_files_refused(void **state)
{
    fixture *fx = *state;
    const mode_t types[] = {AE_IFCHR, AE_IFBLK, AE_IFIFO};
    for (size_t i = 0; i < N(types); i++) {
        const tent ents[] = {FILE_("ok.py", "x"), {.path = "dev", .type = types[i], .perm = 0666}};
        assert_refused(fx, unpack(fx, FMT_TGZ, ents, N(ents)));
        assert_false(exists_rel(fx, "dev"));
        reset_dest(fx);
    }
}

static void test_nested_dirs_in_any_order(void **state)
{
    fixture *fx = *state;
    char deep[2100] = "", deeper[2200], half[1100] = "";
    for (int i = 0; i < 1000; i++)
        memcpy(deep + 2 * i, "d/", 3);
    for (int i = 0; i < 500; i++)
        memcpy(half + 2 * i, "d/", 3);
    snprintf(deeper, sizeof(deeper), "%sx/y/h", deep);
    memcpy(deep + 2000, "f", 2);
    memcpy(half + 1000, "g", 2);
    const tent ents[] = {
        FILE_("a/b/c/d/f1", "1"), FILE_("a/b/x/y/f2", "2"), FILE_("a/f3", "3"),     DIR_("a/b/"),
        FILE_(deep, "deep"),      FILE_(half, "half"),      FILE_(deeper, "deeper")};
    assert_int_equal(unpack(fx, FMT_TGZ, ents, N(ents)), 0);
    assert_content(fx, "a/b/c/d/f1", "1");
    assert_content(fx, "a/b/x/y/f2", "2");
    assert_content(fx, "a/f3", "3");
    assert_content(fx, deep, "deep");
    assert_content(fx, half, "half");
    assert_content(fx, deeper, "deeper");
    assert_int_equal(count_dir(fx->dest), 2);
}

static void test_duplicates(void **state)
{
    fixture *fx = *state;
    const tent twice[] = {FILE_("a", "first"), FILE_("a", "second")};
    assert_int_equal(unpack(fx, FMT_TGZ, twice, N(twice)), 0);
    assert_content(fx, "a", "second");
    reset_dest(fx);

    const tent dir_again[] = {FILE_("d/f", "x"), DIR_("d/"), DIR_("./")};
    assert_int_equal(unpack(fx, FMT_TGZ, dir_again, N(dir_again)), 0);
    reset_dest(fx);

    const tent over_dir[] = {FILE_("d/f", "x"), FILE_("d", "y")};
    assert_refused(fx, unpack(fx, FMT_TGZ, over_dir, N(over_dir)));
    assert_content(fx, "d/f", "x");
    reset_dest(fx);

    const tent dir_over_file[] = {FILE_("f", "x"), DIR_("f/")};
    assert_refused(fx, unpack(fx, FMT_TGZ, dir_over_file, N(dir_over_file)));
    reset_dest(fx);

    const tent link_over_file[] = {FILE_("f", "x"), SYMLINK_("f", "g")};
    assert_refused(fx, unpack(fx, FMT_TGZ, link_over_file, N(link_over_file)));
    reset_dest(fx);

    const tent under_file[] = {FILE_("f", "x"), FILE_("f/g", "y")};
    assert_refused(fx, unpack(fx, FMT_TGZ, under_file, N(under_file)));
}

static void test_entry_limit(void **state)
{
    fixture *fx = *state;
    package_limits lim;
    package_limits_default(&lim);
    lim.max_entries = 3;
    const tent three[] = {FILE_("a", "1"), FILE_("b", "2"), FILE_("c", "3")};
    assert_int_equal(unpack_with(fx, FMT_TGZ, three, N(three), &lim), 0);
    reset_dest(fx);
    const tent five[] = {FILE_("a", "1"), FILE_("b", "2"), FILE_("c", "3"), FILE_("d", "4"),
                         FILE_("e", "5")};
    assert_refused(fx, unpack_with(fx, FMT_TGZ, five, N(five), &lim));
    assert_non_null(strstr(fx->err, "entries"));
    reset_dest(fx);
    /* directories created implicitly count too */
    const tent deep[] = {FILE_("a/b/c/f", "1")};
    assert_refused(fx, unpack_with(fx, FMT_ZIP, deep, N(deep), &lim));
}

static void test_size_limit(void **state)
{
    fixture *fx = *state;
    package_limits lim;
    package_limits_default(&lim);
    lim.max_unpacked = 1000;
    const tent exact[] = {{.path = "a", .type = AE_IFREG, .perm = 0644, .size = 600},
                          {.path = "b", .type = AE_IFREG, .perm = 0644, .size = 400}};
    assert_int_equal(unpack_with(fx, FMT_TGZ, exact, N(exact), &lim), 0);
    reset_dest(fx);
    const tent over[] = {{.path = "a", .type = AE_IFREG, .perm = 0644, .size = 600},
                         {.path = "b", .type = AE_IFREG, .perm = 0644, .size = 401}};
    assert_refused(fx, unpack_with(fx, FMT_TGZ, over, N(over), &lim));
    assert_non_null(strstr(fx->err, "1000 bytes"));
    reset_dest(fx);
    const tent bomb[] = {{.path = "z", .type = AE_IFREG, .perm = 0644, .size = 4 << 20}};
    assert_refused(fx, unpack_with(fx, FMT_ZIP, bomb, N(bomb), &lim));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

/* Rewrites every uncompressed-size field of a zip (local header, data
 * descriptor, central directory) to `size`; returns how many it changed. */
static int zip_understate(unsigned char *z, size_t len, uint32_t size)
{
    int changed = 0;
    for (size_t i = 0; i + 46 <= len; i++) {
        uint32_t sig = rd32(z + i);
        if (sig == 0x04034b50 && rd32(z + i + 22) == (4u << 20))
            wr32(z + i + 22, size), changed++;
        else if (sig == 0x08074b50 && rd32(z + i + 12) == (4u << 20))
            wr32(z + i + 12, size), changed++;
        else if (sig == 0x02014b50 && rd32(z + i + 24) == (4u << 20))
            wr32(z + i + 24, size), changed++;
    }
    return changed;
}

static void test_size_limit_enforced_on_stream(void **state)
{
    fixture *fx = *state;
    package_limits lim;
    package_limits_default(&lim);
    lim.max_unpacked = 64 * 1024;
    const tent bomb[] = {{.path = "z", .type = AE_IFREG, .perm = 0644, .size = 4 << 20}};
    size_t len;
    unsigned char *zip = build(FMT_ZIP, bomb, N(bomb), &len);
    assert_true(zip_understate(zip, len, 10) > 0);
    int rc = package_unpack_archive(zip, len, fx->dest, &lim, fx->err, sizeof(fx->err));
    free(zip);
    assert_refused(fx, rc);
    assert_non_null(strstr(fx->err, "65536 bytes"));
    size_t got = 0;
    char *data = read_rel(fx, "z", &got);
    assert_true(got <= lim.max_unpacked);
    free(data);
}

static void test_corrupt_refused(void **state)
{
    fixture *fx = *state;
    unsigned char junk[4096];
    srand(42);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rand();
    assert_refused(
        fx, package_unpack_archive(junk, sizeof(junk), fx->dest, NULL, fx->err, sizeof(fx->err)));
    reset_dest(fx);

    const tent ents[] = {{.path = "big", .type = AE_IFREG, .perm = 0644, .size = 100000},
                         FILE_("after", "x")};
    const fmt fmts[] = {FMT_TGZ, FMT_ZIP};
    for (size_t f = 0; f < N(fmts); f++) {
        size_t len;
        unsigned char *buf = build(fmts[f], ents, N(ents), &len);
        fx->err[0] = '\0';
        assert_refused(
            fx, package_unpack_archive(buf, len / 2, fx->dest, NULL, fx->err, sizeof(fx->err)));
        reset_dest(fx);
        free(buf);
    }

    fx->err[0] = '\0';
    assert_refused(fx, package_unpack_archive(junk, 0, fx->dest, NULL, fx->err, sizeof(fx->err)));
    fx->err[0] = '\0';
    /* only the length is looked at before refusing */
    assert_refused(fx, package_unpack_archive(junk, PACKAGE_MAX_COMPRESSED + 1, fx->dest, NULL,
                                              fx->err, sizeof(fx->err)));
}

static void test_empty_package_refused(void **state)
{
    fixture *fx = *state;
    const tent dirs[] = {DIR_("a/"), DIR_("a/b/"), SYMLINK_("l", "a")};
    assert_refused(fx, unpack(fx, FMT_TGZ, dirs, N(dirs)));
    assert_non_null(strstr(fx->err, "empty"));
    reset_dest(fx);
    assert_refused(fx, unpack(fx, FMT_TAR, NULL, 0));
    reset_dest(fx);
    assert_refused(fx, unpack(fx, FMT_ZIP, NULL, 0));
}

static void test_files_map(void **state)
{
    fixture *fx = *state;
    json_t *files = json_pack("{s:s, s:s, s:s, s:s}", "main.py", "import pkg.mod\n",
                              "pkg/__init__.py", "", "pkg/mod/a.py", "A = 1\n", "./b.txt", "b");
    assert_non_null(files);
    assert_int_equal(package_write_files(files, fx->dest, NULL, fx->err, sizeof(fx->err)), 0);
    json_decref(files);
    assert_content(fx, "main.py", "import pkg.mod\n");
    assert_content(fx, "pkg/__init__.py", "");
    assert_content(fx, "pkg/mod/a.py", "A = 1\n");
    assert_content(fx, "b.txt", "b");
    assert_int_equal(lmode(fx, "pkg/mod/a.py"), S_IFREG | 0644);
    assert_int_equal(lmode(fx, "pkg/mod"), S_IFDIR | 0755);
    assert_outside_untouched(fx);
}

static void files_refused(fixture *fx, json_t *files, const package_limits *lim)
{
    fx->err[0] = '\0';
    int rc = package_write_files(files, fx->dest, lim, fx->err, sizeof(fx->err));
    json_decref(files);
    assert_refused(fx, rc);
    reset_dest(fx);
}

static void test_files_map_refusals(void **state)
{
    fixture *fx = *state;
    files_refused(fx, json_pack("{s:s, s:i}", "ok.py", "x", "n.py", 3), NULL);
    files_refused(fx, json_pack("{s:s, s:n}", "ok.py", "x", "n.py"), NULL);
    files_refused(fx, json_pack("{s:s}", "../outside/evil", "x"), NULL);
    files_refused(fx, json_pack("{s:s}", "a/../../outside/evil", "x"), NULL);
    char abs_path[200];
    snprintf(abs_path, sizeof(abs_path), "%s/evil", fx->outside);
    files_refused(fx, json_pack("{s:s}", abs_path, "x"), NULL);
    files_refused(fx, json_pack("{s:s}", "", "x"), NULL);
    files_refused(fx, json_pack("{s:s, s:s}", "a", "x", "a/b", "y"), NULL);
    files_refused(fx, json_pack("[s]", "main.py"), NULL);
    files_refused(fx, json_object(), NULL);

    json_t *nul = json_object();
    json_object_setn_new(nul, "a\0/../../x", 10, json_string("x"));
    files_refused(fx, nul, NULL);

    package_limits lim;
    package_limits_default(&lim);
    lim.max_unpacked = 3;
    files_refused(fx, json_pack("{s:s, s:s}", "a", "12", "b", "34"), &lim);
    lim.max_unpacked = PACKAGE_MAX_UNPACKED;
    lim.max_entries = 2;
    files_refused(fx, json_pack("{s:s}", "a/b/c", "1"), &lim);
}

/* Makes a chain of `depth` nested directories "d/d/d/..." under `root`, with
 * a symlink to `outside` and a file at the bottom. */
static void make_deep(const char *root, int depth, const char *outside)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < depth; i++) {
        assert_int_equal(mkdirat(fd, "d", 0755), 0);
        int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    assert_int_equal(symlinkat(outside, fd, "out"), 0);
    int f = openat(fd, "leaf", O_WRONLY | O_CREAT, 0644);
    assert_true(f >= 0);
    close(f);
    close(fd);
}

static void test_remove_tree(void **state)
{
    fixture *fx = *state;
    char p[300];
    snprintf(p, sizeof(p), "%s/sub", fx->dest);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub/to_outside", fx->dest);
    assert_int_equal(symlink(fx->outside, p), 0);
    snprintf(p, sizeof(p), "%s/sub/to_secret", fx->dest);
    char secret[200];
    snprintf(secret, sizeof(secret), "%s/secret", fx->outside);
    assert_int_equal(symlink(secret, p), 0);
    snprintf(p, sizeof(p), "%s/file", fx->dest);
    write_text(p, "x");
    snprintf(p, sizeof(p), "%s/hard", fx->dest);
    assert_int_equal(link(secret, p), 0);
    snprintf(p, sizeof(p), "%s/sub/empty", fx->dest);
    assert_int_equal(mkdir(p, 0700), 0);
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof(p), "%s/sub/f%d", fx->dest, i);
        write_text(p, "x");
    }
    make_deep(fx->dest, 2100, fx->outside); /* deeper than a path may be long, more than fds */

    assert_int_equal(fsutil_remove_tree(fx->dest), 0);
    struct stat st;
    assert_int_equal(lstat(fx->dest, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(count_dir(fx->outside), 1);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_size, 1);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(fsutil_remove_tree(fx->dest), 0); /* missing is fine */

    /* a symlink given as the path is removed, not followed */
    snprintf(p, sizeof(p), "%s/link", fx->base);
    assert_int_equal(symlink(fx->outside, p), 0);
    assert_int_equal(fsutil_remove_tree(p), 0);
    assert_int_equal(count_dir(fx->outside), 1);
    assert_int_equal(mkdir(fx->dest, 0755), 0);
    assert_outside_untouched(fx);
}

/* --- out of memory (tests/unit/failalloc.h): unpacking each format and
 * writing a files map, into a fresh folder each run --- */

typedef struct oom_case {
    fixture *fx;
    unsigned char *archive[3];
    size_t len[3];
    json_t *files;
} oom_case;

/* The package code says a failed allocation as -ENOMEM, or as -EINVAL
 * when the message says so (libarchive's own "out of memory" errors). */
static int package_rc(const fixture *fx, int rc)
{
    if (rc == -EINVAL && failalloc_fired() && strstr(fx->err, "memory"))
        return -ENOMEM;
    return rc;
}

static int package_scenario(void *ud)
{
    oom_case *c = ud;
    int rc = 0;
    for (int f = 0; rc == 0 && f < 3; f++) {
        reset_dest(c->fx);
        c->fx->err[0] = '\0';
        rc = package_rc(c->fx, package_unpack_archive(c->archive[f], c->len[f], c->fx->dest, NULL,
                                                      c->fx->err, sizeof c->fx->err));
        if (rc == 0) { /* read without allocating: the count goes on */
            char path[300], got[32] = "";
            snprintf(path, sizeof path, "%s/lib/util/helpers.py", c->fx->dest);
            FILE *fp = fopen(path, "r");
            assert_non_null(fp);
            assert_true(fread(got, 1, sizeof got - 1, fp) > 0);
            fclose(fp);
            assert_string_equal(got, "def h(): pass\n");
        }
    }
    if (rc == 0) {
        reset_dest(c->fx);
        c->fx->err[0] = '\0';
        rc = package_rc(
            c->fx, package_write_files(c->files, c->fx->dest, NULL, c->fx->err, sizeof c->fx->err));
    }
    if (rc != 0 && rc != -ENOMEM)
        print_error("package: %d %s\n", rc, c->fx->err);
    return rc;
}

static void test_out_of_memory(void **state)
{
    oom_case c = {.fx = *state};
    const tent ents[] = {
        FILE_("main.py", "print('hi')\n"),
        DIR_("lib/"),
        FILE_("lib/util/helpers.py", "def h(): pass\n"),
        SYMLINK_("link", "main.py"),
    };
    for (int f = 0; f < 3; f++)
        c.archive[f] = build((fmt)f, ents, N(ents), &c.len[f]);
    c.files = json_pack("{s:s,s:s}", "main.py", "x = 1\n", "lib/a/b.py", "y = 2\n");
    assert_non_null(c.files);
    assert_true(failalloc_run("package", package_scenario, &c, 0) > 0);
    for (int f = 0; f < 3; f++)
        free(c.archive[f]);
    json_decref(c.files);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_targz_normal_package),
        T(test_out_of_memory),
        T(test_zip_normal_package),
        T(test_plain_tar_normal_package),
        T(test_umask_does_not_narrow_modes),
        T(test_absolute_path_refused),
        T(test_dotdot_refused),
        T(test_long_names_refused),
        T(test_symlinks_inside_ok),
        T(test_zip_symlink_inside_ok),
        T(test_symlink_outward_refused),
        T(test_write_through_symlink_refused),
        T(test_hardlinks),
        T(test_special_files_refused),
        T(test_nested_dirs_in_any_order),
        T(test_duplicates),
        T(test_entry_limit),
        T(test_size_limit),
        T(test_size_limit_enforced_on_stream),
        T(test_corrupt_refused),
        T(test_empty_package_refused),
        T(test_files_map),
        T(test_files_map_refusals),
        T(test_remove_tree),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
