/*
 * dnsfwd.h — the DNS forwarder of the egress network mode: workers'
 * queries, sent to the address in their resolv.conf and redirected here by
 * the host's nftables rules, are relayed to the resolvers the host uses
 * (which may sit on the host's loopback, e.g. systemd-resolved's
 * 127.0.0.53, out of the workers' reach) and the answers relayed back.
 *
 * UDP always; TCP once dnsfwd_listen_tcp() is called. Without it, a worker
 * that retries a truncated answer over TCP gets no answer from here, so
 * names whose answers do not fit its EDNS buffer (512 bytes without EDNS)
 * do not resolve.
 *
 * Runs on the daemon's libuv loop, unprivileged; every byte a worker sends
 * is taken as hostile. Memory is bounded: at most DNSFWD_MAX_INFLIGHT
 * queries are held over UDP and one per TCP connection, each at most
 * DNSFWD_MAX_QUERY bytes; more are dropped.
 * So that one worker cannot take every slot (asking names whose servers
 * never answer), no asker address holds more than DNSFWD_MAX_PER_ASKER.
 */
#ifndef HEARTH_DNSFWD_H
#define HEARTH_DNSFWD_H

#include <stdint.h>
#include <uv.h>
#include <netinet/in.h>

#define DNSFWD_MAX_RESOLVERS     8    /* resolv.conf's own limit is 3 */
#define DNSFWD_MAX_INFLIGHT      1024 /* queries held at once (one socket each) */
#define DNSFWD_MAX_PER_ASKER     256  /* of those, waiting for one asker address */
#define DNSFWD_MAX_QUERY         4096 /* bytes; longer datagrams are not queries */
#define DNSFWD_TIMEOUT_MS        2000 /* per resolver asked, then the next one */
#define DNSFWD_MAX_TCP           64   /* TCP client connections at once */
#define DNSFWD_MAX_TCP_PER_ASKER 8    /* of those, from one address */

typedef struct dnsfwd dnsfwd;

/* The resolvers of a resolv.conf file: up to `max` IPv4 or IPv6
 * "nameserver" lines, in order, each with port 53 (an IPv6 address may
 * carry a %scope, as glibc allows). Read as glibc does: the keyword starts
 * the line and is followed by a blank, the address ends at the next blank;
 * comments, options, search lines and malformed lines are skipped. Returns
 * how many, or -errno when the file cannot be read. No "nameserver" line
 * returns 0: glibc would use 127.0.0.1 then, the caller decides. */
int dnsfwd_read_resolvers(const char *path, struct sockaddr_storage *out, int max);

/* Starts relaying. Listens for UDP on `listen_fd`, an IPv4 or IPv6 UDP
 * socket the caller bound (before dropping root), or, when it is -1, on a
 * socket bound here to `listen_addr`. The forwarder takes `listen_fd` in
 * every case: dnsfwd_stop closes it, and a failing start closes it too.
 *
 * Bind it to the address the nftables rule sends the workers' queries to:
 * with "dnat to A:port", A (the address in their resolv.conf) and that
 * port. ("redirect to :port" rewrites the destination to the address of
 * the interface the query came in on, each worker's veth, which a socket
 * bound to A never sees.) A wildcard address would also make this an open
 * resolver on every address of the host, and answers would leave from
 * whatever address the kernel picks.
 *
 * Each query is sent to resolvers[0]; on silence for the timeout (or an
 * ICMP refusal) to the next; after the last it is given up. 1 to
 * DNSFWD_MAX_RESOLVERS resolvers, each with a port; none may be the
 * listening address itself (-ELOOP). Returns 0 with *out, or -errno. On
 * failure after handles were made, they close on the loop as in
 * dnsfwd_stop: run the loop before closing it. */
int dnsfwd_start(uv_loop_t *loop, int listen_fd, const struct sockaddr *listen_addr,
                 const struct sockaddr_storage *resolvers, int nresolvers, dnsfwd **out);

/* Also serves DNS over TCP (RFC 7766), which clients fall back to for
 * answers that did not fit a datagram: on `tcp_fd`, a TCP socket the
 * caller bound (listening already or not), or when -1 on one bound here to
 * `listen_addr` (usually the UDP address and port). Takes tcp_fd in every
 * case, as dnsfwd_start does. A connection carries one query at a time,
 * relayed over TCP to the resolvers in order (a new connection and a fresh
 * id for each); at most DNSFWD_MAX_TCP connections, DNSFWD_MAX_TCP_PER_ASKER
 * from one address; one that sends no whole query, or leaves its answer
 * unread, for 5 times the resolver timeout (10 s) is closed, as is one
 * that sends anything but a query. Once per forwarder. Returns 0, or
 * -errno (-EALREADY when called again). */
int dnsfwd_listen_tcp(dnsfwd *f, int tcp_fd, const struct sockaddr *listen_addr);

/* The UDP port it listens on (host order), e.g. when bound to port 0. */
uint16_t dnsfwd_port(const dnsfwd *f);

/* Stops: queries in flight are forgotten, handles close on the loop and
 * the forwarder is freed once the loop has run their close callbacks (like
 * every other module's). `f` must not be used after. Accepts NULL. */
void dnsfwd_stop(dnsfwd *f);

/* Counters for metrics and tests. Every query received ends up in exactly
 * one of answers, dropped or timeouts, or is still in flight (TCP's are
 * counted with the datagrams):
 *   queries   datagrams received on the listening socket, and queries (or
 *             their lengths, when out of bounds) read over TCP;
 *   answers   answers sent back to their asker;
 *   dropped   datagrams that were not DNS queries (fewer than 12 or more
 *             than DNSFWD_MAX_QUERY bytes, QR set, opcode not QUERY,
 *             QDCOUNT not 1), queries beyond the in-flight limit or
 *             their asker's share, answers that could not be sent back,
 *             and TCP queries whose client left before their answer;
 *   timeouts  queries given up: no resolver answered in time, or none
 *             could be asked (refused, unreachable, no socket left);
 *   rejected  datagrams on an upstream socket that were not the awaited
 *             answer (wrong id, QR clear, too short, another source):
 *             spoofing attempts or late, garbled answers; and TCP answers
 *             with a wrong id or QR clear;
 *   inflight  queries now awaiting an answer. */
typedef struct dnsfwd_stats {
    uint64_t queries, answers, dropped, timeouts;
    uint64_t rejected, inflight;
} dnsfwd_stats;

void dnsfwd_get_stats(const dnsfwd *f, dnsfwd_stats *st);

/* For tests only, to keep them short: the time a resolver gets to answer
 * (default DNSFWD_TIMEOUT_MS; a TCP client's idle limit is 5 times it) and
 * the number of UDP queries held at once
 * (default DNSFWD_MAX_INFLIGHT, which is also the ceiling). Call them
 * before any query arrives. */
void dnsfwd_set_timeout_ms(dnsfwd *f, unsigned ms);
void dnsfwd_set_max_inflight(dnsfwd *f, unsigned n);

#endif
