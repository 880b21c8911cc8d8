/*
 * cmd_manage.c — the commands around a function's life and its events:
 * versions, rollback, alias, invocations, retry, schedules, token, ui.
 *
 * Owns: their requests and output. Versions and aliases follow the issue 14
 * contracts (/work/contracts14.md: /versions, /rollback, /aliases/{alias}).
 */
#include "cli.h"
#include "http.h"
#include "output.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

/* Shows `j` as JSON (--json) and returns whether it did. */
static bool json_out(const cli *c, json_t *j)
{
    if (!c->json)
        return false;
    out_json(c, j);
    return true;
}

/* A whole number from 1 up, as every count and version here is. */
static int parse_count(const char *s, long long *out)
{
    uint64_t v;
    if (!decimal_parse(s, INT64_MAX, &v) || v == 0)
        return -EINVAL;
    *out = (long long)v;
    return 0;
}

static void versions_table(table *t, json_t *all)
{
    table_init(t, "VERSION", "CURRENT", "DIGEST", "CREATED", NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(all, "versions"), i, v)
    {
        char n[32];
        table_add(t, out_field(v, "version", n, sizeof(n)),
                  json_is_true(json_object_get(v, "current")) ? "*" : "",
                  json_string_value(json_object_get(v, "digest")),
                  json_string_value(json_object_get(v, "created")));
    }
}

int cmd_versions(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(CLI_USAGE, "usage: hearth versions N");
    char path[1024];
    if (cli_fn_path(argv[1], "/versions", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    return out_get(c, path, versions_table);
}

int cmd_rollback(cli *c, int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        return cli_fail(CLI_USAGE, "usage: hearth rollback N [VERSION]");
    char path[1024];
    if (cli_fn_path(argv[1], "/rollback", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    json_t *body = json_object();
    if (argc == 3) {
        long long v;
        if (parse_count(argv[2], &v) != 0) {
            json_decref(body);
            return cli_fail(CLI_USAGE, "'%s' is not a version number", argv[2]);
        }
        json_object_set_new(body, "version", json_integer(v));
    }
    json_t *fn;
    int rc = http_json_call(c, "POST", path, body, &fn);
    json_decref(body);
    if (rc == CLI_OK && !json_out(c, fn))
        printf("%s: version %lld is current\n", argv[1],
               (long long)json_integer_value(json_object_get(fn, "version")));
    json_decref(fn);
    return rc;
}

static void alias_row(table *t, const json_t *a)
{
    char v[32], w[256];
    table_add(t, json_string_value(json_object_get(a, "name")),
              out_field(a, "version", v, sizeof(v)), out_field(a, "weights", w, sizeof(w)),
              json_string_value(json_object_get(a, "updated")));
}

int cmd_alias(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"weight", required_argument, 0, 'w'}, {"delete", no_argument, 0, 'D'}, {0, 0, 0, 0}};
    json_t *weights = json_object();
    bool del = false;
    int o, rc = CLI_OK;
    optind = 0;
    while (rc == CLI_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'D') {
            del = true;
        } else if (o == 'w') {
            /* V=W: version V gets the share W of the alias's calls */
            const char *eq = strchr(optarg, '=');
            long long ver;
            char vs[32], *end;
            double share = eq ? strtod(eq + 1, &end) : 0;
            if (!eq || (size_t)(eq - optarg) >= sizeof(vs) || *end || eq[1] == '\0') {
                rc = cli_fail(CLI_USAGE, "--weight wants VERSION=SHARE, e.g. 4=0.1");
                break;
            }
            memcpy(vs, optarg, (size_t)(eq - optarg));
            vs[eq - optarg] = '\0';
            if (parse_count(vs, &ver) != 0 || !(share > 0 && share < 1)) {
                rc = cli_fail(CLI_USAGE, "--weight %s: a version and a share 0 < W < 1", optarg);
                break;
            }
            json_object_set_new(weights, vs, json_real(share));
        } else {
            rc = CLI_USAGE;
        }
    }
    int nargs = argc - optind;
    if (rc == CLI_OK && (nargs < 1 || nargs > 3 || (del && nargs != 2)))
        rc = cli_fail(CLI_USAGE, "usage: hearth alias N [ALIAS [VERSION] [--weight V=W ...]]");
    if (rc == CLI_OK && json_object_size(weights) && nargs != 3)
        rc = cli_fail(CLI_USAGE, "--weight goes with a VERSION");
    char path[1024], suffix[512] = "/aliases";
    if (rc == CLI_OK && nargs >= 2) {
        char *ea = http_escape(argv[optind + 1]);
        if (!ea)
            rc = cli_fail(CLI_FAIL, "out of memory");
        else if ((size_t)snprintf(suffix, sizeof(suffix), "/aliases/%s", ea) >= sizeof(suffix))
            rc = cli_fail(CLI_USAGE, "the alias name is too long");
        free(ea);
    }
    if (rc == CLI_OK)
        rc = cli_fn_path(argv[optind], suffix, path, sizeof(path));
    if (rc != CLI_OK) {
        json_decref(weights);
        return rc;
    }
    json_t *ans = NULL, *body = NULL;
    const char *method = del ? "DELETE" : "GET";
    if (nargs == 3) {
        long long v;
        if (parse_count(argv[optind + 2], &v) != 0) {
            json_decref(weights);
            return cli_fail(CLI_USAGE, "'%s' is not a version number", argv[optind + 2]);
        }
        body = json_pack("{sI}", "version", (json_int_t)v);
        if (json_object_size(weights))
            json_object_set(body, "weights", weights);
        method = "PUT";
    }
    rc = http_json_call(c, method, path, body, &ans);
    json_decref(body);
    json_decref(weights);
    if (rc != CLI_OK)
        return rc;
    if (del) {
        if (!c->json)
            printf("deleted alias %s of %s\n", argv[optind + 1], argv[optind]);
    } else if (!json_out(c, ans)) {
        table t;
        table_init(&t, "ALIAS", "VERSION", "WEIGHTS", "UPDATED", NULL);
        if (nargs == 1) {
            size_t i;
            json_t *a;
            json_array_foreach(json_object_get(ans, "aliases"), i, a) alias_row(&t, a);
        } else {
            alias_row(&t, ans);
        }
        table_flush(&t, c);
    }
    json_decref(ans);
    return CLI_OK;
}

static void invocations_table(table *t, json_t *all)
{
    table_init(t, "ID", "STATUS", "ATTEMPTS", "SOURCE", "CREATED", "ERROR", NULL);
    size_t i;
    json_t *inv;
    json_array_foreach(json_object_get(all, "invocations"), i, inv)
    {
        char a[32];
        json_t *err = json_object_get(inv, "error");
        table_add(t, json_string_value(json_object_get(inv, "id")),
                  json_string_value(json_object_get(inv, "status")),
                  out_field(inv, "attempts", a, sizeof(a)),
                  json_string_value(json_object_get(inv, "source")),
                  json_string_value(json_object_get(inv, "created_at")),
                  json_string_value(json_object_get(err, "message")));
    }
}

int cmd_invocations(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, 0, 's'}, {"limit", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    char query[256] = "";
    int o, rc = CLI_OK;
    optind = 0;
    while (rc == CLI_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 's')
            rc = cli_add_query(query, sizeof(query), "status", optarg);
        else if (o == 'l')
            rc = cli_add_query(query, sizeof(query), "limit", optarg);
        else
            rc = CLI_USAGE;
    }
    if (rc == CLI_OK && optind + 1 != argc)
        rc = cli_fail(CLI_USAGE, "usage: hearth invocations N [--status S] [--limit N]");
    char path[1024];
    if (rc == CLI_OK)
        rc = cli_fn_path(argv[optind], "/invocations", path, sizeof(path) - sizeof(query));
    if (rc != CLI_OK)
        return rc;
    strncat(path, query, sizeof(path) - strlen(path) - 1);
    return out_get(c, path, invocations_table);
}

