/*
 * topics.h — topics: names that functions subscribe to ("subscriptions")
 * and that a publish fans out over, one durable asynchronous delivery per
 * subscriber. Owns the topic-name rule and the index topic → subscribers,
 * kept up to date from functions' configs. Deliveries themselves are
 * ordinary invocations (events.h).
 */
#ifndef HEARTH_TOPICS_H
#define HEARTH_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "registry.h"

#define TOPIC_NAME_MAX          63 /* as a function name: a path segment of the same size */
#define TOPIC_SUBSCRIPTIONS_MAX 32 /* topics one function may list */

typedef struct topics topics;

/* 1–63 of [a-z0-9._-], starting with a letter or digit. */
bool topic_name_valid(const char *name);

/* The "subscriptions" setting: a list of distinct topic names. 0, or -1
 * with a sentence in err (which may be NULL). */
int topics_check_subscriptions(const json_t *v, char *err, size_t cap);

topics *topics_new(void);
void topics_free(topics *t); /* accepts NULL */

/* cfg is its function's current config: its subscriptions replace the
 * ones it had. 0 or -ENOMEM. */
int topics_update(topics *t, const fn_config *cfg);
void topics_remove(topics *t, const char *function);

typedef int (*topics_visit_fn)(const char *function, void *ud);
/* Visits the subscribers of `topic` by name; non-zero stops and is returned. */
int topics_each_subscriber(const topics *t, const char *topic, topics_visit_fn fn, void *ud);

typedef int (*topics_list_fn)(const char *topic, const char *const *functions, size_t n, void *ud);
/* Visits every topic that has subscribers, sorted by name. */
int topics_each(const topics *t, topics_list_fn fn, void *ud);

#endif
