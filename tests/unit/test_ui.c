/*
 * test_ui.c — the dashboard's embedded files: every file of ui/ is in the
 * table with its bytes and a type the server will send, and only exact
 * plain names are found (tests/e2e/test_ui.py checks the answers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ui.h"

static void test_the_pages_files_are_embedded(void **state)
{
    (void)state;
    const char *want[] = {"index.html", "app.js", "style.css", "favicon.svg"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ui_asset *a = ui_find(want[i]);
        assert_non_null(a);
        assert_true(a->len > 0);
        assert_int_equal(strlen(a->etag), 18); /* "\"" + 16 hex + "\"" */
    }
    const ui_asset *index = ui_find("index.html");
    assert_non_null(strstr((const char *)index->data, "<script src=\"app.js\""));
}

/* A file added to ui/ without a type would be embedded and never served:
 * this says so at build time instead. */
static void test_every_embedded_file_has_a_type(void **state)
{
    (void)state;
    assert_true(ui_nassets >= 4);
    for (size_t i = 0; i < ui_nassets; i++) {
        assert_non_null(ui_content_type(ui_assets[i].name));
        assert_null(strchr(ui_assets[i].name, '/'));
        assert_true(ui_assets[i].name[0] != '.');
    }
}

static void test_only_exact_names_are_found(void **state)
{
    (void)state;
    const char *no[] = {"",          "/index.html", "./index.html", "../index.html", "INDEX.HTML",
                        "index.htm", "index.html/", "%69ndex.html", "x/app.js",      "app.js.map"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_null(ui_find(no[i]));
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(ui_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(ui_content_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(ui_content_type("style.css"), "text/css; charset=utf-8");
    assert_string_equal(ui_content_type("favicon.svg"), "image/svg+xml");
    assert_null(ui_content_type("notes.txt"));
    assert_null(ui_content_type(".js"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_pages_files_are_embedded),
        cmocka_unit_test(test_every_embedded_file_has_a_type),
        cmocka_unit_test(test_only_exact_names_are_found),
        cmocka_unit_test(test_content_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
