/*
 * test_dnsfwd.c — the workers' DNS forwarder, on a real loop and real
 * sockets on 127.0.0.1: the test is both the worker asking and the
 * resolvers answering (plain sockets it reads and writes itself, turning
 * the loop while it waits). Timeouts are cut to 100 ms to keep it short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dnsfwd.h"

#define TEST_TIMEOUT_MS 100
#define WAIT_MS         2000 /* for what must come: generous, it returns at once */
#define QUIET_MS        50   /* for what must not come */

typedef struct fixture {
    uv_loop_t loop;
    dnsfwd *f;
    int asker;               /* the worker's socket */
    int res[3];              /* the resolvers' sockets, -1 when unused */
    int res_tcp[3];          /* their TCP listeners on the same ports, or -1 */
    struct sockaddr_in fwd;  /* where the forwarder listens */
    uint8_t buf[65536];      /* what the last await() read */
    struct sockaddr_in from; /* and where it came from */
} fixture;

/* --- sockets and time --- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A UDP socket on 127.0.0.1 and an ephemeral port; *bound says which. */
static int udp_socket(struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = loopback(0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (bound)
        *bound = a;
    return fd;
}

static struct sockaddr_storage address_of(int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss;
}

static void send_to(int fd, const void *p, size_t n, const struct sockaddr_in *to)
{
    assert_int_equal(sendto(fd, p, n, 0, (const struct sockaddr *)to, sizeof *to), (ssize_t)n);
}

/* --- the loop --- */

/* Turns the loop for `ms`. */
static void pump(fixture *t, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    do {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = uv_backend_fd(&t->loop), .events = POLLIN};
        poll(&p, 1, 1);
    } while (now_ms() < end);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

/* Turns the loop until a datagram reaches fd (into t->buf, its sender in
 * t->from) or `ms` passed. Returns its length or -1. */
static ssize_t await(fixture *t, int fd, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    for (;;) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        socklen_t len = sizeof t->from;
        ssize_t n =
            recvfrom(fd, t->buf, sizeof t->buf, MSG_DONTWAIT, (struct sockaddr *)&t->from, &len);
        if (n >= 0)
            return n;
        if (now_ms() >= end)
            return -1;
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = uv_backend_fd(&t->loop), .events = POLLIN}};
        poll(p, 2, 1);
    }
}

/* --- DNS messages --- */

