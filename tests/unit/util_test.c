#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>

#include "util.h"

static void test_durations(void **s)
{
	int64_t v;
	(void)s;
	assert_int_equal(ai_parse_duration_ms("200ms", &v), 0);
	assert_int_equal(v, 200);
	assert_int_equal(ai_parse_duration_ms("30s", &v), 0);
	assert_int_equal(v, 30000);
	assert_int_equal(ai_parse_duration_ms("5m", &v), 0);
	assert_int_equal(v, 300000);
	assert_int_equal(ai_parse_duration_ms("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(ai_parse_duration_ms("1.5s", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(ai_parse_duration_ms("1m30s", &v), 0);
	assert_int_equal(v, 90000);
	assert_int_equal(ai_parse_duration_ms("10", &v), 0); /* bare = seconds */
	assert_int_equal(v, 10000);
	assert_int_equal(ai_parse_duration_ms("", &v), -EINVAL);
	assert_int_equal(ai_parse_duration_ms("3x", &v), -EINVAL);
	assert_int_equal(ai_parse_duration_ms("-1s", &v), -EINVAL);
	assert_int_equal(ai_parse_duration_ms("1m30", &v), -EINVAL);
	assert_int_equal(ai_parse_duration_ms("99999999999999999999d", &v), -ERANGE);
}

static void test_sizes(void **s)
{
	int64_t v;
	(void)s;
	assert_int_equal(ai_parse_size("512MiB", &v), 0);
	assert_int_equal(v, 512LL << 20);
	assert_int_equal(ai_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2LL << 30);
	assert_int_equal(ai_parse_size("2G", &v), 0);
	assert_int_equal(v, 2LL << 30);
	assert_int_equal(ai_parse_size("1GB", &v), 0);
	assert_int_equal(v, 1000000000LL);
	assert_int_equal(ai_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(ai_parse_size("max", &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(ai_parse_size("12 parsecs", &v), -EINVAL);
	assert_int_equal(ai_parse_size("", &v), -EINVAL);
	assert_int_equal(ai_parse_size("99999999999TiB", &v), -ERANGE);
}

static void test_ints_signals(void **s)
{
	int64_t v;
	(void)s;
	assert_int_equal(ai_parse_int("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ai_parse_int("101", 0, 100, &v), -ERANGE);
	assert_int_equal(ai_parse_int("99999999999999999999999", 0, 100, &v), -ERANGE);
	assert_int_equal(ai_parse_int("4x", 0, 100, &v), -EINVAL);
	assert_int_equal(ai_parse_signal("SIGTERM"), SIGTERM);
	assert_int_equal(ai_parse_signal("term"), SIGTERM);
	assert_int_equal(ai_parse_signal("9"), SIGKILL);
	assert_true(ai_parse_signal("SIGBOGUS") < 0);
}

static void test_fmt_duration(void **s)
{
	char b[32];
	(void)s;
	ai_fmt_duration(b, sizeof b, 250);
	assert_string_equal(b, "250ms");
	ai_fmt_duration(b, sizeof b, 1200);
	assert_string_equal(b, "1.2s");
	ai_fmt_duration(b, sizeof b, 184000);
	assert_string_equal(b, "3m04s");
	ai_fmt_duration(b, sizeof b, 7260000);
	assert_string_equal(b, "2h01m");
}

static void test_arena(void **s)
{
	struct ai_arena a = {0};
	(void)s;
	char *x = ai_arena_strdup(&a, "hello");
	void *big = ai_arena_alloc(&a, 100000);
	assert_non_null(x);
	assert_non_null(big);
	assert_string_equal(x, "hello");
	assert_int_equal(((uintptr_t)big) % 16, 0);
	ai_arena_free(&a);
	assert_null(a.head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),   cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_ints_signals), cmocka_unit_test(test_fmt_duration),
		cmocka_unit_test(test_arena),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
