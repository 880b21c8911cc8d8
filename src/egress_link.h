/*
 * egress_link.h — the links of the egress network mode: a veth pair per
 * worker (host end "hth<N>", worker end "eth0" in the worker's network
 * namespace, a /30 between them, the worker's default route via the host
 * end) and the dummy interface where workers' DNS is answered. Built over
 * rtnetlink, never by running ip. No end of any link gets an IPv6 address.
 * NAT and filtering are egress_nft's.
 *
 * Every call opens its own netlink sockets and closes them before it
 * returns; none keeps state. egress_link_up enters the worker's network
 * namespace for a moment (setns, which moves the calling thread only) and
 * is back before it does anything else. Needs CAP_NET_ADMIN and
 * CAP_SYS_ADMIN (root, as the spawner is).
 *
 * Deleting a veth waits out the kernel (tens of ms, see the timing test),
 * while a worker's pair goes by itself, in the background, once its
 * namespace does (its last process has exited and nothing holds it open).
 */
#ifndef HEARTH_EGRESS_LINK_H
#define HEARTH_EGRESS_LINK_H

#include <stdint.h>
#include <sys/types.h>
#include <net/if.h>

typedef struct egress_link {
    char host_if[IFNAMSIZ]; /* "hth<N>" */
    uint32_t host_ip;       /* network byte order: the host end, the worker's gateway */
    uint32_t peer_ip;       /* network byte order: the worker's address */
    uint8_t prefix;         /* of both addresses, e.g. 30 */
} egress_link;

/* The link for slot N of a subnet (network order base, prefix <= 30):
 * host_ip = base + 4N + 1, peer_ip = base + 4N + 2, /30, host_if "hth<N>".
 * The host bits of base are ignored. 0, or -ERANGE when slot 0 or the slot
 * does not fit in the subnet (slot 0 is reserved: its .1 is where the host's
 * DNS forwarder listens); *out is written only on success. */
int egress_link_for_slot(uint32_t base, uint8_t subnet_prefix, unsigned slot, egress_link *out);

/* How many slots the subnet has (slot 0 included, unusable):
 * 2^(32-prefix)/4, so 0 for a prefix over 30. */
unsigned egress_link_slots(uint8_t subnet_prefix);

/* Creates the veth pair: host end l->host_if in our namespace (address
 * host_ip/prefix, no IPv6, up), peer "eth0" created directly in the network
 * namespace of `pid` and configured from inside it (address peer_ip/prefix,
 * no IPv6, up, default route via host_ip; "lo" up too). 0 or -errno; on error
 * nothing is left (the pair is deleted) and we are back in our own namespace.
 * -EEXIST when host_if already exists (a previous worker's pair not yet torn
 * down by the kernel, or a stale one): the caller may egress_link_delete it
 * and retry. -EBUSY when it is the worker that already has an eth0. -ENOENT
 * when there is no process `pid` (or only its zombie). -EINVAL for a
 * malformed link (a name that does not fit IFNAMSIZ, a prefix outside 1..30,
 * equal addresses, or addresses in different subnets of the prefix). */
int egress_link_up(const egress_link *l, pid_t pid);

/* Deletes a link by name in our namespace (deleting either end of a veth
 * deletes both). 0, -ENODEV when there is none, or -errno. */
int egress_link_delete(const char *ifname);

/* Deletes every link in our namespace whose name is `prefix` followed by one
 * or more digits and nothing else ("hth" matches hth0 and hth17, never "hthx",
 * "hth" or "eth0"): a dump, then a delete of each. Returns how many were
 * deleted (one that vanished meanwhile is not counted, nor an error), or the
 * first -errno (after trying every other). */
int egress_link_sweep(const char *prefix);

/* A dummy interface (kind "dummy", or "ifb" on a kernel built without the
 * dummy driver) named ifname holding addr/32 (network order), no IPv6, up:
 * the host address where workers' DNS is answered. 0 or -errno (nothing is
 * left on error); -EEXIST if it exists (caller may delete and retry). */
int egress_link_dummy(const char *ifname, uint32_t addr);

#endif
