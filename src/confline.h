/*
 * confline.h — one line of hearthd's config file (`key = value`, a '#' at
 * the start or after a blank starts a comment), split the same way for the
 * daemon (options.c) and for the CLI, which reads the local daemon's
 * listen address and data dir from it (cli/config.c). Pure; cuts in place.
 */
#ifndef HEARTH_CONFLINE_H
#define HEARTH_CONFLINE_H

/* Splits `line` in place: 1 with *key and *value (both trimmed) for a
 * `key = value` line, 0 for a blank or comment-only line, -1 for a line
 * without '=' (*key then holds the trimmed text, for a message). */
int confline_split(char *line, char **key, char **value);

#endif
