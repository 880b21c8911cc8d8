/*
 * main.c — hearthd: reads the command line, builds the pieces (registry,
 * log store, collector, scheduler, gateway) around one libuv loop, runs
 * it, and shuts down gracefully on SIGTERM/SIGINT: stop accepting, let
 * requests in flight finish within the grace period, stop the workers,
 * flush, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hearth/protocol.h>

#include "api.h"
#include "auth.h"
#include "dlog.h"
#include "fn_settings.h"
#include "hearth.h"
#include "package.h"
#include "paths.h"
#include "runtimes.h"
#include "sandbox.h"
#include "spawner.h"
#include "token_cli.h"
#include "zygote.h"
#include "timefmt.h"
#include "violations.h"

#define HEARTH_VERSION    "0.1.0"
#define SHUTDOWN_TICK_MS  20
#define SHUTDOWN_DRAIN_MS 3000 /* after the grace: for workers to be reaped */
#define LOG_FLUSH_MS      1000

static const char usage[] =
    "usage: hearthd [options]\n"
    "\n"
    "Runs the Hearth function-as-a-service daemon.\n"
    "\n"
    "  --listen HOST:PORT      address to serve HTTP on (default 127.0.0.1:8080;\n"
    "                          [::1]:PORT for IPv6, port 0 picks a free port)\n"
    "  --data-dir DIR          where functions, code and logs are kept\n"
    "                          (default ./hearth-data; created if missing)\n"
    "  --log-level LEVEL       error, warn, info or debug (default info)\n"
    "  --max-body SIZE         largest invoke request body (default 6M)\n"
    "  --max-response SIZE     largest function answer (default 6M)\n"
    "  --log-retention SIZE    log bytes kept per function (default 32M)\n"
    "  --max-workers N         live workers across all functions (default 64)\n"
    "  --max-starting N        workers starting at once, across all functions\n"
    "                          (default twice the CPUs, at least 4)\n"
    "  --memory-budget SIZE    the memory_mb of all live workers, summed, stays\n"
    "                          under this (default 3/4 of the machine's memory)\n"
    "  --max-queue N           default max_queue of a function: requests waiting\n"
    "                          beyond its capacity before 429 (default 100)\n"
    "  --keep-alive SECONDS    default keep_alive_s of a function: idle time\n"
    "                          before a worker stops (default 600)\n"
    "  --shutdown-grace SECONDS  time requests get to finish on SIGTERM (default 10)\n"
    "  --runtimes-dir DIR      where runtime programs live (default: the source tree's)\n"
    "  --uid-range BASE:COUNT  as root, each worker runs as its own uid (= gid) from\n"
    "                          this range (default 400000:4096)\n"
    "  --user USER             started as root, the daemon drops to USER once its\n"
    "                          privileged spawner runs (default nobody)\n"
    "  --allow-weaker-sandbox  start even when the kernel refuses a protection\n"
    "                          (each is logged at start)\n"
    "  --no-host-network       refuse to start workers of functions deployed with\n"
    "                          \"network\": \"host\"\n"
    "  --adaptive-bin-ms MS    histogram bin of \"keep_alive\": \"adaptive\"\n"
    "                          (default 60000; 240 bins)\n"
    "  --no-templates          start every worker by exec'ing its interpreter, not\n"
    "                          by cloning the runtime's pre-loaded template\n"
    "  --no-sandbox            DEBUGGING ONLY: workers share the host's namespaces and\n"
    "                          filesystem\n"
    "  --no-auth               no bearer tokens: anyone who can connect may do\n"
    "                          anything (refused unless --listen is loopback)\n"
    "  --version               print the version and exit\n"
    "  --help                  print this help and exit\n"
    "\n"
    "SIZE takes an optional K, M or G suffix (powers of 1024).\n"
    "\n"
    "Every endpoint but GET /healthz needs Authorization: Bearer TOKEN. At the\n"
    "first start hearthd writes an admin token to DIR/admin-token.\n"
    "  hearthd token create|list|revoke --data-dir DIR ...   tokens offline\n"
    "                                   (hearthd token --help)\n";

