/* Pure parts of supervision: backoff and the restart budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "supervise.h"

static void test_backoff(void **s)
{
	(void)s;
	uint64_t d = 0;
	d = sup_backoff_next(d, 200, 30000);
	assert_int_equal(d, 200);
	d = sup_backoff_next(d, 200, 30000);
	assert_int_equal(d, 400);
	d = sup_backoff_next(d, 200, 30000);
	assert_int_equal(d, 800);
	for (int i = 0; i < 20; i++)
		d = sup_backoff_next(d, 200, 30000);
	assert_int_equal(d, 30000);
	assert_int_equal(sup_backoff_next(0, 500, 500), 500);
	assert_int_equal(sup_backoff_next(500, 500, 500), 500);
}

static void test_burst(void **s)
{
	(void)s;
	uint64_t ring[3];
	unsigned n = 0, head = 0;
	/* 3 restarts allowed within 1000 ms */
	assert_true(sup_burst_allow(ring, 3, &n, &head, 0, 1000));
	assert_true(sup_burst_allow(ring, 3, &n, &head, 100, 1000));
	assert_true(sup_burst_allow(ring, 3, &n, &head, 200, 1000));
	assert_false(sup_burst_allow(ring, 3, &n, &head, 300, 1000));
	/* the oldest (t=0) leaves the window at t=1000 */
	assert_true(sup_burst_allow(ring, 3, &n, &head, 1000, 1000));
	assert_false(sup_burst_allow(ring, 3, &n, &head, 1050, 1000));
	assert_true(sup_burst_allow(ring, 3, &n, &head, 1100, 1000));
	/* burst 0: never restart */
	unsigned n0 = 0, h0 = 0;
	assert_false(sup_burst_allow(ring, 0, &n0, &h0, 0, 1000));
}

static void test_names(void **s)
{
	(void)s;
	assert_string_equal(sup_state_name(SUP_WAITING), "waiting");
	assert_string_equal(sup_state_name(SUP_BACKOFF), "backoff");
	assert_string_equal(sup_state_name(SUP_FAILED), "failed");
	assert_string_equal(sup_health_name(SH_HEALTHY), "healthy");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("supervise", tests, NULL, NULL);
}
