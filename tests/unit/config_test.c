/* The schema-v1 loader: values, inheritance, unknown keys, and hostile
 * input (each gives a located diagnostic, never a crash or a hang). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct ai_config *load_bytes(const char *text, size_t len, struct diag_list *d)
{
	/* static: diagnostics name the file by this path after the load */
	static char path[64];
	strcpy(path, "/tmp/ainit-config-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	const char *f = path;
	struct ai_config *c = cfg_load(&f, 1, d);
	unlink(path);
	return c;
}

static struct ai_config *load(const char *text, struct diag_list *d)
{
	return load_bytes(text, strlen(text), d);
}

static const struct diag *has(const struct diag_list *d, const char *rule, unsigned line,
			      unsigned col)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i].rule && !strcmp(d->v[i].rule, rule) && (!line || d->v[i].pos.line == line) &&
		    (!col || d->v[i].pos.col == col))
			return &d->v[i];
	diag_print(d, stderr);
	fail_msg("no [%s] at %u:%u", rule, line, col);
	return NULL;
}

static void test_values_and_inheritance(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct ai_config *c = load(
		"version: 1\n"
		"defaults:\n"
		"  user: agent\n"
		"  restart: {policy: always, delay: 200ms, max_delay: 5m, burst: 7, within: 1m30s}\n"
		"  health: {interval: 30s, timeout: 10s, retries: 3, start_period: 300s}\n"
		"  environment: {LOG_LEVEL: INFO, A: d}\n"
		"volumes: {data: {}}\n"
		"groups:\n"
		"  g:\n"
		"    user: grp\n"
		"    resources: {memory: 512MiB, memory_high: 2GiB, cpus: 1.5, pids: 100}\n"
		"    environment: {A: g, B: g}\n"
		"    volumes: [data:/d:ro, /srv:/srv]\n"
		"    gpu: [0, 1]\n"
		"    agents:\n"
		"      x: {command: [a, b], port: 7200, health_port: 8200, health: {zmq: 8200, interval: 5s},\n"
		"          environment: {B: x}, restart: on-failure, stop: {signal: SIGINT, timeout: 2s}}\n"
		"      y: {command: y, user: root, required: true}\n",
		&d);
	if (!c)
		diag_print(&d, stderr);
	assert_non_null(c);
	int x = cfg_find_agent(c, "x"), y = cfg_find_agent(c, "y");
	const struct cfg_agent *ax = &c->agents[x], *ay = &c->agents[y];
	assert_string_equal(ax->user, "grp");      /* group over defaults */
	assert_string_equal(ay->user, "root");     /* agent over group */
	assert_int_equal(ax->restart.policy, RP_ON_FAILURE);
	assert_int_equal(ay->restart.policy, RP_ALWAYS);
	assert_int_equal(ax->restart.delay_ms, 200);
	assert_int_equal(ax->restart.max_delay_ms, 300000);
	assert_int_equal(ax->restart.within_ms, 90000);
	assert_int_equal(ax->restart.burst, 7);
	assert_int_equal(ax->health.kind, HK_ZMQ);
	assert_int_equal(ax->health.interval_ms, 5000);   /* agent */
	assert_int_equal(ax->health.timeout_ms, 10000);   /* defaults */
	assert_int_equal(ax->health.start_period_ms, 300000);
	assert_int_equal(ax->stop.signal, 2);
	assert_int_equal(ax->stop.timeout_ms, 2000);
	assert_int_equal(ay->stop.timeout_ms, 10000);     /* built-in */
	assert_int_equal(ay->command.n, 1);
	assert_true(ay->required);
	/* environment: defaults < group < agent */
	const char *a = NULL, *b = NULL, *ll = NULL;
	for (int i = 0; i < ax->env.n; i++) {
		if (!strcmp(ax->env.v[i].key, "A"))
			a = ax->env.v[i].value;
		if (!strcmp(ax->env.v[i].key, "B"))
			b = ax->env.v[i].value;
		if (!strcmp(ax->env.v[i].key, "LOG_LEVEL"))
			ll = ax->env.v[i].value;
	}
	assert_string_equal(a, "g");
	assert_string_equal(b, "x");
	assert_string_equal(ll, "INFO");
	const struct cfg_group *g = &c->groups[0];
	assert_int_equal(g->res.memory_max, 512ll << 20);
	assert_int_equal(g->res.memory_high, 2ll << 30);
	assert_int_equal(g->res.cpus_milli, 1500);
	assert_int_equal(g->res.pids, 100);
	assert_int_equal(g->nmounts, 2);
	assert_true(g->mounts[0].named && g->mounts[0].ro);
	assert_false(g->mounts[1].named);
	assert_int_equal(g->gpu.mode, GPU_LIST);
	assert_int_equal(g->gpu.nindex, 2);
	/* positions are kept */
	assert_int_equal(ax->port_pos.line, 16);
	assert_int_equal(ax->port_pos.col, 34);
	cfg_free(c);
	diag_free(&d);
}