typedef struct daemon_state {
    hearth h;
    uv_signal_t sigterm, sigint;
    uv_timer_t shutdown_timer, flush_timer;
    uint64_t shutdown_started;
    bool workers_stopped;
} daemon_state;

/* --- options --- */

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || v == 0)
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
    *out = (size_t)(v << shift);
    return 0;
}

static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

/* "BASE:COUNT", kept clear of root and of the 32-bit overflow ids. */
static int parse_uid_range(const char *s, hearth_settings *set)
{
    char *end;
    errno = 0;
    unsigned long base = strtoul(s, &end, 10);
    if (errno || end == s || *end != ':' || base == 0)
        return -EINVAL;
    unsigned long count;
    if (parse_count(end + 1, 65536, &count) < 0 || count == 0 || base + count >= 0xfffffffeUL)
        return -EINVAL;
    set->uid_base = (uid_t)base;
    set->uid_count = (unsigned)count;
    return 0;
}

static void die_usage(const char *opt, const char *val)
{
    fprintf(stderr, "hearthd: invalid value '%s' for --%s\n(see hearthd --help)\n", val, opt);
    exit(2);
}

static void parse_args(int argc, char **argv, hearth_settings *set)
{
    enum {
        O_LISTEN = 256,
        O_DATA,
        O_LEVEL,
        O_BODY,
        O_RESP,
        O_RET,
        O_WORKERS,
        O_BUDGET,
        O_STARTING,
        O_QUEUE,
        O_KEEP,
        O_GRACE,
        O_RTDIR,
        O_NOSANDBOX,
        O_NOTEMPLATES,
        O_BINMS,
        O_UIDRANGE,
        O_WEAKER,
        O_NOHOSTNET,
        O_DUSER,
        O_NOAUTH,
        O_VERSION,
        O_HELP
    };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"data-dir", required_argument, 0, O_DATA},
        {"log-level", required_argument, 0, O_LEVEL},
        {"max-body", required_argument, 0, O_BODY},
        {"max-response", required_argument, 0, O_RESP},
        {"log-retention", required_argument, 0, O_RET},
        {"max-workers", required_argument, 0, O_WORKERS},
        {"memory-budget", required_argument, 0, O_BUDGET},
        {"max-starting", required_argument, 0, O_STARTING},
        {"max-queue", required_argument, 0, O_QUEUE},
        {"keep-alive", required_argument, 0, O_KEEP},
        {"shutdown-grace", required_argument, 0, O_GRACE},
        {"runtimes-dir", required_argument, 0, O_RTDIR},
        {"no-sandbox", no_argument, 0, O_NOSANDBOX},
        {"no-templates", no_argument, 0, O_NOTEMPLATES},
        {"adaptive-bin-ms", required_argument, 0, O_BINMS},
        {"uid-range", required_argument, 0, O_UIDRANGE},
        {"allow-weaker-sandbox", no_argument, 0, O_WEAKER},
        {"no-host-network", no_argument, 0, O_NOHOSTNET},
        {"user", required_argument, 0, O_DUSER},
        {"no-auth", no_argument, 0, O_NOAUTH},
        {"version", no_argument, 0, O_VERSION},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    unsigned long n;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *name = c >= O_LISTEN && c <= O_HELP ? opts[c - O_LISTEN].name : "?";
        switch (c) {
        case O_LISTEN:
            set->listen = optarg;
            break;
        case O_DATA:
            set->data_dir = optarg;
            break;
        case O_LEVEL:
            if ((set->log_level = dlog_parse_level(optarg)) < 0)
                die_usage(name, optarg);
            break;
        case O_BODY:
            if (parse_size(optarg, &set->max_body) || set->max_body > HEARTH_FRAME_MAX_BODY)
                die_usage(name, optarg);
            break;
        case O_RESP:
            if (parse_size(optarg, &set->max_response) || set->max_response > HEARTH_FRAME_MAX_BODY)
                die_usage(name, optarg);
            break;
        case O_RET:
            if (parse_size(optarg, &set->log_retention) || set->log_retention < 65536)
                die_usage(name, optarg);
            break;
        case O_WORKERS:
            if (parse_count(optarg, 100000, &n) || n == 0)
                die_usage(name, optarg);
            set->max_workers = (unsigned)n;
            break;
        case O_STARTING:
            if (parse_count(optarg, 10000, &n) || n == 0)
                die_usage(name, optarg);
            set->max_starting = (unsigned)n;
            break;
        case O_BUDGET:
            if (parse_size(optarg, &set->memory_budget) || set->memory_budget < (64u << 20))
                die_usage(name, optarg);
            break;
        case O_QUEUE:
            if (parse_count(optarg, 10000, &n))
                die_usage(name, optarg);
            set->max_queue = (unsigned)n;
            break;
        case O_KEEP:
            if (parse_count(optarg, 86400 * 365, &n) || n == 0)
                die_usage(name, optarg);
            set->keep_alive_ms = (uint64_t)n * 1000;
            break;
        case O_GRACE:
            if (parse_count(optarg, 3600, &n))
                die_usage(name, optarg);
            set->shutdown_grace_s = (unsigned)n;
            break;
        case O_RTDIR:
            set->runtimes_dir = optarg;
            break;
        case O_BINMS:
            if (parse_count(optarg, 3600000, &n) || n < 10)
                die_usage(name, optarg);
            set->adaptive_bin_ms = n;
            break;
        case O_NOTEMPLATES:
            set->no_templates = true;
            break;
        case O_NOSANDBOX:
            set->no_sandbox = true;
            break;
        case O_DUSER:
            set->user = optarg;
            break;
        case O_WEAKER:
            set->allow_weaker_sandbox = true;
            break;
        case O_NOHOSTNET:
            set->no_host_network = true;
            break;
        case O_NOAUTH:
            set->no_auth = true;
            break;
        case O_UIDRANGE:
            if (parse_uid_range(optarg, set) < 0)
                die_usage(name, optarg);
            break;
        case O_VERSION:
            printf("hearthd %s\n", HEARTH_VERSION);
            exit(0);
        case O_HELP:
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hearthd: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (set->no_auth && !gateway_listen_is_loopback(set->listen)) {
        fprintf(stderr,
                "hearthd: --no-auth lets anyone who can connect deploy and run code, so it is "
                "allowed only on a loopback address (--listen 127.0.0.1:PORT or [::1]:PORT); "
                "%s is not one\n",
                set->listen);
        exit(2);
    }
}