static uint16_t id_of(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void set_id(uint8_t *p, uint16_t id)
{
    p[0] = (uint8_t)(id >> 8);
    p[1] = (uint8_t)id;
}

/* A standard query for example.com A, recursion desired; `len` pads it
 * with zero bytes (to reach a size), 0 for its natural size. */
static size_t make_query(uint8_t *p, uint16_t id, size_t len)
{
    static const uint8_t q[] = {0,   0,   0x01, 0x00, 0,   1, 0,   0,   0,   0, 0, 0, 7, 'e', 'x',
                                'a', 'm', 'p',  'l',  'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
    memcpy(p, q, sizeof q);
    set_id(p, id);
    if (len > sizeof q) {
        memset(p + sizeof q, 0, len - sizeof q);
        return len;
    }
    return sizeof q;
}

static void ask(fixture *t, uint16_t id)
{
    uint8_t q[512];
    size_t n = make_query(q, id, 0);
    send_to(t->asker, q, n, &t->fwd);
}

/* The query t->buf (n bytes, as a resolver received it) answered: QR set,
 * `marker` appended so the test can tell answers apart, sent back to its
 * sender from resolver socket fd. */
static size_t answer(fixture *t, int fd, size_t n, uint8_t marker)
{
    static uint8_t a[65536];
    memcpy(a, t->buf, n);
    a[2] |= 0x80;
    a[n] = marker;
    send_to(fd, a, n + 1, &t->from);
    return n + 1;
}

/* --- fixtures --- */

static int setup(void **state)
{
    fixture *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->asker = udp_socket(NULL);
    for (int i = 0; i < 3; i++)
        t->res[i] = t->res_tcp[i] = -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    fixture *t = *state;
    dnsfwd_stop(t->f);
    uv_run(&t->loop, UV_RUN_DEFAULT); /* the closes */
    assert_int_equal(uv_loop_close(&t->loop), 0);
    close(t->asker);
    for (int i = 0; i < 3; i++) {
        if (t->res[i] >= 0)
            close(t->res[i]);
        if (t->res_tcp[i] >= 0)
            close(t->res_tcp[i]);
    }
    free(t);
    return 0;
}

/* Makes n resolver sockets and a forwarder on 127.0.0.1:0 asking them. */
static void start(fixture *t, int n)
{
    struct sockaddr_storage r[3];
    for (int i = 0; i < n; i++) {
        t->res[i] = udp_socket(NULL);
        r[i] = address_of(t->res[i]);
    }
    struct sockaddr_in listen = loopback(0);
    assert_int_equal(dnsfwd_start(&t->loop, -1, (struct sockaddr *)&listen, r, n, &t->f), 0);
    dnsfwd_set_timeout_ms(t->f, TEST_TIMEOUT_MS);
    t->fwd = loopback(dnsfwd_port(t->f));
    assert_int_not_equal(dnsfwd_port(t->f), 0);
}

static dnsfwd_stats stats(fixture *t)
{
    dnsfwd_stats st;
    dnsfwd_get_stats(t->f, &st);
    return st;
}

/* --- relaying --- */

static void test_an_answer_comes_back_with_the_askers_id(void **state)
{
    fixture *t = *state;
    start(t, 1);
    uint8_t sent[512];
    size_t qlen = make_query(sent, 0x1234, 0);
    send_to(t->asker, sent, qlen, &t->fwd);

    assert_int_equal(await(t, t->res[0], WAIT_MS), (ssize_t)qlen);
    assert_memory_equal(t->buf + 2, sent + 2, qlen - 2); /* all but the id as sent */
    size_t alen = answer(t, t->res[0], qlen, 0x77);

    assert_int_equal(await(t, t->asker, WAIT_MS), (ssize_t)alen);
    assert_int_equal(id_of(t->buf), 0x1234);
    assert_true(t->buf[2] & 0x80);
    assert_int_equal(t->buf[qlen], 0x77);
    assert_int_equal(t->from.sin_port, t->fwd.sin_port);

    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 1);
    assert_int_equal(st.answers, 1);
    assert_int_equal(st.dropped + st.timeouts + st.rejected + st.inflight, 0);
}

/* Each query leaves with an id of its own and from a port of its own: an
 * off-path forger must guess both. */
static void test_each_query_gets_a_random_id_and_port(void **state)
{
    fixture *t = *state;
    start(t, 1);
    enum { N = 8 };
    uint16_t ids[N], ports[N];
    for (int i = 0; i < N; i++)
        ask(t, 0x1234);
    for (int i = 0; i < N; i++) {
        assert_true(await(t, t->res[0], WAIT_MS) > 0);
        ids[i] = id_of(t->buf);
        ports[i] = ntohs(t->from.sin_port);
    }
    int same_as_asker = 0, id_repeats = 0, port_repeats = 0;
    for (int i = 0; i < N; i++) {
        same_as_asker += ids[i] == 0x1234;
        for (int j = 0; j < i; j++) {
            id_repeats += ids[i] == ids[j];
            port_repeats += ports[i] == ports[j];
        }
    }
    /* Random 16-bit ids: one coincidence is possible (p ~ 1e-3), more are
     * not. Ports of sockets open together cannot repeat. */
    assert_true(same_as_asker <= 1);
    assert_true(id_repeats <= 1);
    assert_int_equal(port_repeats, 0);
    assert_int_equal(stats(t).inflight, N);
}

static void test_forged_answers_are_not_delivered(void **state)
{
    fixture *t = *state;
    start(t, 1);
    ask(t, 0x4242);
    ssize_t qlen = await(t, t->res[0], WAIT_MS);
    assert_true(qlen > 0);
    uint8_t a[512];
    memcpy(a, t->buf, (size_t)qlen);
    a[2] |= 0x80;

    /* The right id from another port: the connected upstream socket's
     * kernel drops it before the forwarder sees it. */
    int forger = udp_socket(NULL);
    send_to(forger, a, (size_t)qlen, &t->from);
    close(forger);
    /* From the resolver, but a wrong id; QR clear; too short. */
    set_id(a, (uint16_t)(id_of(t->buf) ^ 1));
    send_to(t->res[0], a, (size_t)qlen, &t->from);
    set_id(a, id_of(t->buf));
    a[2] &= 0x7f;
    send_to(t->res[0], a, (size_t)qlen, &t->from);
    send_to(t->res[0], a, 11, &t->from);
    assert_int_equal(await(t, t->asker, QUIET_MS), -1);
    assert_int_equal(stats(t).rejected, 3);

    /* The query still waits for the real answer. */
    answer(t, t->res[0], (size_t)qlen, 0x55);
    assert_int_equal(await(t, t->asker, WAIT_MS), qlen + 1);
    assert_int_equal(id_of(t->buf), 0x4242);
    assert_int_equal(t->buf[qlen], 0x55);
    assert_int_equal(stats(t).answers, 1);
}

static void test_malformed_queries_are_dropped_and_counted(void **state)
{
    fixture *t = *state;
    start(t, 1);
    static uint8_t q[5000];
    size_t n = make_query(q, 1, 0);
    send_to(t->asker, q, 0, &t->fwd);  /* empty */
    send_to(t->asker, q, 11, &t->fwd); /* shorter than a header */
    q[2] |= 0x80;                      /* QR: an answer, not a query */
    send_to(t->asker, q, n, &t->fwd);
    make_query(q, 1, 0);
    q[2] |= 2 << 3; /* opcode STATUS */
    send_to(t->asker, q, n, &t->fwd);
    make_query(q, 1, 0);
    q[5] = 2; /* two questions */
    send_to(t->asker, q, n, &t->fwd);
    make_query(q, 1, sizeof q); /* 5000 bytes */
    send_to(t->asker, q, sizeof q, &t->fwd);
    make_query(q, 1, 0);
    q[4] = 1; /* QDCOUNT 257 */
    send_to(t->asker, q, n, &t->fwd);

    assert_int_equal(await(t, t->res[0], QUIET_MS), -1);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 7);
    assert_int_equal(st.dropped, 7);
    assert_int_equal(st.inflight, 0);

    /* The largest query taken is relayed whole. */
    make_query(q, 2, DNSFWD_MAX_QUERY);
    send_to(t->asker, q, DNSFWD_MAX_QUERY, &t->fwd);
    assert_int_equal(await(t, t->res[0], WAIT_MS), DNSFWD_MAX_QUERY);
}

