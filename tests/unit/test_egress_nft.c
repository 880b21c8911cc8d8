/*
 * test_egress_nft.c — Hearth's nftables table for the egress network mode:
 * the CIDR syntax operators write, the rule text, and the rules loaded for
 * real. Every test that loads rules does so in network namespaces of its
 * own (a forked child unshares them), never in the host's: what the kernel
 * lists, and what a connect() from a "worker" namespace meets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "egress_nft.h"

/* ---- checks in a child: cmocka's asserts belong to the parent ---- */

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* A call that must return 0; it is handed err_ to write its reason into,
 * which the failure message shows. */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        char err_[512] = "";                                                                       \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, err_);            \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

#define SKIP_STATUS 77

/* Runs fn in a forked child that first unshares its network namespace;
 * the child's exit status is the verdict. exit(), not _exit(), so that
 * LeakSanitizer looks at the child too. */
static void in_fresh_netns(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) < 0) {
            perror("unshare(CLONE_NEWNET)");
            exit(SKIP_STATUS);
        }
        exit(fn());
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS)
        skip();
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- looking at the kernel's rules ---- */

/* What nft would print for `cmd`, or NULL. */
static char *nft_says(const char *cmd)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft)
        return NULL;
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    char *out = NULL;
    if (nft_run_cmd_from_buffer(nft, cmd) == 0)
        out = strdup(nft_ctx_get_output_buffer(nft));
    else
        fprintf(stderr, "nft %s: %s\n", cmd, nft_ctx_get_error_buffer(nft));
    nft_ctx_free(nft);
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- network plumbing in the current namespace (ioctl and rtnetlink) ---- */

static uint32_t ip(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : 0;
}

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
    int rc = ioctl(fd, req, ifr);
    close(fd);
    return rc;
}

static int link_up(const char *name)
{
    struct ifreq ifr = {0};
    if (ifreq_ioctl(name, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

static void set_sockaddr(struct sockaddr *sa, uint32_t addr)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = addr};
    memcpy(sa, &sin, sizeof sin);
}

/* Puts addr/prefix on an interface (or an alias such as "lo:1"). */
static int add_addr(const char *name, const char *addr, int prefix)
{
    struct ifreq ifr = {0};
    set_sockaddr(&ifr.ifr_addr, ip(addr));
    if (ifreq_ioctl(name, SIOCSIFADDR, &ifr) < 0)
        return -1;
    set_sockaddr(&ifr.ifr_netmask, prefix ? htonl(UINT32_MAX << (32 - prefix)) : 0);
    if (ifreq_ioctl(name, SIOCSIFNETMASK, &ifr) < 0)
        return -1;
    return link_up(name);
}

/* A route to dst/prefix (0.0.0.0/0: the default) through gateway gw. */
static int add_route(const char *dst, int prefix, const char *gw)
{
    struct rtentry rt = {0};
    set_sockaddr(&rt.rt_dst, ip(dst));
    set_sockaddr(&rt.rt_genmask, prefix ? htonl(UINT32_MAX << (32 - prefix)) : 0);
    set_sockaddr(&rt.rt_gateway, ip(gw));
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = ioctl(fd, SIOCADDRT, &rt);
    close(fd);
    return rc;
}

/* Sends one rtnetlink request and reads its acknowledgement. */
static int rtnl_request(struct nlmsghdr *nlh)
{
    struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
    if (!nl)
        return -1;
    char answer[MNL_SOCKET_BUFFER_SIZE];
    int rc = -1;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 &&
        mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) >= 0) {
        ssize_t n = mnl_socket_recvfrom(nl, answer, sizeof answer);
        if (n > 0)
            rc = mnl_cb_run(answer, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL,
                            NULL) < 0
                     ? -1
                     : 0;
    }
    mnl_socket_close(nl);
    return rc;
}

/* A veth pair: `name` here, `peer` in the namespace peer_ns (an fd). */
static int make_veth(const char *name, const char *peer, int peer_ns)
{
    char msg[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(msg);
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peerinfo = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    /* The peer's attributes start with an ifinfomsg of their own. */
    memset(mnl_nlmsg_get_payload_tail(nlh), 0, NLMSG_ALIGN(sizeof(struct ifinfomsg)));
    nlh->nlmsg_len += NLMSG_ALIGN(sizeof(struct ifinfomsg));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_ns);
    mnl_attr_nest_end(nlh, peerinfo);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, linkinfo);
    return rtnl_request(nlh);
}

static int new_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return -1;
    return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

static int enter(int ns)
{
    return setns(ns, CLONE_NEWNET);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* ---- sockets ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_listen(const char *addr, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = ip(addr)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0) {
        perror("tcp_listen");
        return -1;
    }
    return fd;
}

typedef struct attempt {
    int error;      /* 0 connected, else errno */
    double seconds; /* how long connect() took */
} attempt;

/* connect() from src (NULL: any) to dst:port, given up after `patience`
 * seconds (ETIMEDOUT then: the packets vanished). */
