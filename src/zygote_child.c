/*
 * zygote_child.c — the template's side of runtime templates, built into
 * libhearth_zygote.so, which a runtime's template program loads (python3:
 * through ctypes.PyDLL, so the GIL stays held and the process is
 * single-threaded when it clones).
 *
 * hz_init(fd) builds the seccomp allowlist once and says "R" on the
 * socket. Each hz_next() serves one request of zygote.c: it rebuilds the
 * spec, clones a worker with sandbox_clone_template, and answers with its
 * pid; it returns 1 only in that worker's runtime, sandboxed and ready to
 * load the user's code. A pre-built worker (spec.prebuilt, which the
 * request carries like every field of spawn_msg's table) returns with
 * /var/task still empty: its runtime waits for the daemon's SPECIALIZE,
 * sent once the sandbox's init has attached the function.
 *
 * Owns one static request buffer, wiped after each request so that no
 * worker inherits another function's environment. Must never: allocate
 * (a worker's copy of this process must hold nothing but its own
 * request), keep a worker's fds after its clone, or act on anything but
 * the socket it was given.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sandbox.h"
#include "sandbox_seccomp.h"
#include "spawn_msg.h"
#include "validate.h"

#define BASE_FDS 5 /* devnull, out, err, ctl, status, then the cgroup.procs fds */

extern char **environ;

static int sock = -1;
static sandbox_filter filter;
static bool have_filter;
static char *msg; /* SPAWNMSG_MAX bytes of anonymous memory: see step_show_spec_strings */
static const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
static const char *secrets[VALIDATE_SECRETS_MAX + 1];
static sandbox_spec spec;

/* The library's whole interface; everything else is hidden. */
#define HZ_EXPORT __attribute__((visibility("default")))
HZ_EXPORT int hz_init(int fd);
HZ_EXPORT int hz_next(void);
HZ_EXPORT const char *hz_env(int i);

int hz_init(int fd)
{
    sock = fd;
    msg = mmap(NULL, SPAWNMSG_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (msg == MAP_FAILED)
        return -errno;
    int rc = sandbox_seccomp_build(&filter);
    if (rc < 0)
        return rc; /* no "R": the spawner execs this runtime's workers instead */
    have_filter = true;
    char ready = 'R';
    return spawnmsg_send(sock, &ready, 1, NULL, 0);
}

/* The fds of a request, in zygote.c's order; a secrets bundle, last,
 * goes to the spec. -EPROTO when they do not match what the message says. */
static int unpack_fds(const int *fds, int nfds, uint8_t bits, sandbox_child_fds *out,
                      sandbox_spec *sp)
{
    if (nfds < BASE_FDS)
        return -EPROTO;
    *out = (sandbox_child_fds){.devnull = fds[0],
                               .out = fds[1],
                               .err = fds[2],
                               .ctl = fds[3],
                               .status = fds[4],
                               .memory_cgroup = (bits & SPAWNMSG_CG_MEMORY) != 0};
    int next = BASE_FDS;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        out->cgroup_procs[i] = -1;
        if (bits & (1u << i)) {
            if (next >= nfds)
                return -EPROTO;
            out->cgroup_procs[i] = fds[next++];
        }
    }
    if ((bits & SPAWNMSG_SECRETS) && next < nfds) {
        sp->has_secrets = true;
        sp->secrets_fd = fds[next++];
    }
    return next == nfds && sp->has_secrets == ((bits & SPAWNMSG_SECRETS) != 0) ? 0 : -EPROTO;
}

/* Clones the worker a request describes. The pid, 0 in the worker, or -errno. */
static pid_t serve(ssize_t len, const int *fds, int nfds)
{
    bool use_filter = false;
    uint8_t bits = 0;
    sandbox_child_fds cf;
    int rc = spawnmsg_decode(msg, (size_t)len, &spec, argv, envp, secrets, &use_filter, &bits);
    if (rc == 0)
        rc = unpack_fds(fds, nfds, bits, &cf, &spec);
    if (rc == 0 && use_filter && !have_filter)
        rc = -ENOSYS;
    if (rc < 0)
        return rc;
    spec.filter = use_filter ? &filter : NULL;
    return sandbox_clone_template(&spec, &cf);
}

int hz_next(void)
{
    int fds[SPAWNMSG_MAX_FDS], nfds = 0;
    ssize_t len = spawnmsg_recv(sock, msg, SPAWNMSG_MAX, fds, SPAWNMSG_MAX_FDS, &nfds);
    if (len <= 0)
        return -1; /* the spawner is gone: so are we */
    pid_t pid = serve(len, fds, nfds);
    if (pid == 0)
        return 1;
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    explicit_bzero(msg, (size_t)len);
    spawnmsg_reply reply = {pid < 0 ? pid : 0, pid > 0 ? pid : 0};
    spawnmsg_send(sock, &reply, sizeof reply, NULL, 0);
    return 0;
}

/* The worker's environment, one "KEY=VALUE" at a time (NULL past the end),
 * for the runtime to mirror into its own view of it. */
const char *hz_env(int i)
{
    for (int k = 0; environ && environ[k]; k++)
        if (k == i)
            return environ[k];
    return NULL;
}
