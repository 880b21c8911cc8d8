/*
 * runtimes.c — the runtime table. One entry per language: how to find its
 * interpreter (the real binary, never a PATH shim: DESIGN.md §7), how to
 * ask its version, which handler strings it accepts, and the argv that
 * starts its program from runtimes/<name>/. Adding a runtime is adding a
 * row. Must never: run on the request path anything but table lookups.
 */
#include "runtimes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "paths.h"

#define RUNTIME_PROGRAM_MAX (256 * 1024)

struct runtime_def {
    runtime_info info;
    const char *interpreter;     /* absolute path */
    const char *version_argv[6]; /* prints the version on stdout */
    const char *program[4];      /* files under runtimes/, joined in order (NULL-ended) */
    const char *flags[4];        /* between the interpreter and the program text */
    uint64_t vm_reserve;         /* see runtimes_vm_reserve */
    const char *template;        /* its template program (zygote.c), or NULL */
    int (*check_handler)(const char *handler, char *err, size_t errlen);
    char *program_text;  /* loaded at init */
    char *template_text; /* loaded at init when there is a template and its library */
    const char *argv[8];
    const char *template_argv[8];
};

extern char **environ;

/* Python: "module.function", the module possibly dotted or with '/'. */
static int python_handler(const char *h, char *err, size_t errlen)
{
    const char *dot = strrchr(h, '.');
    if (!dot || dot == h || dot[1] == '\0') {
        snprintf(err, errlen, "handler '%s' must look like module.function", h);
        return -EINVAL;
    }
    for (const char *p = h; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '/';
        if (!ok) {
            snprintf(err, errlen, "handler '%s' has a character Python cannot import", h);
            return -EINVAL;
        }
    }
    return 0;
}

