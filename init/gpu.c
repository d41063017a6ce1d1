#include "gpu.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

#if defined(__x86_64__)
#define GPU_TRIPLET "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define GPU_TRIPLET "aarch64-linux-gnu"
#else
#define GPU_TRIPLET "unknown-linux-gnu"
#endif

/* Where distributions and the .run installer put the driver's libraries.
 * Debian's packages use nvidia/current; NVIDIA's container images look in
 * /usr/local/nvidia. Never the toolkit's stubs directory: its libcuda.so is
 * a link-time stub that fails at run time. */
static const char *const lib_dirs[] = {
	"/usr/lib/" GPU_TRIPLET,
	"/usr/lib/" GPU_TRIPLET "/nvidia/current",
	"/lib/" GPU_TRIPLET,
	"/usr/lib64",
	"/lib64",
	"/usr/lib",
	"/usr/local/nvidia/lib64",
};

/* The driver's user-space set for compute and utility (what
 * nvidia-container-toolkit calls the "compute,utility" capabilities). */
static const char *const lib_names[] = {
	"libcuda", "libcudadebugger", "libnvidia-ml", "libnvidia-ptxjitcompiler",
	"libnvidia-nvvm", "libnvidia-gpucomp", "libnvidia-cfg", "libnvidia-opencl",
	"libnvidia-allocator", "libnvidia-compiler", "libnvidia-fatbinaryloader",
	"libnvidia-pkcs11", "libnvidia-pkcs11-openssl3", "libnvidia-nscq",
};

#define NODE_MODE_DEFAULT 0666

/* Copy, truncating: for names the kernel bounds but the compiler cannot. */
static void scpy(char *d, size_t n, const char *s)
{
	size_t l = strnlen(s, n - 1);
	memcpy(d, s, l);
	d[l] = '\0';
}

void gpu_paths_default(struct gpu_paths *p)
{
	const char *r = getenv("AINIT_GPU_ROOT");
	if (!r || !*r || !strcmp(r, "/"))
		r = "";
	snprintf(p->proc, sizeof p->proc, "%s/proc", r);
	snprintf(p->dev, sizeof p->dev, "%s/dev", r);
	snprintf(p->root, sizeof p->root, "%s", r);
}

/* Small text files only (/proc/devices, information, params). */
static int read_text(const char *path, char *buf, size_t n)
{
	AI_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0)
		return -errno;
	while (len + 1 < n) {
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return 0;
}

/* Next line of *s into [line, end); advances *s. */
static bool next_line(const char **s, const char **line, size_t *len)
{
	if (!**s)
		return false;
	const char *nl = strchr(*s, '\n');
	*line = *s;
	*len = nl ? (size_t)(nl - *s) : strlen(*s);
	*s = nl ? nl + 1 : *s + *len;
	return true;
}

void gpu_parse_proc_devices(const char *text, struct gpu_majors *m)
{
	const char *s = text, *line;
	size_t len;
	bool chr = false;
	m->nvidia = m->uvm = m->caps = -1;
	while (next_line(&s, &line, &len)) {
		char name[64];
		int major, used = 0;
		if (len >= 18 && !strncmp(line, "Character devices:", 18)) {
			chr = true;
			continue;
		}
		if (len == 0 || !strncmp(line, "Block devices:", 14)) {
			chr = false;
			continue;
		}
		if (!chr || len >= 80)
			continue;
		char tmp[80];
		memcpy(tmp, line, len);
		tmp[len] = '\0';
		if (sscanf(tmp, " %d %63s%n", &major, name, &used) != 2 || major <= 0)
			continue;
		/* "nvidia-frontend" on old drivers, "nvidia"/"nvidiactl" on new */
		if (!strcmp(name, "nvidia-frontend") || !strcmp(name, "nvidia") ||
		    !strcmp(name, "nvidiactl"))
			m->nvidia = major;
		else if (!strcmp(name, "nvidia-uvm"))
			m->uvm = major;
		else if (!strcmp(name, "nvidia-caps"))
			m->caps = major;
	}
}

