/*
 * proc_helpers.h — what the C tests (and their helper programs) read from
 * /proc about the process itself: its open fds and its children.
 * Header-only; every function is static inline.
 */
#ifndef HEARTH_TEST_PROC_HELPERS_H
#define HEARTH_TEST_PROC_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Open fds numbered `lowest` and up, not counting the one that reads the
 * list; -1 when /proc is unreadable. */
static inline int proc_count_fds(int lowest)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strtol(e->d_name, NULL, 10) >= lowest &&
            strtol(e->d_name, NULL, 10) != dirfd(d))
            n++;
    closedir(d);
    return n;
}

/* True when the process has no child, running or zombie. */
static inline bool proc_no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

#endif
