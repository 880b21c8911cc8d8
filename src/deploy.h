/*
 * deploy.h — PUT /v1/functions/{name}: from request body to a durable new
 * version. Parsing, decoding and unpacking run on libuv's threadpool; the
 * registry write and the switch-over run on the loop.
 */
#ifndef HEARTH_DEPLOY_H
#define HEARTH_DEPLOY_H

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>

#include "hearth.h"
#include "package.h"

/* One function's part of a deploy, shared by PUT /v1/functions/{name} and
 * a stack apply (stacks.c): what the threadpool makes of its settings and
 * code, then what the loop installs. On any failure status/code/message
 * hold the client's error. */
typedef struct deploy_unit {
    hearth *h;
    char name[FN_NAME_MAX + 1];
    fn_config cfg;          /* the new version; cfg.digest once unpacked */
    char staging[PATH_MAX]; /* the unpacked code until placed; "" when none */
    char placed[PATH_MAX];  /* <code>/<name>/<version> once placed; "" before */
    package_limits lim;     /* the unpack's bounds: package.h's, or less in a stack */
    uint64_t unpacked;      /* bytes of file content unpacked */
    bool from_query;        /* a raw-archive PUT: a wrong setting is invalid_query */
    int64_t code_from;      /* > 0: copy this version's code, no files/archive (deploy_start_doc) */
    unsigned status;        /* HTTP status of the error */
    const char *code;       /* error code; NULL while all is well */
    char message[512];
} deploy_unit;

/* Starts a unit for `name` (valid). */
void deploy_unit_init(deploy_unit *u, hearth *h, const char *name);

/* Threadpool: checks a JSON settings object as PUT takes it, unpacks its
 * code into a staging folder, seals it and digests it. In a stack
 * (`stack`), the code is "code" (a base64 .tar.gz or .zip) and "files" /
 * "archive" are refused. Returns 0 or -1 with the error in u. */
int deploy_unit_from_json(deploy_unit *u, json_t *doc, bool stack);

/* Loop: the checks that need the daemon's state (the network allowed
 * here, the secrets listed exist). Returns 0 or -1 with the error in u. */
int deploy_unit_check(deploy_unit *u);

/* Loop: moves the staged code to <code>/<name>/<version> and stamps cfg
 * with name, version and time. Returns 0 or -1 with the error in u. */
int deploy_unit_place(deploy_unit *u, int64_t version);

/* Loop: takes placed code away again (the commit failed). */
void deploy_unit_unplace(deploy_unit *u);

/* Frees what the unit holds (a staging folder is removed). */
void deploy_unit_release(deploy_unit *u);

/* Loop, after a commit: tells the scheduler and the events of the new
 * current version of cfg->name, as every deploy does. */
void deploy_announce(hearth *h, const fn_config *cfg);

/* Loop, after a function's registry rows are gone (DELETE, a stack apply):
 * stops its workers, its events, its routes and its log follows, and
 * removes its logs and its code in the background. */
void deploy_forget(hearth *h, const char *name);

/* How a deploy ends, for the caller to render (api.c, aws_lambda_fn.c):
 * the new version, or the error a PUT answers. Borrowed: valid only
 * during the deploy_done_fn call. */
typedef struct deploy_result {
    const fn_config *cfg; /* the new current version, or NULL when refused */
    bool created;         /* the function did not exist before */
    unsigned status;      /* 201 created, 200 updated, or the error's HTTP status */
    const char *code;     /* the error code; NULL on success */
    const char *message;  /* the error's message; "" on success */
} deploy_result;

/* Called once on the loop when a deploy ends; ctx is the caller's (the
 * suspended request). The deploy has been committed and announced when
 * r->cfg is set; the callback answers and audits. */
typedef void (*deploy_done_fn)(hearth *h, void *ctx, const deploy_result *r);

typedef struct deploy_job deploy_job;

/* Starts a deploy of `name` (already validated) from a PUT body of
 * content type `ctype` (may be NULL), borrowed until `done` runs. Returns
 * the job, to take query parameters (deploy_param) and then deploy_run;
 * or NULL when refused at once (415, out of memory), `done` already
 * called. */
deploy_job *deploy_new(hearth *h, const char *name, const char *ctype, const char *body, size_t len,
                       deploy_done_fn done, void *ctx);

/* One query parameter of the PUT (raw bytes, possibly with NUL): the
 * settings of a raw-archive deploy; a JSON deploy refuses any. */
void deploy_param(deploy_job *j, const char *name, size_t name_len, const char *value,
                  size_t value_len);

/* Queues the job's work; ends in its `done`. */
void deploy_run(deploy_job *j);

/* Deploys `name` from `doc`, a settings document in the PUT body's JSON
 * shape (taken: freed by the deploy), through the same checks and
 * commit. With code_from > 0 the package is a copy of that version's
 * code and `doc` holds neither files nor archive. Ends in `done`. */
void deploy_start_doc(hearth *h, const char *name, json_t *doc, int64_t code_from,
                      deploy_done_fn done, void *ctx);

/* Removes a function's code in the background (DELETE). Returns 0 or a
 * negative errno if the code could not be moved aside. */
int deploy_remove_code(hearth *h, const char *name);

/* Removes the code of one version (pruned) in the background. */
int deploy_remove_version(hearth *h, const char *name, int64_t version);

/* After a deploy: versions past --keep-versions go, with their code
 * (never the current one nor one an alias names). */
void deploy_prune(hearth *h, const char *name);

/* Decodes standard base64 (whitespace ignored) into a malloc'd buffer.
 * Returns 0 or -EINVAL. */
int deploy_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