static void test_builtin_defaults(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct ai_config *c = load("version: 1\ngroups: {g: {agents: {a: {command: [true]}}}}\n", &d);
	assert_non_null(c);
	const struct cfg_agent *a = &c->agents[0];
	assert_null(a->user); /* root, the only user every host has */
	assert_int_equal(c->groups[0].network, NET_HOST);
	assert_int_equal(a->restart.policy, RP_ON_FAILURE);
	assert_int_equal(a->health.kind, HK_NONE);
	assert_int_equal(c->groups[0].gpu.mode, GPU_NONE);
	assert_int_equal(c->groups[0].devices.n, 0);
	cfg_free(c);
	diag_free(&d);
}

static void test_unknown_keys(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct ai_config *c = load("version: 1\n"
				   "groups:\n"
				   "  g:\n"
				   "    resources: {memroy: 1GiB}\n"
				   "    agents:\n"
				   "      a: {comand: [true]}\n",
				   &d);
	assert_null(c);
	const struct diag *x = has(&d, "unknown-key", 4, 17);
	assert_non_null(strstr(x->msg, "did you mean \"memory\""));
	x = has(&d, "unknown-key", 6, 11);
	assert_non_null(strstr(x->msg, "did you mean \"command\""));
	diag_free(&d);
}

static void test_bad_durations_sizes(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct ai_config *c = load("version: 1\n"
				   "groups:\n"
				   "  g:\n"
				   "    resources: {memory: 2 GB}\n"
				   "    agents:\n"
				   "      a: {command: [x], health: {interval: 3 fortnights}}\n"
				   "      b: {command: [x], restart: {delay: -1s}}\n",
				   &d);
	assert_null(c);
	has(&d, "bad-size", 4, 25);
	has(&d, "bad-duration", 6, 44);
	has(&d, "bad-duration", 7, 42);
	diag_free(&d);
}

static void test_dependencies_and_duplicates(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct ai_config *c = load("version: 1\n"
				   "groups:\n"
				   "  g:\n"
				   "    agents:\n"
				   "      a: {command: [x], depends_on: [b, nope]}\n"
				   "      b: {command: [x]}\n"
				   "  h:\n"
				   "    agents:\n"
				   "      a: {command: [y]}\n",
				   &d);
	assert_null(c);
	has(&d, "undefined-dependency", 5, 41);
	const struct diag *x = has(&d, "duplicate-agent", 9, 7);
	assert_int_equal(x->note_pos.line, 5);
	diag_free(&d);
}

static void test_env_substitution(void **s)
{
	(void)s;
	struct diag_list d = {0};
	setenv("AINIT_TEST_PORT", "7300", 1);
	unsetenv("AINIT_TEST_UNSET");
	struct ai_config *c = load("version: 1\n"
				   "groups:\n"
				   "  g:\n"
				   "    agents:\n"
				   "      a: {command: [x, \"${AINIT_TEST_UNSET:-dflt}\"], port: \"${AINIT_TEST_PORT}\"}\n",
				   &d);
	assert_non_null(c);
	assert_int_equal(c->agents[0].port, 7300);
	assert_string_equal(c->agents[0].command.v[1], "dflt");
	cfg_free(c);
	diag_free(&d);
	c = load("version: 1\ngroups: {g: {agents: {a: {command: [\"${AINIT_TEST_UNSET}\"]}}}}\n", &d);
	assert_null(c);
	const struct diag *x = has(&d, "env-substitution", 2, 0);
	assert_non_null(strstr(x->msg, "AINIT_TEST_UNSET"));
	diag_free(&d);
}

