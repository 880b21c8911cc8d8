/*
 * sandbox_cgroup.c — cgroup limits for workers: memory (swap off), pids and
 * CPU, one leaf per worker under a "hearth-<pid>" folder that sits in the
 * daemon's own cgroup of each controller, v2 where the controller is on the
 * unified hierarchy and enabled, v1 otherwise. On v2 the daemon may first
 * have to step into a "hearthd" leaf of its own cgroup (see
 * move_self_aside).
 *
 * Owns discovery (/proc/self/cgroup + /proc/self/mountinfo), the folders
 * it creates, and the leaves' lifetime: create, enter (child side), kill
 * everything left, remove.
 *
 * Must never: create anything outside its hearth-<pid> folders (and the
 * v2 "hearthd" leaf) or at a hierarchy root it was not placed in; signal
 * a process it has not just seen inside a leaf (pids are recycled: each
 * kill goes through a pidfd whose process is re-checked against the
 * leaf); run anything but write() in sandbox_cgroup_enter (it runs
 * between fork and exec); leave a directory or fd behind when an
 * operation fails.
 */
#include "sandbox_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CPU_PERIOD_US  100000u
#define CPU_MIN_US     1000u        /* the kernel's smallest CFS quota */
#define SHARE_UNIT     (256u << 20) /* memory that earns the default CPU share */
#define KILL_BATCH     1024         /* pids handled per pass over cgroup.procs */
#define REMOVE_TRIES   200          /* about 2 s of backoff, see pause_briefly */
#define LINE_CAP       (2 * PATH_MAX + 512)
#define SMALL_FILE_CAP 1024

static const char *const ctrl_names[SANDBOX_CGROUP_COUNT] = {"memory", "pids", "cpu"};

struct ctrl {
    int version;               /* 0 = unavailable, 1 or 2 */
    char base[PATH_MAX];       /* our hearth-<pid> folder */
    char note[PATH_MAX + 128]; /* why unavailable, for the report */
};

struct sandbox_cgroups {
    struct ctrl c[SANDBOX_CGROUP_COUNT];
};

/* Where the daemon sits, as learnt from /proc/self/cgroup and mountinfo. */
struct discovery {
    char v1_cg[SANDBOX_CGROUP_COUNT][PATH_MAX];  /* cgroup path inside each v1 hierarchy */
    char v1_dir[SANDBOX_CGROUP_COUNT][PATH_MAX]; /* that cgroup's directory, "" = not found */
    char v2_cg[PATH_MAX];
    char v2_dir[PATH_MAX];
};

/* ---- small file helpers: each returns 0 or -errno ---- */

static int write_at(int dir, const char *file, const char *text)
{
    int fd = openat(dir, file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int rc = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
    close(fd);
    return rc;
}

static int write_in(const char *dir, const char *file, const char *text)
{
    char p[PATH_MAX];
    int len = snprintf(p, sizeof p, "%s/%s", dir, file);
    if (len < 0 || (size_t)len >= sizeof p)
        return -ENAMETOOLONG;
    return write_at(AT_FDCWD, p, text);
}

/* Reads at most cap-1 bytes of dir/file into buf, NUL-terminated. */
static int read_in(const char *dir, const char *file, char *buf, size_t cap)
{
    char p[PATH_MAX];
    int len = snprintf(p, sizeof p, "%s/%s", dir, file);
    if (len < 0 || (size_t)len >= sizeof p)
        return -ENAMETOOLONG;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    ssize_t n = 0;
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
    }
    int rc = n < 0 ? -errno : 0;
    close(fd);
    buf[got] = '\0';
    return rc;
}

/* True when `word` is one of the items of the `sep`-separated list. */
static bool list_has(const char *list, char sep, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && strncmp(p, word, wl) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Reads one line without its newline. Returns 1, 0 at EOF, or -1 for a
 * line longer than the buffer (consumed and to be skipped). */
static int read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return 0;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[n - 1] = '\0';
        return 1;
    }
    if (feof(f))
        return 1;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n')
        ;
    return -1;
}