/* A resolver truncates to the EDNS size the query asked for; the
 * forwarder does not second-guess it. */
static void test_large_answers_pass_through_whole(void **state)
{
    fixture *t = *state;
    start(t, 1);
    ask(t, 9);
    ssize_t qlen = await(t, t->res[0], WAIT_MS);
    assert_true(qlen > 0);
    static uint8_t a[6000];
    memcpy(a, t->buf, (size_t)qlen);
    a[2] |= 0x80;
    memset(a + qlen, 0xab, sizeof a - (size_t)qlen);
    send_to(t->res[0], a, sizeof a, &t->from);
    assert_int_equal(await(t, t->asker, WAIT_MS), sizeof a);
    assert_int_equal(id_of(t->buf), 9);
    assert_int_equal(t->buf[sizeof a - 1], 0xab);
}

/* Random datagrams to both of its sockets, half of them with a query's
 * header so they get past the first checks: it must neither crash nor
 * lose count. */
static void test_garbage_neither_crashes_it_nor_goes_uncounted(void **state)
{
    fixture *t = *state;
    start(t, 1);
    srand(7);
    static uint8_t g[5000];
    ask(t, 1); /* a query in flight, for garbage to reach its socket */
    ssize_t qlen = await(t, t->res[0], WAIT_MS);
    assert_true(qlen > 0);
    struct sockaddr_in upstream = t->from;
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)rand() % (i % 10 == 0 ? sizeof g : 600);
        for (size_t j = 0; j < n; j++)
            g[j] = (uint8_t)rand();
        if (i % 2 && n >= 12) {
            g[2] &= 0x07; /* QR clear, opcode QUERY */
            g[4] = 0;
            g[5] = 1;
        }
        send_to(t->asker, g, n, &t->fwd);
        if (n >= 2)
            set_id(g, (uint16_t)(id_of(t->buf) + 1 + (unsigned)i % 100)); /* never its id */
        send_to(t->res[0], g, n, &upstream);
        if (i % 16 == 0)
            uv_run(&t->loop, UV_RUN_NOWAIT);
    }
    pump(t, 3 * TEST_TIMEOUT_MS);
    dnsfwd_stats st = stats(t);
    assert_true(st.queries > 1000); /* the kernel may drop some */
    assert_int_equal(st.queries, st.answers + st.dropped + st.timeouts + st.inflight);
    assert_int_equal(st.answers, 0);
    assert_true(st.rejected > 0);
}

/* --- failing over --- */

static void test_a_silent_resolver_is_passed_over(void **state)
{
    fixture *t = *state;
    start(t, 2);
    ask(t, 77);
    assert_true(await(t, t->res[0], WAIT_MS) > 0);
    struct sockaddr_in first = t->from;
    uint64_t asked = now_ms();

    ssize_t qlen = await(t, t->res[1], WAIT_MS);
    assert_true(qlen > 0);
    assert_true(now_ms() - asked >= TEST_TIMEOUT_MS - 5);
    assert_int_not_equal(t->from.sin_port, first.sin_port); /* a fresh socket */
    answer(t, t->res[1], (size_t)qlen, 1);
    assert_int_equal(await(t, t->asker, WAIT_MS), qlen + 1);
    assert_int_equal(id_of(t->buf), 77);

    /* The first resolver's late answer goes nowhere. */
    t->from = first;
    answer(t, t->res[0], (size_t)qlen, 2);
    assert_int_equal(await(t, t->asker, QUIET_MS), -1);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.answers, 1);
    assert_int_equal(st.timeouts, 0);
}

/* Nothing listens on the first resolver's port: the ICMP refusal moves the
 * query on without waiting out the timeout. */
