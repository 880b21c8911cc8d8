/*
 * spawner_check.c — the one check of a worker's spec against the
 * spawner's policy (spawner.c's header says what it keeps a compromised
 * daemon from asking for). Apart from the rest of the spawner so that
 * what a spawn message may ask can be tested alone (tests/fuzz).
 *
 * Must never: trust a field of the spec it is given; every one is held to
 * the policy or replaced by the policy's own.
 */
#include "spawner.h"

#include "egress.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spawn_msg.h"
#include "validate.h"

static int check_interpreter(const spawner_policy *pol, const sandbox_spec *spec)
{
    for (const char *const *i = pol->interpreters; spec->argv[0] && *i; i++)
        if (strcmp(*i, spec->argv[0]) == 0)
            return 0;
    return -EPERM;
}

static int check_identity(const spawner_policy *pol, const sandbox_spec *spec)
{
    if (!pol->uid_count)
        return 0; /* not root: the sandbox keeps our identity whatever is asked */
    if (spec->uid < pol->uid_base || spec->uid - pol->uid_base >= pol->uid_count ||
        spec->gid != spec->uid)
        return -EPERM;
    return 0;
}

/* A function's folder under the code root; a pre-built sandbox (shaped by
 * the spawner itself) holds the code root, and attaches one folder later. */
static int check_code_dir(const spawner_policy *pol, const sandbox_spec *spec)
{
    if (spec->prebuilt)
        return strcmp(spec->code_dir, pol->code_root) == 0 ? 0 : -EPERM;
    char real[PATH_MAX];
    size_t root_len = strlen(pol->code_root);
    if (!realpath(spec->code_dir, real) || strncmp(real, pol->code_root, root_len) != 0 ||
        real[root_len] != '/')
        return -EPERM;
    return 0;
}

/* It becomes the uts name and a line of the sandbox's /etc/hosts. */
static int check_hostname(const sandbox_spec *spec)
{
    return !spec->hostname || validate_function_name(spec->hostname) ? 0 : -EPERM;
}

/* Names only: the values are read here, from our own folder, by name.
 * A worker outside a private root would have nowhere private to put them. */
static int check_secrets(const spawner_policy *pol, sandbox_spec *spec)
{
    spec->has_secrets = false;
    spec->secrets_fd = -1;
    if (!spec->secrets || !spec->secrets[0]) {
        spec->secrets = NULL;
        return 0;
    }
    if (!pol->isolate)
        return -EOPNOTSUPP;
    for (size_t i = 0; spec->secrets[i]; i++)
        if (i >= VALIDATE_SECRETS_MAX || !validate_secret_name(spec->secrets[i]))
            return -EPERM;
    return 0;
}

/* Walks the message's fields: each limit down to its ceiling, each grant
 * refused unless the policy gives it. */
static int hold_to_limits(const spawner_limits *lim, sandbox_spec *spec)
{
    size_t n;
    const spawnmsg_field *f = spawnmsg_fields(&n);
    for (size_t i = 0; i < n; i++, f++) {
        if (f->rule != SPAWNMSG_LIMIT && f->rule != SPAWNMSG_AMOUNT && f->rule != SPAWNMSG_GRANT)
            continue; /* ID: check_identity; OWN: replaced below */
        uint64_t asked = spawnmsg_get(spec, f->offset, f->size);
        uint64_t most = spawnmsg_get(lim, f->limit_offset, f->size);
        if (f->rule == SPAWNMSG_GRANT && asked && !most)
            return -EPERM;
        if (f->rule != SPAWNMSG_GRANT && (asked > most || (f->rule == SPAWNMSG_LIMIT && !asked)))
            spawnmsg_set(spec, f->offset, f->size, most);
    }
    return 0;
}

int spawner_check(const spawner_policy *pol, sandbox_spec *spec)
{
    int rc = check_interpreter(pol, spec);
    if (rc == 0)
        rc = check_identity(pol, spec);
    if (rc == 0)
        rc = check_code_dir(pol, spec);
    if (rc == 0)
        rc = check_hostname(spec);
    if (rc == 0)
        rc = check_secrets(pol, spec);
    if (rc == 0)
        rc = hold_to_limits(&pol->limits, spec);
    if (rc < 0)
        return rc;
    if (spec->egress && (spec->host_network || !pol->isolate || !pol->egress))
        return -EPERM;
    spec->isolate = pol->isolate;
    spec->cgroups = pol->cgroups;
    spec->filter = pol->filter;
    spec->resolver = spec->egress ? pol->egress->dns_addr : 0;
    return 0;
}
