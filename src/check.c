/*
 * check.c — `hearthd check --data-dir DIR [--repair] [--json]`: verifies
 * the data directory a stopped hearthd left, the way the daemon would read
 * it at its next start, and reports every finding on its own line.
 *
 * Three kinds of finding:
 *   problem  — data the daemon relies on is wrong or missing (a failed
 *              integrity check, a version without its code or with other
 *              code than its digest, an unknown schema, a bad state, a
 *              secret file others may read). Exit 1.
 *   leftover — what an unclean stop (kill -9, power loss) normally leaves
 *              and the daemon copes with: staging folders, code folders no
 *              version owns (a crash between the rename and the commit of a
 *              deploy, or between a prune's commit and its removal),
 *              invocations still 'running' (hearthd requeues them at
 *              start: events.c), a log segment's partial last line. These
 *              do not change the exit status.
 *   repaired — with --repair: what was fixed. Only leftovers and modes are
 *              ever repaired; acknowledged data (a version, its code, an
 *              invocation, a token, a log line) is never deleted.
 *
 * Must never: run against a data dir a live hearthd holds (its sqlite
 * connections hold the WAL's "dead man switch" lock: see daemon_pid()),
 * migrate a schema, or create files the daemon's user could not open (as
 * root, sqlite gives the -wal and -shm files it creates the database
 * file's owner, as the daemon's own start does).
 */
#include "check.h"

#include "code_digest.h"
#include "decimal.h"
#include "events/evstore.h"
#include "fsutil.h"
#include "logstore.h"
#include "paths.h"
#include "registry.h"
#include "secrets.h"
#include "timefmt.h"
#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(REG_TOKEN_HASH_LEN == 32, "the tokens query below says 32");

typedef enum { F_PROBLEM, F_LEFTOVER, F_REPAIRED } finding_kind;

static const char *const kind_word[] = {"problem", "leftover", "repaired"};

typedef struct check {
    bool repair, json;
    FILE *out;
    unsigned count[3];
    json_t *findings; /* --json: the array printed at the end */
    sqlite3 *reg, *ev;
} check;

/* --- reporting --- */

static void finding(check *c, finding_kind k, const char *area, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void finding(check *c, finding_kind k, const char *area, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->count[k]++;
    if (!c->json) {
        fprintf(c->out, "%s: %s: %s\n", kind_word[k], area, msg);
        return;
    }
    json_t *f = json_pack("{s:s,s:s,s:s}", "kind", kind_word[k], "area", area, "message", msg);
    if (!f || json_array_append_new(c->findings, f) < 0)
        c->count[F_PROBLEM]++; /* cannot be shown: never report clean instead */
}

/* A leftover, removed with --repair. `path` is relative to the data dir. */
static void leftover_path(check *c, const char *area, const char *path, const char *why)
{
    if (!c->repair) {
        finding(c, F_LEFTOVER, area, "%s: %s (--repair removes it)", path, why);
        return;
    }
    int rc = fsutil_remove_tree(path);
    if (rc < 0)
        finding(c, F_PROBLEM, area, "%s: %s; could not remove it: %s", path, why, strerror(-rc));
    else
        finding(c, F_REPAIRED, area, "removed %s (%s)", path, why);
}

/* --- is a hearthd using it? --- */

/* sqlite's unix VFS: every connection to a WAL database holds a read lock
 * on this byte of <db>-shm while it is open (UNIX_SHM_DMS). */
#define SHM_DMS_OFFSET 128

/* The pid of a process with `db` open, 0 when none, -1 when unknown. */
static long db_holder(const char *db)
{
    char shm[PATH_MAX];
    if (path_format(shm, sizeof shm, "%s-shm", db))
        return -1;
    int fd = open(shm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SHM_DMS_OFFSET, .l_len = 1};
    int rc = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (rc < 0)
        return -1;
    return fl.l_type == F_UNLCK ? 0 : (long)fl.l_pid;
}

static int refuse_if_live(void)
{
    static const char *const dbs[] = {"hearth.db", "events.db"};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        long pid = db_holder(dbs[i]);
        if (pid == 0)
            continue;
        if (pid > 0)
            fprintf(stderr, "hearthd check: process %ld has %s open: stop hearthd first\n", pid,
                    dbs[i]);
        else
            fprintf(stderr, "hearthd check: cannot tell whether a hearthd uses %s\n", dbs[i]);
        return -1;
    }
    return 0;
}

