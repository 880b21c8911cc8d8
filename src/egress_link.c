/*
 * egress_link.c — the veth pairs and the DNS dummy of the egress network
 * mode, over rtnetlink with libmnl (egress_link.h).
 *
 * Owns the links it creates, and its netlink sockets for the length of one
 * call. Must never: run ip, leave a half-built link behind when a later step
 * fails, return while still inside a worker's network namespace, or give an
 * end of a link an IPv6 address.
 */
#include "egress_link.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

/* Room for a whole message of a dump: the kernel sizes a dump's messages up
 * to the largest buffer we read with, at most 32 KiB. */
#define NL_RECV_SIZE 32768
/* Room for any request here: a name, an address or a nest of a few. */
#define NL_SEND_SIZE 512

/* A NETLINK_ROUTE socket, for one call. */
typedef struct nl {
    struct mnl_socket *sock;
    unsigned portid;
    unsigned seq;
} nl;

/* The network mask of a prefix, host order (a shift by 32 is undefined). */
static uint32_t mask_of(uint8_t prefix)
{
    return prefix == 0 ? 0 : prefix >= 32 ? UINT32_MAX : UINT32_MAX << (32 - prefix);
}

unsigned egress_link_slots(uint8_t subnet_prefix)
{
    return subnet_prefix > 30 ? 0 : 1u << (30 - subnet_prefix);
}

int egress_link_for_slot(uint32_t base, uint8_t subnet_prefix, unsigned slot, egress_link *out)
{
    if (slot == 0 || slot >= egress_link_slots(subnet_prefix))
        return -ERANGE;
    uint32_t first = (ntohl(base) & mask_of(subnet_prefix)) + 4 * slot;
    egress_link l = {.host_ip = htonl(first + 1), .peer_ip = htonl(first + 2), .prefix = 30};
    snprintf(l.host_if, sizeof l.host_if, "hth%u", slot);
    *out = l;
    return 0;
}

static bool name_fits(const char *ifname)
{
    if (!ifname)
        return false;
    size_t n = strnlen(ifname, IFNAMSIZ);
    return n > 0 && n < IFNAMSIZ;
}

/* CLOEXEC: a worker cloned later must never inherit a way to reconfigure
 * the host. */
static int nl_open(nl *n)
{
    n->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!n->sock)
        return -errno;
    if (mnl_socket_bind(n->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        int err = -errno;
        mnl_socket_close(n->sock);
        n->sock = NULL;
        return err;
    }
    n->portid = mnl_socket_get_portid(n->sock);
    n->seq = 0;
    return 0;
}

static void nl_close(nl *n)
{
    if (n->sock)
        mnl_socket_close(n->sock);
    n->sock = NULL;
}

/* Sends one request and reads its answers until its ACK or the end of its
 * dump, handing each to cb. */
static int nl_exchange(nl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_seq = ++n->seq;
    if (mnl_socket_sendto(n->sock, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    char buf[NL_RECV_SIZE];
    for (;;) {
        ssize_t got = mnl_socket_recvfrom(n->sock, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        errno = 0;
        int r = mnl_cb_run(buf, (size_t)got, nlh->nlmsg_seq, n->portid, cb, data);
        if (r < 0)
            return errno ? -errno : -EPROTO;
        if (r == MNL_CB_STOP)
            return 0;
    }
}

/* A request that is not a dump, asking for an ACK: its failure then comes
 * back as its own errno, and its success as an answer rather than silence. */
static int nl_ask(nl *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_flags |= NLM_F_ACK;
    return nl_exchange(n, nlh, cb, data);
}

/* buf holds NL_SEND_SIZE bytes, all zeroed: libmnl leaves the padding
 * after an attribute as it finds it. */
static struct nlmsghdr *request(char *buf, uint16_t type, uint16_t flags)
{
    memset(buf, 0, NL_SEND_SIZE);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    return nlh;
}

/* A link request naming its link: the kernel finds an existing link by name
 * when the index is 0, so no lookup is needed to change or delete one. */
static struct nlmsghdr *link_request(char *buf, uint16_t type, uint16_t flags, const char *ifname)
{
    struct nlmsghdr *nlh = request(buf, type, flags);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
    return nlh;
}

static int delete_link(nl *n, const char *ifname)
{
    char buf[NL_SEND_SIZE];
    return nl_ask(n, link_request(buf, RTM_DELLINK, 0, ifname), NULL, NULL);
}

static int set_up(nl *n, const char *ifname)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = link_request(buf, RTM_NEWLINK, 0, ifname);
    struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    return nl_ask(n, nlh, NULL, NULL);
}

/* Before the link is up: the kernel gives a link its IPv6 link-local
 * address when it comes up (for a veth, when both ends are), unless its
 * address generation mode is "none" by then. A kernel without IPv6 refuses
 * the request (EAFNOSUPPORT), and has nothing to refuse. */
static int no_ipv6(nl *n, const char *ifname)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = link_request(buf, RTM_NEWLINK, 0, ifname);
    struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    struct nlattr *inet6 = mnl_attr_nest_start(nlh, AF_INET6);
    mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
    mnl_attr_nest_end(nlh, inet6);
    mnl_attr_nest_end(nlh, spec);
    int err = nl_ask(n, nlh, NULL, NULL);
    return err == -EAFNOSUPPORT ? 0 : err;
}

static int read_index(const struct nlmsghdr *nlh, void *data)
{
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
        return MNL_CB_OK;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    *(int *)data = ifi->ifi_index;
    return MNL_CB_OK;
}

/* Addresses and routes name their link by index. */
static int link_index(nl *n, const char *ifname, int *index)
{
    char buf[NL_SEND_SIZE];
    *index = 0;
    int err = nl_ask(n, link_request(buf, RTM_GETLINK, 0, ifname), read_index, index);
    if (!err && *index <= 0)
        err = -ENODEV;
    return err;
}

static int add_address(nl *n, int index, uint32_t addr, uint8_t prefix)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = request(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned)index;
    mnl_attr_put_u32(nlh, IFA_LOCAL, addr);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, addr);
    return nl_ask(n, nlh, NULL, NULL);
}

