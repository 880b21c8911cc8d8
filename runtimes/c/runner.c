/*
 * runner.c — the `c` runtime: loads a function's shared object once and
 * serves the worker protocol (docs/protocol.md) on fd 3 by calling its
 * hearth_handler (include/hearth/function.h) once per request.
 *
 * Owns the frames on fd 3 and the buffers of a request. Must never: write
 * anything but frames to fd 3, answer before the function's stdio is
 * flushed (every line printed during a call is stamped with it), or trust
 * a frame's lengths before checking them against the ceilings.
 *
 * Usage (by hearthd): hearth-c-runner, in the function's code folder, with
 * HEARTH_HANDLER = the shared object's path in the package.
 * `hearth-c-runner --version` prints the runtime's version.
 *
 * Pre-built mode (HEARTH_PREBUILT=1 at start; docs/runtimes.md): the runner
 * and its libraries are loaded before there is a function; specialize()
 * waits for the SPECIALIZE frame, takes the function's environment (and
 * points /proc/<pid>/environ at it) and enters /var/task again, and only
 * then is the shared object dlopen'ed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hearth/function.h"
#include "hearth/protocol.h"

#define FD             3
#define RUNNER_VERSION "1.1" /* the minor grows with hearth_request */
#define MAX_MESSAGE    (64 * 1024)
#define DEFAULT_TYPE   "application/octet-stream"
#define TASK_DIR       "/var/task" /* where the sandbox mounts the code; fixed */
#define EX_SOFTWARE    70 /* a pre-built runner's first frame was not a well-formed SPECIALIZE */

typedef int (*init_fn)(void);
typedef int (*handler_fn)(const hearth_request *, hearth_response *);
typedef void (*shutdown_fn)(void);

static _Noreturn void die(const char *why)
{
    fprintf(stderr, "hearth-c: %s\n", why);
    exit(2);
}

/* Writes every byte of the iovecs; exits quietly if the daemon is gone. */
static void write_all(struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(FD, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            exit(0); /* the daemon is gone: same as EOF */
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

/* One frame; `meta` (a JSON object) is taken. */
static void send_frame(uint8_t type, json_t *meta, const void *body, size_t len)
{
    char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(meta);
    if (!text)
        die("out of memory");
    uint8_t header[HEARTH_FRAME_HEADER_SIZE];
    hearth_frame_header h = {
        .type = type, .meta_len = (uint32_t)strlen(text), .body_len = (uint32_t)len};
    hearth_frame_encode(&h, header);
    fflush(NULL); /* the function's output before its answer */
    struct iovec iov[3] = {{header, sizeof header}, {text, h.meta_len}, {(void *)body, len}};
    write_all(iov, len ? 3 : 2);
    free(text);
}

static _Noreturn void init_error(const char *type, const char *message)
{
    send_frame(HEARTH_FRAME_INIT_ERROR,
               json_pack("{s:s,s:s%}", "error_type", type, "message", message,
                         strnlen(message, MAX_MESSAGE)),
               NULL, 0);
    exit(1);
}

/* Reads exactly len bytes; 0 at EOF before the first byte, 1 when done.
 * EOF after it exits with eof_status. */
static int read_exact_or(void *buf, size_t len, int eof_status)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(FD, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (got == 0 && n == 0)
                return 0;
            fprintf(stderr, "hearth-c: protocol error: EOF inside a frame\n");
            exit(eof_status);
        }
        got += (size_t)n;
    }
    return 1;
}

static int read_exact(void *buf, size_t len)
{
    return read_exact_or(buf, len, 2);
}

static _Noreturn void prebuilt_fail(const char *why)
{
    fprintf(stderr, "hearth-c: pre-built: %s\n", why);
    exit(EX_SOFTWARE);
}

/* The SPECIALIZE frame's metadata, the only frame a pre-built runner may get
 * first; its "env" is checked by the caller. Exits 0 on EOF (never claimed),
 * EX_SOFTWARE on a frame that is not a SPECIALIZE. */
static json_t *read_specialize(void)
{
    uint8_t raw[HEARTH_FRAME_HEADER_SIZE];
    if (!read_exact_or(raw, sizeof raw, EX_SOFTWARE))
        exit(0);
    hearth_frame_header h;
    if (hearth_frame_decode(raw, HEARTH_FRAME_MAX_META, 0, &h) < 0 ||
        h.type != HEARTH_FRAME_SPECIALIZE)
        prebuilt_fail("first frame is not a SPECIALIZE");
    char *text = malloc((size_t)h.meta_len + 1);
    if (!text)
        prebuilt_fail("out of memory");
    if (h.meta_len && !read_exact_or(text, h.meta_len, EX_SOFTWARE))
        prebuilt_fail("EOF inside the SPECIALIZE frame");
    json_t *meta = json_loadb(text, h.meta_len, 0, NULL);
    free(text);
    if (!json_is_array(json_object_get(meta, "env")))
        prebuilt_fail("SPECIALIZE metadata is not an object with an \"env\" list");
    return meta;
}

