/* gpu: /proc/devices parsing, discovery over a stand-in tree (no root
 * needed: its "nodes" are plain files, so they read as missing), the
 * per-group plan for all / list / count, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu.h"

static const char proc_devices[] =
	"Character devices:\n"
	"  1 mem\n"
	"  4 tty\n"
	"195 nvidia-frontend\n"
	"236 nvidia-nvlink\n"
	"508 nvidia-uvm\n"
	"509 nvidia-caps\n"
	"\n"
	"Block devices:\n"
	"  7 loop\n"
	"195 nvidia\n"; /* a block major with the name must not count */

static void test_parse_proc_devices(void **st)
{
	(void)st;
	struct gpu_majors m;
	gpu_parse_proc_devices(proc_devices, &m);
	assert_int_equal(m.nvidia, 195);
	assert_int_equal(m.uvm, 508);
	assert_int_equal(m.caps, 509);

	gpu_parse_proc_devices("Character devices:\n195 nvidia\n195 nvidiactl\n511 nvidia-uvm\n", &m);
	assert_int_equal(m.nvidia, 195);
	assert_int_equal(m.uvm, 511);
	assert_int_equal(m.caps, -1);

	/* no driver; partial names do not match */
	gpu_parse_proc_devices("Character devices:\n  1 mem\n 10 misc\n240 nvidia-uvmx\n\n"
			       "Block devices:\n259 blkext\n", &m);
	assert_int_equal(m.nvidia, -1);
	assert_int_equal(m.uvm, -1);
	gpu_parse_proc_devices("", &m);
	assert_int_equal(m.nvidia, -1);
}