/* "Key:<spaces/tabs>value" lines (information, params, capability files). */
static bool field(const char *text, const char *key, char *out, size_t n)
{
	const char *s = text, *line;
	size_t len, kl = strlen(key);
	while (next_line(&s, &line, &len)) {
		if (len <= kl || strncmp(line, key, kl) || line[kl] != ':')
			continue;
		const char *v = line + kl + 1, *end = line + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		size_t vl = (size_t)(end - v);
		if (vl >= n)
			vl = n - 1;
		memcpy(out, v, vl);
		out[vl] = '\0';
		return true;
	}
	return false;
}

static bool field_int(const char *text, const char *key, long lo, long hi, long *out)
{
	char v[32], *end;
	if (!field(text, key, v, sizeof v))
		return false;
	errno = 0;
	long x = strtol(v, &end, 0);
	if (errno || end == v || *end || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static bool is_chr(const char *path, int major, int minor)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == makedev((unsigned)major, (unsigned)minor);
}

static bool node_ok(const char *dev, const char *name, int major, int minor)
{
	char path[GPU_PATH + 64];
	if (major < 0)
		return false;
	snprintf(path, sizeof path, "%s/%s", dev, name);
	return is_chr(path, major, minor);
}

static int cmp_gpu(const void *a, const void *b)
{
	const struct gpu_dev *x = a, *y = b;
	int c = strcmp(x->bus, y->bus);
	return c ? c : x->minor - y->minor;
}

/* GPUs the driver reports, one directory per PCI function. */
static int scan_proc_gpus(const struct gpu_paths *p, struct gpu_host *h, struct ai_err *e)
{
	char dir[GPU_PATH + 32];
	snprintf(dir, sizeof dir, "%s/driver/nvidia/gpus", p->proc);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : ai_fail(e, "gpu", "opendir", errno, "%s", dir);
	struct dirent *de;
	while ((de = readdir(d)) && h->ngpus < GPU_MAX) {
		char path[sizeof dir + 300], text[4096];
		long minor;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/information", dir, de->d_name);
		if (read_text(path, text, sizeof text) < 0 ||
		    !field_int(text, "Device Minor", 0, 253, &minor))
			continue;
		struct gpu_dev *g = &h->gpus[h->ngpus++];
		memset(g, 0, sizeof *g);
		g->minor = (int)minor;
		scpy(g->bus, sizeof g->bus, de->d_name);
		field(text, "Model", g->model, sizeof g->model);
	}
	closedir(d);
	return 1;
}

/* No /proc/driver/nvidia/gpus (a host that hides it): the nodes say it. */
static void scan_dev_gpus(const struct gpu_paths *p, struct gpu_host *h)
{
	DIR *d = opendir(p->dev);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) && h->ngpus < GPU_MAX) {
		char *end;
		if (strncmp(de->d_name, "nvidia", 6) || de->d_name[6] < '0' || de->d_name[6] > '9')
			continue;
		long minor = strtol(de->d_name + 6, &end, 10);
		if (*end || minor > 253 || !node_ok(p->dev, de->d_name, h->maj.nvidia, (int)minor))
			continue;
		struct gpu_dev *g = &h->gpus[h->ngpus++];
		memset(g, 0, sizeof *g);
		g->minor = (int)minor;
	}
	closedir(d);
}

static bool lib_wanted(const char *name)
{
	for (size_t i = 0; i < AI_ARRAY_SIZE(lib_names); i++) {
		size_t l = strlen(lib_names[i]);
		if (!strncmp(name, lib_names[i], l) && !strncmp(name + l, ".so", 3) &&
		    (name[l + 3] == '\0' || name[l + 3] == '.'))
			return true;
	}
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void scan_libs(const struct gpu_paths *p, struct gpu_host *h)
{
	struct { dev_t dev; ino_t ino; } seen[AI_ARRAY_SIZE(lib_dirs)];
	int nseen = 0;
	for (size_t i = 0; i < AI_ARRAY_SIZE(lib_dirs); i++) {
		char dir[GPU_PATH * 2];
		struct stat st;
		bool dup = false;
		snprintf(dir, sizeof dir, "%s%s", p->root, lib_dirs[i]);
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		/* merged /usr: /lib/<triplet> is /usr/lib/<triplet> */
		for (int j = 0; j < nseen; j++)
			dup |= seen[j].dev == st.st_dev && seen[j].ino == st.st_ino;
		if (dup)
			continue;
		seen[nseen].dev = st.st_dev;
		seen[nseen++].ino = st.st_ino;
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) && h->nlibs < GPU_MAX_LIBS) {
			if (!lib_wanted(de->d_name))
				continue;
			char full[GPU_PATH * 3];
			snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
			if (stat(full, &st) < 0 || !S_ISREG(st.st_mode)) /* dangling link, dir */
				continue;
			h->have_libcuda |= !strncmp(de->d_name, "libcuda.so", 10);
			h->have_libnvml |= !strncmp(de->d_name, "libnvidia-ml.so", 15);
			/* Only the files themselves: the soname links beside them
			 * (libcuda.so.1 -> libcuda.so.580.65.06) are on the root and
			 * resolve into the bound files; a mount cannot sit on a link. */
			if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			size_t n = strlen(full);
			if (n >= GPU_PATH)
				continue;
			memcpy(h->libs[h->nlibs++], full, n + 1);
		}
		closedir(d);
	}
	qsort(h->libs, (size_t)h->nlibs, sizeof h->libs[0], cmp_str);
}

