/*
 * confline.c — one line of hearthd's config file, split (confline.h).
 */
#include "confline.h"

#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* '#' at the start or after a blank; elsewhere it is part of a value. */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++) {
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

int confline_split(char *line, char **key, char **value)
{
    cut_comment(line);
    char *s = trim(line);
    *key = s;
    *value = NULL;
    if (!*s)
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    *key = trim(s);
    *value = trim(eq + 1);
    return 1;
}