static attempt tcp_try(const char *src, const char *dst, uint16_t port, double patience)
{
    attempt a = {.error = EIO};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = (time_t)patience,
                         .tv_usec = (long)((patience - (int)patience) * 1e6)};
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = ip(dst)};
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = src ? ip(src) : 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        (src && bind(fd, (struct sockaddr *)&from, sizeof from) < 0)) {
        a.error = errno;
        if (fd >= 0)
            close(fd);
        return a;
    }
    double t0 = now_s();
    a.error = connect(fd, (struct sockaddr *)&to, sizeof to) == 0 ? 0 : errno;
    if (a.error == EINPROGRESS)
        a.error = ETIMEDOUT;
    a.seconds = now_s() - t0;
    close(fd);
    return a;
}

/* Refused at once, as a TCP reset does: never a wait for a timeout. */
static bool refused_at_once(attempt a)
{
    if (a.error != ECONNREFUSED || a.seconds > 0.5)
        fprintf(stderr, "  expected an immediate refusal, got %s after %.3f s\n", strerror(a.error),
                a.seconds);
    return a.error == ECONNREFUSED && a.seconds < 0.5;
}

static bool connected(attempt a)
{
    if (a.error)
        fprintf(stderr, "  expected a connection, got %s after %.3f s\n", strerror(a.error),
                a.seconds);
    return a.error == 0;
}

/* A connected UDP socket's send, then what the answer (an ICMP error,
 * reported on the socket) says: the errno of recv, or 0 for silence. */
static int udp_error(const char *dst, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = ip(dst)};
    struct timeval tv = {.tv_sec = 1};
    char byte = 'x';
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) < 0)
        return -1;
    int e = send(fd, &byte, 1, 0) < 0 ? errno : 0;
    if (!e)
        e = recv(fd, &byte, 1, 0) < 0 ? errno : 0;
    close(fd);
    return e == EAGAIN ? 0 : e;
}

/* The address of the peer of the next connection waiting on lfd, or 0
 * when none arrives within a fifth of a second. */
static uint32_t accepted_from(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (poll(&p, 1, 200) != 1)
        return 0;
    int fd = accept4(lfd, (struct sockaddr *)&sin, &len, SOCK_CLOEXEC);
    if (fd < 0)
        return 0;
    close(fd);
    return sin.sin_addr.s_addr;
}

/* ---- egress_cidr_parse and egress_cidr_format ---- */

