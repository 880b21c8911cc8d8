/*
 * egress.c — the host's part of the "egress" network mode and each
 * worker's connection (egress.h says what the mode promises).
 *
 * As root the refusals live outside every worker: one nftables table
 * (egress_nft.c) keyed on the hth* interfaces, so a worker's start adds
 * no rule, only its veth pair (egress_link.c). Rootless there is no way
 * to filter on the host, so slirp4netns carries the traffic and the
 * refusals are loaded inside the worker's own namespace, by a short-lived
 * child of the spawner that joins it before the sandbox goes on.
 *
 * Owns: the slots of the workers' subnet, IPv4 forwarding when it turned
 * it on (and the note in the data dir that says so), the DNS interface,
 * each worker's slirp4netns. Must never: touch a rule, link or setting
 * that is not its own (forwarding is only ever turned off again when the
 * note says it was ours), or leave a worker's connection half made.
 */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlog.h"
#include "egress_link.h"

#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
/* Host-wide, like what they guard: one hearthd per host owns egress. */
#define LOCK_PATH   "/run/hearth-egress.lock"
#define MARKER_PATH "/run/hearth-egress.forwarding-was-off"
#define SLIRP_GW    "10.0.2.2" /* slirp4netns' gateway: the host, as seen inside */
#define SLIRP_DNS   "10.0.2.3"
#define HOST_ADDRS  64 /* the host's IPv4 addresses a rootless worker is kept from */

static egress_rules rules_of(const egress_host *h)
{
    return (egress_rules){.subnet = h->cfg.subnet,
                          .deny = h->cfg.deny,
                          .ndeny = h->cfg.ndeny,
                          .allow = h->cfg.allow,
                          .nallow = h->cfg.nallow,
                          .dns_addr = h->dns_addr,
                          .dns_port = 0, /* the forwarder is on dns_addr:53 itself */
                          .guard_forward = h->forward_was_off};
}

static void unusable(egress_host *h, const char *fmt, const char *what)
{
    h->usable = false;
    snprintf(h->why, sizeof h->why, fmt, what);
}

/* ---- IPv4 forwarding (root) ---- */

