/*
 * cmd_apply.c — `hearth apply`: a stack file to POST /v1/stacks/{stack},
 * first as a dry run whose plan is printed, then (unless --dry-run, or
 * nothing changes) for real. The daemon applies a stack all or nothing.
 *
 * Owns: choosing the stack's name, printing the plan.
 */
#include "cli.h"
#include "http.h"
#include "output.h"
#include "stack.h"

#include <ctype.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The name of the file's directory, made into a function-style name. */
static void default_name(const char *file, char out[STACK_NAME_MAX + 1])
{
    char real[PATH_MAX];
    const char *base = "stack";
    if (realpath(file, real))
        base = basename(dirname(real));
    size_t j = 0;
    for (const char *p = base; *p && j < STACK_NAME_MAX; p++) {
        char ch = (char)tolower((unsigned char)*p);
        out[j++] = (isalnum((unsigned char)ch) && (unsigned char)ch < 0x80) ? ch : '-';
    }
    out[j] = '\0';
    if (j == 0 || out[0] == '-')
        snprintf(out, STACK_NAME_MAX + 1, "stack");
}

static int post(const cli *c, const char *path, json_t *body, json_t **out)
{
    http_resp r;
    int rc = http_send_json(c, "POST", path, body, &r);
    *out = NULL;
    if (rc == CLI_OK && r.status == 404 && strstr(r.body.data ? r.body.data : "", "\"not_found\""))
        rc = cli_fail(CLI_FAIL, "this hearthd has no stacks API (POST /v1/stacks answered 404)");
    else if (rc == CLI_OK && (r.status < 200 || r.status >= 300))
        rc = http_fail(&r);
    else if (rc == CLI_OK && !(*out = http_json(&r)))
        rc = CLI_FAIL;
    http_release(&r);
    return rc;
}

/* How many entries of the plan change something. */
static size_t count_changes(json_t *ans)
{
    size_t i, changing = 0;
    json_t *p;
    json_array_foreach(json_object_get(ans, "plan"), i, p)
    {
        const char *action = json_string_value(json_object_get(p, "action"));
        if (action && strcmp(action, "unchanged") != 0)
            changing++;
    }
    return changing;
}

static void print_plan(const cli *c, json_t *ans)
{
    table t;
    table_init(&t, "FUNCTION", "ACTION", "VERSION", "CHANGES", NULL);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ans, "plan"), i, p)
    {
        char v[32], ch[1024];
        table_add(&t, json_string_value(json_object_get(p, "function")),
                  json_string_value(json_object_get(p, "action")),
                  out_field(p, "version", v, sizeof(v)), out_field(p, "changes", ch, sizeof(ch)));
    }
    table_flush(&t, c);
}

int cmd_apply(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, 0, 'n'}, {"stack", required_argument, 0, 's'}, {0, 0, 0, 0}};
    bool dry = false;
    const char *given = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'n')
            dry = true;
        else if (o == 's')
            given = optarg;
        else
            return CLI_USAGE;
    }
    if (optind + 1 < argc)
        return cli_fail(CLI_USAGE, "usage: hearth apply [FILE] [--dry-run]");
    const char *file = optind < argc ? argv[optind] : "hearth.yml";
    json_t *body;
    char name[STACK_NAME_MAX + 1];
    if (stack_load(file, &body, name) != 0)
        return CLI_FAIL;
    if (given)
        snprintf(name, sizeof(name), "%s", given);
    else if (!name[0])
        default_name(file, name);
    char *en = http_escape(name);
    if (!en) {
        json_decref(body);
        return cli_fail(CLI_FAIL, "out of memory");
    }
    char path[512];
    snprintf(path, sizeof(path), "/v1/stacks/%s", en);
    free(en);

    json_object_set_new(body, "dry_run", json_true());
    json_t *plan;
    int rc = post(c, path, body, &plan);
    size_t changing = rc == CLI_OK ? count_changes(plan) : 0;
    if (rc == CLI_OK && c->json) {
        /* scripts get one JSON answer: the plan, or what was applied */
        if (dry || changing == 0)
            out_json(c, plan);
    } else if (rc == CLI_OK) {
        if (c->tty_out)
            printf("stack %s%s:\n", name, dry ? " (dry run, nothing applied)" : "");
        print_plan(c, plan);
        if (!dry && changing == 0 && c->tty_out)
            printf("nothing to change\n");
    }
    json_decref(plan);
    if (rc == CLI_OK && !dry && changing > 0) {
        json_object_set_new(body, "dry_run", json_false());
        json_t *done;
        rc = post(c, path, body, &done);
        if (rc == CLI_OK && c->json)
            out_json(c, done);
        else if (rc == CLI_OK && c->tty_out)
            printf("applied stack %s: %zu function(s) changed\n", name, count_changes(done));
        json_decref(done);
    }
    json_decref(body);
    return rc;
}