static void test_parse_reads_networks_and_ports(void **state)
{
    (void)state;
    egress_cidr c;
    char err[256];
    assert_int_equal(egress_cidr_parse("10.0.0.0/8", false, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("10.0.0.0"));
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.port, 0);
    assert_int_equal(egress_cidr_parse("1.2.3.4", false, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("1.2.3.4"));
    assert_int_equal(c.prefix, 32);
    assert_int_equal(egress_cidr_parse("0.0.0.0/0", false, &c, err, sizeof err), 0);
    assert_int_equal(c.prefix, 0);
    assert_int_equal(egress_cidr_parse("192.168.1.5:5432", true, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("192.168.1.5"));
    assert_int_equal(c.prefix, 32);
    assert_int_equal(c.port, 5432);
    assert_int_equal(egress_cidr_parse("255.255.255.255/32:65535", true, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(egress_cidr_parse("10.1.2.0/24", true, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 0);
}

static void refused(const char *s, bool with_port, const char *says)
{
    egress_cidr c = {.addr = 0x12345678, .prefix = 7, .port = 9};
    char err[256] = "";
    if (egress_cidr_parse(s, with_port, &c, err, sizeof err) != -1)
        fail_msg("\"%s\" was accepted", s ? s : "(null)");
    assert_int_equal(c.addr, 0x12345678); /* untouched on error */
    assert_int_equal(c.prefix, 7);
    if (!strstr(err, says))
        fail_msg("\"%s\": expected \"%s\" in \"%s\"", s ? s : "(null)", says, err);
}

static void test_parse_refuses_hostile_text(void **state)
{
    (void)state;
    refused("10.0.0.0/33", false, "prefix length");
    refused("10.0.0.0/8:0", true, "port");
    refused("10.0.0.0/8:65536", true, "port");
    refused("10.0.0.0/8:", true, "port");
    refused("10.0.0.0/8:80:80", true, "not an IPv4 network");
    refused("10.0.0.0/8:+80", true, "port");
    refused(":80", true, "not an IPv4 network");
    refused("1.2.3.4/8 ", false, "not an IPv4 network");
    refused(" 1.2.3.4", false, "not an IPv4 network");
    refused("1.2.3.4\n", false, "not an IPv4 network");
    refused("1.2.3", false, "not an IPv4 network");
    refused("1.2.3.4.5", false, "not an IPv4 network");
    refused("256.0.0.0/8", false, "not an IPv4 network");
    refused("010.0.0.0/8", false, "leading zeros");
    refused("1.2.3.4/", false, "prefix length");
    refused("1.2.3.4/-1", false, "prefix length");
    refused("1.2.3.4/8/8", false, "not an IPv4 network");
    refused("0x0a.0.0.0/8", false, "not an IPv4 network");
    refused("", false, "empty");
    refused(NULL, false, "empty");
    refused("::1/128", false, "workers have no IPv6");
    refused("fe80::/10", true, "workers have no IPv6");
    refused("[2001:db8::1]:443", true, "workers have no IPv6");
    refused("1.2.3.4/32:80", false, "only accepted in an allow rule");
    refused("10.0.0.1/8", false, "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?");
    refused("10.0.0.1/8:80", true, "did you mean 10.0.0.0/8:80?");
    char garbage[301];
    for (int i = 0; i < 300; i++)
        garbage[i] = (char)(i % 2 ? '\x1b' : '9');
    garbage[300] = '\0';
    refused(garbage, true, "too long");
}

static void test_parse_error_fits_a_small_buffer(void **state)
{
    (void)state;
    egress_cidr c;
    char err[8];
    memset(err, 'z', sizeof err);
    assert_int_equal(egress_cidr_parse("10.0.0.1/8", false, &c, err, sizeof err), -1);
    assert_non_null(memchr(err, '\0', sizeof err));
    assert_int_equal(egress_cidr_parse("10.0.0.1/8", false, &c, NULL, 0), -1);
}

static void test_format_round_trips(void **state)
{
    (void)state;
    const char *canon[] = {"10.0.0.0/8",
                           "1.2.3.4/32",
                           "0.0.0.0/0",
                           "192.168.1.5/32:5432",
                           "255.255.255.255/32:65535",
                           "172.16.0.0/12:1"};
    for (size_t i = 0; i < sizeof canon / sizeof *canon; i++) {
        egress_cidr c, again;
        char text[EGRESS_CIDR_TEXT], err[256];
        assert_int_equal(egress_cidr_parse(canon[i], true, &c, err, sizeof err), 0);
        egress_cidr_format(&c, text);
        assert_string_equal(text, canon[i]);
        assert_int_equal(egress_cidr_parse(text, true, &again, err, sizeof err), 0);
        assert_int_equal(c.addr, again.addr);
        assert_int_equal(c.prefix, again.prefix);
        assert_int_equal(c.port, again.port);
    }
}

/* ---- the rule text ---- */

static egress_cidr cidr(const char *s)
{
    egress_cidr c = {0};
    char err[256];
    if (egress_cidr_parse(s, true, &c, err, sizeof err) < 0)
        fprintf(stderr, "cidr(%s): %s\n", s, err);
    return c;
}

static void test_host_text_keeps_sets_disjoint(void **state)
{
    (void)state;
    egress_cidr deny[] = {cidr("10.1.0.0/16"), cidr("10.0.0.0/8"), cidr("10.0.0.0/8"),
                          cidr("192.0.2.0/24")};
    egress_cidr allow[] = {cidr("10.1.2.3/32:5432"), cidr("10.1.0.0/16:5432"),
                           cidr("10.1.2.3/32:80"), cidr("203.0.113.0/24")};
    egress_rules r = {
        .subnet = cidr("10.213.0.0/16"), .deny = deny, .ndeny = 4, .allow = allow, .nallow = 4};
    char err[256];
    char *t = egress_nft_host_text(&r, err, sizeof err);
    assert_non_null(t);
    /* Nested entries would make nftables refuse the set: only the widest stays. */
    assert_int_equal(count(t, "10.0.0.0/8,"), 1);
    assert_null(strstr(t, "10.1.0.0/16,"));
    assert_non_null(strstr(t, "192.0.2.0/24,"));
    assert_non_null(strstr(t, "10.1.0.0/16 . 5432,"));
    assert_null(strstr(t, "10.1.2.3/32 . 5432"));
    assert_non_null(strstr(t, "10.1.2.3/32 . 80,"));
    assert_non_null(strstr(t, "203.0.113.0/24,"));
    assert_null(strstr(t, "dns_redirect")); /* no DNS asked for */
    assert_null(strstr(t, "meta nfproto ipv4 iifname != \"hth*\" oifname != \"hth*\" drop"));
    free(t);
}

static void test_text_refuses_rules_that_are_not_networks(void **state)
{
    (void)state;
    char err[256];
    egress_cidr bad = {.addr = ip("10.0.0.1"), .prefix = 8};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"), .deny = &bad, .ndeny = 1};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "deny entry 0"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .ndeny = 3};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "no array"));
    r = (egress_rules){.subnet = cidr("0.0.0.0/0")};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "subnet"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .dns_port = 5353};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "DNS"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .deny = &bad, .ndeny = 65537};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "at most"));
    egress_cidr ported = cidr("10.0.0.0/8:80");
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .deny = &ported, .ndeny = 1};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "without a port"));
    assert_int_equal(egress_nft_install_host(NULL, err, sizeof err), -1);
}

