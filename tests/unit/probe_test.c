/* probe: the pure parts: legacy health replies, host:port, the start-phase
 * schedule, NOTIFY_SOCKET naming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "probe.h"

static void test_reply_ok(void **s)
{
	char why[200];
	(void)s;
	const char *r = "{\"status\":\"ok\",\"agent\":\"X\",\"uptime_s\":3}";
	assert_true(probe_parse_reply(r, strlen(r), why, sizeof why));
	assert_string_equal(why, "status ok");
	r = "  {\"agent\":{\"nested\":[1,2]},\"status\":\"HEALTHY\"}";
	assert_true(probe_parse_reply(r, strlen(r), why, sizeof why));
}

static void test_reply_bad(void **s)
{
	char why[200];
	(void)s;
	const char *r = "{\"status\":\"error\",\"error\":\"db down\"}";
	assert_false(probe_parse_reply(r, strlen(r), why, sizeof why));
	assert_string_equal(why, "status \"error\": db down");
	r = "{\"agent\":\"X\"}";
	assert_false(probe_parse_reply(r, strlen(r), why, sizeof why));
	assert_string_equal(why, "reply has no \"status\" string");
	r = "{\"status\":1}";
	assert_false(probe_parse_reply(r, strlen(r), why, sizeof why));
	r = "\x01not json";
	assert_false(probe_parse_reply(r, strlen(r), why, sizeof why));
	assert_string_equal(why, "reply is not a JSON object: \"\\x01not json\"");
	r = "[\"ok\"]";
	assert_false(probe_parse_reply(r, strlen(r), why, sizeof why));
	assert_false(probe_parse_reply("", 0, why, sizeof why));
	char big[2000];
	memset(big, ' ', sizeof big);
	assert_false(probe_parse_reply(big, sizeof big, why, sizeof why));
	assert_non_null(strstr(why, "too long"));
}

static void test_hostport(void **s)
{
	char h[64];
	int port;
	(void)s;
	assert_int_equal(probe_parse_hostport("192.168.50.10", h, sizeof h, &port, 9400), 0);
	assert_string_equal(h, "192.168.50.10");
	assert_int_equal(port, 9400);
	assert_int_equal(probe_parse_hostport("127.0.0.1:9123", h, sizeof h, &port, 9400), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_int_equal(port, 9123);
	assert_int_equal(probe_parse_hostport("[::1]:81", h, sizeof h, &port, 9400), 0);
	assert_string_equal(h, "::1");
	assert_int_equal(port, 81);
	assert_int_equal(probe_parse_hostport("fe80::1", h, sizeof h, &port, 9400), 0);
	assert_string_equal(h, "fe80::1");
	assert_int_equal(port, 9400);
	assert_int_equal(probe_parse_hostport("host:0", h, sizeof h, &port, 1), -EINVAL);
	assert_int_equal(probe_parse_hostport("host:99999", h, sizeof h, &port, 1), -EINVAL);
	assert_int_equal(probe_parse_hostport(":80", h, sizeof h, &port, 1), -EINVAL);
	assert_int_equal(probe_parse_hostport("[::1", h, sizeof h, &port, 1), -EINVAL);
	assert_int_equal(probe_parse_hostport("", h, sizeof h, &port, 1), -EINVAL);
}

static void test_start_gap(void **s)
{
	(void)s;
	assert_int_equal(probe_start_gap(0, 1000), 50);
	assert_int_equal(probe_start_gap(50, 1000), 100);
	assert_int_equal(probe_start_gap(800, 1000), 1000);
	assert_int_equal(probe_start_gap(1000, 1000), 1000);
	assert_int_equal(probe_start_gap(0, 10), 50); /* never faster than 50 ms */
}

static void test_notify_path(void **s)
{
	char b[128];
	char longdir[120];
	(void)s;
	probe_notify_path("/run/ainit", 7, 42, b, sizeof b);
	assert_string_equal(b, "/run/ainit/notify/7.sock");
	probe_notify_path("relative/dir", 7, 42, b, sizeof b);
	assert_string_equal(b, "@ainit-42-notify-7");
	memset(longdir, 'x', sizeof longdir - 1);
	longdir[0] = '/';
	longdir[sizeof longdir - 1] = 0;
	probe_notify_path(longdir, 3, 42, b, sizeof b);
	assert_string_equal(b, "@ainit-42-notify-3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_ok),    cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_hostport),    cmocka_unit_test(test_start_gap),
		cmocka_unit_test(test_notify_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
