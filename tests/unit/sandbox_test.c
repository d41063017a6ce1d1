/* sandbox, cgroup, netns, oci: the pure parts (users from passwd/group
 * text, the device BPF program, cpu.max, bridge addresses, OCI JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "json.h"
#include "netns.h"
#include "oci.h"
#include "sandbox.h"

static const char passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
			     "agent:x:1000:1000:Agent:/home/agent:/bin/sh\n"
			     "svc:x:1001:1001::/srv:/usr/sbin/nologin";
static const char group[] = "root:x:0:\nagent:x:1000:\nvideo:x:44:agent,svc\n"
			    "render:x:105:svc,agent\nother:x:7:svc\n";

static void test_lookup_user(void **st)
{
	uid_t u;
	gid_t g, gs[8];
	int n = 8;
	char home[64];
	(void)st;
	assert_int_equal(sbx_lookup_user(passwd, group, "agent", &u, &g, gs, &n, home, sizeof home), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(g, 1000);
	assert_string_equal(home, "/home/agent");
	assert_int_equal(n, 3);
	assert_int_equal(gs[0], 1000);
	assert_int_equal(gs[1], 44);
	assert_int_equal(gs[2], 105);
	n = 8;
	assert_int_equal(sbx_lookup_user(passwd, group, "svc", &u, &g, gs, &n, home, sizeof home), 0);
	assert_int_equal(u, 1001);
	assert_int_equal(n, 4); /* 1001, video, render, other */
	n = 8;
	assert_int_equal(sbx_lookup_user(passwd, group, "nobody", &u, &g, gs, &n, home, sizeof home),
			 -ENOENT);
	n = 8;
	assert_int_equal(sbx_lookup_user(passwd, group, "1234:55", &u, &g, gs, &n, home, sizeof home), 0);
	assert_int_equal(u, 1234);
	assert_int_equal(g, 55);
	n = 8;
	assert_int_equal(sbx_lookup_user(passwd, group, "12x:1", &u, &g, gs, &n, home, sizeof home),
			 -EINVAL);
	/* A prefix of a name is not the name. */
	n = 8;
	assert_int_equal(sbx_lookup_user(passwd, group, "age", &u, &g, gs, &n, home, sizeof home),
			 -ENOENT);
}

static void test_dev_prog(void **st)
{
	struct bpf_insn p[256];
	(void)st;
	int n = cg_dev_prog(cg_dev_minimal, cg_dev_nminimal, p, 256);
	assert_true(n > 10);
	/* Every jump lands inside the program; it ends with r0 = 0; exit. */
	for (int i = 0; i < n; i++)
		if (BPF_CLASS(p[i].code) == BPF_JMP && BPF_OP(p[i].code) != BPF_EXIT) {
			assert_true(i + 1 + p[i].off < n);
			assert_true(p[i].off > 0);
		}
	assert_int_equal(p[n - 2].imm, 0);
	assert_int_equal(p[n - 1].code, BPF_JMP | BPF_EXIT);
	assert_int_equal(cg_dev_prog(cg_dev_minimal, cg_dev_nminimal, p, 5), -E2BIG);
}

/* Run the device program in a tiny interpreter (only the opcodes it uses). */
static int run_prog(const struct bpf_insn *p, int n, int type, int acc, unsigned maj, unsigned min)
{
	uint64_t r[11] = {0};
	uint32_t ctx[3] = {(uint32_t)(acc << 16 | type), maj, min};
	for (int pc = 0; pc < n; pc++) {
		const struct bpf_insn *i = &p[pc];
		switch (i->code) {
		case BPF_LDX | BPF_W | BPF_MEM: r[i->dst_reg] = ctx[i->off / 4]; break;
		case BPF_ALU64 | BPF_AND | BPF_K: r[i->dst_reg] &= (uint64_t)(int64_t)i->imm; break;
		case BPF_ALU64 | BPF_RSH | BPF_K: r[i->dst_reg] >>= i->imm; break;
		case BPF_ALU64 | BPF_MOV | BPF_X: r[i->dst_reg] = r[i->src_reg]; break;
		case BPF_ALU64 | BPF_MOV | BPF_K: r[i->dst_reg] = (uint64_t)(int64_t)i->imm; break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += i->off;
			break;
		case BPF_JMP | BPF_EXIT: return (int)r[0];
		default: fail_msg("opcode %#x", i->code);
		}
	}
	return -1;
}

static void test_dev_semantics(void **st)
{
	struct bpf_insn p[256];
	(void)st;
	struct cg_dev rules[16];
	int k = 0;
	for (int i = 0; i < cg_dev_nminimal; i++)
		rules[k++] = cg_dev_minimal[i];
	rules[k++] = (struct cg_dev){'c', 195, 0, "rw"}; /* a granted node, no mknod */
	int n = cg_dev_prog(rules, k, p, 256);
	const int C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
	const int R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;
	assert_int_equal(run_prog(p, n, C, R | W, 1, 3), 1);   /* /dev/null */
	assert_int_equal(run_prog(p, n, C, R, 136, 7), 1);     /* a pty */
	assert_int_equal(run_prog(p, n, C, R, 1, 11), 0);      /* /dev/kmsg: not granted */
	assert_int_equal(run_prog(p, n, C, M, 1, 11), 1);      /* mknod allowed, open not */
	assert_int_equal(run_prog(p, n, B, R, 8, 0), 0);       /* /dev/sda */
	assert_int_equal(run_prog(p, n, B, M, 8, 0), 1);
	assert_int_equal(run_prog(p, n, C, R | W, 195, 0), 1); /* granted */
	assert_int_equal(run_prog(p, n, C, R, 195, 1), 0);     /* its neighbour */
	assert_int_equal(run_prog(p, n, B, R, 195, 0), 0);     /* same numbers, block */
}

