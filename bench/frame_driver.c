/*
 * frame_driver.c — bench/cold.py's case-5 "bare processes" baseline: drives
 * already started worker processes (runtimes/python3/bootstrap.py, run as
 * hearthd runs it but with no sandbox and no daemon) over their fd-3
 * sockets with the worker protocol's INVOKE frames (docs/protocol.md), a
 * fixed number of calls in flight, round-robin, for a fixed time, and
 * counts the answers. It is the daemon's place in the call minus
 * everything the daemon does: HTTP, scheduling, JSON on its side.
 *
 * Usage: frame_driver WARMUP_MS DURATION_MS INFLIGHT FD:PID...
 *   Each FD is our end of a SOCK_STREAM socket that is the worker's fd 3,
 *   its READY frame already read; PID is the worker's pid (its CPU is read
 *   from /proc/PID/stat). Slot k of the INFLIGHT slots owns workers k,
 *   k+INFLIGHT, ... and keeps one call in flight on them in turn, so no
 *   worker ever has two calls (max_concurrency 1) and every worker gets
 *   the same share. WARMUP_MS of unmeasured calls first, then DURATION_MS
 *   measured; the calls still in flight at the end are drained, not
 *   counted.
 * Prints one line: BARE requests=N duration_us=N workers_cpu_ticks=N
 *   driver_cpu_us=N ticks_per_s=N (CPU of the measured part only).
 * Exit: 0, 1 on a protocol error or a worker gone, 2 on bad arguments.
 * Owns nothing but its arguments' fds (closed at exit).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAGIC    0x48
#define T_INVOKE 2
#define T_RESULT 3
#define HDR      12
#define MAXW     4096

static const char EVENT[] = "{\"name\":\"bench\",\"n\":1}"; /* bench/sched.py's EVENT */

typedef struct {
    int fd, pid;
    char req[512];
    size_t req_len;
} wk;

static wk W[MAXW];
static int NW, NSLOT;
static int next_of[MAXW]; /* per slot: index into its own workers, in turn */

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

/* The INVOKE the daemon would send for POST /v1/functions/bare-I/invoke
 * (src/sched.c's invoke_meta: same keys, same order, same sizes). */
static void build(wk *w, int i)
{
    char meta[400];
    uint64_t deadline = now_ns(CLOCK_REALTIME) / 1000000u + 30000u;
    int ml = snprintf(meta, sizeof meta,
                      "{\"request_id\":\"0f8fad5b-d9cb-469f-a165-%012d\",\"function\":"
                      "\"many-%d\",\"version\":1,\"deadline_ms\":%llu,\"memory_mb\":64,"
                      "\"trigger\":\"invoke\",\"content_type\":\"application/json\"}",
                      i, i, (unsigned long long)deadline);
    size_t bl = sizeof EVENT - 1;
    unsigned char *p = (unsigned char *)w->req;
    p[0] = MAGIC;
    p[1] = T_INVOKE;
    put_be(p + 2, 0, 2);
    put_be(p + 4, (uint64_t)ml, 4);
    put_be(p + 8, bl, 4);
    memcpy(w->req + HDR, meta, (size_t)ml);
    memcpy(w->req + HDR + ml, EVENT, bl);
    w->req_len = HDR + (size_t)ml + bl;
}