/* A "KEY=VALUE" a process environment can hold: a non-empty key and no NUL
 * (json_string_length counts past an embedded one). */
static int env_item_ok(json_t *item)
{
    const char *s = json_string_value(item);
    const char *eq = s ? strchr(s, '=') : NULL;
    return eq && eq != s && strlen(s) == json_string_length(item);
}

/* Field n of /proc/self/stat as proc(5) numbers them; 0 if absent. */
static unsigned long stat_field(const char *stat, int n)
{
    const char *p = strrchr(stat, ')'); /* the name may hold ')' itself */
    if (!p)
        return 0;
    p += 2; /* field 3 */
    for (int f = 3; f < n && *p; p++)
        if (*p == ' ')
            f++;
    return strtoul(p, NULL, 10);
}

/* /proc/<pid>/environ shows the range exec (or the template) left in the
 * kernel, not environ: point it at a copy of the environment, one block of
 * "K=V\0" strings that is never freed. PR_SET_MM_MAP wants the whole map,
 * read back from /proc/self/stat; unprivileged with exe_fd -1. Silent on
 * failure (a kernel without CONFIG_CHECKPOINT_RESTORE): the function runs,
 * and /proc keeps showing the pre-built environment. */
static void show_environment(void)
{
    char stat[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, stat, sizeof stat - 1);
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return;
    stat[got] = '\0';
    size_t len = 0;
    for (char **e = environ; *e; e++)
        len += strlen(*e) + 1;
    char *block = malloc(len ? len : 1);
    if (!block)
        return;
    char *end = block;
    for (char **e = environ; *e; e++)
        end = stpcpy(end, *e) + 1;
    struct prctl_mm_map map = {
        .start_code = stat_field(stat, 26),
        .end_code = stat_field(stat, 27),
        .start_stack = stat_field(stat, 28),
        .start_data = stat_field(stat, 45),
        .end_data = stat_field(stat, 46),
        .start_brk = stat_field(stat, 47),
        .brk = (unsigned long)syscall(SYS_brk, 0L),
        .arg_start = stat_field(stat, 48),
        .arg_end = stat_field(stat, 49),
        .env_start = (unsigned long)block,
        .env_end = (unsigned long)end,
        .exe_fd = (unsigned)-1,
    };
    if (prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&map, sizeof map, 0L) != 0)
        free(block); /* not shown: nobody reads it */
}

/* In a pre-built runner, waits for SPECIALIZE, then becomes the function's
 * worker: exactly its environment (shown in /proc/<pid>/environ too) and
 * the code folder, mounted over /var/task after this process first entered
 * it. */
static void specialize(void)
{
    const char *flag = getenv("HEARTH_PREBUILT");
    if (!flag || strcmp(flag, "1") != 0)
        return;
    /* Loaded: it may be given a function now (send_frame takes the meta). */
    send_frame(HEARTH_FRAME_READY, json_pack("{s:b}", "prebuilt", 1), NULL, 0);
    json_t *meta = read_specialize();
    json_t *env = json_object_get(meta, "env");
    size_t n = json_array_size(env);
    for (size_t i = 0; i < n; i++)
        if (!env_item_ok(json_array_get(env, i)))
            prebuilt_fail("a SPECIALIZE env item is not KEY=VALUE");
    if (clearenv() != 0)
        prebuilt_fail("clearenv failed");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(env, i));
        const char *eq = strchr(s, '=');
        char *key = strndup(s, (size_t)(eq - s));
        if (!key || setenv(key, eq + 1, 1) != 0)
            prebuilt_fail("cannot set the environment");
        free(key);
    }
    json_decref(meta);
    show_environment();
    if (chdir(TASK_DIR) < 0)
        prebuilt_fail("cannot enter " TASK_DIR);
}

struct loaded {
    handler_fn handler;
    shutdown_fn shutdown;
};

/* dlopen's the package's shared object named by HEARTH_HANDLER. */
static struct loaded load(const char *handler)
{
    char path[4096];
    if (!handler || !*handler || handler[0] == '/' || strstr(handler, ".."))
        init_error("HandlerNotFound", "handler must be the path of a shared object in the package");
    /* Through the magic link: the folder's parents may be closed to us. */
    snprintf(path, sizeof path, "/proc/self/cwd/%s", handler);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so)
        init_error("ImportModuleError", dlerror());
    struct loaded l = {.handler = (handler_fn)(uintptr_t)dlsym(so, "hearth_handler"),
                       .shutdown = (shutdown_fn)(uintptr_t)dlsym(so, "hearth_shutdown")};
    if (!l.handler)
        init_error("HandlerNotFound", "the shared object exports no hearth_handler");
    init_fn init = (init_fn)(uintptr_t)dlsym(so, "hearth_init");
    if (init && init() != 0)
        init_error("InitError", "hearth_init failed");
    return l;
}

