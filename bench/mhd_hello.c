/*
 * mhd_hello.c — the benchmark baseline: a bare libmicrohttpd server that
 * answers every request with "hello".
 *
 * It drives MHD exactly the way hearthd's gateway does (src/gateway.c):
 * MHD_USE_EPOLL without threads of its own, MHD's epoll fd watched from our
 * own epoll loop with a timeout from MHD_get_timeout(), and a non-blocking
 * MHD_run() on every wake-up. The same MHD options (connection limit,
 * memory limit, backlog) are set, so the gap between this and hearthd is
 * the cost of Hearth itself, not of a different MHD mode. MHD's internal
 * epoll thread is deliberately not used: it stalls when exactly 128 or 256
 * connections are ready at once (DESIGN.md §7).
 *
 * Usage: mhd_hello PORT   (binds 127.0.0.1 only; PORT 0 picks a free one)
 * Prints the bound port on stdout, one line, then serves until SIGTERM or
 * SIGINT. Request bodies are read and dropped.
 *
 * Must never: listen on anything but loopback, or allocate per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static const char hello[] = "hello";
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* Answers once the whole request (body included) has been read; the
 * response object is shared and never freed while the daemon runs. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **ctx)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    static int seen;
    if (*ctx == NULL) {
        *ctx = &seen; /* first call: headers only */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, cls);
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

/* MHD_get_timeout() in ms, clamped for epoll_wait; -1 when MHD has none. */
static int next_timeout(struct MHD_Daemon *d)
{
    MHD_UNSIGNED_LONG_LONG to;
    if (MHD_get_timeout(d, &to) != MHD_YES)
        return -1;
    return to > INT_MAX ? INT_MAX : (int)to;
}

/* Our loop, shaped like hearthd's uv loop: wait on MHD's epoll fd, then
 * let MHD do whatever is ready without blocking. */
static int serve(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = info->epoll_fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0) {
        int err = -errno;
        close(ep);
        return err;
    }
    while (!stopping) {
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, next_timeout(d));
        if (n < 0 && errno != EINTR) {
            int err = -errno;
            close(ep);
            return err;
        }
        MHD_run(d);
    }
    close(ep);
    return 0;
}

int main(int argc, char **argv)
{
    uint16_t port;
    if (argc != 2 || parse_port(argv[1], &port) < 0) {
        fprintf(stderr, "usage: mhd_hello PORT\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wake epoll_wait */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof hello - 1, (void *)hello, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return 1;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access, resp, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16384,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(128 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!d) {
        perror("mhd_hello: MHD_start_daemon");
        MHD_destroy_response(resp);
        return 1;
    }
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", (unsigned)pinfo->port);
    fflush(stdout);
    int rc = serve(d);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    if (rc < 0) {
        fprintf(stderr, "mhd_hello: %s\n", strerror(-rc));
        return 1;
    }
    return 0;
}
