/*
 * token_cli.h — `hearthd token ...`: bearer tokens managed offline.
 */
#ifndef HEARTH_TOKEN_CLI_H
#define HEARTH_TOKEN_CLI_H

/* Runs `hearthd token` with argv[0] = "token". Returns the exit status. */
int token_cli_main(int argc, char **argv);

#endif
