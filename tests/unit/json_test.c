#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "json.h"

static struct jv pool[64];
static char sbuf[4096];

static int parse(struct jparse *p, const char *s)
{
	*p = (struct jparse){.pool = pool, .cap = 64, .sbuf = sbuf, .scap = sizeof sbuf};
	return json_parse(p, s, strlen(s));
}

static void test_parse_object(void **st)
{
	struct jparse p;
	(void)st;
	int r = parse(&p, " {\"cmd\":\"restart\", \"target\":\"a\\\"b\\u00e9\", \"n\": -12.5e1,"
			  " \"ok\": true, \"x\": null, \"l\": [1, [2], {}]} ");
	assert_true(r >= 0);
	assert_string_equal(json_get_str(&p, r, "cmd"), "restart");
	assert_string_equal(json_get_str(&p, r, "target"), "a\"b\xc3\xa9");
	int n = json_get(&p, r, "n");
	assert_true(n >= 0);
	assert_true(pool[n].num == -125.0);
	assert_int_equal(pool[json_get(&p, r, "ok")].kind, JV_BOOL);
	assert_int_equal(pool[json_get(&p, r, "x")].kind, JV_NULL);
	assert_int_equal(json_get(&p, r, "missing"), -1);
	assert_null(json_get_str(&p, r, "n"));
}

static void test_parse_bad(void **st)
{
	struct jparse p;
	static const char *const bad[] = {
		"", "{", "{\"a\"}", "{\"a\":}", "[1,]", "{\"a\":1,}", "\"unterminated",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"\\q\"}", "tru", "{} x", "\x01", "{\"a\":\"\n\"}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	(void)st;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse(&p, bad[i]), -1);
		assert_non_null(p.err);
	}
}

static void test_pool_exhaustion(void **st)
{
	struct jparse p;
	char big[1024] = "[";
	(void)st;
	for (int i = 0; i < 100; i++)
		strcat(big, i ? ",1" : "1");
	strcat(big, "]");
	assert_int_equal(parse(&p, big), -1);
	assert_string_equal(p.err, "request too complex");
}

static void test_writer(void **st)
{
	char b[128];
	struct jw w;
	(void)st;
	jw_init(&w, b, sizeof b);
	jw_obj_begin(&w);
	jw_kstr(&w, "s", "q\"\n\x01");
	jw_kint(&w, "i", -3);
	jw_key(&w, "a");
	jw_arr_begin(&w);
	jw_bool(&w, true);
	jw_null(&w);
	jw_str(&w, NULL);
	jw_arr_end(&w);
	jw_obj_end(&w);
	assert_false(w.overflow);
	assert_string_equal(b, "{\"s\":\"q\\\"\\n\\u0001\",\"i\":-3,\"a\":[true,null,null]}");
	struct jparse p;
	assert_true(parse(&p, b) >= 0);
}

static void test_writer_overflow(void **st)
{
	char b[8];
	struct jw w;
	(void)st;
	jw_init(&w, b, sizeof b);
	jw_obj_begin(&w);
	jw_kstr(&w, "key", "a long value");
	assert_true(w.overflow);
	assert_true(strlen(b) < sizeof b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_object), cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_pool_exhaustion), cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_overflow),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
