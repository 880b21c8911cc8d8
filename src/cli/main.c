/*
 * main.c — `hearth`, the command-line client of hearthd: global options,
 * the command table, and every command's --help.
 *
 * Owns: dispatch and help text. Each command lives in a cmd_*.c file.
 * Must never: run a command whose connection settings failed to resolve.
 */
#include "cli.h"
#include "config.h"
#include "http.h"
#include "output.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_cmd commands[] = {
    {"deploy", cmd_deploy,
     "hearth deploy [DIR] --name N --runtime R --handler H [--set KEY=VALUE ...]",
     "Packs DIR (default .) as a .tar.gz, leaving out what its .hearthignore\n"
     "names, and deploys it as function N (a new version).\n"
     "  -n, --name N        the function's name (default: DIR's name)\n"
     "  -r, --runtime R     python3, node, c, exec or lambda\n"
     "  -H, --handler H     e.g. main.handler\n"
     "  -e, --env K=V       an environment variable (repeatable)\n"
     "  -s, --set KEY=VALUE any deploy setting by its API name; VALUE is read as\n"
     "                      JSON when it parses (256, true, [\"a\"]), else as a string\n"
     "A progress line shows on a terminal for packages over 1 MB.\n"},
    {"invoke", cmd_invoke, "hearth invoke N [-d JSON | -d @FILE | -d @-] [--async [--wait]]",
     "Invokes function N (N:QUALIFIER for a version or an alias) and prints its answer.\n"
     "  -d, --data DATA   the event: text, @FILE for a file's bytes, @- for stdin;\n"
     "                    sent as application/json when it parses as JSON\n"
     "  --async           queue it (Prefer: respond-async) and print its id\n"
     "  --wait            with --async: wait until it finishes, print its result\n"
     "  --timeout S       with --wait: give up after S seconds (default 900)\n"
     "Exit status 1 when the function failed; its error is on stderr.\n"},
    {"logs", cmd_logs, "hearth logs N [-f] [--since T] [--request ID] [--tail N]",
     "Prints function N's log lines.\n"
     "  -f, --follow      keep printing new lines until Ctrl-C (exit status 0)\n"
     "  --since T         lines at or after T: unix milliseconds or RFC 3339\n"
     "  --request ID      only this request's lines\n"
     "  --tail N          the last N lines (default 100, 10 with -f)\n"},
    {"ls", cmd_ls, "hearth ls", "Lists the functions.\n"},
    {"show", cmd_show, "hearth show N", "Shows function N: its settings and pool.\n"},
    {"rm", cmd_rm, "hearth rm N", "Deletes function N, every version, its code and logs.\n"},
    {"versions", cmd_versions, "hearth versions N",
     "Lists the kept versions of function N, newest first.\n"},
    {"rollback", cmd_rollback, "hearth rollback N [VERSION]",
     "Makes VERSION current again (default: the newest kept version older than\n"
     "the current one), without uploading anything.\n"},
    {"alias", cmd_alias, "hearth alias N [ALIAS [VERSION] [--weight V=W ...] | ALIAS --delete]",
     "Points ALIAS of function N at VERSION; --weight V=W (repeatable) sends the\n"
     "share W (0 < W < 1) of the alias's calls to version V. Without VERSION,\n"
     "shows the alias; without ALIAS, lists them. --delete removes it.\n"},
    {"invocations", cmd_invocations, "hearth invocations N [--status S] [--limit N]",
     "Lists function N's asynchronous invocations, newest first.\n"
     "  --status S   queued, running, retrying, succeeded, dead or cancelled\n"
     "  --limit N    at most N (default 50)\n"},
    {"retry", cmd_retry, "hearth retry ID", "Runs the dead invocation ID again.\n"},
    {"schedules", cmd_schedules, "hearth schedules N",
     "Shows function N's schedules with their next fire times.\n"},
    {"token", cmd_token,
     "hearth token create --name N --scope S[,S...] [--functions GLOB] [--expires-in SECONDS]\n"
     "       hearth token ls\n"
     "       hearth token rm ID",
     "Manages tokens (an admin token is needed). `create` prints the new token\n"
     "on stdout: it is shown only this once.\n"},
    {"apply", cmd_apply, "hearth apply [FILE] [--dry-run] [--stack NAME]",
     "Deploys the stack FILE describes (default ./hearth.yml) as one all-or-nothing\n"
     "change. Prints the plan (create, update, delete, unchanged), then applies it.\n"
     "  --dry-run      print the plan only\n"
     "  --stack NAME   the stack's name (default: the file's `stack:`, else its\n"
     "                 directory's name)\n"
     "See docs/cli.md for the file's shape.\n"},
    {"ui", cmd_ui, "hearth ui",
     "Prints a link that opens the dashboard signed in with the current token.\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int cli_fail(int status, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One line, and nothing that drives a terminal: a message quoting the
     * daemon (or whatever answers at HEARTH_URL) keeps no newline and no
     * escape sequence. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    line[out_defang(line, strlen(line), false)] = '\0';
    fprintf(stderr, "hearth: %s\n", line);
    return status;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int cli_help(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) {
            printf("usage: %s\n\n%s\nGlobal options: --json, --url URL, --token TOKEN\n",
                   commands[i].usage, commands[i].help);
            return CLI_OK;
        }
    return CLI_USAGE;
}

