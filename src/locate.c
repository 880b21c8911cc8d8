/*
 * locate.c — finds the daemon's own files from where its binary is.
 *
 * The rule: a hearthd whose folder is the build folder CMake compiled into
 * it (HEARTH_BUILD_DIR) uses the build's helpers and the source tree's
 * runtimes, so `make run` and the tests work without installing. Any other
 * hearthd is an installed one and finds everything relative to its own
 * folder with the relative paths GNUInstallDirs gave at configure time
 * (HEARTH_REL_RUNTIMES, HEARTH_REL_LIBEXEC): a tree installed under any
 * PREFIX, or moved whole, or staged in a DESTDIR, finds its own files.
 *
 * Owns: the paths. Must never: look at the source tree from an installed
 * binary, or depend on the current directory.
 */
#include "locate.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"

/* The folder of the running binary, resolved. */
static int exe_dir(char out[PATH_MAX])
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        return -errno;
    exe[n] = '\0';
    return path_format(out, PATH_MAX, "%s", dirname(exe));
}

static bool same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

int locate_init(locations *out)
{
    char dir[PATH_MAX];
    int rc = exe_dir(dir);
    if (rc < 0)
        return rc;
    out->build_tree = same_dir(dir, HEARTH_BUILD_DIR);
    if (out->build_tree) {
        out->config = NULL;
        return path_format(out->runtimes, PATH_MAX, "%s", HEARTH_SOURCE_RUNTIMES) ||
                       path_format(out->c_runner, PATH_MAX, "%s", HEARTH_BUILD_C_RUNNER) ||
                       path_format(out->zygote_lib, PATH_MAX, "%s", HEARTH_BUILD_ZYGOTE_LIB)
                   ? -ENAMETOOLONG
                   : 0;
    }
    out->config = HEARTH_DEFAULT_CONFIG;
    char rt[PATH_MAX], lx[PATH_MAX];
    if (path_format(rt, sizeof rt, "%s/%s", dir, HEARTH_REL_RUNTIMES) ||
        path_format(lx, sizeof lx, "%s/%s", dir, HEARTH_REL_LIBEXEC))
        return -ENAMETOOLONG;
    /* Resolved when there (runtimes_init says so when not). */
    if (!realpath(rt, out->runtimes))
        snprintf(out->runtimes, PATH_MAX, "%s", rt);
    if (!realpath(lx, dir))
        snprintf(dir, sizeof dir, "%s", lx);
    return path_format(out->c_runner, PATH_MAX, "%s/hearth-c-runner", dir) ||
                   path_format(out->zygote_lib, PATH_MAX, "%s/libhearth_zygote.so", dir)
               ? -ENAMETOOLONG
               : 0;
}
