/*
 * test_egress_link.c — the links of the egress network mode, as a worker and
 * the host see them: the slot arithmetic; a veth pair that carries TCP, with
 * no IPv6 at either end; the errors a caller acts on (EEXIST, EBUSY, ENODEV,
 * a dead pid, a step failing once the pair exists), each leaving nothing
 * behind; the pair going by itself with its worker; the sweep; the DNS
 * dummy, answering a worker; and how long a pair takes to build and to
 * delete.
 *
 * Never touches the machine's own network: each test that makes links runs
 * in a child with a network namespace of its own (in_private_netns), and its
 * workers are grandchildren with theirs. The children answer through their
 * exit status, as a failed cmocka assertion there would return into a copy
 * of the runner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "egress_link.h"
#include "proc_helpers.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: not so: %s\n", __FILE__, __LINE__, #cond);                     \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long got_ = (got), want_ = (want);                                                    \
        if (got_ != want_) {                                                                       \
            fprintf(stderr, "%s:%d: %s is %lld, not %lld\n", __FILE__, __LINE__, #got, got_,       \
                    want_);                                                                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define PORT 7777
/* linux/if.h's, which glibc's net/if.h leaves out and cannot be included with. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

static uint32_t ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a.s_addr;
}

/* Slot n of 10.77.0.0/16, the subnet of every test here. */
static egress_link slot(unsigned n)
{
    egress_link l = {0};
    egress_link_for_slot(ip("10.77.0.0"), 16, n, &l);
    return l;
}

static void test_a_slot_is_a_slash_30_after_the_reserved_one(void **state)
{
    (void)state;
    egress_link l;
    assert_int_equal(egress_link_for_slot(ip("10.77.0.0"), 16, 1, &l), 0);
    assert_string_equal(l.host_if, "hth1");
    assert_int_equal(l.host_ip, ip("10.77.0.5"));
    assert_int_equal(l.peer_ip, ip("10.77.0.6"));
    assert_int_equal(l.prefix, 30);
    assert_int_equal(egress_link_for_slot(ip("10.77.0.0"), 16, 300, &l), 0);
    assert_string_equal(l.host_if, "hth300");
    assert_int_equal(l.host_ip, ip("10.77.4.177"));
    assert_int_equal(l.peer_ip, ip("10.77.4.178"));
}

static void test_slots_and_their_edges(void **state)
{
    (void)state;
    assert_int_equal(egress_link_slots(16), 16384);
    assert_int_equal(egress_link_slots(24), 64);
    assert_int_equal(egress_link_slots(30), 1);
    assert_int_equal(egress_link_slots(31), 0);
    assert_int_equal(egress_link_slots(0), 1u << 30);

    egress_link l = {.host_if = "untouched"};
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 0, &l), -ERANGE);
    assert_string_equal(l.host_if, "untouched");
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 64, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 1000, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 30, 1, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 32, 1, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 63, &l), 0);
    assert_string_equal(l.host_if, "hth63");
    assert_int_equal(l.host_ip, ip("192.168.5.253"));
    assert_int_equal(l.peer_ip, ip("192.168.5.254"));
    /* The longest name there can be still fits. */
    assert_int_equal(egress_link_for_slot(0, 0, (1u << 30) - 1, &l), 0);
    assert_string_equal(l.host_if, "hth1073741823");
    assert_int_equal(l.peer_ip, ip("255.255.255.254"));
}

static void test_the_host_bits_of_the_base_are_ignored(void **state)
{
    (void)state;
    egress_link l;
    assert_int_equal(egress_link_for_slot(ip("10.77.3.9"), 16, 2, &l), 0);
    assert_int_equal(l.host_ip, ip("10.77.0.9"));
    assert_int_equal(l.peer_ip, ip("10.77.0.10"));
}

