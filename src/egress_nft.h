/*
 * egress_nft.h — Hearth's own nftables table (`table inet hearth`) for the
 * "egress" network mode: a worker reaches any address outside the host,
 * but never the host itself, other workers, link-local addresses or the
 * operator's denied CIDRs, unless an allow (which wins over every deny)
 * says so. Refusals are immediate (TCP reset, ICMP admin-prohibited).
 *
 * Loaded through libnftables, one transaction per call; never by running
 * nft, and never touching a table that is not Hearth's own.
 */
#ifndef HEARTH_EGRESS_NFT_H
#define HEARTH_EGRESS_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 network, and for an allow rule a port (0 = every port). */
typedef struct egress_cidr {
    uint32_t addr;  /* network byte order, host bits cleared */
    uint8_t prefix; /* 0..32 */
    uint16_t port;  /* host byte order; 0 = any */
} egress_cidr;

/* Parses "A.B.C.D/N" (also a bare "A.B.C.D" = /32), and when with_port
 * "A.B.C.D[/N][:PORT]" (PORT 1..65535). Host bits set in the address are an
 * error ("10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"). IPv6 is
 * refused with a sentence saying workers have no IPv6. Returns 0, or -1 with
 * a sentence in err. */
int egress_cidr_parse(const char *s, bool with_port, egress_cidr *out, char *err, size_t cap);

/* "A.B.C.D/N" or "A.B.C.D/N:PORT" into buf (at least EGRESS_CIDR_TEXT bytes). */
#define EGRESS_CIDR_TEXT 32
void egress_cidr_format(const egress_cidr *c, char *buf);

#define EGRESS_TABLE                                                                               \
    "hearth" /* the one table hearthd owns, family inet, in every namespace it writes */
#define EGRESS_IFPREFIX "hth" /* host ends of workers' veth pairs */

typedef struct egress_rules {
    egress_cidr subnet; /* the workers' subnet (root mode) */
    const egress_cidr *deny;
    size_t ndeny;
    const egress_cidr *allow;
    size_t nallow;
    uint32_t dns_addr; /* network order: where workers send DNS (root: the forwarder on the host), 0
                          = none */
    uint16_t dns_port; /* host order; the port the forwarder really listens on (traffic to
                          dns_addr:53 udp+tcp is redirected there), 0 = none */
    bool guard_forward; /* hearthd turned IPv4 forwarding on: drop forwarded traffic that involves
                           no hth* interface, so the host forwards nothing it did not before */
} egress_rules;

/* Root mode, host network namespace: replaces table inet hearth with the
 * host rules, atomically (one nft transaction: add table; delete table; add
 * table …, so an old table never coexists half-updated). 0, or -1 with
 * libnftables' message in err. */
int egress_nft_install_host(const egress_rules *r, char *err, size_t cap);

/* Rootless mode, run by a process inside the worker's own network namespace
 * (with CAP_NET_ADMIN there): table inet hearth with an output-hook filter
 * chain: loopback (127.0.0.0/8, ::1) allowed; replies of connections already
 * established allowed; the allow list accepted; DNS to r->dns_addr port 53
 * allowed; then rejected: every address in host_addrs (the host's own IPv4
 * addresses, network order, read by the caller before entering the
 * namespace), gateway (the user-mode network's gateway, e.g. slirp4netns'
 * 10.0.2.2, which maps to the host; 0 = none), 169.254.0.0/16, every deny
 * CIDR; all IPv6 except loopback rejected; everything else accepted. 0 or -1
 * with err. */
int egress_nft_install_inside(const egress_rules *r, const uint32_t *host_addrs, size_t nhost,
                              uint32_t gateway, char *err, size_t cap);

/* Deletes table inet hearth in the current namespace if present. 1 deleted,
 * 0 there was none, -1 on error (err). Never touches any other table. */
int egress_nft_remove(char *err, size_t cap);

/* Whether table inet hearth exists in the current namespace (for tests and
 * the sweep): 1, 0, or -1. */
int egress_nft_present(void);

/* The text the two installers load, for logs, a dry run and tests: a
 * malloc'd string the caller frees, or NULL with a sentence in err. */
char *egress_nft_host_text(const egress_rules *r, char *err, size_t cap);
char *egress_nft_inside_text(const egress_rules *r, const uint32_t *host_addrs, size_t nhost,
                             uint32_t gateway, char *err, size_t cap);

#endif
