/*
 * egress_nft.c — Hearth's own nftables table for the egress network mode
 * (egress_nft.h): the CIDR syntax operators write, and table inet hearth,
 * written as nft text and loaded through libnftables in one transaction.
 *
 * Owns table inet hearth and nothing else. Must never: exec nft, touch a
 * table, chain or set that is not inside table inet hearth, put a string it
 * did not format itself from parsed numbers into the rule text, or leave a
 * refusal silent (a client must not wait for a timeout).
 */
#include "egress_nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "safetext.h"

/* ---- CIDR text ---- */

/* The longest text egress_cidr_parse can accept: "255.255.255.255/32:65535". */
#define CIDR_MAX_INPUT 24

static void say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static uint32_t mask_of(uint8_t prefix)
{
    return prefix == 0 ? 0 : htonl(UINT32_MAX << (32 - prefix));
}

/* Reads 1..maxdigits decimal digits at *p. A leading zero is refused (but
 * "0" itself is fine): inet_aton reads "010" as octal 8, so an operator's
 * "010.0.0.0" means something different to different tools. */
static bool read_number(const char **p, int maxdigits, unsigned *v)
{
    const char *s = *p;
    int n = 0;
    unsigned x = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n == maxdigits)
            return false;
        x = x * 10 + (unsigned)(s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    *p = s + n;
    *v = x;
    return true;
}

/* Reads the number after the separator at *p, within lo..hi. */
static bool read_after(const char **p, int maxdigits, unsigned *v, unsigned lo, unsigned hi)
{
    const char *q = *p + 1;
    if (!read_number(&q, maxdigits, v) || *v < lo || *v > hi)
        return false;
    *p = q;
    return true;
}

/* IPv6 text has a bracket, or two colons ("::1", "fe80::/10") with no dot
 * before the first. */
static bool looks_ipv6(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    if (memchr(s, '[', len))
        return true;
    if (!colon || memchr(s, '.', (size_t)(colon - s))) /* "A.B.C.D/N:PORT..." is IPv4 gone wrong */
        return false;
    return memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) != NULL;
}

/* Reads "A.B.C.D" at *p into a (host order). */
static bool read_quad(const char **p, uint32_t *a)
{
    *a = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v;
        if (i > 0 && *(*p)++ != '.')
            return false;
        if (!read_number(p, 3, &v) || v > 255)
            return false;
        *a = *a << 8 | v;
    }
    return true;
}

int egress_cidr_parse(const char *s, bool with_port, egress_cidr *out, char *err, size_t cap)
{
    if (!s || !*s) {
        say(err, cap, "an empty address: write an IPv4 network as A.B.C.D/N");
        return -1;
    }
    size_t len = strnlen(s, 256);
    char shown[48];
    safetext_copy(shown, sizeof shown, s, len);
    if (looks_ipv6(s, len)) {
        say(err, cap,
            "\"%s\" is IPv6; workers have no IPv6, so only IPv4 networks can be allowed or denied",
            shown);
        return -1;
    }
    const char *form = with_port ? "A.B.C.D[/N][:PORT]" : "A.B.C.D[/N]";
    if (len > CIDR_MAX_INPUT) {
        say(err, cap, "\"%s\" is too long to be an IPv4 network (%s)", shown, form);
        return -1;
    }
    const char *p = s;
    uint32_t a;
    unsigned prefix = 32, port = 0;
    if (!read_quad(&p, &a)) {
        say(err, cap,
            "\"%s\" is not an IPv4 network: write %s, each of A to D 0..255 without leading zeros",
            shown, form);
        return -1;
    }
    if (*p == '/' && !read_after(&p, 2, &prefix, 0, 32)) {
        say(err, cap, "\"%s\": the prefix length after / must be 0..32", shown);
        return -1;
    }
    if (*p == ':' && !with_port) {
        say(err, cap, "\"%s\": a port is only accepted in an allow rule (CIDR[:PORT])", shown);
        return -1;
    }
    if (*p == ':' && !read_after(&p, 5, &port, 1, 65535)) {
        say(err, cap, "\"%s\": the port after : must be 1..65535 (leave it out for every port)",
            shown);
        return -1;
    }
    if (*p) {
        say(err, cap, "\"%s\" is not an IPv4 network: write %s", shown, form);
        return -1;
    }
    egress_cidr c = {.addr = htonl(a), .prefix = (uint8_t)prefix, .port = (uint16_t)port};
    if (c.addr & ~mask_of(c.prefix)) {
        char meant[EGRESS_CIDR_TEXT];
        c.addr &= mask_of(c.prefix);
        egress_cidr_format(&c, meant);
        say(err, cap, "%s has host bits set; did you mean %s?", shown, meant);
        return -1;
    }
    *out = c;
    return 0;
}

