/* The ctl wire format: every reply is one JSON object line; bad requests
 * get an "error" and leave the state alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "state.h"

static char out[CTL_MAX_REPLY];
static struct jv pool[4096];
static char sbuf[CTL_MAX_REPLY];

static int reply(struct ai_state *st, const char *req, size_t len, bool admin, struct jparse *p)
{
	size_t n = ctl_handle_line(st, req, len, admin, out, sizeof out);
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1)); /* exactly one line */
	*p = (struct jparse){.pool = pool, .cap = 4096, .sbuf = sbuf, .scap = sizeof sbuf};
	int root = json_parse(p, out, n - 1);
	assert_true(root >= 0);
	int v = json_get(p, root, "v");
	assert_true(v >= 0);
	assert_true(pool[v].num == CTL_VERSION);
	return root;
}

static void expect_error(struct ai_state *st, const char *req, size_t len, const char *needle)
{
	struct jparse p;
	int root = reply(st, req, len, true, &p);
	const char *e = json_get_str(&p, root, "error");
	assert_non_null(e);
	if (needle && !strstr(e, needle))
		fail_msg("error \"%s\" lacks \"%s\"", e, needle);
}

static void test_bad_requests(void **s)
{
	struct ai_state st = {0};
	(void)s;
	snprintf(st.degraded, sizeof st.degraded, "test");
	expect_error(&st, "", 0, "malformed");
	expect_error(&st, "junk", 4, "malformed");
	expect_error(&st, "[1,2]", 5, "JSON object");
	expect_error(&st, "{\"nocmd\":1}", 11, "missing");
	expect_error(&st, "{\"cmd\":\"frobnicate\"}", 20, "unknown command");
	expect_error(&st, "{\"cmd\":42}", 10, "missing");
	expect_error(&st, "{\"cmd\":\"stop\"}", 14, "no configuration");
	expect_error(&st, "{\"cmd\":\"st\0atus\"}", 17, "malformed");
	char *big = malloc(CTL_MAX_REQ + 100);
	memset(big, 'x', CTL_MAX_REQ + 100);
	expect_error(&st, big, CTL_MAX_REQ + 100, "longer than");
	free(big);
	assert_int_equal(st.phase, PHASE_RUN);
}

static void test_permission(void **s)
{
	struct ai_state st = {0};
	struct jparse p;
	(void)s;
	int root = reply(&st, "{\"cmd\":\"poweroff\"}", 18, false, &p);
	assert_non_null(strstr(json_get_str(&p, root, "error"), "permission denied"));
	assert_int_equal(st.phase, PHASE_RUN);
	root = reply(&st, "{\"cmd\":\"ping\"}", 14, false, &p);
	assert_null(json_get_str(&p, root, "error"));
}

static void test_status_degraded(void **s)
{
	struct ai_state st = {0};
	struct jparse p;
	(void)s;
	snprintf(st.degraded, sizeof st.degraded, "bad config");
	int root = reply(&st, "{\"cmd\":\"status\"}", 16, false, &p);
	assert_string_equal(json_get_str(&p, root, "degraded"), "bad config");
	int agents = json_get(&p, root, "agents");
	assert_true(agents >= 0);
	assert_int_equal(pool[agents].kind, JV_ARR);
	assert_int_equal(pool[agents].first_child, -1);
}

static void test_poweroff_degraded(void **s)
{
	struct ai_state st = {0};
	struct jparse p;
	(void)s;
	int root = reply(&st, "{\"cmd\":\"poweroff\"}", 18, true, &p);
	assert_null(json_get_str(&p, root, "error"));
	assert_int_equal(st.phase, PHASE_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_permission),
		cmocka_unit_test(test_status_degraded),
		cmocka_unit_test(test_poweroff_degraded),
	};
	return cmocka_run_group_tests_name("ctl", tests, NULL, NULL);
}