static void test_cpu_max_and_subnet(void **st)
{
	char b[64];
	struct netns_addr a;
	char s[32];
	(void)st;
	cg_cpu_max(1500, b, sizeof b);
	assert_string_equal(b, "150000 100000");
	cg_cpu_max(250, b, sizeof b);
	assert_string_equal(b, "25000 100000");
	assert_int_equal(netns_subnet_addr("10.89.0.0/24", 0, &a), 0);
	assert_int_equal(a.prefix, 24);
	inet_ntop(AF_INET, &a.gw, s, sizeof s);
	assert_string_equal(s, "10.89.0.1");
	inet_ntop(AF_INET, &a.addr, s, sizeof s);
	assert_string_equal(s, "10.89.0.2");
	assert_int_equal(netns_subnet_addr("10.89.0.7/24", 3, &a), 0);
	inet_ntop(AF_INET, &a.addr, s, sizeof s);
	assert_string_equal(s, "10.89.0.5");
	assert_int_equal(netns_subnet_addr("10.89.0.0/30", 1, &a), -ERANGE);
	assert_int_equal(netns_subnet_addr("10.89.0.0", 0, &a), -EINVAL);
	assert_int_equal(netns_subnet_addr("10.89.0.300/24", 0, &a), -EINVAL);
}

static void test_oci_json(void **st)
{
	char dir[] = "/tmp/oci_test.XXXXXX", f[128];
	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(f, sizeof f, "%s/a.yaml", dir);
	FILE *fp = fopen(f, "w");
	fputs("version: 1\n"
	      "groups:\n"
	      "  web:\n"
	      "    network: none\n"
	      "    capabilities: [CAP_NET_BIND_SERVICE]\n"
	      "    resources: {memory: 64MiB, pids: 50, cpus: 1.5}\n"
	      "    volumes: [/srv:/srv:ro]\n"
	      "    agents:\n"
	      "      w: {command: [/bin/echo, hi]}\n",
	      fp);
	fclose(fp);
	struct diag_list d = {0};
	const char *files[] = {f};
	struct ai_config *c = cfg_load(files, 1, &d);
	assert_non_null(c);
	static char buf[1 << 18];
	struct ai_err e = {0};
	struct oci_opts o = {.root = "/tmp/rootfs"};
	int n = oci_config(c, 0, &o, buf, sizeof buf, &e);
	assert_true(n > 0);
	static struct jv pool[8192];
	static char sb[1 << 18];
	struct jparse jp = {.pool = pool, .cap = 8192, .sbuf = sb, .scap = sizeof sb};
	int root = json_parse(&jp, buf, (size_t)n);
	if (root < 0)
		fail_msg("bad JSON: %s at %zu", jp.err, jp.err_off);
	assert_string_equal(json_get_str(&jp, root, "hostname"), "web");
	int proc = json_get(&jp, root, "process");
	int caps = json_get(&jp, proc, "capabilities");
	int amb = json_get(&jp, caps, "ambient");
	assert_int_equal(pool[amb].kind, JV_ARR);
	assert_string_equal(pool[pool[amb].first_child].str, "CAP_NET_BIND_SERVICE");
	assert_int_equal(pool[json_get(&jp, proc, "noNewPrivileges")].b, 1);
	int args = json_get(&jp, proc, "args");
	assert_string_equal(pool[pool[args].first_child].str, "/bin/echo");
	int rt = json_get(&jp, root, "root");
	assert_string_equal(json_get_str(&jp, rt, "path"), "/tmp/rootfs");
	assert_int_equal(pool[json_get(&jp, rt, "readonly")].b, 1);
	int lin = json_get(&jp, root, "linux");
	int ns = json_get(&jp, lin, "namespaces");
	int nns = 0, has_net = 0;
	for (int i = pool[ns].first_child; i >= 0; i = pool[i].next, nns++)
		has_net |= !strcmp(json_get_str(&jp, i, "type"), "network");
	assert_int_equal(nns, 6);
	assert_true(has_net);
	int res = json_get(&jp, lin, "resources");
	assert_int_equal((long)pool[json_get(&jp, json_get(&jp, res, "memory"), "limit")].num, 64 << 20);
	assert_int_equal((long)pool[json_get(&jp, json_get(&jp, res, "pids"), "limit")].num, 50);
	assert_int_equal((long)pool[json_get(&jp, json_get(&jp, res, "cpu"), "quota")].num, 150000);
	int sc = json_get(&jp, lin, "seccomp");
	assert_string_equal(json_get_str(&jp, sc, "defaultAction"), "SCMP_ACT_ERRNO");
	assert_int_equal((long)pool[json_get(&jp, sc, "defaultErrnoRet")].num, EPERM);
	/* The clone rule keeps its argument filter. */
	int found = 0;
	for (int i = pool[json_get(&jp, sc, "syscalls")].first_child; i >= 0; i = pool[i].next) {
		int names = json_get(&jp, i, "names");
		if (!strcmp(pool[pool[names].first_child].str, "clone") && json_get(&jp, i, "args") >= 0)
			found = 1;
		for (int k = pool[names].first_child; k >= 0; k = pool[k].next)
			assert_string_not_equal(pool[k].str, "mount");
	}
	assert_true(found);
	cfg_free(c);
	diag_free(&d);
	unlink(f);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_user),
		cmocka_unit_test(test_dev_prog),
		cmocka_unit_test(test_dev_semantics),
		cmocka_unit_test(test_cpu_max_and_subnet),
		cmocka_unit_test(test_oci_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
