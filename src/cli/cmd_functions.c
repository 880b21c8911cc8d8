/*
 * cmd_functions.c — the commands on functions themselves: deploy, invoke,
 * logs, ls, show, rm.
 *
 * Owns: turning their arguments into API requests and their answers into
 * output.
 */
#include "cli.h"
#include "http.h"
#include "output.h"
#include "pack.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENT_MAX (64u << 20)

/* "/v1/functions/NAME[:QUAL]SUFFIX" with each part escaped, in out[n]. */
int cli_fn_path(const char *ref, const char *suffix, char *out, size_t n)
{
    char name[256];
    const char *colon = strchr(ref, ':');
    size_t nl = colon ? (size_t)(colon - ref) : strlen(ref);
    if (nl == 0 || nl >= sizeof(name))
        return cli_fail(CLI_USAGE, "'%s' is not a function name", ref);
    memcpy(name, ref, nl);
    name[nl] = '\0';
    char *en = http_escape(name);
    char *eq = colon ? http_escape(colon + 1) : NULL;
    if (!en || (colon && !eq)) {
        free(en);
        free(eq);
        return cli_fail(CLI_FAIL, "out of memory");
    }
    int w = snprintf(out, n, "/v1/functions/%s%s%s%s", en, colon ? ":" : "", eq ? eq : "", suffix);
    free(en);
    free(eq);
    if (w < 0 || (size_t)w >= n)
        return cli_fail(CLI_USAGE, "'%s' is too long", ref);
    return CLI_OK;
}

/* Reads all of `f` into b (initialised here). Returns 0 or -errno. */
static int read_all(FILE *f, buf *b, size_t max)
{
    buf_init(b, max);
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(b, chunk, got) != 0)
            return -E2BIG;
    if (ferror(f))
        return -EIO;
    return buf_append(b, "", 0);
}

/* KEY=VALUE → obj[KEY] = VALUE as JSON when it parses, else the string. */
static int set_value(json_t *obj, const char *kv, bool as_string)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return cli_fail(CLI_USAGE, "'%s' is not KEY=VALUE", kv);
    char key[256];
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof(key))
        return cli_fail(CLI_USAGE, "the key of '%s' is too long", kv);
    memcpy(key, kv, kl);
    key[kl] = '\0';
    json_t *v = as_string ? NULL : json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_string(eq + 1);
    if (!v || json_object_set_new(obj, key, v) != 0)
        return cli_fail(CLI_USAGE, "'%s': the value is not UTF-8", kv);
    return CLI_OK;
}

