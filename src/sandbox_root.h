/*
 * sandbox_root.h — the worker's filesystem: a fresh tmpfs root holding only
 * read-only binds of what a runtime needs, the function's code at
 * /var/task, a private /tmp, a minimal /dev and a fresh /proc.
 *
 * The plan is prepared in the parent (it allocates and formats); the
 * child only executes it between fork and exec (async-signal-safe calls).
 */
#ifndef HEARTH_SANDBOX_ROOT_H
#define HEARTH_SANDBOX_ROOT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_ROOT_MAX_LINKS 8
#define SANDBOX_ROOT_TASK      "/var/task"
#define SANDBOX_ROOT_RUNTIME   "/var/runtime" /* a runtime binary from outside /usr */
#define SANDBOX_ROOT_STAGE     "/var/.hearth" /* pre-built: the code root, during ATTACH */

typedef struct sandbox_root_plan {
    const char *code_dir; /* the function's code on the host (borrowed); pre-built: the
                             code root, whose <name>/<version> an ATTACH picks */
    bool prebuilt;        /* /var/task stays empty until sandbox_root_attach */
    char tmp_opts[64];    /* tmpfs options of the worker's /tmp */
    const char *hostname;
    bool host_network; /* leave the network alone (no loopback to raise) */
    /* top-level names that are symlinks on the host (merged /usr): recreated */
    char link_name[SANDBOX_ROOT_MAX_LINKS][16];
    char link_target[SANDBOX_ROOT_MAX_LINKS][64];
    int nlinks;
    /* top-level library folders that are real folders on the host: bound */
    char dir_name[SANDBOX_ROOT_MAX_LINKS][16];
    int ndirs;
    /* A program outside the folders bound above (a runtime built with
     * hearthd): bound read-only as SANDBOX_ROOT_RUNTIME "/<basename>". */
    char program[PATH_MAX];    /* its host path, "" when it is under /usr or /lib* */
    char program_in[PATH_MAX]; /* where the sandbox sees it (what to exec) */
    char uid_map[32];          /* "<uid> <uid> 1": the runtime's own id, and no other */
    char gid_map[32];
    char passwd[256];
    char group[128];
    char hosts[256];
    char resolv[96]; /* egress: /etc/resolv.conf ("" = none, and no DNS in nsswitch) */
    /* /run/secrets: a tmpfs of the worker's own, filled from a bundle */
    int secrets_fd;         /* the bundle (see below), or -1: no /run/secrets */
    char secrets_opts[128]; /* its tmpfs options: size, inodes, owner, mode 0500 */
    uid_t uid;              /* who owns the files there */
    gid_t gid;
} sandbox_root_plan;

/* A bundle of secrets (made by the spawner, secret_bundle.c) is an fd
 * whose bytes are records, one per file of /run/secrets: one byte of
 * name length (1..VALIDATE_SECRET_NAME_MAX), the name (a valid secret
 * name), a native uint32 of value length (<= SECRETS_VALUE_MAX), the
 * value. */
#define SANDBOX_SECRETS_PATH "/run/secrets"

/* Prepares the plan for a worker running as uid/gid whose code is in
 * `code_dir` (borrowed: it must outlive the spawn). */
void sandbox_root_plan_init(sandbox_root_plan *plan, const char *code_dir, const char *hostname,
                            uint64_t tmp_bytes, uid_t uid, gid_t gid, bool host_network);

/* Gives the worker a /run/secrets filled from the bundle `fd` (borrowed:
 * it must stay open until the spawn returns). */
/* Egress: /etc/resolv.conf names `resolver` (an IPv4 address, network
 * order) and the name service asks it after /etc/hosts. */
void sandbox_root_plan_resolver(sandbox_root_plan *plan, uint32_t resolver);

void sandbox_root_plan_secrets(sandbox_root_plan *plan, int fd);

/* The program the worker execs (argv[0]): unless /usr or a library folder
 * already holds it, it is bound into the sandbox, and program_in says
 * where. */
void sandbox_root_plan_program(sandbox_root_plan *plan, const char *program);

/* Child side, in a user namespace just made by clone (rootless): maps
 * the plan's uid and gid, our own outer ids, to themselves, with
 * setgroups denied. Returns 0 or -1 with errno. */
int sandbox_root_map_ids(const sandbox_root_plan *plan);

/* Child side, as root (or, rootless, with every capability of the user
 * namespace that owns them) in fresh mount, pid (as its pid 1), uts and
 * network namespaces: builds the root, pivots into it, detaches the old one,
 * mounts /proc, makes / read-only and enters /var/task. Pre-built, *tree_fd
 * is then a detached read-only clone of the code root (close-on-exec; for
 * sandbox_root_attach, and for no process but the init to hold), else
 * -1. Returns 0, or -1 with errno set. */
int sandbox_root_enter(const sandbox_root_plan *plan, int *tree_fd);

/* What an ATTACH may name, checked by both ends: "<name>/<version>", a
 * valid function name, a slash, one more path component (not "." or
 * ".."); and a hostname that is a valid function name. */
bool sandbox_root_code_rel_ok(const char *rel);
bool sandbox_root_hostname_ok(const char *name);

/* The init of a pre-built sandbox, still privileged, after pivot_root:
 * the folder code_rel of the code root (tree_fd, from sandbox_root_enter;
 * still the caller's to close) bound read-only, nosuid, nodev at
 * /var/task, the code root itself no longer mounted anywhere; /etc/hosts
 * names `hostname`; /run/secrets filled from the bundle secrets_fd when it
 * is not -1 (as for a root being built); the uts name set. Async-signal-
 * safe. Returns 0, or -1 with errno set. */
int sandbox_root_attach(const sandbox_root_plan *plan, int tree_fd, const char *code_rel,
                        const char *hostname, int secrets_fd);

/* Child side, after the identity change and before exec: moves the
 * runtime into a user namespace of its own that maps only its uid and gid
 * (setgroups denied). It owns none of the other namespaces, so whatever
 * capabilities it holds there reach nothing. Returns 0 or -1 with errno. */
int sandbox_root_enter_user_ns(const sandbox_root_plan *p);

#endif