/* A host with n GPUs (minors 0..n-1, bus order), all nodes present. */
static void fake_host(struct gpu_host *h, int n)
{
	memset(h, 0, sizeof *h);
	h->driver = true;
	h->maj = (struct gpu_majors){195, 508, 509};
	for (int i = 0; i < n; i++) {
		h->gpus[i].minor = i;
		snprintf(h->gpus[i].bus, sizeof h->gpus[i].bus, "0000:%02x:00.0", i + 1);
		h->gpus[i].node_ok = true;
	}
	h->ngpus = n;
	h->ctl_ok = h->uvm_ok = h->uvm_tools_ok = h->modeset_ok = true;
	strcpy(h->dev, "/dev");
	strcpy(h->libs[0], "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
	strcpy(h->libs[1], "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1");
	h->nlibs = 2;
	h->have_libcuda = h->have_libnvml = true;
}

static const char *env(const struct gpu_plan *p, const char *k)
{
	for (int i = 0; i < p->nenv; i++)
		if (!strcmp(p->env[i].key, k))
			return p->env[i].value;
	return NULL;
}

static bool has_node(const struct gpu_plan *p, const char *name, int major, int minor)
{
	for (int i = 0; i < p->nnodes; i++)
		if (!strcmp(p->nodes[i].name, name))
			return p->nodes[i].type == 'c' && p->nodes[i].major == major &&
			       p->nodes[i].minor == minor;
	return false;
}

static struct gpu_host H;
static struct gpu_plan P;

static void test_plan_none(void **st)
{
	(void)st;
	struct cfg_gpu w = { .mode = GPU_NONE };
	fake_host(&H, 2);
	assert_int_equal(gpu_plan(&w, &H, "plain", &P, NULL), 0);
	assert_int_equal(P.nnodes, 0);
	assert_int_equal(P.nlibs, 0);
	assert_int_equal(P.nenv, 0);
	/* no driver at all: a group without gpu: is unaffected */
	H.driver = false;
	assert_int_equal(gpu_plan(&w, &H, "plain", &P, NULL), 0);
}

static void test_plan_all(void **st)
{
	(void)st;
	struct cfg_gpu w = { .mode = GPU_ALL };
	fake_host(&H, 2);
	assert_int_equal(gpu_plan(&w, &H, "gpu-infra", &P, NULL), 0);
	assert_int_equal(P.ngpus, 2);
	assert_int_equal(P.nnodes, 5);
	assert_true(has_node(&P, "nvidiactl", 195, 255));
	assert_true(has_node(&P, "nvidia-uvm", 508, 0));
	assert_true(has_node(&P, "nvidia-uvm-tools", 508, 1));
	assert_true(has_node(&P, "nvidia0", 195, 0));
	assert_true(has_node(&P, "nvidia1", 195, 1));
	assert_false(has_node(&P, "nvidia-modeset", 195, 254)); /* display only */
	assert_string_equal(env(&P, "CUDA_VISIBLE_DEVICES"), "0,1");
	assert_string_equal(env(&P, "NVIDIA_VISIBLE_DEVICES"), "all");
	assert_string_equal(env(&P, "NVIDIA_DRIVER_CAPABILITIES"), "compute,utility");
	assert_int_equal(P.nlibs, 2);
	assert_string_equal(P.libs[0], "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
	assert_string_equal(P.dev, "/dev");
	for (int i = 0; i < P.nnodes; i++) {
		char want[128];
		snprintf(want, sizeof want, "/dev/%s", P.nodes[i].name);
		assert_string_equal(P.nodes[i].source, want);
	}
}

static void test_plan_list(void **st)
{
	(void)st;
	int idx[] = {2, 2, 0};
	struct cfg_gpu w = { .mode = GPU_LIST, .index = idx, .nindex = 3 };
	fake_host(&H, 4);
	H.gpus[2].minor = 7; /* minors need not follow bus order */
	assert_int_equal(gpu_plan(&w, &H, "g", &P, NULL), 0);
	assert_int_equal(P.ngpus, 2); /* the duplicate is given once */
	assert_int_equal(P.nnodes, 5);
	assert_true(has_node(&P, "nvidia7", 195, 7));
	assert_true(has_node(&P, "nvidia0", 195, 0));
	assert_false(has_node(&P, "nvidia1", 195, 1));
	assert_false(has_node(&P, "nvidia2", 195, 2));
	assert_string_equal(env(&P, "CUDA_VISIBLE_DEVICES"), "0,1");
	assert_string_equal(env(&P, "NVIDIA_VISIBLE_DEVICES"), "2,0");
}

static void test_plan_count(void **st)
{
	(void)st;
	struct cfg_gpu w = { .mode = GPU_COUNT, .count = 1 };
	struct ai_err e = {0};
	fake_host(&H, 3);
	assert_int_equal(gpu_plan(&w, &H, "g", &P, NULL), 0);
	assert_int_equal(P.ngpus, 1);
	assert_true(has_node(&P, "nvidia0", 195, 0));
	assert_false(has_node(&P, "nvidia1", 195, 1));
	assert_string_equal(env(&P, "CUDA_VISIBLE_DEVICES"), "0");
	assert_string_equal(env(&P, "NVIDIA_VISIBLE_DEVICES"), "0");
	w.count = 4;
	assert_true(gpu_plan(&w, &H, "g", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "group g: asks for 4 GPUs: this host has 3"));
}

static void test_plan_errors(void **st)
{
	(void)st;
	int idx[] = {7};
	struct cfg_gpu w = { .mode = GPU_LIST, .index = idx, .nindex = 1 };
	struct ai_err e = {0};

	fake_host(&H, 1);
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_string_equal(e.module, "gpu");
	assert_non_null(strstr(e.msg, "group gpu-infra: GPU index 7 does not exist: this host has 1 GPU (0..0)"));
	assert_int_equal(P.nnodes, 0);

	w.mode = GPU_ALL;
	H.driver = false;
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "no NVIDIA driver"));

	fake_host(&H, 1);
	H.maj.uvm = -1;
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "nvidia_uvm is not loaded"));

	fake_host(&H, 0);
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "reports none"));

	fake_host(&H, 2);
	H.gpus[1].node_ok = false;
	H.ctl_ok = false;
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "device nodes missing in /dev: nvidiactl nvidia1"));

	fake_host(&H, 2);
	H.have_libcuda = false;
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "libcuda.so.1 is not on the root"));
}