int cmd_deploy(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, 0, 'n'},    {"runtime", required_argument, 0, 'r'},
        {"handler", required_argument, 0, 'H'}, {"env", required_argument, 0, 'e'},
        {"set", required_argument, 0, 's'},     {0, 0, 0, 0}};
    const char *name = NULL, *runtime = NULL, *handler = NULL;
    json_t *body = json_object(), *env = json_object();
    int rc = CLI_OK, o;
    optind = 0;
    while (rc == CLI_OK && (o = getopt_long(argc, argv, "n:r:H:e:s:", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            name = optarg;
            break;
        case 'r':
            runtime = optarg;
            break;
        case 'H':
            handler = optarg;
            break;
        case 'e':
            rc = set_value(env, optarg, true);
            break;
        case 's':
            rc = set_value(body, optarg, false);
            break;
        default:
            rc = CLI_USAGE;
        }
    }
    const char *dir = optind < argc ? argv[optind] : ".";
    if (rc == CLI_OK && optind + 1 < argc)
        rc = cli_fail(CLI_USAGE, "deploy takes one directory");
    char real[PATH_MAX], base[PATH_MAX];
    if (rc == CLI_OK && !name) {
        if (!realpath(dir, real)) {
            rc = cli_fail(CLI_USAGE, "%s: %s", dir, strerror(errno));
        } else {
            snprintf(base, sizeof(base), "%s", real);
            name = basename(base);
        }
    }
    if (rc == CLI_OK && runtime)
        json_object_set_new(body, "runtime", json_string(runtime));
    if (rc == CLI_OK && handler)
        json_object_set_new(body, "handler", json_string(handler));
    if (rc == CLI_OK && !json_object_get(body, "runtime"))
        rc = cli_fail(CLI_USAGE, "--runtime is needed (python3, node, c, exec or lambda)");
    if (rc == CLI_OK && !json_object_get(body, "handler"))
        rc = cli_fail(CLI_USAGE, "--handler is needed (e.g. main.handler)");
    if (rc == CLI_OK && json_object_size(env)) {
        /* --env adds to an env object given with --set env={...} */
        json_t *given = json_object_get(body, "env");
        if (json_is_object(given))
            json_object_update(given, env);
        else
            json_object_set(body, "env", env);
    }
    char path[1024];
    if (rc == CLI_OK)
        rc = cli_fn_path(name, "", path, sizeof(path));
    buf pkg = {0};
    if (rc == CLI_OK && pack_dir(dir, &pkg) != 0)
        rc = CLI_FAIL;
    if (rc == CLI_OK) {
        char *b64 = pack_base64(pkg.data ? pkg.data : "", pkg.len);
        if (!b64 || json_object_set_new(body, "archive", json_string(b64)) != 0)
            rc = cli_fail(CLI_FAIL, "out of memory");
        free(b64);
    }
    buf_release(&pkg);
    json_decref(env);
    if (rc != CLI_OK) {
        json_decref(body);
        return rc;
    }
    http_resp r;
    rc = http_send_json(c, "PUT", path, body, &r);
    json_decref(body);
    if (rc == CLI_OK && (r.status < 200 || r.status >= 300))
        rc = http_fail(&r);
    if (rc == CLI_OK) {
        json_t *fn = http_json(&r);
        if (!fn) {
            rc = CLI_FAIL;
        } else if (c->json) {
            out_json(c, fn);
        } else {
            const char *digest = json_string_value(json_object_get(fn, "digest"));
            printf("%s %s: version %lld%s%s\n", r.status == 201 ? "created" : "updated", name,
                   (long long)json_integer_value(json_object_get(fn, "version")), digest ? " " : "",
                   digest ? digest : "");
        }
        json_decref(fn);
    }
    http_release(&r);
    return rc;
}

static const char *FINAL[] = {"succeeded", "dead", "cancelled"};

static bool is_final(const char *status)
{
    for (size_t i = 0; i < 3; i++)
        if (status && strcmp(status, FINAL[i]) == 0)
            return true;
    return false;
}

/* Prints a finished invocation: its result, or its error (exit 1). */
static int show_finished(const cli *c, json_t *inv)
{
    const char *status = json_string_value(json_object_get(inv, "status"));
    if (c->json)
        out_json(c, inv);
    if (status && strcmp(status, "succeeded") == 0) {
        if (!c->json) {
            json_t *res = json_object_get(inv, "result");
            if (json_is_string(res))
                out_answer(c, json_string_value(res), json_string_length(res));
            else if (res)
                out_json(c, res);
        }
        return CLI_OK;
    }
    json_t *err = json_object_get(inv, "error");
    char text[1024];
    const char *msg = http_error_text(err, text, sizeof text);
    const char *code = json_string_value(json_object_get(err, "code"));
    return cli_fail(CLI_FAIL, "invocation %s %s: %s%s%s%s",
                    json_string_value(json_object_get(inv, "id")), status ? status : "?",
                    msg ? msg : "no error recorded", code ? " (" : "", code ? code : "",
                    code ? ")" : "");
}

static int wait_invocation(const cli *c, const char *id, double timeout_s)
{
    char *eid = http_escape(id);
    if (!eid)
        return cli_fail(CLI_FAIL, "out of memory");
    char path[256];
    snprintf(path, sizeof(path), "/v1/invocations/%s", eid);
    free(eid);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    useconds_t pause = 100000;
    for (;;) {
        json_t *inv;
        int rc = http_json_call(c, "GET", path, NULL, &inv);
        if (rc != CLI_OK)
            return rc;
        if (is_final(json_string_value(json_object_get(inv, "status")))) {
            rc = show_finished(c, inv);
            json_decref(inv);
            return rc;
        }
        json_decref(inv);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > timeout_s)
            return cli_fail(CLI_FAIL, "invocation %s did not finish within %g s", id, timeout_s);
        usleep(pause);
        if (pause < 1000000)
            pause += pause / 2;
    }
}