void egress_cidr_format(const egress_cidr *c, char *buf)
{
    uint32_t a = ntohl(c->addr);
    int n = snprintf(buf, EGRESS_CIDR_TEXT, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255,
                     (a >> 8) & 255, a & 255, (unsigned)c->prefix);
    if (c->port && n > 0 && (size_t)n < EGRESS_CIDR_TEXT)
        snprintf(buf + n, EGRESS_CIDR_TEXT - (size_t)n, ":%u", (unsigned)c->port);
}

/* ---- the rule text ---- */

/* Every rule that concerns a worker keys on the host end of its veth pair. */
#define WORKER_IF "\"" EGRESS_IFPREFIX "*\""

/* Far past any real list, but ceilings all the same: a runaway list is an
 * error, not a huge transaction. An element takes at most ~32 bytes, so
 * three full lists and the host addresses fit in the text. */
#define LIST_MAX 65536
#define TEXT_MAX (8u << 20)

typedef struct text {
    buf b;
    bool failed; /* a line did not fit, or memory ran out: the text is unusable */
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (t->failed || n < 0 || (size_t)n >= sizeof line || buf_append(&t->b, line, (size_t)n) < 0)
        t->failed = true;
}

static const char *ip_text(uint32_t addr, char out[INET_ADDRSTRLEN])
{
    return inet_ntop(AF_INET, &addr, out, INET_ADDRSTRLEN);
}

typedef struct cidr_list {
    egress_cidr *v;
    size_t n;
} cidr_list;

static int by_port_addr_prefix(const void *a, const void *b)
{
    const egress_cidr *x = a, *y = b;
    uint32_t xa = ntohl(x->addr), ya = ntohl(y->addr);
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    if (xa != ya)
        return xa < ya ? -1 : 1;
    return (x->prefix > y->prefix) - (x->prefix < y->prefix);
}

static bool covers(const egress_cidr *wide, const egress_cidr *c)
{
    return wide->port == c->port && wide->prefix <= c->prefix &&
           (c->addr & mask_of(wide->prefix)) == wide->addr;
}

/* Sorts the list and keeps only the widest of nested entries (same port):
 * nftables refuses overlapping intervals in one set, and an operator may
 * well deny 10.0.0.0/8 and 10.1.0.0/16, or repeat an entry. Sorted by
 * address and then prefix, a network's container comes before it, and the
 * kept entries are disjoint, so the last kept one is the only candidate. */
static void keep_widest(cidr_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, by_port_addr_prefix);
    size_t kept = 1;
    for (size_t i = 1; i < l->n; i++)
        if (!covers(&l->v[kept - 1], &l->v[i]))
            l->v[kept++] = l->v[i];
    l->n = kept;
}

enum which_ports { ANY_PORT_ONLY, ONE_PORT_ONLY };

static int pick(cidr_list *out, const egress_cidr *v, size_t n, enum which_ports which)
{
    out->n = 0;
    out->v = malloc((n ? n : 1) * sizeof *out->v);
    if (!out->v)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((v[i].port == 0) == (which == ANY_PORT_ONLY))
            out->v[out->n++] = v[i];
    keep_widest(out);
    return 0;
}

static int pick_hosts(cidr_list *out, const uint32_t *addrs, size_t n, uint32_t gateway)
{
    out->n = 0;
    out->v = malloc((n + 1) * sizeof *out->v);
    if (!out->v)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (addrs[i])
            out->v[out->n++] = (egress_cidr){.addr = addrs[i], .prefix = 32};
    if (gateway)
        out->v[out->n++] = (egress_cidr){.addr = gateway, .prefix = 32};
    keep_widest(out);
    return 0;
}

