/* check.c and legacy.c: one failing config per rule, asserting the rule id
 * and the exact line:col; the importer's round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "import.h"
#include "legacy.h"

static char *write_tmp(const char *text, char *path)
{
	strcpy(path, "/tmp/ainit-check-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* One v1 config loaded from text with the whole-config rules run. */
struct fx {
	char path[64];
	struct diag_list d;
	struct ai_config *c;
};

static struct ai_config *load_into(struct fx *x, struct diag_list *d, const char *text)
{
	const char *f = write_tmp(text, x->path);
	x->c = cfg_load(&f, 1, d);
	if (x->c)
		chk_config(x->c, d);
	return x->c;
}

static struct ai_config *load(struct fx *x, const char *text)
{
	memset(&x->d, 0, sizeof x->d);
	return load_into(x, &x->d, text);
}

static void done(struct fx *x)
{
	cfg_free(x->c);
	diag_free(&x->d);
	unlink(x->path);
}

static const struct diag *find(const struct diag_list *d, const char *rule, unsigned line,
			       unsigned col)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i].rule && !strcmp(d->v[i].rule, rule) && d->v[i].pos.line == line &&
		    (!col || d->v[i].pos.col == col))
			return &d->v[i];
	diag_print(d, stderr);
	fail_msg("no [%s] at %u:%u", rule, line, col);
	return NULL;
}

static int count(const struct diag_list *d, const char *rule)
{
	int n = 0;
	for (int i = 0; i < d->n; i++)
		n += d->v[i].rule && !strcmp(d->v[i].rule, rule);
	return n;
}

#define HEAD "version: 1\ndefaults: {user: root}\n"

static void test_port_collision(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "groups:\n"
				       "  g:\n"
				       "    agents:\n"
				       "      A: {command: [a], port: 7220, health_port: 8220}\n"
				       "      B: {command: [b], port: 7220, health_port: 8230}\n"));
	const struct diag *x = find(&t.d, "port-collision", 7, 31);
	assert_int_equal(x->sev, DIAG_ERROR);
	assert_int_equal(x->note_pos.line, 6); /* the other end */
	assert_int_equal(x->note_pos.col, 31);
	assert_non_null(strstr(x->msg, "port 7220 of B is already the port of A"));
	assert_int_equal(t.d.errors, 1);
	done(&t);
}

static void test_health_port_collides_with_port(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "appliance: {hostname: h, metrics: {listen: \"0.0.0.0:9000\"}}\n"
				       "groups:\n"
				       "  g:\n"
				       "    agents:\n"
				       "      A: {command: [a], port: 7211, health_port: 8211}\n"
				       "      B: {command: [b], port: 7210, health_port: 7211}\n"
				       "      C: {command: [c], port: 9000, health_port: 10000}\n"));
	find(&t.d, "port-collision", 8, 50);
	const struct diag *x = find(&t.d, "port-collision", 9, 31); /* vs metrics.listen (l.3) */
	assert_int_equal(x->note_pos.line, 3);
	done(&t);
}

static void test_cycle(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "groups:\n"
				       "  g:\n"
				       "    agents:\n"
				       "      TTS: {command: [a], depends_on: [SIH]}\n"
				       "      SIH: {command: [a], depends_on: [STA]}\n"
				       "      STA: {command: [a], depends_on: [TTS, X]}\n"
				       "      X: {command: [a]}\n"));
	const struct diag *x = find(&t.d, "dependency-cycle", 6, 40);
	assert_non_null(strstr(x->msg, "TTS -> SIH (line 6) -> STA (line 7) -> TTS (line 8)"));
	assert_int_equal(x->note_pos.line, 8);
	assert_int_equal(count(&t.d, "dependency-cycle"), 1);
	done(&t);
}

static void test_cycle_through_groups(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "groups:\n"
				       "  a:\n"
				       "    depends_on: [b]\n"
				       "    agents: {A: {command: [a]}}\n"
				       "  b:\n"
				       "    agents: {B: {command: [b], depends_on: [a]}}\n"));
	const struct diag *x = find(&t.d, "dependency-cycle", 5, 18);
	assert_non_null(strstr(x->msg, "A -> B (line 5) -> A (line 8)"));
	done(&t);
}

static void test_undeclared_volume(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "volumes: {logs: {}}\n"
				       "groups:\n"
				       "  g:\n"
				       "    volumes: [logs:/l, logz:/x, /host/dir:/y:ro]\n"
				       "    agents: {A: {command: [a]}}\n"));
	const struct diag *x = find(&t.d, "undeclared-volume", 6, 24);
	assert_non_null(strstr(x->msg, "did you mean \"logs\""));
	assert_int_equal(count(&t.d, "undeclared-volume"), 1); /* bind mounts need no declaration */
	done(&t);
}