int cmd_retry(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(CLI_USAGE, "usage: hearth retry ID");
    char *eid = http_escape(argv[1]);
    if (!eid)
        return cli_fail(CLI_FAIL, "out of memory");
    char path[512];
    int w = snprintf(path, sizeof(path), "/v1/invocations/%s/retry", eid);
    free(eid);
    if (w < 0 || (size_t)w >= sizeof(path))
        return cli_fail(CLI_USAGE, "'%s' is not an invocation id", argv[1]);
    json_t *ans;
    int rc = http_json_call(c, "POST", path, NULL, &ans);
    if (rc == CLI_OK && !json_out(c, ans))
        printf("%s %s\n", argv[1], json_string_value(json_object_get(ans, "status")));
    json_decref(ans);
    return rc;
}

static void schedules_table(table *t, json_t *all)
{
    table_init(t, "INDEX", "CRON", "TIMEZONE", "NEXT", "LAST", NULL);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(all, "schedules"), i, s)
    {
        char idx[32], last[256] = "";
        json_t *l = json_object_get(s, "last");
        if (json_is_object(l))
            snprintf(last, sizeof(last), "%s %s", json_string_value(json_object_get(l, "fired_at")),
                     json_string_value(json_object_get(l, "status")));
        json_t *next = json_object_get(s, "next");
        table_add(t, out_field(s, "index", idx, sizeof(idx)),
                  json_string_value(json_object_get(s, "cron")),
                  json_string_value(json_object_get(s, "timezone")),
                  json_string_value(json_array_get(next, 0)), last[0] ? last : NULL);
        /* the later fire times, one row each, under the first */
        for (size_t k = 1; k < json_array_size(next); k++)
            table_add(t, "", "", "", json_string_value(json_array_get(next, k)), "");
    }
}

