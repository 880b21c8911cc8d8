/*
 * token_cli.c — `hearthd token create|list|revoke`: tokens offline, for
 * scripts and for recovery (a lost admin token). Opens the data dir's
 * registry directly, as the daemon does; a running daemon sees a token
 * created here at its first request with it (auth.c re-reads the registry
 * when another process changed it).
 *
 * Owns the command line of those subcommands. Must never: print a secret
 * anywhere but stdout, once; create a data dir (a typo would make a new,
 * empty one and a token no daemon reads).
 */
#include "token_cli.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "dlog.h"
#include "registry.h"
#include "timefmt.h"

static const char usage[] =
    "usage: hearthd token create --data-dir DIR --name NAME --scope SCOPE[,SCOPE...]\n"
    "                            [--functions GLOB] [--expires-in SECONDS]\n"
    "       hearthd token list   --data-dir DIR\n"
    "       hearthd token revoke --data-dir DIR --id ID\n"
    "\n"
    "Manages hearthd's bearer tokens without the daemon (it may be running).\n"
    "create prints the new token on stdout, once: only a hash of it is kept.\n"
    "Scopes: admin, deploy, invoke, logs, read, metrics. GLOB limits the token\n"
    "to the functions whose names match (fnmatch: * ? [...]).\n";

struct cli {
    const char *data_dir, *name, *scopes, *functions, *id, *expires;
};

static int fail_usage(const char *why)
{
    fprintf(stderr, "hearthd token: %s\n%s", why, usage);
    return 2;
}

static int parse(int argc, char **argv, struct cli *c)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'},
        {"name", required_argument, 0, 'n'},
        {"scope", required_argument, 0, 's'},
        {"scopes", required_argument, 0, 's'},
        {"functions", required_argument, 0, 'f'},
        {"expires-in", required_argument, 0, 'e'},
        {"id", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            c->data_dir = optarg;
            break;
        case 'n':
            c->name = optarg;
            break;
        case 's':
            c->scopes = optarg;
            break;
        case 'f':
            c->functions = optarg;
            break;
        case 'e':
            c->expires = optarg;
            break;
        case 'i':
            c->id = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return optind < argc ? -1 : 0;
}

/* "deploy,invoke" into a bit set; -1 for an unknown word. */
static int scopes_bits(const char *list, unsigned *out)
{
    *out = 0;
    while (*list) {
        size_t n = strcspn(list, ",");
        int s = auth_scope_parse(list, n);
        if (s < 0)
            return -1;
        *out |= 1u << s;
        list += n + (list[n] == ',');
    }
    return 0;
}

/* The registry of an existing data dir. */
static int open_registry(const char *dir, registry **reg)
{
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "hearthd token: --data-dir %s is not a directory (start hearthd once, "
                "or mkdir -m 700 it)\n",
                dir);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/hearth.db", dir);
    int rc = registry_open(path, reg);
    if (rc < 0)
        fprintf(stderr, "hearthd token: cannot open %s: %s\n", path, strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* Who acts, for the audit: the local user running this. */
static void local_actor(char *dst, size_t cap)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(dst, cap, "local:%s", pw ? pw->pw_name : "?");
}

static int cmd_create(auth *a, const struct cli *c)
{
    auth_spec spec = {.name = c->name, .functions = c->functions};
    if (!c->name || !c->scopes)
        return fail_usage("create needs --name and --scope");
    if (scopes_bits(c->scopes, &spec.scopes) < 0)
        return fail_usage("unknown scope (admin, deploy, invoke, logs, read, metrics)");
    if (c->expires) {
        char *end;
        spec.expires = true;
        spec.expires_in_s = strtoll(c->expires, &end, 10);
        if (*end || end == c->expires)
            return fail_usage("--expires-in takes a whole number of seconds");
    }
    char err[256];
    if (auth_spec_check(&spec, err, sizeof err) < 0)
        return fail_usage(err);
    char secret[AUTH_SECRET_LEN + 1], actor[REG_TOKEN_NAME_MAX + 1], target[160];
    registry_token t;
    int rc = auth_create(a, &spec, secret, &t);
    if (rc == -EEXIST) {
        fprintf(stderr,
                "hearthd token: a token named '%s' exists; revoke it or choose another "
                "name\n",
                c->name);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "hearthd token: could not create the token: %s\n", strerror(-rc));
        return 1;
    }
    printf("%s\n", secret);
    fflush(stdout);
    sodium_memzero(secret, sizeof secret);
    local_actor(actor, sizeof actor);
    snprintf(target, sizeof target, "%s (%s)", t.name, t.id);
    auth_audit(a, actor, "", "token_create", target);
    fprintf(stderr, "hearthd token: created %s (id %s, scopes %s, functions %s)\n", t.name, t.id,
            t.scopes, t.functions);
    return 0;
}

static int list_visit(const registry_token *t, void *ud)
{
    (void)ud;
    char created[TIMEFMT_ISO_LEN];
    const char *state = t->revoked_ms                                        ? "revoked"
                        : t->expires_ms && timefmt_now_ms() >= t->expires_ms ? "expired"
                                                                             : "live";
    timefmt_iso_ms(t->created_ms, created);
    printf("%s  %-8s %-24s %-28s %-16s %s\n", t->id, state, t->name, t->scopes, t->functions,
           created);
    return 0;
}

static int cmd_revoke(auth *a, const struct cli *c)
{
    if (!c->id)
        return fail_usage("revoke needs --id");
    int rc = auth_revoke(a, c->id);
    if (rc < 0) {
        fprintf(stderr, "hearthd token: %s: %s\n", c->id,
                rc == -ENOENT ? "no live token with that id" : strerror(-rc));
        return 1;
    }
    char actor[REG_TOKEN_NAME_MAX + 1];
    local_actor(actor, sizeof actor);
    auth_audit(a, actor, "", "token_revoke", c->id);
    fprintf(stderr, "hearthd token: revoked %s\n", c->id);
    return 0;
}

int token_cli_main(int argc, char **argv)
{
    if (argc < 2)
        return fail_usage("which command: create, list or revoke?");
    const char *cmd = argv[1];
    struct cli c = {0};
    if (parse(argc - 1, argv + 1, &c) < 0)
        return fail_usage("bad arguments");
    if (!c.data_dir)
        return fail_usage("--data-dir is required");
    if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "revoke"))
        return fail_usage("unknown command");
    dlog_set_level(DLOG_WARN);
    registry *reg;
    auth *a;
    if (open_registry(c.data_dir, &reg) < 0)
        return 1;
    int rc = auth_open(reg, false, &a);
    if (rc < 0) {
        fprintf(stderr, "hearthd token: cannot read the tokens: %s\n", strerror(-rc));
        registry_close(reg);
        return 1;
    }
    /* The daemon's SigV4 key, so a token made here can sign AWS requests too. */
    char key_path[4096];
    snprintf(key_path, sizeof key_path, "%s/%s", c.data_dir, AUTH_SIGV4_KEY_FILE);
    if (strcmp(cmd, "create") == 0 && (rc = auth_sigv4_key_load(a, key_path)) < 0) {
        fprintf(stderr, "hearthd token: cannot read or create %s: %s\n", key_path, strerror(-rc));
        auth_free(a);
        registry_close(reg);
        return 1;
    }
    if (strcmp(cmd, "create") == 0)
        rc = cmd_create(a, &c);
    else if (strcmp(cmd, "revoke") == 0)
        rc = cmd_revoke(a, &c);
    else
        rc = registry_token_list(reg, false, list_visit, NULL) < 0;
    auth_free(a);
    registry_close(reg);
    return rc;
}