/* ---- discovery ---- */

/* One "id:controllers:path" line of /proc/self/cgroup. */
static void note_own_cgroup(struct discovery *d, char *line)
{
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c2[1] != '/' || strlen(c2 + 1) >= PATH_MAX)
        return;
    *c1 = '\0';
    *c2 = '\0';
    const char *ctrls = c1 + 1, *path = c2 + 1;
    if (strcmp(line, "0") == 0 && *ctrls == '\0') {
        snprintf(d->v2_cg, sizeof d->v2_cg, "%s", path);
        return;
    }
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (list_has(ctrls, ',', ctrl_names[i]))
            snprintf(d->v1_cg[i], sizeof d->v1_cg[i], "%s", path);
    }
}

/* Calls `note` for each line of `path`; a missing file has no lines. */
static int each_line(const char *path, void (*note)(struct discovery *, char *),
                     struct discovery *d)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char line[LINE_CAP];
    int r;
    while ((r = read_line(f, line, sizeof line)) != 0) {
        if (r > 0)
            note(d, line);
    }
    fclose(f);
    return 0;
}

static int read_own_cgroups(struct discovery *d)
{
    return each_line("/proc/self/cgroup", note_own_cgroup, d);
}

/* Decodes mountinfo's \ooo escapes in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Directory of cgroup `cg` through a mount of hierarchy path `root` at
 * `mnt`; "" when cg is outside what the mount shows or does not exist. */
static void resolve_dir(char *out, const char *mnt, const char *root, const char *cg)
{
    out[0] = '\0';
    if (!cg[0])
        return;
    size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
    if (strncmp(cg, root, rl) != 0 || (cg[rl] != '\0' && cg[rl] != '/'))
        return;
    const char *rest = strcmp(cg + rl, "/") == 0 ? "" : cg + rl;
    int len = snprintf(out, PATH_MAX, "%s%s", mnt, rest);
    struct stat st;
    if (len < 0 || len >= PATH_MAX || stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
        out[0] = '\0';
}

/* One mountinfo line: "id parent dev root mnt opts [optional...] - fstype src superopts". */
static void note_mount(struct discovery *d, char *line)
{
    char *field[6], *save = NULL, *tok = strtok_r(line, " ", &save);
    int n = 0;
    for (; tok && n < 6; tok = strtok_r(NULL, " ", &save))
        field[n++] = tok;
    while (tok && strcmp(tok, "-") != 0)
        tok = strtok_r(NULL, " ", &save);
    char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
    char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
    char *super = source ? strtok_r(NULL, " ", &save) : NULL;
    if (n < 6 || !super)
        return;
    char *root = field[3], *mnt = field[4];
    unescape_octal(root);
    unescape_octal(mnt);
    if (strcmp(fstype, "cgroup2") == 0 && !d->v2_dir[0]) {
        resolve_dir(d->v2_dir, mnt, root, d->v2_cg);
        return;
    }
    if (strcmp(fstype, "cgroup") != 0)
        return;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (!d->v1_dir[i][0] && list_has(super, ',', ctrl_names[i]))
            resolve_dir(d->v1_dir[i], mnt, root, d->v1_cg[i]);
    }
}

static int read_mounts(struct discovery *d)
{
    return each_line("/proc/self/mountinfo", note_mount, d);
}

/* Our controllers (bit i = ctrl_names[i]) listed in dir's `file`. */
static unsigned v2_listed(const char *dir, const char *file)
{
    char buf[SMALL_FILE_CAP];
    if (read_in(dir, file, buf, sizeof buf) < 0)
        return 0;
    buf[strcspn(buf, "\n")] = '\0';
    unsigned mask = 0;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
        if (list_has(buf, ' ', ctrl_names[i]))
            mask |= 1u << i;
    return mask;
}

/* "+memory +pids +cpu" for the controllers in mask, in one write: the
 * kernel applies a write to subtree_control whole or not at all. */