static void test_a_long_list_is_still_one_rule(void **state)
{
    (void)state;
    enum { N = 5000 };
    egress_cidr *deny = calloc(N, sizeof *deny);
    assert_non_null(deny);
    for (uint32_t i = 0; i < N; i++)
        deny[i] = (egress_cidr){.addr = htonl(0x0b000000u + (i << 8)), .prefix = 24};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"), .deny = deny, .ndeny = N};
    char err[256];
    char *t = egress_nft_host_text(&r, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(count(t, "@deny"), 1);
    assert_int_equal(count(t, "/24,\n"), N);
    free(t);
    free(deny);
}

/* ---- the host rules, loaded ---- */

static int host_rules_load_and_list(void)
{
    egress_cidr deny[] = {cidr("192.0.2.0/24"), cidr("198.51.100.0/24")};
    egress_cidr allow[] = {cidr("10.50.0.1/32:5432"), cidr("203.0.113.0/24")};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"),
                      .deny = deny,
                      .ndeny = 2,
                      .allow = allow,
                      .nallow = 2,
                      .dns_addr = ip("10.99.0.53"),
                      .dns_port = 5353,
                      .guard_forward = true};
    CHECK(egress_nft_present() == 0);
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
    CHECK(egress_nft_present() == 1);
    char *list = nft_says("list table inet " EGRESS_TABLE);
    CHECK(list);
    CHECK(strstr(list, "192.0.2.0/24"));
    CHECK(strstr(list, "198.51.100.0/24"));
    CHECK(strstr(list, "10.50.0.1 . 5432"));
    CHECK(strstr(list, "203.0.113.0/24"));
    CHECK(strstr(list, "ip saddr 10.213.0.0/16 oifname != \"hth*\" masquerade"));
    CHECK(strstr(list, "dnat ip to 10.99.0.53:5353"));
    CHECK(strstr(list, "ip daddr 10.99.0.53 meta l4proto { tcp, udp } th dport 5353 accept"));
    CHECK(strstr(list, "fib saddr . iif oif"));
    CHECK(strstr(list, "reject with tcp reset"));
    CHECK(strstr(list, "reject with icmpx admin-prohibited"));
    CHECK(strstr(list, "meta nfproto ipv4 iifname != \"hth*\" oifname != \"hth*\" drop"));
    free(list);
    return 0;
}

static void test_host_rules_load_and_list(void **state)
{
    (void)state;
    in_fresh_netns(host_rules_load_and_list);
}

static int a_second_install_replaces_the_first(void)
{
    egress_cidr first[] = {cidr("192.0.2.0/24")};
    egress_cidr second[] = {cidr("198.51.100.0/24")};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"), .deny = first, .ndeny = 1};
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
    r.deny = second;
    r.dns_addr = ip("10.99.0.53"); /* DNS on port 53 itself: nothing to redirect */
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
    char *all = nft_says("list ruleset");
    CHECK(all);
    CHECK(count(all, "table inet " EGRESS_TABLE " {") == 1);
    CHECK(count(all, "chain worker_out {") == 1);
    CHECK(count(all, "masquerade") == 1);
    CHECK(!strstr(all, "192.0.2.0/24"));
    CHECK(strstr(all, "198.51.100.0/24"));
    CHECK(!strstr(all, "dnat"));
    CHECK(strstr(all, "ip daddr 10.99.0.53 meta l4proto { tcp, udp } th dport 53 accept"));
    CHECK(!strstr(all, "oifname != \"hth*\" drop")); /* no guard this time */
    free(all);
    return 0;
}

static void test_a_second_install_replaces_the_first(void **state)
{
    (void)state;
    in_fresh_netns(a_second_install_replaces_the_first);
}

static int remove_touches_only_its_own_table(void)
{
    const char *other =
        "table inet other {\n"
        "\tset keep {\n\t\ttype ipv4_addr\n\t\telements = { 192.0.2.1 }\n\t}\n"
        "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tip saddr @keep counter accept\n\t}\n}\n";
    char *none = nft_says(other);
    CHECK(none);
    free(none);
    char *before = nft_says("list table inet other");
    CHECK(before);
    egress_rules r = {.subnet = cidr("10.213.0.0/16")}; /* empty lists load too */
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
    char err[256];
    CHECK(egress_nft_remove(err, sizeof err) == 1);
    CHECK(egress_nft_present() == 0);
    CHECK(egress_nft_remove(err, sizeof err) == 0);
    char *after = nft_says("list table inet other");
    CHECK(after);
    CHECK(strcmp(before, after) == 0);
    free(before);
    free(after);
    return 0;
}

static void test_remove_touches_only_its_own_table(void **state)
{
    (void)state;
    in_fresh_netns(remove_touches_only_its_own_table);
}

/* Without CAP_NET_ADMIN, libnftables' own message reaches err. */
static int failures_say_why(void)
{
    egress_rules r = {.subnet = cidr("10.213.0.0/16")};
    char err[256] = "";
    CHECK(setgid(65534) == 0 && setuid(65534) == 0);
    prctl(PR_SET_DUMPABLE, 1); /* LeakSanitizer must still be able to look */
    CHECK(egress_nft_install_host(&r, err, sizeof err) == -1);
    fprintf(stderr, "  (unprivileged install says: %s)\n", err);
    CHECK(strstr(err, "Operation not permitted"));
    CHECK(egress_nft_present() == -1);
    CHECK(egress_nft_remove(err, sizeof err) == -1);
    return 0;
}

static void test_failures_say_why(void **state)
{
    (void)state;
    in_fresh_netns(failures_say_why);
}