static void test_malformed_links_are_einval(void **state)
{
    (void)state;
    egress_link l = slot(1);
    egress_link bad = l;
    bad.prefix = 31;
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    bad = l;
    bad.prefix = 0;
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    bad = l;
    bad.peer_ip = bad.host_ip;
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    bad.peer_ip = slot(2).peer_ip; /* its gateway out of its reach */
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    bad = l;
    memset(bad.host_if, 'h', sizeof bad.host_if); /* no room for its end */
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    bad.host_if[0] = '\0';
    assert_int_equal(egress_link_up(&bad, 1), -EINVAL);
    assert_int_equal(egress_link_up(&l, 0), -EINVAL);
    assert_int_equal(egress_link_up(NULL, 1), -EINVAL);
    assert_int_equal(egress_link_delete("0123456789abcdef"), -EINVAL);
    assert_int_equal(egress_link_delete(""), -EINVAL);
    assert_int_equal(egress_link_dummy("0123456789abcdef", ip("10.77.0.1")), -EINVAL);
    assert_int_equal(egress_link_sweep(""), -EINVAL);
    assert_int_equal(egress_link_sweep(NULL), -EINVAL);
}

/* Runs body in a child with a network namespace of its own; body's 0 is
 * a pass. exit(), not _exit(): LeakSanitizer then checks the child, which is
 * where the module ran. */
static void in_private_netns(int (*body)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (unshare(CLONE_NEWNET) < 0) {
            perror("unshare(CLONE_NEWNET)");
            exit(1);
        }
        exit(body());
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define TIMED 50

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_times(const char *what, double *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, by_value);
    printf("    %-22s median %7.0f us, min %7.0f, p90 %7.0f, max %7.0f (of %d)\n", what, us[n / 2],
           us[0], us[n * 9 / 10], us[n - 1], n);
    fflush(stdout);
}

/* The namespace we are in, to see that a call came back to it. */
static ino_t netns_now(void)
{
    struct stat st;
    return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

/* ---- What rtnetlink shows, in the namespace of the caller ---- */

/* A dump of `type` for `family`: hdrlen is the size of the type's own header,
 * whose first byte is always the family. 0, or -1. */
static int dump(uint16_t type, size_t hdrlen, uint8_t family, mnl_cb_t cb, void *data)
{
    struct mnl_socket *s = mnl_socket_open(NETLINK_ROUTE);
    if (!s)
        return -1;
    static char buf[32768];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = 1;
    uint8_t *h = mnl_nlmsg_put_extra_header(nlh, hdrlen);
    h[0] = family;
    int r = mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0 ||
                    mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0
                ? -1
                : MNL_CB_OK;
    unsigned port = mnl_socket_get_portid(s);
    while (r == MNL_CB_OK) {
        ssize_t n = mnl_socket_recvfrom(s, buf, sizeof buf);
        r = n < 0 ? -1 : mnl_cb_run(buf, (size_t)n, 1, port, cb, data);
    }
    mnl_socket_close(s);
    return r < 0 ? -1 : 0;
}

typedef struct link_seen {
    const char *name;
    int index; /* 0: no such link */
    unsigned flags;
} link_seen;

static int on_link(const struct nlmsghdr *nlh, void *data)
{
    link_seen *ls = data;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof *ifi)
    {
        if (mnl_attr_get_type(a) == IFLA_IFNAME && strcmp(mnl_attr_get_str(a), ls->name) == 0) {
            ls->index = ifi->ifi_index;
            ls->flags = ifi->ifi_flags;
        }
    }
    return MNL_CB_OK;
}

static link_seen find_link(const char *name)
{
    link_seen ls = {.name = name};
    if (dump(RTM_GETLINK, sizeof(struct ifinfomsg), AF_UNSPEC, on_link, &ls) < 0)
        ls.index = -1;
    return ls;
}

/* True once the link has carrier: for a veth, both ends are up. The kernel
 * tells the rest of the stack (IPv6 among it) a little later, through its
 * link watch, so this is the moment after which an fe80:: would show. */