int cmd_schedules(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(CLI_USAGE, "usage: hearth schedules N");
    char path[1024];
    if (cli_fn_path(argv[1], "/schedules", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    return out_get(c, path, schedules_table);
}

static int token_create(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, 0, 'n'},
                                         {"scope", required_argument, 0, 's'},
                                         {"functions", required_argument, 0, 'f'},
                                         {"expires-in", required_argument, 0, 'x'},
                                         {0, 0, 0, 0}};
    json_t *body = json_object(), *scopes = json_array();
    int o, rc = CLI_OK;
    optind = 0;
    while (rc == CLI_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long long secs;
        switch (o) {
        case 'n':
            json_object_set_new(body, "name", json_string(optarg));
            break;
        case 'f':
            json_object_set_new(body, "functions", json_string(optarg));
            break;
        case 'x':
            if (parse_count(optarg, &secs) != 0)
                rc = cli_fail(CLI_USAGE, "--expires-in wants seconds");
            else
                json_object_set_new(body, "expires_in_s", json_integer(secs));
            break;
        case 's': {
            char *copy = strdup(optarg), *save = NULL;
            for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
                json_array_append_new(scopes, json_string(s));
            free(copy);
            break;
        }
        default:
            rc = CLI_USAGE;
        }
    }
    if (rc == CLI_OK && (!json_object_get(body, "name") || !json_array_size(scopes)))
        rc = cli_fail(CLI_USAGE, "usage: hearth token create --name N --scope S[,S...]");
    json_object_set_new(body, "scopes", scopes);
    json_t *ans = NULL;
    if (rc == CLI_OK)
        rc = http_json_call(c, "POST", "/v1/tokens", body, &ans);
    json_decref(body);
    if (rc == CLI_OK && !json_out(c, ans)) {
        printf("%s\n", json_string_value(json_object_get(ans, "token")));
        if (c->tty_out)
            fprintf(stderr, "token '%s' (id %s): keep it now, it is not shown again\n",
                    json_string_value(json_object_get(ans, "name")),
                    json_string_value(json_object_get(ans, "id")));
    }
    json_decref(ans);
    return rc;
}

static void tokens_table(table *t, json_t *all)
{
    table_init(t, "ID", "NAME", "SCOPES", "FUNCTIONS", "STATE", "CREATED", "EXPIRES", NULL);
    size_t i;
    json_t *tok;
    json_array_foreach(json_object_get(all, "tokens"), i, tok)
    {
        char s[256];
        table_add(t, json_string_value(json_object_get(tok, "id")),
                  json_string_value(json_object_get(tok, "name")),
                  out_field(tok, "scopes", s, sizeof(s)),
                  json_string_value(json_object_get(tok, "functions")),
                  json_string_value(json_object_get(tok, "state")),
                  json_string_value(json_object_get(tok, "created_at")),
                  json_string_value(json_object_get(tok, "expires_at")));
    }
}

int cmd_token(cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "create") == 0)
        return token_create(c, argc - 1, argv + 1);
    if (argc == 2 && (strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0))
        return out_get(c, "/v1/tokens", tokens_table);
    if (argc == 3 && (strcmp(argv[1], "rm") == 0 || strcmp(argv[1], "revoke") == 0)) {
        char *eid = http_escape(argv[2]);
        if (!eid)
            return cli_fail(CLI_FAIL, "out of memory");
        char path[512];
        int w = snprintf(path, sizeof(path), "/v1/tokens/%s", eid);
        free(eid);
        if (w < 0 || (size_t)w >= sizeof(path))
            return cli_fail(CLI_USAGE, "'%s' is not a token id", argv[2]);
        json_t *none;
        int rc = http_json_call(c, "DELETE", path, NULL, &none);
        json_decref(none);
        if (rc == CLI_OK && !c->json)
            printf("revoked %s\n", argv[2]);
        return rc;
    }
    return cli_fail(CLI_USAGE, "usage: hearth token create|ls|rm (hearth token --help)");
}

int cmd_ui(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_fail(CLI_USAGE, "usage: hearth ui");
    if (!c->token[0])
        return cli_fail(CLI_FAIL, "no token: set HEARTH_TOKEN (docs/cli.md)");
    /* the token rides in the fragment, which a browser never sends */
    printf("%s/ui/#token=%s\n", c->url, c->token);
    return CLI_OK;
}