static int enable_for_children(const char *dir, unsigned mask)
{
    char cmd[64] = "";
    size_t used = 0;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
        if (mask & (1u << i))
            used += (size_t)snprintf(cmd + used, sizeof cmd - used, "%s+%s", used ? " " : "",
                                     ctrl_names[i]);
    return write_in(dir, "cgroup.subtree_control", cmd);
}

/* cgroup v2 lets a non-root cgroup hand controllers to its children only
 * while it holds no process itself (memory refuses with EBUSY; pids and
 * cpu would instead turn it "threaded", which breaks its children), and a
 * service manager puts the daemon straight into its own cgroup. So before
 * enabling anything the daemon moves into a leaf of that cgroup
 * ("hearthd", kept for the next start) and the workers' folder becomes
 * its sibling. Returns 0 or -errno; on failure we stay put. */
static int move_self_aside(const char *dir)
{
    char leaf[PATH_MAX];
    int len = snprintf(leaf, sizeof leaf, "%s/hearthd", dir);
    if (len < 0 || (size_t)len >= sizeof leaf)
        return -ENAMETOOLONG;
    if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return write_in(leaf, "cgroup.procs", "0"); /* "0": the writer */
}

/* Hands every controller of ours that v2 offers in the daemon's cgroup to
 * that cgroup's children, all or none. Returns the mask now usable there;
 * on failure *err says why and nothing has changed (we moved back). */
static unsigned enable_v2(const struct discovery *d, int *err)
{
    unsigned offered = v2_listed(d->v2_dir, "cgroup.controllers");
    unsigned enabled = v2_listed(d->v2_dir, "cgroup.subtree_control");
    *err = 0;
    if (!offered || (offered & ~enabled) == 0)
        return offered;                        /* nothing v2, or already handed down (delegated) */
    bool at_root = strcmp(d->v2_cg, "/") == 0; /* the root may hold processes */
    if (!at_root && (*err = move_self_aside(d->v2_dir)) < 0)
        return 0;
    *err = enable_for_children(d->v2_dir, offered);
    if (*err == 0)
        return offered;
    if (!at_root) /* others share the cgroup: go back where we were */
        write_in(d->v2_dir, "cgroup.procs", "0");
    return 0;
}

/* Picks v2 or v1 for controller i and notes where the daemon's cgroup is.
 * v2_mask/v2_err: what enable_v2 made of the unified hierarchy. */
static void choose_version(struct ctrl *c, const struct discovery *d, int i, unsigned v2_mask,
                           int v2_err, const char **dir)
{
    *dir = NULL;
    if (v2_mask & (1u << i)) {
        c->version = 2;
        *dir = d->v2_dir;
        return;
    }
    if (d->v1_dir[i][0]) {
        c->version = 1;
        *dir = d->v1_dir[i];
        return;
    }
    if (v2_err < 0)
        snprintf(c->note, sizeof c->note,
                 "cgroup v2: cannot hand it to the children of the daemon's cgroup: %s (that "
                 "cgroup must hold no other process: run hearthd in one of its own, such as a "
                 "systemd service's)",
                 strerror(-v2_err));
    else
        snprintf(c->note, sizeof c->note, "no v2 controller and no v1 hierarchy");
}

/* Settings leaves inherit at creation (v1 copies swappiness and
 * oom_kill_disable from the parent), so they are made once, here. */
static int prepare_base(struct ctrl *c, int i)
{
    if (c->version == 2) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "+%s", ctrl_names[i]);
        return write_in(c->base, "cgroup.subtree_control", cmd);
    }
    if (i != SANDBOX_CGROUP_MEMORY)
        return 0;
    int rc = write_in(c->base, "memory.swappiness", "0");
    if (rc == 0 || rc == -ENOENT)
        rc = write_in(c->base, "memory.oom_control", "0");
    return rc == -ENOENT ? 0 : rc;
}

/* Creates (or adopts a stale) hearth-<pid> in `dir` for controller i.
 * Leaves the controller unavailable, with a note, when that fails. */
