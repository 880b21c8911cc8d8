/*
 * topics.c — the subscriber index: for each topic, the functions whose
 * current config lists it, sorted by name. Small by nature (a function
 * lists at most TOPIC_SUBSCRIPTIONS_MAX topics), rebuilt per function on
 * every deploy and delete; publishing reads it and never the registry.
 */
#include "events/topics.h"

#include "fn_settings.h"
#include "strmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct subscribers {
    char **names; /* sorted */
    size_t n, cap;
} subscribers;

struct topics {
    strmap by_topic; /* topic → subscribers */
};

bool topic_name_valid(const char *name)
{
    size_t len = name ? strnlen(name, TOPIC_NAME_MAX + 1) : 0;
    if (len == 0 || len > TOPIC_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || !strchr("._-", c)))
            return false;
    }
    return true;
}

int topics_check_subscriptions(const json_t *v, char *err, size_t cap)
{
    if (!json_is_array(v) || json_array_size(v) > TOPIC_SUBSCRIPTIONS_MAX) {
        if (err)
            snprintf(err, cap, "must be a list of at most %d topic names", TOPIC_SUBSCRIPTIONS_MAX);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *name = json_string_value(json_array_get(v, i));
        if (!topic_name_valid(name)) {
            if (err)
                snprintf(err, cap,
                         "[%zu] is not a topic name (1-%d of a-z, 0-9, '.', '_', '-', starting "
                         "with a letter or digit)",
                         i, TOPIC_NAME_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, json_string_value(json_array_get(v, j))) == 0) {
                if (err)
                    snprintf(err, cap, "[%zu]: '%s' is listed twice", i, name);
                return -1;
            }
    }
    return 0;
}

topics *topics_new(void)
{
    topics *t = calloc(1, sizeof *t);
    if (t)
        strmap_init(&t->by_topic);
    return t;
}

static void subscribers_free(subscribers *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s);
}

static int free_one(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    subscribers_free(value);
    return 0;
}

void topics_free(topics *t)
{
    if (!t)
        return;
    strmap_each(&t->by_topic, free_one, NULL);
    strmap_release(&t->by_topic);
    free(t);
}

static int add_subscriber(topics *t, const char *topic, const char *function)
{
    subscribers *s = strmap_get(&t->by_topic, topic);
    if (!s) {
        if (!(s = calloc(1, sizeof *s)) || strmap_put(&t->by_topic, topic, s) != 0) {
            free(s);
            return -ENOMEM;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        char **names = realloc(s->names, cap * sizeof *names);
        if (!names)
            return -ENOMEM;
        s->names = names;
        s->cap = cap;
    }
    size_t at = 0;
    while (at < s->n && strcmp(s->names[at], function) < 0)
        at++;
    char *copy = strdup(function);
    if (!copy)
        return -ENOMEM;
    memmove(&s->names[at + 1], &s->names[at], (s->n - at) * sizeof *s->names);
    s->names[at] = copy;
    s->n++;
    return 0;
}

struct removal {
    topics *t;
    const char *function;
    char *emptied[TOPIC_SUBSCRIPTIONS_MAX]; /* a function empties at most its own topics */
    size_t nemptied;
};

static int drop_from(const char *topic, void *value, void *ud)
{
    struct removal *r = ud;
    subscribers *s = value;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], r->function) == 0) {
            free(s->names[i]);
            memmove(&s->names[i], &s->names[i + 1], (s->n - i - 1) * sizeof *s->names);
            s->n--;
            break;
        }
    if (s->n == 0 && r->nemptied < sizeof r->emptied / sizeof *r->emptied)
        r->emptied[r->nemptied++] = strdup(topic);
    return 0;
}

void topics_remove(topics *t, const char *function)
{
    struct removal r = {.t = t, .function = function};
    strmap_each(&t->by_topic, drop_from, &r);
    /* Removing during the walk would move entries under it. */
    for (size_t i = 0; i < r.nemptied; i++) {
        if (r.emptied[i])
            subscribers_free(strmap_remove(&t->by_topic, r.emptied[i]));
        free(r.emptied[i]);
    }
}

int topics_update(topics *t, const fn_config *cfg)
{
    topics_remove(t, cfg->name);
    json_t *list = fnset_json_value(cfg, "subscriptions");
    for (size_t i = 0; i < json_array_size(list); i++) {
        int rc = add_subscriber(t, json_string_value(json_array_get(list, i)), cfg->name);
        if (rc)
            return rc;
    }
    return 0;
}

int topics_each_subscriber(const topics *t, const char *topic, topics_visit_fn fn, void *ud)
{
    const subscribers *s = strmap_get(&t->by_topic, topic);
    for (size_t i = 0; s && i < s->n; i++) {
        int rc = fn(s->names[i], ud);
        if (rc)
            return rc;
    }
    return 0;
}

struct listing {
    const char **topics;
    size_t n;
};

static int collect(const char *topic, void *value, void *ud)
{
    struct listing *l = ud;
    const subscribers *s = value;
    if (s->n)
        l->topics[l->n++] = topic;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int topics_each(const topics *t, topics_list_fn fn, void *ud)
{
    size_t total = t->by_topic.count;
    struct listing l = {calloc(total ? total : 1, sizeof(char *)), 0};
    if (!l.topics)
        return -ENOMEM;
    strmap_each(&t->by_topic, collect, &l);
    qsort(l.topics, l.n, sizeof *l.topics, by_name);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const subscribers *s = strmap_get(&t->by_topic, l.topics[i]);
        rc = fn(l.topics[i], (const char *const *)s->names, s->n, ud);
    }
    free(l.topics);
    return rc;
}
