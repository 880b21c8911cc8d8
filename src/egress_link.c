/*
 * egress_link.c — the veth pairs and the DNS dummy of the egress network
 * mode, over rtnetlink with libmnl (egress_link.h).
 *
 * Owns the links it creates, and a netlink socket for the length of one
 * call. Must never: run ip, leave a half-built link behind when a later step
 * fails, return while still inside a worker's network namespace, or give an
 * end of a link an IPv6 address.
 */
#include "egress_link.h"

#include <errno.h>
#include <stdio.h>
#include <arpa/inet.h>

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
