/*
 * registry_fixture.h — the fixture the registry's tests share: each test
 * gets its own database in a fresh temporary directory, removed after.
 * Header-only; every function is static.
 */
#ifndef HEARTH_TEST_REGISTRY_FIXTURE_H
#define HEARTH_TEST_REGISTRY_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

struct fixture {
    char dir[64];
    char path[128];
    registry *reg;
};

/* `dir_template` is a mkdtemp template, so that a test left behind names
 * its program. */
static int registry_fixture_setup(void **state, const char *dir_template)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s", dir_template);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/registry.db", f->dir);
    int rc = registry_open(f->path, &f->reg);
    if (rc) {
        print_error("registry_open: %s\n", strerror(-rc));
        rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Removes every file in the directory, not just the database: SQLite's
 * -wal and -shm, and whatever a test made there. */
static int registry_fixture_teardown(void **state)
{
    struct fixture *f = *state;
    registry_close(f->reg);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

#endif
