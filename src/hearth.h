/*
 * hearth.h — the daemon's settings and the pieces it is made of, shared
 * by main (which builds them) and the API (which serves from them).
 */
#ifndef HEARTH_HEARTH_H
#define HEARTH_HEARTH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "egress.h"
#include "logs.h"
#include "logstore.h"
#include "metrics.h"
#include "registry.h"
#include "sandbox_cgroup.h"
#include "sched.h"
#include "spawner.h"

#define HEARTH_VERSION "0.1.0"

/* The HTTP listener (gateway.h): only main, the gateway and the API look
 * inside it, so the modules below the API need not include gateway.h. */
typedef struct gateway gateway;

typedef struct hearth_settings {
    const char *listen;   /* HOST:PORT */
    const char *tls_cert; /* PEM files: HTTPS when set (both or neither) */
    const char *tls_key;
    const char *data_dir;
    const char *runtimes_dir;
    const char *user;     /* who the daemon becomes once the spawner runs */
    size_t max_body;      /* invoke request bodies */
    size_t max_response;  /* function answers */
    size_t log_retention; /* bytes of log lines per function */
    unsigned max_workers;
    unsigned prebuilt_min, prebuilt_max; /* pre-built sandboxes per runtime */
    unsigned max_starting; /* workers starting at once; 0 = twice the CPUs, at least 4 */
    size_t memory_budget;  /* bytes of memory_mb all live workers may sum to; 0 = 3/4 of RAM */
    unsigned max_queue;
    unsigned shutdown_grace_s;
    uint64_t keep_alive_ms;
    unsigned keep_versions;       /* versions of a function kept after a deploy */
    uint64_t result_retention_ms; /* finished async invocations are kept this long */
    int log_level;
    bool no_sandbox;               /* debugging only: workers share the host's namespaces */
    unsigned long adaptive_bin_ms; /* keepalive.c's histogram bin; 0 = its default */
    bool no_templates;             /* exec the interpreter for every worker (no zygotes) */
    bool allow_weaker_sandbox;     /* start even when a protection is missing */
    bool no_host_network;          /* no worker may share the host's network */
    bool no_auth;                  /* --no-auth: no token checks (loopback only) */
    uid_t uid_base; /* as root: worker uids (= gids) come from [base, base + count) */
    unsigned uid_count;
    egress_config egress;       /* --egress-subnet, --egress-deny, --egress-allow, --resolv-conf */
    uint8_t default_network;    /* --default-network: fn_network of a deploy that names none */
    unsigned max_connections;   /* client connections open at once (gateway.c) */
    uint64_t header_timeout_ms; /* from accept or the previous answer to a complete head */
    uint64_t body_timeout_ms;   /* from a complete head to a complete body */
    uint64_t idle_timeout_ms;   /* no byte either way for this long: closed */
} hearth_settings;

/* Deploy bodies carry a 50 MiB package as base64 plus settings. */
#define HEARTH_MAX_DEPLOY_BODY (70u * 1024 * 1024)
#define HEARTH_MAX_OTHER_BODY  (64u * 1024)

typedef struct hearth {
    hearth_settings set;
    char code_root[PATH_MAX];    /* <data>/code */
    char staging_root[PATH_MAX]; /* <data>/staging */
    uid_t worker_uid;
    gid_t worker_gid;
    uv_loop_t *loop;
    registry *reg;
    struct auth *auth; /* tokens: who may do what (auth.h) */
    logstore *store;
    logs *lg;
    sched *sch;
    struct evstore *evstore;     /* opened before privileges drop; then the event core's */
    struct events *events;       /* async invocations, schedules, topics (events/events.h) */
    struct callbacks *callbacks; /* result callbacks' outbound POSTs (events/callback.h) */
    gateway *gw;
    struct secrets *secrets;  /* the sealed store: the public key, never the private one */
    sandbox_cgroups *cgroups; /* NULL when not root or none usable */
    sandbox_filter filter;    /* workers' seccomp allowlist, built once */
    bool have_filter;
    int kmsg_fd;                   /* /dev/kmsg for naming seccomp kills, or -1 */
    struct violations *violations; /* built on it once the loop exists */
    struct spawner *spawner;       /* the privileged half as root; a local one rootless */
    metrics *metrics;              /* daemon-wide counters; per-function ones are the pools' */
    struct tls_certs *tls;         /* HTTPS certificate (tls.h), NULL for plain HTTP */
    struct routes_table *routes;   /* every function's HTTP routes (events/routes.h) */
    bool isolate;                  /* workers get namespaces and a private root */
    bool stopping;
    const char *c_runner;   /* locate.h: the c runtime's program */
    const char *zygote_lib; /* locate.h: what runtime templates load */

    egress_host egress;     /* what "network": "egress" can do here (egress.h) */
    int dns_fd, dns_tcp_fd; /* as root: the workers' DNS sockets, bound before privileges drop */
    struct dnsfwd *dns;     /* relays it to the host's resolvers */
    struct sockaddr_storage dns_upstream[4]; /* those, read at start (as root) */
    int ndns_upstream;                       /* or -errno */

    spawner_policy policy;           /* what every worker may get: built once, at start */
    char policy_code_root[PATH_MAX]; /* policy.code_root, resolved */
} hearth;

#endif