static int empty_and_remove(const char *dir);

/* Removes "hearth-<pid>" folders (and their leaves) left in `dir` by a
 * daemon that died without cleaning up (kill -9, a crash): its pid is gone.
 * Best effort; a folder still in use stays. */
static void sweep_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "hearth-", 7) != 0)
            continue;
        long pid = strtol(e->d_name + 7, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char stale[PATH_MAX], leaf[PATH_MAX];
        if (snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name) >= (int)sizeof stale)
            continue;
        DIR *sd = opendir(stale);
        struct dirent *le;
        while (sd && (le = readdir(sd)))
            if (le->d_type == DT_DIR && le->d_name[0] != '.' &&
                snprintf(leaf, sizeof leaf, "%s/%s", stale, le->d_name) < (int)sizeof leaf)
                empty_and_remove(leaf);
        if (sd)
            closedir(sd);
        rmdir(stale);
    }
    closedir(d);
}

static int make_base(struct sandbox_cgroups *cg, int i, const char *dir)
{
    sweep_stale(dir);
    struct ctrl *c = &cg->c[i];
    int len = snprintf(c->base, sizeof c->base, "%s/hearth-%ld", dir, (long)getpid());
    int rc = len < 0 || (size_t)len >= sizeof c->base ? -ENAMETOOLONG : 0;
    bool shared = false, made = false;
    for (int j = 0; rc == 0 && j < i; j++)
        shared |= cg->c[j].version && strcmp(cg->c[j].base, c->base) == 0;
    if (rc == 0 && !shared) {
        made = mkdir(c->base, 0755) == 0 || errno == EEXIST;
        rc = made ? 0 : -errno;
    }
    if (rc == 0)
        rc = prepare_base(c, i);
    if (rc == 0)
        return 0;
    if (made)
        rmdir(c->base);
    snprintf(c->note, sizeof c->note, "cannot set up hearth-%ld in %s: %s", (long)getpid(), dir,
             strerror(-rc));
    c->base[0] = '\0';
    c->version = 0;
    return rc == -ENOMEM ? rc : 0;
}

static void write_report(const struct sandbox_cgroups *cg, char *report, size_t cap)
{
    if (!report || cap == 0)
        return;
    size_t used = 0;
    report[0] = '\0';
    for (int i = 0; i < SANDBOX_CGROUP_COUNT && used < cap; i++) {
        const struct ctrl *c = &cg->c[i];
        int n = c->version ? snprintf(report + used, cap - used, "%s: cgroup v%d at %s\n",
                                      ctrl_names[i], c->version, c->base)
                           : snprintf(report + used, cap - used, "%s: unavailable (%s)\n",
                                      ctrl_names[i], c->note);
        if (n < 0)
            break;
        used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    }
}

int sandbox_cgroup_open(sandbox_cgroups **out, char *report, size_t cap)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct sandbox_cgroups *cg = calloc(1, sizeof *cg);
    struct discovery *d = calloc(1, sizeof *d);
    int rc = cg && d ? 0 : -ENOMEM;
    if (rc == 0)
        rc = read_own_cgroups(d);
    if (rc == 0)
        rc = read_mounts(d);
    int v2_err = 0;
    unsigned v2_mask = rc == 0 && d->v2_dir[0] ? enable_v2(d, &v2_err) : 0;
    for (int i = 0; rc == 0 && i < SANDBOX_CGROUP_COUNT; i++) {
        const char *dir;
        choose_version(&cg->c[i], d, i, v2_mask, v2_err, &dir);
        if (dir)
            rc = make_base(cg, i, dir);
    }
    free(d);
    if (rc < 0) {
        sandbox_cgroup_close(cg);
        return rc;
    }
    write_report(cg, report, cap);
    *out = cg;
    return 0;
}

bool sandbox_cgroup_has(const sandbox_cgroups *cg, const char *controller)
{
    for (int i = 0; cg && controller && i < SANDBOX_CGROUP_COUNT; i++) {
        if (strcmp(controller, ctrl_names[i]) == 0)
            return cg->c[i].version != 0;
    }
    return false;
}