/* A named interval set: the rule count stays the same whatever the list's
 * length, and an empty list still loads (an empty "elements = { }" would
 * not, so it is left out). With ports, an element is "CIDR . PORT". */
static void put_set(text *t, const char *name, const cidr_list *l, bool with_port)
{
    put(t, "\tset %s {\n\t\ttype ipv4_addr%s\n\t\tflags interval\n", name,
        with_port ? " . inet_service" : "");
    if (l->n)
        put(t, "\t\telements = {\n");
    for (size_t i = 0; i < l->n; i++) {
        egress_cidr net = l->v[i];
        char c[EGRESS_CIDR_TEXT];
        net.port = 0;
        egress_cidr_format(&net, c);
        if (with_port)
            put(t, "\t\t\t%s . %u,\n", c, (unsigned)l->v[i].port);
        else
            put(t, "\t\t\t%s,\n", c);
    }
    if (l->n)
        put(t, "\t\t}\n");
    put(t, "\t}\n");
}

/* Replacing in one transaction: "add" makes sure there is a table to
 * delete, so the same text serves the first install and every later one,
 * and nothing half-old is ever loaded. */
static void put_table_start(text *t)
{
    put(t, "add table inet " EGRESS_TABLE "\n"
           "delete table inet " EGRESS_TABLE "\n"
           "table inet " EGRESS_TABLE " {\n");
}

/* Where every refusal goes: a TCP reset or an ICMP error at once, so a
 * client never waits out a timeout. */
static void put_refuse_chain(text *t)
{
    put(t, "\tchain refuse {\n"
           "\t\tmeta l4proto tcp reject with tcp reset\n"
           "\t\treject with icmpx admin-prohibited\n"
           "\t}\n");
}

/* The allow list, checked before any refusal: an allow wins over every deny. */
static void put_allow_rules(text *t)
{
    put(t, "\t\tip daddr @allow_net accept\n"
           "\t\tmeta l4proto { tcp, udp } ip daddr . th dport @allow_port accept\n");
}

typedef struct lists {
    cidr_list deny, allow_net, allow_port, host;
} lists;

static void free_lists(lists *l)
{
    free(l->deny.v);
    free(l->allow_net.v);
    free(l->allow_port.v);
    free(l->host.v);
}

static int make_lists(lists *l, const egress_rules *r, const uint32_t *host_addrs, size_t nhost,
                      uint32_t gateway)
{
    *l = (lists){0};
    if (pick(&l->deny, r->deny, r->ndeny, ANY_PORT_ONLY) < 0 ||
        pick(&l->allow_net, r->allow, r->nallow, ANY_PORT_ONLY) < 0 ||
        pick(&l->allow_port, r->allow, r->nallow, ONE_PORT_ONLY) < 0 ||
        pick_hosts(&l->host, host_addrs, nhost, gateway) < 0) {
        free_lists(l);
        return -1;
    }
    return 0;
}

static void put_sets(text *t, const lists *l, bool with_host)
{
    put_set(t, "deny", &l->deny, false);
    put_set(t, "allow_net", &l->allow_net, false);
    put_set(t, "allow_port", &l->allow_port, true);
    if (with_host)
        put_set(t, "host", &l->host, false);
}

/* Before anything else sees a worker's packet: no IPv6 at all, and no
 * source address the worker does not own (fib: the source must route back
 * out of the interface it came in on, so one worker cannot pose as another). */
static void put_worker_source_chain(text *t, const char *subnet)
{
    put(t,
        "\tchain worker_source {\n"
        "\t\ttype filter hook prerouting priority raw; policy accept;\n"
        "\t\tiifname " WORKER_IF " meta nfproto ipv6 drop\n"
        "\t\tiifname " WORKER_IF " ip saddr != %s drop\n"
        "\t\tiifname " WORKER_IF " fib saddr . iif oif missing drop\n"
        "\t}\n",
        subnet);
}