static const char *str_of(json_t *meta, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(meta, key));
    return v ? v : dflt;
}

/* The INVOKE's attempt: 1 for a synchronous call or a missing or bad value. */
static unsigned attempt_of(json_t *meta)
{
    json_t *v = json_object_get(meta, "attempt");
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 1;
    return n >= 1 && n <= UINT_MAX ? (unsigned)n : 1;
}

/* Sends the answer the handler left in *resp (or the error it reported). */
static void answer(const hearth_request *req, int rc, hearth_response *resp)
{
    if (rc != 0 || resp->error_type) {
        char fallback[64];
        snprintf(fallback, sizeof fallback, "hearth_handler returned %d", rc);
        size_t len = resp->body ? strnlen(resp->body, resp->body_len < MAX_MESSAGE ? resp->body_len
                                                                                   : MAX_MESSAGE)
                                : 0;
        send_frame(HEARTH_FRAME_ERROR,
                   json_pack("{s:s,s:s%}", "error_type",
                             resp->error_type ? resp->error_type : "HandlerError", "message",
                             len ? (const char *)resp->body : fallback,
                             len ? len : strlen(fallback)),
                   NULL, 0);
        return;
    }
    json_t *meta =
        json_pack("{s:s}", "content_type", resp->content_type ? resp->content_type : DEFAULT_TYPE);
    if (meta && strcmp(req->trigger, "http") == 0 && resp->status)
        json_object_set_new(meta, "status", json_integer(resp->status));
    send_frame(HEARTH_FRAME_RESULT, meta, resp->body, resp->body ? resp->body_len : 0);
}

/* Serves INVOKE frames until fd 3 closes. */
static void serve(const struct loaded *l)
{
    uint8_t *body = NULL;
    size_t cap = 0;
    for (;;) {
        uint8_t raw[HEARTH_FRAME_HEADER_SIZE];
        if (!read_exact(raw, sizeof raw))
            break;
        hearth_frame_header h;
        if (hearth_frame_decode(raw, HEARTH_FRAME_MAX_META, HEARTH_FRAME_MAX_BODY, &h) < 0 ||
            h.type != HEARTH_FRAME_INVOKE)
            die("protocol error: bad frame header");
        char *meta_text = malloc((size_t)h.meta_len + 1);
        if (!meta_text || (h.body_len + 1 > cap && !(body = realloc(body, cap = h.body_len + 1))))
            die("out of memory");
        if (!read_exact(meta_text, h.meta_len) || !read_exact(body, h.body_len))
            die("protocol error: EOF inside a frame");
        body[h.body_len] = '\0'; /* function.h promises it */
        json_t *meta = json_loadb(meta_text, h.meta_len, 0, NULL);
        free(meta_text);
        if (!json_is_object(meta))
            die("protocol error: INVOKE metadata is not a JSON object");
        json_t *http = json_object_get(meta, "http");
        char *http_text = http ? json_dumps(http, JSON_COMPACT) : NULL;
        hearth_request req = {
            .request_id = str_of(meta, "request_id", ""),
            .function = str_of(meta, "function", ""),
            .trigger = str_of(meta, "trigger", "invoke"),
            .content_type = str_of(meta, "content_type", ""),
            .http = http_text,
            .body = body,
            .body_len = h.body_len,
            .deadline_ms = json_integer_value(json_object_get(meta, "deadline_ms")),
            .memory_mb = json_integer_value(json_object_get(meta, "memory_mb")),
            .invocation_id = str_of(meta, "invocation_id", ""),
            .attempt = attempt_of(meta),
        };
        hearth_response resp;
        memset(&resp, 0, sizeof resp);
        int rc = l->handler(&req, &resp);
        answer(&req, rc, &resp);
        if (resp.free_body && resp.body)
            resp.free_body((void *)resp.body);
        free(http_text);
        json_decref(meta);
    }
    free(body);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        puts(RUNNER_VERSION);
        return 0;
    }
    struct stat st;
    if (fstat(FD, &st) < 0)
        die("fd 3 is not open: this program runs under hearthd (see docs/protocol.md)");
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    specialize();
    struct loaded l = load(getenv("HEARTH_HANDLER"));
    send_frame(HEARTH_FRAME_READY,
               json_pack("{s:s,s:s}", "runtime", "c", "runtime_version", RUNNER_VERSION), NULL, 0);
    serve(&l);
    if (l.shutdown)
        l.shutdown();
    return 0;
}
