/*
 * test_egress_nft.c — Hearth's nftables table for the egress network mode:
 * the CIDR syntax operators write, the rule text, and the rules loaded for
 * real. Every test that loads rules does so in network namespaces of its
 * own (a forked child unshares them), never in the host's: what the kernel
 * lists, and what a connect() from a "worker" namespace meets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "egress_nft.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static uint32_t ip(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : 0;
}

/* ---- egress_cidr_parse and egress_cidr_format ---- */

static void test_parse_reads_networks_and_ports(void **state)
{
    (void)state;
    egress_cidr c;
    char err[256];
    assert_int_equal(egress_cidr_parse("10.0.0.0/8", false, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("10.0.0.0"));
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.port, 0);
    assert_int_equal(egress_cidr_parse("1.2.3.4", false, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("1.2.3.4"));
    assert_int_equal(c.prefix, 32);
    assert_int_equal(egress_cidr_parse("0.0.0.0/0", false, &c, err, sizeof err), 0);
    assert_int_equal(c.prefix, 0);
    assert_int_equal(egress_cidr_parse("192.168.1.5:5432", true, &c, err, sizeof err), 0);
    assert_int_equal(c.addr, ip("192.168.1.5"));
    assert_int_equal(c.prefix, 32);
    assert_int_equal(c.port, 5432);
    assert_int_equal(egress_cidr_parse("255.255.255.255/32:65535", true, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(egress_cidr_parse("10.1.2.0/24", true, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 0);
}

static void refused(const char *s, bool with_port, const char *says)
{
    egress_cidr c = {.addr = 0x12345678, .prefix = 7, .port = 9};
    char err[256] = "";
    if (egress_cidr_parse(s, with_port, &c, err, sizeof err) != -1)
        fail_msg("\"%s\" was accepted", s ? s : "(null)");
    assert_int_equal(c.addr, 0x12345678); /* untouched on error */
    assert_int_equal(c.prefix, 7);
    if (!strstr(err, says))
        fail_msg("\"%s\": expected \"%s\" in \"%s\"", s ? s : "(null)", says, err);
}

static void test_parse_refuses_hostile_text(void **state)
{
    (void)state;
    refused("10.0.0.0/33", false, "prefix length");
    refused("10.0.0.0/8:0", true, "port");
    refused("10.0.0.0/8:65536", true, "port");
    refused("10.0.0.0/8:", true, "port");
    refused("10.0.0.0/8:80:80", true, "not an IPv4 network");
    refused("10.0.0.0/8:+80", true, "port");
    refused(":80", true, "not an IPv4 network");
    refused("1.2.3.4/8 ", false, "not an IPv4 network");
    refused(" 1.2.3.4", false, "not an IPv4 network");
    refused("1.2.3.4\n", false, "not an IPv4 network");
    refused("1.2.3", false, "not an IPv4 network");
    refused("1.2.3.4.5", false, "not an IPv4 network");
    refused("256.0.0.0/8", false, "not an IPv4 network");
    refused("010.0.0.0/8", false, "leading zeros");
    refused("1.2.3.4/", false, "prefix length");
    refused("1.2.3.4/-1", false, "prefix length");
    refused("1.2.3.4/8/8", false, "not an IPv4 network");
    refused("0x0a.0.0.0/8", false, "not an IPv4 network");
    refused("", false, "empty");
    refused(NULL, false, "empty");
    refused("::1/128", false, "workers have no IPv6");
    refused("fe80::/10", true, "workers have no IPv6");
    refused("[2001:db8::1]:443", true, "workers have no IPv6");
    refused("1.2.3.4/32:80", false, "only accepted in an allow rule");
    refused("10.0.0.1/8", false, "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?");
    refused("10.0.0.1/8:80", true, "did you mean 10.0.0.0/8:80?");
    char garbage[301];
    for (int i = 0; i < 300; i++)
        garbage[i] = (char)(i % 2 ? '\x1b' : '9');
    garbage[300] = '\0';
    refused(garbage, true, "too long");
}

static void test_parse_error_fits_a_small_buffer(void **state)
{
    (void)state;
    egress_cidr c;
    char err[8];
    memset(err, 'z', sizeof err);
    assert_int_equal(egress_cidr_parse("10.0.0.1/8", false, &c, err, sizeof err), -1);
    assert_non_null(memchr(err, '\0', sizeof err));
    assert_int_equal(egress_cidr_parse("10.0.0.1/8", false, &c, NULL, 0), -1);
}

static void test_format_round_trips(void **state)
{
    (void)state;
    const char *canon[] = {"10.0.0.0/8",
                           "1.2.3.4/32",
                           "0.0.0.0/0",
                           "192.168.1.5/32:5432",
                           "255.255.255.255/32:65535",
                           "172.16.0.0/12:1"};
    for (size_t i = 0; i < sizeof canon / sizeof *canon; i++) {
        egress_cidr c, again;
        char text[EGRESS_CIDR_TEXT], err[256];
        assert_int_equal(egress_cidr_parse(canon[i], true, &c, err, sizeof err), 0);
        egress_cidr_format(&c, text);
        assert_string_equal(text, canon[i]);
        assert_int_equal(egress_cidr_parse(text, true, &again, err, sizeof err), 0);
        assert_int_equal(c.addr, again.addr);
        assert_int_equal(c.prefix, again.prefix);
        assert_int_equal(c.port, again.port);
    }
}

/* ---- the rule text ---- */

static egress_cidr cidr(const char *s)
{
    egress_cidr c = {0};
    char err[256];
    if (egress_cidr_parse(s, true, &c, err, sizeof err) < 0)
        fprintf(stderr, "cidr(%s): %s\n", s, err);
    return c;
}

static void test_host_text_keeps_sets_disjoint(void **state)
{
    (void)state;
    egress_cidr deny[] = {cidr("10.1.0.0/16"), cidr("10.0.0.0/8"), cidr("10.0.0.0/8"),
                          cidr("192.0.2.0/24")};
    egress_cidr allow[] = {cidr("10.1.2.3/32:5432"), cidr("10.1.0.0/16:5432"),
                           cidr("10.1.2.3/32:80"), cidr("203.0.113.0/24")};
    egress_rules r = {
        .subnet = cidr("10.213.0.0/16"), .deny = deny, .ndeny = 4, .allow = allow, .nallow = 4};
    char err[256];
    char *t = egress_nft_host_text(&r, err, sizeof err);
    assert_non_null(t);
    /* Nested entries would make nftables refuse the set: only the widest stays. */
    assert_int_equal(count(t, "10.0.0.0/8,"), 1);
    assert_null(strstr(t, "10.1.0.0/16,"));
    assert_non_null(strstr(t, "192.0.2.0/24,"));
    assert_non_null(strstr(t, "10.1.0.0/16 . 5432,"));
    assert_null(strstr(t, "10.1.2.3/32 . 5432"));
    assert_non_null(strstr(t, "10.1.2.3/32 . 80,"));
    assert_non_null(strstr(t, "203.0.113.0/24,"));
    assert_null(strstr(t, "dns_redirect")); /* no DNS asked for */
    assert_null(strstr(t, "meta nfproto ipv4 iifname != \"hth*\" oifname != \"hth*\" drop"));
    free(t);
}

static void test_text_refuses_rules_that_are_not_networks(void **state)
{
    (void)state;
    char err[256];
    egress_cidr bad = {.addr = ip("10.0.0.1"), .prefix = 8};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"), .deny = &bad, .ndeny = 1};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "deny entry 0"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .ndeny = 3};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "no array"));
    r = (egress_rules){.subnet = cidr("0.0.0.0/0")};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "subnet"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .dns_port = 5353};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "DNS"));
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .deny = &bad, .ndeny = 65537};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "at most"));
    egress_cidr ported = cidr("10.0.0.0/8:80");
    r = (egress_rules){.subnet = cidr("10.213.0.0/16"), .deny = &ported, .ndeny = 1};
    assert_null(egress_nft_host_text(&r, err, sizeof err));
    assert_non_null(strstr(err, "without a port"));
}

static void test_a_long_list_is_still_one_rule(void **state)
{
    (void)state;
    enum { N = 5000 };
    egress_cidr *deny = calloc(N, sizeof *deny);
    assert_non_null(deny);
    for (uint32_t i = 0; i < N; i++)
        deny[i] = (egress_cidr){.addr = htonl(0x0b000000u + (i << 8)), .prefix = 24};
    egress_rules r = {.subnet = cidr("10.213.0.0/16"), .deny = deny, .ndeny = N};
    char err[256];
    char *t = egress_nft_host_text(&r, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(count(t, "@deny"), 1);
    assert_int_equal(count(t, "/24,\n"), N);
    free(t);
    free(deny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_networks_and_ports),
        cmocka_unit_test(test_parse_refuses_hostile_text),
        cmocka_unit_test(test_parse_error_fits_a_small_buffer),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_host_text_keeps_sets_disjoint),
        cmocka_unit_test(test_text_refuses_rules_that_are_not_networks),
        cmocka_unit_test(test_a_long_list_is_still_one_rule),
    };
    if (getenv("EGRESS_NFT_ONLY")) /* a pattern: run only the tests it matches */
        cmocka_set_test_filter(getenv("EGRESS_NFT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
