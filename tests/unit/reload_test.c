/* reload's pure part: normalised descriptions, the first changed key, and
 * the plan (added, removed, restarted with why, unchanged, needs reboot,
 * sandboxes to rebuild). */
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
#include "reload.h"

static struct ai_config *load(const char *text)
{
	static char path[64];
	struct diag_list d = {0};
	strcpy(path, "/tmp/ainit-reload-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	const char *f = path;
	struct ai_config *c = cfg_load(&f, 1, &d);
	unlink(path);
	if (!c)
		diag_print(&d, stderr);
	diag_free(&d);
	assert_non_null(c);
	return c;
}

static const char *BASE =
	"version: 1\n"
	"appliance: {hostname: a}\n"
	"defaults:\n"
	"  restart: {policy: always, delay: 200ms}\n"
	"  environment: {LOG_LEVEL: INFO}\n"
	"groups:\n"
	"  g:\n"
	"    resources: {memory: 1GiB}\n"
	"    agents:\n"
	"      keep: {command: [sleep, \"1\"], environment: {A: x, B: y}}\n"
	"      change: {command: [sleep, \"1\"]}\n"
	"      gone: {command: [sleep, \"1\"]}\n"
	"  h:\n"
	"    agents:\n"
	"      other: {command: [sleep, \"1\"], depends_on: [keep]}\n";

/* text with the first `from` replaced by `to` (malloc'd) */
static char *subst(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	assert_non_null(at);
	char *r = malloc(strlen(text) + strlen(to) + 1);
	sprintf(r, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	return r;
}

static int act_of(const struct ai_config *c, const struct rl_plan *p, const char *name)
{
	int i = cfg_find_agent(c, name);
	assert_true(i >= 0);
	return p->act[i];
}

static void test_first_diff(void **s)
{
	(void)s;
	char k[RL_KEY];
	assert_false(rl_first_diff("a=1\nb=2\n", "b=2\na=1\n", k, sizeof k));
	assert_true(rl_first_diff("a=1\nb=2\n", "a=1\nb=3\n", k, sizeof k));
	assert_string_equal(k, "b");
	/* a key only on one side */
	assert_true(rl_first_diff("a=1\n", "a=1\nenv.X=1\n", k, sizeof k));
	assert_string_equal(k, "env.X");
	assert_true(rl_first_diff("a=1\nenv.X=1\n", "a=1\n", k, sizeof k));
	assert_string_equal(k, "env.X");
	/* a prefix of another key is another key */
	assert_true(rl_first_diff("ab=1\n", "a=1\n", k, sizeof k));
	assert_false(rl_first_diff("", "", k, sizeof k));
}

static void test_description_is_normalised(void **s)
{
	(void)s;
	/* the same agent written two ways: inherited vs spelled out, env in
	 * another order, defaults written explicitly */
	struct ai_config *a = load(BASE);
	struct ai_config *b = load(
		"version: 1\n"
		"appliance: {hostname: a}\n"
		"groups:\n"
		"  g:\n"
		"    resources: {memory: 1GiB}\n"
		"    agents:\n"
		"      keep: {command: [sleep, \"1\"], environment: {B: y, LOG_LEVEL: INFO, A: x},\n"
		"             restart: {policy: always, delay: 200ms}}\n");
	char *x = malloc(65536), *y = malloc(65536), k[RL_KEY];
	assert_true(rl_describe_agent(a, cfg_find_agent(a, "keep"), true, x, 65536) < 65536);
	assert_true(rl_describe_agent(b, cfg_find_agent(b, "keep"), true, y, 65536) < 65536);
	assert_false(rl_first_diff(x, y, k, sizeof k));
	assert_non_null(strstr(x, "command=\"sleep\" \"1\"\n"));
	assert_non_null(strstr(x, "environment.A=x\n"));
	/* a newline in a value stays on its line */
	struct ai_config *c = load("version: 1\ngroups: {g: {agents: {n: {command: [\"a\\nb=c\"]}}}}\n");
	rl_describe_agent(c, 0, false, x, 65536);
	assert_non_null(strstr(x, "command=\"a\\nb=c\"\n"));
	/* too small a buffer says so */
	assert_int_equal(rl_describe_agent(a, 0, false, x, 16), 16);
	free(x);
	free(y);
	cfg_free(a);
	cfg_free(b);
	cfg_free(c);
}

static void test_plan(void **s)
{
	(void)s;
	struct ai_config *o = load(BASE);
	struct ai_config *n = load(
		"version: 1\n"
		"appliance: {hostname: b}\n"
		"defaults:\n"
		"  restart: {policy: always, delay: 200ms}\n"
		"  environment: {LOG_LEVEL: INFO}\n"
		"groups:\n"
		"  h:\n"
		"    agents:\n"
		"      other: {command: [sleep, \"1\"], depends_on: [keep]}\n"
		"      fresh: {command: [true]}\n"
		"  g:\n"
		"    resources: {memory: 1GiB}\n"
		"    agents:\n"
		"      keep: {command: [sleep, \"1\"], environment: {A: x, B: y}}\n"
		"      change: {command: [sleep, \"1\"], stop: {signal: SIGINT}}\n");
	struct rl_plan p;
	assert_int_equal(rl_plan_make(o, n, false, &p), 0);
	assert_int_equal(p.nadd, 1);
	assert_int_equal(p.nremove, 1);
	assert_int_equal(p.nrestart, 1);
	assert_int_equal(p.nkeep, 2);
	/* reordered groups: still the same agents, found by name */
	assert_int_equal(act_of(n, &p, "keep"), RL_KEEP);
	assert_int_equal(act_of(n, &p, "other"), RL_KEEP);
	assert_int_equal(act_of(n, &p, "fresh"), RL_ADD);
	assert_int_equal(act_of(n, &p, "change"), RL_RESTART);
	assert_string_equal(p.why[cfg_find_agent(n, "change")], "stop.signal");
	assert_int_equal(p.old_of_new[cfg_find_agent(n, "keep")], cfg_find_agent(o, "keep"));
	assert_int_equal(p.new_of_old[cfg_find_agent(o, "gone")], -1);
	assert_int_equal(p.nreboot, 1);
	assert_string_equal(p.reboot[0], "appliance.hostname");
	rl_plan_free(&p);
	cfg_free(n);
	cfg_free(o);
}

static void test_plan_inherited_and_sandbox(void **s)
{
	(void)s;
	struct ai_config *o = load(BASE);
	/* a changed default reaches every agent that inherits it; a group's
	 * resources matter only when groups run in sandboxes */
	char *t = subst(BASE, "LOG_LEVEL: INFO", "LOG_LEVEL: WARN");
	struct ai_config *n = load(t);
	struct rl_plan p;
	assert_int_equal(rl_plan_make(o, n, false, &p), 0);
	assert_int_equal(p.nrestart, 4);
	assert_string_equal(p.why[0], "environment.LOG_LEVEL");
	rl_plan_free(&p);
	cfg_free(n);
	free(t);
	t = subst(BASE, "memory: 1GiB", "memory: 2GiB");
	n = load(t);
	assert_int_equal(rl_plan_make(o, n, false, &p), 0);
	assert_int_equal(p.nkeep, 4);
	assert_false(p.group_rebuild[cfg_find_group(n, "g")]);
	rl_plan_free(&p);
	assert_int_equal(rl_plan_make(o, n, true, &p), 0);
	assert_int_equal(p.nrestart, 3); /* keep, change, gone's group */
	assert_int_equal(p.nkeep, 1);    /* other, in h */
	assert_true(p.group_rebuild[cfg_find_group(n, "g")]);
	assert_false(p.group_rebuild[cfg_find_group(n, "h")]);
	assert_string_equal(p.why[cfg_find_agent(n, "keep")], "sandbox.resources");
	rl_plan_free(&p);
	cfg_free(n);
	free(t);
	cfg_free(o);
}

static void test_depends_on_by_name(void **s)
{
	(void)s;
	/* an agent added before `keep` shifts every index: dependencies are
	 * compared by name, so `other` is unchanged; a live edge is a change */
	struct ai_config *o = load(BASE);
	char *t = subst(BASE, "      keep:", "      first: {command: [sleep, \"1\"]}\n      keep:");
	struct ai_config *n = load(t);
	struct rl_plan p;
	assert_int_equal(cfg_find_agent(n, "keep"), cfg_find_agent(o, "keep") + 1);
	assert_int_equal(rl_plan_make(o, n, false, &p), 0);
	assert_int_equal(act_of(n, &p, "other"), RL_KEEP);
	assert_int_equal(act_of(n, &p, "first"), RL_ADD);
	rl_plan_free(&p);
	cfg_free(n);
	free(t);
	n = load(
		"version: 1\n"
		"appliance: {hostname: a}\n"
		"defaults:\n"
		"  restart: {policy: always, delay: 200ms}\n"
		"  environment: {LOG_LEVEL: INFO}\n"
		"groups:\n"
		"  g:\n"
		"    resources: {memory: 1GiB}\n"
		"    agents:\n"
		"      keep: {command: [sleep, \"1\"], environment: {A: x, B: y}}\n"
		"      change: {command: [sleep, \"1\"]}\n"
		"      gone: {command: [sleep, \"1\"]}\n"
		"  h:\n"
		"    agents:\n"
		"      other: {command: [sleep, \"1\"], depends_on: [{name: keep, restart: true}]}\n");
	assert_int_equal(rl_plan_make(o, n, false, &p), 0);
	assert_int_equal(act_of(n, &p, "other"), RL_RESTART);
	assert_string_equal(p.why[cfg_find_agent(n, "other")], "depends_on");
	rl_plan_free(&p);
	cfg_free(n);
	cfg_free(o);
}

static void test_appliance_needs_reboot(void **s)
{
	(void)s;
	struct ai_config *o = load(
		"version: 1\n"
		"appliance:\n"
		"  hostname: a\n"
		"  kernel_modules: [m1]\n"
		"  ctl: {socket: /run/a.sock}\n"
		"  metrics: {listen: \"127.0.0.1:9400\"}\n"
		"  hosts: {pc2: 10.0.0.2}\n"
		"volumes: {data: {}}\n"
		"groups: {g: {agents: {x: {command: [\"true\"]}}}}\n");
	struct ai_config *n = load(
		"version: 1\n"
		"appliance:\n"
		"  hostname: a\n"
		"  kernel_modules: [m1, m2]\n"
		"  ctl: {socket: /run/b.sock}\n"
		"  metrics: {listen: \"127.0.0.1:9401\"}\n"
		"  hosts: {pc2: 10.0.0.3}\n"
		"volumes: {data: {}, models: {}}\n"
		"groups: {g: {agents: {x: {command: [\"true\"]}}}}\n");
	struct rl_plan p = {0};
	rl_appliance_diff(o, n, &p);
	assert_int_equal(p.nreboot, 4);
	assert_string_equal(p.reboot[0], "appliance.kernel_modules");
	assert_string_equal(p.reboot[1], "appliance.ctl.socket");
	assert_string_equal(p.reboot[2], "appliance.metrics.listen");
	assert_string_equal(p.reboot[3], "volumes");
	/* hosts (remote dependencies) apply live: not a reboot */
	p.nreboot = 0;
	rl_appliance_diff(o, o, &p);
	assert_int_equal(p.nreboot, 0);
	cfg_free(n);
	cfg_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_diff),
		cmocka_unit_test(test_description_is_normalised),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_plan_inherited_and_sandbox),
		cmocka_unit_test(test_depends_on_by_name),
		cmocka_unit_test(test_appliance_needs_reboot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