int gpu_discover(const struct gpu_paths *p, struct gpu_host *h, struct ai_err *e)
{
	char path[GPU_PATH + 16], text[16384]; /* /proc/devices: 1-3 KiB even on big machines */
	int r;
	memset(h, 0, sizeof *h);
	snprintf(h->dev, sizeof h->dev, "%s", p->dev);
	snprintf(path, sizeof path, "%s/devices", p->proc);
	if ((r = read_text(path, text, sizeof text)) < 0)
		return ai_fail(e, "gpu", "read", -r, "%s", path);
	gpu_parse_proc_devices(text, &h->maj);
	h->driver = h->maj.nvidia > 0;
	if (h->driver) {
		if ((r = scan_proc_gpus(p, h, e)) < 0)
			return r;
		if (r == 0)
			scan_dev_gpus(p, h);
		for (int i = 0; i < h->ngpus; i++) {
			char name[32];
			snprintf(name, sizeof name, "nvidia%d", h->gpus[i].minor);
			h->gpus[i].node_ok = node_ok(p->dev, name, h->maj.nvidia, h->gpus[i].minor);
		}
		qsort(h->gpus, (size_t)h->ngpus, sizeof h->gpus[0], cmp_gpu);
		h->ctl_ok = node_ok(p->dev, "nvidiactl", h->maj.nvidia, 255);
		h->modeset_ok = node_ok(p->dev, "nvidia-modeset", h->maj.nvidia, 254);
		h->uvm_ok = node_ok(p->dev, "nvidia-uvm", h->maj.uvm, 0);
		h->uvm_tools_ok = node_ok(p->dev, "nvidia-uvm-tools", h->maj.uvm, 1);
	}
	scan_libs(p, h);
	return 0;
}

static void add_node(struct gpu_plan *p, const struct gpu_host *h, const char *name,
		     int major, int minor)
{
	struct gpu_node *n = &p->nodes[p->nnodes++];
	snprintf(n->name, sizeof n->name, "%s", name);
	snprintf(n->source, sizeof n->source, "%s/%s", h->dev, name);
	n->type = 'c';
	n->major = major;
	n->minor = minor;
}

/* "0,1,2": v[i], or i itself when v is NULL. */
static void list_indexes(char *buf, size_t n, const int *v, int k)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < k && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? "," : "", v ? v[i] : i);
}

int gpu_plan(const struct cfg_gpu *want, const struct gpu_host *h, const char *group,
	     struct gpu_plan *p, struct ai_err *e)
{
	char missing[160] = "";
	size_t ml = 0;
	memset(p, 0, sizeof *p);
	if (want->mode == GPU_NONE)
		return 0;
	if (!h->driver)
		return ai_fail(e, "gpu", NULL, 0,
			       "group %s: asks for GPUs but no NVIDIA driver is loaded "
			       "(no nvidia in /proc/devices; load nvidia and nvidia_uvm)", group);
	if (h->maj.uvm < 0)
		return ai_fail(e, "gpu", NULL, 0,
			       "group %s: nvidia_uvm is not loaded (no nvidia-uvm in /proc/devices); "
			       "CUDA needs it: add nvidia_uvm to appliance.kernel_modules", group);
	if (h->ngpus == 0)
		return ai_fail(e, "gpu", NULL, 0, "group %s: asks for GPUs but the driver reports none", group);