static int send_to(int slot)
{
    int i = slot + next_of[slot] * NSLOT;
    if (i >= NW) {
        next_of[slot] = 0;
        i = slot;
    }
    next_of[slot]++;
    wk *w = &W[i];
    size_t off = 0;
    while (off < w->req_len) {
        ssize_t n = write(w->fd, w->req + off, w->req_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "frame_driver: write to worker %d: %s\n", w->pid, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Reads one whole RESULT frame of worker i (blocking: it is on its way). */
static int read_answer(int i)
{
    unsigned char buf[4096];
    size_t have = 0, need = HDR;
    while (have < need) {
        ssize_t n = read(W[i].fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "frame_driver: worker %d: %s\n", W[i].pid, n ? strerror(errno) : "EOF");
            return -1;
        }
        have += (size_t)n;
        if (need == HDR && have >= HDR) {
            uint32_t ml = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | buf[6] << 8 | buf[7];
            uint32_t bl = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | buf[10] << 8 | buf[11];
            need = HDR + (size_t)ml + bl;
            if (buf[0] != MAGIC || buf[1] != T_RESULT || need > sizeof buf) {
                fprintf(stderr, "frame_driver: worker %d: frame type %d, %zu bytes\n", W[i].pid,
                        buf[1], need);
                return -1;
            }
        }
    }
    if (need < HDR + 5 || memcmp(buf + need - 5, "hello", 5) != 0) {
        fprintf(stderr, "frame_driver: worker %d: the answer is not hello\n", W[i].pid);
        return -1;
    }
    return 0;
}

/* utime + stime of every worker, in clock ticks. */
static uint64_t workers_ticks(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < NW; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", W[i].pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p)
            continue;
        unsigned long long ut = 0, st = 0;
        /* after ")": state(3) ... utime is field 14, stime 15 */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            sum += ut + st;
    }
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: frame_driver WARMUP_MS DURATION_MS INFLIGHT FD:PID...\n");
        return 2;
    }
    long warm_ms = atol(argv[1]), dur_ms = atol(argv[2]);
    NSLOT = atoi(argv[3]);
    NW = argc - 4;
    if (dur_ms <= 0 || warm_ms < 0 || NSLOT < 1 || NW > MAXW || NW < NSLOT) {
        fprintf(stderr, "frame_driver: bad arguments (need INFLIGHT <= workers <= %d)\n", MAXW);
        return 2;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < NW; i++) {
        if (sscanf(argv[4 + i], "%d:%d", &W[i].fd, &W[i].pid) != 2) {
            fprintf(stderr, "frame_driver: bad FD:PID %s\n", argv[4 + i]);
            return 2;
        }
        build(&W[i], i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, W[i].fd, &ev) < 0) {
            fprintf(stderr, "frame_driver: epoll_ctl fd %d: %s\n", W[i].fd, strerror(errno));
            return 2;
        }
    }
    for (int s = 0; s < NSLOT; s++)
        if (send_to(s) < 0)
            return 1;
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    uint64_t m_start = t0 + (uint64_t)warm_ms * 1000000u;
    uint64_t m_end = m_start + (uint64_t)dur_ms * 1000000u;
    int measuring = 0, inflight = NSLOT;
    uint64_t count = 0, tick0 = 0, cpu0 = 0, t_start = 0, t_stop = 0, tick1 = 0, cpu1 = 0;
    struct epoll_event evs[64];
    while (inflight) {
        int n = epoll_wait(ep, evs, 64, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "frame_driver: no answer for 1 s (%d in flight)\n", inflight);
            return 1;
        }
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (!measuring && t >= m_start && !t_stop) {
            tick0 = workers_ticks();
            cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            t_start = now_ns(CLOCK_MONOTONIC);
            m_end = t_start + (uint64_t)dur_ms * 1000000u;
            measuring = 1;
        } else if (measuring && t >= m_end) {
            t_stop = t;
            cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
            tick1 = workers_ticks();
            measuring = 0;
        }
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            if (read_answer(i) < 0)
                return 1;
            inflight--;
            if (measuring)
                count++;
            if (!t_stop) {
                if (send_to(i % NSLOT) < 0)
                    return 1;
                inflight++;
            }
        }
    }
    printf("BARE requests=%llu duration_us=%llu workers_cpu_ticks=%llu driver_cpu_us=%llu "
           "ticks_per_s=%ld\n",
           (unsigned long long)count, (unsigned long long)((t_stop - t_start) / 1000u),
           (unsigned long long)(tick1 - tick0), (unsigned long long)((cpu1 - cpu0) / 1000u),
           sysconf(_SC_CLK_TCK));
    return 0;
}