/* exec: a path inside the package, e.g. "bin/hello" or "run.sh". */
static int exec_handler(const char *h, char *err, size_t errlen)
{
    bool ok = h[0] != '\0' && h[0] != '/';
    for (const char *p = h; ok && *p; p++) {
        char c = *p;
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '/' || c == '-';
    }
    for (const char *p = h; ok && (p = strstr(p, "..")); p += 2)
        ok = !((p == h || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'));
    if (!ok) {
        /* "/bin/sh": the system's programs are there to be named by a
         * script's #! line, not to be the handler. */
        snprintf(err, errlen,
                 "handler '%s' must be a relative path inside the package, e.g. run.sh; to run "
                 "a program of the system, ship a script whose #! line names it",
                 h);
        return -EINVAL;
    }
    return 0;
}

/* lambda: passed to the bootstrap as _HANDLER, whatever it means there;
 * printable, and short. */
static int lambda_handler(const char *h, char *err, size_t errlen)
{
    for (const char *p = h; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            snprintf(err, errlen, "handler must be printable ASCII without spaces");
            return -EINVAL;
        }
    }
    return 0;
}

/* c: the shared object's path in the package, e.g. "libhello.so". */
static int c_handler(const char *h, char *err, size_t errlen)
{
    size_t n = strlen(h);
    if (n < 4 || strcmp(h + n - 3, ".so") != 0 || exec_handler(h, err, errlen) < 0) {
        snprintf(err, errlen, "handler '%s' must be the path of a .so in the package", h);
        return -EINVAL;
    }
    return 0;
}

/* node: "file.function", the file (.js, .mjs or .cjs) a path in the package. */
static int node_handler(const char *h, char *err, size_t errlen)
{
    const char *dot = strrchr(h, '.');
    if (!dot || dot == h || dot[1] == '\0' || exec_handler(h, err, errlen) < 0) {
        snprintf(err, errlen, "handler '%s' must look like file.function", h);
        return -EINVAL;
    }
    return 0;
}

static struct runtime_def table[] = {
    {
        .info = {.name = "python3", .handler_hint = "module.function, e.g. main.handler"},
        .interpreter = "/usr/bin/python3",
        .version_argv = {"/usr/bin/python3", "-I", "-S", "-c",
                         "import platform; print(platform.python_version())", NULL},
        .program = {"python3/bootstrap.py"},
        .flags = {"-I", "-B", "-c"},
        .template = "python3/zygote.py",
        .check_handler = python_handler,
    },
    {
        /* Any executable, a process per request; the python3 runtime's
         * protocol loop runs it (runtimes/exec/runner.py). */
        .info = {.name = "exec",
                 .handler_hint = "the executable's path in the package, e.g. run.sh"},
        .interpreter = "/usr/bin/python3",
        .version_argv = {"/usr/bin/python3", "-I", "-S", "-c",
                         "import platform; print(platform.python_version())", NULL},
        .program = {"python3/bootstrap.py", "exec/runner.py"},
        .flags = {"-I", "-B", "-c"},
        .template = "python3/zygote.py",
        .check_handler = exec_handler,
    },
    {
        /* The AWS Lambda Runtime API for a function's own bootstrap
         * (runtimes/lambda/runner.py), on exec's and python3's programs. */
        .info = {.name = "lambda",
                 .handler_hint =
                     "anything its bootstrap reads from _HANDLER, e.g. function.handler"},
        .interpreter = "/usr/bin/python3",
        .version_argv = {"/usr/bin/python3", "-I", "-S", "-c",
                         "import platform; print(platform.python_version())", NULL},
        .program = {"python3/bootstrap.py", "exec/runner.py", "lambda/runner.py"},
        .flags = {"-I", "-B", "-c"},
        .template = "python3/zygote.py",
        .check_handler = lambda_handler,
    },
    {
        /* Native C: the function is a shared object, loaded once by a small
         * runner built with hearthd (runtimes/c/runner.c); no program text. */
        .info = {.name = "c",
                 .handler_hint = "the shared object's path in the package, e.g. libhello.so"},
        .interpreter = NULL, /* runtimes_init: where the runner is installed */
        .version_argv = {NULL, "--version", NULL},
        .check_handler = c_handler,
    },
    {
        /* Node.js from Debian's package (or NodeSource's), never a version
         * manager's shim on PATH. No template: a clone of node is not safe
         * to take (V8 runs threads). */
        .info = {.name = "node", .handler_hint = "file.function, e.g. index.handler"},
        .interpreter = "/usr/bin/node",
        .version_argv = {"/usr/bin/node", "-p", "process.versions.node", NULL},
        .program = {"node/bootstrap.js"},
        .flags = {"--preserve-symlinks", "-e"},
        .vm_reserve = 1024ull << 20, /* V8 does not start under ~750 MiB of address space */
        .check_handler = node_handler,
    },
};

#define NRUNTIMES (sizeof table / sizeof table[0])

static char c_runner[PATH_MAX];   /* the c row's interpreter */
static char zygote_lib[PATH_MAX]; /* what templates load */

/* Runs argv and captures the first line of its stdout into out. */
static int probe_version(const char *const *argv, char *out, size_t cap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        return -rc;
    }
    ssize_t n = read(fds[0], out, cap - 1);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -EIO;
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static char *read_program(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *text = malloc(RUNTIME_PROGRAM_MAX + 1);
    size_t len = 0;
    ssize_t n;
    while (text && len < RUNTIME_PROGRAM_MAX &&
           (n = read(fd, text + len, RUNTIME_PROGRAM_MAX - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (text)
        text[len] = '\0';
    return text;
}

/* The runtime's program: its files joined, in order, after a line naming
 * the runtime, so that in a program built on another runtime's (exec on
 * python3's bootstrap) only the last file starts its loop. NULL with the
 * missing file in *missing. */
static char *read_programs(const struct runtime_def *rt, const char *dir, const char **missing)
{
    char *joined = NULL;
    if (asprintf(&joined, "HEARTH_RUNTIME = \"%s\"\n", rt->info.name) < 0)
        joined = NULL;
    for (size_t i = 0; joined && i < sizeof rt->program / sizeof *rt->program && rt->program[i];
         i++) {
        char path[PATH_MAX], *text = NULL, *both = NULL;
        if (path_format(path, sizeof path, "%s/%s", dir, rt->program[i]) == 0)
            text = read_program(path);
        if (text && asprintf(&both, "%s%s\n", joined, text) < 0)
            both = NULL;
        if (!text)
            *missing = rt->program[i];
        free(text);
        free(joined);
        joined = both;
    }
    return joined;
}

/* The template's argv: its program, the library it loads and the runtime
 * program it keeps loaded. Without the library (not built) there is none. */
static void prepare_template(struct runtime_def *rt, const char *dir)
{
    char path[PATH_MAX];
    if (!rt->template || access(zygote_lib, R_OK) != 0 ||
        path_format(path, sizeof path, "%s/%s", dir, rt->template) ||
        !(rt->template_text = read_program(path)))
        return;
    const char *argv[] = {rt->interpreter,  "-I", "-B", "-c", rt->template_text, zygote_lib,
                          rt->program_text, NULL};
    memcpy(rt->template_argv, argv, sizeof argv);
}

static void probe(struct runtime_def *rt, const char *dir)
{
    runtime_info *in = &rt->info;
    if (access(rt->interpreter, X_OK) != 0) {
        snprintf(in->reason, sizeof in->reason, "%s is not installed", rt->interpreter);
        return;
    }
    if (probe_version(rt->version_argv, in->version, sizeof in->version) < 0) {
        snprintf(in->reason, sizeof in->reason, "%s did not report its version", rt->interpreter);
        return;
    }
    const char *missing = "(out of memory)";
    rt->program_text = rt->program[0] ? read_programs(rt, dir, &missing) : NULL;
    if (rt->program[0] && !rt->program_text) {
        snprintf(in->reason, sizeof in->reason, "runtime program %s is missing in %.80s", missing,
                 dir);
        return;
    }
    /* The program travels in argv (-c): it need not be readable by the
     * worker's uid, wherever the checkout lives. */
    size_t n = 0;
    rt->argv[n++] = rt->interpreter;
    for (size_t i = 0; i < sizeof rt->flags / sizeof *rt->flags && rt->flags[i]; i++)
        rt->argv[n++] = rt->flags[i];
    if (rt->program_text)
        rt->argv[n++] = rt->program_text;
    rt->argv[n] = NULL;
    in->usable = true;
    prepare_template(rt, dir);
}

/* The rows whose program is one of ours take its path from here. */
static void place_helpers(const char *runner, const char *lib)
{
    snprintf(c_runner, sizeof c_runner, "%s", runner);
    snprintf(zygote_lib, sizeof zygote_lib, "%s", lib);
    for (size_t i = 0; i < NRUNTIMES; i++) {
        if (table[i].interpreter && table[i].version_argv[0])
            continue;
        table[i].interpreter = c_runner;
        table[i].version_argv[0] = c_runner;
    }
}

int runtimes_init(const char *dir, const char *runner, const char *lib)
{
    place_helpers(runner, lib);
    for (size_t i = 0; i < NRUNTIMES; i++) {
        probe(&table[i], dir);
        if (table[i].info.usable)
            dlog_info("runtime %s %s: usable", table[i].info.name, table[i].info.version);
        else
            dlog_warn("runtime %s: not usable: %s", table[i].info.name, table[i].info.reason);
    }
    return 0;
}

void runtimes_release(void)
{
    for (size_t i = 0; i < NRUNTIMES; i++) {
        free(table[i].program_text);
        free(table[i].template_text);
        table[i].program_text = table[i].template_text = NULL;
        table[i].info.usable = false;
    }
}

size_t runtimes_count(void)
{
    return NRUNTIMES;
}

const runtime_info *runtimes_at(size_t i)
{
    return i < NRUNTIMES ? &table[i].info : NULL;
}

static struct runtime_def *find(const char *name)
{
    for (size_t i = 0; i < NRUNTIMES; i++)
        if (strcmp(table[i].info.name, name) == 0)
            return &table[i];
    return NULL;
}

const runtime_info *runtimes_find(const char *name)
{
    struct runtime_def *rt = find(name);
    return rt ? &rt->info : NULL;
}

int runtimes_check_handler(const char *runtime, const char *handler, char *err, size_t errlen)
{
    struct runtime_def *rt = find(runtime);
    if (!rt) {
        snprintf(err, errlen, "unknown runtime '%s'", runtime);
        return -EINVAL;
    }
    return rt->check_handler(handler, err, errlen);
}

const char *const *runtimes_argv(const char *runtime)
{
    struct runtime_def *rt = find(runtime);
    return rt && rt->info.usable ? rt->argv : NULL;
}

const char *const *runtimes_template_argv(const char *runtime)
{
    struct runtime_def *rt = find(runtime);
    return rt && rt->info.usable && rt->template_text ? rt->template_argv : NULL;
}

uint64_t runtimes_vm_reserve(const char *runtime)
{
    struct runtime_def *rt = find(runtime);
    return rt ? rt->vm_reserve : 0;
}

const char *const *runtimes_interpreters(void)
{
    static const char *list[NRUNTIMES + 1];
    size_t n = 0;
    for (size_t i = 0; i < NRUNTIMES; i++)
        if (table[i].info.usable)
            list[n++] = table[i].interpreter;
    list[n] = NULL;
    return list;
}
