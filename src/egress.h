/*
 * egress.h — the "egress" network mode: a worker in its own network
 * namespace that reaches the network outside the host, never the host
 * itself, another worker, link-local addresses or what the operator
 * denies (docs/security.md, "Egress").
 *
 * As root: each worker gets a veth pair (egress_link.c) with a /30 of
 * --egress-subnet, NAT and filtering in Hearth's own nftables table
 * (egress_nft.c), and DNS through the daemon's forwarder (dnsfwd.c) at
 * the subnet's first address. Rootless: slirp4netns gives the worker's
 * namespace user-mode networking, and the same refusals are rules inside
 * that namespace, where the worker has no privilege to change them.
 *
 * The spawner calls all of this (it alone builds sandboxes); main.c
 * starts the host's part before the spawner forks and learns from it
 * whether egress can work here.
 */
#ifndef HEARTH_EGRESS_H
#define HEARTH_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "egress_nft.h"

#define EGRESS_LIST_MAX 64 /* --egress-deny / --egress-allow entries each */
#define EGRESS_DNS_IF   "hthdns"
#define EGRESS_WHY_MAX  256

/* The operator's settings (options.c fills them). */
typedef struct egress_config {
    egress_cidr subnet;
    egress_cidr deny[EGRESS_LIST_MAX];
    unsigned ndeny;
    egress_cidr allow[EGRESS_LIST_MAX];
    unsigned nallow;
    const char *resolv_conf; /* where the host's resolvers are listed */
} egress_config;

/* What this host can do, decided once at start by egress_host_start. */
typedef struct egress_host {
    egress_config cfg;
    bool usable;              /* "network": "egress" can work */
    bool rootless;            /* user-mode networking (slirp4netns) */
    bool forward_was_off;     /* we turned IPv4 forwarding on; egress_host_stop turns it off */
    char why[EGRESS_WHY_MAX]; /* when !usable: the reason deploys are told */
    char slirp[256];          /* rootless: slirp4netns' path */
    int lock_fd;              /* root: the host's egress lock, held while we run */
    uint32_t dns_addr;        /* network order: where workers' resolv.conf points */
    unsigned next_slot;       /* root: the slot to try first (slots go round) */
    unsigned nslots;
    uint8_t *slot_used; /* root: nslots flags */
} egress_host;

/*
 * At start, before the spawner forks. As root: sweeps what a hearthd
 * killed before it could clean up left (the table, hth* links, the DNS
 * interface, forwarding it turned on), then turns IPv4 forwarding on if
 * it was off (with a guard rule so that nothing else is forwarded), makes
 * the DNS interface and loads the table. Only one hearthd per host does
 * (a lock in /run, held for the process's life); a second one has no
 * egress. A note in /run says forwarding was ours to turn off, so that a
 * restart after kill -9 still turns it off. Rootless: finds slirp4netns,
 * and needs no lock (nothing of it is on the host). Never fails the daemon:
 * when something is missing, h->usable is false and h->why says what.
 */
void egress_host_start(egress_host *h, const egress_config *cfg);

/* At the spawner's end (as root): removes the table, the DNS interface,
 * and turns forwarding off again when it was ours. Workers' links went
 * with their namespaces. */
void egress_host_stop(egress_host *h);

/* What egress_host_start found that the operator should know, for the
 * start-up log: NULL, or a sentence (rootless: what it cannot enforce). */
const char *egress_host_caveat(const egress_host *h);

/* One worker's network, from clone to reap (spawner side). */
typedef struct egress_worker {
    unsigned slot; /* root: its /30; 0 = none */
    pid_t helper;  /* rootless: slirp4netns, or 0 */
    int helper_pidfd;
} egress_worker;

/*
 * Connects the freshly cloned sandbox `pid`, which waits on the other end
 * of `go` for one byte before it goes on (sandbox_spec.net_wait_fd). As
 * root: a free slot, its veth pair, then the byte. Rootless: the refusals
 * loaded inside its namespace, then slirp4netns started with `go` as its
 * ready-fd (it writes the byte once the namespace is configured). `go`
 * is the caller's to close afterwards either way. 0, or -errno with
 * nothing left (the caller kills the sandbox).
 */
int egress_worker_begin(egress_host *h, pid_t pid, int go, egress_worker *w);

/* The sandbox has been reaped: its slot back, its slirp4netns ended. */
void egress_worker_end(egress_host *h, egress_worker *w);

#endif
