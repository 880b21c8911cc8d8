/*
 * package.h — turns what a client uploaded (a files map, a .tar.gz or a
 * .zip) into a directory of code, refusing anything that could escape it.
 */
#ifndef HEARTH_PACKAGE_H
#define HEARTH_PACKAGE_H

#include <stddef.h>
#include <jansson.h>

#define PACKAGE_MAX_COMPRESSED (50u * 1024 * 1024)  /* what Lambda accepts zipped */
#define PACKAGE_MAX_UNPACKED   (250u * 1024 * 1024) /* Lambda's unzipped limit */
#define PACKAGE_MAX_ENTRIES    10000

typedef struct package_limits {
    size_t max_unpacked; /* total bytes of regular file content */
    size_t max_entries;  /* files + directories + links */
} package_limits;

/* Fills `lim` with the defaults above. */
void package_limits_default(package_limits *lim);

/*
 * Unpacks a .tar.gz (or .tar) or .zip held in memory into `dest_dir`, which
 * must exist and be empty. Format is detected from the bytes, not trusted
 * from the client. Refused, with -EINVAL and a sentence in `err`: absolute
 * paths, any ".." component, symlinks whose target leaves the package,
 * hard links to anything not already unpacked, device/fifo/socket entries,
 * more than the limits, unreadable/corrupt archives, duplicate paths that
 * would replace a directory. Files are created 0644 (0755 when executable
 * in the archive), directories 0755, owned by the caller.
 * Returns 0, -EINVAL (bad package: `err` says why), or another negative
 * errno for a local failure. On any error `dest_dir` may hold partial
 * content: the caller removes it with fsutil_remove_tree().
 */
int package_unpack_archive(const void *data, size_t len, const char *dest_dir,
                           const package_limits *lim, char *err, size_t errlen);

/*
 * Writes a JSON object {"relative/path": "text", ...} into `dest_dir` under
 * the same path rules and limits. Values must be strings.
 * Returns 0, -EINVAL with `err`, or a negative errno.
 */
int package_write_files(const json_t *files, const char *dest_dir, const package_limits *lim,
                        char *err, size_t errlen);

/* Copies the code folder `src` (an installed version: already checked)
 * into the empty folder `dest_dir`: folders, regular files with their
 * mode & 0755, symlinks as they are; nothing is followed. For a new
 * version with the same code (the AWS API's UpdateFunctionConfiguration).
 * Returns 0 or a negative errno. */
int package_copy_tree(const char *src, const char *dest_dir);

#endif