/* libnftables exit()s when it cannot open its netlink socket; the module
 * must turn that into an error the caller sees, and the process lives on. */
static int no_free_fd_is_an_error(void)
{
    struct rlimit was, tight;
    int lowest = dup(0);
    CHECK(lowest >= 0 && getrlimit(RLIMIT_NOFILE, &was) == 0);
    close(lowest);
    tight = (struct rlimit){.rlim_cur = (rlim_t)lowest, .rlim_max = was.rlim_max};
    egress_rules r = {.subnet = cidr("10.213.0.0/16")};
    char err[256] = "";
    CHECK(setrlimit(RLIMIT_NOFILE, &tight) == 0);
    int rc = egress_nft_install_host(&r, err, sizeof err);
    int present = egress_nft_present();
    CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
    CHECK(rc == -1 && present == -1);
    CHECK(strstr(err, "netlink socket"));
    return 0;
}

static void test_no_free_fd_is_an_error(void **state)
{
    (void)state;
    in_fresh_netns(no_free_fd_is_an_error);
}

/*
 * Root mode for real, three namespaces as hearthd builds them:
 *   worker:  eth0 10.213.0.6/30, default route via 10.213.0.5
 *   host:    hth1 10.213.0.5/30; out0 192.0.2.1/24; on lo 10.50.0.1 (another
 *            of the host's addresses) and 10.99.0.53 (where workers send DNS);
 *            IPv4 forwarding on; routes to the outside's other addresses
 *   outside: eth0 192.0.2.2/24, on lo 203.0.113.9, 198.51.100.7 (to be
 *            denied) and 169.254.169.254; a route back to the workers
 * plus a second worker (hth2 10.213.0.9/30, eth0 10.213.0.10/30).
 * The caller's own namespace (fresh, from in_fresh_netns) is the host.
 */
typedef struct topology {
    int host, worker, worker2, outside;
} topology;

static int build_worker(topology *t, int *ns, const char *hth, const char *here, const char *there)
{
    CHECK((*ns = new_netns()) >= 0);
    CHECK(link_up("lo") == 0);
    CHECK(enter(t->host) == 0);
    CHECK(make_veth(hth, "eth0", *ns) == 0);
    CHECK(add_addr(hth, here, 30) == 0);
    CHECK(enter(*ns) == 0);
    CHECK(add_addr("eth0", there, 30) == 0);
    CHECK(add_route("0.0.0.0", 0, here) == 0);
    return enter(t->host);
}

static int build_outside(topology *t)
{
    CHECK((t->outside = new_netns()) >= 0);
    CHECK(link_up("lo") == 0);
    CHECK(add_addr("lo:1", "203.0.113.9", 32) == 0);
    CHECK(add_addr("lo:2", "198.51.100.7", 32) == 0);
    CHECK(add_addr("lo:3", "169.254.169.254", 32) == 0);
    CHECK(enter(t->host) == 0);
    CHECK(make_veth("out0", "eth0", t->outside) == 0);
    CHECK(add_addr("out0", "192.0.2.1", 24) == 0);
    CHECK(add_route("203.0.113.0", 24, "192.0.2.2") == 0);
    CHECK(add_route("198.51.100.0", 24, "192.0.2.2") == 0);
    CHECK(add_route("169.254.0.0", 16, "192.0.2.2") == 0);
    CHECK(enter(t->outside) == 0);
    CHECK(add_addr("eth0", "192.0.2.2", 24) == 0);
    CHECK(add_route("10.213.0.0", 16, "192.0.2.1") == 0);
    return enter(t->host);
}

static int build_topology(topology *t)
{
    CHECK((t->host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) >= 0);
    CHECK(link_up("lo") == 0);
    CHECK(add_addr("lo:1", "10.50.0.1", 32) == 0);
    CHECK(add_addr("lo:2", "10.99.0.53", 32) == 0);
    CHECK(write_file("/proc/sys/net/ipv4/ip_forward", "1") == 0);
    CHECK(build_worker(t, &t->worker, "hth1", "10.213.0.5", "10.213.0.6") == 0);
    CHECK(build_worker(t, &t->worker2, "hth2", "10.213.0.9", "10.213.0.10") == 0);
    return build_outside(t);
}

