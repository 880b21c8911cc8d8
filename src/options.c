/*
 * options.c — one table of the daemon's options, walked by getopt, by the
 * config file reader, by --help and by SIGHUP's comparison of old and new
 * settings. A new option is a new row.
 *
 * The config file holds `key = value` lines, the key being the long
 * option without its dashes (`listen = 0.0.0.0:8443`, flags as
 * `no-templates = true`), `#` comments, blank lines. Its values go under
 * the command line's: on every load (start and SIGHUP) the file is applied
 * over the defaults and the command line is replayed over the file.
 *
 * Owns: parsing and checking every option's value, the config file's
 * format, the --help text. Must never: act on a setting (main.c does), or
 * log through dlog before the level is known (errors go to stderr).
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hearth/protocol.h>

#include "confline.h"
#include "dlog.h"
#include "gateway.h"

#define CONF_LINE_MAX 4096
#define CONF_FILE_MAX (1u << 20)
#define OPT_ERR_MAX   512
#define HELP_COLUMN   26

enum opt_type {
    T_STR,      /* const char * */
    T_SIZE,     /* size_t, K/M/G suffixes */
    T_COUNT,    /* unsigned */
    T_ULONG,    /* unsigned long */
    T_SECONDS,  /* given in seconds, kept as uint64_t milliseconds */
    T_LEVEL,    /* int, dlog's levels */
    T_FLAG,     /* bool */
    T_UIDRANGE, /* uid_base and uid_count */
    T_CIDR,     /* egress_cidr (min: 1 = a :PORT may follow) */
    T_CIDRS,    /* a list of them: each line or option adds one (max: the list's offset) */
    T_NETWORK,  /* uint8_t, a fn_network a deploy may be given by default */
    T_ACTION,   /* command line only: --config, --help, ... */
};

enum opt_action { A_NONE, A_CONFIG, A_CHECK, A_VERSION, A_HELP };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off; /* into hearth_settings */
    unsigned long long min, max;
    options_when when;
    enum opt_action action;
    /* The built-in value, parsed like any other (NULL: zero, or computed
     * by main.c when zero, as the help text then says). */
    const char *def;
    const char *arg;  /* its value in --help; NULL for flags */
    const char *help; /* '\n' continues on the next line, aligned */
};

#define OFF(f) offsetof(hearth_settings, f)

