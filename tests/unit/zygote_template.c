/*
 * zygote_template.c — a runtime template (zygote) for tests/unit/test_zygote.c
 * that needs no interpreter: it serves zygote.c's requests through
 * src/zygote_child.c exactly as runtimes/python3/zygote.py does, and each
 * worker it becomes reports, as one tab-separated line of key=value on fd
 * 3, what it sees of itself (identity, pids, environment, command line,
 * fds, cwd, capabilities, seccomp, dumpable, and on request copies of a
 * string in its memory). It then waits for one byte on fd 3, so that the
 * test can look at it from outside, and exits 0 (4 on EOF).
 *
 * Owns nothing but that report. Must never: allocate or touch stdio in
 * the template itself (each worker is a copy of it), or be built with the
 * sanitizers (a real template never is).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "proc_helpers.h"

#define CTL_FD     3
#define PROC_CAP   200 /* bytes of /proc/self/environ and cmdline reported */
#define LINE_CAP   4096
#define NEEDLE_CAP 64

int hz_init(int fd);
int hz_next(void);
const char *hz_env(int i);

static char line[LINE_CAP];
static size_t line_len;
/* The only copy of the string the memory scan looks for (see scan_memory). */
static char needle[NEEDLE_CAP];

/* Appends "\tkey=value" to the report, tabs and newlines in value blanked. */
static void add(const char *key, const char *fmt, ...)
{
    char value[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    for (char *p = value; *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    int n = snprintf(line + line_len, sizeof line - line_len, "\t%s=%s", key, value);
    if (n > 0 && (size_t)n < sizeof line - line_len)
        line_len += (size_t)n;
}

/* Up to PROC_CAP bytes of a NUL-separated /proc file, NULs shown as '|'. */
static void add_proc_strings(const char *key, const char *path)
{
    char buf[PROC_CAP + 1];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, PROC_CAP);
        close(fd);
    }
    if (n < 0) {
        add(key, "(unreadable)");
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = '|';
    buf[n] = '\0';
    add(key, "%s", buf);
}

/* The value of "Name:" in /proc/self/status, whitespace trimmed. */
static void add_status_field(const char *key, const char *name)
{
    FILE *fp = fopen("/proc/self/status", "re");
    char buf[512];
    size_t len = strlen(name);
    while (fp && fgets(buf, sizeof buf, fp)) {
        if (strncmp(buf, name, len) == 0 && buf[len] == ':') {
            char *v = buf + len + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            add(key, "%s", v);
            fclose(fp);
            return;
        }
    }
    if (fp)
        fclose(fp);
    add(key, "(missing)");
}

/* hz_env's view of the environment, entries joined by '|'. */
static void add_hz_env(void)
{
    char buf[PROC_CAP + 1];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; hz_env(i) && len < PROC_CAP; i++) {
        int n = snprintf(buf + len, sizeof buf - len, "%s|", hz_env(i));
        len = n < 0 ? len : len + (size_t)n;
    }
    add("hzenv", "%s", buf);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ZT_SCAN holds a string hex-encoded (so that the environment does not
 * contain it). Counts its copies in every private writable mapping but
 * our own decoded one: a copy means an earlier request's data survived
 * in the template and reached this worker. -1 when not asked. */
static long scan_memory(void)
{
    const char *hex = getenv("ZT_SCAN");
    if (!hex || strlen(hex) % 2 || strlen(hex) / 2 >= NEEDLE_CAP)
        return -1;
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        needle[i] = (char)(hi * 16 + lo);
    }
    FILE *fp = fopen("/proc/self/maps", "re");
    if (!fp)
        return -1;
    long hits = 0;
    char buf[512];
    while (fgets(buf, sizeof buf, fp)) {
        unsigned long start, end;
        char perms[8];
        if (sscanf(buf, "%lx-%lx %7s", &start, &end, perms) != 3 || strcmp(perms, "rw-p") != 0)
            continue;
        for (const char *p = (const char *)start, *stop = (const char *)end; p < stop;) {
            const char *hit = memmem(p, (size_t)(stop - p), needle, n);
            if (!hit)
                break;
            hits += hit != needle;
            p = hit + 1;
        }
    }
    fclose(fp);
    return hits;
}

static void report(void)
{
    char cwd[512];
    const char *mark = getenv("ZT_MARK");
    add("uid", "%u", (unsigned)getuid());
    add("gid", "%u", (unsigned)getgid());
    add("pid", "%d", (int)getpid());
    add("ppid", "%d", (int)getppid());
    add("mark", "%s", mark ? mark : "(unset)");
    add_proc_strings("environ", "/proc/self/environ");
    add_proc_strings("cmdline", "/proc/self/cmdline");
    add_hz_env();
    add("highfds", "%d", proc_count_fds(4));
    add("cwd", "%s", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
    add_status_field("capeff", "CapEff");
    add_status_field("nnp", "NoNewPrivs");
    add_status_field("seccomp", "Seccomp");
    add("dumpable", "%d", prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L));
    add("scan", "%ld", scan_memory());
    line[line_len++] = '\n';
    for (size_t off = 0; off < line_len;) {
        ssize_t w = write(CTL_FD, line + off, line_len - off);
        if (w <= 0)
            _exit(5);
        off += (size_t)w;
    }
}

int main(void)
{
    if (hz_init(CTL_FD) != 0)
        return 1;
    for (;;) {
        int r = hz_next();
        if (r < 0)
            return 0; /* the spawner is gone */
        if (r == 1)
            break;
    }
    report();
    char byte;
    return read(CTL_FD, &byte, 1) == 1 ? 0 : 4;
}