/* dnat, not redirect: redirect would rewrite the destination to the
 * address of the hth interface the query came in on (a different one per
 * worker), where the forwarder does not listen and which the input chain
 * does not accept. Keeping dns_addr and changing only the port lets the
 * forwarder bind dns_addr:dns_port alone. */
static void put_dns_redirect_chain(text *t, const char *dns, unsigned port)
{
    put(t,
        "\tchain dns_redirect {\n"
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tiifname " WORKER_IF
        " ip daddr %s meta l4proto { tcp, udp } th dport 53 dnat ip to %s:%u\n"
        "\t}\n",
        dns, dns, port);
}

/* What a worker may send to the host itself: replies, the DNS forwarder,
 * the allow list; everything else is refused. Other interfaces' traffic is
 * none of Hearth's business, hence the jump on the interface. */
static void put_input_chains(text *t, const char *dns, unsigned dns_port)
{
    put(t, "\tchain input {\n"
           "\t\ttype filter hook input priority filter; policy accept;\n"
           "\t\tiifname " WORKER_IF " jump worker_to_host\n"
           "\t}\n"
           "\tchain worker_to_host {\n"
           "\t\tct state established,related accept\n");
    if (dns)
        put(t, "\t\tip daddr %s meta l4proto { tcp, udp } th dport %u accept\n", dns, dns_port);
    put_allow_rules(t);
    put(t, "\t\tgoto refuse\n"
           "\t}\n");
}

/* The guard comes first: it is a statement about the host (forward nothing
 * that does not involve a worker, as before hearthd turned forwarding on),
 * and as the first rule no accept ever added to this chain can get round
 * it (today every other rule names an hth interface, so last would do too). It is IPv4 only:
 * hearthd turns on IPv4 forwarding alone, and a host that already forwards IPv6 must go on doing
 * so. Nothing new goes into a worker, from anywhere, another worker included; a worker's own
 * traffic may leave unless its destination is link-local, a worker, or denied. */
static void put_forward_chains(text *t, const char *subnet, bool guard)
{
    put(t, "\tchain forward {\n"
           "\t\ttype filter hook forward priority filter; policy accept;\n");
    if (guard)
        put(t, "\t\tmeta nfproto ipv4 iifname != " WORKER_IF " oifname != " WORKER_IF " drop\n");
    put(t, "\t\toifname " WORKER_IF " ct state established,related accept\n"
           "\t\toifname " WORKER_IF " goto refuse\n"
           "\t\tiifname " WORKER_IF " jump worker_out\n"
           "\t}\n"
           "\tchain worker_out {\n");
    put_allow_rules(t);
    put(t,
        "\t\tip daddr 169.254.0.0/16 goto refuse\n"
        "\t\tip daddr %s goto refuse\n"
        "\t\tip daddr @deny goto refuse\n"
        "\t}\n",
        subnet);
}

static void put_nat_out_chain(text *t, const char *subnet)
{
    put(t,
        "\tchain nat_out {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "\t\tip saddr %s oifname != " WORKER_IF " masquerade\n"
        "\t}\n",
        subnet);
}

/* Inside a worker's namespace the host is reached through the user-mode
 * network (its gateway, or the host's own addresses), so refusals key on
 * the destination, never on the interface: a host address may be local
 * here too (on lo), and only 127.0.0.0/8 and ::1 count as loopback.
 * Replies (ct established) pass first: connections the host opens to the
 * worker come from the gateway, and the worker must be able to answer. */
static void put_output_chain(text *t, const char *dns)
{
    put(t, "\tchain output {\n"
           "\t\ttype filter hook output priority filter; policy accept;\n"
           "\t\tip daddr 127.0.0.0/8 accept\n"
           "\t\tip6 daddr ::1 accept\n"
           "\t\tmeta nfproto ipv6 goto refuse\n"
           "\t\tct state established,related accept\n");
    put_allow_rules(t);
    if (dns)
        put(t, "\t\tip daddr %s meta l4proto { tcp, udp } th dport 53 accept\n", dns);
    put(t, "\t\tip daddr @host goto refuse\n"
           "\t\tip daddr 169.254.0.0/16 goto refuse\n"
           "\t\tip daddr @deny goto refuse\n"
           "\t}\n");
}

/* ---- checking what the caller passed ---- */