	switch (want->mode) {
	case GPU_ALL:
		for (int i = 0; i < h->ngpus; i++)
			p->gpus[p->ngpus++] = i;
		break;
	case GPU_LIST:
		for (int i = 0; i < want->nindex; i++) {
			int x = want->index[i];
			bool dup = false;
			if (x < 0 || x >= h->ngpus)
				return ai_fail(e, "gpu", NULL, 0,
					       "group %s: GPU index %d does not exist: this host has %d GPU%s (0..%d)",
					       group, x, h->ngpus, h->ngpus == 1 ? "" : "s", h->ngpus - 1);
			for (int j = 0; j < p->ngpus; j++)
				dup |= p->gpus[j] == x;
			if (!dup && p->ngpus < GPU_MAX)
				p->gpus[p->ngpus++] = x;
		}
		break;
	case GPU_COUNT:
		if (want->count > h->ngpus)
			return ai_fail(e, "gpu", NULL, 0,
				       "group %s: asks for %d GPUs: this host has %d", group,
				       want->count, h->ngpus);
		for (int i = 0; i < want->count; i++)
			p->gpus[p->ngpus++] = i;
		break;
	default:
		return ai_fail(e, "gpu", NULL, 0, "group %s: bad gpu mode %d", group, want->mode);
	}

	/* The control and UVM nodes every CUDA process opens, then the GPUs. */
	if (!h->ctl_ok)
		ml += (size_t)snprintf(missing + ml, sizeof missing - ml, " nvidiactl");
	if (!h->uvm_ok && ml < sizeof missing)
		ml += (size_t)snprintf(missing + ml, sizeof missing - ml, " nvidia-uvm");
	add_node(p, h, "nvidiactl", h->maj.nvidia, 255);
	add_node(p, h, "nvidia-uvm", h->maj.uvm, 0);
	if (h->uvm_tools_ok)
		add_node(p, h, "nvidia-uvm-tools", h->maj.uvm, 1);
	for (int i = 0; i < p->ngpus; i++) {
		const struct gpu_dev *g = &h->gpus[p->gpus[i]];
		char name[32];
		snprintf(name, sizeof name, "nvidia%d", g->minor);
		if (!g->node_ok && ml < sizeof missing)
			ml += (size_t)snprintf(missing + ml, sizeof missing - ml, " %s", name);
		add_node(p, h, name, h->maj.nvidia, g->minor);
	}
	if (ml)
		return ai_fail(e, "gpu", NULL, 0,
			       "group %s: device nodes missing in %s:%s (run `ainit gpu mknod` or nvidia-modprobe)",
			       group, h->dev, missing);
	if (!h->have_libcuda)
		return ai_fail(e, "gpu", NULL, 0,
			       "group %s: the driver's libcuda.so.1 is not on the root (looked in %s and the usual lib dirs)",
			       group, lib_dirs[0]);
	snprintf(p->dev, sizeof p->dev, "%s", h->dev);
	for (int i = 0; i < h->nlibs; i++)
		memcpy(p->libs[p->nlibs++], h->libs[i], GPU_PATH);

	/* Inside the group CUDA enumerates only the nodes it can open, so the
	 * group's GPUs are 0..k-1 to CUDA; NVIDIA_VISIBLE_DEVICES names host
	 * indexes, as nvidia-container-toolkit does, for tools that read it. */
	p->env[0].key = "CUDA_VISIBLE_DEVICES";
	list_indexes(p->env[0].value, sizeof p->env[0].value, NULL, p->ngpus);
	p->env[1].key = "NVIDIA_VISIBLE_DEVICES";
	if (want->mode == GPU_ALL)
		snprintf(p->env[1].value, sizeof p->env[1].value, "all");
	else
		list_indexes(p->env[1].value, sizeof p->env[1].value, p->gpus, p->ngpus);
	p->env[2].key = "NVIDIA_DRIVER_CAPABILITIES";
	snprintf(p->env[2].value, sizeof p->env[2].value, "compute,utility");
	p->nenv = 3;
	return 0;
}