/* --- sqlite --- */

static int open_db(const char *path, sqlite3 **out)
{
    *out = NULL;
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    if (sqlite3_open_v2(path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(*out);
        *out = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*out, 1000);
    return 0;
}

/* Runs `sql` and calls row() for each row; -1 when it fails. */
typedef void (*row_fn)(check *c, sqlite3_stmt *st, void *ud);

static int each_row(check *c, sqlite3 *db, const char *area, const char *sql, row_fn row, void *ud)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        finding(c, F_PROBLEM, area, "cannot read (%s): %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        row(c, st, ud);
    if (rc != SQLITE_DONE)
        finding(c, F_PROBLEM, area, "reading failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static void integrity_row(check *c, sqlite3_stmt *st, void *ud)
{
    const char *line = col_text(st, 0);
    if (strcmp(line, "ok") != 0)
        finding(c, F_PROBLEM, ud, "integrity_check: %s", line);
}

static void fk_row(check *c, sqlite3_stmt *st, void *ud)
{
    finding(c, F_PROBLEM, ud, "foreign key: a row of %s (rowid %lld) points at a missing %s",
            col_text(st, 0), (long long)sqlite3_column_int64(st, 1), col_text(st, 2));
}

static void version_row(check *c, sqlite3_stmt *st, void *ud)
{
    *(int64_t *)ud = sqlite3_column_int64(st, 0);
    (void)c;
}

/* integrity_check, foreign keys, a schema this build knows. */
static int check_db(check *c, sqlite3 *db, const char *area, int known)
{
    int64_t v = -1;
    if (each_row(c, db, area, "PRAGMA integrity_check", integrity_row, (void *)area) < 0 ||
        each_row(c, db, area, "PRAGMA user_version", version_row, &v) < 0)
        return -1;
    each_row(c, db, area, "PRAGMA foreign_key_check", fk_row, (void *)area);
    if (v > known) {
        finding(c, F_PROBLEM, area,
                "schema version %" PRId64 " is newer than this hearthd knows (%d): use the "
                "hearthd that wrote it",
                v, known);
        return -1;
    }
    if (v < known) /* hearthd migrates it at start; only a missing table is wrong */
        finding(c, F_LEFTOVER, area,
                "schema version %" PRId64 " (this hearthd's is %d): hearthd migrates it at start",
                v, known);
    return v < known ? -1 : 0; /* an old schema: the queries below may not apply */
}

/* --- the registry against the code on disk --- */

static void version_code_row(check *c, sqlite3_stmt *st, void *ud)
{
    (void)ud;
    const char *name = col_text(st, 0), *digest = col_text(st, 2);
    int64_t version = sqlite3_column_int64(st, 1);
    char dir[PATH_MAX];
    struct stat sb;
    if (path_format(dir, sizeof dir, "code/%s/%" PRId64, name, version) || strchr(name, '/') ||
        name[0] == '.') {
        finding(c, F_PROBLEM, "registry", "function name %s cannot be a folder", name);
        return;
    }
    if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        finding(c, F_PROBLEM, "code", "%s version %" PRId64 ": its code %s is missing", name,
                version, dir);
        return;
    }
    if (!digest[0])
        return; /* deployed before digests existed */
    char got[CODE_DIGEST_LEN];
    int rc = code_digest_tree(dir, got, NULL);
    if (rc < 0)
        finding(c, F_PROBLEM, "code", "%s version %" PRId64 ": cannot read %s: %s", name, version,
                dir, strerror(-rc));
    else if (strcmp(got, digest) != 0)
        finding(c, F_PROBLEM, "code", "%s version %" PRId64 ": %s has digest %s, recorded %s", name,
                version, dir, got, digest);
}

/* A query whose every row (text, number) is a problem, told by `fmt`. */
typedef struct row_problem {
    const char *area, *fmt;
} row_problem;

static void problem_row(check *c, sqlite3_stmt *st, void *ud)
{
    const row_problem *p = ud;
    finding(c, F_PROBLEM, p->area, p->fmt, col_text(st, 0), (long long)sqlite3_column_int64(st, 1));
}

/* True when `name`/`version` (version < 0: any) is in the registry. */
static bool known_version(check *c, const char *name, long long version)
{
    sqlite3_stmt *st = NULL;
    const char *sql = version < 0 ? "SELECT 1 FROM functions WHERE name = ?1"
                                  : "SELECT 1 FROM versions WHERE name = ?1 AND version = ?2";
    if (sqlite3_prepare_v2(c->reg, sql, -1, &st, NULL) != SQLITE_OK)
        return true; /* unknown: never call it an orphan */
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (version >= 0)
        sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc != SQLITE_DONE;
}

static void check_function_dir(check *c, const char *name)
{
    char dir[PATH_MAX], sub[PATH_MAX];
    if (path_format(dir, sizeof dir, "code/%s", name))
        return;
    if (!known_version(c, name, -1)) {
        leftover_path(c, "code", dir, "no such function (a delete or failed first deploy)");
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        finding(c, F_PROBLEM, "code", "cannot read %s: %s", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* A version folder's name: digits only, no leading zero. */
        uint64_t n;
        long long v = decimal_parse_positive(e->d_name, INT64_MAX, &n) ? (long long)n : -1;
        if ((v > 0 && known_version(c, name, v)) ||
            path_format(sub, sizeof sub, "%s/%s", dir, e->d_name))
            continue;
        leftover_path(c, "code", sub,
                      v > 0 ? "no such version (an interrupted deploy or prune)"
                            : "not a version folder");
    }
    closedir(d);
}

static void check_code_tree(check *c)
{
    DIR *d = opendir("code");
    if (!d) {
        if (errno != ENOENT)
            finding(c, F_PROBLEM, "code", "cannot read code/: %s", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            check_function_dir(c, e->d_name);
    closedir(d);
}

static void check_registry(check *c)
{
    each_row(c, c->reg, "code", "SELECT name, version, digest FROM versions ORDER BY name, version",
             version_code_row, NULL);
    each_row(c, c->reg, "registry",
             "SELECT f.name, f.current_version FROM functions f WHERE NOT EXISTS (SELECT 1 FROM "
             "versions v WHERE v.name = f.name AND v.version = f.current_version)",
             problem_row,
             &(row_problem){"registry", "function %s: its current version %lld is not kept"});
    each_row(
        c, c->reg, "registry",
        "SELECT f.name, f.latest_version FROM functions f WHERE f.latest_version < (SELECT "
        "max(v.version) FROM versions v WHERE v.name = f.name)",
        problem_row,
        &(row_problem){"registry", "function %s: latest_version %lld is below a kept version"});
    each_row(c, c->reg, "registry",
             "SELECT a.function || ' alias ' || a.name, a.version FROM aliases a WHERE NOT EXISTS "
             "(SELECT 1 FROM versions v WHERE v.name = a.function AND v.version = a.version)",
             problem_row,
             &(row_problem){"registry", "%s: points at version %lld, which is not kept"});
    each_row(c, c->reg, "tokens",
             "SELECT id, length(hash) FROM tokens WHERE typeof(hash) != 'blob' OR length(hash) != "
             "32 /* REG_TOKEN_HASH_LEN */ OR scopes = '' OR expires_ms < 0 OR revoked_ms < 0",
             problem_row,
             &(row_problem){"tokens", "token %s: malformed row (hash length %lld, or no scope)"});
    check_code_tree(c);
}

/* --- the event store --- */

static void requeue_running(check *c, int64_t n)
{
    if (!c->repair) {
        finding(c, F_LEFTOVER, "events",
                "%" PRId64 " invocation(s) were running when hearthd stopped; hearthd requeues "
                "them at start (--repair does it now)",
                n);
        return;
    }
    /* As the daemon does at start: the attempt that was cut short is not
     * counted, and they may run at once. */
    int done = evstore_requeue_running_db(c->ev, timefmt_steady_ms());
    if (done < 0) {
        finding(c, F_PROBLEM, "events", "could not requeue the running invocations: %s",
                sqlite3_errmsg(c->ev));
        return;
    }
    finding(c, F_REPAIRED, "events", "requeued %d invocation(s) left running", done);
}

static void count_row(check *c, sqlite3_stmt *st, void *ud)
{
    (void)c;
    *(int64_t *)ud = sqlite3_column_int64(st, 0);
}

static void check_events(check *c)
{
    each_row(c, c->ev, "events",
             "SELECT id, status FROM invocations WHERE status NOT BETWEEN 0 AND 5", problem_row,
             &(row_problem){"events", "invocation %s: unknown status %lld"});
    each_row(c, c->ev, "events",
             "SELECT id, status FROM invocations WHERE (status IN (3, 4, 5) AND finished_ms = 0) "
             "OR attempts < 0 OR id = '' OR function = ''",
             problem_row,
             &(row_problem){"events", "invocation %s (status %lld): inconsistent row"});
    int64_t running = 0;
    each_row(c, c->ev, "events", "SELECT count(*) FROM invocations WHERE status = 1", count_row,
             &running);
    if (running > 0)
        requeue_running(c, running);
}

/* --- files --- */

/* A file that holds a secret: a regular file no one else may read. */
static void check_secret_file(check *c, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            finding(c, F_PROBLEM, "files", "cannot stat %s: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        finding(c, F_PROBLEM, "files", "%s is not a regular file", path);
        return;
    }
    if ((st.st_mode & 077) == 0)
        return;
    if (c->repair && chmod(path, st.st_mode & 0700) == 0) {
        finding(c, F_PROBLEM, "files", "%s was mode %04o: others could read a secret", path,
                (unsigned)(st.st_mode & 07777));
        finding(c, F_REPAIRED, "files", "made %s mode %04o", path, (unsigned)(st.st_mode & 0700));
        return;
    }
    finding(c, F_PROBLEM, "files", "%s is mode %04o: others can read a secret (--repair: chmod)",
            path, (unsigned)(st.st_mode & 07777));
}

static void check_files(check *c)
{
    struct stat st;
    if (stat(".", &st) == 0 && (st.st_mode & 022))
        finding(c, F_PROBLEM, "files", "the data dir is mode %04o: others may write to it",
                (unsigned)(st.st_mode & 07777));
    static const char *const secret_files[] = {"hearth.db", "events.db", ADMIN_TOKEN_FILE,
                                               AUTH_SIGV4_KEY_FILE, SECRETS_KEY_FILE};
    for (size_t i = 0; i < sizeof secret_files / sizeof secret_files[0]; i++)
        check_secret_file(c, secret_files[i]);
    /* The daemon empties staging/ at start: half-made deploys, trash. */
    DIR *d = opendir("staging");
    struct dirent *e;
    char path[PATH_MAX];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            path_format(path, sizeof path, "staging/%s", e->d_name))
            continue;
        leftover_path(c, "files", path, "an interrupted deploy or removal");
    }
    if (d)
        closedir(d);
    /* auth.c writes the admin token through "<file>.tmp". */
    d = opendir(".");
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)
            leftover_path(c, "files", e->d_name, "a temporary file of an interrupted write");
    }
    if (d)
        closedir(d);
}

/* --- the log store (logstore.c: logs/<function>/<20 digits>.ndjson) --- */

typedef struct seg_scan {
    size_t bad;   /* complete lines that are not JSON objects */
    bool partial; /* the last line has no '\n' */
    bool unreadable;
} seg_scan;

static void scan_segment(const char *path, seg_scan *s)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        s->unreadable = true;
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            s->partial = true;
            break;
        }
        json_t *j = n < LOGSTORE_LINE_MAX ? json_loadb(line, (size_t)n, 0, NULL) : NULL;
        if (!json_is_object(j))
            s->bad++;
        json_decref(j);
    }
    if (ferror(f))
        s->unreadable = true;
    free(line);
    fclose(f);
}