static bool carrier_within(const char *name, int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        if (find_link(name).flags & IFF_LOWER_UP)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

typedef struct addrs_seen {
    int index;       /* the link looked at */
    uint32_t v4;     /* the address looked for, network order */
    uint8_t prefix;  /* and its prefix */
    int v4_found;    /* on the link */
    int v6;          /* IPv6 addresses on the link */
    int link_locals; /* fe80::/10 on any link */
} addrs_seen;

static int on_addr(const struct nlmsghdr *nlh, void *data)
{
    addrs_seen *as = data;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof *ifa)
    {
        uint16_t t = mnl_attr_get_type(a);
        const uint8_t *v = mnl_attr_get_payload(a);
        if (ifa->ifa_family == AF_INET6 && t == IFA_ADDRESS) {
            as->v6 += (int)ifa->ifa_index == as->index;
            as->link_locals += v[0] == 0xfe && (v[1] & 0xc0) == 0x80;
        }
        if (ifa->ifa_family == AF_INET && t == IFA_LOCAL && (int)ifa->ifa_index == as->index)
            as->v4_found += mnl_attr_get_u32(a) == as->v4 && ifa->ifa_prefixlen == as->prefix;
    }
    return MNL_CB_OK;
}

static addrs_seen find_addrs(int index, uint32_t v4, uint8_t prefix)
{
    addrs_seen as = {.index = index, .v4 = v4, .prefix = prefix};
    if (dump(RTM_GETADDR, sizeof(struct ifaddrmsg), AF_UNSPEC, on_addr, &as) < 0)
        as.v4_found = as.v6 = as.link_locals = -1;
    return as;
}

typedef struct route_seen {
    uint32_t gateway;
    int oif;
    int found; /* default routes via gateway on oif */
} route_seen;

static int on_route(const struct nlmsghdr *nlh, void *data)
{
    route_seen *rs = data;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    if (rtm->rtm_dst_len != 0 || rtm->rtm_table != RT_TABLE_MAIN)
        return MNL_CB_OK;
    uint32_t gateway = 0;
    int oif = 0;
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof *rtm)
    {
        if (mnl_attr_get_type(a) == RTA_GATEWAY)
            gateway = mnl_attr_get_u32(a);
        if (mnl_attr_get_type(a) == RTA_OIF)
            oif = (int)mnl_attr_get_u32(a);
    }
    rs->found += gateway == rs->gateway && oif == rs->oif;
    return MNL_CB_OK;
}

static int default_routes_via(uint32_t gateway, int oif)
{
    route_seen rs = {.gateway = gateway, .oif = oif};
    return dump(RTM_GETROUTE, sizeof(struct rtmsg), AF_INET, on_route, &rs) < 0 ? -1 : rs.found;
}

/* ---- Workers: grandchildren in namespaces of their own ---- */

#define DNS_ADDR "10.77.0.1"

typedef struct worker {
    pid_t pid;
    int go; /* we write: 'c' to check and serve, 'u' to ask DNS_ADDR; closing it ends the worker */
    int report; /* it writes: 'r' ready, then 'l' listening or 'f' failed */
} worker;

/* What the worker sees of its namespace once the link is up. */
static int worker_sees_its_link(const egress_link *l)
{
    CHECK(find_link("lo").flags & IFF_UP);
    link_seen eth0 = find_link("eth0");
    CHECK(eth0.index > 0);
    CHECK(eth0.flags & IFF_UP);
    CHECK(carrier_within("eth0", 3000));
    addrs_seen as = find_addrs(eth0.index, l->peer_ip, l->prefix);
    CHECK_INT(as.v4_found, 1);
    CHECK_INT(as.v6, 0);
    CHECK_INT(as.link_locals, 0);
    CHECK_INT(default_routes_via(l->host_ip, eth0.index), 1);
    return 0;
}

