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
