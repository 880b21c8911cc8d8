/*
 * test_egress_link.c — the veth pairs of the egress network mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "egress_link.h"

static uint32_t ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a.s_addr;
}

static void test_a_slot_is_a_slash_30_after_the_reserved_one(void **state)
{
    (void)state;
    egress_link l;
    assert_int_equal(egress_link_for_slot(ip("10.77.0.0"), 16, 1, &l), 0);
    assert_string_equal(l.host_if, "hth1");
    assert_int_equal(l.host_ip, ip("10.77.0.5"));
    assert_int_equal(l.peer_ip, ip("10.77.0.6"));
    assert_int_equal(l.prefix, 30);
    assert_int_equal(egress_link_for_slot(ip("10.77.0.0"), 16, 300, &l), 0);
    assert_string_equal(l.host_if, "hth300");
    assert_int_equal(l.host_ip, ip("10.77.4.177"));
    assert_int_equal(l.peer_ip, ip("10.77.4.178"));
}

static void test_slots_and_their_edges(void **state)
{
    (void)state;
    assert_int_equal(egress_link_slots(16), 16384);
    assert_int_equal(egress_link_slots(24), 64);
    assert_int_equal(egress_link_slots(30), 1);
    assert_int_equal(egress_link_slots(31), 0);
    assert_int_equal(egress_link_slots(0), 1u << 30);

    egress_link l = {.host_if = "untouched"};
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 0, &l), -ERANGE);
    assert_string_equal(l.host_if, "untouched");
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 64, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 1000, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 30, 1, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 32, 1, &l), -ERANGE);
    assert_int_equal(egress_link_for_slot(ip("192.168.5.0"), 24, 63, &l), 0);
    assert_string_equal(l.host_if, "hth63");
    assert_int_equal(l.host_ip, ip("192.168.5.253"));
    assert_int_equal(l.peer_ip, ip("192.168.5.254"));
}

static void test_the_host_bits_of_the_base_are_ignored(void **state)
{
    (void)state;
    egress_link l;
    assert_int_equal(egress_link_for_slot(ip("10.77.3.9"), 16, 2, &l), 0);
    assert_int_equal(l.host_ip, ip("10.77.0.9"));
    assert_int_equal(l.peer_ip, ip("10.77.0.10"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_slot_is_a_slash_30_after_the_reserved_one),
        cmocka_unit_test(test_slots_and_their_edges),
        cmocka_unit_test(test_the_host_bits_of_the_base_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
