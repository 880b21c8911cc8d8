/*
 * sched_launch.c — starting a worker and reaping it.
 *
 * spawn_worker turns a pool's config into a sandbox spec (runtime argv,
 * environment, code folder, a uid of its own from the range, limits,
 * secrets) and starts it through worker.c. on_exit_worker takes a dead
 * worker off every count and list, fails the call it had (crash, out of
 * memory, sandbox violation, broken protocol) or, dead while starting, a
 * call it was started for, and lets the pools fill again.
 *
 * A cold start first claims a pre-built sandbox of its runtime
 * (sched_prebuilt.c) when one is ready, and only builds one otherwise.
 *
 * Owns: the uid slots, a worker's environment. Must never: decide whether
 * a worker may start (sched_admit.c does), block, parse HTTP, or touch a
 * worker's fds (worker.c does).
 */
#include "sched_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dlog.h"
#include "metrics.h"
#include "paths.h"
#include "runtimes.h"
#include "violations.h"

static void describe_exit(int wstatus, char *out, size_t cap)
{
    if (WIFSIGNALED(wstatus))
        snprintf(out, cap, "was killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(wstatus));
}

void fail_spawn_error(sched *s, sched_call *c, int rc)
{
    if (spawner_is_lost(s->o.spawner))
        fail(c, 503, "spawner_lost", SPAWNER_LOST_WHY);
    else if (rc == -EMFILE || rc == -ENFILE)
        fail(c, 503, "overloaded", "could not start a worker: %s", strerror(-rc));
    else
        fail(c, 500, "internal_error", "could not start a worker: %s", strerror(-rc));
}

/* A worker that died before READY: the function's log says why (the
 * runtime's INIT_ERROR when it sent one), in the words the oldest call it
 * was started for is answered with, since that answer reaches one caller
 * and the log everyone. */
static void fail_start(pool *p, worker *w, const char *how)
{
    sched_call *c = p->qhead;
    const char *type = NULL, *msg = NULL;
    if (w->init_error && !w->spawn_error) {
        type = meta_str(w->init_error, "error_type", "InitError");
        msg = meta_str(w->init_error, "message", "");
        logs_note(p->s->o.lg, p->cfg.name, w->version, "",
                  "hearth: worker %s while starting: %s: %s", how, type, msg);
    } else {
        logs_note(p->s->o.lg, p->cfg.name, w->version, "", "hearth: worker %s while starting", how);
    }
    if (!c)
        return;
    if (w->spawn_error || spawner_is_lost(p->s->o.spawner))
        fail_spawn_error(p->s, c, w->spawn_error ? w->spawn_error : -EPIPE);
    else if (type)
        fail_typed(c, 500, "init_error", type, "%s", msg);
    else
        fail(c, 502, "function_crashed", "the worker %s while starting", how);
}

static void note_violation(sched *s, pool *p, worker *w, sched_call *c)
{
    violations_worker who = {
        .has_uid = w->uid_slot >= 0,
        .uid = s->o.uid_base + (uid_t)(w->uid_slot >= 0 ? w->uid_slot : 0),
        .pid = worker_runtime_pid(w),
        .since_ms = w->spawned_ms,
    };
    violations_report(s->o.violations, p->cfg.name, w->version, c ? c->request_id : "", &who);
}

static void on_exit_worker(worker *w, int wstatus, bool protocol_error)
{
    pool *p = sw_of(w)->pool;
    sched *s = p->s;
    char how[128];
    if (w->spawn_error)
        snprintf(how, sizeof how, "could not be started (%s)", strerror(-w->spawn_error));
    else
        describe_exit(wstatus, how, sizeof how);
    dlog_debug("worker %d of %s v%" PRId64 " %s", (int)worker_pid(w), p->cfg.name, w->version, how);
    idle_remove(s, w);
    pool_unlink(p, w);
    s->nworkers--;
    release_start_slot(s, w);
    s->memory_mb -= (uint64_t)w->memory_mb;
    if (w->stopping) {
        s->ndying--;
        s->dying_mb -= (uint64_t)w->memory_mb;
    }
    sched_call *c = sw_of(w)->call;
    bool oom = worker_oom_killed(w);
    if (oom)
        metrics_fn_event(pool_metrics(p), METRICS_OOM_KILLS);
    if (oom && !p->removed)
        logs_note(s->o.lg, p->cfg.name, w->version, c ? c->request_id : "",
                  "hearth: out of memory: the worker used more than its %" PRId64 " MB",
                  p->cfg.memory_mb);
    bool violation = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGSYS;
    if (violation)
        metrics_fn_event(pool_metrics(p), METRICS_VIOLATIONS);
    if (violation && !p->removed)
        note_violation(s, p, w, c);
    if (c && oom)
        fail(c, 502, "out_of_memory", "the function used more than its %" PRId64 " MB of memory",
             p->cfg.memory_mb);
    else if (c && violation)
        fail(c, 502, "sandbox_violation", "the function made a forbidden system call");
    else if (c && protocol_error)
        fail(c, 502, "invalid_response", "the worker broke the protocol and was stopped");
    else if (c && spawner_is_lost(s->o.spawner))
        fail(c, 503, "spawner_lost", SPAWNER_LOST_WHY); /* its sandbox died with the spawner */
    else if (c) {
        logs_note(s->o.lg, p->cfg.name, w->version, c->request_id, "hearth: worker %s", how);
        fail(c, 502, "function_crashed", "the worker %s during the request", how);
    } else if (w->state == WORKER_STARTING && !w->stopping) {
        fail_start(p, w, how);
        delay_prewarm(s, p);
    }
    json_decref(w->init_error);
    w->init_error = NULL;
    give_back_uid_slot(s, w);
    w->state = WORKER_DEAD;
    free(w->owner);
    w->owner = NULL;
    if (p->deleted) {
        if (p->nworkers == 0)
            pool_free(p);
    } else {
        pool_fill(s, p);
    }
    feed_waiting_pools(s);
}

static const worker_events worker_ev = {.on_frame = on_frame, .on_exit = on_exit_worker};

/* --- starting workers --- */

/* The environment every worker starts with; a function's adds its own.
 * validate.c keeps the list, so that a function's env cannot name one. */
static const char *const *const fixed_env = validate_fixed_env;
#define NFIXED VALIDATE_FIXED_ENV_COUNT

/* "KEY=VALUE" strings for a worker of cfg, or (cfg NULL) for a pre-built
 * one, which has only the fixed ones and HEARTH_PREBUILT=1. Freed with
 * sched_free_env. All or nothing: NULL when any string cannot be made, as
 * a worker without, say, HEARTH_HANDLER must never start. */
char **sched_worker_env(const fn_config *cfg)
{
    size_t n = (cfg ? json_object_size(cfg->env) : 0) + NFIXED + 8, i = 0;
    char **env = calloc(n, sizeof *env);
    if (!env)
        return NULL;
    for (size_t f = 0; f < NFIXED; f++)
        if (!(env[i++] = strdup(fixed_env[f])))
            goto nomem;
    if (!cfg) {
        if (!(env[i++] = strdup("HEARTH_PREBUILT=1")))
            goto nomem;
        return env;
    }
    const char *k;
    json_t *v;
    json_object_foreach(cfg->env, k, v)
    {
        if (asprintf(&env[i], "%s=%s", k, json_string_value(v)) < 0)
            goto nomem;
        i++;
    }
    if (asprintf(&env[i], "HEARTH_HANDLER=%s", cfg->handler) < 0 ||
        asprintf(&env[++i], "HEARTH_FUNCTION_NAME=%s", cfg->name) < 0 ||
        asprintf(&env[++i], "HEARTH_FUNCTION_VERSION=%" PRId64, cfg->version) < 0 ||
        asprintf(&env[++i], "HEARTH_MEMORY_MB=%" PRId64, cfg->memory_mb) < 0)
        goto nomem;
    env[++i] = NULL;
    return env;
nomem:
    env[i] = NULL; /* a failed asprintf leaves it undefined */
    sched_free_env(env);
    return NULL;
}

void sched_free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* A uid no live worker has, so workers cannot signal or ptrace each other
 * even if a namespace were to fail. -1 when the range is exhausted or off. */
static int take_uid_slot(sched *s)
{
    for (unsigned i = 0; i < s->o.uid_count; i++) {
        if (!s->uid_used[i]) {
            s->uid_used[i] = true;
            return (int)i;
        }
    }
    return -1;
}

bool uid_slot_free(const sched *s)
{
    for (unsigned i = 0; i < s->o.uid_count; i++)
        if (!s->uid_used[i])
            return true;
    return false;
}

void give_back_uid_slot(sched *s, worker *w)
{
    if (w->uid_slot >= 0)
        s->uid_used[w->uid_slot] = false;
    w->uid_slot = -1;
}

/* Everything a worker of `p` (NULL: a pre-built one of `runtime`) is
 * started with, but its argv, env and code folder, which the caller holds. */
static sandbox_spec spec_for(const sched *s, const pool *p, const char *runtime, uid_t uid)
{
    return (sandbox_spec){
        .uid = uid,
        .gid = s->o.uid_count ? (gid_t)uid : s->o.gid,
        /* Pre-built: the ceiling, as its address-space limit (without a
         * memory cgroup) can only be lowered when it is claimed. */
        .memory_bytes = p ? (uint64_t)p->cfg.memory_mb << 20 : 0,
        .vm_reserve = runtimes_vm_reserve(runtime),
        .max_file_size = s->o.limits->max_file_size,
        .max_open_files = s->o.limits->max_open_files,
        .isolate = s->o.isolate,
        .hostname = p ? p->cfg.name : NULL,
        .host_network = p && p->cfg.network == FN_NET_HOST,
        .tmp_bytes = s->o.limits->tmp_bytes,
        .cgroups = s->o.cgroups,
        .pids_max = s->o.limits->pids_max,
        .cpu_millis = s->o.limits->cpu_millis,
        .filter = s->o.filter,
        .prebuilt = !p,
    };
}

static uid_t uid_of_slot(const sched *s, int slot)
{
    return slot >= 0 ? s->o.uid_base + (uid_t)slot : s->o.uid;
}

/* Asks the spawner for a worker of `p`, or (p NULL) a pre-built sandbox
 * of `runtime` (with its network: `egress` or isolated), or with `stem`
 * claims that pre-built one for `p`. A new one takes a uid slot (*slot;
 * -1 when the range is off). */
static int launch(sched *s, pool *p, const char *runtime, bool egress, worker *stem,
                  const worker_events *ev, int *slot, worker **out)
{
    const char *const *argv = runtimes_argv(runtime);
    if (!argv)
        return -ENOEXEC;
    char code_dir[PATH_MAX] = "";
    if (p && path_format(code_dir, sizeof code_dir, "%s/%s/%" PRId64, s->o.code_root, p->cfg.name,
                         p->cfg.version))
        return -ENAMETOOLONG;
    *slot = stem ? stem->uid_slot : take_uid_slot(s);
    if (s->o.uid_count && *slot < 0)
        return -EAGAIN;
    char **env = sched_worker_env(p ? &p->cfg : NULL);
    const char *secrets[VALIDATE_SECRETS_MAX + 1];
    for (unsigned i = 0; p && i <= p->cfg.nsecrets; i++)
        secrets[i] = i < p->cfg.nsecrets ? p->cfg.secrets[i] : NULL;
    sandbox_spec spec = spec_for(s, p, runtime, uid_of_slot(s, *slot));
    spec.argv = argv;
    spec.envp = (const char *const *)env;
    spec.code_dir = p ? code_dir : s->o.code_root;
    spec.secrets = p && p->cfg.nsecrets ? secrets : NULL;
    spec.egress = p ? p->cfg.network == FN_NET_EGRESS : egress;
    /* A claimed stem keeps the state it was built with. */
    sched_worker *own = stem ? NULL : calloc(1, sizeof *own);
    int rc = !env || (!stem && !own) ? -ENOMEM
             : stem ? worker_specialize(stem, &spec, p->cfg.name, p->cfg.version, ev)
                    : worker_spawn(s->o.loop, s->o.spawner, s->o.lg, &spec, p ? p->cfg.name : "",
                                   p ? p->cfg.version : 0, s->o.max_response, ev, out);
    sched_free_env(env);
    if (rc == 0 && stem)
        *out = stem;
    else if (rc == 0)
        (*out)->owner = own;
    else
        free(own);
    if (rc < 0 && !stem && *slot >= 0)
        s->uid_used[*slot] = false;
    return rc;
}

int spawn_sandbox(sched *s, const char *runtime, bool egress, const worker_events *ev, int *slot,
                  worker **out)
{
    return launch(s, NULL, runtime, egress, NULL, ev, slot, out);
}

/* Claims `stem` for p, or, without one (or when the claim cannot even be
 * asked), starts a new sandbox for it. */
static int start_for(sched *s, pool *p, worker *stem, int *slot, worker **out)
{
    if (stem) {
        int rc = launch(s, p, p->cfg.runtime, false, stem, &worker_ev, slot, out);
        prebuilt_note_start(s, p, rc == 0);
        if (rc == 0) {
            sw_of(stem)->stem = NULL; /* a function's worker now, for good */
            return 0;
        }
        dlog_warn("could not claim a pre-built sandbox for %s: %s", p->cfg.name, strerror(-rc));
        prebuilt_discard(s, stem);
    } else {
        prebuilt_note_start(s, p, false);
    }
    int rc = launch(s, p, p->cfg.runtime, false, NULL, &worker_ev, slot, out);
    metrics_spawned(s->o.metrics, rc == 0); /* a claim is not a spawn */
    return rc;
}

int spawn_worker(sched *s, pool *p, worker *stem)
{
    int slot = -1;
    worker *w;
    int rc = start_for(s, p, stem, &slot, &w);
    if (rc < 0)
        return rc;
    w->uid_slot = slot;
    w->secrets_gen = p->secrets_gen;
    w->spawned_ms = uv_now(s->o.loop);
    w->spawned_ns = uv_hrtime();
    w->memory_mb = p->cfg.memory_mb;
    w->state = WORKER_STARTING;
    pool_link(p, w);
    s->nworkers++;
    take_start_slot(s, w);
    s->memory_mb += (uint64_t)w->memory_mb;
    dlog_debug("%s worker %d for %s v%" PRId64, stem == w ? "claimed pre-built" : "started",
               (int)worker_pid(w), p->cfg.name, p->cfg.version);
    return 0;
}
