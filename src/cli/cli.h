/*
 * cli.h — what every part of the `hearth` command-line client shares: the
 * resolved connection (URL, token), the output mode, and the conventions
 * for failing (one line on stderr, a non-zero exit).
 *
 * Owns: the cli struct and the command table's entry type.
 * Must never: print a token except where a command is asked to (token
 * create, ui).
 */
#ifndef HEARTH_CLI_H
#define HEARTH_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_URL_MAX   1024
#define CLI_TOKEN_MAX 512

/* Exit statuses: 0 success, 1 the daemon (or the network) said no, 2 the
 * command line was wrong. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli {
    char url[CLI_URL_MAX];     /* no trailing '/' */
    char token[CLI_TOKEN_MAX]; /* "" for none */
    bool json;                 /* --json: the API's JSON as it came */
    bool tty_out;              /* stdout is a terminal: tables */
    bool tty_err;              /* stderr is a terminal: progress lines */
} cli;

typedef struct cli_cmd {
    const char *name;
    int (*run)(cli *c, int argc, char **argv); /* argv[0] is the command name */
    const char *usage;                         /* first line of --help */
    const char *help;                          /* the rest */
} cli_cmd;

/* Prints "hearth: <formatted>" and a newline on stderr; returns `status`. */
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether argv holds -h or --help (before a "--"). */
bool cli_wants_help(int argc, char **argv);

/* Prints the command's help on stdout; returns CLI_OK. */
int cli_help(const char *name);

/* "/v1/functions/NAME[:QUALIFIER]SUFFIX", each part percent-escaped, in
 * out[n]. Returns CLI_OK or CLI_USAGE (reason printed). */
int cli_fn_path(const char *ref, const char *suffix, char *out, size_t n);

/* Appends "?key=value" or "&key=value" (value escaped) to the query q[n]. */
int cli_add_query(char *q, size_t n, const char *key, const char *value);

/* The commands (cmd_*.c). */
int cmd_deploy(cli *c, int argc, char **argv);
int cmd_invoke(cli *c, int argc, char **argv);
int cmd_logs(cli *c, int argc, char **argv);
int cmd_ls(cli *c, int argc, char **argv);
int cmd_show(cli *c, int argc, char **argv);
int cmd_rm(cli *c, int argc, char **argv);
int cmd_versions(cli *c, int argc, char **argv);
int cmd_rollback(cli *c, int argc, char **argv);
int cmd_alias(cli *c, int argc, char **argv);
int cmd_invocations(cli *c, int argc, char **argv);
int cmd_retry(cli *c, int argc, char **argv);
int cmd_schedules(cli *c, int argc, char **argv);
int cmd_token(cli *c, int argc, char **argv);
int cmd_apply(cli *c, int argc, char **argv);
int cmd_ui(cli *c, int argc, char **argv);

#endif