/* Hostile input: a located error, exit path, no crash. */
static void test_bad_input(void **s)
{
	(void)s;
	static const struct {
		const char *text;
		size_t len;
		const char *rule;
		unsigned line;
	} cases[] = {
#define T(s) s, sizeof(s) - 1
		{T("version: 1\ngroups:\n  g:\n    agents:\n      a: {command: [sleep, \"1\""), "yaml", 6},
		{T("version: 1\ngroups:\n  g: {agents: {a: {command: [sl\0eep]}}}\n"), "yaml", 0},
		{T("version: 1\nx: &a {command: [true]}\ngroups: {g: {agents: {a: *a}}}\n"), "yaml", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {<<: {command: [true]}}}}}\n"), "yaml", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: [x], port: 99999999999999999999}}}}\n"),
		 "range", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: [x], port: -5}}}}\n"), "range", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: [\xff\xfe]}}}}\n"), "yaml", 0},
		{T(""), "empty", 1},
		{T("groups: {}\n"), "missing-key", 1},
		{T("version: 2\ngroups: {}\n"), "version", 1},
		{T("version: 1\ngroups: [a, b]\n"), "type", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: {x: 1}}}}}\n"), "type", 2},
		{T("version: 1\ngroups: {g: {volumes: [data], agents: {a: {command: [x]}}}}\n"),
		 "bad-volume", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: [x], restart: sometimes}}}}\n"),
		 "bad-value", 2},
		{T("version: 1\ngroups: {g: {agents: {a: {command: [x]}}}}\ngroups: {}\n"),
		 "duplicate-key", 3},
		{T("\x01\x02\x03garbage: [\n"), "yaml", 0},
#undef T
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct diag_list d = {0};
		struct ai_config *c = load_bytes(cases[i].text, cases[i].len, &d);
		if (c)
			fail_msg("case %zu loaded", i);
		if (!d.errors)
			fail_msg("case %zu: no error", i);
		has(&d, cases[i].rule, cases[i].line, 0);
		diag_free(&d);
	}
}

static void test_deep_nesting(void **s)
{
	(void)s;
	struct diag_list d = {0};
	size_t n = 100000;
	char *t = malloc(2 * n + 32);
	strcpy(t, "version: 1\ngroups: ");
	size_t k = strlen(t);
	memset(t + k, '[', n);
	memset(t + k + n, ']', n);
	t[k + 2 * n] = 0;
	struct ai_config *c = load(t, &d);
	assert_null(c);
	has(&d, "yaml", 2, 0);
	free(t);
	diag_free(&d);
}

static void test_many_aliases_rejected(void **s)
{
	(void)s;
	/* billion laughs: refused at the first anchor, long before expansion */
	struct diag_list d = {0};
	struct ai_config *c = load("version: 1\n"
				   "a: &a [x, x, x, x, x, x, x, x, x]\n"
				   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
				   "groups: {}\n",
				   &d);
	assert_null(c);
	has(&d, "yaml", 2, 0);
	diag_free(&d);
}

/* Limits that keep lookups and duplicate checks from turning quadratic. */
static void test_limits(void **s)
{
	(void)s;
	struct diag_list d = {0};
	size_t cap = 64u << 20, n = 0;
	char *t = malloc(cap);
	assert_non_null(t);
	n += (size_t)sprintf(t + n, "version: 1\ngroups:\n  g:\n    agents:\n");
	for (int i = 0; i <= CFG_MAX_AGENTS; i++)
		n += (size_t)sprintf(t + n, "      a%d: {command: [x]}\n", i);
	struct ai_config *c = load(t, &d);
	assert_null(c);
	has(&d, "limit", 3, 3); /* the groups mapping */
	diag_free(&d);
	n = (size_t)sprintf(t, "version: 1\ngroups: {}\nx:\n");
	for (int i = 0; i <= CT_MAX_MAP_KEYS; i++)
		n += (size_t)sprintf(t + n, "  k%d: 1\n", i);
	c = load(t, &d);
	assert_null(c);
	has(&d, "limit", 4 + CT_MAX_MAP_KEYS, 0);
	diag_free(&d);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_and_inheritance),
		cmocka_unit_test(test_builtin_defaults),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_durations_sizes),
		cmocka_unit_test(test_dependencies_and_duplicates),
		cmocka_unit_test(test_env_substitution),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_aliases_rejected),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
