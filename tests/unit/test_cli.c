/*
 * test_cli.c — the CLI's pure parts, without a daemon: .hearthignore rules
 * (ignore.c), YAML scalars and shapes to JSON (stack.c), and a packed
 * directory read back with libarchive (pack.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/ignore.h"
#include "cli/pack.h"
#include "cli/stack.h"

/* main.c's, which this test does not link */
int cli_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

static ignore rules(const char *const *lines)
{
    ignore ig = {0};
    for (; *lines; lines++)
        assert_int_equal(ignore_add(&ig, *lines), 0);
    return ig;
}

static void test_ignore_gitignore_rules(void **state)
{
    (void)state;
    const char *const lines[] = {
        "# a comment\n", "\n",         "*.log\n",   "!keep.log\n",   "build/\n", "/top.txt\n",
        "docs/*.md\n",   "**/cache\n", "\\#hash\n", "trailing   \n", NULL};
    ignore ig = rules(lines);
    assert_true(ignore_match(&ig, "a.log", false));
    assert_true(ignore_match(&ig, "deep/down/b.log", false));
    assert_false(ignore_match(&ig, "deep/keep.log", false)); /* negated */
    assert_true(ignore_match(&ig, "build", true));
    assert_true(ignore_match(&ig, "src/build", true));
    assert_false(ignore_match(&ig, "build", false)); /* dir/ matches directories only */
    assert_true(ignore_match(&ig, "top.txt", false));
    assert_false(ignore_match(&ig, "sub/top.txt", false)); /* anchored by the leading / */
    assert_true(ignore_match(&ig, "docs/a.md", false));
    assert_false(ignore_match(&ig, "docs/x/a.md", false)); /* * stays within a segment */
    assert_true(ignore_match(&ig, "cache", true));
    assert_true(ignore_match(&ig, "a/b/cache", true));
    assert_true(ignore_match(&ig, "#hash", false));
    assert_true(ignore_match(&ig, "trailing", false));
    assert_false(ignore_match(&ig, "main.py", false));
    assert_false(ignore_match(&ig, "# a comment", false));
    ignore_release(&ig);
}

static json_t *yaml(const char *text)
{
    char err[256];
    json_t *j = stack_yaml_to_json(text, strlen(text), err, sizeof(err));
    if (!j)
        fprintf(stderr, "yaml: %s\n", err);
    return j;
}

static void test_yaml_scalars_are_typed(void **state)
{
    (void)state;
    json_t *j = yaml("a: 256\nb: true\nc: ~\nd: '256'\ne: \"@every 1m\"\nf: 1.5\n"
                     "g: main.handler\nh: [x, 2]\ni: {k: v}\nj:\nk: -3\nl: 0 9 * * *\n");
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 256);
    assert_true(json_is_true(json_object_get(j, "b")));
    assert_true(json_is_null(json_object_get(j, "c")));
    assert_string_equal(json_string_value(json_object_get(j, "d")), "256");
    assert_string_equal(json_string_value(json_object_get(j, "e")), "@every 1m");
    assert_true(json_is_real(json_object_get(j, "f")));
    assert_string_equal(json_string_value(json_object_get(j, "g")), "main.handler");
    assert_int_equal(json_array_size(json_object_get(j, "h")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "i"), "k")), "v");
    assert_true(json_is_null(json_object_get(j, "j")));
    assert_int_equal(json_integer_value(json_object_get(j, "k")), -3);
    assert_string_equal(json_string_value(json_object_get(j, "l")), "0 9 * * *");
    json_decref(j);
}

static void test_yaml_refuses_bad_documents(void **state)
{
    (void)state;
    char err[256];
    const char *dup = "a: 1\na: 2\n";
    assert_null(stack_yaml_to_json(dup, strlen(dup), err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    const char *broken = "a: [1, 2\n";
    assert_null(stack_yaml_to_json(broken, strlen(broken), err, sizeof(err)));
    assert_non_null(strstr(err, "line"));
    /* a billion laughs: aliases that would expand past the node ceiling */
    char bomb[4096];
    size_t used = (size_t)snprintf(bomb, sizeof(bomb), "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        used += (size_t)snprintf(bomb + used, sizeof(bomb) - used,
                                 "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
                                 i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    assert_null(stack_yaml_to_json(bomb, used, err, sizeof(err)));
    assert_non_null(strstr(err, "too many nodes"));
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_pack_leaves_out_ignored_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/hearth-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[512];
    snprintf(p, sizeof(p), "%s/main.py", dir);
    put(p, "def handler(e, c):\n    return 1\n");
    snprintf(p, sizeof(p), "%s/skip.txt", dir);
    put(p, "no");
    snprintf(p, sizeof(p), "%s/.hearthignore", dir);
    put(p, "skip.txt\n");
    buf out;
    assert_int_equal(pack_dir(dir, &out), 0);
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, out.data, out.len), ARCHIVE_OK);
    struct archive_entry *e;
    char names[256] = "";
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        strncat(names, archive_entry_pathname(e), sizeof(names) - strlen(names) - 2);
        strncat(names, ";", sizeof(names) - strlen(names) - 1);
        assert_int_equal(archive_entry_uid(e), 0);
    }
    archive_read_free(a);
    assert_string_equal(names, ".hearthignore;main.py;");
    buf_release(&out);
    char *b64 = pack_base64("hello", 5);
    assert_string_equal(b64, "aGVsbG8=");
    free(b64);
    snprintf(p, sizeof(p), "rm -rf '%s'", dir);
    assert_int_equal(system(p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ignore_gitignore_rules),
        cmocka_unit_test(test_yaml_scalars_are_typed),
        cmocka_unit_test(test_yaml_refuses_bad_documents),
        cmocka_unit_test(test_pack_leaves_out_ignored_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