static void test_implicit_root(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, "version: 1\n"
				   "groups:\n"
				   "  g:\n"
				   "    agents:\n"
				   "      A: {command: [a]}\n"
				   "      B: {command: [b], user: root}\n"
				   "  h:\n"
				   "    agents: {C: {command: [c]}, D: {command: [d]}}\n"));
	const struct diag *x = find(&t.d, "implicit-root", 5, 7);
	assert_int_equal(x->sev, DIAG_WARNING);
	find(&t.d, "implicit-root", 7, 3); /* the whole group h: one warning */
	assert_int_equal(count(&t.d, "implicit-root"), 2);
	assert_int_equal(t.d.errors, 0);
	done(&t);
}

static void test_health_rules(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "groups:\n"
				       "  g:\n"
				       "    agents:\n"
				       "      A: {command: [a], port: 7200, health_port: 8200}\n"
				       "      B: {command: [a], port: 7201, health_port: 8201}\n"
				       "      C: {command: [a], port: 7120, health_port: 8100}\n"
				       "      D: {command: [a], port: 9000, health_port: 9100}\n"
				       "      E: {command: [a], port: 7300, health_port: 8300, health: {zmq: 8301}}\n"));
	const struct diag *x = find(&t.d, "health-port-rule", 9, 50);
	assert_non_null(strstr(x->msg, "follows no rule"));
	x = find(&t.d, "health-port-divergence", 8, 50);
	assert_non_null(strstr(x->msg, "C follows 81xx"));
	find(&t.d, "health-port-mismatch", 10, 64);
	assert_int_equal(t.d.errors, 0);
	assert_int_equal(chk_health_rule(7100, 8100), CHK_HP_PLUS1000 | CHK_HP_81XX);
	assert_int_equal(chk_health_rule(7200, 8200), CHK_HP_PLUS1000);
	assert_int_equal(chk_health_rule(7120, 8100), CHK_HP_81XX);
	assert_int_equal(chk_health_rule(9000, 9100), 0);
	done(&t);
}

static void test_remote_deps(void **s)
{
	(void)s;
	struct fx m, p;
	struct diag_list d = {0};
	struct ai_config *a = load_into(&m, &d, HEAD "appliance: {hostname: mainpc, hosts: {pc2: 10.0.0.2}}\n"
						"groups: {g: {agents: {ServiceRegistry: {command: [a]}}}}\n");
	struct ai_config *b = load_into(&p, &d, HEAD "appliance: {hostname: pc2, hosts: {mainpc: 10.0.0.1}}\n"
						"groups:\n"
						"  g:\n"
						"    depends_on: [\"mainpc:ServiceRegistri\", \"mainpc:ServiceRegistry\", \"nas:X\"]\n"
						"    agents: {A: {command: [a]}}\n");
	assert_non_null(a);
	assert_non_null(b);
	find(&d, "unknown-host", 6, 70); /* nas is not in appliance.hosts */
	const struct ai_config *cs[] = {a, b};
	chk_configs(cs, 2, &d);
	const struct diag *x = find(&d, "undefined-remote-dependency", 6, 18);
	assert_non_null(strstr(x->msg, "did you mean \"ServiceRegistry\""));
	assert_int_equal(count(&d, "undefined-remote-dependency"), 1);
	find(&d, "unresolved-remote-dependency", 6, 70);
	m.d = p.d = (struct diag_list){0};
	done(&m);
	done(&p);
	diag_free(&d);
}

static void test_machines(void **s)
{
	(void)s;
	struct fx m, p;
	struct diag_list d = {0};
	/* the same hostname twice; one machine on port+1000 only, the other on 81xx only */
	assert_non_null(load_into(&m, &d, HEAD "appliance: {hostname: box}\n"
					   "groups: {g: {agents: {A: {command: [a], port: 7200, health_port: 8200}}}}\n"));
	assert_non_null(load_into(&p, &d, HEAD "appliance: {hostname: box}\n"
					   "groups: {g: {agents: {B: {command: [a], port: 7120, health_port: 8100}}}}\n"));
	const struct ai_config *cs[] = {m.c, p.c};
	chk_configs(cs, 2, &d);
	const struct diag *x = find(&d, "duplicate-host", 3, 23);
	assert_int_equal(x->note_pos.line, 3);
	x = find(&d, "health-port-divergence", 0, 0);
	assert_string_equal(x->pos.file, p.path);
	m.d = p.d = (struct diag_list){0};
	done(&m);
	done(&p);
	diag_free(&d);
}

