/*
 * spawn_msg.c — the wire form of a sandbox_spec, and the socket calls that
 * carry it with fds (SCM_RIGHTS): daemon → spawner, and spawner → zygote.
 *
 * Owns the layout: a fixed header whose counts are checked before use,
 * then the spec's fixed-size fields, one row each of `fields` (the table
 * that encode, decode and the spawner's policy check all walk), then
 * NUL-terminated strings (argv, envp, code_dir, hostname, the names of
 * the worker's secrets, never their values) that must fill the message
 * exactly. Must never:
 * trust a count, a length or a bool from the peer before checking it,
 * allocate, or keep an fd it was sent but cannot hand back.
 */
#include "spawn_msg.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spawner.h"
#include "validate.h"

struct spawn_head {
    uint32_t type;
    uint32_t argc, envc;
    uint8_t use_filter;  /* said by the spawner to its zygote; the daemon's is ignored */
    uint8_t cgroup_bits; /* to a zygote: SPAWNMSG_CG_* */
    uint8_t nsecrets;    /* <= VALIDATE_SECRETS_MAX */
    uint8_t zero;
    /* then each row of `fields`, then argc + envc + 2 (code_dir, hostname)
     * + nsecrets NUL-terminated strings */
};

#define CG_KNOWN_BITS (SPAWNMSG_CG_MEMORY | SPAWNMSG_SECRETS | ((1u << SANDBOX_CGROUP_COUNT) - 1))

_Static_assert(sizeof(uid_t) == 4 && sizeof(gid_t) == 4 && sizeof(bool) == 1,
               "the table's sizes are 1, 4 or 8");
_Static_assert(CG_KNOWN_BITS <= UINT8_MAX, "cgroup_bits is one byte");

#define SPEC_SIZE(f)  sizeof(((sandbox_spec *)0)->f)
#define LIMIT_SIZE(f) sizeof(((spawner_limits *)0)->f)
/* A field the spawner holds to spawner_limits' field of the same name,
 * which must have its size (or this does not compile). */
#define HELD(f, rule)                                                                              \
    {                                                                                              \
#f, offsetof(sandbox_spec, f),                                                             \
            SPEC_SIZE(f) + 0 * sizeof(char[SPEC_SIZE(f) == LIMIT_SIZE(f) ? 1 : -1]), rule,         \
            offsetof(spawner_limits, f)                                                            \
    }
#define CHECKED(f, rule)                                                                           \
    {                                                                                              \
#f, offsetof(sandbox_spec, f), SPEC_SIZE(f), rule, 0                                       \
    }

static const spawnmsg_field fields[] = {
    CHECKED(uid, SPAWNMSG_ID),           CHECKED(gid, SPAWNMSG_ID),
    HELD(memory_bytes, SPAWNMSG_LIMIT),  HELD(vm_reserve, SPAWNMSG_AMOUNT),
    HELD(max_file_size, SPAWNMSG_LIMIT), HELD(max_open_files, SPAWNMSG_LIMIT),
    HELD(tmp_bytes, SPAWNMSG_LIMIT),     HELD(pids_max, SPAWNMSG_LIMIT),
    HELD(cpu_millis, SPAWNMSG_LIMIT),    HELD(host_network, SPAWNMSG_GRANT),
    HELD(egress, SPAWNMSG_GRANT),        CHECKED(isolate, SPAWNMSG_OWN),
    CHECKED(prebuilt, SPAWNMSG_OWN),
};

#define NFIELDS (sizeof fields / sizeof *fields)

const spawnmsg_field *spawnmsg_fields(size_t *count)
{
    *count = NFIELDS;
    return fields;
}