static void usage(FILE *f)
{
    fputs("usage: hearth [--json] [--url URL] [--token TOKEN] COMMAND [ARGS]\n\n"
          "The command-line client of hearthd.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        /* each usage line (token has three), without its "hearth " */
        for (const char *u = commands[i].usage; *u;) {
            u += strspn(u, " \n");
            if (strncmp(u, "hearth ", 7) == 0)
                u += 7;
            int n = (int)strcspn(u, "\n");
            fprintf(f, "  %.*s\n", n, u);
            u += n;
        }
    }
    fputs("\n`hearth COMMAND --help` tells more. The daemon's URL and token come from\n"
          "--url/--token, HEARTH_URL/HEARTH_TOKEN, ~/.config/hearth/config, or, on the\n"
          "daemon's machine, the daemon itself (docs/cli.md).\n"
          "--json prints the API's JSON answers; tables are for terminals.\n",
          f);
}

/* Takes the global options out of argv, wherever they are (before "--"). */
static int take_globals(int *argc, char **argv, cli *c, const char **url, const char **token)
{
    int out = 1;
    bool rest = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!rest && strcmp(a, "--") == 0) {
            rest = true;
        } else if (!rest && strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        } else if (!rest && (strcmp(a, "--url") == 0 || strcmp(a, "--token") == 0)) {
            if (i + 1 >= *argc)
                return cli_fail(CLI_USAGE, "%s needs a value", a);
            *(a[2] == 'u' ? url : token) = argv[++i];
            continue;
        } else if (!rest && strncmp(a, "--url=", 6) == 0) {
            *url = a + 6;
            continue;
        } else if (!rest && strncmp(a, "--token=", 8) == 0) {
            *token = a + 8;
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli c = {0};
    const char *url = NULL, *token = NULL;
    if (take_globals(&argc, argv, &c, &url, &token) != CLI_OK)
        return CLI_USAGE;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0 && cli_help(argv[2]) == CLI_OK)
            return CLI_OK;
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        puts("hearth (Hearth's command-line client)");
        return CLI_OK;
    }
    const cli_cmd *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, argv[1]) == 0)
            cmd = &commands[i];
    if (!cmd)
        return cli_fail(CLI_USAGE, "no command '%s' (hearth --help lists them)", argv[1]);
    if (cli_wants_help(argc - 1, argv + 1))
        return cli_help(cmd->name);
    c.tty_out = isatty(STDOUT_FILENO);
    c.tty_err = isatty(STDERR_FILENO);
    if (config_resolve(&c, url, token) != CLI_OK)
        return CLI_USAGE;
    if (http_init() != 0)
        return cli_fail(CLI_FAIL, "cannot start libcurl");
    /* getopt names the program in its messages: "hearth deploy: ..." */
    char prog[64];
    snprintf(prog, sizeof(prog), "hearth %s", cmd->name);
    argv[1] = prog;
    int rc = cmd->run(&c, argc - 1, argv + 1);
    fflush(stdout);
    http_cleanup();
    return rc;
}