static bool is_network(const egress_cidr *c)
{
    return c->prefix <= 32 && (c->addr & ~mask_of(c->prefix)) == 0;
}

static int check_list(const egress_cidr *v, size_t n, const char *what, bool ports, char *err,
                      size_t cap)
{
    if (n && !v) {
        say(err, cap, "the %s list has %zu entries but no array", what, n);
        return -1;
    }
    if (n > LIST_MAX) {
        say(err, cap, "the %s list has %zu entries; at most %d are accepted", what, n, LIST_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_network(&v[i]) || (v[i].port && !ports)) {
            say(err, cap, "%s entry %zu is not a network%s (host bits set, or prefix past 32)",
                what, i, ports ? "" : " without a port");
            return -1;
        }
    }
    return 0;
}

static int check_rules(const egress_rules *r, bool root, char *err, size_t cap)
{
    if (!r) {
        say(err, cap, "no egress rules given");
        return -1;
    }
    if (root && (!is_network(&r->subnet) || r->subnet.prefix < 1 || r->subnet.prefix > 30 ||
                 r->subnet.port)) {
        say(err, cap, "the workers' subnet must be a network from /1 to /30, without a port");
        return -1;
    }
    if (root && r->dns_port && !r->dns_addr) {
        say(err, cap, "a DNS forwarder port needs the DNS address workers send to");
        return -1;
    }
    if (check_list(r->deny, r->ndeny, "deny", false, err, cap) < 0 ||
        check_list(r->allow, r->nallow, "allow", true, err, cap) < 0)
        return -1;
    return 0;
}

/* The finished text, or NULL with a sentence in err. */
static char *finish(text *t, char *err, size_t cap)
{
    put(t, "}\n");
    if (t->failed) {
        say(err, cap, "the nftables rules could not be written (over %u bytes, or out of memory)",
            TEXT_MAX);
        buf_release(&t->b);
        return NULL;
    }
    return buf_detach(&t->b, NULL);
}

char *egress_nft_host_text(const egress_rules *r, char *err, size_t cap)
{
    lists l;
    if (check_rules(r, true, err, cap) < 0)
        return NULL;
    if (make_lists(&l, r, NULL, 0, 0) < 0) {
        say(err, cap, "out of memory for the egress rules");
        return NULL;
    }
    char subnet[EGRESS_CIDR_TEXT], dnsbuf[INET_ADDRSTRLEN];
    egress_cidr_format(&r->subnet, subnet);
    const char *dns = r->dns_addr ? ip_text(r->dns_addr, dnsbuf) : NULL;
    text t = {.failed = false};
    buf_init(&t.b, TEXT_MAX);
    put_table_start(&t);
    put_sets(&t, &l, false);
    put_refuse_chain(&t);
    put_worker_source_chain(&t, subnet);
    if (dns && r->dns_port)
        put_dns_redirect_chain(&t, dns, r->dns_port);
    put_input_chains(&t, dns, r->dns_port ? r->dns_port : 53);
    put_forward_chains(&t, subnet, r->guard_forward);
    put_nat_out_chain(&t, subnet);
    free_lists(&l);
    return finish(&t, err, cap);
}

char *egress_nft_inside_text(const egress_rules *r, const uint32_t *host_addrs, size_t nhost,
                             uint32_t gateway, char *err, size_t cap)
{
    lists l;
    if (check_rules(r, false, err, cap) < 0)
        return NULL;
    if ((nhost && !host_addrs) || nhost > LIST_MAX) {
        say(err, cap, "%zu host addresses but no array, or over %d", nhost, LIST_MAX);
        return NULL;
    }
    if (make_lists(&l, r, host_addrs, nhost, gateway) < 0) {
        say(err, cap, "out of memory for the egress rules");
        return NULL;
    }
    char dnsbuf[INET_ADDRSTRLEN];
    const char *dns = r->dns_addr ? ip_text(r->dns_addr, dnsbuf) : NULL;
    text t = {.failed = false};
    buf_init(&t.b, TEXT_MAX);
    put_table_start(&t);
    put_sets(&t, &l, true);
    put_refuse_chain(&t);
    put_output_chain(&t, dns);
    free_lists(&l);
    return finish(&t, err, cap);
}