static void test_a_refusing_resolver_is_passed_over_at_once(void **state)
{
    fixture *t = *state;
    struct sockaddr_storage r[2];
    int gone = udp_socket(NULL);
    r[0] = address_of(gone);
    close(gone);
    t->res[1] = udp_socket(NULL);
    r[1] = address_of(t->res[1]);
    struct sockaddr_in listen = loopback(0);
    assert_int_equal(dnsfwd_start(&t->loop, -1, (struct sockaddr *)&listen, r, 2, &t->f), 0);
    t->fwd = loopback(dnsfwd_port(t->f)); /* the default 2 s timeout */

    uint64_t asked = now_ms();
    ask(t, 5);
    assert_true(await(t, t->res[1], WAIT_MS) > 0);
    assert_true(now_ms() - asked < DNSFWD_TIMEOUT_MS / 2);
}

static void test_when_all_are_silent_the_query_times_out(void **state)
{
    fixture *t = *state;
    start(t, 2);
    ask(t, 3);
    assert_true(await(t, t->res[0], WAIT_MS) > 0);
    assert_true(await(t, t->res[1], WAIT_MS) > 0);
    assert_int_equal(await(t, t->asker, 2 * TEST_TIMEOUT_MS), -1);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 1);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.answers + st.inflight, 0);
}

/* --- limits --- */

static void test_queries_beyond_the_limit_are_dropped(void **state)
{
    fixture *t = *state;
    start(t, 1);
    dnsfwd_set_max_inflight(t->f, 8);
    dnsfwd_set_timeout_ms(t->f, 5000);
    for (int i = 0; i < 20; i++)
        ask(t, (uint16_t)i);
    pump(t, QUIET_MS);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 20);
    assert_int_equal(st.dropped, 12);
    assert_int_equal(st.inflight, 8);

    /* Answered, they make room again. */
    for (int i = 0; i < 8; i++) {
        ssize_t n = await(t, t->res[0], WAIT_MS);
        assert_true(n > 0);
        answer(t, t->res[0], (size_t)n, 0);
    }
    assert_int_equal(await(t, t->res[0], QUIET_MS), -1);
    for (int i = 0; i < 8; i++)
        assert_true(await(t, t->asker, WAIT_MS) > 0);
    ask(t, 100);
    assert_true(await(t, t->res[0], WAIT_MS) > 0);
    assert_int_equal(stats(t).inflight, 1);
}

/* A socket on 127.0.0.<host>: another worker's address (all of 127/8 is
 * the loopback's). -1 if this machine will not have it. */
static int asker_at(int host)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = loopback(0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)host);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A socket per query in flight: make sure there are enough descriptors. */
static void need_descriptors(rlim_t n)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur >= n)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < n)
        skip();
}

/* Sends n queries from fd, letting the forwarder read meanwhile (or the
 * kernel would drop what does not fit the socket's buffer). */
static void flood(fixture *t, int fd, int n)
{
    uint8_t q[512];
    size_t len = make_query(q, 0, 0);
    for (int i = 0; i < n; i++) {
        set_id(q, (uint16_t)i);
        send_to(fd, q, len, &t->fwd);
        if (i % 32 == 0)
            uv_run(&t->loop, UV_RUN_NOWAIT);
    }
}

/* A worker asking names whose servers never answer holds its queries for
 * the whole timeout; it gets its share, the others still get answers. */
static void test_one_worker_cannot_take_every_slot(void **state)
{
    fixture *t = *state;
    need_descriptors(DNSFWD_MAX_PER_ASKER + 64);
    int other = asker_at(2);
    if (other < 0)
        skip();
    start(t, 1);
    dnsfwd_set_timeout_ms(t->f, 10000);
    flood(t, t->asker, 2 * DNSFWD_MAX_PER_ASKER);
    pump(t, QUIET_MS);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.inflight, DNSFWD_MAX_PER_ASKER);
    assert_int_equal(st.dropped, st.queries - DNSFWD_MAX_PER_ASKER);

    ask(t, 0); /* the same worker from another port: still itself */
    pump(t, QUIET_MS);
    assert_int_equal(stats(t).inflight, DNSFWD_MAX_PER_ASKER);

    uint8_t q[512];
    size_t len = make_query(q, 0x0707, 0);
    send_to(other, q, len, &t->fwd);
    pump(t, QUIET_MS);
    assert_int_equal(stats(t).inflight, DNSFWD_MAX_PER_ASKER + 1);
    close(other);
}

/* Many more queries than the limit, from more workers than it takes to
 * fill it: the excess is dropped, memory and descriptors stay at the
 * limit, stopping frees them all. */
static void test_a_flood_stays_at_the_limit(void **state)
{
    fixture *t = *state;
    enum { WORKERS = DNSFWD_MAX_INFLIGHT / DNSFWD_MAX_PER_ASKER + 1 };
    need_descriptors(DNSFWD_MAX_INFLIGHT + WORKERS + 64);
    int askers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        askers[i] = asker_at(i + 1);
        if (askers[i] < 0)
            skip();
    }
    start(t, 1);
    dnsfwd_set_timeout_ms(t->f, 10000);
    for (int i = 0; i < WORKERS; i++)
        flood(t, askers[i], 2 * DNSFWD_MAX_PER_ASKER);
    pump(t, QUIET_MS);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.inflight, DNSFWD_MAX_INFLIGHT);
    assert_true(st.dropped > 0);
    assert_int_equal(st.queries, st.dropped + st.inflight);
    for (int i = 0; i < WORKERS; i++)
        close(askers[i]);
}

