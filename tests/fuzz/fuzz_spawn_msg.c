/*
 * fuzz_spawn_msg.c — the spawner message decoder: a spawn message as the
 * privileged spawner (spawner_server.c) receives it from the unprivileged
 * daemon, which may be compromised. spawnmsg_decode must refuse or rebuild
 * a spec whose strings lie inside the message; a decoded spec encodes back
 * to a message that decodes to the same spec; spawner_check then holds it
 * to a policy (the same one for every input), and whatever it lets
 * through is within that policy.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn_msg.h"
#include "spawner.h"
#include "validate.h"

static char code_root[PATH_MAX];
static const char *const interpreters[] = {"/usr/bin/python3", "/usr/bin/node",
                                           "/var/runtime/hearth-c-runner", NULL};
static spawner_policy policy;

/* A real code root (check_code_dir resolves paths), made once, at a
 * fixed place so that inputs can name folders in it (the seeds do). */
static void setup(void)
{
    mkdir("/tmp/hearth-fuzz-code", 0755);
    mkdir("/tmp/hearth-fuzz-code/fn", 0755);
    mkdir("/tmp/hearth-fuzz-code/fn/1", 0755);
    if (!realpath("/tmp/hearth-fuzz-code", code_root))
        abort();
    policy.code_root = code_root;
    policy.uid_base = 100000;
    policy.uid_count = 64;
    policy.isolate = true;
    policy.interpreters = interpreters;
    /* Every ceiling set, the grants off (a spec asking for one is refused). */
    size_t n;
    const spawnmsg_field *f = spawnmsg_fields(&n);
    for (size_t i = 0; i < n; i++, f++)
        if (f->rule == SPAWNMSG_LIMIT || f->rule == SPAWNMSG_AMOUNT)
            spawnmsg_set(&policy.limits, f->limit_offset, f->size, f->size == 1 ? 1 : 1000);
}

static bool same_vector(const char *const *a, const char *const *b)
{
    for (; a && *a; a++, b++)
        if (!b || !*b || strcmp(*a, *b))
            return false;
    return !(b && *b) || !a;
}

/* encode(decode(m)) decodes to the same spec. */
static void round_trip(const sandbox_spec *spec, uint8_t bits)
{
    static char again[SPAWNMSG_MAX];
    size_t len = 0;
    if (spawnmsg_encode(spec, bits, again, &len) < 0)
        return; /* a message may hold more than encode writes (it refuses E2BIG) */
    sandbox_spec back;
    static const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    static const char *secrets[VALIDATE_SECRETS_MAX + 1];
    uint8_t bits_back;
    if (spawnmsg_decode(again, len, &back, argv, envp, secrets, NULL, &bits_back) < 0)
        abort();
    size_t n;
    const spawnmsg_field *f = spawnmsg_fields(&n);
    for (size_t i = 0; i < n; i++, f++)
        if (spawnmsg_get(spec, f->offset, f->size) != spawnmsg_get(&back, f->offset, f->size))
            abort();
    if (bits_back != bits || !same_vector(spec->argv, back.argv) ||
        !same_vector(spec->envp, back.envp) || strcmp(spec->code_dir, back.code_dir) ||
        strcmp(spec->hostname, back.hostname) || !same_vector(spec->secrets, back.secrets))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > SPAWNMSG_MAX)
        return 0; /* spawnmsg_recv cuts it: -EMSGSIZE */
    /* The spawner decodes in its receive buffer; strings point into it. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sandbox_spec spec;
    static const char *argv[SPAWNMSG_MAX_STRINGS + 1], *envp[SPAWNMSG_MAX_STRINGS + 1];
    static const char *secrets[VALIDATE_SECRETS_MAX + 1];
    bool use_filter;
    uint8_t bits;
    if (spawnmsg_decode(buf, size, &spec, argv, envp, secrets, &use_filter, &bits) == 0) {
        round_trip(&spec, bits);
        if (spawner_check(&policy, &spec) == 0) {
            if (spec.uid < policy.uid_base || spec.uid - policy.uid_base >= policy.uid_count ||
                !spec.isolate || spec.host_network || spec.egress)
                abort(); /* let through what the policy forbids */
            size_t n;
            const spawnmsg_field *f = spawnmsg_fields(&n);
            for (size_t i = 0; i < n; i++, f++)
                if ((f->rule == SPAWNMSG_LIMIT || f->rule == SPAWNMSG_AMOUNT) &&
                    spawnmsg_get(&spec, f->offset, f->size) >
                        spawnmsg_get(&policy.limits, f->limit_offset, f->size))
                    abort();
        }
    }
    free(buf);
    return 0;
}
