/*
 * spawn_msg.h — a sandbox_spec as one flat message (for the privileged
 * spawner, and for a runtime's zygote), the table of its fields, and
 * sending/receiving a message with up to SPAWNMSG_MAX_FDS fds.
 */
#ifndef HEARTH_SPAWN_MSG_H
#define HEARTH_SPAWN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

#define SPAWNMSG_MAX         (192 * 1024) /* argv (with the runtime program) + env */
#define SPAWNMSG_MAX_STRINGS 512
#define SPAWNMSG_MAX_FDS     9    /* to a zygote: 5 channels, 3 cgroups, a secrets bundle */
#define SPAWNMSG_SPAWN       1    /* the first uint32 of a spawn message */
#define SPAWNMSG_CG_MEMORY   0x80 /* cgroup_bits: a memory cgroup limits the worker */
#define SPAWNMSG_SECRETS     0x40 /* cgroup_bits: a secrets bundle fd is sent, last */
/* cgroup_bits bit i (i < SANDBOX_CGROUP_COUNT): a cgroup.procs fd of slot i is sent */

/* What the receiving spawner does with a field of the spec (spawner.c). */
typedef enum spawnmsg_rule {
    SPAWNMSG_LIMIT,  /* a ceiling, 0 = none: lowered to the policy's, 0 included */
    SPAWNMSG_AMOUNT, /* an amount, 0 = nothing: lowered to the policy's */
    SPAWNMSG_GRANT,  /* a permission: refused unless the policy grants it */
    SPAWNMSG_ID,     /* uid, gid: checked against the policy's range */
    SPAWNMSG_OWN,    /* the receiver's own: what the sender says is replaced */
} spawnmsg_rule;

/* One fixed-size field of a spawn message: a field of sandbox_spec, and
 * (LIMIT, AMOUNT, GRANT) of spawner_limits. Bools are one byte, 0 or 1. */
typedef struct spawnmsg_field {
    const char *name;
    size_t offset; /* in sandbox_spec */
    size_t size;   /* 1 (bool), 4 or 8 bytes, native order */
    spawnmsg_rule rule;
    size_t limit_offset; /* in spawner_limits, same size */
} spawnmsg_field;

/* The fields, in wire order, and their number in *count. Encode, decode
 * and the spawner's check all walk this one table. */
const spawnmsg_field *spawnmsg_fields(size_t *count);

/* A field's value in the struct at base, widened; and setting it. */
uint64_t spawnmsg_get(const void *base, size_t offset, size_t size);
void spawnmsg_set(void *base, size_t offset, size_t size, uint64_t v);

/* Flattens spec (argv, envp, code_dir, hostname, the secrets' names and the table's fields),
 * whether it has a filter, and cgroup_bits (0 but to a zygote) into buf
 * (SPAWNMSG_MAX bytes). Returns 0 or -E2BIG. */
int spawnmsg_encode(const sandbox_spec *spec, uint8_t cgroup_bits, char *buf, size_t *len);

/* Rebuilds a spec from a message, or -EPROTO: a wrong type, a count
 * beyond SPAWNMSG_MAX_STRINGS (or no argv), more than
 * VALIDATE_SECRETS_MAX secrets, a bool that is not 0 or 1,
 * unknown cgroup_bits, a string without its NUL, or bytes past the last
 * string. Strings point into buf; argv and envp (SPAWNMSG_MAX_STRINGS + 1
 * each) and secrets (VALIDATE_SECRETS_MAX + 1) hold the vectors; spec->secrets
 * is NULL when there are none. has_secrets stays false: a bundle is the
 * spawner's own. cgroups and filter stay NULL: the receiver
 * supplies its own; *use_filter says whether the sender wanted one,
 * *cgroup_bits what it said of cgroups (both may be NULL). */
int spawnmsg_decode(char *buf, size_t len, sandbox_spec *spec, const char **argv, const char **envp,
                    const char **secrets, bool *use_filter, uint8_t *cgroup_bits);

/* One message and up to maxfds fds (close-on-exec). Returns its length,
 * 0 at EOF, -EMSGSIZE when the message was cut or carried more fds than
 * maxfds (then none are kept), -EMFILE when a message of exactly `cap`
 * bytes arrived whole but the kernel dropped its fds (we are out of
 * descriptors: buf holds the message, no fd is kept), or -errno. */
ssize_t spawnmsg_recv(int fd, void *buf, size_t cap, int *fds, int maxfds, int *nfds);

/* Sends one message with nfds (<= SPAWNMSG_MAX_FDS) fds. 0 or -errno. */
int spawnmsg_send(int fd, const void *buf, size_t len, const int *fds, int nfds);

/* A template's answer to one spawn message (zygote_child.c writes it,
 * zygote.c reads it): rc 0 and the new worker's host pid, or rc a
 * negative errno and pid 0. */
typedef struct spawnmsg_reply {
    int32_t rc;
    int32_t pid;
} spawnmsg_reply;

#endif