static int read_forwarding(void)
{
    char c = '0';
    int fd = open(IP_FORWARD, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 ? c == '1' : -EIO;
}

static int write_forwarding(bool on)
{
    int fd = open(IP_FORWARD, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, on ? "1\n" : "0\n", 2);
    close(fd);
    return n == 2 ? 0 : -EIO;
}

/* Replies to forwarded connections come in on the host's uplink, so
 * forwarding must be on everywhere; the table's guard then forwards
 * nothing that does not involve a worker. The note outlives a kill -9. */
static int take_forwarding(egress_host *h)
{
    int on = read_forwarding();
    if (on < 0)
        return on;
    if (on)
        return 0;
    int fd = open(MARKER_PATH, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    close(fd);
    h->forward_was_off = true;
    return write_forwarding(true);
}

static void give_back_forwarding(void)
{
    if (access(MARKER_PATH, F_OK) != 0)
        return;
    if (write_forwarding(false) == 0)
        unlink(MARKER_PATH);
}

/* ---- start and stop ---- */

/* What a hearthd that could not clean up left: all of it is ours by name. */
static void sweep(void)
{
    char err[256];
    int gone = egress_nft_remove(err, sizeof err);
    int links = egress_link_sweep(EGRESS_IFPREFIX);
    bool dns = egress_link_delete(EGRESS_DNS_IF) == 0;
    if (gone > 0 || links > 0 || dns)
        dlog_info("egress: swept what an earlier hearthd left (table: %s, links: %d)",
                  gone > 0 ? "yes" : "no", links > 0 ? links : 0);
    give_back_forwarding();
}

/* One hearthd per host makes workers' links and loads the table: a second
 * one would sweep the first's away. The lock goes with the process
 * (a kill -9 included), so the next start may sweep what was left. */
static int take_host_lock(egress_host *h)
{
    int fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        close(fd);
        return err == EWOULDBLOCK ? -EBUSY : -err;
    }
    h->lock_fd = fd;
    return 0;
}

static void start_root(egress_host *h)
{
    int locked = take_host_lock(h);
    if (locked < 0)
        return unusable(h, "%s",
                        locked == -EBUSY ? "another hearthd on this host already provides egress "
                                           "(" LOCK_PATH ")"
                                         : "cannot open " LOCK_PATH);
    sweep();
    h->dns_addr = htonl(ntohl(h->cfg.subnet.addr) + 1);
    h->nslots = egress_link_slots(h->cfg.subnet.prefix);
    h->slot_used = calloc(h->nslots ? h->nslots : 1, 1);
    h->next_slot = 1;
    char err[200];
    int rc = h->slot_used ? take_forwarding(h) : -ENOMEM;
    if (rc < 0)
        return unusable(h, "cannot turn on IPv4 forwarding: %s", strerror(-rc));
    rc = egress_link_dummy(EGRESS_DNS_IF, h->dns_addr);
    if (rc < 0) /* egress without names: main.c's bind then says so */
        dlog_warn("egress: cannot make the DNS interface " EGRESS_DNS_IF ": %s", strerror(-rc));
    egress_rules r = rules_of(h);
    if (egress_nft_install_host(&r, err, sizeof err) < 0) {
        egress_host_stop(h);
        return unusable(h, "cannot load the nftables rules: %s", err);
    }
    h->usable = true;
}

/* PATH's slirp4netns, as exec would find it. */
static bool find_program(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (d[0] != '/' || snprintf(out, cap, "%s/%s", d, name) >= (int)cap)
            continue;
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static void start_rootless(egress_host *h)
{
    inet_pton(AF_INET, SLIRP_DNS, &h->dns_addr);
    if (!find_program("slirp4netns", h->slirp, sizeof h->slirp))
        return unusable(h, "%s",
                        "rootless egress needs slirp4netns (Debian package slirp4netns), "
                        "which is not installed");
    /* slirp4netns makes its tap device there as us: Debian's udev leaves it
     * 0666, a system without udev often 0600. */
    if (access("/dev/net/tun", R_OK | W_OK) < 0)
        return unusable(h, "%s",
                        "rootless egress needs /dev/net/tun readable and writable by this user "
                        "(Debian's udev makes it mode 0666; here it is not)");
    h->usable = true;
}

void egress_host_start(egress_host *h, const egress_config *cfg)
{
    memset(h, 0, sizeof *h);
    h->lock_fd = -1;
    h->cfg = *cfg;
    h->rootless = geteuid() != 0;
    if (h->rootless)
        start_rootless(h);
    else
        start_root(h);
}

void egress_host_stop(egress_host *h)
{
    if (!h || h->rootless)
        return;
    char err[256];
    if (egress_nft_remove(err, sizeof err) < 0)
        dlog_warn("egress: cannot remove table inet " EGRESS_TABLE ": %s", err);
    egress_link_delete(EGRESS_DNS_IF);
    if (h->forward_was_off)
        give_back_forwarding();
    h->forward_was_off = false;
    free(h->slot_used);
    h->slot_used = NULL;
    h->usable = false;
    if (h->lock_fd >= 0)
        close(h->lock_fd);
    h->lock_fd = -1;
}

const char *egress_host_caveat(const egress_host *h)
{
    if (!h->usable || !h->rootless)
        return NULL;
    return "rootless egress goes through slirp4netns, which connects from this user's own "
           "sockets: the refusals (the host's addresses, link-local, --egress-deny) are rules "
           "inside each worker's namespace, with the host's addresses as they were when the "
           "worker started; an address the host gains later is not refused to workers already "
           "running, and --egress-allow cannot open the host's loopback";
}

/* ---- one worker, as root ---- */

static unsigned take_slot(egress_host *h)
{
    for (unsigned i = 0; i + 1 < h->nslots; i++) {
        unsigned s = 1 + (h->next_slot - 1 + i) % (h->nslots - 1);
        if (!h->slot_used[s]) {
            h->slot_used[s] = 1;
            h->next_slot = s + 1 < h->nslots ? s + 1 : 1;
            return s;
        }
    }
    return 0;
}

/* A new pair can meet the last one of the same name, which the kernel
 * deletes a moment after its namespace ends: that one is ours to delete. */
static int link_worker(egress_host *h, pid_t pid, egress_worker *w)
{
    egress_link l;
    w->slot = take_slot(h);
    if (!w->slot)
        return -EAGAIN;
    int rc = egress_link_for_slot(h->cfg.subnet.addr, h->cfg.subnet.prefix, w->slot, &l);
    if (rc == 0)
        rc = egress_link_up(&l, pid);
    if (rc == -EEXIST && egress_link_delete(l.host_if) == 0)
        rc = egress_link_up(&l, pid);
    if (rc < 0) {
        h->slot_used[w->slot] = 0;
        w->slot = 0;
    }
    return rc;
}

/* ---- one worker, rootless ---- */

static size_t host_addresses(uint32_t *out, size_t max)
{
    struct ifaddrs *all;
    size_t n = 0;
    if (getifaddrs(&all) < 0)
        return 0;
    for (struct ifaddrs *a = all; a && n < max; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET)
            continue;
        uint32_t v = ((const struct sockaddr_in *)(const void *)a->ifa_addr)->sin_addr.s_addr;
        if ((ntohl(v) >> 24) != 127) /* inside, 127/8 is the worker's own loopback */
            out[n++] = v;
    }
    freeifaddrs(all);
    return n;
}

static int join_ns(pid_t pid, const char *ns, int type)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = setns(fd, type);
    close(fd);
    return rc;
}