/* Gives ifname addr/prefix, no IPv6, and brings it up, in that order; its
 * index in *index. */
static int configure(nl *n, const char *ifname, uint32_t addr, uint8_t prefix, int *index)
{
    int err = no_ipv6(n, ifname);
    if (!err)
        err = link_index(n, ifname, index);
    if (!err)
        err = add_address(n, *index, addr, prefix);
    if (!err)
        err = set_up(n, ifname);
    return err;
}

int egress_link_delete(const char *ifname)
{
    if (!name_fits(ifname))
        return -EINVAL;
    nl n;
    int err = nl_open(&n);
    if (!err)
        err = delete_link(&n, ifname);
    nl_close(&n);
    return err;
}

static int create_kind(nl *n, const char *ifname, const char *kind)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = link_request(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifname);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
    mnl_attr_nest_end(nlh, info);
    return nl_ask(n, nlh, NULL, NULL);
}

/* "dummy", or "ifb" where the kernel has no dummy driver (EOPNOTSUPP: some
 * minimal VM kernels are built without it). Either only holds the address:
 * a packet to a local address is delivered through lo, never through the
 * link that holds it. */
static int create_address_holder(nl *n, const char *ifname)
{
    int err = create_kind(n, ifname, "dummy");
    return err == -EOPNOTSUPP ? create_kind(n, ifname, "ifb") : err;
}

int egress_link_dummy(const char *ifname, uint32_t addr)
{
    if (!name_fits(ifname))
        return -EINVAL;
    nl n;
    int err = nl_open(&n);
    if (err)
        return err;
    err = create_address_holder(&n, ifname);
    if (!err) {
        int index;
        err = configure(&n, ifname, addr, 32, &index);
        if (err)
            delete_link(&n, ifname);
    }
    nl_close(&n);
    return err;
}

/* Back to our own namespace. Staying in the worker's would put every link
 * made afterwards inside it, and there is no undoing that, so a failure here
 * (which setns into a namespace we already held cannot have) is fatal. */
static void come_back(int self_ns)
{
    if (setns(self_ns, CLONE_NEWNET) < 0)
        abort();
}

/* A socket bound to the namespace behind ns_fd: a netlink socket stays in
 * the namespace it was created in, so we need to be there only to open it.
 * thread-self: setns moves only the calling thread. */
static int nl_open_in(nl *n, int ns_fd)
{
    n->sock = NULL;
    int self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self_ns < 0)
        return -errno;
    int err = 0;
    if (setns(ns_fd, CLONE_NEWNET) < 0) {
        err = -errno;
    } else {
        err = nl_open(n);
        come_back(self_ns);
    }
    close(self_ns);
    return err;
}

static int open_netns_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The peer is made in the worker's namespace by the fd we hold rather than
 * by pid: the namespace we then configure it from is the same one even if
 * the pid has died and been reused meanwhile. */
static int create_pair(nl *n, const char *host_if, int peer_ns)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = link_request(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, host_if);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "eth0");
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_ns);
    mnl_attr_nest_end(nlh, peer);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    int err = nl_ask(n, nlh, NULL, NULL);
    int index;
    /* EEXIST is either name's; the caller's remedy (delete host_if) fits
     * only ours. */
    if (err == -EEXIST && link_index(n, host_if, &index) == -ENODEV)
        err = -EBUSY;
    return err;
}