static const struct opt table[] = {
    {"config", T_ACTION, 0, 0, 0, OPTIONS_RESTART, A_CONFIG, NULL, "FILE",
     "read settings from FILE (installed, the default is\n" HEARTH_DEFAULT_CONFIG
     "; a build tree reads\nnone); the command line wins over it"},
    {"listen", T_STR, OFF(listen), 0, 0, OPTIONS_RESTART, A_NONE, "127.0.0.1:8080", "HOST:PORT",
     "address to serve HTTP on ([::1]:PORT for IPv6,\nport 0 picks a free port)"},
    {"data-dir", T_STR, OFF(data_dir), 0, 0, OPTIONS_RESTART, A_NONE, "./hearth-data", "DIR",
     "where functions, code and logs are kept (created\nif missing)"},
    {"tls-cert", T_STR, OFF(tls_cert), 0, 0, OPTIONS_LIVE, A_NONE, NULL, "FILE",
     "serve HTTPS with this PEM certificate (chain);\nre-read on SIGHUP"},
    {"tls-key", T_STR, OFF(tls_key), 0, 0, OPTIONS_LIVE, A_NONE, NULL, "FILE",
     "the PEM private key of --tls-cert"},
    {"log-level", T_LEVEL, OFF(log_level), 0, 0, OPTIONS_LIVE, A_NONE, "info", "LEVEL",
     "error, warn, info or debug"},
    {"max-body", T_SIZE, OFF(max_body), 1, HEARTH_FRAME_MAX_BODY, OPTIONS_LIVE, A_NONE, "6M",
     "SIZE", "largest invoke request body"},
    {"max-response", T_SIZE, OFF(max_response), 1, HEARTH_FRAME_MAX_BODY, OPTIONS_RESTART, A_NONE,
     "6M", "SIZE", "largest function answer"},
    {"log-retention", T_SIZE, OFF(log_retention), 65536, 1ull << 50, OPTIONS_LIVE, A_NONE, "32M",
     "SIZE", "log bytes kept per function"},
    {"max-workers", T_COUNT, OFF(max_workers), 1, 100000, OPTIONS_LIVE, A_NONE, "64", "N",
     "live workers across all functions"},
    {"max-starting", T_COUNT, OFF(max_starting), 1, 10000, OPTIONS_LIVE, A_NONE, NULL, "N",
     "workers starting at once, across all functions\n(default twice the CPUs, at least 4)"},
    {"memory-budget", T_SIZE, OFF(memory_budget), 64u << 20, 1ull << 50, OPTIONS_LIVE, A_NONE, NULL,
     "SIZE",
     "the memory_mb of all live workers, summed, stays\n"
     "under this (default 3/4 of the machine's memory)"},
    {"max-queue", T_COUNT, OFF(max_queue), 0, 10000, OPTIONS_LIVE, A_NONE, "100", "N",
     "default max_queue of a function: requests waiting\nbeyond its capacity before 429"},
    {"keep-alive", T_SECONDS, OFF(keep_alive_ms), 1, 86400 * 365, OPTIONS_LIVE, A_NONE, "600",
     "SECONDS", "default keep_alive_s of a function: idle time\nbefore a worker stops"},
    {"keep-versions", T_COUNT, OFF(keep_versions), 1, 10000, OPTIONS_LIVE, A_NONE, "10", "N",
     "versions of each function kept (the current and\naliased ones always)"},
    {"result-retention", T_SECONDS, OFF(result_retention_ms), 1, 86400 * 365, OPTIONS_RESTART,
     A_NONE, "86400", "SECONDS",
     "how long a finished asynchronous invocation's\nresult is kept (a day)"},
    {"shutdown-grace", T_COUNT, OFF(shutdown_grace_s), 0, 3600, OPTIONS_LIVE, A_NONE, "10",
     "SECONDS", "time requests get to finish on SIGTERM"},
    {"max-connections", T_COUNT, OFF(max_connections), 1, 1000000, OPTIONS_RESTART, A_NONE, "1024",
     "N",
     "client connections open at once; at the limit the\n"
     "longest-idle one is closed for a new one, or the\nnew one gets 503"},
    {"header-timeout", T_SECONDS, OFF(header_timeout_ms), 1, 3600, OPTIONS_RESTART, A_NONE, "10",
     "SECONDS",
     "a request's head must arrive within this of the\n"
     "connection opening or its previous answer (408)"},
    {"body-timeout", T_SECONDS, OFF(body_timeout_ms), 1, 86400, OPTIONS_RESTART, A_NONE, "60",
     "SECONDS", "a request's body must arrive within this of its\nhead (408)"},
    {"idle-timeout", T_SECONDS, OFF(idle_timeout_ms), 1, 86400, OPTIONS_RESTART, A_NONE, "60",
     "SECONDS",
     "a connection that moves no byte either way for\n"
     "this long is closed (a client not reading its answer)"},
    {"runtimes-dir", T_STR, OFF(runtimes_dir), 0, 0, OPTIONS_RESTART, A_NONE, NULL, "DIR",
     "where runtime programs live (default: the installed\n"
     "share/hearth/runtimes; in a build tree, the source's)"},
    {"uid-range", T_UIDRANGE, OFF(uid_base), 0, 0, OPTIONS_RESTART, A_NONE, "400000:4096",
     "BASE:COUNT", "as root, each worker runs as its own uid (= gid)\nfrom this range"},
    {"user", T_STR, OFF(user), 0, 0, OPTIONS_RESTART, A_NONE, "nobody", "USER",
     "started as root, the daemon drops to USER once its\nprivileged spawner runs"},
    {"allow-weaker-sandbox", T_FLAG, OFF(allow_weaker_sandbox), 0, 0, OPTIONS_RESTART, A_NONE, NULL,
     NULL, "start even when the kernel refuses a protection\n(each is logged at start)"},
    {"no-host-network", T_FLAG, OFF(no_host_network), 0, 0, OPTIONS_RESTART, A_NONE, NULL, NULL,
     "refuse to start workers of functions deployed with\n\"network\": \"host\""},
    {"default-network", T_NETWORK, OFF(default_network), 0, 0, OPTIONS_RESTART, A_NONE, "isolated",
     "MODE", "\"network\" of a deploy that names none: isolated\nor egress"},
    {"egress-subnet", T_CIDR, OFF(egress.subnet), 0, 0, OPTIONS_RESTART, A_NONE, "10.213.0.0/16",
     "CIDR", "egress workers' addresses, a /30 each, as root\n(/8 to /26)"},
    {"egress-deny", T_CIDRS, OFF(egress.ndeny), 0, OFF(egress.deny), OPTIONS_RESTART, A_NONE, NULL,
     "CIDR", "egress workers may not reach it (repeatable; adds\nto host, workers, link-local)"},
    {"egress-allow", T_CIDRS, OFF(egress.nallow), 1, OFF(egress.allow), OPTIONS_RESTART, A_NONE,
     NULL, "CIDR[:PORT]",
     "egress workers may reach it even if denied, the\nhost included (repeatable; "
     "docs/security.md)"},
    {"resolv-conf", T_STR, OFF(egress.resolv_conf), 0, 0, OPTIONS_RESTART, A_NONE,
     "/etc/resolv.conf", "FILE", "the host's resolvers, which egress workers' DNS\nis relayed to"},
    {"adaptive-bin-ms", T_ULONG, OFF(adaptive_bin_ms), 10, 3600000, OPTIONS_RESTART, A_NONE, NULL,
     "MS", "histogram bin of \"keep_alive\": \"adaptive\"\n(default 60000; 240 bins)"},
    {"prebuilt-min", T_COUNT, OFF(prebuilt_min), 0, 64, OPTIONS_RESTART, A_NONE, "1", "N",
     "pre-built sandboxes kept ready per runtime, at least\n(0 with --prebuilt-max 0: none)"},
    {"prebuilt-max", T_COUNT, OFF(prebuilt_max), 0, 256, OPTIONS_RESTART, A_NONE, "8", "N",
     "and at most, as recent cold starts ask (0: every\ncold start builds its sandbox)"},
    {"no-templates", T_FLAG, OFF(no_templates), 0, 0, OPTIONS_RESTART, A_NONE, NULL, NULL,
     "start every worker by exec'ing its interpreter, not\n"
     "by cloning the runtime's pre-loaded template"},
    {"no-auth", T_FLAG, OFF(no_auth), 0, 0, OPTIONS_RESTART, A_NONE, NULL, NULL,
     "no bearer tokens: anyone who can connect may do\n"
     "anything (refused unless --listen is loopback)"},
    {"no-sandbox", T_FLAG, OFF(no_sandbox), 0, 0, OPTIONS_RESTART, A_NONE, NULL, NULL,
     "DEBUGGING ONLY: workers share the host's namespaces and\nfilesystem"},
    {"check-config", T_ACTION, 0, 0, 0, OPTIONS_RESTART, A_CHECK, NULL, NULL,
     "read the options and the config file, say whether\nthey are valid, and exit"},
    {"version", T_ACTION, 0, 0, 0, OPTIONS_RESTART, A_VERSION, NULL, NULL,
     "print the version and exit"},
    {"help", T_ACTION, 0, 0, 0, OPTIONS_RESTART, A_HELP, NULL, NULL, "print this help and exit"},
};

