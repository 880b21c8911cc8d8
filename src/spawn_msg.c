/*
 * spawn_msg.c — the wire form of a sandbox_spec, and the socket calls that
 * carry it with fds (SCM_RIGHTS): daemon → spawner, and spawner → zygote.
 *
 * Owns the layout: a fixed header whose counts are checked before use,
 * then NUL-terminated strings that must fill the message exactly. Must
 * never: trust a count or a length from the peer before checking it,
 * allocate, or keep an fd it was sent but cannot hand back.
 */
#include "spawn_msg.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct spawn_req {
    uint32_t type;
    uint32_t uid, gid;
    uint64_t memory_bytes, vm_reserve, max_file_size, max_open_files, tmp_bytes;
    uint32_t pids_max, cpu_millis;
    uint8_t host_network;
    uint8_t isolate, use_filter; /* said by the spawner to its zygote; the daemon's are ignored */
    uint8_t cgroup_bits;         /* to a zygote: SPAWNMSG_CG_* */
    uint32_t argc, envc;
    /* then argc + envc + 2 (code_dir, hostname) NUL-terminated strings */
};

static int append_str(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s) + 1;
    if (*len + n > SPAWNMSG_MAX)
        return -E2BIG;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

static int count_strings(const char *const *v, uint32_t *n)
{
    for (*n = 0; v[*n]; (*n)++)
        if (*n >= SPAWNMSG_MAX_STRINGS)
            return -E2BIG;
    return 0;
}

int spawnmsg_encode(const sandbox_spec *spec, uint8_t cgroup_bits, char *buf, size_t *len)
{
    struct spawn_req req = {
        .type = SPAWNMSG_SPAWN,
        .uid = (uint32_t)spec->uid,
        .gid = (uint32_t)spec->gid,
        .memory_bytes = spec->memory_bytes,
        .vm_reserve = spec->vm_reserve,
        .max_file_size = spec->max_file_size,
        .max_open_files = spec->max_open_files,
        .tmp_bytes = spec->tmp_bytes,
        .pids_max = spec->pids_max,
        .cpu_millis = spec->cpu_millis,
        .host_network = spec->host_network,
        .isolate = spec->isolate,
        .use_filter = spec->filter != NULL,
        .cgroup_bits = cgroup_bits,
    };
    int rc = count_strings(spec->argv, &req.argc);
    if (rc == 0)
        rc = count_strings(spec->envp, &req.envc);
    if (rc < 0)
        return rc;
    memcpy(buf, &req, sizeof req);
    *len = sizeof req;
    for (uint32_t i = 0; rc == 0 && i < req.argc; i++)
        rc = append_str(buf, len, spec->argv[i]);
    for (uint32_t i = 0; rc == 0 && i < req.envc; i++)
        rc = append_str(buf, len, spec->envp[i]);
    if (rc == 0)
        rc = append_str(buf, len, spec->code_dir);
    if (rc == 0)
        rc = append_str(buf, len, spec->hostname ? spec->hostname : "hearth");
    return rc;
}

int spawnmsg_decode(char *buf, size_t len, sandbox_spec *spec, const char **argv, const char **envp,
                    bool *use_filter, uint8_t *cgroup_bits)
{
    struct spawn_req req;
    if (len < sizeof req)
        return -EPROTO;
    memcpy(&req, buf, sizeof req);
    if (req.argc == 0 || req.argc > SPAWNMSG_MAX_STRINGS || req.envc > SPAWNMSG_MAX_STRINGS)
        return -EPROTO;
    char *p = buf + sizeof req, *end = buf + len;
    const char *strs[2 * SPAWNMSG_MAX_STRINGS + 2];
    uint32_t want = req.argc + req.envc + 2;
    for (uint32_t i = 0; i < want; i++) {
        char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul)
            return -EPROTO;
        strs[i] = p;
        p = nul + 1;
    }
    if (p != end)
        return -EPROTO;
    for (uint32_t i = 0; i < req.argc; i++)
        argv[i] = strs[i];
    argv[req.argc] = NULL;
    for (uint32_t i = 0; i < req.envc; i++)
        envp[i] = strs[req.argc + i];
    envp[req.envc] = NULL;
    *spec = (sandbox_spec){
        .argv = argv,
        .envp = envp,
        .code_dir = strs[req.argc + req.envc],
        .hostname = strs[req.argc + req.envc + 1],
        .uid = (uid_t)req.uid,
        .gid = (gid_t)req.gid,
        .memory_bytes = req.memory_bytes,
        .vm_reserve = req.vm_reserve,
        .max_file_size = req.max_file_size,
        .max_open_files = req.max_open_files,
        .tmp_bytes = req.tmp_bytes,
        .pids_max = req.pids_max,
        .cpu_millis = req.cpu_millis,
        .host_network = req.host_network != 0,
        .isolate = req.isolate != 0,
    };
    if (use_filter)
        *use_filter = req.use_filter != 0;
    if (cgroup_bits)
        *cgroup_bits = req.cgroup_bits;
    return 0;
}

ssize_t spawnmsg_recv(int fd, void *buf, size_t cap, int *fds, int maxfds, int *nfds)
{
    char control[CMSG_SPACE(sizeof(int) * SPAWNMSG_MAX_FDS)];
    struct iovec iov = {buf, cap};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fds) {
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)maxfds);
    }
    ssize_t n;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (nfds)
        *nfds = 0;
    for (struct cmsghdr *c = fds ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (*nfds < maxfds)
                fds[(*nfds)++] = got;
            else
                close(got);
        }
    }
    if (mh.msg_flags & MSG_TRUNC)
        return -EMSGSIZE;
    return n;
}

int spawnmsg_send(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
    char control[CMSG_SPACE(sizeof(int) * SPAWNMSG_MAX_FDS)];
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}
