/* metrics: the Prometheus text, label escaping, request lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static void test_escape(void **s)
{
	char b[64];
	(void)s;
	met_escape(b, sizeof b, "a\"b\\c\nd");
	assert_string_equal(b, "a\\\"b\\\\c\\nd");
	met_escape(b, 4, "abcdef");
	assert_string_equal(b, "a"); /* never past cap, room for an escape */
}

static void test_request(void **s)
{
	char p[64];
	const char *r = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	(void)s;
	assert_true(met_parse_request(r, strlen(r), p, sizeof p));
	assert_string_equal(p, "/metrics");
	r = "GET /health/ServiceRegistry HTTP/1.0\r\n\r\n";
	assert_true(met_parse_request(r, strlen(r), p, sizeof p));
	assert_string_equal(p, "/health/ServiceRegistry");
	r = "POST /metrics HTTP/1.1\r\n\r\n";
	assert_false(met_parse_request(r, strlen(r), p, sizeof p));
	r = "GET /metrics\r\n\r\n";
	assert_false(met_parse_request(r, strlen(r), p, sizeof p));
	r = "GET  HTTP/1.1\r\n";
	assert_false(met_parse_request(r, strlen(r), p, sizeof p));
}

static void test_format(void **s)
{
	char buf[8192];
	struct met_buf b = {.p = buf, .cap = sizeof buf};
	struct met_agent a[2] = {
		{.name = "redis", .group = "infra", .state = "healthy", .up = true, .healthy = true,
		 .restarts = 2, .probed = true, .checks = 10, .failures = 1, .last_us = 1500,
		 .sum_us = 20000},
		{.name = "we\"ird", .group = "g", .state = "backoff"},
	};
	struct met_group g[2] = {{.name = "infra", .mem_bytes = 1048576, .pids = 3, .cpu_usec = 2500000},
				 {.name = "g", .mem_bytes = -1, .pids = -1, .cpu_usec = -1}};
	(void)s;
	met_format(&b, a, 2, g, 2, 42, 3 << 20);
	buf[b.len] = 0;
	assert_false(b.overflow);
	assert_non_null(strstr(buf, "# TYPE ainit_agent_up gauge\n"));
	assert_non_null(strstr(buf, "ainit_agent_up{agent=\"redis\",group=\"infra\"} 1\n"));
	assert_non_null(strstr(buf, "ainit_agent_up{agent=\"we\\\"ird\",group=\"g\"} 0\n"));
	assert_non_null(strstr(buf, "ainit_agent_restarts_total{agent=\"redis\",group=\"infra\"} 2\n"));
	assert_non_null(strstr(buf, "ainit_agent_state{agent=\"we\\\"ird\",group=\"g\",state=\"backoff\"} 1\n"));
	assert_non_null(strstr(buf, "ainit_health_checks_total{agent=\"redis\",group=\"infra\"} 10\n"));
	assert_non_null(strstr(buf, "ainit_health_check_last_seconds{agent=\"redis\",group=\"infra\"} 0.001500\n"));
	/* an agent without a check has no check series */
	assert_null(strstr(buf, "ainit_health_checks_total{agent=\"we"));
	assert_non_null(strstr(buf, "ainit_group_memory_bytes{group=\"infra\"} 1.04858e+06\n"));
	assert_non_null(strstr(buf, "ainit_group_cpu_seconds_total{group=\"infra\"} 2.5\n"));
	assert_null(strstr(buf, "ainit_group_pids{group=\"g\"}"));
	assert_non_null(strstr(buf, "ainit_loop_wakeups_total 42\n"));
	assert_non_null(strstr(buf, "ainit_resident_memory_bytes 3145728\n"));
	/* every line is a comment or NAME{...} VALUE / NAME VALUE */
	for (char *l = buf; *l; l = strchr(l, '\n') + 1)
		assert_true(l[0] == '#' || !strncmp(l, "ainit_", 6));
}

static void test_overflow(void **s)
{
	char buf[64];
	struct met_buf b = {.p = buf, .cap = sizeof buf};
	struct met_agent a = {.name = "x", .group = "g", .state = "healthy"};
	(void)s;
	met_format(&b, &a, 1, NULL, 0, 0, 0);
	assert_true(b.overflow);
	assert_true(b.len < sizeof buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape), cmocka_unit_test(test_request),
		cmocka_unit_test(test_format), cmocka_unit_test(test_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