static void test_stopping_with_queries_in_flight_frees_them(void **state)
{
    fixture *t = *state;
    start(t, 2);
    for (int i = 0; i < 10; i++)
        ask(t, (uint16_t)i);
    assert_true(await(t, t->res[0], WAIT_MS) > 0);
    dnsfwd_stop(t->f); /* teardown checks that every handle closed */
    t->f = NULL;
    dnsfwd_stop(NULL);
}

/* --- TCP --- */

/* A UDP socket and a TCP socket (listening if asked) on one port of
 * 127.0.0.1. The TCP port is taken first, the UDP one next to it: the
 * test's many TCP connections would often hold a UDP socket's port. */
static void port_pair(int *udp, int *tcp, bool listening)
{
    for (int tries = 0; tries < 100; tries++) {
        int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int on = 1;
        assert_int_equal(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on), 0);
        struct sockaddr_in a = loopback(0);
        socklen_t len = sizeof a;
        assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (bind(u, (struct sockaddr *)&a, sizeof a) == 0) {
            assert_int_equal(listening ? listen(l, 16) : 0, 0);
            *udp = u;
            *tcp = l;
            return;
        }
        close(u);
        close(l);
    }
    fail_msg("no port free for both UDP and TCP");
}

/* A forwarder on UDP and TCP at one port, given its sockets; resolvers
 * on both at theirs, but for TCP as `listening` says ("L": listens, "-":
 * refuses). */
static void start_tcp(fixture *t, const char *listening)
{
    int n = (int)strlen(listening);
    struct sockaddr_storage r[3];
    for (int i = 0; i < n; i++) {
        port_pair(&t->res[i], &t->res_tcp[i], true);
        r[i] = address_of(t->res[i]);
        if (listening[i] == '-') {
            close(t->res_tcp[i]);
            t->res_tcp[i] = -1;
        }
    }
    int udp, tcp;
    port_pair(&udp, &tcp, false); /* the forwarder listens itself */
    assert_int_equal(dnsfwd_start(&t->loop, udp, NULL, r, n, &t->f), 0);
    dnsfwd_set_timeout_ms(t->f, TEST_TIMEOUT_MS);
    t->fwd = loopback(dnsfwd_port(t->f));
    assert_int_equal(dnsfwd_listen_tcp(t->f, tcp, NULL), 0);
}

/* A worker's connection to the forwarder (the kernel completes it). */
static int tcp_client(fixture *t)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&t->fwd, sizeof t->fwd), 0);
    return fd;
}

