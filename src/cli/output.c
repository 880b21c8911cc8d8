/*
 * output.c — tables and JSON on stdout (see output.h).
 *
 * Cells are printed with their control characters replaced by '?' (out_defang): an
 * answer (a log message, a function's error) must not drive the terminal.
 */
#include "output.h"
#include "http.h"
#include "safetext.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t out_defang(char *s, size_t len, bool keep_lines)
{
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = safetext_utf8_next(s + i, len - i, &cp);
        bool line = keep_lines && (cp == '\n' || cp == '\t');
        if (!line &&
            (cp < 0x20 || cp == 0x7f || cp == SAFETEXT_ILL_FORMED || safetext_breaks_lines(cp))) {
            s[out++] = '?';
        } else {
            memmove(s + out, s + i, n);
            out += n;
        }
        i += n;
    }
    return out;
}

int out_write(const cli *c, const char *p, size_t len)
{
    if (!c->tty_out)
        return fwrite(p, 1, len, stdout) == len ? 0 : -1;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, p, len);
    size_t n = out_defang(copy, len, true);
    int rc = fwrite(copy, 1, n, stdout) == n ? 0 : -1;
    free(copy);
    return rc;
}

void out_answer(const cli *c, const char *p, size_t len)
{
    out_write(c, p, len);
    if (c->tty_out && len && p[len - 1] != '\n')
        putchar('\n');
}

void table_init(table *t, ...)
{
    memset(t, 0, sizeof(*t));
    va_list ap;
    va_start(ap, t);
    const char *h;
    while (t->ncols < TABLE_COLS_MAX && (h = va_arg(ap, const char *)) != NULL)
        t->head[t->ncols++] = h;
    va_end(ap);
}

static char *clean_copy(const char *s)
{
    char *d = strdup(s ? s : "-");
    if (d)
        d[out_defang(d, strlen(d), false)] = '\0';
    return d;
}

int table_add(table *t, ...)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, cap * t->ncols * sizeof(char *));
        if (!cells)
            return -ENOMEM;
        t->cells = cells;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, t);
    char **row = t->cells + t->nrows * t->ncols;
    int rc = 0;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = clean_copy(va_arg(ap, const char *));
        if (!row[i])
            rc = -ENOMEM;
    }
    va_end(ap);
    t->nrows++;
    return rc;
}

void table_flush(table *t, const cli *c)
{
    size_t width[TABLE_COLS_MAX] = {0};
    for (size_t i = 0; i < t->ncols; i++)
        width[i] = strlen(t->head[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t w = s ? strlen(s) : 1;
            if (w > width[i])
                width[i] = w;
        }
    if (c->tty_out) {
        for (size_t i = 0; i < t->ncols; i++) {
            if (i + 1 < t->ncols)
                printf("%-*s  ", (int)width[i], t->head[i]);
            else
                printf("%s\n", t->head[i]);
        }
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            s = s ? s : "-";
            if (i + 1 == t->ncols)
                printf("%s\n", s);
            else if (c->tty_out)
                printf("%-*s  ", (int)width[i], s);
            else
                printf("%s\t", s);
        }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void out_json(const cli *c, const json_t *j)
{
    size_t flags = JSON_ENCODE_ANY | (c->tty_out ? JSON_INDENT(2) : JSON_COMPACT);
    char *s = json_dumps(j, flags);
    if (s) {
        puts(s);
        free(s);
    }
}

const char *out_field(const json_t *obj, const char *key, char *tmp, size_t n)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(tmp, n, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, n, "%g", json_real_value(v));
        return tmp;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    if (json_is_array(v)) {
        size_t i, used = 0;
        json_t *e;
        tmp[0] = '\0';
        bool strings = true;
        json_array_foreach(v, i, e) strings = strings && json_is_string(e);
        if (strings) {
            json_array_foreach(v, i, e)
            {
                int w = snprintf(tmp + used, n - used, "%s%s", i ? "," : "", json_string_value(e));
                if (w < 0 || (size_t)w >= n - used)
                    break;
                used += (size_t)w;
            }
            return json_array_size(v) ? tmp : NULL;
        }
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return NULL;
    snprintf(tmp, n, "%s", s);
    free(s);
    return tmp;
}

int out_get(const cli *c, const char *path, out_table_fn to_table)
{
    json_t *ans;
    int rc = http_json_call(c, "GET", path, NULL, &ans);
    if (rc == CLI_OK && c->json) {
        out_json(c, ans);
    } else if (rc == CLI_OK) {
        table t;
        to_table(&t, ans);
        table_flush(&t, c);
    }
    json_decref(ans);
    return rc;
}