uint64_t spawnmsg_get(const void *base, size_t offset, size_t size)
{
    const char *p = (const char *)base + offset;
    if (size == 1) {
        bool b;
        memcpy(&b, p, 1);
        return b;
    }
    if (size == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void spawnmsg_set(void *base, size_t offset, size_t size, uint64_t v)
{
    char *p = (char *)base + offset;
    if (size == 1) {
        bool b = v != 0;
        memcpy(p, &b, 1);
    } else if (size == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(p, &w, 4);
    } else {
        memcpy(p, &v, 8);
    }
}

/* The header and the table's fields: the least a spawn message holds. */
static size_t fixed_size(void)
{
    size_t n = sizeof(struct spawn_head);
    for (size_t i = 0; i < NFIELDS; i++)
        n += fields[i].size;
    return n;
}

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
    struct spawn_head head = {
        .type = SPAWNMSG_SPAWN,
        .use_filter = spec->filter != NULL,
        .cgroup_bits = cgroup_bits,
    };
    int rc = count_strings(spec->argv, &head.argc);
    if (rc == 0)
        rc = count_strings(spec->envp, &head.envc);
    uint32_t nsecrets = 0;
    while (rc == 0 && spec->secrets && spec->secrets[nsecrets])
        if (++nsecrets > VALIDATE_SECRETS_MAX)
            rc = -E2BIG;
    if (rc < 0)
        return rc;
    head.nsecrets = (uint8_t)nsecrets;
    memcpy(buf, &head, sizeof head);
    *len = sizeof head;
    for (size_t i = 0; i < NFIELDS; i++) {
        memcpy(buf + *len, (const char *)spec + fields[i].offset, fields[i].size);
        *len += fields[i].size;
    }
    for (uint32_t i = 0; rc == 0 && i < head.argc; i++)
        rc = append_str(buf, len, spec->argv[i]);
    for (uint32_t i = 0; rc == 0 && i < head.envc; i++)
        rc = append_str(buf, len, spec->envp[i]);
    if (rc == 0)
        rc = append_str(buf, len, spec->code_dir);
    if (rc == 0)
        rc = append_str(buf, len, spec->hostname ? spec->hostname : "hearth");
    for (uint32_t i = 0; rc == 0 && i < nsecrets; i++)
        rc = append_str(buf, len, spec->secrets[i]);
    return rc;
}

static bool head_ok(const struct spawn_head *h)
{
    return h->type == SPAWNMSG_SPAWN && h->argc > 0 && h->argc <= SPAWNMSG_MAX_STRINGS &&
           h->envc <= SPAWNMSG_MAX_STRINGS && h->use_filter <= 1 &&
           (h->cgroup_bits & ~CG_KNOWN_BITS) == 0 && h->nsecrets <= VALIDATE_SECRETS_MAX &&
           h->zero == 0;
}

/* The table's fields from p into spec; a bool must be 0 or 1 (any other
 * byte read as a bool is undefined behaviour). 0 or -EPROTO. */
static int read_fields(const char *p, sandbox_spec *spec)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const spawnmsg_field *f = &fields[i];
        if (f->size == 1 && (uint8_t)*p > 1)
            return -EPROTO;
        if (f->size == 1)
            spawnmsg_set(spec, f->offset, 1, (uint8_t)*p);
        else
            memcpy((char *)spec + f->offset, p, f->size);
        p += f->size;
    }
    return 0;
}

/* want NUL-terminated strings from p that end exactly at end. 0 or -EPROTO. */
static int split_strings(char *p, const char *end, uint32_t want, const char **strs)
{
    for (uint32_t i = 0; i < want; i++) {
        char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (!nul)
            return -EPROTO;
        strs[i] = p;
        p = nul + 1;
    }
    return p == end ? 0 : -EPROTO;
}

int spawnmsg_decode(char *buf, size_t len, sandbox_spec *spec, const char **argv, const char **envp,
                    const char **secrets, bool *use_filter, uint8_t *cgroup_bits)
{
    struct spawn_head head;
    if (len < fixed_size())
        return -EPROTO;
    memcpy(&head, buf, sizeof head);
    if (!head_ok(&head))
        return -EPROTO;
    *spec = (sandbox_spec){0};
    const char *strs[2 * SPAWNMSG_MAX_STRINGS + 2 + VALIDATE_SECRETS_MAX];
    uint32_t want = head.argc + head.envc + 2 + head.nsecrets;
    if (read_fields(buf + sizeof head, spec) < 0 ||
        split_strings(buf + fixed_size(), buf + len, want, strs) < 0)
        return -EPROTO;
    for (uint32_t i = 0; i < head.argc; i++)
        argv[i] = strs[i];
    argv[head.argc] = NULL;
    for (uint32_t i = 0; i < head.envc; i++)
        envp[i] = strs[head.argc + i];
    envp[head.envc] = NULL;
    spec->argv = argv;
    spec->envp = envp;
    spec->code_dir = strs[head.argc + head.envc];
    spec->hostname = strs[head.argc + head.envc + 1];
    for (uint32_t i = 0; i < head.nsecrets; i++)
        secrets[i] = strs[head.argc + head.envc + 2 + i];
    secrets[head.nsecrets] = NULL;
    spec->secrets = head.nsecrets ? secrets : NULL;
    spec->secrets_fd = -1;
    if (use_filter)
        *use_filter = head.use_filter != 0;
    if (cgroup_bits)
        *cgroup_bits = head.cgroup_bits;
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
    bool extra = false;
    for (struct cmsghdr *c = fds ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (*nfds < maxfds) {
                fds[(*nfds)++] = got;
            } else {
                close(got);
                extra = true;
            }
        }
    }
    /* MSG_CTRUNC: the kernel closed the fds that did not fit (all of them
     * when we take none), so the message is not the one that was sent. */
    if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && !extra)
        return n;
    /* Whole and of the size asked, but the fds it carried were dropped:
     * out of descriptors here (RLIMIT_NOFILE). The message can be read. */
    bool fds_lost = !(mh.msg_flags & MSG_TRUNC) && !extra && (size_t)n == cap;
    for (int i = 0; nfds && i < *nfds; i++)
        close(fds[i]);
    if (nfds)
        *nfds = 0;
    return fds_lost ? -EMFILE : -EMSGSIZE;
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
