/*
 * test_auth.c — tokens without a daemon: the rules of a spec, the verdicts
 * of a check (scope, glob, expiry, revocation), what is stored (a hash,
 * never the secret), the first admin token file, the audit order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "registry.h"

struct fx {
    char dir[64];
    char path[96];
    registry *reg;
    auth *a;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/hearth-test-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/hearth.db", f->dir);
    assert_int_equal(registry_open(f->path, &f->reg), 0);
    assert_int_equal(auth_open(f->reg, false, &f->a), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    auth_free(f->a);
    registry_close(f->reg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_globs_and_names(void **state)
{
    (void)state;
    assert_true(auth_glob_valid("*"));
    assert_true(auth_glob_valid("team-a-*"));
    assert_true(auth_glob_valid("team-?-[ab]"));
    assert_true(auth_glob_valid("[!x]*"));
    assert_false(auth_glob_valid(""));
    assert_false(auth_glob_valid("Team-*"));
    assert_false(auth_glob_valid("a/b"));
    assert_false(auth_glob_valid("team-[a"));
    assert_false(auth_glob_valid("[]"));
    assert_false(auth_glob_valid("a\\*"));
    assert_true(auth_name_valid("ci.team-a_1"));
    assert_false(auth_name_valid("-ci"));
    assert_false(auth_name_valid("a b"));
}

static void test_spec_rules(void **state)
{
    (void)state;
    char err[256];
    auth_spec ok = {.name = "ci", .scopes = 1u << AUTH_SCOPE_DEPLOY, .functions = "a-*"};
    assert_int_equal(auth_spec_check(&ok, err, sizeof err), 0);
    auth_spec s = ok;
    s.scopes = 0;
    assert_int_equal(auth_spec_check(&s, err, sizeof err), -EINVAL);
    s = ok;
    s.scopes = 1u << AUTH_SCOPE_ADMIN;
    assert_int_equal(auth_spec_check(&s, err, sizeof err), -EINVAL); /* admin with a glob */
    assert_non_null(strstr(err, "admin"));
    s = ok;
    s.expires = true;
    s.expires_in_s = 0;
    assert_int_equal(auth_spec_check(&s, err, sizeof err), -EINVAL);
    s.expires_in_s = AUTH_EXPIRES_MAX_S + 1;
    assert_int_equal(auth_spec_check(&s, err, sizeof err), -EINVAL);
    assert_int_equal(auth_scope_parse("metrics", 7), AUTH_SCOPE_METRICS);
    assert_int_equal(auth_scope_parse("metric", 6), -1);
}

static void test_check_verdicts(void **state)
{
    struct fx *f = *state;
    char secret[AUTH_SECRET_LEN + 1], header[80];
    registry_token t;
    auth_spec spec = {.name = "ci",
                      .scopes = 1u << AUTH_SCOPE_DEPLOY | 1u << AUTH_SCOPE_INVOKE,
                      .functions = "team-a-*"};
    assert_int_equal(auth_create(f->a, &spec, secret, &t), 0);
    assert_int_equal(strlen(secret), AUTH_SECRET_LEN);
    assert_memory_equal(secret, "hth_", 4);
    snprintf(header, sizeof header, "Bearer %s", secret);
    const auth_token *who;
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_DEPLOY, "team-a-x", &who), AUTH_OK);
    assert_string_equal(who->name, "ci");
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_DEPLOY, "team-b-x", &who),
                     AUTH_NO_FUNCTION);
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_LOGS, "team-a-x", &who), AUTH_NO_SCOPE);
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_ADMIN, NULL, &who), AUTH_NO_SCOPE);
    assert_int_equal(auth_check(f->a, NULL, AUTH_SCOPE_READ, NULL, &who), AUTH_NO_TOKEN);
    assert_int_equal(auth_check(f->a, NULL, AUTH_SCOPE_PUBLIC, NULL, &who), AUTH_OK);
    header[strlen(header) - 1] ^= 1;
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_DEPLOY, "team-a-x", &who), AUTH_BAD_TOKEN);
    assert_null(who);
    /* the same name again, while live */
    char other[AUTH_SECRET_LEN + 1];
    assert_int_equal(auth_create(f->a, &spec, other, &t), -EEXIST);
}

