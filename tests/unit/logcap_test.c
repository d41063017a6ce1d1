/* logcap: the ring buffer, rotation names, the per-file budget, stamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "logcap.h"

struct collect {
	char text[4096];
	uint64_t seqs[64];
	int n;
};

static bool collect(void *ctx, uint64_t seq, const char *line, size_t n)
{
	struct collect *c = ctx;
	size_t l = strlen(c->text);
	snprintf(c->text + l, sizeof c->text - l, "%.*s|", (int)n, line);
	c->seqs[c->n++] = seq;
	return true;
}

static void test_ring_basic(void **s)
{
	char buf[32];
	struct logcap_ring r;
	struct collect c = {0};
	(void)s;
	logcap_ring_init(&r, buf, sizeof buf);
	logcap_ring_put(&r, "one", 3);
	logcap_ring_put(&r, "two", 3);
	assert_int_equal(logcap_ring_each(&r, 0, 100, collect, &c), 2);
	assert_string_equal(c.text, "one|two|");
	assert_int_equal(c.seqs[1], 1);
	assert_int_equal(r.next_seq, 2);
}

static void test_ring_wraps_dropping_oldest(void **s)
{
	char buf[16];
	struct logcap_ring r;
	struct collect c = {0};
	(void)s;
	logcap_ring_init(&r, buf, sizeof buf);
	for (int i = 0; i < 10; i++) {
		char l[8];
		int n = snprintf(l, sizeof l, "l%d", i);
		logcap_ring_put(&r, l, (size_t)n);
	}
	/* 16 bytes hold five 3-byte lines: l5..l9 */
	assert_int_equal(r.first_seq, 5);
	assert_int_equal(r.next_seq, 10);
	logcap_ring_each(&r, 0, 100, collect, &c);
	assert_string_equal(c.text, "l5|l6|l7|l8|l9|");
	assert_int_equal(c.seqs[0], 5);
	/* from a cursor, and bounded */
	memset(&c, 0, sizeof c);
	assert_int_equal(logcap_ring_each(&r, 8, 100, collect, &c), 2);
	assert_string_equal(c.text, "l8|l9|");
	memset(&c, 0, sizeof c);
	assert_int_equal(logcap_ring_each(&r, 0, 1, collect, &c), 1);
	assert_string_equal(c.text, "l5|");
}

static void test_ring_long_line_and_newlines(void **s)
{
	char buf[8];
	struct logcap_ring r;
	struct collect c = {0};
	(void)s;
	logcap_ring_init(&r, buf, sizeof buf);
	logcap_ring_put(&r, "abcdefghijkl", 12); /* cut to 7 */
	logcap_ring_each(&r, 0, 100, collect, &c);
	assert_string_equal(c.text, "abcdefg|");
	memset(&c, 0, sizeof c);
	logcap_ring_put(&r, "a\nb", 3); /* an embedded newline cannot split a record */
	logcap_ring_each(&r, 0, 100, collect, &c);
	assert_string_equal(c.text, "a b|");
}

static void test_file_names(void **s)
{
	char b[64];
	(void)s;
	assert_int_equal(logcap_file_name(b, sizeof b, "/var/log", "redis", 0), 0);
	assert_string_equal(b, "/var/log/redis.log");
	assert_int_equal(logcap_file_name(b, sizeof b, "/var/log", "redis", 3), 0);
	assert_string_equal(b, "/var/log/redis.log.3");
	assert_int_equal(logcap_file_name(b, 10, "/var/log", "redis", 0), -ENAMETOOLONG);
}

static void test_file_budget(void **s)
{
	(void)s;
	/* 256 MiB over 64 agents and 4 files each: 1 MiB a file */
	assert_int_equal(logcap_file_max(256ull << 20, 64), 1 << 20);
	assert_int_equal(logcap_file_max(256ull << 20, 1), 4 << 20);     /* capped */
	assert_int_equal(logcap_file_max(1 << 20, 1000), 64 << 10);     /* floor */
	assert_int_equal(logcap_file_max(256ull << 20, 0), 4 << 20);
}

static void test_stamp(void **s)
{
	char b[32];
	(void)s;
	logcap_stamp(b, sizeof b, 1795622701123ull);
	assert_string_equal(b, "2026-11-25T16:05:01.123Z");
	logcap_stamp(b, sizeof b, 0);
	assert_string_equal(b, "1970-01-01T00:00:00.000Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_basic),	  cmocka_unit_test(test_ring_wraps_dropping_oldest),
		cmocka_unit_test(test_ring_long_line_and_newlines), cmocka_unit_test(test_file_names),
		cmocka_unit_test(test_file_budget),	  cmocka_unit_test(test_stamp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