/* Removes the hearth-<pid> folders; a v2 folder shared by several
 * controllers is removed once (later rmdirs see ENOENT). */
void sandbox_cgroup_forget(sandbox_cgroups *cg)
{
    free(cg);
}

void sandbox_cgroup_close(sandbox_cgroups *cg)
{
    if (!cg)
        return;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (cg->c[i].version && cg->c[i].base[0])
            rmdir(cg->c[i].base);
    }
    free(cg);
}

/* ---- leaves ---- */

static void leaf_init(sandbox_cgroup *leaf)
{
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        leaf->procs_fd[i] = -1;
        leaf->path[i][0] = '\0';
    }
}

static bool valid_leaf_name(const char *name)
{
    return name && name[0] && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0 && strlen(name) <= NAME_MAX;
}

static int write_u64_at(int dir, const char *file, uint64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    return write_at(dir, file, num);
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* v1 refuses a memory limit above the memory+swap one with EINVAL: when
 * raising a live leaf's limit, memsw must go first. */
static int limit_memory_v1(int dir, uint64_t bytes)
{
    int rc = write_u64_at(dir, "memory.limit_in_bytes", bytes);
    if (rc == 0)
        rc = write_u64_at(dir, "memory.memsw.limit_in_bytes", bytes);
    else if (rc == -EINVAL && write_u64_at(dir, "memory.memsw.limit_in_bytes", bytes) == 0)
        rc = write_u64_at(dir, "memory.limit_in_bytes", bytes);
    return rc == -ENOENT ? 0 : rc; /* no memsw file: no swap accounting */
}

/* Memory limit with swap off; the OOM killer stays on (inherited from the base). */
static int limit_memory(int dir, int version, uint64_t bytes)
{
    if (version == 2) {
        int rc = bytes ? write_u64_at(dir, "memory.max", bytes) : 0;
        if (rc == 0)
            rc = write_at(dir, "memory.swap.max", "0");
        return rc == -ENOENT ? 0 : rc; /* no swap accounting: no swap to turn off */
    }
    return bytes ? limit_memory_v1(dir, bytes) : 0;
}

static int limit_pids(int dir, uint32_t pids_max)
{
    return pids_max ? write_u64_at(dir, "pids.max", pids_max) : 0;
}

/* A CPU share that grows with memory: 1024 v1 shares / 100 v2 weight per SHARE_UNIT. */
static int share_cpu(int dir, int version, uint64_t memory_bytes)
{
    if (!memory_bytes)
        return 0;
    if (version == 2)
        return write_u64_at(dir, "cpu.weight",
                            clamp_u64(memory_bytes * 100 / SHARE_UNIT, 1, 10000));
    return write_u64_at(dir, "cpu.shares",
                        clamp_u64(memory_bytes / (SHARE_UNIT / 1024), 2, 262144));
}

/* A quota of cpu_millis/1000 CPUs per period; a share that grows with memory. */
static int limit_cpu(int dir, int version, uint32_t cpu_millis, uint64_t memory_bytes)
{
    uint64_t quota =
        clamp_u64((uint64_t)cpu_millis * (CPU_PERIOD_US / 1000), CPU_MIN_US, UINT64_C(1) << 40);
    int rc = 0;
    if (version == 2) {
        char max[64];
        snprintf(max, sizeof max, "%llu %u", (unsigned long long)quota, CPU_PERIOD_US);
        if (cpu_millis)
            rc = write_at(dir, "cpu.max", max);
    } else if (cpu_millis) {
        rc = write_u64_at(dir, "cpu.cfs_period_us", CPU_PERIOD_US);
        if (rc == 0)
            rc = write_u64_at(dir, "cpu.cfs_quota_us", quota);
    }
    return rc == 0 ? share_cpu(dir, version, memory_bytes) : rc;
}

struct limits {
    uint64_t memory_bytes;
    uint32_t pids_max, cpu_millis;
};

static int apply_limits(int dir, int i, int version, const struct limits *l)
{
    switch (i) {
    case SANDBOX_CGROUP_MEMORY:
        return limit_memory(dir, version, l->memory_bytes);
    case SANDBOX_CGROUP_PIDS:
        return limit_pids(dir, l->pids_max);
    default:
        return limit_cpu(dir, version, l->cpu_millis, l->memory_bytes);
    }
}

/* Makes slot i's directory (unless an earlier slot already made the same
 * one), opens its cgroup.procs and applies controller i's limits. On
 * failure the slot is cleared unless the directory is ours to remove. */
static int create_slot(const struct ctrl *c, int i, const char *name, const struct limits *l,
                       sandbox_cgroup *leaf)
{
    int len = snprintf(leaf->path[i], PATH_MAX, "%s/%s", c->base, name);
    if (len < 0 || len >= PATH_MAX) {
        leaf->path[i][0] = '\0';
        return -ENAMETOOLONG;
    }
    bool shared = false;
    for (int j = 0; j < i; j++)
        shared |= strcmp(leaf->path[j], leaf->path[i]) == 0;
    if (!shared && mkdir(leaf->path[i], 0755) < 0) {
        leaf->path[i][0] = '\0'; /* not ours: e.g. EEXIST */
        return -errno;
    }
    int dir = open(leaf->path[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    int rc = 0;
    if (!shared) {
        leaf->procs_fd[i] = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (leaf->procs_fd[i] < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = apply_limits(dir, i, c->version, l);
    close(dir);
    return rc;
}

int sandbox_cgroup_create(sandbox_cgroups *cg, const char *name, uint64_t memory_bytes,
                          uint32_t pids_max, uint32_t cpu_millis, sandbox_cgroup *leaf)
{
    if (!leaf)
        return -EINVAL;
    leaf_init(leaf);
    if (!cg || !valid_leaf_name(name))
        return -EINVAL;
    struct limits l = {memory_bytes, pids_max, cpu_millis};
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (!cg->c[i].version)
            continue;
        int rc = create_slot(&cg->c[i], i, name, &l, leaf);
        if (rc < 0) {
            sandbox_cgroup_destroy(leaf); /* empty leaves: plain rmdir */
            leaf_init(leaf);
            return rc;
        }
    }
    return 0;
}

/* What the memory limit of a live leaf's slot i depends on: the
 * controller's version, told by the v2-only cgroup.controllers. */
static int set_slot_memory(const char *path, int i, uint64_t memory_bytes)
{
    int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    int version = faccessat(dir, "cgroup.controllers", F_OK, 0) == 0 ? 2 : 1;
    int rc = i == SANDBOX_CGROUP_MEMORY ? limit_memory(dir, version, memory_bytes)
                                        : share_cpu(dir, version, memory_bytes);
    close(dir);
    return rc;
}

int sandbox_cgroup_set_memory(const sandbox_cgroup *leaf, uint64_t memory_bytes)
{
    if (!leaf || !memory_bytes)
        return -EINVAL;
    int rc = 0;
    if (leaf->path[SANDBOX_CGROUP_MEMORY][0])
        rc =
            set_slot_memory(leaf->path[SANDBOX_CGROUP_MEMORY], SANDBOX_CGROUP_MEMORY, memory_bytes);
    if (rc == 0 && leaf->path[SANDBOX_CGROUP_CPU][0])
        rc = set_slot_memory(leaf->path[SANDBOX_CGROUP_CPU], SANDBOX_CGROUP_CPU, memory_bytes);
    return rc;
}

/* Async-signal-safe: write() only. */
int sandbox_cgroup_enter(const sandbox_cgroup *leaf)
{
    if (!leaf)
        return -EINVAL;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (leaf->procs_fd[i] < 0)
            continue;
        ssize_t n;
        do
            n = write(leaf->procs_fd[i], "0", 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        if (n != 1)
            return -EIO;
    }
    return 0;
}

/* Value of the "key N" line of a flat-keyed cgroup file, or 0. */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtoull(p + kl + 1, NULL, 10);
    }
    return 0;
}

bool sandbox_cgroup_oom_killed(const sandbox_cgroup *leaf)
{
    if (!leaf || !leaf->path[SANDBOX_CGROUP_MEMORY][0])
        return false;
    char buf[SMALL_FILE_CAP];
    const char *dir = leaf->path[SANDBOX_CGROUP_MEMORY];
    if (read_in(dir, "memory.oom_control", buf, sizeof buf) < 0 &&
        read_in(dir, "memory.events", buf, sizeof buf) < 0)
        return false;
    return keyed_value(buf, "oom_kill") > 0;
}

/* ---- killing what is left ---- */

/* Reads up to `cap` pids from dir/cgroup.procs. Returns the count or -errno. */
static int read_pids(const char *dir, pid_t *pids, int cap)
{
    char p[PATH_MAX];
    int len = snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    if (len < 0 || (size_t)len >= sizeof p)
        return -ENAMETOOLONG;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int count = 0;
    long cur = -1;
    char buf[4096];
    ssize_t n;
    while (count < cap && (n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (ssize_t k = 0; k < n && count < cap; k++) {
            if (buf[k] >= '0' && buf[k] <= '9') {
                cur = (cur < 0 ? 0 : cur) * 10 + (buf[k] - '0');
                if (cur > INT32_MAX)
                    cur = INT32_MAX;
            } else if (cur >= 0) {
                pids[count++] = (pid_t)cur;
                cur = -1;
            }
        }
    }
    if (cur > 0 && count < cap)
        pids[count++] = (pid_t)cur;
    close(fd);
    return count;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

/* One pass: pin each listed process with a pidfd, list again, and kill
 * only pinned processes still listed — a pid recycled between the two
 * reads then names a dead pidfd or a process that is in the leaf. */
static void kill_listed(const char *dir)
{
    pid_t first[KILL_BATCH], again[KILL_BATCH];
    int pidfd[KILL_BATCH];
    int n = read_pids(dir, first, KILL_BATCH);
    if (n <= 0)
        return;
    for (int k = 0; k < n; k++)
        pidfd[k] = (int)syscall(SYS_pidfd_open, first[k], 0);
    int m = read_pids(dir, again, KILL_BATCH);
    if (m > 0)
        qsort(again, (size_t)m, sizeof again[0], cmp_pid);
    for (int k = 0; k < n; k++) {
        if (pidfd[k] < 0)
            continue;
        if (m > 0 && bsearch(&first[k], again, (size_t)m, sizeof again[0], cmp_pid))
            syscall(SYS_pidfd_send_signal, pidfd[k], SIGKILL, NULL, 0);
        close(pidfd[k]);
    }
}

static void kill_members(const char *dir)
{
    if (write_in(dir, "cgroup.kill", "1") == 0)
        return; /* v2: the kernel kills them all, forks included */
    kill_listed(dir);
}

/* 50 µs doubling up to 10 ms: a killed process usually exits at once. */
static void pause_briefly(int attempt)
{
    long us = attempt < 8 ? 50L << attempt : 10000L;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* Kills what is left in `dir` until it can be removed. */
static int empty_and_remove(const char *dir)
{
    for (int attempt = 0; attempt < REMOVE_TRIES; attempt++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        kill_members(dir);
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        pause_briefly(attempt);
    }
    return -EBUSY;
}

int sandbox_cgroup_destroy(sandbox_cgroup *leaf)
{
    if (!leaf)
        return -EINVAL;
    int rc = 0;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (leaf->procs_fd[i] >= 0)
            close(leaf->procs_fd[i]);
        leaf->procs_fd[i] = -1;
    }
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (!leaf->path[i][0])
            continue;
        int r = empty_and_remove(leaf->path[i]);
        if (r == 0)
            leaf->path[i][0] = '\0';
        else if (rc == 0)
            rc = r;
    }
    return rc;
}