static void test_clean(void **s)
{
	(void)s;
	struct fx t;
	assert_non_null(load(&t, HEAD "volumes: {data: {}}\n"
				       "groups:\n"
				       "  infra:\n"
				       "    volumes: [data:/data]\n"
				       "    agents: {redis: {command: [redis-server], port: 6379, health: {tcp: 6379}}}\n"
				       "  core:\n"
				       "    depends_on: [infra]\n"
				       "    agents:\n"
				       "      A: {command: [a], port: 7200, health_port: 8200, health: {zmq: 8200}}\n"
				       "      B: {command: [a], port: 7201, health_port: 8201, depends_on: [A]}\n"));
	if (t.d.n)
		diag_print(&t.d, stderr);
	assert_int_equal(t.d.n, 0);
	done(&t);
}

/* ---- legacy ---------------------------------------------------------------------- */

static const char *const STARTUP =
	"global_settings:\n"                                     /* 1 */
	"  environment: {PYTHONPATH: /app, X: '${PWD}/..'}\n"    /* 2 */
	"agent_groups:\n"                                        /* 3 */
	"  core:\n"                                              /* 4 */
	"    Reg:\n"                                             /* 5 */
	"      script_path: a/reg.py\n"                          /* 6 */
	"      port: 7200\n"                                     /* 7 */
	"      health_check_port: 8200\n"                        /* 8 */
	"      dependencies: []\n"                               /* 9 */
	"    Twin:\n"                                            /* 10 */
	"      script_path: a/twin.py\n"                         /* 11 */
	"      port: ${PORT_OFFSET}+7220\n"                      /* 12 */
	"      health_check_port: 8220\n"                        /* 13 */
	"      required: ${X:-false} == 'false'\n"               /* 14 */
	"      dependencies: [Reg, Nope]\n"                      /* 15 */
	"      config: {grpc_port: 7200, zmq_port: 7220}\n"      /* 16 */
	"  empty: null\n"                                        /* 17 */
	"  learn:\n"                                             /* 18 */
	"    Eval:\n"                                            /* 19 */
	"      script_path: a/eval.py\n"                         /* 20 */
	"      port: 7220\n"                                     /* 21 */
	"      health_check_port: 7221\n"                        /* 22 */
	"      dependencies: [Twin]\n"                           /* 23 */
	"    Twin:\n"                                            /* 24 */
	"      script_path: a/twin2.py\n"                        /* 25 */
	"  docker_groups:\n"                                     /* 26 */
	"    infra: {description: x, agents: [Reg, Ghost]}\n"    /* 27 */
	"  speech:\n"                                            /* 28 */
	"    description: y\n"                                   /* 29 */
	"    agents: [Eval, Ghost]\n";                           /* 30 */

static void test_legacy_startup(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	assert_int_equal(lg_add_buf(set, "m/startup_config.yaml", STARTUP, strlen(STARTUP), &d),
			 LG_STARTUP);
	lg_check(set, NULL, &d);
	find(&d, "env-expansion", 2, 38);
	find(&d, "port-expression", 12, 13);
	find(&d, "bad-value", 14, 17);
	find(&d, "undefined-dependency", 15, 27);
	const struct diag *x = find(&d, "port-collision", 16, 27); /* config.grpc_port vs Reg */
	assert_int_equal(x->note_pos.line, 7);
	find(&d, "empty-group", 17, 3);
	x = find(&d, "port-collision", 21, 13); /* Eval vs Twin (read as 7220) */
	assert_int_equal(x->note_pos.line, 12);
	find(&d, "health-port-rule", 22, 26);
	x = find(&d, "duplicate-agent", 24, 5);
	assert_int_equal(x->note_pos.line, 10);
	find(&d, "legacy-structure", 26, 3);
	find(&d, "grouping-unknown-agent", 27, 43);
	find(&d, "legacy-structure", 28, 3);
	find(&d, "duplicate-member", 30, 20);
	/* zmq_port equal to its own port is the same socket: no collision */
	for (int i = 0; i < d.n; i++)
		assert_false(d.v[i].pos.line == 16 && d.v[i].pos.col > 30);
	diag_free(&d);
	lg_set_free(set);
}

