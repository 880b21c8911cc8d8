/*
 * runtimes.h — the table of runtimes: what each needs on this machine,
 * its version, how its handlers look, and the command that starts it.
 */
#ifndef HEARTH_RUNTIMES_H
#define HEARTH_RUNTIMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct runtime_info {
    const char *name;
    const char *handler_hint; /* what a handler is, with an example, for error messages */
    char version[32];
    bool usable;
    char reason[160]; /* why not usable */
} runtime_info;

/* Probes every runtime (interpreter present, version, runtime program
 * readable from `runtimes_dir`); `c_runner` is the c runtime's program and
 * `zygote_lib` the library templates load (locate.h finds both). Blocking;
 * call once at start. Returns 0 or a negative errno. */
int runtimes_init(const char *runtimes_dir, const char *c_runner, const char *zygote_lib);
void runtimes_release(void);

size_t runtimes_count(void);
const runtime_info *runtimes_at(size_t i);
const runtime_info *runtimes_find(const char *name);

/* Checks `handler` for `runtime`'s rules. Returns 0 or -EINVAL with `err`. */
int runtimes_check_handler(const char *runtime, const char *handler, char *err, size_t errlen);

/* The argv that starts `runtime` (NULL-terminated, borrowed, valid until
 * runtimes_release). NULL for an unknown or unusable runtime. */
const char *const *runtimes_argv(const char *runtime);

/* The argv of `runtime`'s template (zygote.c): a process that loads it
 * once and clones workers. NULL when it has none or it is not built. */
const char *const *runtimes_template_argv(const char *runtime);

/* Address space `runtime` reserves beyond what it uses (bytes): added to
 * memory_mb where an address-space limit stands in for a memory cgroup. */
uint64_t runtimes_vm_reserve(const char *runtime);

/* The interpreters of the usable runtimes, NULL-terminated (borrowed):
 * the only programs the spawner will start. */
const char *const *runtimes_interpreters(void);

#endif
