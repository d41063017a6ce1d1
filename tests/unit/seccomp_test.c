/* seccomp: the policy parser (pure) and the compiled default profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp.h"

static void test_parse_rules(void **st)
{
	struct scf_policy p = {0};
	struct ai_err e = {0};
	(void)st;
	const char *t = "# comment\n"
			"@default errno EACCES\n"
			"read\n"
			"  write   # trailing comment\n"
			"?no_such_call_in_any_kernel\n"
			"clone: arg0 & 0x7e020000 == 0\n"
			"personality: arg0 == 8 && arg1 != 3\n"
			"uname: errno ENOSYS\n"
			"getpid: kill\n";
	assert_int_equal(scf_parse(&p, "t.policy", t, &e), 0);
	assert_int_equal(p.n, 6);
	assert_int_equal(p.rules[0].nr, SYS_read);
	assert_int_equal(p.rules[0].line, 3);
	assert_int_equal(p.rules[1].nr, SYS_write);
	assert_int_equal(p.rules[2].nr, SYS_clone);
	assert_int_equal(p.rules[2].ncond, 1);
	assert_int_equal(p.rules[2].cond[0].op, SCF_MASKED_EQ);
	assert_int_equal(p.rules[2].cond[0].mask, 0x7e020000);
	assert_int_equal(p.rules[2].cond[0].value, 0);
	assert_int_equal(p.rules[3].ncond, 2);
	assert_int_equal(p.rules[3].cond[1].arg, 1);
	assert_int_equal(p.rules[3].cond[1].op, SCF_NE);
	int er;
	assert_string_equal(scf_action_oci(p.rules[4].action, &er), "SCMP_ACT_ERRNO");
	assert_int_equal(er, ENOSYS);
	assert_string_equal(scf_action_oci(p.def_action, &er), "SCMP_ACT_ERRNO");
	assert_int_equal(er, EACCES);
	assert_string_equal(scf_action_oci(p.rules[5].action, &er), "SCMP_ACT_KILL_PROCESS");
	scf_policy_free(&p);
}

static void expect_error(const char *text, const char *needle)
{
	struct scf_policy p = {0};
	struct ai_err e = {0};
	assert_true(scf_parse(&p, "x.policy", text, &e) < 0);
	if (!strstr(e.msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
	scf_policy_free(&p);
}

static void test_parse_errors(void **st)
{
	(void)st;
	expect_error("read\nfrobnicate\n", "x.policy:2: unknown system call \"frobnicate\"");
	expect_error("read: maybe\n", "x.policy:1: read: bad action");
	expect_error("clone: arg9 == 1\n", "x.policy:1: clone: expected argN");
	expect_error("clone: arg0 =~ 1\n", "x.policy:1: clone");
	expect_error("@default errno ENOTANERRNO\n", "x.policy:1: bad action");
	expect_error("@frob x\n", "x.policy:1: unknown directive");
	expect_error("re-ad\n", "x.policy:1: bad system call name");
	expect_error("@include /nonexistent/ainit.policy\n", "x.policy:1: cannot include");
}

static void test_include(void **st)
{
	char dir[] = "/tmp/scf_test.XXXXXX", a[256], b[256];
	struct scf_policy p = {0};
	struct ai_err e = {0};
	(void)st;
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof a, "%s/base.policy", dir);
	snprintf(b, sizeof b, "%s/top.policy", dir);
	FILE *f = fopen(a, "w");
	fputs("read\nbogus_call\n", f);
	fclose(f);
	f = fopen(b, "w");
	fputs("write\n@include base.policy\n", f);
	fclose(f);
	const char *dirs[] = {dir, NULL};
	int unconf = 0;
	assert_true(scf_load(&p, "top", dirs, &unconf, &e) < 0);
	/* The error points into the included file, at its line. */
	assert_non_null(strstr(e.msg, "base.policy:2: unknown system call \"bogus_call\""));
	scf_policy_free(&p);
	f = fopen(a, "w");
	fputs("read\n", f);
	fclose(f);
	assert_int_equal(scf_load(&p, "top", dirs, &unconf, &e), 0);
	assert_int_equal(p.n, 2);
	scf_policy_free(&p);
	assert_true(scf_load(&p, "missing", dirs, &unconf, &e) < 0);
	assert_non_null(strstr(e.msg, "unknown seccomp profile \"missing\""));
	assert_int_equal(scf_load(&p, "unconfined", dirs, &unconf, &e), 0);
	assert_int_equal(unconf, 1);
	unlink(a);
	unlink(b);
	rmdir(dir);
}

static void test_default_profile(void **st)
{
	struct scf_policy p = {0};
	struct ai_err e = {0};
	struct sock_fprog prog;
	(void)st;
	assert_int_equal(scf_parse(&p, "<default>", scf_default_text(), &e), 0);
	bool has_execve = false, has_mount = false, has_keyctl = false, has_unshare = false;
	for (int i = 0; i < p.n; i++) {
		has_execve |= p.rules[i].nr == SYS_execve;
		has_mount |= p.rules[i].nr == SYS_mount;
		has_keyctl |= p.rules[i].nr == SYS_keyctl || p.rules[i].nr == SYS_add_key;
		has_unshare |= p.rules[i].nr == SYS_unshare;
	}
	assert_true(has_execve);
	assert_false(has_mount);
	assert_false(has_keyctl);
	assert_false(has_unshare);
	assert_int_equal(scf_compile(&p, &prog, &e), 0);
	assert_true(prog.len > 50);
	free(prog.filter);
	scf_policy_free(&p);
	/* Unit tests link without the build-time program: scf_prog compiles. */
	int owned, unconf;
	assert_int_equal(scf_prog("default", NULL, &prog, &owned, &unconf, &e), 0);
	assert_int_equal(unconf, 0);
	assert_true(prog.len > 50);
	if (owned)
		free(prog.filter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rules),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_default_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