static const char *const PC2 = "pc2_services:\n"                              /* 1 */
			       "  - {name: A, script_path: a.py, port: 7100, health_check_port: 8100,\n"
			       "     dependencies: [B], required: true}\n"             /* 3 */
			       "  - {name: B, script_path: b.py, port: 7101, health_check_port: 8101,\n"
			       "     dependencies: [A], }\n"                           /* 5 */
			       "pc2_network:\n"                                        /* 6 */
			       "  health_check_ports: {start: 8100, end: 8199}\n"      /* 7 */
			       "core_services:\n"                                      /* 8 */
			       "  - name: A\n"                                         /* 9 */
			       "    script_path: a.py\n"                               /* 10 */
			       "    port: 7100\n"                                      /* 11 */
			       "    health_check_port: 7141\n"                         /* 12 */
			       "error_bus_port: 7101\n";                               /* 13 */

static const char *const GROUPING = "container_groups:\n"                       /* 1 */
				    "  core:\n"                                          /* 2 */
				    "    agents:\n"                                      /* 3 */
				    "      - name: A\n"                                  /* 4 */
				    "        port: 7199\n"                               /* 5 */
				    "        required: false\n"                          /* 6 */
				    "      - name: Bus\n"                                /* 7 */
				    "        port: 7100\n";                              /* 8 */

static const char *const GROUPS = "g1: [A]\ng2: [A, Z]\ncontainer_mapping: {g-1: g1}\n";

static void test_legacy_pc2_and_groupings(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	assert_int_equal(lg_add_buf(set, "p/startup_config.yaml", PC2, strlen(PC2), &d), LG_STARTUP);
	assert_int_equal(lg_add_buf(set, "p/container_grouping.yaml", GROUPING, strlen(GROUPING), &d),
			 LG_GROUPING);
	assert_int_equal(lg_add_buf(set, "p/container_groups.yaml", GROUPS, strlen(GROUPS), &d),
			 LG_GROUPS);
	lg_check(set, NULL, &d);
	find(&d, "dependency-cycle", 3, 21);
	find(&d, "flow-style", 5, 23); /* the trailing comma of [A], } */
	const struct diag *x = find(&d, "duplicate-agent", 9, 11);
	assert_int_equal(x->note_pos.line, 2);
	find(&d, "port-range", 12, 24);
	find(&d, "health-port-rule", 12, 24);
	x = find(&d, "port-collision", 13, 17); /* error_bus_port vs B */
	assert_int_equal(x->note_pos.line, 4);
	find(&d, "grouping-mismatch", 5, 15);  /* port 7199 vs 7100 */
	find(&d, "grouping-mismatch", 6, 19);  /* required */
	find(&d, "grouping-unknown-agent", 7, 15);
	x = find(&d, "port-collision", 8, 15); /* Bus vs A, across files */
	assert_string_equal(x->pos.file, "p/container_grouping.yaml");
	assert_string_equal(x->note_pos.file, "p/startup_config.yaml");
	find(&d, "ungrouped-agent", 4, 12);    /* B: in no group of container_grouping */
	find(&d, "conflicting-groupings", 1, 1);
	find(&d, "duplicate-member", 2, 6);
	find(&d, "grouping-unknown-agent", 2, 9); /* Z */
	diag_free(&d);
	lg_set_free(set);
}

static void test_legacy_groups_vs_startup(void **s)
{
	(void)s;
	static const char st[] = "agent_groups:\n"
				 "  core:\n"
				 "    A: {script_path: a.py, port: 5000, health_check_port: 6000, portt: 1}\n"
				 "  speech:\n"
				 "    B: {script_path: b.py}\n";
	static const char gr[] = "core: [A]\n"
				 "gpu: [B]\n"
				 "container_mapping: {core-x: core, other: nothere}\n";
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	assert_int_equal(lg_add_buf(set, "m/startup_config.yaml", st, strlen(st), &d), LG_STARTUP);
	assert_int_equal(lg_add_buf(set, "m/container_groups.yaml", gr, strlen(gr), &d), LG_GROUPS);
	lg_check(set, NULL, &d);
	const struct diag *x = find(&d, "unknown-key", 3, 65);
	assert_non_null(strstr(x->msg, "did you mean \"port\""));
	x = find(&d, "grouping-group-mismatch", 2, 1);  /* gpu: not a startup group */
	assert_non_null(strstr(x->msg, "B in speech"));
	find(&d, "grouping-group-mismatch", 4, 3);      /* speech: missing from the grouping */
	find(&d, "undefined-group", 3, 42);
	assert_string_equal(lg_get(set, 1)->groups[0].container, "core-x");
	diag_free(&d);
	lg_set_free(set);
}