static int host_rules_hold_between_namespaces(void)
{
    topology t;
    CHECK(build_topology(&t) == 0);
    int host_any = tcp_listen("0.0.0.0", 8080); /* a service on every host address */
    int dns = tcp_listen("10.99.0.53", 5353);
    CHECK(host_any >= 0 && dns >= 0);
    CHECK(enter(t.outside) == 0);
    int outside_any = tcp_listen("0.0.0.0", 8080);
    CHECK(enter(t.worker2) == 0);
    int worker2_any = tcp_listen("0.0.0.0", 8080);
    CHECK(enter(t.worker) == 0);
    int worker_any = tcp_listen("0.0.0.0", 8080);
    CHECK(outside_any >= 0 && worker2_any >= 0 && worker_any >= 0);

    /* Without the rules, everything here is open: what follows is theirs. */
    CHECK(connected(tcp_try(NULL, "10.213.0.5", 8080, 2)));
    CHECK(connected(tcp_try(NULL, "10.213.0.10", 8080, 2)));
    CHECK(connected(tcp_try(NULL, "198.51.100.7", 8080, 2)));
    CHECK(enter(t.outside) == 0);
    CHECK(connected(tcp_try(NULL, "10.213.0.6", 8080, 2)));
    CHECK(accepted_from(host_any) && accepted_from(worker2_any) && accepted_from(outside_any) &&
          accepted_from(worker_any));

    CHECK(enter(t.host) == 0);
    egress_cidr deny[] = {cidr("198.51.100.0/24")};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"),
                      .deny = deny,
                      .ndeny = 1,
                      .dns_addr = ip("10.99.0.53"),
                      .dns_port = 5353,
                      .guard_forward = true};
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));

    CHECK(enter(t.worker) == 0);
    /* The world: reachable, and it sees the host's address (masquerade). */
    CHECK(connected(tcp_try(NULL, "203.0.113.9", 8080, 2)));
    CHECK(accepted_from(outside_any) == ip("192.0.2.1"));
    /* The host, on any of its addresses, another worker, link-local, a
     * denied network: refused at once. */
    CHECK(refused_at_once(tcp_try(NULL, "10.213.0.5", 8080, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "10.50.0.1", 8080, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "192.0.2.1", 8080, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "10.213.0.10", 8080, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "169.254.169.254", 8080, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "198.51.100.7", 8080, 2)));
    CHECK(udp_error("198.51.100.7", 9) == EHOSTUNREACH); /* icmpx admin-prohibited */
    CHECK(udp_error("10.50.0.1", 9) == EHOSTUNREACH);
    /* DNS: port 53 of the DNS address reaches the forwarder's real port. */
    CHECK(connected(tcp_try(NULL, "10.99.0.53", 53, 2)));
    /* A source address the worker does not own never leaves the host's
     * prerouting: another worker's, or one outside the subnet. */
    CHECK(add_addr("eth0:1", "10.213.0.10", 32) == 0);
    CHECK(add_addr("eth0:2", "172.16.0.1", 32) == 0);
    CHECK(tcp_try("10.213.0.10", "203.0.113.9", 8080, 0.3).error == ETIMEDOUT);
    CHECK(tcp_try("172.16.0.1", "203.0.113.9", 8080, 0.3).error == ETIMEDOUT);
    CHECK(accepted_from(outside_any) == 0);

    /* Nothing new goes into a worker, from outside or from the host's
     * forwarding (the host itself may: it is hearthd talking to it). */
    CHECK(enter(t.outside) == 0);
    CHECK(refused_at_once(tcp_try(NULL, "10.213.0.6", 8080, 2)));
    CHECK(enter(t.host) == 0);
    CHECK(connected(tcp_try(NULL, "10.213.0.6", 8080, 2)));
    CHECK(accepted_from(worker_any) == ip("10.213.0.5"));
    return 0;
}

static void test_host_rules_hold_between_namespaces(void **state)
{
    (void)state;
    in_fresh_netns(host_rules_hold_between_namespaces);
}

/* An allow wins over every deny: the host's own address, a denied network. */
static int allows_win_over_denies(void)
{
    topology t;
    CHECK(build_topology(&t) == 0);
    int host_db = tcp_listen("10.50.0.1", 5432);
    int host_other = tcp_listen("10.50.0.1", 5433);
    CHECK(host_db >= 0 && host_other >= 0);
    CHECK(enter(t.outside) == 0);
    int outside_any = tcp_listen("0.0.0.0", 8080);
    CHECK(outside_any >= 0);
    CHECK(enter(t.host) == 0);
    egress_cidr deny[] = {cidr("198.51.100.0/24")};
    egress_cidr allow[] = {cidr("10.50.0.1/32:5432"), cidr("198.51.100.7/32"),
                           cidr("169.254.169.254/32:8080")};
    egress_rules r = {
        .subnet = cidr("10.213.0.0/16"), .deny = deny, .ndeny = 1, .allow = allow, .nallow = 3};
    CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
    CHECK(enter(t.worker) == 0);
    CHECK(connected(tcp_try(NULL, "10.50.0.1", 5432, 2)));
    CHECK(refused_at_once(tcp_try(NULL, "10.50.0.1", 5433, 2))); /* that port only */
    CHECK(connected(tcp_try(NULL, "198.51.100.7", 8080, 2)));
    CHECK(connected(tcp_try(NULL, "169.254.169.254", 8080, 2)));
    return 0;
}

static void test_allows_win_over_denies(void **state)
{
    (void)state;
    in_fresh_netns(allows_win_over_denies);
}

/* With guard_forward, the host forwards nothing that involves no worker
 * (as before hearthd turned forwarding on), and workers still get out. */
