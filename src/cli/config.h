/*
 * config.h — where the client finds the daemon's URL and a token.
 *
 * In order, the first that gives a value wins, for the URL and the token
 * each: --url/--token; HEARTH_URL/HEARTH_TOKEN; the config file
 * ($XDG_CONFIG_HOME/hearth/config, else ~/.config/hearth/config: lines
 * `url = ...`, `token = ...`, `#` comments). Then the daemon on this
 * machine: the URL from hearthd's own config file ($HEARTH_CONFIG, else the
 * installed /etc/hearth/hearthd.conf: `listen`, `tls-cert`), else
 * http://127.0.0.1:8080; and, only when that URL is a loopback one, the
 * admin token hearthd wrote in its data dir: $HEARTH_DATA_DIR/admin-token,
 * ./hearth-data/admin-token (`make run`), then the config file's
 * `data-dir`/admin-token (root-only when installed), the first readable.
 */
#ifndef HEARTH_CLI_CONFIG_H
#define HEARTH_CLI_CONFIG_H

#include "cli.h"

/* Fills c->url and c->token. `url`/`token` are the command-line values or
 * NULL. Returns CLI_OK or CLI_USAGE (reason printed). */
int config_resolve(cli *c, const char *url, const char *token);

#endif
