/*
 * config.c — the URL and token lookup described in config.h.
 *
 * Owns: reading the config file and the daemon's discovery file.
 * Must never: fail because an optional file is missing or unreadable (the
 * next place is tried), or print a token.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confline.h"

/* Copies src into dst[n] when it fits and is non-empty; returns whether it did. */
static bool take(char *dst, size_t n, const char *src)
{
    if (!src || !*src)
        return false;
    size_t len = strlen(src);
    if (len >= n)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Reads `key = value` lines of `path`; stores the values of the keys asked
 * for (NULL to skip) when they are still empty. */
static void read_kv(const char *path, char *url, size_t url_n, char *token, size_t token_n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        if (url && !url[0] && strcmp(k, "url") == 0)
            take(url, url_n, v);
        else if (token && !token[0] && strcmp(k, "token") == 0)
            take(token, token_n, v);
    }
    fclose(f);
}

/* The `listen`, `data-dir` and `tls-cert` lines of hearthd's config file. */
static void read_daemon_conf(const char *path, char *listen, size_t ln, char *datadir, size_t dn,
                             char *cert, size_t cn)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        char *k, *v;
        if (confline_split(line, &k, &v) <= 0)
            continue;
        if (strcmp(k, "listen") == 0)
            take(listen, ln, v);
        else if (strcmp(k, "data-dir") == 0)
            take(datadir, dn, v);
        else if (strcmp(k, "tls-cert") == 0)
            take(cert, cn, "yes");
    }
    fclose(f);
}

/* The first line of a token file, when readable. */
static void read_token_file(const char *path, char *token, size_t n)
{
    if (token[0])
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[CLI_TOKEN_MAX];
    if (fgets(line, sizeof(line), f))
        take(token, n, trim(line));
    fclose(f);
}

static bool loopback(const char *url)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    const char *h = strncmp(url, "https://", 8) == 0  ? url + 8
                    : strncmp(url, "http://", 7) == 0 ? url + 7
                                                      : NULL;
    for (size_t i = 0; h && i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        size_t n = strlen(hosts[i]);
        if (strncmp(h, hosts[i], n) == 0 && (h[n] == ':' || h[n] == '/' || h[n] == '\0'))
            return true;
    }
    return false;
}

int config_resolve(cli *c, const char *url, const char *token)
{
    c->url[0] = c->token[0] = '\0';
    take(c->url, sizeof(c->url), url);
    take(c->token, sizeof(c->token), token);
    take(c->url, sizeof(c->url), c->url[0] ? NULL : getenv("HEARTH_URL"));
    take(c->token, sizeof(c->token), c->token[0] ? NULL : getenv("HEARTH_TOKEN"));

    char path[4096];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(path, sizeof(path), "%s/hearth/config", xdg);
    else if (home && *home)
        snprintf(path, sizeof(path), "%s/.config/hearth/config", home);
    else
        path[0] = '\0';
    if (path[0])
        read_kv(path, c->url, sizeof(c->url), c->token, sizeof(c->token));

    /* The daemon on this machine: its config file says where it listens
     * and where its data (and so its admin token) is. */
    char listen[256] = "", datadir[4096] = "", cert[8] = "";
    const char *conf = getenv("HEARTH_CONFIG");
    read_daemon_conf(conf && *conf ? conf : HEARTH_DEFAULT_CONFIG, listen, sizeof(listen), datadir,
                     sizeof(datadir), cert, sizeof(cert));
    if (!c->url[0] && listen[0]) {
        /* a wildcard address is reached on loopback */
        const char *scheme = cert[0] ? "https" : "http";
        if (strncmp(listen, "0.0.0.0:", 8) == 0)
            snprintf(c->url, sizeof(c->url), "%s://127.0.0.1%s", scheme, listen + 7);
        else if (strncmp(listen, "[::]:", 5) == 0)
            snprintf(c->url, sizeof(c->url), "%s://[::1]%s", scheme, listen + 4);
        else
            snprintf(c->url, sizeof(c->url), "%s://%s", scheme, listen);
    }
    if (!c->url[0])
        take(c->url, sizeof(c->url), "http://127.0.0.1:8080");

    /* A local admin token is only ever sent to a daemon on this machine:
     * $HEARTH_DATA_DIR's, `make run`'s ./hearth-data, then the installed
     * daemon's data dir (readable by root alone there). */
    if (loopback(c->url)) {
        const char *dirs[3] = {getenv("HEARTH_DATA_DIR"), "hearth-data", datadir};
        for (int i = 0; i < 3 && !c->token[0]; i++) {
            if (!dirs[i] || !dirs[i][0])
                continue;
            snprintf(path, sizeof(path), "%s/admin-token", dirs[i]);
            read_token_file(path, c->token, sizeof(c->token));
        }
    }

    size_t n = strlen(c->url);
    while (n && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)
        return cli_fail(CLI_USAGE, "the URL '%s' is not http:// or https://", c->url);
    for (const char *p = c->token; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return cli_fail(CLI_USAGE, "the token holds a space or control character");
    return CLI_OK;
}