static int the_guard_stops_other_forwarding(void)
{
    topology t;
    int lan;
    CHECK(build_topology(&t) == 0);
    CHECK((lan = new_netns()) >= 0);
    CHECK(link_up("lo") == 0);
    int lan_any = tcp_listen("0.0.0.0", 8080);
    CHECK(lan_any >= 0);
    CHECK(enter(t.host) == 0);
    CHECK(make_veth("lan0", "eth0", lan) == 0);
    CHECK(add_addr("lan0", "198.18.0.1", 24) == 0);
    CHECK(enter(lan) == 0);
    CHECK(add_addr("eth0", "198.18.0.2", 24) == 0);
    CHECK(add_route("0.0.0.0", 0, "198.18.0.1") == 0);
    CHECK(enter(t.outside) == 0);
    CHECK(add_route("198.18.0.0", 24, "192.0.2.1") == 0);
    for (int guard = 0; guard < 2; guard++) {
        egress_rules r = {.subnet = cidr("10.213.0.0/16"), .guard_forward = guard};
        CHECK(enter(t.host) == 0);
        CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
        CHECK(enter(t.outside) == 0);
        attempt a = tcp_try(NULL, "198.18.0.2", 8080, 0.3);
        CHECK(guard ? a.error == ETIMEDOUT : connected(a));
        CHECK(enter(t.worker) == 0);
        CHECK(connected(tcp_try(NULL, "198.18.0.2", 8080, 2)));
        while (accepted_from(lan_any))
            ;
    }
    return 0;
}

static void test_the_guard_stops_other_forwarding(void **state)
{
    (void)state;
    in_fresh_netns(the_guard_stops_other_forwarding);
}

/* ---- the rules inside a worker's namespace, loaded ---- */

/* The worker's namespace, with the host's address stood in for by
 * 10.9.9.9 on lo (inside, the host is a destination like any other, so
 * the rules must refuse it by address, not by interface), the worker's
 * own address 10.8.8.8 as the source of its connections, and a link-local
 * and a denied address, all with a listener on port 8080. */
static int build_inside(int *listeners, size_t n)
{
    const char *addrs[] = {"10.9.9.9", "10.8.8.8", "169.254.169.254", "10.7.7.7", "127.0.0.1"};
    char alias[16];
    CHECK(link_up("lo") == 0);
    for (size_t i = 0; i < 4; i++) {
        snprintf(alias, sizeof alias, "lo:%zu", i + 1);
        CHECK(add_addr(alias, addrs[i], 32) == 0);
    }
    for (size_t i = 0; i < n && i < 5; i++)
        CHECK((listeners[i] = tcp_listen(addrs[i], 8080)) >= 0);
    return 0;
}

static int inside_rules_refuse_the_host(void)
{
    int l[5];
    CHECK(build_inside(l, 5) == 0);
    CHECK(connected(tcp_try("10.8.8.8", "10.9.9.9", 8080, 2))); /* before: open */
    egress_cidr deny[] = {cidr("10.7.0.0/16")};
    egress_rules r = {.deny = deny, .ndeny = 1, .dns_addr = ip("10.0.2.3")};
    uint32_t host[] = {ip("10.9.9.9")};
    CHECK_OK(egress_nft_install_inside(&r, host, 1, ip("10.0.2.2"), err_, sizeof err_));
    CHECK(egress_nft_present() == 1);
    CHECK(refused_at_once(tcp_try("10.8.8.8", "10.9.9.9", 8080, 2)));
    CHECK(refused_at_once(tcp_try("10.8.8.8", "169.254.169.254", 8080, 2)));
    CHECK(refused_at_once(tcp_try("10.8.8.8", "10.7.7.7", 8080, 2)));
    CHECK(connected(tcp_try(NULL, "127.0.0.1", 8080, 2)));
    /* The host may still open connections to the worker (they come from
     * the gateway side): its replies are not refused. */
    CHECK(connected(tcp_try("10.9.9.9", "10.8.8.8", 8080, 2)));
    char *list = nft_says("list table inet " EGRESS_TABLE);
    CHECK(list);
    CHECK(strstr(list, "10.0.2.2"));
    CHECK(strstr(list, "ip daddr 10.0.2.3 meta l4proto { tcp, udp } th dport 53 accept"));
    free(list);
    return 0;
}

static void test_inside_rules_refuse_the_host(void **state)
{
    (void)state;
    in_fresh_netns(inside_rules_refuse_the_host);
}

static int an_allow_opens_a_host_port(void)
{
    int l[2];
    CHECK(build_inside(l, 2) == 0);
    CHECK((l[1] = tcp_listen("10.9.9.9", 8081)) >= 0);
    egress_cidr allow[] = {cidr("10.9.9.9/32:8080")};
    egress_rules r = {.allow = allow, .nallow = 1};
    uint32_t host[] = {ip("10.9.9.9")};
    CHECK_OK(egress_nft_install_inside(&r, host, 1, 0, err_, sizeof err_));
    CHECK(connected(tcp_try("10.8.8.8", "10.9.9.9", 8080, 2)));
    CHECK(refused_at_once(tcp_try("10.8.8.8", "10.9.9.9", 8081, 2)));
    return 0;
}

static void test_an_allow_opens_a_host_port(void **state)
{
    (void)state;
    in_fresh_netns(an_allow_opens_a_host_port);
}

