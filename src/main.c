/*
 * main.c — hearthd: reads the command line, builds the pieces (registry,
 * log store, collector, scheduler, gateway) around one libuv loop, runs
 * it, and shuts down gracefully on SIGTERM/SIGINT: stop accepting, let
 * requests in flight finish within the grace period, stop the workers,
 * flush, exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hearth/protocol.h>

#include "api.h"
#include "auth.h"
#include "check.h"
#include "dlog.h"
#include "dnsfwd.h"
#include "events/callback.h"
#include "events/events.h"
#include "events/routes.h"
#include "fn_settings.h"
#include "hearth.h"
#include "locate.h"
#include "options.h"
#include "fsutil.h"
#include "paths.h"
#include "runtimes.h"
#include "secrets.h"
#include "sandbox.h"
#include "spawner.h"
#include "token_cli.h"
#include "timefmt.h"
#include "tls.h"
#include "violations.h"

#define SHUTDOWN_TICK_MS  20
#define SHUTDOWN_DRAIN_MS 3000 /* after the grace: for workers to be reaped */
#define LOG_FLUSH_MS      1000

typedef struct daemon_state {
    hearth h;
    options *opts;
    hearth_settings defaults; /* what a reload starts from */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t shutdown_timer, flush_timer;
    uint64_t shutdown_started;
    bool workers_stopped;
    bool spawner_lost; /* exit non-zero: a service manager should start us again */
} daemon_state;

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
    /* Before the bootstrap, so the first admin token can sign AWS requests. */
    rc = auth_sigv4_key_load(h->auth, AUTH_SIGV4_KEY_FILE);
    if (rc < 0) {
        dlog_error("cannot read or create %s/%s: %s", h->set.data_dir, AUTH_SIGV4_KEY_FILE,
                   strerror(-rc));
        return -1;
    }
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
    fsutil_remove_tree(h->staging_root);
    if (make_dir(h->code_root, 0711) < 0 || make_dir(h->staging_root, 0700) < 0)
        return -1;
    int rc = secrets_prepare();
    if (rc == 0)
        rc = secrets_open(&h->secrets);
    if (rc < 0) {
        dlog_error("cannot prepare the secrets' key and folder in %s: %s", h->set.data_dir,
                   strerror(-rc));
        return -1;
    }
    rc = registry_open("hearth.db", &h->reg);
    if (rc < 0) {
        dlog_error("cannot open the registry %s/hearth.db: %s", h->set.data_dir, strerror(-rc));
        return -1;
    }
    if (open_tokens(h) < 0)
        return -1;
    rc = evstore_open("events.db", &h->evstore);
    if (rc < 0) {
        dlog_error("cannot open the event store %s/events.db: %s", h->set.data_dir, strerror(-rc));
        return -1;
    }
    if (!(h->routes = routes_table_new()) || routes_load(h->routes, h->reg) < 0) {
        dlog_error("cannot load the functions' routes from %s/hearth.db", h->set.data_dir);
        return -1;
    }
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
    uv_close((uv_handle_t *)&d->sighup, on_handle_closed);
    events_close_handles(h->events);
    callbacks_close(h->callbacks);
    h->callbacks = NULL;
    sched_close(h->sch);
    h->sch = NULL;
    spawner_unwatch(h->spawner); /* its handle closes with the loop; it stops in close_all */
    logs_stop(h->lg);
    violations_stop(h->violations);
    /* Its handles close with the loop, before the spawner removes its address. */
    dnsfwd_stop(h->dns);
    h->dns = NULL;
}