/* A TCP listener on the worker's address, answering one "ping" with "pong". */
static int worker_serves_tcp(const egress_link *l, int report)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = l->peer_ip;
    CHECK(s >= 0);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(s, 1) == 0);
    CHECK(write(report, "l", 1) == 1);
    struct pollfd p = {.fd = s, .events = POLLIN};
    CHECK(poll(&p, 1, 5000) == 1);
    int c = accept(s, NULL, NULL);
    char got[4];
    CHECK(c >= 0);
    CHECK(recv(c, got, 4, MSG_WAITALL) == 4 && memcmp(got, "ping", 4) == 0);
    CHECK(send(c, "pong", 4, 0) == 4);
    close(c);
    close(s);
    return 0;
}

/* One UDP question to DNS_ADDR, as a worker's resolver would ask, and its
 * answer. */
static int worker_asks_dns(void)
{
    CHECK(carrier_within("eth0", 3000));
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    CHECK(inet_pton(AF_INET, DNS_ADDR, &a.sin_addr) == 1);
    char got[4];
    CHECK(sendto(s, "dns?", 4, 0, (struct sockaddr *)&a, sizeof a) == 4);
    CHECK(recv(s, got, 4, 0) == 4 && memcmp(got, "dns!", 4) == 0);
    close(s);
    return 0;
}

static int worker_main(const egress_link *l, int go, int report)
{
    if (unshare(CLONE_NEWNET) < 0 || write(report, "r", 1) != 1)
        return 1;
    char cmd;
    if (read(go, &cmd, 1) != 1)
        return 0;
    if (cmd == 'u')
        return worker_asks_dns();
    if (worker_sees_its_link(l) != 0) {
        (void)!write(report, "f", 1);
        return 1;
    }
    int rc = worker_serves_tcp(l, report);
    /* And still none once traffic has flowed. */
    return rc ? rc : worker_sees_its_link(l);
}

static int worker_start(worker *w, const egress_link *l)
{
    int go[2], report[2];
    CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(report, O_CLOEXEC) == 0);
    fflush(stdout);
    fflush(stderr);
    w->pid = fork();
    CHECK(w->pid >= 0);
    if (w->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(go[1]);
        close(report[0]);
        _exit(worker_main(l, go[0], report[1]));
    }
    close(go[0]);
    close(report[1]);
    w->go = go[1];
    w->report = report[0];
    char c;
    CHECK(read(w->report, &c, 1) == 1 && c == 'r');
    return 0;
}

/* Ends the worker (if it waits for a command) and reaps it: 0 when it exited
 * with 0. */
static int worker_stop(worker *w)
{
    close(w->go);
    int status;
    CHECK(waitpid(w->pid, &status, 0) == w->pid);
    close(w->report);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return 0;
}

static int tcp_ping(uint32_t addr)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    a.sin_addr.s_addr = addr;
    char got[4];
    CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(send(s, "ping", 4, 0) == 4);
    CHECK(recv(s, got, 4, MSG_WAITALL) == 4 && memcmp(got, "pong", 4) == 0);
    close(s);
    return 0;
}

/* The worker checks its side, then we talk TCP to it over the pair. */
static int worker_check(worker *w, const egress_link *l)
{
    char c;
    CHECK(write(w->go, "c", 1) == 1);
    CHECK(read(w->report, &c, 1) == 1 && c == 'l');
    CHECK(tcp_ping(l->peer_ip) == 0);
    return worker_stop(w);
}

/* ---- The pair ---- */

static int host_sees_its_end(const egress_link *l)
{
    link_seen host = find_link(l->host_if);
    CHECK(host.index > 0);
    CHECK(host.flags & IFF_UP);
    CHECK(carrier_within(l->host_if, 3000));
    addrs_seen as = find_addrs(host.index, l->host_ip, l->prefix);
    CHECK_INT(as.v4_found, 1);
    CHECK_INT(as.v6, 0);
    CHECK_INT(as.link_locals, 0);
    return 0;
}

static int a_pair_carries_tcp_without_ipv6(void)
{
    egress_link l = slot(1);
    worker w;
    CHECK(worker_start(&w, &l) == 0);
    ino_t ns = netns_now();
    int fds = proc_count_fds(0);
    CHECK_INT(egress_link_up(&l, w.pid), 0);
    CHECK(netns_now() == ns);
    CHECK_INT(proc_count_fds(0), fds);
    CHECK(host_sees_its_end(&l) == 0);
    CHECK(worker_check(&w, &l) == 0);
    return host_sees_its_end(&l);
}