static void tcp_send(int fd, const uint8_t *msg, size_t n)
{
    uint8_t prefix[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    assert_int_equal(send(fd, prefix, 2, MSG_NOSIGNAL), 2);
    if (n)
        assert_int_equal(send(fd, msg, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void tcp_ask(int fd, uint16_t id)
{
    uint8_t q[512];
    tcp_send(fd, q, make_query(q, id, 0));
}

/* Turns the loop until a connection reaches listener l; its socket. */
static int await_accept(fixture *t, int l)
{
    uint64_t end = now_ms() + WAIT_MS;
    for (;;) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        assert_true(now_ms() < end);
        struct pollfd p[2] = {{.fd = l, .events = POLLIN},
                              {.fd = uv_backend_fd(&t->loop), .events = POLLIN}};
        poll(p, 2, 1);
    }
}

/* Turns the loop until a whole message arrives on fd (into t->buf, its
 * length prefix stripped). Its length; -1 when `ms` passed, -2 when the
 * connection ended first. */
static ssize_t await_tcp(fixture *t, int fd, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    uint8_t prefix[2];
    size_t have = 0, need = 2;
    for (;;) {
        uv_run(&t->loop, UV_RUN_NOWAIT);
        uint8_t *into = have < 2 ? prefix + have : t->buf + have - 2;
        ssize_t n = recv(fd, into, need - have, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return -2;
        if (n > 0)
            have += (size_t)n;
        if (have == 2 && need == 2)
            need = 2 + (size_t)id_of(prefix);
        if (have == need && need > 2)
            return (ssize_t)(need - 2);
        if (now_ms() >= end)
            return -1;
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = uv_backend_fd(&t->loop), .events = POLLIN}};
        poll(p, 2, 1);
    }
}

/* Answers `query` (n bytes, as a resolver read it) on connection fd with
 * `size` bytes, QR set, its id XOR `id_xor`. */
static void tcp_answer(int fd, const uint8_t *query, size_t n, size_t size, uint16_t id_xor)
{
    static uint8_t a[65535];
    memcpy(a, query, n);
    a[2] |= 0x80;
    set_id(a, (uint16_t)(id_of(query) ^ id_xor));
    memset(a + n, 0xcd, size - n);
    tcp_send(fd, a, size);
}

/* Reads the query on a new connection to resolver listener l and answers
 * it with `size` bytes (id XOR id_xor); returns that connection. */
static int serve_tcp(fixture *t, int l, size_t size, uint16_t id_xor)
{
    int up = await_accept(t, l);
    ssize_t n = await_tcp(t, up, WAIT_MS);
    assert_true(n >= 12);
    uint8_t q[DNSFWD_MAX_QUERY];
    memcpy(q, t->buf, (size_t)n);
    tcp_answer(up, q, (size_t)n, size < (size_t)n ? (size_t)n : size, id_xor);
    return up;
}

static void test_tcp_relays_answers_too_large_for_udp(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    int c = tcp_client(t);
    for (int round = 0; round < 2; round++) { /* two queries, one connection */
        uint8_t q[512];
        size_t qlen = make_query(q, (uint16_t)(0xabc0 + round), 0);
        tcp_send(c, q, qlen);
        int up = await_accept(t, t->res_tcp[0]);
        assert_int_equal(await_tcp(t, up, WAIT_MS), (ssize_t)qlen);
        assert_memory_equal(t->buf + 2, q + 2, qlen - 2);
        uint8_t got[512];
        memcpy(got, t->buf, qlen);
        tcp_answer(up, got, qlen, 20000, 0);
        assert_int_equal(await_tcp(t, c, WAIT_MS), 20000);
        assert_int_equal(id_of(t->buf), 0xabc0 + round);
        assert_true(t->buf[2] & 0x80);
        assert_int_equal(t->buf[19999], 0xcd);
        close(up);
    }
    close(c);
    pump(t, QUIET_MS);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 2);
    assert_int_equal(st.answers, 2);
    assert_int_equal(st.dropped + st.timeouts + st.rejected + st.inflight, 0);
}

/* The first resolver refuses TCP, the second answers with a wrong id: the
 * third one's answer is the one delivered. */
static void test_tcp_passes_over_failing_resolvers(void **state)
{
    fixture *t = *state;
    start_tcp(t, "-LL");
    int c = tcp_client(t);
    tcp_ask(c, 0x5151);
    int up = serve_tcp(t, t->res_tcp[1], 0, 1);
    int up2 = serve_tcp(t, t->res_tcp[2], 100, 0);
    assert_int_equal(await_tcp(t, c, WAIT_MS), 100);
    assert_int_equal(id_of(t->buf), 0x5151);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.answers, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.timeouts, 0);
    close(up);
    close(up2);
    close(c);
}

static void test_tcp_gives_up_on_silence_and_closes(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    int c = tcp_client(t);
    tcp_ask(c, 1);
    int up = await_accept(t, t->res_tcp[0]);
    assert_true(await_tcp(t, up, WAIT_MS) > 0);
    assert_int_equal(await_tcp(t, c, WAIT_MS), -2); /* closed after the timeout */
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(await_tcp(t, up, WAIT_MS), -2); /* let go upstream too */
    close(up);
    close(c);
}

/* A client sending anything but a query is closed at once, before a
 * long message is read. */
static void test_tcp_closes_clients_that_send_no_query(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    uint8_t q[512];
    size_t n = make_query(q, 1, 0);

    int c = tcp_client(t);
    tcp_send(c, q, 5); /* shorter than a header */
    assert_int_equal(await_tcp(t, c, WAIT_MS), -2);
    close(c);
    c = tcp_client(t);
    uint8_t huge[2] = {0xff, 0xff}; /* 65535 bytes announced */
    assert_int_equal(send(c, huge, 2, MSG_NOSIGNAL), 2);
    assert_int_equal(await_tcp(t, c, WAIT_MS), -2);
    close(c);
    c = tcp_client(t);
    q[2] |= 0x80; /* an answer */
    tcp_send(c, q, n);
    assert_int_equal(await_tcp(t, c, WAIT_MS), -2);
    close(c);

    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 3);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(accept4(t->res_tcp[0], NULL, NULL, SOCK_NONBLOCK), -1);
}

/* A client that sends half a query and waits is closed after 5 timeouts. */
static void test_tcp_closes_idle_clients(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    int c = tcp_client(t);
    uint8_t half[3] = {0, 29, 0};
    assert_int_equal(send(c, half, sizeof half, MSG_NOSIGNAL), 3);
    uint64_t from = now_ms();
    assert_int_equal(await_tcp(t, c, 20 * TEST_TIMEOUT_MS), -2);
    assert_true(now_ms() - from >= 5 * TEST_TIMEOUT_MS - 10);
    close(c);
}

