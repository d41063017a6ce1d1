#include "oci.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "caps.h"
#include "config.h"
#include "gpu.h"
#include "json.h"
#include "log.h"
#include "sandbox.h"
#include "seccomp.h"
#include "util.h"

static const char *const cmp_names[] = {
	[SCF_EQ] = "SCMP_CMP_EQ", [SCF_NE] = "SCMP_CMP_NE", [SCF_LT] = "SCMP_CMP_LT",
	[SCF_LE] = "SCMP_CMP_LE", [SCF_GT] = "SCMP_CMP_GT", [SCF_GE] = "SCMP_CMP_GE",
	[SCF_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
};

static void mount_entry(struct jw *w, const char *dst, const char *type, const char *src,
			const char *const *opts)
{
	jw_obj_begin(w);
	jw_kstr(w, "destination", dst);
	jw_kstr(w, "type", type);
	jw_kstr(w, "source", src);
	jw_key(w, "options");
	jw_arr_begin(w);
	for (int i = 0; opts[i]; i++)
		jw_str(w, opts[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void caps_list(struct jw *w, const char *key, uint64_t mask)
{
	char b[64];
	jw_key(w, key);
	jw_arr_begin(w);
	for (int i = 0; i < 64; i++)
		if (mask & (1ULL << i)) {
			caps_name(i, b, sizeof b);
			for (char *p = b; *p; p++)
				*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
			jw_str(w, b);
		}
	jw_arr_end(w);
}

static void seccomp_json(struct jw *w, const struct scf_policy *p)
{
	char name[64];
	int er;
	const char *def = scf_action_oci(p->def_action, &er);
	jw_key(w, "seccomp");
	jw_obj_begin(w);
	jw_kstr(w, "defaultAction", def);
	if (er >= 0)
		jw_kint(w, "defaultErrnoRet", er);
	jw_key(w, "architectures");
	jw_arr_begin(w);
	jw_str(w, "SCMP_ARCH_X86_64");
	jw_str(w, "SCMP_ARCH_X86");
	jw_str(w, "SCMP_ARCH_X32");
	jw_arr_end(w);
	jw_key(w, "syscalls");
	jw_arr_begin(w);
	/* Unconditional allows in one entry; everything else one entry each. */
	jw_obj_begin(w);
	jw_key(w, "names");
	jw_arr_begin(w);
	for (int i = 0; i < p->n; i++) {
		const struct scf_rule *r = &p->rules[i];
		int x;
		if (r->ncond || strcmp(scf_action_oci(r->action, &x), "SCMP_ACT_ALLOW") ||
		    !scf_syscall_name(r->nr, name, sizeof name))
			continue;
		jw_str(w, name);
	}
	jw_arr_end(w);
	jw_kstr(w, "action", "SCMP_ACT_ALLOW");
	jw_obj_end(w);
	for (int i = 0; i < p->n; i++) {
		const struct scf_rule *r = &p->rules[i];
		const char *act = scf_action_oci(r->action, &er);
		if ((!r->ncond && !strcmp(act, "SCMP_ACT_ALLOW")) || r->action == p->def_action ||
		    !scf_syscall_name(r->nr, name, sizeof name))
			continue;
		jw_obj_begin(w);
		jw_key(w, "names");
		jw_arr_begin(w);
		jw_str(w, name);
		jw_arr_end(w);
		jw_kstr(w, "action", act);
		if (er >= 0)
			jw_kint(w, "errnoRet", er);
		if (r->ncond) {
			jw_key(w, "args");
			jw_arr_begin(w);
			for (int j = 0; j < r->ncond; j++) {
				const struct scf_cond *c = &r->cond[j];
				jw_obj_begin(w);
				jw_kint(w, "index", c->arg);
				jw_kint(w, "value", (long long)(c->op == SCF_MASKED_EQ ? c->mask : c->value));
				jw_kint(w, "valueTwo", (long long)(c->op == SCF_MASKED_EQ ? c->value : 0));
				jw_kstr(w, "op", cmp_names[c->op]);
				jw_obj_end(w);
			}
			jw_arr_end(w);
		}
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

static void dev_rule(struct jw *w, bool allow, char type, long long maj, long long min,
		     const char *access)
{
	jw_obj_begin(w);
	jw_kbool(w, "allow", allow);
	if (type) {
		char t[2] = {type, 0};
		jw_kstr(w, "type", t);
	}
	if (maj >= 0)
		jw_kint(w, "major", maj);
	if (min >= 0)
		jw_kint(w, "minor", min);
	jw_kstr(w, "access", access);
	jw_obj_end(w);
}

int oci_config(const struct ai_config *c, int gi, const struct oci_opts *o, char *buf,
	       size_t cap, struct ai_err *e)
{
	const struct cfg_group *g = &c->groups[gi];
	const char *root = o->root ? o->root : "/";
	struct scf_policy pol = {0};
	uint64_t caps = 0;
	int unconf = 0, r;
	uid_t uid = 0;
	gid_t gid = 0, groups[64];
	int ngroups = 64;
	char home[PATH_MAX] = "/root";
	struct jw w;

	if ((r = caps_parse(g->caps.v, g->caps.n, &caps, e)) < 0)
		return r;
	if ((r = scf_load(&pol, g->seccomp, o->seccomp_dirs, &unconf, e)) < 0) {
		scf_policy_free(&pol);
		return r;
	}
	const char *user = o->user ? o->user : g->user;
	if (user && strcmp(user, "root")) {
		AI_AUTOFREE char *pw = sbx_read_root_file(root, "/etc/passwd");
		AI_AUTOFREE char *gr = sbx_read_root_file(root, "/etc/group");
		if (!pw || !gr || (r = sbx_lookup_user(pw, gr, user, &uid, &gid, groups, &ngroups, home,
						       sizeof home)) < 0) {
			scf_policy_free(&pol);
			return ai_fail(e, "oci", "user", ENOENT, "group %s: user \"%s\" not found in %s/etc/passwd",
				       g->name, user, strcmp(root, "/") ? root : "");
		}
	} else
		ngroups = 0;
	/* gpu: the plan's nodes, device rules, read-only libraries and
	 * environment (gpu.c); a group whose GPUs are not there fails here. */
	AI_AUTOFREE struct gpu_plan *gp = NULL;
	if ((r = gpu_plan_group(g, &gp, e)) < 0) {
		scf_policy_free(&pol);
		return r;
	}

	jw_init(&w, buf, cap);
	jw_obj_begin(&w);
	jw_kstr(&w, "ociVersion", "1.0.2");

	jw_key(&w, "process");
	jw_obj_begin(&w);
	jw_kbool(&w, "terminal", false);
	jw_key(&w, "user");
	jw_obj_begin(&w);
	jw_kint(&w, "uid", uid);
	jw_kint(&w, "gid", gid);
	jw_key(&w, "additionalGids");
	jw_arr_begin(&w);
	for (int i = 0; i < ngroups; i++)
		jw_int(&w, groups[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_key(&w, "args");
	jw_arr_begin(&w);
	if (o->argv)
		for (int i = 0; o->argv[i]; i++)
			jw_str(&w, o->argv[i]);
	else if (g->nagents)
		for (int i = 0; i < c->agents[g->first_agent].command.n; i++)
			jw_str(&w, c->agents[g->first_agent].command.v[i]);
	jw_arr_end(&w);
	jw_key(&w, "env");
	jw_arr_begin(&w);
	bool has_path = false;
	if (o->envp) {
		for (int i = 0; o->envp[i]; i++) {
			jw_str(&w, o->envp[i]);
			has_path |= !strncmp(o->envp[i], "PATH=", 5);
		}
	} else {
		char kv[1024];
		for (int i = 0; i < g->env.n; i++) {
			snprintf(kv, sizeof kv, "%s=%s", g->env.v[i].key, g->env.v[i].value);
			jw_str(&w, kv);
			has_path |= !strcmp(g->env.v[i].key, "PATH");
		}
		snprintf(kv, sizeof kv, "AINIT_GROUP=%s", g->name);
		jw_str(&w, kv);
	}
	for (int i = 0; gp && i < gp->nenv; i++) { /* unless the caller sets its own */
		size_t kl = strlen(gp->env[i].key);
		bool set = false;
		for (int j = 0; o->envp && o->envp[j] && !set; j++)
			set = !strncmp(o->envp[j], gp->env[i].key, kl) && o->envp[j][kl] == '=';
		for (int j = 0; !o->envp && j < g->env.n && !set; j++)
			set = !strcmp(g->env.v[j].key, gp->env[i].key);
		if (!set) {
			char kv[256];
			snprintf(kv, sizeof kv, "%s=%s", gp->env[i].key, gp->env[i].value);
			jw_str(&w, kv);
		}
	}
	if (!has_path)
		jw_str(&w, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	{
		char kv[PATH_MAX + 8];
		snprintf(kv, sizeof kv, "HOME=%s", home);
		jw_str(&w, kv);
	}
	jw_arr_end(&w);
	jw_kstr(&w, "cwd", "/");
	jw_key(&w, "capabilities");
	jw_obj_begin(&w);
	caps_list(&w, "bounding", caps);
	caps_list(&w, "effective", caps);
	caps_list(&w, "inheritable", caps);
	caps_list(&w, "permitted", caps);
	caps_list(&w, "ambient", caps);
	jw_obj_end(&w);
	jw_kbool(&w, "noNewPrivileges", true);
	{
		/* the group's limits (runc applies them before exec, as we do) */
		static const char *const rl[RL_N] = {"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE",
						     "RLIMIT_MEMLOCK", "RLIMIT_STACK"};
		jw_key(&w, "rlimits");
		jw_arr_begin(&w);
		for (int i = 0; i < RL_N; i++) {
			int64_t v = g->rlimits.v[i];
			if (v == CFG_UNSET)
				continue;
			/* OCI has no "unlimited": RLIM_INFINITY is the all-ones value */
			unsigned long long n = v == INT64_MAX ? ~0ULL : (unsigned long long)v;
			jw_obj_begin(&w);
			jw_kstr(&w, "type", rl[i]);
			jw_key(&w, "hard");
			jw_uint(&w, n);
			jw_key(&w, "soft");
			jw_uint(&w, n);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
	}
	jw_obj_end(&w);

	jw_key(&w, "root");
	jw_obj_begin(&w);
	/* runc cannot pivot_root away from "/" itself: the appliance root is
	 * bind-mounted on DIR/rootfs by whoever runs the bundle (run_runc()). */
	jw_kstr(&w, "path", strcmp(root, "/") ? root : "rootfs");
	jw_kbool(&w, "readonly", g->read_only_root);
	jw_obj_end(&w);
	jw_kstr(&w, "hostname", g->name);

	jw_key(&w, "mounts");
	jw_arr_begin(&w);
	mount_entry(&w, "/proc", "proc", "proc",
		    (const char *const[]){"nosuid", "noexec", "nodev", "ro", NULL});
	mount_entry(&w, "/dev", "tmpfs", "tmpfs",
		    (const char *const[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL});
	mount_entry(&w, "/dev/pts", "devpts", "devpts",
		    (const char *const[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666",
					  "mode=0620", "gid=5", NULL});
	mount_entry(&w, "/dev/shm", "tmpfs", "shm",
		    (const char *const[]){"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL});
	mount_entry(&w, "/sys", "sysfs", "sysfs",
		    (const char *const[]){"nosuid", "noexec", "nodev", "ro", NULL});
	mount_entry(&w, "/tmp", "tmpfs", "tmpfs",
		    (const char *const[]){"nosuid", "nodev", "mode=1777", NULL});
	mount_entry(&w, "/run", "tmpfs", "tmpfs",
		    (const char *const[]){"nosuid", "nodev", "mode=755", NULL});
	for (int i = 0; i < g->nmounts; i++) {
		const struct cfg_mount *m = &g->mounts[i];
		char src[PATH_MAX];
		mount_entry(&w, m->target, "bind",
			    sbx_volume_source(c, m, o->volumes_dir, o->state_dir, src, sizeof src),
			    (const char *const[]){"rbind", m->ro ? "ro" : "rw", NULL});
	}
	for (int i = 0; gp && i < gp->nlibs; i++)
		mount_entry(&w, gp->libs[i], "bind", gp->libs[i],
			    (const char *const[]){"bind", "ro", "nosuid", "nodev", NULL});
	jw_arr_end(&w);

	jw_key(&w, "linux");
	jw_obj_begin(&w);
	jw_key(&w, "namespaces");
	jw_arr_begin(&w);
	static const char *const ns[] = {"pid", "ipc", "uts", "mount", "cgroup", "network"};
	for (size_t i = 0; i < AI_ARRAY_SIZE(ns); i++) {
		if (!strcmp(ns[i], "network") && g->network == NET_HOST)
			continue;
		jw_obj_begin(&w);
		jw_kstr(&w, "type", ns[i]);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	if (o->cgroups_path)
		jw_kstr(&w, "cgroupsPath", o->cgroups_path);
	if (gp) { /* runc makes these nodes in the container's /dev */
		jw_key(&w, "devices");
		jw_arr_begin(&w);
		for (int i = 0; i < gp->nnodes; i++) {
			char path[64], t[2] = {gp->nodes[i].type, 0};
			snprintf(path, sizeof path, "/dev/%s", gp->nodes[i].name);
			jw_obj_begin(&w);
			jw_kstr(&w, "path", path);
			jw_kstr(&w, "type", t);
			jw_kint(&w, "major", gp->nodes[i].major);
			jw_kint(&w, "minor", gp->nodes[i].minor);
			jw_kint(&w, "fileMode", 0666);
			jw_kint(&w, "uid", 0);
			jw_kint(&w, "gid", 0);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
	}
	jw_key(&w, "resources");
	jw_obj_begin(&w);
	jw_key(&w, "devices");
	jw_arr_begin(&w);
	dev_rule(&w, false, 0, -1, -1, "rwm");
	dev_rule(&w, true, 'c', -1, -1, "m");
	dev_rule(&w, true, 'b', -1, -1, "m");
	static const int minimal[][2] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}, {136, -1}};
	for (size_t i = 0; i < AI_ARRAY_SIZE(minimal); i++)
		dev_rule(&w, true, 'c', minimal[i][0], minimal[i][1], "rwm");
	for (int i = 0; i < g->devices.n; i++) {
		struct stat sb;
		if (stat(g->devices.v[i], &sb) == 0)
			dev_rule(&w, true, S_ISBLK(sb.st_mode) ? 'b' : 'c', major(sb.st_rdev),
				 minor(sb.st_rdev), "rwm");
	}
	for (int i = 0; gp && i < gp->nnodes; i++)
		dev_rule(&w, true, gp->nodes[i].type, gp->nodes[i].major, gp->nodes[i].minor, "rw");
	jw_arr_end(&w);
	if (g->res.memory_max != CFG_UNSET || g->res.memory_high != CFG_UNSET) {
		jw_key(&w, "memory");
		jw_obj_begin(&w);
		if (g->res.memory_max != CFG_UNSET)
			jw_kint(&w, "limit", g->res.memory_max);
		if (g->res.memory_high != CFG_UNSET)
			jw_kint(&w, "reservation", g->res.memory_high);
		jw_obj_end(&w);
	}
	if (g->res.cpus_milli != CFG_UNSET || g->res.cpu_weight != CFG_UNSET) {
		jw_key(&w, "cpu");
		jw_obj_begin(&w);
		if (g->res.cpus_milli != CFG_UNSET) {
			jw_kint(&w, "quota", g->res.cpus_milli * 100);
			jw_kint(&w, "period", 100000);
		}
		if (g->res.cpu_weight != CFG_UNSET) /* OCI speaks v1 shares: runc maps back */
			jw_kint(&w, "shares", 2 + ((g->res.cpu_weight - 1) * 262142) / 9999);
		jw_obj_end(&w);
	}
	if (g->res.pids != CFG_UNSET) {
		jw_key(&w, "pids");
		jw_obj_begin(&w);
		jw_kint(&w, "limit", g->res.pids);
		jw_obj_end(&w);
	}
	jw_obj_end(&w);
	if (!unconf)
		seccomp_json(&w, &pol);
	jw_key(&w, "maskedPaths");
	jw_arr_begin(&w);
	static const char *const masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
					     "/sys/firmware"};
	for (size_t i = 0; i < AI_ARRAY_SIZE(masked); i++)
		jw_str(&w, masked[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	scf_policy_free(&pol);
	if (w.overflow)
		return ai_fail(e, "oci", "config.json", E2BIG, "group %s: more than %zu bytes", g->name, cap);
	return (int)w.len;
}

int oci_export(const struct ai_config *c, int gi, const struct oci_opts *o, const char *dir,
	       struct ai_err *e)
{
	size_t cap = 1 << 18;
	AI_AUTOFREE char *buf = malloc(cap);
	char path[PATH_MAX];
	if (!buf)
		return ai_fail(e, "oci", "malloc", ENOMEM, "config.json");
	int n = oci_config(c, gi, o, buf, cap, e);
	if (n < 0)
		return n;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ai_fail(e, "oci", "mkdir", errno, "%s", dir);
	if (!o->root || !strcmp(o->root, "/")) {
		snprintf(path, sizeof path, "%s/rootfs", dir);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return ai_fail(e, "oci", "mkdir", errno, "%s", path);
	}
	snprintf(path, sizeof path, "%s/config.json", dir);
	AI_AUTOCLOSE int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ai_fail(e, "oci", "open", errno, "%s", path);
	if (ai_write_all(fd, buf, (size_t)n) < 0 || ai_write_all(fd, "\n", 1) < 0)
		return ai_fail(e, "oci", "write", errno, "%s", path);
	return 0;
}

int cmd_export_oci(int argc, char **argv)
{
	const char *config = NULL, *group = NULL, *out = NULL, *root = NULL, *state = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
			state = argv[++i];
		else if (argv[i][0] == '-' || (config && group)) {
			fprintf(stderr, "usage: ainit export oci CONFIG GROUP -o DIR [--root DIR] [--state-dir DIR]\n");
			return 2;
		} else if (!config)
			config = argv[i];
		else
			group = argv[i];
	}
	if (!config || !group || !out) {
		fprintf(stderr, "usage: ainit export oci CONFIG GROUP -o DIR [--root DIR] [--state-dir DIR]\n");
		return 2;
	}
	struct diag_list d = {0};
	const char *files[] = {config};
	struct ai_config *c = cfg_load(files, 1, &d);
	diag_sort(&d);
	diag_print(&d, stderr);
	diag_free(&d);
	if (!c)
		return 1;
	int gi = cfg_find_group(c, group);
	if (gi < 0) {
		log_err("oci", group, "no such group in %s", config);
		cfg_free(c);
		return 1;
	}
	char sdir[PATH_MAX];
	const char *slash = strrchr(config, '/');
	snprintf(sdir, sizeof sdir, "%.*s/seccomp", slash ? (int)(slash - config) : 1,
		 slash ? config : ".");
	const char *dirs[] = {sdir, "/etc/ainit/seccomp", NULL};
	struct oci_opts o = {.root = root, .state_dir = state, .seccomp_dirs = dirs};
	struct ai_err e = {0};
	int r = oci_export(c, gi, &o, out, &e);
	if (r < 0)
		log_error(&e);
	cfg_free(c);
	return r < 0 ? 1 : 0;
}
