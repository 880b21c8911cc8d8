/*
 * spawn_msg.h — a sandbox_spec as one flat message (for the privileged
 * spawner, and for a runtime's zygote), and sending/receiving a message
 * with up to SPAWNMSG_MAX_FDS fds.
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
#define SPAWNMSG_MAX_FDS     8
#define SPAWNMSG_SPAWN       1    /* the first uint32 of a spawn message */
#define SPAWNMSG_CG_MEMORY   0x80 /* cgroup_bits: a memory cgroup limits the worker */
/* cgroup_bits bit i (i < SANDBOX_CGROUP_COUNT): a cgroup.procs fd of slot i is sent */

/* Flattens spec (argv, envp, code_dir, hostname, ids, limits, the
 * host_network, isolate and filter flags) and cgroup_bits (0 but to a
 * zygote) into buf (SPAWNMSG_MAX bytes). Returns 0 or -E2BIG. */
int spawnmsg_encode(const sandbox_spec *spec, uint8_t cgroup_bits, char *buf, size_t *len);

/* Rebuilds a spec from a message, or -EPROTO. Strings point into buf;
 * argv and envp (SPAWNMSG_MAX_STRINGS + 1 each) hold the vectors. cgroups
 * and filter stay NULL: the receiver supplies its own; *use_filter says
 * whether the sender wanted one, *cgroup_bits what it said of cgroups
 * (both may be NULL). */
int spawnmsg_decode(char *buf, size_t len, sandbox_spec *spec, const char **argv, const char **envp,
                    bool *use_filter, uint8_t *cgroup_bits);

/* One message and up to maxfds fds (close-on-exec; extra ones closed).
 * Returns its length, 0 at EOF, -EMSGSIZE when cut, or -errno. */
ssize_t spawnmsg_recv(int fd, void *buf, size_t cap, int *fds, int maxfds, int *nfds);

/* Sends one message with nfds (<= SPAWNMSG_MAX_FDS) fds. 0 or -errno. */
int spawnmsg_send(int fd, const void *buf, size_t len, const int *fds, int nfds);

#endif