/* ---- libnftables ---- */

static bool caret_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '^' && s[i] != '~' && s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* libnftables' error, on one line: its first "Error:" message, and the
 * command it was about (the next line that is not a row of carets). */
static void explain(const char *msg, char *err, size_t cap)
{
    const char *e = msg ? strstr(msg, "Error: ") : NULL;
    if (!e) {
        say(err, cap,
            "libnftables failed without a message (is this process root in its network "
            "namespace?)");
        return;
    }
    e += strlen("Error: ");
    int elen = (int)strcspn(e, "\n");
    const char *ctx = e + elen;
    while (*ctx == '\n') {
        ctx++;
        size_t n = strcspn(ctx, "\n");
        if (n && !caret_line(ctx, n)) {
            while (*ctx == ' ' || *ctx == '\t')
                ctx++, n--;
            say(err, cap, "nftables: %.*s (in: %.*s)", elen, e, (int)n, ctx);
            return;
        }
        ctx += n;
    }
    say(err, cap, "nftables: %.*s", elen, e);
}

/* What the commands printed, as a string of the caller's (NULL when out of
 * memory). libnftables empties its buffer on every read, so read it once. */
static char *printed(struct nft_ctx *nft)
{
    const char *o = nft_ctx_get_output_buffer(nft);
    return strdup(o ? o : "");
}

/* libnftables (1.0.6 at least) calls exit() from nft_ctx_new when it
 * cannot open its netlink socket (no nfnetlink in the kernel, no free fd):
 * that must be an error here, never the end of hearthd. So open one first,
 * and free its fd for libnftables just before it needs one. */
static int netfilter_reachable(char *err, size_t cap)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        say(err, cap, "cannot open a netfilter netlink socket (%s): is nf_tables in the kernel?",
            strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* Runs nft commands in one transaction, with a context of its own (no
 * state kept between calls). With out, hands back what they printed. */
static int run_nft(const char *cmds, char **out, char *err, size_t cap)
{
    if (netfilter_reachable(err, cap) < 0)
        return -1;
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        say(err, cap, "libnftables could not make a context");
        return -1;
    }
    int rc = -1;
    if (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)
        say(err, cap, "libnftables could not buffer its output");
    else if (nft_run_cmd_from_buffer(nft, cmds) != 0)
        explain(nft_ctx_get_error_buffer(nft), err, cap);
    else if (out && !(*out = printed(nft)))
        say(err, cap, "out of memory for nftables' answer");
    else
        rc = 0;
    nft_ctx_free(nft);
    return rc;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

static int table_present(char *err, size_t cap)
{
    char *listing;
    if (run_nft("list tables inet", &listing, err, cap) < 0)
        return -1;
    int found = has_line(listing, "table inet " EGRESS_TABLE);
    free(listing);
    return found;
}

int egress_nft_present(void)
{
    return table_present(NULL, 0);
}

int egress_nft_install_host(const egress_rules *r, char *err, size_t cap)
{
    char *cmds = egress_nft_host_text(r, err, cap);
    if (!cmds)
        return -1;
    int rc = run_nft(cmds, NULL, err, cap);
    free(cmds);
    return rc;
}

int egress_nft_install_inside(const egress_rules *r, const uint32_t *host_addrs, size_t nhost,
                              uint32_t gateway, char *err, size_t cap)
{
    char *cmds = egress_nft_inside_text(r, host_addrs, nhost, gateway, err, cap);
    if (!cmds)
        return -1;
    int rc = run_nft(cmds, NULL, err, cap);
    free(cmds);
    return rc;
}

/* Deleting a table that is not there is an error in nftables (and there is
 * no "destroy" before nft 1.0.8), so look first; if the delete fails
 * because someone removed the table meanwhile, that is "there was none". */
int egress_nft_remove(char *err, size_t cap)
{
    int present = table_present(err, cap);
    if (present <= 0)
        return present;
    if (run_nft("delete table inet " EGRESS_TABLE, NULL, err, cap) == 0)
        return 1;
    return table_present(NULL, 0) == 0 ? 0 : -1;
}