static void test_revoke_and_reload(void **state)
{
    struct fx *f = *state;
    char secret[AUTH_SECRET_LEN + 1], header[80];
    registry_token t;
    auth_spec spec = {.name = "gone", .scopes = 1u << AUTH_SCOPE_READ};
    assert_int_equal(auth_create(f->a, &spec, secret, &t), 0);
    snprintf(header, sizeof header, "Bearer %s", secret);
    const auth_token *who;
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_READ, NULL, &who), AUTH_OK);
    assert_int_equal(auth_revoke(f->a, t.id), 0);
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_READ, NULL, &who), AUTH_BAD_TOKEN);
    assert_int_equal(auth_revoke(f->a, t.id), -ENOENT);
    assert_int_equal(auth_reload(f->a), 0); /* a reload does not bring it back */
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_READ, NULL, &who), AUTH_BAD_TOKEN);
    /* the secret is nowhere in the database file */
    FILE *db = fopen(f->path, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, 1 << 20, db);
    fclose(db);
    assert_null(memmem(buf, n, secret + 4, AUTH_SECRET_LEN - 4));
    free(buf);
}

static void test_bootstrap_writes_once(void **state)
{
    struct fx *f = *state;
    char file[128];
    snprintf(file, sizeof file, "%s/admin-token", f->dir);
    assert_int_equal(auth_bootstrap(f->a, file), 1);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    char line[128] = "";
    FILE *fp = fopen(file, "r");
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    line[strcspn(line, "\n")] = '\0';
    char header[160];
    snprintf(header, sizeof header, "Bearer %s", line);
    const auth_token *who;
    assert_int_equal(auth_check(f->a, header, AUTH_SCOPE_ADMIN, NULL, &who), AUTH_OK);
    assert_int_equal(auth_bootstrap(f->a, file), 0); /* a live token exists now */
}

static int count_audit(const registry_audit *a, void *ud)
{
    int *n = ud;
    if (*n == 0)
        assert_string_equal(a->action, "second");
    (*n)++;
    return 0;
}

static void test_audit_newest_first(void **state)
{
    struct fx *f = *state;
    auth_audit(f->a, "ci", "", "first", "x");
    auth_audit(f->a, "ci", "", "second", "y");
    int n = 0;
    assert_int_equal(registry_audit_list(f->reg, 10, count_audit, &n), 0);
    assert_int_equal(n, 2);
}

/* SigV4's sealed secret: opens to the token with the key it was sealed
 * with, is absent without a key, and does not open with another key. */
static void test_sigv4_sealed_secret(void **state)
{
    struct fx *f = *state;
    char key[128], secret[AUTH_SECRET_LEN + 1], opened[AUTH_SECRET_LEN + 1];
    registry_token rt;
    auth_spec spec = {.name = "plain", .scopes = 1u << AUTH_SCOPE_READ};
    assert_int_equal(auth_create(f->a, &spec, secret, &rt), 0);
    assert_false(rt.has_sigv4);
    const auth_token *t = auth_find_id(f->a, rt.id);
    assert_non_null(t);
    assert_int_equal(auth_sigv4_secret(f->a, t, opened), -ENOKEY);

    snprintf(key, sizeof key, "%s/sigv4.key", f->dir);
    assert_int_equal(auth_sigv4_key_load(f->a, key), 0);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    spec.name = "sealed";
    assert_int_equal(auth_create(f->a, &spec, secret, &rt), 0);
    assert_true(rt.has_sigv4);
    assert_null(memmem(rt.sigv4, sizeof rt.sigv4, secret + 4, 16)); /* not in the clear */
    t = auth_find_id(f->a, rt.id);
    assert_non_null(t);
    assert_int_equal(auth_sigv4_secret(f->a, t, opened), 0);
    assert_string_equal(opened, secret);
    assert_int_equal(auth_check_token(t, AUTH_SCOPE_READ, "f"), AUTH_OK);
    assert_int_equal(auth_check_token(t, AUTH_SCOPE_DEPLOY, "f"), AUTH_NO_SCOPE);

    /* Another daemon's key: the blob does not open. */
    assert_int_equal(unlink(key), 0);
    assert_int_equal(auth_sigv4_key_load(f->a, key), 0); /* a new random key */
    t = auth_find_id(f->a, rt.id);
    assert_int_equal(auth_sigv4_secret(f->a, t, opened), -EBADMSG);
    /* Revoked: no longer found by its id. */
    assert_int_equal(auth_revoke(f->a, rt.id), 0);
    assert_null(auth_find_id(f->a, rt.id));
    assert_null(auth_find_id(f->a, "not-an-id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_globs_and_names),
        cmocka_unit_test(test_spec_rules),
        cmocka_unit_test_setup_teardown(test_check_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_writes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4_sealed_secret, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