/* --- set-up --- */

static int make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        dlog_error("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Not root: workers run as we do (the uid range needs root). */
static int resolve_worker_user(hearth *h)
{
    h->worker_uid = geteuid();
    h->worker_gid = getegid();
    if (geteuid() != 0)
        dlog_warn("rootless: every worker runs as uid %d, like the daemon (a uid of its own per "
                  "worker needs root)",
                  (int)h->worker_uid);
    return 0;
}

/* The data dir holds functions' env values (in hearth.db and its WAL): no
 * other local user may enter it. A folder made beforehand (mkdir, a
 * service manager) is usually 0755: it is made 0700, as docs/security.md
 * promises. One that other users may write to is refused instead: they
 * could already have planted or linked files in it. Works on ".", the data
 * dir just entered, so no path can be swapped between check and chmod. */
static int restrict_data_dir(const char *shown)
{
    struct stat st;
    if (stat(".", &st) < 0) {
        dlog_error("cannot stat --data-dir %s: %s", shown, strerror(errno));
        return -1;
    }
    mode_t mode = st.st_mode & 07777;
    if (mode & (S_IWGRP | S_IWOTH)) {
        dlog_error("--data-dir %s is writable by other users (mode %04o): it holds secrets, and "
                   "files planted in it would be trusted; give hearthd a folder of its own "
                   "(chmod 700 %s, if no one else uses it)",
                   shown, (unsigned)mode, shown);
        return -1;
    }
    if ((mode & 07077) == 0)
        return 0;
    if (chmod(".", 0700) < 0) {
        dlog_error("cannot make --data-dir %s mode 0700: %s", shown, strerror(errno));
        return -1;
    }
    dlog_warn("--data-dir %s was mode %04o; made it 0700 (it holds functions' secrets)", shown,
              (unsigned)mode);
    return 0;
}

#define ADMIN_TOKEN_FILE "admin-token"

/* Loads the tokens and, at the first start (no live token), writes an
 * admin token to <data-dir>/admin-token. Runs before any privilege is
 * dropped, so as root the file belongs to root (separate_privileges
 * leaves it so); rootless, to the daemon's user. */
static int open_tokens(hearth *h)
{
    int rc = auth_open(h->reg, h->set.no_auth, &h->auth);
    if (rc < 0) {
        dlog_error("cannot read the tokens from %s/hearth.db: %s", h->set.data_dir, strerror(-rc));
        return -1;
    }
    if (h->set.no_auth)
        return 0;
    rc = auth_bootstrap(h->auth, ADMIN_TOKEN_FILE);
    if (rc < 0) {
        dlog_error("cannot write the first admin token to %s/%s: %s", h->set.data_dir,
                   ADMIN_TOKEN_FILE, strerror(-rc));
        return -1;
    }
    if (rc == 1)
        dlog_info("first start: wrote an admin token to %s/%s (mode 0600); use it as "
                  "Authorization: Bearer $(cat %s/%s)",
                  h->set.data_dir, ADMIN_TOKEN_FILE, h->set.data_dir, ADMIN_TOKEN_FILE);
    return 0;
}

/* Works from inside the data dir, with relative paths: once the daemon
 * has dropped to --user, the data dir's parents (say /root) need not be
 * searchable by it. The spawner, forked later, shares this cwd. */
static int prepare_data_dir(hearth *h)
{
    if (make_dir(h->set.data_dir, 0700) < 0)
        return -1;
    if (chdir(h->set.data_dir) < 0) {
        dlog_error("cannot enter --data-dir %s: %s", h->set.data_dir, strerror(errno));
        return -1;
    }
    if (restrict_data_dir(h->set.data_dir) < 0)
        return -1;
    snprintf(h->code_root, sizeof h->code_root, "code");
    snprintf(h->staging_root, sizeof h->staging_root, "staging");
    /* Half-finished deploys and deletions of an earlier run. */
    package_remove_tree(h->staging_root);
    if (make_dir(h->code_root, 0711) < 0 || make_dir(h->staging_root, 0700) < 0)
        return -1;
    int rc = registry_open("hearth.db", &h->reg);
    if (rc < 0) {
        dlog_error("cannot open the registry %s/hearth.db: %s", h->set.data_dir, strerror(-rc));
        return -1;
    }
    if (open_tokens(h) < 0)
        return -1;
    rc = logstore_open("logs", h->set.log_retention, &h->store);
    if (rc < 0) {
        dlog_error("cannot open the log store %s/logs: %s", h->set.data_dir, strerror(-rc));
        return -1;
    }
    return 0;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --- shutdown --- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish_shutdown(daemon_state *d)
{
    hearth *h = &d->h;
    gateway_stop(h->gw);
    h->gw = NULL;
    uv_close((uv_handle_t *)&d->shutdown_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->flush_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
    sched_close(h->sch);
    h->sch = NULL;
    logs_stop(h->lg);
    violations_stop(h->violations);
}

static void on_shutdown_tick(uv_timer_t *t)
{
    daemon_state *d = t->data;
    hearth *h = &d->h;
    uint64_t elapsed = uv_now(h->loop) - d->shutdown_started;
    uint64_t grace = (uint64_t)h->set.shutdown_grace_s * 1000;
    if (!d->workers_stopped) {
        if (gateway_pending(h->gw) > 0 && elapsed < grace)
            return;
        if (gateway_pending(h->gw) > 0)
            dlog_warn("grace period over: %u requests will be answered 503",
                      gateway_pending(h->gw));
        sched_shutdown(h->sch);
        d->workers_stopped = true;
        return;
    }
    bool drained = sched_live(h->sch) == 0 && gateway_pending(h->gw) == 0;
    if (!drained && elapsed < grace + SHUTDOWN_DRAIN_MS)
        return;
    finish_shutdown(d);
}

static void begin_shutdown(daemon_state *d, int signum)
{
    hearth *h = &d->h;
    if (h->stopping)
        return;
    h->stopping = true;
    dlog_info("%s: stopping; %u requests in flight get up to %u s", strsignal(signum),
              gateway_pending(h->gw), h->set.shutdown_grace_s);
    gateway_quiesce(h->gw);
    logs_end_all(h->lg);
    d->shutdown_started = uv_now(h->loop);
    uv_timer_start(&d->shutdown_timer, on_shutdown_tick, SHUTDOWN_TICK_MS, SHUTDOWN_TICK_MS);
}

static void on_signal(uv_signal_t *s, int signum)
{
    begin_shutdown(s->data, signum);
}

static void on_flush(uv_timer_t *t)
{
    hearth *h = t->data;
    logstore_flush(h->store);
    auth_refresh(h->auth); /* tokens created or revoked offline */
}

/* --- main --- */

/* --max-starting, or twice the CPUs (at least 4): a start is mostly CPU
 * (the runtime's imports), so more at once only makes each slower. */
static unsigned max_starting(const hearth_settings *set)
{
    if (set->max_starting)
        return set->max_starting;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 2 ? (unsigned)cpus * 2 : 4;
}

/* --memory-budget, or three quarters of the machine's memory. */
static uint64_t memory_budget_mb(const hearth_settings *set)
{
    if (set->memory_budget)
        return set->memory_budget >> 20;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t total = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    return total / 4 * 3 >> 20;
}

static int start_services(daemon_state *d)
{
    hearth *h = &d->h;
    if (logs_open(h->loop, h->store, &h->lg) < 0)
        return -1;
    h->violations = violations_open(h->loop, h->lg, h->kmsg_fd);
    h->kmsg_fd = -1; /* owned by violations now */
    sched_opts so = {
        .loop = h->loop,
        .reg = h->reg,
        .lg = h->lg,
        .code_root = h->code_root,
        .uid = h->worker_uid,
        .gid = h->worker_gid,
        .max_workers = h->set.max_workers,
        .memory_budget_mb = memory_budget_mb(&h->set),
        .max_starting = max_starting(&h->set),
        .max_queue = h->set.max_queue,
        .max_response = (uint32_t)h->set.max_response,
        .keep_alive_ms = h->set.keep_alive_ms,
        .adaptive_bin_ms = h->set.adaptive_bin_ms,
        .isolate = h->isolate,
        .uid_base = h->set.uid_base,
        .uid_count = h->policy.uid_count,
        .cgroups = h->cgroups,
        .limits = &h->policy.limits,
        .filter = h->have_filter ? &h->filter : NULL,
        .violations = h->violations,
        .spawner = h->spawner,
    };
    if (sched_open(&so, &h->sch) < 0)
        return -1;
    dlog_info("scheduler: at most %u workers (%u starting at once), whose memory_mb sum to at "
              "most %llu MB",
              so.max_workers, so.max_starting, (unsigned long long)so.memory_budget_mb);
    gateway_opts go = {
        .listen = h->set.listen,
        .handler = api_handle,
        .body_limit = api_body_limit,
        .ud = h,
    };
    int rc = gateway_start(h->loop, &go, &h->gw);
    if (rc < 0) {
        dlog_error("cannot listen on %s: %s", h->set.listen, strerror(-rc));
        return -1;
    }
    return 0;
}

static void start_timers_and_signals(daemon_state *d)
{
    hearth *h = &d->h;
    uv_timer_init(h->loop, &d->shutdown_timer);
    d->shutdown_timer.data = d;
    uv_timer_init(h->loop, &d->flush_timer);
    d->flush_timer.data = h;
    uv_timer_start(&d->flush_timer, on_flush, LOG_FLUSH_MS, LOG_FLUSH_MS);
    uv_signal_init(h->loop, &d->sigterm);
    uv_signal_init(h->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
}

/* Finds the cgroup controllers (rootless, only those delegated to us can
 * be used) and logs one line per protection. */
static void open_cgroups(hearth *h)
{
    if (h->set.no_sandbox)
        return;
    char report[1024] = "";
    int rc = sandbox_cgroup_open(&h->cgroups, report, sizeof report);
    if (rc < 0) {
        dlog_warn("cgroups: unusable (%s): no memory, pids or cpu limits", strerror(-rc));
        return;
    }
    for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n"))
        dlog_info("cgroups: %s", line);
}

/* Built once: every spawn installs the same precompiled BPF program. */
static int build_filter(hearth *h)
{
    if (h->set.no_sandbox)
        return 0;
    int rc = sandbox_seccomp_build(&h->filter);
    if (rc < 0) {
        dlog_error("seccomp: cannot build the workers' syscall filter: %s", strerror(-rc));
        return -1;
    }
    h->have_filter = true;
    h->kmsg_fd = sandbox_seccomp_audit_open();
    dlog_info("seccomp: syscall allowlist for workers (%u instructions)", h->filter.len);
    return 0;
}

/* Starts /bin/true once through the whole sandbox (namespaces, root,
 * identity, user namespace, cgroups, seccomp): the kernel's answer is the
 * only reliable probe of what it allows. Returns 0 or a negative errno. */
static int probe_sandbox(hearth *h)
{
    char dir[PATH_MAX];
    if (path_format(dir, sizeof dir, "%s/probe-XXXXXX", h->staging_root) || !mkdtemp(dir) ||
        chmod(dir, 0755) < 0)
        return -errno;
    const char *argv[] = {"/bin/true", NULL}, *envp[] = {NULL};
    sandbox_spec spec = {.argv = argv,
                         .envp = envp,
                         .code_dir = dir,
                         .uid = geteuid() == 0 ? h->set.uid_base : h->worker_uid,
                         .gid = geteuid() == 0 ? h->set.uid_base : h->worker_gid,
                         .memory_bytes = 64u << 20,
                         .isolate = true,
                         .hostname = "probe",
                         .tmp_bytes = 1u << 20,
                         .cgroups = h->cgroups,
                         .pids_max = 8,
                         .cpu_millis = 1000,
                         .filter = h->have_filter ? &h->filter : NULL};
    sandbox_proc p;
    int rc = sandbox_spawn(&spec, &p), st = 0;
    if (rc == 0) {
        struct pollfd pfd = {.fd = p.pidfd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) != 1)
            sandbox_kill(&p);
        while (sandbox_reap(&p, &st) == 0)
            poll(&pfd, 1, 100);
        sandbox_release(&p);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = -ECHILD;
    }
    rmdir(dir);
    return rc;
}

/* Says which cgroup limits cannot be enforced. As root a missing one
 * makes the sandbox weaker than promised; rootless, cgroups are only
 * there when delegated, and the rlimits stand in. Returns true for the
 * former. */
static bool report_missing_cgroups(const hearth *h)
{
    static const char *const names[] = {"memory", "pids", "cpu"};
    static const char *const rootless_fallback[] = {"an address-space rlimit stands in",
                                                    "a per-namespace process rlimit stands in",
                                                    "only the timeout bounds CPU use"};
    bool missing = false;
    for (int c = 0; c < SANDBOX_CGROUP_COUNT; c++) {
        if (sandbox_cgroup_has(h->cgroups, names[c]))
            continue;
        missing = true;
        if (geteuid() == 0)
            dlog_warn("sandbox: no %s cgroup: that limit is not enforced", names[c]);
        else
            dlog_warn("sandbox: rootless, no delegated %s cgroup: %s", names[c],
                      rootless_fallback[c]);
    }
    return missing && geteuid() == 0;
}

static void report_isolation(const hearth *h)
{
    if (geteuid() == 0)
        dlog_info("sandbox: namespaces (mount, pid, network, ipc, uts, cgroup, user), private "
                  "root, own uid from %u, no capabilities, no_new_privs: ok",
                  (unsigned)h->set.uid_base);
    else
        dlog_info("sandbox: rootless: unprivileged user namespace (uid %d mapped to itself), "
                  "mount, pid, network, ipc, uts, cgroup namespaces, private root, no "
                  "capabilities, no_new_privs: ok",
                  (int)h->worker_uid);
}

/* Logs one line per protection and decides whether hearthd may start. */
static int check_sandbox(hearth *h)
{
    if (h->set.no_sandbox)
        return 0;
    bool weaker = report_missing_cgroups(h);
    int rc = probe_sandbox(h);
    if (rc < 0) {
        /* Seen once under ASan in CI (ECHILD) and not reproduced: one more
         * try tells a passing hiccup from a kernel that refuses. */
        dlog_warn("sandbox: the probe failed (%s); trying once more", strerror(-rc));
        rc = probe_sandbox(h);
    }
    if (rc == 0) {
        h->isolate = true;
        report_isolation(h);
    } else {
        dlog_warn("sandbox: a sandboxed worker cannot start here: %s", strerror(-rc));
        weaker = true;
    }
    if (!weaker)
        return 0;
    if (!h->set.allow_weaker_sandbox) {
        dlog_error("sandbox: refusing to start with weaker isolation; --allow-weaker-sandbox "
                   "overrides");
        return -1;
    }
    dlog_warn("sandbox: --allow-weaker-sandbox: starting with the protections above missing");
    return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

/* Everything but the admin token goes to --user: that file stays with
 * root, who started hearthd (the daemon never reads it back). */
static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (strcmp(path, "./" ADMIN_TOKEN_FILE) != 0)
        lchown(path, chown_uid, chown_gid);
    return 0;
}

/* The largest vm_reserve of any runtime (V8's). */
static uint64_t most_vm_reserve(void)
{
    uint64_t most = 0;
    for (size_t i = 0; i < runtimes_count(); i++) {
        uint64_t r = runtimes_vm_reserve(runtimes_at(i)->name);
        most = r > most ? r : most;
    }
    return most;
}

/* The one policy (spawner.h): what every worker may get, from the command
 * line, before any privilege is dropped. The scheduler asks within it;
 * the spawner holds every spec to it. */
static int build_policy(hearth *h)
{
    uint64_t memory_mb = (uint64_t)fnset_find("memory_mb")->max;
    if (memory_budget_mb(&h->set) < memory_mb)
        memory_mb = memory_budget_mb(&h->set);
    if (!realpath(h->code_root, h->policy_code_root)) {
        dlog_error("cannot resolve %s/%s: %s", h->set.data_dir, h->code_root, strerror(errno));
        return -1;
    }
    h->policy = (spawner_policy){
        .code_root = h->policy_code_root,
        .uid_base = h->set.uid_base,
        .uid_count = geteuid() == 0 ? h->set.uid_count : 0, /* rootless: our own uid */
        .isolate = h->isolate,
        .cgroups = h->cgroups,
        .filter = h->have_filter ? &h->filter : NULL,
        .interpreters = runtimes_interpreters(),
        .templates = !h->set.no_templates,
        .limits =
            {
                .memory_bytes = memory_mb << 20,
                .vm_reserve = most_vm_reserve(),
                .max_file_size = 512ull << 20,
                .max_open_files = 1024,
                .tmp_bytes = 64ull << 20,
                .pids_max = 64,
                .cpu_millis = 1000,
                .host_network = !h->set.no_host_network,
            },
    };
    return 0;
}

/* Rootless: the daemon spawns itself, through a local spawner that holds
 * every spec to the same policy. */
static int open_local_spawner(hearth *h)
{
    int rc = spawner_open_local(&h->policy, &h->spawner);
    if (rc < 0)
        dlog_error("cannot set up spawning: %s", strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* As root: forks the spawner, which alone keeps root, hands the data dir to
 * --user and becomes that user, with no capabilities and no way back.
 * From here on, what parses HTTP and JSON is unprivileged. */
static int separate_privileges(hearth *h)
{
    if (geteuid() != 0)
        return open_local_spawner(h);
    struct passwd *pw = getpwnam(h->set.user);
    if (!pw || pw->pw_uid == 0) {
        dlog_error("--user %s: no such unprivileged user", h->set.user);
        return -1;
    }
    int rc = spawner_start(&h->policy, &h->spawner);
    if (rc < 0) {
        dlog_error("cannot start the privileged spawner: %s", strerror(-rc));
        return -1;
    }
    sandbox_cgroup_forget(h->cgroups); /* the spawner's now */
    h->cgroups = h->policy.cgroups = NULL;
    chown_uid = pw->pw_uid;
    chown_gid = pw->pw_gid;
    nftw(".", chown_entry, 32, FTW_PHYS); /* the data dir: our cwd */
    if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0 || setuid(0) == 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0) {
        dlog_error("cannot drop to --user %s: %s", h->set.user, strerror(errno));
        return -1;
    }
#ifdef HEARTH_SANITIZE_BUILD
    /* Test builds only: LeakSanitizer's exit check ptraces our own threads,
     * which the uid change made impossible (non-dumpable). */
    prctl(PR_SET_DUMPABLE, 1L, 0L, 0L, 0L);
#endif
    rc = sandbox_seccomp_lock_daemon();
    if (rc < 0) {
        dlog_error("cannot install the daemon's own seccomp filter: %s", strerror(-rc));
        return -1;
    }
    dlog_info("privileges: a spawner keeps root for sandboxes; the daemon runs as %s (uid %d) "
              "without capabilities, under a seccomp filter of its own",
              h->set.user, (int)pw->pw_uid);
    return 0;
}

static void close_all(hearth *h)
{
    auth_free(h->auth);
    logs_close(h->lg);
    logstore_close(h->store);
    registry_close(h->reg);
    sandbox_cgroup_close(h->cgroups);
    if (h->have_filter)
        sandbox_seccomp_release(&h->filter);
    spawner_stop(h->spawner); /* it removes the cgroups it made */
    violations_close(h->violations);
    if (h->kmsg_fd >= 0)
        close(h->kmsg_fd);
    zygote_stop_all();
    runtimes_release();
}

int main(int argc, char **argv)
{
    static daemon_state d = {
        .h.set =
            {
                .listen = "127.0.0.1:8080",
                .data_dir = "./hearth-data",
                .runtimes_dir = HEARTH_SOURCE_RUNTIMES,
                .max_body = 6u << 20,
                .max_response = 6u << 20,
                .log_retention = 32u << 20,
                .max_workers = 64,
                .max_queue = 100,
                .shutdown_grace_s = 10,
                .keep_alive_ms = 600 * 1000,
                .log_level = DLOG_INFO,
                .uid_base = 400000,
                .user = "nobody",
                .uid_count = 4096,
            },
    };
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return token_cli_main(argc - 1, argv + 1);
    hearth *h = &d.h;
    h->kmsg_fd = -1;
    parse_args(argc, argv, &h->set);
    dlog_set_level(h->set.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    json_object_seed(0); /* before the threadpool parses JSON */
    h->loop = uv_default_loop();
    static char runtimes_dir[PATH_MAX];
    if (realpath(h->set.runtimes_dir, runtimes_dir)) /* it is read after the chdir */
        h->set.runtimes_dir = runtimes_dir;
    open_cgroups(h);
    if (build_filter(h) < 0 || resolve_worker_user(h) < 0 || prepare_data_dir(h) < 0 ||
        runtimes_init(h->set.runtimes_dir) < 0 || check_sandbox(h) < 0 || build_policy(h) < 0 ||
        separate_privileges(h) < 0 || start_services(&d) < 0) {
        close_all(h);
        return 1;
    }
    if (h->set.no_auth)
        dlog_warn("--no-auth: no tokens are checked; anyone who can connect to %s may deploy, "
                  "invoke and delete functions",
                  h->set.listen);
    if (h->set.no_sandbox)
        dlog_warn("--no-sandbox: FOR DEBUGGING ONLY. Workers share this machine's namespaces and "
                  "filesystem; any function can read what the worker user can read.");
    else if (!h->isolate)
        dlog_warn("workers run without namespaces or a private root (--allow-weaker-sandbox)");
    start_timers_and_signals(&d);
    dlog_info("hearthd %s listening on http://%s (data in %s)", HEARTH_VERSION, h->set.listen,
              h->set.data_dir);
    uv_run(h->loop, UV_RUN_DEFAULT);
    close_all(h);
    uv_loop_close(h->loop);
    dlog_info("stopped");
    return 0;
}
