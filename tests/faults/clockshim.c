/*
 * clockshim.c — test-only LD_PRELOAD library: adds a run-time adjustable
 * offset to the wall clock (CLOCK_REALTIME and its coarse variant,
 * gettimeofday, time) of one process and its forks, never the host's.
 *
 * Time namespaces cover only CLOCK_MONOTONIC/BOOTTIME, so a test that
 * steps the wall clock of a daemon alone needs this. The offset, in
 * milliseconds as a little-endian int64, is read from the first 8 bytes of
 * the file named by $HEARTH_CLOCK_OFFSET_FILE, mapped shared at load time
 * (before hearthd drops root), so a step written by the test is seen by
 * the next clock read without a system call. Monotonic clocks pass
 * through untouched. Built by CMake with HEARTH_TESTS; never installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int64_t *offset_ms;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void shim_init(void)
{
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("HEARTH_CLOCK_OFFSET_FILE");
    if (!path)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    void *m = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m != MAP_FAILED)
        offset_ms = m;
}

static void shift(struct timespec *ts)
{
    int64_t off = offset_ms ? *offset_ms : 0;
    int64_t ns = (int64_t)ts->tv_nsec + (off % 1000) * 1000000;
    ts->tv_sec += off / 1000;
    if (ns < 0) {
        ns += 1000000000;
        ts->tv_sec--;
    } else if (ns >= 1000000000) {
        ns -= 1000000000;
        ts->tv_sec++;
    }
    ts->tv_nsec = ns;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!real_clock_gettime)
        real_clock_gettime =
            (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real_clock_gettime(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
        return -1;
    tv->tv_sec = ts.tv_sec; /* glibc declares tv non-null */
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