static void test_registry(void **s)
{
	(void)s;
	static const char reg[] = "# Registry\n"
				  "| # | Agent Name | ZMQ Port | Health Check Port |\n"
				  "|---|------------|----------|-------------------|\n"
				  "| 1 | A          | 7100     | 8100              |\n"
				  "| 2 | Gone       | 7101     | 8101              |\n"
				  "| 3 | Twin       | 7120     | 8100              |\n"
				  "| 4 | B          | 7102     | 8102              |\n";
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	assert_int_equal(lg_add_buf(set, "p/PORT_REGISTRY.md", reg, strlen(reg), &d), LG_REGISTRY);
	assert_int_equal(lg_add_buf(set, "p/startup_config.yaml", PC2, strlen(PC2), &d), LG_STARTUP);
	lg_check(set, NULL, &d);
	const struct diag *x = find(&d, "port-collision", 6, 31); /* 8100 twice */
	assert_int_equal(x->note_pos.line, 4);
	x = find(&d, "health-port-rule", 6, 31);                 /* only 81xx */
	assert_non_null(strstr(x->msg, "follows only 81xx"));
	find(&d, "registry-unknown-agent", 5, 7);
	find(&d, "registry-mismatch", 7, 20);  /* B: 7102 here, 7101 there */
	find(&d, "registry-mismatch", 5, 20);  /* 7101 is Gone's here, B's there */
	assert_false(lg_is_grouping(lg_get(set, 0)));
	diag_free(&d);
	lg_set_free(set);
}

static void test_detect(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	const char *v1 = "version: 1\ngroups: {}\n", *other = "services: {a: {image: x}}\n";
	assert_int_equal(lg_add_buf(set, "a", v1, strlen(v1), &d), LG_V1);
	assert_int_equal(lg_add_buf(set, "b", other, strlen(other), &d), LG_V1);
	assert_int_equal(lg_add_buf(set, "c", "[", 1, &d), LG_ERROR);
	assert_int_equal(lg_count(set), 0);
	diag_free(&d);
	lg_set_free(set);
}

/* import -> load -> the same agents, ports and dependencies */
static void test_import_round_trip(void **s)
{
	(void)s;
	struct diag_list d = {0};
	struct lg_set *set = lg_set_new();
	char *buf = NULL, p[64];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(lg_add_buf(set, "m/startup_config.yaml", STARTUP, strlen(STARTUP), &d),
			 LG_STARTUP);
	assert_int_equal(imp_legacy(set, lg_get(set, 0), f, &d), 0);
	fclose(f);
	find(&d, "import-unmapped", 16, 7);  /* config block */
	find(&d, "import-unmapped", 15, 27); /* undefined dependency kept as comment */
	find(&d, "import-unmapped", 24, 5);  /* second Twin */
	const char *path = write_tmp(buf, p);
	struct diag_list d2 = {0};
	struct ai_config *c = cfg_load(&path, 1, &d2);
	if (!c)
		diag_print(&d2, stderr);
	assert_non_null(c);
	assert_int_equal(c->nagents, 3);
	int twin = cfg_find_agent(c, "Twin"), reg = cfg_find_agent(c, "Reg");
	assert_true(twin >= 0 && reg >= 0);
	assert_int_equal(c->agents[twin].port, 7220);
	assert_int_equal(c->agents[twin].health_port, 8220);
	assert_int_equal(c->agents[twin].health.kind, HK_ZMQ);
	assert_int_equal(c->agents[twin].deps.n, 1);
	assert_string_equal(c->agents[twin].deps.v[0].target, "Reg");
	assert_string_equal(c->agents[twin].command.v[1], "/opt/ai/a/twin.py");
	assert_string_equal(c->agents[twin].working_dir, "/opt/ai");
	assert_string_equal(c->agents[reg].user, "root");
	assert_true(c->agents[reg].required == false);
	chk_config(c, &d2);
	assert_int_equal(count(&d2, "port-collision"), 1); /* Eval 7220 still collides with Twin */
	cfg_free(c);
	diag_free(&d);
	diag_free(&d2);
	lg_set_free(set);
	free(buf);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_collision),
		cmocka_unit_test(test_health_port_collides_with_port),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_cycle_through_groups),
		cmocka_unit_test(test_undeclared_volume),
		cmocka_unit_test(test_implicit_root),
		cmocka_unit_test(test_health_rules),
		cmocka_unit_test(test_remote_deps),
		cmocka_unit_test(test_machines),
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_legacy_startup),
		cmocka_unit_test(test_legacy_pc2_and_groupings),
		cmocka_unit_test(test_legacy_groups_vs_startup),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_import_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