static void test_tcp_limits_clients_per_address(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    int c[DNSFWD_MAX_TCP_PER_ASKER + 1];
    for (int i = 0; i <= DNSFWD_MAX_TCP_PER_ASKER; i++) {
        c[i] = tcp_client(t);
        pump(t, 5);
    }
    /* The one over the limit is closed; the others are served. */
    assert_int_equal(await_tcp(t, c[DNSFWD_MAX_TCP_PER_ASKER], WAIT_MS), -2);
    tcp_ask(c[0], 0x0a0a);
    int up = serve_tcp(t, t->res_tcp[0], 0, 0);
    assert_true(await_tcp(t, c[0], WAIT_MS) > 0);
    assert_int_equal(id_of(t->buf), 0x0a0a);
    close(up);
    for (int i = 0; i <= DNSFWD_MAX_TCP_PER_ASKER; i++)
        close(c[i]);
}

/* Stopping with a client waiting for its resolver, another idle, and an
 * answer sent to a client who left: everything closes and is freed
 * (teardown checks the loop). */
static void test_tcp_stops_cleanly_mid_query(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    dnsfwd_set_timeout_ms(t->f, 5000); /* c's query must still wait at the end */
    int c = tcp_client(t), idle = tcp_client(t), gone = tcp_client(t);
    tcp_ask(c, 1);
    int up = await_accept(t, t->res_tcp[0]);
    assert_true(await_tcp(t, up, WAIT_MS) > 0);
    tcp_ask(gone, 2);
    pump(t, QUIET_MS);
    close(gone);
    int up2 = serve_tcp(t, t->res_tcp[0], 30000, 0);
    pump(t, QUIET_MS);
    dnsfwd_stats st = stats(t);
    assert_int_equal(st.queries, 2);
    assert_int_equal(st.answers + st.dropped, 1); /* written, or not: the kernel decides */
    assert_int_equal(st.inflight, 1);
    dnsfwd_stop(t->f);
    t->f = NULL;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(await_tcp(t, c, WAIT_MS), -2);
    assert_int_equal(await_tcp(t, up, WAIT_MS), -2);
    close(c);
    close(idle);
    close(up);
    close(up2);
}

static void test_listen_tcp_once(void **state)
{
    fixture *t = *state;
    start_tcp(t, "L");
    struct sockaddr_in any = loopback(0);
    assert_int_equal(dnsfwd_listen_tcp(t->f, -1, (struct sockaddr *)&any), -EALREADY);
}

/* --- starting --- */

static void test_it_listens_on_a_socket_it_is_given(void **state)
{
    fixture *t = *state;
    int fd = socket(AF_INET, SOCK_DGRAM, 0); /* no CLOEXEC: the forwarder sets it */
    struct sockaddr_in a = loopback(0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct sockaddr_storage bound = address_of(fd);
    t->res[0] = udp_socket(NULL);
    struct sockaddr_storage r = address_of(t->res[0]);
    assert_int_equal(dnsfwd_start(&t->loop, fd, NULL, &r, 1, &t->f), 0);
    assert_int_equal(dnsfwd_port(t->f), ntohs(((struct sockaddr_in *)&bound)->sin_port));
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int reuse = 1;
    socklen_t len = sizeof reuse;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len), 0);
    assert_int_equal(reuse, 0); /* nobody may bind it beside us */

    t->fwd = loopback(dnsfwd_port(t->f));
    ask(t, 0xbeef);
    ssize_t n = await(t, t->res[0], WAIT_MS);
    assert_true(n > 0);
    answer(t, t->res[0], (size_t)n, 0);
    assert_true(await(t, t->asker, WAIT_MS) > 0);
    assert_int_equal(id_of(t->buf), 0xbeef);

    dnsfwd_stop(t->f);
    t->f = NULL;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed with the forwarder */
}

/* Refused starts take the socket they were given too. */
static void expect_refused(fixture *t, int fd, const struct sockaddr_storage *r, int n, int err)
{
    assert_int_equal(dnsfwd_start(&t->loop, fd, NULL, r, n, &t->f), err);
    assert_null(t->f);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
}

static void test_start_refuses_what_it_cannot_use(void **state)
{
    fixture *t = *state;
    t->res[0] = udp_socket(NULL);
    struct sockaddr_storage good = address_of(t->res[0]);
    struct sockaddr_storage r[DNSFWD_MAX_RESOLVERS + 1];
    for (int i = 0; i <= DNSFWD_MAX_RESOLVERS; i++)
        r[i] = good;

    expect_refused(t, udp_socket(NULL), r, 0, -EINVAL);
    expect_refused(t, udp_socket(NULL), r, DNSFWD_MAX_RESOLVERS + 1, -EINVAL);
    struct sockaddr_storage bad = good;
    ((struct sockaddr_in *)&bad)->sin_port = 0;
    expect_refused(t, udp_socket(NULL), &bad, 1, -EINVAL);
    bad = good;
    bad.ss_family = AF_UNIX;
    expect_refused(t, udp_socket(NULL), &bad, 1, -EINVAL);

    /* Itself as its resolver would relay every query to itself. */
    int self = udp_socket(NULL);
    struct sockaddr_storage itself = address_of(self);
    expect_refused(t, self, &itself, 1, -ELOOP);

    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    assert_int_equal(bind(tcp, (struct sockaddr *)&a, sizeof a), 0);
    expect_refused(t, tcp, &good, 1, -EINVAL);
    int unbound = socket(AF_INET, SOCK_DGRAM, 0);
    expect_refused(t, unbound, &good, 1, -EINVAL);

    assert_int_equal(dnsfwd_start(&t->loop, -1, NULL, &good, 1, &t->f), -EINVAL);
    struct sockaddr_in taken;
    int holder = udp_socket(&taken);
    assert_int_equal(dnsfwd_start(&t->loop, -1, (struct sockaddr *)&taken, &good, 1, &t->f),
                     -EADDRINUSE);
    close(holder);
    assert_null(t->f);
}

