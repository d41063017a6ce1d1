/* caps: capability names to masks (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "caps.h"

static void test_names(void **st)
{
	(void)st;
	assert_int_equal(caps_from_name("CAP_NET_BIND_SERVICE"), 10);
	assert_int_equal(caps_from_name("net_bind_service"), 10);
	assert_int_equal(caps_from_name("cap_sys_admin"), 21);
	assert_int_equal(caps_from_name("CAP_CHOWN"), 0);
	assert_int_equal(caps_from_name("CAP_FOO"), -1);
	assert_int_equal(caps_from_name("10"), -1);
	assert_int_equal(caps_from_name(""), -1);
	char b[64];
	assert_string_equal(caps_name(10, b, sizeof b), "cap_net_bind_service");
}

static void test_parse(void **st)
{
	uint64_t m = 1;
	struct ai_err e = {0};
	(void)st;
	assert_int_equal(caps_parse(NULL, 0, &m, &e), 0);
	assert_int_equal(m, 0);
	const char *two[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL"};
	assert_int_equal(caps_parse(two, 2, &m, &e), 0);
	assert_int_equal(m, (1ULL << 10) | (1ULL << 5));
	const char *bad[] = {"CAP_KILL", "CAP_FLY"};
	assert_true(caps_parse(bad, 2, &m, &e) < 0);
	assert_non_null(strstr(e.msg, "unknown capability \"CAP_FLY\""));
	const char *all[] = {"ALL"};
	assert_int_equal(caps_parse(all, 1, &m, &e), 0);
	assert_true(m & (1ULL << 21));
	assert_true(m & (1ULL << caps_last_cap()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