/* In a child that joins the sandbox's user and network namespaces (a
 * user namespace is joined for good, so never in the spawner itself). */
static int load_inside_rules(const egress_host *h, pid_t pid)
{
    uint32_t addrs[HOST_ADDRS], gw;
    size_t n = host_addresses(addrs, HOST_ADDRS);
    inet_pton(AF_INET, SLIRP_GW, &gw);
    egress_rules r = rules_of(h);
    pid_t c = fork();
    if (c < 0)
        return -errno;
    if (c == 0) {
        char err[512];
        if (join_ns(pid, "user", CLONE_NEWUSER) < 0 || join_ns(pid, "net", CLONE_NEWNET) < 0)
            _exit(2);
        _exit(egress_nft_install_inside(&r, addrs, n, gw, err, sizeof err) < 0 ? 1 : 0);
    }
    int st;
    while (waitpid(c, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* slirp4netns for the sandbox: it writes our `go` byte once the
 * namespace is configured, and dies with the spawner. */
static int start_slirp(const egress_host *h, pid_t pid, int go, egress_worker *w)
{
    char target[16], ready[32];
    snprintf(target, sizeof target, "%d", (int)pid);
    pid_t c = fork();
    if (c < 0)
        return -errno;
    if (c == 0) {
        prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0 ||
            dup2(go, 3) < 0)
            _exit(127);
        syscall(SYS_close_range, 4, ~0U, 0);
        snprintf(ready, sizeof ready, "--ready-fd=3");
        const char *argv[] = {h->slirp,
                              "--configure",
                              "--mtu=65520",
                              "--disable-host-loopback",
                              "--enable-seccomp",
                              ready,
                              target,
                              "eth0",
                              NULL};
        execv(h->slirp, (char *const *)argv);
        _exit(127);
    }
    w->helper = c;
    w->helper_pidfd = (int)syscall(SYS_pidfd_open, c, 0);
    return 0;
}

int egress_worker_begin(egress_host *h, pid_t pid, int go, egress_worker *w)
{
    *w = (egress_worker){.helper_pidfd = -1};
    if (!h || !h->usable)
        return -EPERM;
    if (h->rootless) {
        int rc = load_inside_rules(h, pid);
        return rc < 0 ? rc : start_slirp(h, pid, go, w);
    }
    int rc = link_worker(h, pid, w);
    if (rc == 0 && write(go, "1", 1) != 1)
        rc = -EIO;
    return rc;
}

void egress_worker_end(egress_host *h, egress_worker *w)
{
    if (w->slot && h && h->slot_used && w->slot < h->nslots)
        h->slot_used[w->slot] = 0;
    w->slot = 0;
    if (w->helper > 0) {
        if (w->helper_pidfd >= 0)
            syscall(SYS_pidfd_send_signal, w->helper_pidfd, SIGKILL, NULL, 0);
        int st;
        while (waitpid(w->helper, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (w->helper_pidfd >= 0)
        close(w->helper_pidfd);
    w->helper = 0;
    w->helper_pidfd = -1;
}
