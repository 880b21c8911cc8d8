/*
 * spawner_wire.h — the messages between the daemon (spawner.c) and the
 * spawner process (spawner_server.c). Private to those two files.
 *
 * A request is a head, and for SPAWN, PREBUILD and CLAIM a spawn message
 * (spawn_msg.h) after it. Every request but KILL is answered by one
 * reply naming the request's id; a successful SPAWN or PREBUILD reply
 * carries the sandbox's pidfd, ctl, out and err fds as SCM_RIGHTS.
 */
#ifndef HEARTH_SPAWNER_WIRE_H
#define HEARTH_SPAWNER_WIRE_H

#include <stdint.h>

#include "spawner.h"

enum spawner_msg {
    SPW_SPAWN = 1,    /* head + spec: a sandbox for a function */
    SPW_KILL = 2,     /* head (id): no reply */
    SPW_REAP = 3,     /* head (id) */
    SPW_PREBUILD = 4, /* head + spec: a sandbox for a runtime, no function yet */
    SPW_CLAIM = 5,    /* head (id) + spec: give a pre-built sandbox its function */
};

struct spw_head {
    uint32_t type;
    uint32_t req; /* the daemon's id of the request, echoed in the reply */
    int32_t id;   /* the spawner's id of a sandbox (KILL, REAP, CLAIM), else 0 */
};

struct spw_reply {
    uint32_t req;
    int32_t rc;      /* 0 or -errno; REAP: 1 reaped, 0 running, -errno */
    int32_t id;      /* SPAWN, PREBUILD: the spawner's id of the new sandbox */
    int32_t pid;     /* SPAWN, PREBUILD: its init, as the daemon sees it */
    int32_t runtime; /* SPAWN, PREBUILD: the runtime's host pid (0 = unknown) */
    int32_t wstatus; /* REAP */
    int32_t oom;     /* REAP: the OOM killer struck in its cgroup */
};

#define SPW_SANDBOX_FDS 4 /* pidfd, ctl, out, err */

/* The spawner process: serves the daemon on fd until EOF, then kills
 * every sandbox it made and exits (spawner_server.c). */
_Noreturn void spawner_serve(int fd, const spawner_policy *pol);

#endif