static int add_default_route(nl *n, int index, uint32_t gateway)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = request(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_GATEWAY, gateway);
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)index);
    return nl_ask(n, nlh, NULL, NULL);
}

/* Through a socket inside the worker's namespace. */
static int configure_worker_end(nl *n, const egress_link *l)
{
    int index;
    int err = set_up(n, "lo");
    if (!err)
        err = configure(n, "eth0", l->peer_ip, l->prefix, &index);
    if (!err)
        err = add_default_route(n, index, l->host_ip);
    return err;
}

/* Refused before anything exists rather than by the kernel at the last
 * step: the worker reaches its gateway through its own address's subnet. */
static bool link_valid(const egress_link *l)
{
    if (!l || !name_fits(l->host_if) || l->prefix < 1 || l->prefix > 30 || l->host_ip == l->peer_ip)
        return false;
    uint32_t mask = mask_of(l->prefix);
    return (ntohl(l->host_ip) & mask) == (ntohl(l->peer_ip) & mask);
}

/* Both sockets are open before the pair exists, so that once it does only
 * its configuration can fail, and the pair's deletion undoes it all. */
int egress_link_up(const egress_link *l, pid_t pid)
{
    if (!link_valid(l) || pid <= 0)
        return -EINVAL;
    int worker_ns = open_netns_of(pid);
    if (worker_ns < 0)
        return worker_ns;
    nl host = {0}, worker = {0};
    int err = nl_open(&host);
    if (!err)
        err = nl_open_in(&worker, worker_ns);
    if (!err)
        err = create_pair(&host, l->host_if, worker_ns);
    if (!err) {
        int index;
        err = configure(&host, l->host_if, l->host_ip, l->prefix, &index);
        if (!err)
            err = configure_worker_end(&worker, l);
        if (err)
            delete_link(&host, l->host_if);
    }
    nl_close(&worker);
    nl_close(&host);
    close(worker_ns);
    return err;
}

/* The names of a sweep: `prefix` and one or more digits. */
typedef struct sweep_names {
    const char *prefix;
    char (*name)[IFNAMSIZ];
    size_t n, cap;
} sweep_names;

static bool prefix_and_digits(const char *name, const char *prefix)
{
    size_t len = strlen(prefix);
    if (strncmp(name, prefix, len) != 0 || name[len] == '\0')
        return false;
    for (const char *c = name + len; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

static int keep_name(sweep_names *s, const char *name)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        void *grown = realloc(s->name, cap * sizeof *s->name);
        if (!grown)
            return -1;
        s->name = grown;
        s->cap = cap;
    }
    memcpy(s->name[s->n++], name, strlen(name) + 1);
    return 0;
}

static int on_link_for_sweep(const struct nlmsghdr *nlh, void *data)
{
    sweep_names *s = data;
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
        return MNL_CB_OK;
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg))
    {
        if (mnl_attr_get_type(a) != IFLA_IFNAME || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
            continue;
        const char *name = mnl_attr_get_str(a);
        if (strlen(name) < IFNAMSIZ && prefix_and_digits(name, s->prefix) &&
            keep_name(s, name) < 0) {
            errno = ENOMEM;
            return MNL_CB_ERROR;
        }
    }
    return MNL_CB_OK;
}

/* The whole dump is read before anything is deleted: a request sent on the
 * socket mid-dump would have its answer mixed into the dump's. */
static int list_for_sweep(nl *n, sweep_names *s)
{
    char buf[NL_SEND_SIZE];
    struct nlmsghdr *nlh = request(buf, RTM_GETLINK, NLM_F_DUMP);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    return nl_exchange(n, nlh, on_link_for_sweep, s);
}

/* A link gone meanwhile (the other end of a veth swept a moment ago, a
 * namespace the kernel tore down) is neither counted nor an error. */
static int delete_listed(nl *n, const sweep_names *s)
{
    int deleted = 0, first_err = 0;
    for (size_t i = 0; i < s->n; i++) {
        int err = delete_link(n, s->name[i]);
        if (!err)
            deleted++;
        else if (err != -ENODEV && !first_err)
            first_err = err;
    }
    return first_err ? first_err : deleted;
}

int egress_link_sweep(const char *prefix)
{
    if (!prefix || !name_fits(prefix))
        return -EINVAL;
    nl n;
    int err = nl_open(&n);
    if (err)
        return err;
    sweep_names s = {.prefix = prefix};
    err = list_for_sweep(&n, &s);
    int result = err ? err : delete_listed(&n, &s);
    free(s.name);
    nl_close(&n);
    return result;
}