static void check_log_dir(check *c, const char *fn)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (path_format(dir, sizeof dir, "logs/%s", fn))
        return;
    DIR *d = opendir(dir);
    if (!d) {
        finding(c, F_PROBLEM, "logs", "cannot read %s: %s", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || path_format(path, sizeof path, "%s/%s", dir, e->d_name))
            continue;
        seg_scan s = {0};
        errno = 0;
        scan_segment(path, &s);
        if (s.unreadable)
            finding(c, F_PROBLEM, "logs", "cannot read %s: %s", path,
                    errno ? strerror(errno) : "read error");
        if (s.bad)
            finding(c, F_PROBLEM, "logs",
                    "%s: %zu line(s) are not log records (skipped by queries)", path, s.bad);
        if (s.partial) /* logstore.c ends it with '\n' before appending */
            finding(c, F_LEFTOVER, "logs", "%s: a partial last line (an interrupted write)", path);
    }
    closedir(d);
}

static void check_logs(check *c)
{
    DIR *d = opendir("logs");
    if (!d) {
        if (errno != ENOENT)
            finding(c, F_PROBLEM, "logs", "cannot read logs/: %s", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            check_log_dir(c, e->d_name);
    closedir(d);
}

/* --- running it --- */

static void print_summary(check *c, int status)
{
    static const char *const word[] = {"clean", "problems", "error"};
    if (c->json) {
        json_t *o = json_pack("{s:s,s:i,s:i,s:i,s:O}", "status", word[status], "problems",
                              (int)c->count[F_PROBLEM], "leftovers", (int)c->count[F_LEFTOVER],
                              "repaired", (int)c->count[F_REPAIRED], "findings", c->findings);
        if (o)
            json_dumpf(o, c->out, JSON_COMPACT);
        fputc('\n', c->out);
        json_decref(o);
        return;
    }
    fprintf(c->out,
            "hearthd check: %s: %u problem(s), %u leftover(s) of an unclean stop, %u "
            "repaired\n",
            word[status], c->count[F_PROBLEM], c->count[F_LEFTOVER], c->count[F_REPAIRED]);
}

/* In the data dir. CHECK_FAILED when the databases cannot be opened. */
static int run_checks(check *c)
{
    if (open_db("hearth.db", &c->reg) < 0) {
        fprintf(stderr, "hearthd check: cannot open hearth.db: is this a hearthd data dir?\n");
        return CHECK_FAILED;
    }
    if (check_db(c, c->reg, "registry", registry_schema_version()) == 0)
        check_registry(c);
    if (open_db("events.db", &c->ev) == 0) {
        if (check_db(c, c->ev, "events", evstore_schema_version()) == 0)
            check_events(c);
    } else if (access("events.db", F_OK) == 0) {
        finding(c, F_PROBLEM, "events", "cannot open events.db");
    }
    check_files(c);
    check_logs(c);
    return c->count[F_PROBLEM] ? CHECK_PROBLEMS : CHECK_CLEAN;
}

int check_run(const char *dir, bool repair, bool json, FILE *out)
{
    check c = {.repair = repair, .json = json, .out = out};
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0 || chdir(dir) < 0) {
        fprintf(stderr, "hearthd check: cannot enter %s: %s\n", dir, strerror(errno));
        if (cwd >= 0)
            close(cwd);
        return CHECK_FAILED;
    }
    int status = CHECK_FAILED;
    if (json && !(c.findings = json_array()))
        fprintf(stderr, "hearthd check: out of memory\n");
    else if (refuse_if_live() == 0)
        status = run_checks(&c);
    sqlite3_close(c.reg);
    sqlite3_close(c.ev);
    if (status != CHECK_FAILED || json)
        print_summary(&c, status);
    json_decref(c.findings);
    if (fchdir(cwd) < 0)
        status = CHECK_FAILED;
    close(cwd);
    return status;
}

static const char usage[] = "usage: hearthd check --data-dir DIR [--repair] [--json]\n"
                            "  verifies the data dir of a stopped hearthd; exit 0 clean, 1 "
                            "problems found, 2 could not check\n";

int check_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, 0, 'd'},
        {"repair", no_argument, 0, 'r'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL;
    bool repair = false, json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'r':
            repair = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return CHECK_FAILED;
        }
    }
    if (!dir || optind != argc) {
        fputs(usage, stderr);
        return CHECK_FAILED;
    }
    return check_run(dir, repair, json, stdout);
}