/* linux/ipv6.h's in6_ifreq, which does not mix with netinet/in.h. */
struct in6_ifreq_ {
    struct in6_addr addr;
    uint32_t prefixlen;
    int ifindex;
};

/* IPv6 but loopback is refused: a worker has no IPv6 to speak. */
static int inside_rules_refuse_ipv6(void)
{
    int l[1];
    CHECK(build_inside(l, 0) == 0);
    (void)l;
    int fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd6 >= 0);
    struct in6_ifreq_ r6 = {.prefixlen = 128, .ifindex = (int)if_nametoindex("lo")};
    inet_pton(AF_INET6, "fd00::9", &r6.addr);
    CHECK(ioctl(fd6, SIOCSIFADDR, &r6) == 0);
    close(fd6);
    egress_rules r = {0};
    CHECK_OK(egress_nft_install_inside(&r, NULL, 0, 0, err_, sizeof err_));
    for (int i = 0; i < 2; i++) {
        const char *to = i == 0 ? "::1" : "fd00::9";
        int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
        inet_pton(AF_INET6, to, &sin6.sin6_addr);
        CHECK(s >= 0 && connect(s, (struct sockaddr *)&sin6, sizeof sin6) == 0);
        ssize_t sent = send(s, "x", 1, 0);
        int e = sent < 0 ? errno : 0;
        close(s);
        CHECK(i == 0 ? e == 0 : e != 0); /* to fd00::9: dropped at once, EPERM */
    }
    return 0;
}

static void test_inside_rules_refuse_ipv6(void **state)
{
    (void)state;
    in_fresh_netns(inside_rules_refuse_ipv6);
}

/* ---- how long loading takes ---- */

static int loading_takes(void)
{
    enum { N = 200 };
    egress_cidr deny[N], allow[N];
    for (uint32_t i = 0; i < N; i++) {
        deny[i] = (egress_cidr){.addr = htonl(0x0b000000u + (i << 8)), .prefix = 24};
        allow[i] = (egress_cidr){
            .addr = htonl(0x0c000000u + (i << 8)), .prefix = 24, .port = (uint16_t)(1000 + i)};
    }
    uint32_t host[] = {ip("192.168.1.5"), ip("172.17.0.1")};
    const size_t sizes[] = {0, N};
    for (size_t k = 0; k < 2; k++) {
        egress_rules r = {.subnet = cidr("10.213.0.0/16"),
                          .deny = deny,
                          .ndeny = sizes[k],
                          .allow = allow,
                          .nallow = sizes[k],
                          .dns_addr = ip("10.213.0.1"),
                          .dns_port = 5353,
                          .guard_forward = true};
        double best_host = 1e9, best_inside = 1e9, first_host = 0;
        for (int i = 0; i < 5; i++) {
            double t0 = now_s();
            CHECK_OK(egress_nft_install_host(&r, err_, sizeof err_));
            double t1 = now_s();
            CHECK_OK(egress_nft_install_inside(&r, host, 2, ip("10.0.2.2"), err_, sizeof err_));
            double t2 = now_s();
            if (i == 0)
                first_host = t1 - t0;
            best_host = t1 - t0 < best_host ? t1 - t0 : best_host;
            best_inside = t2 - t1 < best_inside ? t2 - t1 : best_inside;
        }
        double t0 = now_s();
        char err[256];
        CHECK(egress_nft_remove(err, sizeof err) == 1);
        double removing = now_s() - t0;
        printf("  %zu deny + %zu allow entries: install_host %.2f ms (first %.2f ms), "
               "install_inside %.2f ms, "
               "remove %.2f ms\n",
               sizes[k], sizes[k], best_host * 1e3, first_host * 1e3, best_inside * 1e3,
               removing * 1e3);
    }
    return 0;
}

static void test_loading_takes(void **state)
{
    (void)state;
    in_fresh_netns(loading_takes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_networks_and_ports),
        cmocka_unit_test(test_parse_refuses_hostile_text),
        cmocka_unit_test(test_parse_error_fits_a_small_buffer),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_host_text_keeps_sets_disjoint),
        cmocka_unit_test(test_text_refuses_rules_that_are_not_networks),
        cmocka_unit_test(test_a_long_list_is_still_one_rule),
        cmocka_unit_test(test_host_rules_load_and_list),
        cmocka_unit_test(test_a_second_install_replaces_the_first),
        cmocka_unit_test(test_remove_touches_only_its_own_table),
        cmocka_unit_test(test_failures_say_why),
        cmocka_unit_test(test_no_free_fd_is_an_error),
        cmocka_unit_test(test_host_rules_hold_between_namespaces),
        cmocka_unit_test(test_allows_win_over_denies),
        cmocka_unit_test(test_the_guard_stops_other_forwarding),
        cmocka_unit_test(test_inside_rules_refuse_the_host),
        cmocka_unit_test(test_an_allow_opens_a_host_port),
        cmocka_unit_test(test_inside_rules_refuse_ipv6),
        cmocka_unit_test(test_loading_takes),
    };
    if (getenv("EGRESS_NFT_ONLY")) /* a pattern: run only the tests it matches */
        cmocka_set_test_filter(getenv("EGRESS_NFT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
