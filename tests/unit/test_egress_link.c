/*
 * test_egress_link.c — the links of the egress network mode: the slot
 * arithmetic; the DNS dummy; deleting links and sweeping them by name.
 *
 * Never touches the machine's own network: each test that makes links runs
 * in a child with a network namespace of its own (in_private_netns). The
 * child answers through its exit status, as a failed cmocka assertion there
 * would return into a copy of the runner.
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

    CHECK_INT(egress_link_sweep("hth"), 3);
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(find_link(go[i]).index, 0);
    for (size_t i = 0; i < 5; i++)
        CHECK(find_link(stay[i]).index > 0);
    CHECK_INT(egress_link_sweep("hth"), 0);
    return 0;
}

static void test_the_sweep_takes_prefix_and_digits_only(void **state)
{
    (void)state;
    in_private_netns(the_sweep_takes_prefix_and_digits_only);
}

static int the_dummy_holds_its_address(void)
{
    uint32_t dns = ip("10.77.0.1");
    CHECK_INT(egress_link_dummy("hthdns", dns), 0);
    link_seen d = find_link("hthdns");
    CHECK(d.index > 0);
    CHECK(d.flags & IFF_UP);
    addrs_seen as = find_addrs(d.index, dns, 32);
    CHECK_INT(as.v4_found, 1);
    CHECK_INT(as.v6, 0);
    CHECK_INT(as.link_locals, 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slot_is_a_slash_30_after_the_reserved_one),
        cmocka_unit_test(test_slots_and_their_edges),
        cmocka_unit_test(test_the_host_bits_of_the_base_are_ignored),
        cmocka_unit_test(test_malformed_links_are_einval),
        cmocka_unit_test(test_the_sweep_takes_prefix_and_digits_only),
        cmocka_unit_test(test_the_dummy_holds_its_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