int gpu_plan_group(const struct cfg_group *g, struct gpu_plan **out, struct ai_err *e)
{
	struct gpu_paths paths;
	struct gpu_host *h;
	int r;
	*out = NULL;
	if (g->gpu.mode == GPU_NONE)
		return 0;
	h = calloc(1, sizeof *h);
	struct gpu_plan *p = calloc(1, sizeof *p);
	if (!h || !p) {
		free(h);
		free(p);
		return ai_fail(e, "gpu", "calloc", ENOMEM, "group %s: GPU plan", g->name);
	}
	gpu_paths_default(&paths);
	if ((r = gpu_discover(&paths, h, e)) >= 0)
		r = gpu_plan(&g->gpu, h, g->name, p, e);
	free(h);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* ---- boot: the nodes, as nvidia-modprobe makes them ---- */

struct node_attr { unsigned uid, gid, mode; bool modify; };

static void read_params(const char *file, struct node_attr *a)
{
	char text[8192];
	long v;
	a->uid = a->gid = 0;
	a->mode = NODE_MODE_DEFAULT;
	a->modify = true;
	if (read_text(file, text, sizeof text) < 0)
		return;
	if (field_int(text, "DeviceFileUID", 0, 0x7fffffff, &v))
		a->uid = (unsigned)v;
	if (field_int(text, "DeviceFileGID", 0, 0x7fffffff, &v))
		a->gid = (unsigned)v;
	if (field_int(text, "DeviceFileMode", 0, 07777, &v))
		a->mode = (unsigned)v;
	if (field_int(text, "ModifyDeviceFiles", 0, 1, &v) || field_int(text, "DeviceFileModify", 0, 1, &v))
		a->modify = v == 1;
}

static int make_node(const char *dev, const char *name, int major, int minor,
		     const struct node_attr *a, struct ai_err *e)
{
	char path[GPU_PATH + 64];
	struct stat st;
	dev_t want = makedev((unsigned)major, (unsigned)minor);
	snprintf(path, sizeof path, "%s/%s", dev, name);
	if (lstat(path, &st) == 0) {
		if (S_ISCHR(st.st_mode) && st.st_rdev == want && (st.st_mode & 07777) == a->mode &&
		    st.st_uid == a->uid && st.st_gid == a->gid)
			return 1;
		if (!(S_ISCHR(st.st_mode) && st.st_rdev == want) && unlink(path) < 0)
			return ai_fail(e, "gpu", "unlink", errno, "%s", path);
	} else if (errno != ENOENT) {
		return ai_fail(e, "gpu", "lstat", errno, "%s", path);
	}
	if (mknod(path, S_IFCHR | (a->mode & 0777), want) < 0 && errno != EEXIST)
		return ai_fail(e, "gpu", "mknod", errno, "%s (%d:%d)", path, major, minor);
	/* umask narrowed mknod's mode; the driver's params say what it is */
	if (chmod(path, a->mode) < 0)
		return ai_fail(e, "gpu", "chmod", errno, "%s", path);
	if (chown(path, a->uid, a->gid) < 0)
		return ai_fail(e, "gpu", "chown", errno, "%s", path);
	return 1;
}

static int make_cap_node(const struct gpu_paths *p, int major, const char *which, struct ai_err *e)
{
	char file[GPU_PATH + 64], text[1024], name[48];
	long minor, mode;
	struct node_attr a = { 0, 0, 0400, true };
	snprintf(file, sizeof file, "%s/driver/nvidia/capabilities/mig/%s", p->proc, which);
	if (read_text(file, text, sizeof text) < 0 || !field_int(text, "DeviceFileMinor", 0, 1 << 20, &minor))
		return 0; /* no MIG support in this driver: nothing to make */
	if (field_int(text, "DeviceFileMode", 0, 07777, &mode))
		a.mode = (unsigned)mode;
	snprintf(name, sizeof name, "nvidia-caps/nvidia-cap%ld", minor);
	return make_node(p->dev, name, major, (int)minor, &a, e);
}

/* Keep the first failure in *e, count the successes, go on: one bad node
 * must not stop the others (boot goes on degraded). */
struct mk_state { struct ai_err *e; int first, made; };

static void tally(struct mk_state *m, int r, const struct ai_err *e1)
{
	if (r < 0) {
		if (!m->first) {
			m->first = r;
			if (m->e)
				*m->e = *e1;
		}
	} else if (r > 0) {
		m->made++;
	}
}

int gpu_make_nodes(const struct gpu_paths *p, struct ai_err *e)
{
	struct gpu_host *h = calloc(1, sizeof *h);
	struct mk_state m = { e, 0, 0 };
	struct node_attr a;
	struct ai_err e1;
	char params[GPU_PATH + 32], dir[GPU_PATH + 16];
	int r;
	if (!h)
		return ai_fail(e, "gpu", "calloc", ENOMEM, "host table");
	if ((r = gpu_discover(p, h, e)) < 0)
		goto out;
	if (!h->driver) {
		r = ai_fail(e, "gpu", NULL, ENODEV, "no NVIDIA driver loaded (no nvidia in %s/devices)", p->proc);
		goto out;
	}
	snprintf(params, sizeof params, "%s/driver/nvidia/params", p->proc);
	read_params(params, &a);
	r = 0;
	if (!a.modify) /* NVreg_ModifyDeviceFiles=0: the admin makes them */
		goto out;
	tally(&m, make_node(p->dev, "nvidiactl", h->maj.nvidia, 255, &a, &e1), &e1);
	for (int i = 0; i < h->ngpus; i++) {
		char name[32];
		snprintf(name, sizeof name, "nvidia%d", h->gpus[i].minor);
		tally(&m, make_node(p->dev, name, h->maj.nvidia, h->gpus[i].minor, &a, &e1), &e1);
	}
	tally(&m, make_node(p->dev, "nvidia-modeset", h->maj.nvidia, 254, &a, &e1), &e1);
	if (h->maj.uvm > 0) {
		tally(&m, make_node(p->dev, "nvidia-uvm", h->maj.uvm, 0, &a, &e1), &e1);
		tally(&m, make_node(p->dev, "nvidia-uvm-tools", h->maj.uvm, 1, &a, &e1), &e1);
	}
	if (h->maj.caps > 0) {
		snprintf(dir, sizeof dir, "%s/nvidia-caps", p->dev);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			tally(&m, ai_fail(&e1, "gpu", "mkdir", errno, "%s", dir), &e1);
		else
			for (int i = 0; i < 2; i++)
				tally(&m, make_cap_node(p, h->maj.caps, i ? "monitor" : "config", &e1), &e1);
	}
	r = m.first ? m.first : m.made;
out:
	free(h);
	return r;
}

/* ---- ainit check ---- */

void chk_gpu_host(const struct ai_config *c, const struct gpu_host *h, struct diag_list *d)
{
	for (int i = 0; i < c->ngroups; i++) {
		const struct cfg_group *g = &c->groups[i];
		const struct cfg_gpu *w = &g->gpu;
		if (w->mode == GPU_NONE)
			continue;
		if (!h->driver || h->ngpus == 0) {
			diag_add(d, DIAG_WARNING, w->pos, "gpu-missing",
				 "group %s asks for GPUs but this host has none%s", g->name,
				 h->driver ? " (the NVIDIA driver reports no GPU)" : " (no NVIDIA driver loaded)");
			continue;
		}
		if (w->mode == GPU_COUNT && w->count > h->ngpus)
			diag_add(d, DIAG_WARNING, w->pos, "gpu-missing",
				 "group %s asks for %d GPUs but this host has %d", g->name, w->count, h->ngpus);
		if (w->mode == GPU_LIST)
			for (int j = 0; j < w->nindex; j++)
				if (w->index[j] >= h->ngpus)
					diag_add(d, DIAG_WARNING, w->pos, "gpu-missing",
						 "group %s asks for GPU %d but this host has %d GPU%s (index 0..%d)",
						 g->name, w->index[j], h->ngpus, h->ngpus == 1 ? "" : "s",
						 h->ngpus - 1);
	}
}

void chk_gpu(const struct ai_config *c, struct diag_list *d)
{
	bool any = false;
	for (int i = 0; i < c->ngroups; i++)
		any |= c->groups[i].gpu.mode != GPU_NONE;
	if (!any)
		return;
	struct gpu_paths p;
	struct gpu_host *h = calloc(1, sizeof *h);
	if (!h) {
		d->oom = true;
		return;
	}
	gpu_paths_default(&p);
	if (gpu_discover(&p, h, NULL) < 0)
		h->driver = false; /* no /proc/devices: no driver we can see */
	chk_gpu_host(c, h, d);
	free(h);
}

bool gpu_config_wants(const struct ai_config *c)
{
	for (int i = 0; c && i < c->ngroups; i++)
		if (c->groups[i].gpu.mode != GPU_NONE)
			return true;
	return false;
}

/* ---- `ainit gpu`: what the host has and what each group gets, as JSON ---- */

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void print_host(FILE *f, const struct gpu_host *h)
{
	fprintf(f, "{\"driver\":%s,\"majors\":{\"nvidia\":%d,\"uvm\":%d,\"caps\":%d},\"dev\":",
		h->driver ? "true" : "false", h->maj.nvidia, h->maj.uvm, h->maj.caps);
	jstr(f, h->dev);
	fprintf(f, ",\"gpus\":[");
	for (int i = 0; i < h->ngpus; i++) {
		const struct gpu_dev *g = &h->gpus[i];
		fprintf(f, "%s{\"index\":%d,\"minor\":%d,\"bus\":", i ? "," : "", i, g->minor);
		jstr(f, g->bus);
		fprintf(f, ",\"model\":");
		jstr(f, g->model);
		fprintf(f, ",\"node\":%s}", g->node_ok ? "true" : "false");
	}
	fprintf(f, "],\"nodes\":{\"nvidiactl\":%s,\"nvidia-uvm\":%s,\"nvidia-uvm-tools\":%s,"
		   "\"nvidia-modeset\":%s},\"libs\":[",
		h->ctl_ok ? "true" : "false", h->uvm_ok ? "true" : "false",
		h->uvm_tools_ok ? "true" : "false", h->modeset_ok ? "true" : "false");
	for (int i = 0; i < h->nlibs; i++) {
		fputs(i ? "," : "", f);
		jstr(f, h->libs[i]);
	}
	fprintf(f, "]}");
}

static const char *mode_name(int m)
{
	switch (m) {
	case GPU_ALL: return "all";
	case GPU_LIST: return "list";
	case GPU_COUNT: return "count";
	default: return "none";
	}
}

static void print_plan(FILE *f, const struct gpu_plan *p)
{
	fprintf(f, "\"gpus\":[");
	for (int i = 0; i < p->ngpus; i++)
		fprintf(f, "%s%d", i ? "," : "", p->gpus[i]);
	fprintf(f, "],\"nodes\":[");
	for (int i = 0; i < p->nnodes; i++) {
		const struct gpu_node *n = &p->nodes[i];
		fprintf(f, "%s{\"path\":\"/dev/%s\",\"source\":", i ? "," : "", n->name);
		jstr(f, n->source);
		fprintf(f, ",\"type\":\"%c\",\"major\":%d,\"minor\":%d}", n->type, n->major, n->minor);
	}
	fprintf(f, "],\"allow\":[");
	for (int i = 0; i < p->nnodes; i++)
		fprintf(f, "%s\"%c %d:%d rw\"", i ? "," : "", p->nodes[i].type, p->nodes[i].major,
			p->nodes[i].minor);
	fprintf(f, "],\"libs\":[");
	for (int i = 0; i < p->nlibs; i++) {
		fprintf(f, "%s{\"source\":", i ? "," : "");
		jstr(f, p->libs[i]);
		fprintf(f, ",\"target\":");
		jstr(f, p->libs[i]);
		fprintf(f, ",\"ro\":true}");
	}
	fprintf(f, "],\"env\":{");
	for (int i = 0; i < p->nenv; i++) {
		fprintf(f, "%s\"%s\":", i ? "," : "", p->env[i].key);
		jstr(f, p->env[i].value);
	}
	fprintf(f, "}");
}

static int cmd_gpu_plan(int argc, char **argv, const struct gpu_host *h)
{
	struct diag_list d = {0};
	const char *files[] = {argv[0]};
	struct ai_config *c = cfg_load(files, 1, &d);
	int rc = 0;
	if (!c) {
		diag_sort(&d);
		diag_print(&d, stderr);
		diag_free(&d);
		return 2;
	}
	struct gpu_plan *p = calloc(1, sizeof *p);
	if (!p) {
		fprintf(stderr, "ainit: gpu: out of memory\n");
		rc = 2;
		goto out;
	}
	printf("{\"host\":");
	print_host(stdout, h);
	printf(",\"groups\":{");
	bool first = true;
	for (int i = 0; i < c->ngroups; i++) {
		const struct cfg_group *g = &c->groups[i];
		bool named = argc < 2;
		for (int j = 1; j < argc; j++)
			named |= !strcmp(argv[j], g->name);
		if (!named)
			continue;
		struct ai_err e = {0};
		char eb[512];
		printf("%s", first ? "" : ",");
		first = false;
		jstr(stdout, g->name);
		printf(":{\"gpu\":\"%s\",", mode_name(g->gpu.mode));
		if (gpu_plan(&g->gpu, h, g->name, p, &e) < 0) {
			printf("\"ok\":false,\"error\":");
			jstr(stdout, ai_err_str(&e, eb, sizeof eb));
			printf("}");
			rc = 1;
			continue;
		}
		printf("\"ok\":true,");
		print_plan(stdout, p);
		printf("}");
	}
	printf("}}\n");
	free(p);
out:
	diag_free(&d);
	cfg_free(c);
	return rc;
}

static void print_host_text(FILE *f, const struct gpu_host *h)
{
	if (!h->driver) {
		fprintf(f, "driver: not loaded (no nvidia in /proc/devices): no GPU can be given to a group\n");
	} else {
		fprintf(f, "driver: nvidia major %d, nvidia-uvm %s, nvidia-caps %s\n", h->maj.nvidia,
			h->maj.uvm > 0 ? "loaded" : "NOT loaded", h->maj.caps > 0 ? "loaded" : "not loaded");
		fprintf(f, "%-6s %-13s %-40s %s\n", "INDEX", "BUS", "MODEL", "NODE");
		for (int i = 0; i < h->ngpus; i++) {
			const struct gpu_dev *g = &h->gpus[i];
			fprintf(f, "%-6d %-13s %-40s %s/nvidia%d %s\n", i, g->bus[0] ? g->bus : "-",
				g->model[0] ? g->model : "-", h->dev, g->minor, g->node_ok ? "ok" : "MISSING");
		}
		fprintf(f, "nodes: nvidiactl %s, nvidia-uvm %s, nvidia-uvm-tools %s, nvidia-modeset %s\n",
			h->ctl_ok ? "ok" : "MISSING", h->uvm_ok ? "ok" : "MISSING",
			h->uvm_tools_ok ? "ok" : "missing", h->modeset_ok ? "ok" : "missing");
	}
	fprintf(f, "libraries: %d%s\n", h->nlibs, h->have_libcuda ? "" : " (no libcuda.so: GPU groups cannot run CUDA)");
	for (int i = 0; i < h->nlibs; i++)
		fprintf(f, "  %s\n", h->libs[i]);
}

int cmd_gpu(int argc, char **argv)
{
	struct gpu_paths paths;
	struct ai_err e = {0};
	char eb[512];
	int rc;
	const char *verb = argc > 1 ? argv[1] : "show";
	gpu_paths_default(&paths);
	if (!strcmp(verb, "mknod")) {
		if ((rc = gpu_make_nodes(&paths, &e)) < 0) {
			fprintf(stderr, "ainit: %s\n", ai_err_str(&e, eb, sizeof eb));
			return 1;
		}
		printf("gpu: %d device nodes in %s made or already right\n", rc, paths.dev);
		return 0;
	}
	bool json = !strcmp(verb, "--json");
	if (json)
		verb = "show";
	if (strcmp(verb, "show") && (strcmp(verb, "plan") || argc < 3)) {
		fprintf(stderr, "usage: ainit gpu [--json | plan CONFIG [GROUP...] | mknod]\n");
		return 2;
	}
	struct gpu_host *h = calloc(1, sizeof *h);
	if (!h) {
		fprintf(stderr, "ainit: gpu: out of memory\n");
		return 2;
	}
	if (gpu_discover(&paths, h, &e) < 0) {
		fprintf(stderr, "ainit: %s\n", ai_err_str(&e, eb, sizeof eb));
		free(h);
		return 1;
	}
	if (!strcmp(verb, "show") && !json) {
		print_host_text(stdout, h);
		rc = 0;
	} else if (!strcmp(verb, "show")) {
		print_host(stdout, h);
		printf("\n");
		rc = 0;
	} else {
		rc = cmd_gpu_plan(argc - 2, argv + 2, h);
	}
	free(h);
	return rc;
}