static void test_a_pair_carries_tcp_without_ipv6(void **state)
{
    (void)state;
    in_private_netns(a_pair_carries_tcp_without_ipv6);
}

/* A request of our own, outside the module: 0 once the kernel ACKs it. */
static int ask(struct nlmsghdr *nlh)
{
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = 1;
    struct mnl_socket *s = mnl_socket_open(NETLINK_ROUTE);
    CHECK(s && mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) == 0);
    CHECK(mnl_socket_sendto(s, nlh, nlh->nlmsg_len) > 0);
    char buf[4096];
    ssize_t n = mnl_socket_recvfrom(s, buf, sizeof buf);
    int r = n > 0 ? mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(s), NULL, NULL) : -1;
    int err = errno;
    mnl_socket_close(s);
    CHECK_INT(r < 0 ? -err : 0, 0);
    return 0;
}

static int plain_up(const char *name)
{
    char buf[512] = {0};
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_flags = ifi->ifi_change = IFF_UP;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    return ask(nlh);
}

/* The checks above would see an fe80:: if there were one: a veth pair
 * brought up without egress_link gets one at each end. */
static int ipv6_would_be_seen(void)
{
    char buf[512] = {0};
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "plain0");
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "plain1");
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    CHECK(ask(nlh) == 0);
    CHECK(plain_up("plain0") == 0 && plain_up("plain1") == 0);
    CHECK(carrier_within("plain0", 3000));
    int index = find_link("plain0").index;
    for (int waited = 0; waited < 3000 && find_addrs(index, 0, 0).v6 == 0; waited += 10)
        usleep(10 * 1000);
    CHECK(find_addrs(index, 0, 0).link_locals > 0);
    return 0;
}

static void test_ipv6_would_be_seen(void **state)
{
    (void)state;
    in_private_netns(ipv6_would_be_seen);
}

/* EEXIST, the caller's remedy (delete, retry), then ENODEV. */
static int a_taken_name_is_eexist_until_deleted(void)
{
    egress_link l = slot(1);
    worker a, b;
    CHECK(worker_start(&a, &l) == 0 && worker_start(&b, &l) == 0);
    CHECK_INT(egress_link_up(&l, a.pid), 0);
    CHECK_INT(egress_link_up(&l, b.pid), -EEXIST);
    CHECK_INT(egress_link_delete(l.host_if), 0);
    CHECK_INT(find_link(l.host_if).index, 0);
    CHECK_INT(egress_link_delete(l.host_if), -ENODEV);
    CHECK_INT(egress_link_up(&l, b.pid), 0);
    CHECK(worker_check(&b, &l) == 0);
    return worker_stop(&a);
}

static void test_a_taken_name_is_eexist_until_deleted(void **state)
{
    (void)state;
    in_private_netns(a_taken_name_is_eexist_until_deleted);
}

static int a_worker_with_an_eth0_is_ebusy(void)
{
    egress_link one = slot(1), two = slot(2);
    worker w;
    CHECK(worker_start(&w, &one) == 0);
    CHECK_INT(egress_link_up(&one, w.pid), 0);
    CHECK_INT(egress_link_up(&two, w.pid), -EBUSY);
    CHECK_INT(find_link(two.host_if).index, 0);
    return worker_check(&w, &one);
}

static void test_a_worker_with_an_eth0_is_ebusy(void **state)
{
    (void)state;
    in_private_netns(a_worker_with_an_eth0_is_ebusy);
}

