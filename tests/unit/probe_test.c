/* probe: the pure parts: legacy health replies, host:port, the start-phase
 * schedule, NOTIFY_SOCKET naming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
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

static void test_zmtp_bytes(void **s)
{
	uint8_t g[64], r[96];
	(void)s;
	assert_int_equal(probe_zmtp_greeting(g, sizeof g), 64);
	assert_int_equal(g[0], 0xff);
	assert_int_equal(g[9], 0x7f);
	assert_int_equal(g[10], 3);
	assert_memory_equal(g + 12, "NULL\0", 5);
	size_t n = probe_zmtp_request(r, sizeof r);
	assert_true(n > 0);
	assert_int_equal(r[0], 0x04); /* a command */
	assert_memory_equal(r + 2, "\x05READY\x0bSocket-Type\0\0\0\x03REQ", 25);
	/* then the REQ envelope: empty delimiter (more), then the body */
	assert_memory_equal(r + 2 + r[1], "\x01\x00\x00\x0chealth_check", 16);
	assert_int_equal(n, 2u + r[1] + 16);
	assert_int_equal(probe_zmtp_request(r, 10), 0);
}

/* What a libzmq REP sends: greeting, READY, then [""][body]. */
static size_t rep_bytes(uint8_t *b, const char *body, bool long_frame)
{
	static const char ready[] = "\x05READY\x0bSocket-Type\0\0\0\x03REP";
	size_t n = 0, bl = strlen(body);
	memset(b, 0, 64);
	b[0] = 0xff, b[8] = 1, b[9] = 0x7f, b[10] = 3, b[11] = 1;
	memcpy(b + 12, "NULL", 4);
	n = 64;
	b[n++] = 4, b[n++] = sizeof ready - 1;
	memcpy(b + n, ready, sizeof ready - 1);
	n += sizeof ready - 1;
	b[n++] = 1, b[n++] = 0;
	if (long_frame) {
		b[n++] = 2;
		for (int i = 7; i >= 0; i--)
			b[n++] = (uint8_t)(bl >> (8 * i));
	} else
		b[n++] = 0, b[n++] = (uint8_t)bl;
	memcpy(b + n, body, bl);
	return n + bl;
}

static void test_zmtp_parse(void **s)
{
	uint8_t b[512];
	const char *body;
	size_t bl, n;
	char err[160];
	(void)s;
	n = rep_bytes(b, "{\"status\":\"ok\"}", false);
	/* every prefix needs more; the whole gives the body */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(probe_zmtp_parse(b, k, &body, &bl, err, sizeof err), 0);
	assert_int_equal(probe_zmtp_parse(b, n, &body, &bl, err, sizeof err), 1);
	assert_int_equal(bl, 15);
	assert_memory_equal(body, "{\"status\":\"ok\"}", 15);
	n = rep_bytes(b, "{\"status\":\"healthy\"}", true);
	assert_int_equal(probe_zmtp_parse(b, n, &body, &bl, err, sizeof err), 1);
	assert_int_equal(bl, 20);
	/* not ZMTP at all: an HTTP server on the health port */
	assert_int_equal(probe_zmtp_parse((const uint8_t *)"HTTP/1.1 400", 12, &body, &bl, err,
					  sizeof err), -1);
	assert_non_null(strstr(err, "not ZMTP"));
	/* ZMTP 2 peer */
	n = rep_bytes(b, "x", false);
	b[10] = 1;
	assert_int_equal(probe_zmtp_parse(b, n, &body, &bl, err, sizeof err), -1);
	assert_non_null(strstr(err, "3.0 or later"));
	/* CURVE-only peer */
	n = rep_bytes(b, "x", false);
	memcpy(b + 12, "CURVE", 5);
	assert_int_equal(probe_zmtp_parse(b, n, &body, &bl, err, sizeof err), -1);
	assert_non_null(strstr(err, "CURVE"));
	/* an ERROR command */
	n = rep_bytes(b, "x", false);
	memcpy(b + 64, "\x04\x0d\x05" "ERROR\x06" "denied", 15);
	assert_int_equal(probe_zmtp_parse(b, 79, &body, &bl, err, sizeof err), -1);
	assert_string_equal(err, "peer refused the handshake: denied");
	/* a huge frame */
	n = rep_bytes(b, "x", true);
	b[64 + 2 + 25 + 2 + 3] = 0x7f; /* size byte high */
	assert_int_equal(probe_zmtp_parse(b, n, &body, &bl, err, sizeof err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_ok),    cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_hostport),    cmocka_unit_test(test_start_gap),
		cmocka_unit_test(test_notify_path), cmocka_unit_test(test_zmtp_bytes),
		cmocka_unit_test(test_zmtp_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
