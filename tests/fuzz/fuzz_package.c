/*
 * fuzz_package.c — package unpacking: what a client uploads as a
 * function's code. Input starting with '{' is a files map (JSON, as in
 * PUT's "files"); anything else is an archive (.tar.gz, .tar, .zip: the
 * format is told from the bytes). Each input is unpacked into a fresh
 * folder inside a private parent, with small limits; the oracle beyond the
 * sanitizers: nothing may appear in the parent beside that folder (an
 * entry that escaped), and a refusal is -EINVAL with a sentence.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "fsutil.h"
#include "package.h"

static char parent[512];

static void check_parent_holds_only(const char *name)
{
    DIR *d = opendir(parent);
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, name)) {
            fprintf(stderr, "fuzz_package: '%s' escaped into %s\n", e->d_name, parent);
            abort();
        }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!parent[0]) {
        /* run.sh points TMPDIR into the build folder: nothing is left in /tmp. */
        const char *tmp = getenv("TMPDIR");
        snprintf(parent, sizeof parent, "%s/hearth-fuzz-pkg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(parent))
            abort();
    }
    char dest[600];
    snprintf(dest, sizeof dest, "%s/code", parent);
    if (mkdir(dest, 0700) < 0)
        abort();
    /* Small limits: the checks are the same, the disk stays small. */
    package_limits lim = {.max_unpacked = 1u << 20, .max_entries = 64};
    char err[512] = "";
    int rc;
    if (size && data[0] == '{') {
        json_t *files = json_loadb((const char *)data, size, 0, NULL);
        rc = json_is_object(files) ? package_write_files(files, dest, &lim, err, sizeof err) : 0;
        json_decref(files);
    } else {
        rc = package_unpack_archive(data, size, dest, &lim, err, sizeof err);
    }
    if (rc == -EINVAL && !err[0])
        abort(); /* a refusal always says why */
    check_parent_holds_only("code");
    if (fsutil_remove_tree(dest) < 0)
        abort();
    check_parent_holds_only("");
    return 0;
}
