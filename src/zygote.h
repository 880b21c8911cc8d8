/*
 * zygote.h — runtime templates: a long-lived process per runtime with the
 * interpreter and its bootstrap already loaded, which clones new workers
 * instead of exec'ing the interpreter again (SOCK, USENIX ATC '18). Used
 * by the spawner process (spawner_server.c), root or rootless.
 */
#ifndef HEARTH_ZYGOTE_H
#define HEARTH_ZYGOTE_H

#include <stddef.h>

#include "sandbox.h"

/* Starts the template `template_argv` for workers whose spec->argv equals
 * `worker_argv` (both borrowed for the process's life). Returns 0, or
 * -errno when it did not come up (then such workers are exec'd as
 * before). */
int zygote_start(const char *const *worker_argv, const char *const *template_argv);

/* sandbox_spawn through the template matching spec->argv, if one is up;
 * a template that fails is stopped for good and the worker exec'd
 * instead. Same contract as sandbox_spawn. */
int zygote_spawn(const sandbox_spec *spec, sandbox_proc *out);

/* sandbox_spawn_begin the same way: through the template, else exec'd.
 * The template's clone is answered within REPLY_MS; the runtime's start
 * is then the caller's to await (sandbox_spawn_finish). */
int zygote_spawn_begin(const sandbox_spec *spec, sandbox_proc *out);

/* Starts the template of every usable runtime that has one, logging a
 * line for each. */
void zygote_start_runtimes(void);

/* How many templates are up. */
size_t zygote_count(void);

/* Stops every template (at exit, or in a child that must not own them). */
void zygote_stop_all(void);

#endif