int cmd_invoke(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"async", no_argument, 0, 'a'},
                                         {"wait", no_argument, 0, 'w'},
                                         {"timeout", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    const char *data = NULL;
    bool async = false, wait = false;
    double timeout_s = 900;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            data = optarg;
            break;
        case 'a':
            async = true;
            break;
        case 'w':
            wait = true;
            break;
        case 't':
            timeout_s = strtod(optarg, NULL);
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_fail(CLI_USAGE, "usage: hearth invoke N [-d DATA] [--async [--wait]]");
    if (wait && !async)
        return cli_fail(CLI_USAGE, "--wait goes with --async");
    char path[1024];
    if (cli_fn_path(argv[optind], "/invoke", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    buf event;
    buf_init(&event, EVENT_MAX);
    if (data && data[0] == '@') {
        FILE *f = strcmp(data, "@-") == 0 ? stdin : fopen(data + 1, "re");
        if (!f)
            return cli_fail(CLI_USAGE, "%s: %s", data + 1, strerror(errno));
        int err = read_all(f, &event, EVENT_MAX);
        if (f != stdin)
            fclose(f);
        if (err != 0) {
            buf_release(&event);
            return cli_fail(CLI_USAGE, "%s: %s", data + 1,
                            err == -E2BIG ? "over 64 MiB" : strerror(-err));
        }
    } else if (buf_append(&event, data ? data : "", data ? strlen(data) : 0) != 0) {
        return cli_fail(CLI_USAGE, "the event is too big");
    }
    const char *text = event.data ? event.data : "";
    json_t *parsed = event.len ? json_loadb(text, event.len, JSON_DECODE_ANY, NULL) : NULL;
    http_req req = {.method = "POST",
                    .path = path,
                    .ctype = parsed ? "application/json" : "text/plain; charset=utf-8",
                    .body = text,
                    .len = event.len,
                    .extra_header = async ? "Prefer: respond-async" : NULL,
                    .progress = true};
    json_decref(parsed);
    http_resp r;
    int rc = http_do(c, &req, &r);
    buf_release(&event);
    if (rc != CLI_OK) {
        http_release(&r);
        return rc;
    }
    if (r.status < 200 || r.status >= 300) {
        rc = http_fail(&r);
    } else if (async) {
        json_t *a = http_json(&r);
        const char *id = json_string_value(json_object_get(a, "id"));
        if (!id)
            rc = cli_fail(CLI_FAIL, "the daemon's answer has no invocation id");
        else if (wait)
            rc = wait_invocation(c, id, timeout_s);
        else if (c->json)
            out_json(c, a);
        else
            printf("%s\n", id);
        json_decref(a);
    } else {
        out_answer(c, r.body.data ? r.body.data : "", r.body.len);
    }
    http_release(&r);
    return rc;
}

static void on_interrupt(int sig)
{
    /* logs -f ends here: every line was flushed as it came, so nothing is
     * lost by leaving at once, and Ctrl-C is the normal way out. */
    (void)sig;
    _exit(CLI_OK);
}

int cli_add_query(char *q, size_t n, const char *key, const char *value)
{
    char *ev = http_escape(value);
    if (!ev)
        return cli_fail(CLI_FAIL, "out of memory");
    size_t used = strlen(q);
    int w = snprintf(q + used, n - used, "%c%s=%s", used ? '&' : '?', key, ev);
    free(ev);
    if (w < 0 || (size_t)w >= n - used)
        return cli_fail(CLI_USAGE, "the %s is too long", key);
    return CLI_OK;
}

int cmd_logs(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, 0, 'f'},
                                         {"since", required_argument, 0, 's'},
                                         {"request", required_argument, 0, 'r'},
                                         {"tail", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    bool follow = false;
    const char *since = NULL, *request = NULL, *tail = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
            follow = true;
            break;
        case 's':
            since = optarg;
            break;
        case 'r':
            request = optarg;
            break;
        case 't':
            tail = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 1 != argc)
        return cli_fail(CLI_USAGE, "usage: hearth logs N [-f] [--since T] [--request ID]");
    char query[1024] = "";
    int rc = CLI_OK;
    if (tail)
        rc = cli_add_query(query, sizeof(query), "tail", tail);
    if (rc == CLI_OK && since)
        rc = cli_add_query(query, sizeof(query), "since", since);
    if (rc == CLI_OK && request)
        rc = cli_add_query(query, sizeof(query), "request_id", request);
    if (rc == CLI_OK && c->json)
        rc = cli_add_query(query, sizeof(query), "format", "ndjson");
    if (rc == CLI_OK && follow)
        rc = cli_add_query(query, sizeof(query), "follow", "1");
    char path[2048];
    if (rc == CLI_OK)
        rc = cli_fn_path(argv[optind], "/logs", path, sizeof(path) - sizeof(query));
    if (rc != CLI_OK)
        return rc;
    strncat(path, query, sizeof(path) - strlen(path) - 1);
    if (follow) {
        struct sigaction sa = {.sa_handler = on_interrupt};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    http_req req = {.method = "GET", .path = path, .stream = true};
    http_resp r;
    rc = http_do(c, &req, &r);
    if (rc == CLI_OK && (r.status < 200 || r.status >= 300))
        rc = http_fail(&r);
    else if (rc == CLI_OK && follow)
        rc = cli_fail(CLI_FAIL, "the daemon ended the log stream");
    http_release(&r);
    return rc;
}

static void pool_cell(const json_t *fn, char *out, size_t n)
{
    json_t *p = json_object_get(fn, "pool");
    snprintf(out, n, "%lld/%lld", (long long)json_integer_value(json_object_get(p, "idle")),
             (long long)json_integer_value(json_object_get(p, "busy")));
}

static void functions_table(table *t, json_t *all)
{
    table_init(t, "NAME", "VERSION", "RUNTIME", "HANDLER", "MEMORY", "IDLE/BUSY", "UPDATED", NULL);
    size_t i;
    json_t *fn;
    json_array_foreach(json_object_get(all, "functions"), i, fn)
    {
        char v[32], m[32], pool[64];
        pool_cell(fn, pool, sizeof(pool));
        table_add(t, json_string_value(json_object_get(fn, "name")),
                  out_field(fn, "version", v, sizeof(v)),
                  json_string_value(json_object_get(fn, "runtime")),
                  json_string_value(json_object_get(fn, "handler")),
                  out_field(fn, "memory_mb", m, sizeof(m)), pool,
                  json_string_value(json_object_get(fn, "updated_at")));
    }
}

int cmd_ls(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return cli_fail(CLI_USAGE, "usage: hearth ls");
    return out_get(c, "/v1/functions", functions_table);
}

/* One row a field of the function, in the API's order. */
static void fields_table(table *t, json_t *fn)
{
    table_init(t, "FIELD", "VALUE", NULL);
    const char *key;
    json_t *v;
    json_object_foreach(fn, key, v)
    {
        char tmp[4096];
        table_add(t, key, out_field(fn, key, tmp, sizeof(tmp)));
    }
}

int cmd_show(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(CLI_USAGE, "usage: hearth show N");
    char path[1024];
    if (cli_fn_path(argv[1], "", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    return out_get(c, path, fields_table);
}

int cmd_rm(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_fail(CLI_USAGE, "usage: hearth rm N");
    char path[1024];
    if (cli_fn_path(argv[1], "", path, sizeof(path)) != CLI_OK)
        return CLI_USAGE;
    json_t *none;
    int rc = http_json_call(c, "DELETE", path, NULL, &none);
    json_decref(none);
    if (rc == CLI_OK && !c->json)
        printf("deleted %s\n", argv[1]);
    return rc;
}