#define NOPTS (sizeof table / sizeof table[0])

struct given {
    const struct opt *opt;
    const char *value; /* argv's, NULL for a flag */
};

/* Strings of one load of the file, freed together with `options`. */
struct arena {
    struct arena *next;
    char text[];
};

struct options {
    struct given *argv_opts;
    size_t nargv;
    const char *config;   /* argv's or the default */
    struct arena *arenas; /* every load's strings: running settings may point into any */
};

/* --- values --- */

static int parse_ull(const char *s, unsigned long long *out, char **end)
{
    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    *out = strtoull(s, end, 10);
    return errno ? -EINVAL : 0;
}

static int parse_size(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v;
    if (parse_ull(s, &v, &end) < 0)
        return -EINVAL;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v > (1ull << (62 - shift)))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* "BASE:COUNT", kept clear of root and of the 32-bit overflow ids. */
static int parse_uid_range(const char *s, hearth_settings *set)
{
    char *end;
    unsigned long long base, count;
    if (parse_ull(s, &base, &end) < 0 || *end != ':' || base == 0 ||
        parse_ull(end + 1, &count, &end) < 0 || *end || count == 0 || count > 65536 ||
        base + count >= 0xfffffffeULL)
        return -EINVAL;
    set->uid_base = (uid_t)base;
    set->uid_count = (unsigned)count;
    return 0;
}