static void on_shutdown_tick(uv_timer_t *t)
{
    daemon_state *d = t->data;
    hearth *h = &d->h;
    uint64_t elapsed = uv_now(h->loop) - d->shutdown_started;
    uint64_t grace = (uint64_t)h->set.shutdown_grace_s * 1000;
    if (!d->workers_stopped) {
        /* Asynchronous attempts get the same grace as requests: one cut off
         * runs again after the restart, but better not twice needlessly. */
        if ((gateway_pending(h->gw) > 0 || events_running(h->events) > 0) && elapsed < grace)
            return;
        if (gateway_pending(h->gw) > 0)
            dlog_warn("grace period over: %u requests will be answered 503",
                      gateway_pending(h->gw));
        events_shutdown(h->events);
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
    events_drain(h->events);
    logs_end_all(h->lg);
    d->shutdown_started = uv_now(h->loop);
    uv_timer_start(&d->shutdown_timer, on_shutdown_tick, SHUTDOWN_TICK_MS, SHUTDOWN_TICK_MS);
}

static void on_signal(uv_signal_t *s, int signum)
{
    begin_shutdown(s->data, signum);
}

/* The spawner died (every sandbox with it) and, the daemon having given
 * up root, cannot be started again: stop, and say so by the exit status. */
static void on_spawner_lost(void *ud)
{
    daemon_state *d = ud;
    d->spawner_lost = true;
    dlog_error("the spawner is gone: stopping so that hearthd can be started again");
    sched_spawner_lost(d->h.sch);
    begin_shutdown(d, SIGTERM);
}

/* --- SIGHUP --- */

static unsigned max_starting(const hearth_settings *set);
static uint64_t memory_budget_mb(const hearth_settings *set);

struct reload {
    daemon_state *d;
    const hearth_settings *next;
    unsigned restart; /* changed keys left as they were */
};

/* One changed key: applied when it can be live, named when it cannot. */
static void on_changed(const char *name, options_when when, void *ud)
{
    struct reload *r = ud;
    bool tls_toggled = strncmp(name, "tls-", 4) == 0 && !r->d->h.set.tls_cert != !r->next->tls_cert;
    if (when == OPTIONS_LIVE && !tls_toggled) {
        dlog_info("config: %s changed: applied", name);
        return;
    }
    r->restart++;
    dlog_warn("config: %s changed but needs a restart: not applied", name);
}

/* The live keys of *next into the running daemon (see options.c's table). */
static void apply_live(hearth *h, const hearth_settings *next)
{
    hearth_settings *set = &h->set;
    set->log_level = next->log_level;
    set->max_body = next->max_body;
    set->log_retention = next->log_retention;
    set->max_workers = next->max_workers;
    set->max_starting = next->max_starting;
    set->memory_budget = next->memory_budget;
    set->max_queue = next->max_queue;
    set->keep_alive_ms = next->keep_alive_ms;
    set->keep_versions = next->keep_versions;
    set->shutdown_grace_s = next->shutdown_grace_s;
    if (set->tls_cert && next->tls_cert) {
        set->tls_cert = next->tls_cert;
        set->tls_key = next->tls_key;
    }
    dlog_set_level(set->log_level);
    logstore_set_retention(h->store, set->log_retention);
    sched_limits lim = {
        .max_workers = set->max_workers,
        .max_starting = max_starting(set),
        .memory_budget_mb = memory_budget_mb(set),
        .max_queue = set->max_queue,
        .keep_alive_ms = set->keep_alive_ms,
    };
    sched_set_limits(h->sch, &lim);
}

/* The certificate files are read again on every SIGHUP (renewed files
 * keep their names); a bad pair leaves the served one in place. */
static void reload_tls(hearth *h)
{
    if (!h->tls)
        return;
    char err[512];
    if (tls_reload(h->tls, h->set.tls_cert, h->set.tls_key, err, sizeof err) < 0)
        dlog_warn("tls: keeping the certificate served so far: %s", err);
    else
        dlog_info("tls: serving %s", tls_describe(h->tls));
}

static void on_reload(uv_signal_t *s, int signum)
{
    (void)signum;
    daemon_state *d = s->data;
    hearth *h = &d->h;
    if (h->stopping)
        return;
    const char *file = options_config_path(d->opts);
    dlog_info("SIGHUP: reloading %s", file ? file : "(no config file: the command line)");
    hearth_settings next;
    char err[1024];
    if (options_reload(d->opts, &d->defaults, &next, err, sizeof err) < 0) {
        dlog_warn("config: %s; keeping the running configuration", err);
        return;
    }
    struct reload r = {.d = d, .next = &next};
    options_diff(&h->set, &next, on_changed, &r);
    apply_live(h, &next);
    reload_tls(h);
    if (r.restart)
        dlog_warn("config: %u changed key(s) wait for a restart", r.restart);
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

/* The event core: its store (<data>/events.db) and the result-callback
 * sender. Invocations left waiting by the last run start running again. */
static int open_events(hearth *h)
{
    callbacks_opts co = {.loop = h->loop, .user_agent = "hearth/" HEARTH_VERSION};
    int rc = callbacks_open(&co, &h->callbacks);
    if (rc < 0) {
        dlog_error("cannot start the result-callback sender: %s", strerror(-rc));
        return -1;
    }
    events_opts eo = {
        .loop = h->loop,
        .sch = h->sch,
        .store = h->evstore,
        .result_retention_ms = h->set.result_retention_ms,
        .max_workers = h->set.max_workers,
        .callbacks = h->callbacks,
    };
    h->evstore = NULL; /* the event core's now */
    rc = events_open(&eo, h->reg, &h->events);
    if (rc < 0) {
        dlog_error("cannot recover the event store's waiting invocations: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

/* Relays the workers' DNS to the host's own resolvers (dnsfwd.c). */
static void start_workers_dns(hearth *h)
{
    if (h->dns_fd < 0)
        return;
    int n = h->ndns_upstream, tcp = h->dns_tcp_fd;
    h->dns_tcp_fd = -1;
    if (n <= 0) {
        dlog_warn("egress: no DNS for workers: %s has no nameserver (%s)",
                  h->set.egress.resolv_conf, n < 0 ? strerror(-n) : "none listed");
        close(h->dns_fd);
        close(tcp);
        h->dns_fd = -1;
        return;
    }
    int rc = dnsfwd_start(h->loop, h->dns_fd, NULL, h->dns_upstream, n, &h->dns);
    h->dns_fd = -1; /* the forwarder's now, even on failure */
    if (rc == 0)
        rc = dnsfwd_listen_tcp(h->dns, tcp, NULL);
    else
        close(tcp);
    if (rc < 0)
        dlog_warn("egress: workers' DNS relay: %s", strerror(-rc));
}

static int start_services(daemon_state *d)
{
    hearth *h = &d->h;
    spawner_watch(h->spawner, h->loop, on_spawner_lost, d);
    start_workers_dns(h);
    if (logs_open(h->loop, h->store, &h->lg) < 0)
        return -1;
    if (!(h->metrics = metrics_new(HEARTH_VERSION)))
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
        .egress = h->egress.usable,
        .egress_default = h->set.default_network == FN_NET_EGRESS,
        .uid_base = h->set.uid_base,
        .uid_count = h->policy.uid_count,
        .cgroups = h->cgroups,
        .limits = &h->policy.limits,
        .filter = h->have_filter ? &h->filter : NULL,
        .violations = h->violations,
        .spawner = h->spawner,
        .metrics = h->metrics,
        .prebuilt_min = h->set.prebuilt_min,
        .prebuilt_max = h->set.prebuilt_max,
        .prebuilt_mb = 128,
    };
    if (sched_open(&so, &h->sch) < 0 || open_events(h) < 0)
        return -1;
    dlog_info("scheduler: at most %u workers (%u starting at once), whose memory_mb sum to at "
              "most %llu MB",
              so.max_workers, so.max_starting, (unsigned long long)so.memory_budget_mb);
    gateway_opts go = {
        .listen = h->set.listen,
        .handler = api_handle,
        .body_limit = api_body_limit,
        .ud = h,
        .tls = h->tls,
        .max_connections = h->set.max_connections,
        .header_timeout_ms = h->set.header_timeout_ms,
        .body_timeout_ms = h->set.body_timeout_ms,
        .idle_timeout_ms = h->set.idle_timeout_ms,
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
    uv_signal_init(h->loop, &d->sighup);
    d->sighup.data = d;
    uv_signal_start(&d->sighup, on_reload, SIGHUP);
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
    char *save = NULL;
    for (char *line = strtok_r(report, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
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

/* Everything but the files that stay root's: the secrets' private key
 * (the daemon seals with the public key, only the spawner opens) and the
 * admin token (root started hearthd; the daemon never reads it back). */
static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (strcmp(path, "./" SECRETS_KEY_FILE) != 0 && strcmp(path, "./" ADMIN_TOKEN_FILE) != 0)
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
        .secrets_dir = SECRETS_DIR,
        .secrets_key = SECRETS_KEY_FILE,
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
                .egress = h->egress.usable,
            },
        .egress = h->egress.usable ? &h->egress : NULL,
    };
    return 0;
}

static int bind_dns_socket(const hearth *h, int type)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = h->egress.dns_addr;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    int err = errno;
    if (fd >= 0)
        close(fd);
    return -err;
}

/* As root, the workers' DNS answers at the subnet's first address, port
 * 53 (UDP, and TCP for large answers): bound now, while we may, and the
 * host's resolvers read now, from a file only root may read. Without it
 * egress works, names do not. */
static void bind_workers_dns(hearth *h)
{
    int udp = bind_dns_socket(h, SOCK_DGRAM), tcp = udp >= 0 ? bind_dns_socket(h, SOCK_STREAM) : -1;
    if (udp < 0 || tcp < 0) {
        dlog_warn("egress: cannot listen for workers' DNS: %s; names will not resolve in them",
                  strerror(-(udp < 0 ? udp : tcp)));
        if (udp >= 0)
            close(udp);
        return;
    }
    h->dns_fd = udp;
    h->dns_tcp_fd = tcp;
    h->ndns_upstream = dnsfwd_read_resolvers(h->set.egress.resolv_conf, h->dns_upstream, 4);
}

static void log_egress(const hearth *h)
{
    const egress_config *c = &h->egress.cfg;
    char subnet[EGRESS_CIDR_TEXT];
    egress_cidr_format(&c->subnet, subnet);
    if (h->egress.rootless)
        dlog_info("egress: through slirp4netns; refused: this host's addresses, 169.254.0.0/16, "
                  "%u denied; %u allowed",
                  c->ndeny, c->nallow);
    else
        dlog_info("egress: workers get a /30 of %s and NAT; refused: this host, other workers, "
                  "169.254.0.0/16, %u denied; %u allowed%s",
                  subnet, c->ndeny, c->nallow,
                  h->egress.forward_was_off ? "; IPv4 forwarding turned on (and off at the end)"
                                            : "");
    const char *caveat = egress_host_caveat(&h->egress);
    if (caveat)
        dlog_warn("egress: %s", caveat);
}

/* What "network": "egress" can do here: before the spawner forks (it
 * carries the state) and while we are still root. */
static int start_egress(hearth *h)
{
    if (!h->isolate)
        snprintf(h->egress.why, sizeof h->egress.why,
                 "workers run without their own network namespace");
    else
        egress_host_start(&h->egress, &h->set.egress);
    if (h->egress.usable) {
        if (!h->egress.rootless)
            bind_workers_dns(h);
        log_egress(h);
        return 0;
    }
    if (h->set.default_network == FN_NET_EGRESS) {
        dlog_error("--default-network egress, but egress cannot work here: %s", h->egress.why);
        return -1;
    }
    dlog_info("egress: unavailable (\"network\": \"egress\" deploys get 400): %s", h->egress.why);
    return 0;
}

/* Rootless: a spawner all the same, with our identity: the same protocol
 * and policy check, and no spawn ever runs on the daemon's loop. */
static int start_own_spawner(hearth *h)
{
    int rc = spawner_start(&h->policy, &h->spawner);
    if (rc < 0) {
        dlog_error("cannot start the spawner: %s", strerror(-rc));
        return -1;
    }
    sandbox_cgroup_forget(h->cgroups); /* the spawner's now */
    h->cgroups = h->policy.cgroups = NULL;
    return 0;
}

/* As root: forks the spawner, which alone keeps root, hands the data dir to
 * --user and becomes that user, with no capabilities and no way back.
 * From here on, what parses HTTP and JSON is unprivileged. */
static int separate_privileges(hearth *h)
{
    if (geteuid() != 0)
        return start_own_spawner(h);
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
    dnsfwd_stop(h->dns); /* a start that failed before the loop ran */
    h->dns = NULL;
    if (h->dns_fd >= 0)
        close(h->dns_fd);
    if (h->dns_tcp_fd >= 0)
        close(h->dns_tcp_fd);
    h->dns_fd = h->dns_tcp_fd = -1;
    events_close(h->events);
    evstore_close(h->evstore);
    auth_free(h->auth);
    logs_close(h->lg);
    logstore_close(h->store);
    registry_close(h->reg);
    routes_table_free(h->routes);
    secrets_close(h->secrets);
    sandbox_cgroup_close(h->cgroups);
    if (h->have_filter)
        sandbox_seccomp_release(&h->filter);
    spawner_stop(h->spawner); /* it removes the cgroups it made */
    h->spawner = NULL;
    violations_close(h->violations);
    if (h->kmsg_fd >= 0)
        close(h->kmsg_fd);
    runtimes_release();
    metrics_free(h->metrics);
    tls_close(h->tls);
    h->tls = NULL;
}

/* The TLS pair is read before privileges are dropped: a key readable by
 * root alone works at start (a reload re-reads it as --user). */
static int open_tls(hearth *h)
{
    if (!h->set.tls_cert)
        return 0;
    char err[1024];
    if (tls_open(h->set.tls_cert, h->set.tls_key, &h->tls, err, sizeof err) < 0) {
        dlog_error("tls: %s", err);
        return -1;
    }
    dlog_info("tls: serving %s", tls_describe(h->tls));
    return 0;
}

/* Options (defaults, config file, command line) and where our own files
 * are; relative paths are resolved now, the data dir becomes our cwd. */
static void configure(daemon_state *d, int argc, char **argv)
{
    hearth *h = &d->h;
    static locations loc;
    int rc = locate_init(&loc);
    if (rc < 0) {
        fprintf(stderr, "hearthd: cannot tell where hearthd is installed: %s\n", strerror(-rc));
        exit(1);
    }
    options_defaults(&h->set);
    h->set.runtimes_dir = loc.runtimes;
    d->defaults = h->set;
    d->opts = options_parse(argc, argv, loc.config, &h->set);
    dlog_set_level(h->set.log_level);
    static char runtimes_dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    if (realpath(h->set.runtimes_dir, runtimes_dir)) /* it is read after the chdir */
        h->set.runtimes_dir = runtimes_dir;
    /* Read again on SIGHUP, after the chdir: absolute from here on. */
    if (h->set.tls_cert && realpath(h->set.tls_cert, cert) && realpath(h->set.tls_key, key)) {
        h->set.tls_cert = cert;
        h->set.tls_key = key;
    }
    if (options_config_path(d->opts))
        dlog_info("config: %s", options_config_path(d->opts));
    dlog_info("runtimes from %s%s", h->set.runtimes_dir,
              loc.build_tree ? " (a build tree: the source's)" : "");
    h->c_runner = loc.c_runner;
    h->zygote_lib = loc.zygote_lib;
}

int main(int argc, char **argv)
{
    static daemon_state d;
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        return check_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return token_cli_main(argc - 1, argv + 1);
    hearth *h = &d.h;
    h->kmsg_fd = -1;
    h->dns_fd = h->dns_tcp_fd = -1;
    configure(&d, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    json_object_seed(0); /* before the threadpool parses JSON */
    h->loop = uv_default_loop();
    open_cgroups(h);
    if (open_tls(h) < 0 || build_filter(h) < 0 || resolve_worker_user(h) < 0 ||
        prepare_data_dir(h) < 0 ||
        runtimes_init(h->set.runtimes_dir, h->c_runner, h->zygote_lib) < 0 ||
        check_sandbox(h) < 0 || start_egress(h) < 0 || build_policy(h) < 0 ||
        separate_privileges(h) < 0 || start_services(&d) < 0) {
        close_all(h);
        options_free(d.opts);
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
    dlog_info("hearthd %s listening on %s://%s (data in %s)", HEARTH_VERSION,
              h->tls ? "https" : "http", h->set.listen, h->set.data_dir);
    uv_run(h->loop, UV_RUN_DEFAULT);
    close_all(h);
    uv_loop_close(h->loop);
    options_free(d.opts);
    dlog_info("stopped");
    return d.spawner_lost ? 1 : 0;
}
