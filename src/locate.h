/*
 * locate.h — where hearthd's own files are: the runtimes' programs, the
 * helper programs it runs, its default config file. Found from where the
 * running binary is, never from the source tree once installed.
 */
#ifndef HEARTH_LOCATE_H
#define HEARTH_LOCATE_H

#include <limits.h>
#include <stdbool.h>

typedef struct locations {
    bool build_tree;           /* the binary is the one CMake built, in its build folder */
    char runtimes[PATH_MAX];   /* runtimes/<name>/... */
    char c_runner[PATH_MAX];   /* the c runtime's program */
    char zygote_lib[PATH_MAX]; /* what runtime templates load */
    const char *config;        /* the default config file, NULL in a build tree */
} locations;

/* Fills *out from /proc/self/exe. Installed (bindir/hearthd), the rest is
 * found relative to it: ../share/hearth/runtimes, ../libexec/hearth (as
 * GNUInstallDirs laid them out at configure time), and the config is the
 * compiled-in sysconfdir's. In the build folder, the build's own files and
 * the source tree's runtimes. Returns 0 or a negative errno. */
int locate_init(locations *out);

#endif
