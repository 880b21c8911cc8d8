/*
 * pack.c — packing a directory with libarchive (see pack.h).
 *
 * Owns: the walk, what goes in (regular files, directories, symbolic
 * links), the 50 MiB ceiling.
 * Must never: follow a symbolic link out of the directory (links are
 * stored as links; the daemon refuses those that point outside), or pack
 * device files, FIFOs or sockets (skipped, said on stderr).
 */
#include "pack.h"
#include "cli.h"
#include "ignore.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct packer {
    struct archive *a;
    const ignore *ig;
    buf *out;
    int fail;
} packer;

static la_ssize_t on_write(struct archive *a, void *ud, const void *p, size_t n)
{
    packer *pk = ud;
    if (buf_append(pk->out, p, n) != 0) {
        archive_set_error(a, E2BIG, "the package is over %u MiB compressed", PACK_MAX >> 20);
        return -1;
    }
    return (la_ssize_t)n;
}

static int add_file(packer *pk, const char *full, struct archive_entry *e)
{
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return cli_fail(-1, "%s: %s", full, strerror(errno));
    if (archive_write_header(pk->a, e) != ARCHIVE_OK) {
        close(fd);
        return cli_fail(-1, "%s: %s", full, archive_error_string(pk->a));
    }
    char chunk[65536];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof(chunk))) > 0)
        if (archive_write_data(pk->a, chunk, (size_t)got) < 0) {
            close(fd);
            return cli_fail(-1, "%s: %s", full, archive_error_string(pk->a));
        }
    int err = got < 0 ? errno : 0;
    close(fd);
    if (err)
        return cli_fail(-1, "%s: %s", full, strerror(err));
    return 0;
}

/* Packs the entries of root/rel (rel "" for the root itself). */
static int walk(packer *pk, const char *root, const char *rel)
{
    char dirpath[8192];
    snprintf(dirpath, sizeof(dirpath), "%s%s%s", root, rel[0] ? "/" : "", rel);
    struct dirent **names;
    int n = scandir(dirpath, &names, NULL, alphasort);
    if (n < 0)
        return cli_fail(-1, "%s: %s", dirpath, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc != 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        char sub[4096], full[8192];
        int w = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", name);
        if (w < 0 || (size_t)w >= sizeof(sub)) {
            rc = cli_fail(-1, "%s/%s: path too long", dirpath, name);
            continue;
        }
        snprintf(full, sizeof(full), "%s/%s", root, sub);
        struct stat st;
        if (lstat(full, &st) != 0) {
            rc = cli_fail(-1, "%s: %s", full, strerror(errno));
            continue;
        }
        bool is_dir = S_ISDIR(st.st_mode);
        if (ignore_match(pk->ig, sub, is_dir))
            continue;
        if (!is_dir && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            fprintf(stderr, "hearth: skipping %s: not a file, directory or link\n", full);
            continue;
        }
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_stat(e, &st);
        archive_entry_set_pathname(e, sub);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_nlink(e, is_dir ? 2 : 1);
        archive_entry_set_ino(e, 0);
        archive_entry_set_dev(e, 0);
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t tl = readlink(full, target, sizeof(target) - 1);
            if (tl < 0) {
                rc = cli_fail(-1, "%s: %s", full, strerror(errno));
                archive_entry_free(e);
                continue;
            }
            target[tl] = '\0';
            archive_entry_set_symlink(e, target);
            archive_entry_set_size(e, 0);
        }
        if (S_ISREG(st.st_mode)) {
            rc = add_file(pk, full, e);
        } else {
            if (is_dir)
                archive_entry_set_size(e, 0);
            if (archive_write_header(pk->a, e) != ARCHIVE_OK)
                rc = cli_fail(-1, "%s: %s", full, archive_error_string(pk->a));
            else if (is_dir)
                rc = walk(pk, root, sub);
        }
        archive_entry_free(e);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int pack_dir(const char *dir, buf *out)
{
    buf_init(out, PACK_MAX);
    struct stat st;
    if (stat(dir, &st) != 0)
        return cli_fail(-1, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cli_fail(-1, "%s: not a directory", dir);
    char igpath[4096];
    snprintf(igpath, sizeof(igpath), "%s/.hearthignore", dir);
    ignore ig;
    int rc = ignore_load(&ig, igpath);
    if (rc != 0)
        return cli_fail(-1, "%s: %s", igpath, strerror(-rc));
    packer pk = {.a = archive_write_new(), .ig = &ig, .out = out};
    if (!pk.a || archive_write_add_filter_gzip(pk.a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(pk.a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(pk.a, 1) != ARCHIVE_OK ||
        archive_write_open(pk.a, &pk, NULL, on_write, NULL) != ARCHIVE_OK) {
        rc = cli_fail(-1, "cannot pack %s: %s", dir, pk.a ? archive_error_string(pk.a) : "");
    } else {
        rc = walk(&pk, dir, "");
        if (archive_write_close(pk.a) != ARCHIVE_OK && rc == 0)
            rc = cli_fail(-1, "cannot pack %s: %s", dir, archive_error_string(pk.a));
    }
    if (pk.a)
        archive_write_free(pk.a);
    ignore_release(&ig);
    return rc;
}

char *pack_base64(const char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 4 * ((len + 2) / 3);
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    const unsigned char *p = (const unsigned char *)data;
    size_t j = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        o[j++] = abc[v >> 18];
        o[j++] = abc[(v >> 12) & 63];
        o[j++] = abc[(v >> 6) & 63];
        o[j++] = abc[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        o[j++] = abc[v >> 18];
        o[j++] = abc[(v >> 12) & 63];
        o[j++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        o[j++] = '=';
    }
    o[j] = '\0';
    return o;
}