static int a_dead_pid_leaves_nothing(void)
{
    egress_link l = slot(1);
    pid_t dead = fork();
    CHECK(dead >= 0);
    if (dead == 0)
        _exit(0);
    CHECK(waitpid(dead, NULL, 0) == dead);
    ino_t ns = netns_now();
    int fds = proc_count_fds(0);
    int err = egress_link_up(&l, dead);
    CHECK(err < 0);
    CHECK_INT(err, -ENOENT);
    CHECK_INT(find_link(l.host_if).index, 0);
    CHECK(netns_now() == ns);
    CHECK_INT(proc_count_fds(0), fds);
    return 0;
}

static void test_a_dead_pid_leaves_nothing(void **state)
{
    (void)state;
    in_private_netns(a_dead_pid_leaves_nothing);
}

/* A default route nothing can replace (NLM_F_EXCL), with no link needed. */
static int add_blackhole_default(void)
{
    char buf[512] = {0};
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_BLACKHOLE;
    return ask(nlh);
}

/* The last step fails, once both ends exist and are up: with our own pid
 * both ends land here, where a default route is already taken. Both ends
 * must go. */
static int a_late_failure_deletes_the_pair(void)
{
    egress_link l = slot(1);
    CHECK(add_blackhole_default() == 0);
    ino_t ns = netns_now();
    int fds = proc_count_fds(0);
    CHECK_INT(egress_link_up(&l, getpid()), -EEXIST);
    CHECK_INT(find_link(l.host_if).index, 0);
    CHECK_INT(find_link("eth0").index, 0);
    CHECK(netns_now() == ns);
    CHECK_INT(proc_count_fds(0), fds);
    return 0;
}

static void test_a_late_failure_deletes_the_pair(void **state)
{
    (void)state;
    in_private_netns(a_late_failure_deletes_the_pair);
}

/* The kernel deletes a pair by itself once its worker's namespace is gone,
 * in the background: the name is free again some time later, not at once
 * (how much later is printed: how long a slot's name stays taken). */
static int a_pair_goes_with_its_worker(void)
{
    enum { ROUNDS = 10 };
    double gone[ROUNDS];
    egress_link l = slot(1);
    for (int i = 0; i < ROUNDS; i++) {
        worker w;
        CHECK(worker_start(&w, &l) == 0);
        CHECK_INT(egress_link_up(&l, w.pid), 0);
        CHECK(worker_stop(&w) == 0);
        double t0 = now_us();
        for (int ms = 0; find_link(l.host_if).index > 0 && ms < 5000; ms++)
            usleep(1000);
        CHECK_INT(find_link(l.host_if).index, 0);
        gone[i] = now_us() - t0;
    }
    print_times("name free after exit", gone, ROUNDS);
    return 0;
}

static void test_a_pair_goes_with_its_worker(void **state)
{
    (void)state;
    in_private_netns(a_pair_goes_with_its_worker);
}

/* ---- The sweep and the dummy ---- */

static int the_sweep_takes_prefix_and_digits_only(void)
{
    const char *go[] = {"hth1", "hth22", "hth007"};
    const char *stay[] = {"hthx", "eth9", "hth", "hth1a", "xhth3"};
    uint32_t a = ntohl(ip("10.88.0.1"));
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(egress_link_dummy(go[i], htonl(a++)), 0);
    for (size_t i = 0; i < 5; i++)
        CHECK_INT(egress_link_dummy(stay[i], htonl(a++)), 0);
    egress_link l = slot(5);
    worker w;
    CHECK(worker_start(&w, &l) == 0);
    CHECK_INT(egress_link_up(&l, w.pid), 0);

    CHECK_INT(egress_link_sweep("hth"), 4);
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(find_link(go[i]).index, 0);
    CHECK_INT(find_link("hth5").index, 0);
    for (size_t i = 0; i < 5; i++)
        CHECK(find_link(stay[i]).index > 0);
    CHECK_INT(egress_link_sweep("hth"), 0);
    return worker_stop(&w);
}

static void test_the_sweep_takes_prefix_and_digits_only(void **state)
{
    (void)state;
    in_private_netns(the_sweep_takes_prefix_and_digits_only);
}

/* The DNS address answers a worker, whose packets reach it through its own
 * pair; the socket bound to it sees the worker's own address. */
