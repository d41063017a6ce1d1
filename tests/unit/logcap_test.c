/* The log ring: keeps the newest bytes, tail returns whole lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "logcap.h"

static void test_ring_tail(void **s)
{
	char ring[32], out[64];
	size_t head = 0, used = 0, n;
	(void)s;
	logcap_ring_put(ring, sizeof ring, &head, &used, "a1\n", 3);
	logcap_ring_put(ring, sizeof ring, &head, &used, "b22\n", 4);
	logcap_ring_put(ring, sizeof ring, &head, &used, "c333\n", 5);
	n = logcap_ring_tail(ring, sizeof ring, head, used, 2, out, sizeof out);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "b22\nc333\n", 9);
	n = logcap_ring_tail(ring, sizeof ring, head, used, 10, out, sizeof out);
	assert_memory_equal(out, "a1\nb22\nc333\n", n);
	assert_int_equal(logcap_ring_tail(ring, sizeof ring, head, used, 0, out, sizeof out), 0);
}

static void test_ring_wraps(void **s)
{
	char ring[16], out[64];
	size_t head = 0, used = 0, n;
	(void)s;
	for (int i = 0; i < 10; i++)
		logcap_ring_put(ring, sizeof ring, &head, &used, "line\n", 5);
	assert_int_equal(used, sizeof ring);
	n = logcap_ring_tail(ring, sizeof ring, head, used, 100, out, sizeof out);
	/* only whole lines: the partial oldest one is skipped */
	assert_int_equal(n % 5, 0);
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i += 5)
		assert_memory_equal(out + i, "line\n", 5);
	/* a write bigger than the ring keeps its tail */
	logcap_ring_put(ring, sizeof ring, &head, &used, "0123456789abcdefXYZ\n", 20);
	n = logcap_ring_tail(ring, sizeof ring, head, used, 1, out, sizeof out);
	assert_true(n <= sizeof ring);
	assert_memory_equal(out + n - 4, "XYZ\n", 4);
}

static void test_ring_grows_with_use(void **s)
{
	(void)s;
	assert_int_equal(logcap_ring_want(512, 0, 100, 16384), 512);    /* fits */
	assert_int_equal(logcap_ring_want(512, 500, 100, 16384), 1024); /* doubles */
	assert_int_equal(logcap_ring_want(512, 500, 3000, 16384), 4096);
	assert_int_equal(logcap_ring_want(8192, 8000, 9000, 16384), 16384); /* capped */
	assert_int_equal(logcap_ring_want(16384, 16384, 100, 16384), 16384); /* full: wraps */
	assert_int_equal(logcap_ring_want(512, 500, 100, 600), 600);  /* a max not a power of 2 */
}

static void test_ring_copy_keeps_order(void **s)
{
	char ring[16], out[16], big[64];
	size_t head = 0, used = 0, n;
	(void)s;
	/* wrapped: "line\n" x 10 leaves the newest 16 bytes split around head */
	for (int i = 0; i < 10; i++) {
		char l[6] = "lineX\n";
		l[4] = (char)('0' + i);
		logcap_ring_put(ring, sizeof ring, &head, &used, l, 6);
	}
	assert_true(head != 0);
	logcap_ring_copy(ring, sizeof ring, head, used, out);
	assert_memory_equal(out, "ne7\nline8\nline9\n", 16);
	/* the copy is a ring of a bigger cap whose head is at used: tail agrees */
	n = logcap_ring_tail(out, sizeof out, used % sizeof out, used, 2, big, sizeof big);
	assert_int_equal(n, 12);
	assert_memory_equal(big, "line8\nline9\n", 12);
	/* not wrapped */
	head = used = 0;
	logcap_ring_put(ring, sizeof ring, &head, &used, "ab\n", 3);
	logcap_ring_copy(ring, sizeof ring, head, used, out);
	assert_memory_equal(out, "ab\n", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_tail),
		cmocka_unit_test(test_ring_wraps),
		cmocka_unit_test(test_ring_grows_with_use),
		cmocka_unit_test(test_ring_copy_keeps_order),
	};
	return cmocka_run_group_tests_name("logcap", tests, NULL, NULL);
}