/* --- resolv.conf --- */

static char *write_temp(const char *text)
{
    static char path[] = "/tmp/test_dnsfwd.XXXXXX";
    snprintf(path, sizeof path, "%s", "/tmp/test_dnsfwd.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr)
{
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(a->sin_family, AF_INET);
    assert_int_equal(ntohs(a->sin_port), 53);
    assert_string_equal(inet_ntop(AF_INET, &a->sin_addr, text, sizeof text), addr);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *addr, uint32_t scope)
{
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(a->sin6_family, AF_INET6);
    assert_int_equal(ntohs(a->sin6_port), 53);
    assert_string_equal(inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text), addr);
    assert_int_equal(a->sin6_scope_id, scope);
}

static void test_read_resolvers_takes_nameserver_lines_as_glibc_does(void **state)
{
    (void)state;
    char longline[700];
    /* Its second part, past the reader's buffer, looks like a nameserver
     * line: it must not be taken for one. */
    memset(longline, 'x', 511);
    longline[0] = '#';
    memcpy(longline + 511, "nameserver 8.8.8.8\n", sizeof "nameserver 8.8.8.8\n");
    char text[2048];
    snprintf(text, sizeof text,
             "# written by hand\n"
             "; also a comment\n"
             "search x\n"
             "options edns0\n"
             "nameserver 127.0.0.53\n"
             "nameserver ::1\n"
             "nameserver bogus\n"
             "nameserver\t10.0.0.1 trailing words\n"
             "nameserver127.0.0.2\n"
             "  nameserver 127.0.0.3\n"
             "nameserver 1.2.3.4.5\n"
             "nameserver\n"
             "%s"
             "nameserver fe80::1%%lo\n"
             "nameserver 192.0.2.1",
             longline);
    char *path = write_temp(text);
    struct sockaddr_storage r[16];
    assert_int_equal(dnsfwd_read_resolvers(path, r, 16), 5);
    assert_v4(&r[0], "127.0.0.53");
    assert_v6(&r[1], "::1", 0);
    assert_v4(&r[2], "10.0.0.1");
    assert_v6(&r[3], "fe80::1", if_nametoindex("lo"));
    assert_v4(&r[4], "192.0.2.1"); /* the last line needs no newline */

    assert_int_equal(dnsfwd_read_resolvers(path, r, 2), 2);
    assert_v6(&r[1], "::1", 0);
    assert_int_equal(dnsfwd_read_resolvers(path, r, 0), 0);
    unlink(path);

    path = write_temp("# nothing here\n");
    assert_int_equal(dnsfwd_read_resolvers(path, r, 3), 0);
    unlink(path);
    assert_int_equal(dnsfwd_read_resolvers("/nonexistent/resolv.conf", r, 3), -ENOENT);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_an_answer_comes_back_with_the_askers_id),
        T(test_each_query_gets_a_random_id_and_port),
        T(test_forged_answers_are_not_delivered),
        T(test_malformed_queries_are_dropped_and_counted),
        T(test_large_answers_pass_through_whole),
        T(test_garbage_neither_crashes_it_nor_goes_uncounted),
        T(test_a_silent_resolver_is_passed_over),
        T(test_a_refusing_resolver_is_passed_over_at_once),
        T(test_when_all_are_silent_the_query_times_out),
        T(test_queries_beyond_the_limit_are_dropped),
        T(test_one_worker_cannot_take_every_slot),
        T(test_a_flood_stays_at_the_limit),
        T(test_stopping_with_queries_in_flight_frees_them),
        T(test_tcp_relays_answers_too_large_for_udp),
        T(test_tcp_passes_over_failing_resolvers),
        T(test_tcp_gives_up_on_silence_and_closes),
        T(test_tcp_closes_clients_that_send_no_query),
        T(test_tcp_closes_idle_clients),
        T(test_tcp_limits_clients_per_address),
        T(test_tcp_stops_cleanly_mid_query),
        T(test_listen_tcp_once),
        T(test_it_listens_on_a_socket_it_is_given),
        T(test_start_refuses_what_it_cannot_use),
        cmocka_unit_test(test_read_resolvers_takes_nameserver_lines_as_glibc_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