static int the_dummy_answers_a_worker(void)
{
    egress_link l = slot(1);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)}, from;
    socklen_t from_len = sizeof from;
    CHECK(inet_pton(AF_INET, DNS_ADDR, &a.sin_addr) == 1);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    worker w;
    CHECK(worker_start(&w, &l) == 0);
    CHECK_INT(egress_link_up(&l, w.pid), 0);
    CHECK(write(w.go, "u", 1) == 1);
    struct pollfd p = {.fd = s, .events = POLLIN};
    char got[4];
    CHECK(poll(&p, 1, 5000) == 1);
    CHECK(recvfrom(s, got, 4, 0, (struct sockaddr *)&from, &from_len) == 4);
    CHECK(memcmp(got, "dns?", 4) == 0 && from.sin_addr.s_addr == l.peer_ip);
    CHECK(sendto(s, "dns!", 4, 0, (struct sockaddr *)&from, from_len) == 4);
    close(s);
    return worker_stop(&w);
}

static int the_dummy_holds_its_address(void)
{
    uint32_t dns = ip(DNS_ADDR);
    CHECK_INT(egress_link_dummy("hthdns", dns), 0);
    link_seen d = find_link("hthdns");
    CHECK(d.index > 0);
    CHECK(d.flags & IFF_UP);
    addrs_seen as = find_addrs(d.index, dns, 32);
    CHECK_INT(as.v4_found, 1);
    CHECK_INT(as.v6, 0);
    CHECK_INT(as.link_locals, 0);
    CHECK(the_dummy_answers_a_worker() == 0);
    CHECK_INT(egress_link_dummy("hthdns", dns), -EEXIST);
    CHECK_INT(egress_link_delete("hthdns"), 0);
    CHECK_INT(find_link("hthdns").index, 0);
    return 0;
}

static void test_the_dummy_holds_its_address(void **state)
{
    (void)state;
    in_private_netns(the_dummy_holds_its_address);
}

/* ---- How long ---- */

/* Each time a fresh worker, as after a clone: the cost the spawner's loop
 * pays per egress worker. */
static int how_long_a_pair_takes(void)
{
    double up[TIMED], del[TIMED];
    egress_link l = slot(1);
    for (int i = 0; i < TIMED; i++) {
        worker w;
        CHECK(worker_start(&w, &l) == 0);
        double t0 = now_us();
        CHECK_INT(egress_link_up(&l, w.pid), 0);
        double t1 = now_us();
        CHECK_INT(egress_link_delete(l.host_if), 0);
        double t2 = now_us();
        CHECK(worker_stop(&w) == 0);
        up[i] = t1 - t0;
        del[i] = t2 - t1;
    }
    print_times("egress_link_up", up, TIMED);
    print_times("egress_link_delete", del, TIMED);
    return 0;
}

static void test_how_long_a_pair_takes(void **state)
{
    (void)state;
    in_private_netns(how_long_a_pair_takes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slot_is_a_slash_30_after_the_reserved_one),
        cmocka_unit_test(test_slots_and_their_edges),
        cmocka_unit_test(test_the_host_bits_of_the_base_are_ignored),
        cmocka_unit_test(test_malformed_links_are_einval),
        cmocka_unit_test(test_a_pair_carries_tcp_without_ipv6),
        cmocka_unit_test(test_ipv6_would_be_seen),
        cmocka_unit_test(test_a_taken_name_is_eexist_until_deleted),
        cmocka_unit_test(test_a_worker_with_an_eth0_is_ebusy),
        cmocka_unit_test(test_a_dead_pid_leaves_nothing),
        cmocka_unit_test(test_a_late_failure_deletes_the_pair),
        cmocka_unit_test(test_a_pair_goes_with_its_worker),
        cmocka_unit_test(test_the_sweep_takes_prefix_and_digits_only),
        cmocka_unit_test(test_the_dummy_holds_its_address),
        cmocka_unit_test(test_how_long_a_pair_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