#define FIELD(set, o, type) ((type *)((char *)(set) + (o)->off))

/* --egress-subnet: small enough to hold a few workers, large enough to
 * be a network of its own. */
static int check_subnet(const egress_cidr *c, char *err, size_t errlen)
{
    if (c->prefix >= 8 && c->prefix <= 26)
        return 0;
    snprintf(err, errlen, "egress-subnet must be from a /8 to a /26");
    return -EINVAL;
}

/* The network options: CIDRs, lists of them, and the default mode. */
static int apply_network(const struct opt *o, const char *value, hearth_settings *set, char *err,
                         size_t errlen)
{
    char why[256];
    egress_cidr c;
    if (o->type == T_NETWORK) {
        bool egress = strcmp(value, "egress") == 0;
        if (!egress && strcmp(value, "isolated") != 0) {
            snprintf(err, errlen, "%s must be isolated or egress, not '%.64s'", o->name, value);
            return -EINVAL;
        }
        *FIELD(set, o, uint8_t) = egress ? FN_NET_EGRESS : FN_NET_ISOLATED;
        return 0;
    }
    if (egress_cidr_parse(value, o->min == 1, &c, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", o->name, why);
        return -EINVAL;
    }
    if (o->type == T_CIDR) {
        if (check_subnet(&c, err, errlen) < 0)
            return -EINVAL;
        *FIELD(set, o, egress_cidr) = c;
        return 0;
    }
    unsigned *n = FIELD(set, o, unsigned);
    egress_cidr *list = (egress_cidr *)(void *)((char *)set + o->max);
    if (*n >= EGRESS_LIST_MAX) {
        snprintf(err, errlen, "%s: at most %u entries", o->name, EGRESS_LIST_MAX);
        return -EINVAL;
    }
    list[(*n)++] = c;
    return 0;
}

/* Sets o's field of `set` from `value` (NULL: a flag on the command line).
 * Returns 0, or -EINVAL with what was expected in err. */
static int apply(const struct opt *o, const char *value, hearth_settings *set, char *err,
                 size_t errlen)
{
    unsigned long long v = 0;
    char *end;
    bool b = true;
    int rc = 0;
    switch (o->type) {
    case T_STR:
        if (!value[0]) {
            snprintf(err, errlen, "%s needs a value", o->name);
            return -EINVAL;
        }
        *FIELD(set, o, const char *) = value;
        return 0;
    case T_LEVEL:
        if ((*FIELD(set, o, int) = dlog_parse_level(value)) >= 0)
            return 0;
        snprintf(err, errlen, "%s must be error, warn, info or debug, not '%s'", o->name, value);
        return -EINVAL;
    case T_FLAG:
        if (value && parse_bool(value, &b) < 0) {
            snprintf(err, errlen, "%s must be true or false, not '%s'", o->name, value);
            return -EINVAL;
        }
        *FIELD(set, o, bool) = b;
        return 0;
    case T_UIDRANGE:
        if (parse_uid_range(value, set) == 0)
            return 0;
        snprintf(err, errlen,
                 "%s must be BASE:COUNT (BASE above 0, COUNT from 1 to 65536), not '%s'", o->name,
                 value);
        return -EINVAL;
    case T_CIDR:
    case T_CIDRS:
    case T_NETWORK:
        return apply_network(o, value, set, err, errlen);
    case T_SIZE:
        rc = parse_size(value, &v);
        break;
    default:
        rc = parse_ull(value, &v, &end) < 0 || *end ? -EINVAL : 0;
        break;
    }
    if (rc < 0 || v < o->min || v > o->max) {
        snprintf(err, errlen, "%s must be %s from %llu to %llu%s, not '%s'", o->name,
                 o->type == T_SIZE ? "a size" : "a whole number", o->min, o->max,
                 o->type == T_SIZE ? " bytes (K, M, G suffixes allowed)" : "", value);
        return -EINVAL;
    }
    if (o->type == T_SIZE)
        *FIELD(set, o, size_t) = (size_t)v;
    else if (o->type == T_COUNT)
        *FIELD(set, o, unsigned) = (unsigned)v;
    else if (o->type == T_ULONG)
        *FIELD(set, o, unsigned long) = (unsigned long)v;
    else
        *FIELD(set, o, uint64_t) = v * 1000; /* T_SECONDS */
    return 0;
}

static bool same_cidrs(const egress_cidr *x, const egress_cidr *y, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (x[i].addr != y[i].addr || x[i].prefix != y[i].prefix || x[i].port != y[i].port)
            return false;
    return true;
}

static bool same(const struct opt *o, const hearth_settings *a, const hearth_settings *b)
{
    switch (o->type) {
    case T_STR: {
        const char *x = *FIELD(a, o, const char *const), *y = *FIELD(b, o, const char *const);
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    case T_SIZE:
        return *FIELD(a, o, const size_t) == *FIELD(b, o, const size_t);
    case T_COUNT:
        return *FIELD(a, o, const unsigned) == *FIELD(b, o, const unsigned);
    case T_ULONG:
        return *FIELD(a, o, const unsigned long) == *FIELD(b, o, const unsigned long);
    case T_SECONDS:
        return *FIELD(a, o, const uint64_t) == *FIELD(b, o, const uint64_t);
    case T_LEVEL:
        return *FIELD(a, o, const int) == *FIELD(b, o, const int);
    case T_FLAG:
        return *FIELD(a, o, const bool) == *FIELD(b, o, const bool);
    case T_UIDRANGE:
        return a->uid_base == b->uid_base && a->uid_count == b->uid_count;
    case T_NETWORK:
        return *FIELD(a, o, const uint8_t) == *FIELD(b, o, const uint8_t);
    case T_CIDR:
        return same_cidrs(FIELD(a, o, const egress_cidr), FIELD(b, o, const egress_cidr), 1);
    case T_CIDRS: {
        unsigned n = *FIELD(a, o, const unsigned);
        const egress_cidr *x = (const void *)((const char *)a + o->max),
                          *y = (const void *)((const char *)b + o->max);
        return n == *FIELD(b, o, const unsigned) && same_cidrs(x, y, n);
    }
    default:
        return true;
    }
}

static const struct opt *find(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* --- the config file --- */

static int file_error(char *err, size_t errlen, const char *path, unsigned line, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
static int file_error(char *err, size_t errlen, const char *path, unsigned line, const char *fmt,
                      ...)
{
    char what[OPT_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line)
        snprintf(err, errlen, "%s:%u: %s", path, line, what);
    else
        snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

/* The whole file into a new arena of `o` (its lines are cut in place and
 * point into it), or NULL with err. */
static char *read_file(options *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        file_error(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct arena *a = malloc(sizeof *a + CONF_FILE_MAX + 1);
    size_t n = a ? fread(a->text, 1, CONF_FILE_MAX + 1, f) : 0;
    bool bad = a && ferror(f);
    fclose(f);
    if (!a || bad || n > CONF_FILE_MAX) {
        free(a);
        file_error(err, errlen, path, 0, "%s",
                   !a    ? "out of memory"
                   : bad ? "cannot read"
                         : "larger than 1 MiB");
        return NULL;
    }
    a->text[n] = '\0';
    if (memchr(a->text, '\0', n)) {
        free(a);
        file_error(err, errlen, path, 0, "holds a NUL byte: not a text file");
        return NULL;
    }
    struct arena *small = realloc(a, sizeof *a + n + 1); /* kept until exit: give back the rest */
    a = small ? small : a;
    a->next = o->arenas;
    o->arenas = a;
    return a->text;
}

/* One `key = value` line. first_line[i]: where option i was set before. */
static int file_line(char *s, const char *path, unsigned line, unsigned *first_line,
                     hearth_settings *set, char *err, size_t errlen)
{
    char *key, *value;
    int split = confline_split(s, &key, &value);
    if (split == 0)
        return 0;
    if (split < 0)
        return file_error(err, errlen, path, line, "expected 'key = value', not '%.80s'", key);
    const struct opt *o = find(key);
    if (!o || o->type == T_ACTION)
        return file_error(err, errlen, path, line, "unknown key '%.80s'", key);
    size_t i = (size_t)(o - table);
    if (first_line[i] && o->type != T_CIDRS)
        return file_error(err, errlen, path, line, "%s is set twice (first on line %u)", key,
                          first_line[i]);
    first_line[i] = line;
    char what[OPT_ERR_MAX];
    if (apply(o, value, set, what, sizeof what) < 0)
        return file_error(err, errlen, path, line, "%s", what);
    return 0;
}

static int load_file(options *o, hearth_settings *set, char *err, size_t errlen)
{
    char *text = read_file(o, o->config, err, errlen);
    if (!text)
        return -1;
    unsigned first_line[NOPTS] = {0}, line = 0;
    for (char *s = text, *nl; s; s = nl) {
        nl = strchr(s, '\n');
        if (nl)
            *nl++ = '\0';
        line++;
        if (strlen(s) > CONF_LINE_MAX)
            return file_error(err, errlen, o->config, line, "line longer than %u bytes",
                              CONF_LINE_MAX);
        if (file_line(s, o->config, line, first_line, set, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* --- the command line --- */

static void print_usage(FILE *out)
{
    fputs("usage: hearthd [options]\n\nRuns the Hearth function-as-a-service daemon.\n\n", out);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &table[i];
        int n = fprintf(out, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "%*s", n < HELP_COLUMN - 2 ? HELP_COLUMN - n : 2, "");
        for (const char *h = o->help; *h; h++) {
            fputc(*h, out);
            if (*h == '\n')
                fprintf(out, "%*s", HELP_COLUMN, "");
        }
        if (o->def && o->type != T_FLAG)
            fprintf(out, "\n%*s(default %s)", HELP_COLUMN, "", o->def);
        fputc('\n', out);
    }
    fputs("\nSIZE takes an optional K, M or G suffix (powers of 1024). Every option but\n"
          "--config, --check-config, --version and --help can be set in the config file\n"
          "as 'key = value' (the option without its dashes; flags as 'key = true').\n"
          "\n"
          "Every endpoint but GET /healthz needs Authorization: Bearer TOKEN. At the\n"
          "first start hearthd writes an admin token to DIR/admin-token.\n"
          "  hearthd token create|list|revoke --data-dir DIR ...   tokens offline\n"
          "                                   (hearthd token --help)\n",
          out);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hearthd: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Collects argv's options (their values checked later, when applied);
 * --config is kept, actions are returned through *action. */
static void read_argv(options *o, int argc, char **argv, enum opt_action *action)
{
    struct option longopts[NOPTS + 1];
    for (size_t i = 0; i < NOPTS; i++)
        longopts[i] = (struct option){table[i].name, table[i].arg ? required_argument : no_argument,
                                      NULL, (int)(256 + i)};
    longopts[NOPTS] = (struct option){0, 0, 0, 0};
    o->argv_opts = calloc((size_t)argc, sizeof *o->argv_opts);
    if (!o->argv_opts)
        die("out of memory");
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < 256 || c >= 256 + (int)NOPTS) {
            die("unknown option or missing value: '%s'\n(see hearthd --help)", argv[optind - 1]);
        }
        const struct opt *opt = &table[c - 256];
        if (opt->action == A_CONFIG)
            o->config = optarg;
        else if (opt->action != A_NONE)
            *action = *action == A_NONE || opt->action > *action ? opt->action : *action;
        else
            o->argv_opts[o->nargv++] = (struct given){opt, optarg};
    }
    if (optind < argc)
        die("unexpected argument '%s'\n(see hearthd --help)", argv[optind]);
}

static int replay_argv(const options *o, hearth_settings *set, char *err, size_t errlen)
{
    for (size_t i = 0; i < o->nargv; i++) {
        char what[OPT_ERR_MAX];
        if (apply(o->argv_opts[i].opt, o->argv_opts[i].value, set, what, sizeof what) < 0) {
            snprintf(err, errlen, "hearthd: --%s", what);
            return -1;
        }
    }
    return 0;
}

static int load(options *o, hearth_settings *set, char *err, size_t errlen)
{
    if (o->config && load_file(o, set, err, errlen) < 0)
        return -1;
    return replay_argv(o, set, err, errlen);
}

void options_defaults(hearth_settings *set)
{
    memset(set, 0, sizeof *set);
    char err[OPT_ERR_MAX];
    for (size_t i = 0; i < NOPTS; i++) {
        if (table[i].def && apply(&table[i], table[i].def, set, err, sizeof err) < 0) {
            /* A bad row is a bug of this file, caught by any test that starts hearthd. */
            fprintf(stderr, "hearthd: built-in default: %s\n", err);
            abort();
        }
    }
}

options *options_parse(int argc, char **argv, const char *default_config, hearth_settings *set)
{
    options *o = calloc(1, sizeof *o);
    if (!o)
        die("out of memory");
    enum opt_action action = A_NONE;
    read_argv(o, argc, argv, &action);
    if (action == A_HELP) {
        print_usage(stdout);
        exit(0);
    }
    if (action == A_VERSION) {
        printf("hearthd %s\n", HEARTH_VERSION);
        exit(0);
    }
    struct stat st;
    if (!o->config && default_config && stat(default_config, &st) == 0)
        o->config = default_config;
    char err[OPT_ERR_MAX + PATH_MAX];
    if (load(o, set, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    if (set->tls_cert && !set->tls_key)
        die("--tls-cert needs --tls-key (and the other way round)");
    if (set->tls_key && !set->tls_cert)
        die("--tls-key needs --tls-cert (and the other way round)");
    if (set->no_auth && !gateway_listen_is_loopback(set->listen))
        die("--no-auth lets anyone who can connect deploy and run code, so it is allowed only "
            "on a loopback address (--listen 127.0.0.1:PORT or [::1]:PORT); %s is not one",
            set->listen);
    if (action == A_CHECK) {
        printf("%s: ok\n", o->config ? o->config : "(no config file)");
        exit(0);
    }
    return o;
}

const char *options_config_path(const options *o)
{
    return o->config;
}

int options_reload(options *o, const hearth_settings *defaults, hearth_settings *next, char *err,
                   size_t errlen)
{
    *next = *defaults;
    if (load(o, next, err, errlen) < 0)
        return -1;
    if (!next->tls_cert != !next->tls_key) {
        snprintf(err, errlen, "%s: tls-cert and tls-key go together", o->config);
        return -1;
    }
    return 0;
}

void options_diff(const hearth_settings *a, const hearth_settings *b, options_changed_fn fn,
                  void *ud)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (table[i].type != T_ACTION && !same(&table[i], a, b))
            fn(table[i].name, table[i].when, ud);
}

void options_free(options *o)
{
    if (!o)
        return;
    while (o->arenas) {
        struct arena *next = o->arenas->next;
        free(o->arenas);
        o->arenas = next;
    }
    free(o->argv_opts);
    free(o);
}