static void test_check_warnings(void **st)
{
	(void)st;
	int idx7[] = {7}, idx0[] = {0};
	struct cfg_group g[4] = {
		{ .name = "plain" },
		{ .name = "gpu-infra", .gpu = { .mode = GPU_LIST, .index = idx7, .nindex = 1,
						.pos = { "a.yaml", 12, 10 } } },
		{ .name = "one", .gpu = { .mode = GPU_LIST, .index = idx0, .nindex = 1 } },
		{ .name = "many", .gpu = { .mode = GPU_COUNT, .count = 2 } },
	};
	struct ai_config c = { .groups = g, .ngroups = 4 };
	struct diag_list d = {0};

	fake_host(&H, 1);
	chk_gpu_host(&c, &H, &d);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 2);
	assert_int_equal(d.v[0].sev, DIAG_WARNING);
	assert_string_equal(d.v[0].msg, "group gpu-infra asks for GPU 7 but this host has 1 GPU (index 0..0)");
	assert_int_equal(d.v[0].pos.line, 12);
	assert_string_equal(d.v[1].msg, "group many asks for 2 GPUs but this host has 1");
	diag_free(&d);

	memset(&d, 0, sizeof d);
	H.driver = false;
	chk_gpu_host(&c, &H, &d);
	assert_int_equal(d.warnings, 3); /* every gpu: group, named; plain none */
	assert_non_null(strstr(d.v[0].msg, "group gpu-infra asks for GPUs but this host has none"));
	assert_non_null(strstr(d.v[1].msg, "group one"));
	assert_non_null(strstr(d.v[2].msg, "group many"));
	diag_free(&d);
}

static void put(const char *root, const char *rel, const char *text)
{
	char path[512], dir[512];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	snprintf(dir, sizeof dir, "%s", path);
	for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(dir, 0755) < 0)
			assert_int_equal(errno, EEXIST);
		*s = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_discover_tree(void **st)
{
	(void)st;
	char root[] = "/tmp/ainit-gpu-test-XXXXXX", cmd[600];
	struct gpu_paths p;
	struct ai_err e = {0};
	assert_non_null(mkdtemp(root));
	put(root, "proc/devices", proc_devices);
	/* two GPUs whose minors run against bus order */
	put(root, "proc/driver/nvidia/gpus/0000:41:00.0/information",
	    "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 88\n"
	    "Bus Location: \t 0000:41:00.0\nDevice Minor: \t 0\n");
	put(root, "proc/driver/nvidia/gpus/0000:01:00.0/information",
	    "Model: \t\t NVIDIA A10\nDevice Minor: \t 1\nGPU Excluded:\t No\n");
	put(root, "dev/nvidia0", ""); /* a plain file is not the node */
	put(root, "usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06", "x");
	put(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06", "x");
	put(root, "usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.1", "x");
	put(root, "usr/lib/x86_64-linux-gnu/libcudart.so.12", "x"); /* toolkit, not driver */
	put(root, "usr/lib/x86_64-linux-gnu/libcuda_stub_like.so", "x");
	snprintf(cmd, sizeof cmd, "%s/usr/lib/x86_64-linux-gnu/libcuda.so.1", root);
	assert_int_equal(symlink("libcuda.so.580.65.06", cmd), 0); /* a link: found, not bound */
	snprintf(p.proc, sizeof p.proc, "%s/proc", root);
	snprintf(p.dev, sizeof p.dev, "%s/dev", root);
	snprintf(p.root, sizeof p.root, "%s", root);

	assert_int_equal(gpu_discover(&p, &H, &e), 0);
	assert_true(H.driver);
	assert_int_equal(H.ngpus, 2);
	assert_string_equal(H.gpus[0].bus, "0000:01:00.0");
	assert_int_equal(H.gpus[0].minor, 1);
	assert_string_equal(H.gpus[0].model, "NVIDIA A10");
	assert_string_equal(H.gpus[1].model, "NVIDIA H100 80GB HBM3");
	assert_false(H.gpus[1].node_ok);
	assert_false(H.ctl_ok);
	assert_int_equal(H.nlibs, 3);
	snprintf(cmd, sizeof cmd, "%s/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06", root);
	assert_string_equal(H.libs[0], cmd);
	assert_true(H.have_libcuda && H.have_libnvml);

	struct cfg_gpu w = { .mode = GPU_ALL };
	assert_true(gpu_plan(&w, &H, "gpu-infra", &P, &e) < 0);
	assert_non_null(strstr(e.msg, "device nodes missing"));
	assert_non_null(strstr(e.msg, "nvidiactl nvidia-uvm nvidia1 nvidia0"));

	/* no /proc/devices: an error naming the file */
	snprintf(p.proc, sizeof p.proc, "%s/nope", root);
	assert_true(gpu_discover(&p, &H, &e) < 0);
	assert_int_equal(e.errnum, ENOENT);
	assert_non_null(strstr(e.msg, "/nope/devices"));

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_proc_devices),
		cmocka_unit_test(test_plan_none),
		cmocka_unit_test(test_plan_all),
		cmocka_unit_test(test_plan_list),
		cmocka_unit_test(test_plan_count),
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_check_warnings),
		cmocka_unit_test(test_discover_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
