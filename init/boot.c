/* boot: PID 1's own work before and after supervision. See boot.h.
 *
 * Every step here reports its failure and goes on: PID 1 must not exit, and
 * a half-booted appliance that answers ctl is worth more than a panic.
 */
#include "boot.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <limits.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "gpu.h"
#include "log.h"
#include "netns.h"
#include "state.h"
#include "util.h"

#define MODULES_LOAD_DIR "/etc/modules-load.d"

struct early_mount {
	const char *what, *where, *type;
	unsigned long flags;
	const char *data;
	mode_t mode; /* of the mount point, when it must be made */
};

/* Order matters: /dev before /dev/pts and /dev/shm, /sys before its cgroup. */
static const struct early_mount early_mounts[] = {
	{"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555},
	{"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555},
	/* DEVTMPFS_MOUNT is off in Debian's kernels: the nodes exist only once
	 * we mount it. */
	{"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755},
	{"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", 0755},
	{"shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777},
	{"run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755},
	{"tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	 "nsdelegate", 0755},
};

/* A different device than its parent: something is mounted there. */
static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s/..", path);
	if (stat(path, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

static void early_mount(const struct early_mount *m)
{
	if (mkdir(m->where, m->mode) < 0 && errno != EEXIST) {
		log_err("boot", m->where, "mkdir: %s", strerror(errno));
		return;
	}
	/* The first stage (or the kernel) mounted it already and moved it
	 * into this root: mounting again would stack a second instance. */
	if (is_mountpoint(m->where))
		return;
	if (mount(m->what, m->where, m->type, m->flags, m->data) < 0) {
		/* EBUSY: already mounted (a kernel that mounts devtmpfs itself). */
		if (errno != EBUSY)
			log_err("boot", m->where, "mount %s: %s", m->type, strerror(errno));
	}
}

/* Links udev would make; scripts use /dev/fd for process substitution. */
static void dev_links(void)
{
	static const char *const links[][2] = {
		{"/proc/self/fd", "/dev/fd"},     {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"/proc/kcore", "/dev/core"},
	};
	for (size_t i = 0; i < AI_ARRAY_SIZE(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			log_warn("boot", links[i][1], "symlink: %s", strerror(errno));
}

/* The kernel hands PID 1 fds 0-2 on /dev/console, or nothing when the
 * initramfs lacks the node. Make sure 0-2 are open, so that no later fd
 * lands there by accident. */
static void std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR | O_NOCTTY);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

static void console_open(struct ai_state *st)
{
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		/* stderr is still the kernel's console, if there was one */
		log_err("boot", "/dev/console", "open: %s", strerror(errno));
		return;
	}
	st->console_fd = fd;
	log_set_fd(fd);
}

/* Every controller the kernel has, enabled for the children of the root, so
 * that groups get memory/cpu/pids limits. One write per controller: one that
 * cannot be enabled must not hold back the others. */
static void cgroup_enable_all(void)
{
	char buf[512];
	int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("boot", "/sys/fs/cgroup/cgroup.controllers", "open: %s", strerror(errno));
		return;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		log_err("boot", "/sys/fs/cgroup/cgroup.controllers", "read: %s", strerror(errno));
		return;
	}
	buf[n] = '\0';
	fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("boot", "/sys/fs/cgroup/cgroup.subtree_control", "open: %s", strerror(errno));
		return;
	}
	char *save = NULL;
	for (char *c = strtok_r(buf, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
		char w[64];
		int m = snprintf(w, sizeof w, "+%s", c);
		if (m <= 0 || m >= (int)sizeof w)
			continue;
		if (write(fd, w, (size_t)m) < 0)
			log_warn("boot", "cgroup", "enable controller %s: %s", c, strerror(errno));
	}
	close(fd);
}

/* Agents bind 127.0.0.1 (health ports, ZMQ): lo must be up in the root
 * network namespace; nobody else will do it in an initramfs. */
static void loopback_up(void)
{
	AI_AUTOCLOSE int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	if (fd < 0) {
		log_err("boot", "lo", "socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		log_err("boot", "lo", "SIOCGIFFLAGS: %s", strerror(errno));
		return;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		log_err("boot", "lo", "SIOCSIFFLAGS: %s", strerror(errno));
}

/* libkmod is dlopen()ed here, only when PID 1 loads modules: linked, it
 * drags libcrypto, liblzma and libzstd into every ainit process and costs
 * every `ainit ctl`/`check`/`sandbox` call about 1 ms of relocations
 * (DESIGN 11a; measured: empty program + yaml/seccomp/cap 0.7 ms, + kmod
 * 1.5 ms). The image stages libkmod.so.2 with its closure (image/build). */
struct kmodlib {
	void *h;
	struct kmod_ctx *ctx;
	struct kmod_ctx *(*new_)(const char *, const char *const *);
	void (*set_log_priority)(struct kmod_ctx *, int);
	int (*load_resources)(struct kmod_ctx *);
	struct kmod_ctx *(*unref)(struct kmod_ctx *);
	int (*lookup)(struct kmod_ctx *, const char *, struct kmod_list **);
	struct kmod_list *(*list_next)(const struct kmod_list *, const struct kmod_list *);
	struct kmod_module *(*get_module)(const struct kmod_list *);
	int (*probe)(struct kmod_module *, unsigned int, const char *,
		     int (*)(struct kmod_module *, const char *, void *), const void *,
		     void (*)(struct kmod_module *, bool, void *));
	const char *(*get_name)(const struct kmod_module *);
	struct kmod_module *(*mod_unref)(struct kmod_module *);
	int (*unref_list)(struct kmod_list *);
};

/* Load one module with its dependencies (and softdeps). A module that does
 * not exist is a warning (the config may name an optional driver); one that
 * fails to load is an error; neither stops the boot. Returns 1 when loaded or
 * already there. */
static int load_module(const struct kmodlib *k, const char *name, bool quiet_missing)
{
	struct kmod_list *list = NULL, *it;
	int r = k->lookup(k->ctx, name, &list);
	if (r < 0) {
		log_err("boot", name, "kernel module lookup: %s", strerror(-r));
		return 0;
	}
	if (!list) {
		if (!quiet_missing)
			log_warn("boot", name, "kernel module not found in /lib/modules; going on without it");
		return 0;
	}
	int ok = 0;
	for (it = list; it; it = k->list_next(list, it)) {
		struct kmod_module *mod = k->get_module(it);
		r = k->probe(mod, 0, NULL, NULL, NULL, NULL);
		if (r < 0)
			log_err("boot", name, "load kernel module %s: %s", k->get_name(mod),
				strerror(-r));
		else
			ok = 1;
		k->mod_unref(mod);
	}
	k->unref_list(list);
	return ok;
}

static void kmod_close(struct kmodlib *k)
{
	if (k->ctx)
		k->unref(k->ctx);
	if (k->h)
		dlclose(k->h);
	memset(k, 0, sizeof *k);
}

static bool kmod_open(struct kmodlib *k)
{
	memset(k, 0, sizeof *k);
	k->h = dlopen("libkmod.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!k->h) {
		log_err("boot", "kmod", "dlopen libkmod.so.2: %s: no module can be loaded", dlerror());
		return false;
	}
#define SYM(f, name)                                                                     \
	do {                                                                             \
		*(void **)&k->f = dlsym(k->h, name);                                     \
		if (!k->f) {                                                             \
			log_err("boot", "kmod", "libkmod.so.2 lacks %s: no module can be loaded", \
				name);                                                   \
			kmod_close(k);                                                   \
			return false;                                                    \
		}                                                                        \
	} while (0)
	SYM(new_, "kmod_new");
	SYM(set_log_priority, "kmod_set_log_priority");
	SYM(load_resources, "kmod_load_resources");
	SYM(unref, "kmod_unref");
	SYM(lookup, "kmod_module_new_from_lookup");
	SYM(list_next, "kmod_list_next");
	SYM(get_module, "kmod_module_get_module");
	SYM(probe, "kmod_module_probe_insert_module");
	SYM(get_name, "kmod_module_get_name");
	SYM(mod_unref, "kmod_module_unref");
	SYM(unref_list, "kmod_module_unref_list");
#undef SYM
	k->ctx = k->new_(NULL, NULL);
	if (!k->ctx) {
		log_err("boot", "kmod", "kmod_new failed: no module can be loaded");
		kmod_close(k);
		return false;
	}
	k->set_log_priority(k->ctx, 0); /* we report failures ourselves */
	if (k->load_resources(k->ctx) < 0)
		log_warn("boot", "kmod", "cannot load the module indexes; lookups will be slow");
	return true;
}

/* The first stage's module loader: the small initramfs has no libkmod
 * (with libcrypto, liblzma and libzstd it would be 6 MB of a 2 MB
 * initramfs), only the modules and the modules.dep that depmod made for
 * them. Each module's line lists its dependencies, the ones to load first
 * last; finit_module(2) each, EEXIST meaning already there. Softdeps and
 * aliases are not followed: image/disk names the modules themselves. */
struct deptab {
	char *buf; /* modules.dep, NUL-terminated */
	char dir[300];
};

static void dep_close(struct deptab *t)
{
	free(t->buf);
	t->buf = NULL;
}

static bool dep_open(struct deptab *t)
{
	struct utsname u;
	char path[340];
	struct stat sb;
	memset(t, 0, sizeof *t);
	if (uname(&u) < 0) {
		log_err("boot", "modules", "uname: %s: no module can be loaded", strerror(errno));
		return false;
	}
	snprintf(t->dir, sizeof t->dir, "/lib/modules/%.200s", u.release);
	snprintf(path, sizeof path, "%s/modules.dep", t->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size > (16 << 20)) {
		log_err("boot", path, "open: %s: no module can be loaded",
			fd < 0 || sb.st_size <= (16 << 20) ? strerror(errno) : "too big");
		if (fd >= 0)
			close(fd);
		return false;
	}
	t->buf = malloc((size_t)sb.st_size + 1);
	size_t len = 0;
	ssize_t r = 0;
	while (t->buf && len < (size_t)sb.st_size &&
	       (r = read(fd, t->buf + len, (size_t)sb.st_size - len)) > 0)
		len += (size_t)r;
	close(fd);
	if (!t->buf || r < 0) {
		log_err("boot", path, "read: %s: no module can be loaded",
			t->buf ? strerror(errno) : "out of memory");
		dep_close(t);
		return false;
	}
	t->buf[len] = '\0';
	return true;
}

/* "kernel/drivers/block/virtio_blk.ko" is module virtio_blk; '-' and '_'
 * are the same in module names. */
static bool dep_name_is(const char *path, size_t len, const char *name)
{
	const char *base = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	size_t blen = (size_t)(path + len - base), i;
	for (i = 0; i < blen && name[i]; i++) {
		char a = base[i] == '-' ? '_' : base[i], b = name[i] == '-' ? '_' : name[i];
		if (a != b)
			return false;
	}
	return !name[i] && blen - i >= 3 && !strncmp(base + i, ".ko", 3);
}

static int dep_insert(const struct deptab *t, const char *rel, size_t len, const char *name)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%.*s", t->dir, (int)len, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("boot", name, "kernel module %s: open: %s", path, strerror(errno));
		return -1;
	}
	/* .ko.xz, .ko.zst: the kernel decompresses them itself, if it can */
	unsigned flags = strstr(path, ".ko.") ? 4 /* MODULE_INIT_COMPRESSED_FILE */ : 0;
	int r = (int)syscall(SYS_finit_module, fd, "", flags);
	int err = errno;
	close(fd);
	if (r < 0 && err != EEXIST) {
		log_err("boot", name, "load kernel module %s: %s", path, strerror(err));
		return -1;
	}
	return 0;
}

int boot_moddep_plan(const char *dep, const char *name, struct boot_modpath *out, int max)
{
	for (const char *line = dep; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		const char *colon = memchr(line, ':', ll);
		if (colon && dep_name_is(line, (size_t)(colon - line), name)) {
			struct boot_modpath d[BOOT_MODDEP_MAX];
			int n = 0;
			for (const char *p = colon + 1; p < line + ll;) {
				p += strspn(p, " \t");
				size_t w = strcspn(p, " \t\n");
				if (p + w > line + ll)
					w = (size_t)(line + ll - p);
				if (w) {
					if (n == BOOT_MODDEP_MAX)
						return -E2BIG;
					d[n++] = (struct boot_modpath){p, w};
				}
				p += w ? w : 1;
			}
			if (n + 1 > max)
				return -E2BIG;
			/* listed: the nearest dependency first; loaded: the farthest */
			for (int k = 0; k < n; k++)
				out[k] = d[n - 1 - k];
			out[n] = (struct boot_modpath){line, (size_t)(colon - line)};
			return n + 1;
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

static int dep_load(const struct deptab *t, const char *name, bool quiet_missing)
{
	struct boot_modpath plan[BOOT_MODDEP_MAX + 1];
	int n = boot_moddep_plan(t->buf, name, plan, (int)AI_ARRAY_SIZE(plan));
	if (n < 0) {
		log_err("boot", name, "kernel module: more than %d dependencies in modules.dep",
			BOOT_MODDEP_MAX);
		return 0;
	}
	if (n == 0) {
		if (!quiet_missing)
			log_warn("boot", name, "kernel module not found in %s; going on without it",
				 t->dir);
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (dep_insert(t, plan[i].p, plan[i].len, name) < 0)
			return 0;
	return 1;
}

/* The image's platform modules (control channel, pvpanic): one name per
 * line in MODULES_LOAD_DIR/ *.conf, '#' comments, as modules-load.d(5).
 * Loaded before the config so that a broken config still leaves a
 * reachable init. Absent ones are silent: the machine may lack the device.
 * With DT (the first stage) by modules.dep, else by libkmod. */
static void load_platform_modules(const struct deptab *dt)
{
	DIR *d = opendir(MODULES_LOAD_DIR);
	struct dirent *de;
	struct kmodlib k = {0};
	int n = 0;
	uint64_t t0 = ai_now_ms();
	if (!d) {
		if (errno != ENOENT)
			log_err("boot", MODULES_LOAD_DIR, "opendir: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char path[300], line[128];
		if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", MODULES_LOAD_DIR, de->d_name);
		FILE *f = fopen(path, "re");
		if (!f) {
			log_err("boot", path, "open: %s", strerror(errno));
			continue;
		}
		while (fgets(line, sizeof line, f)) {
			char *s = line + strspn(line, " \t");
			s[strcspn(s, " \t\r\n#;")] = '\0';
			if (!*s)
				continue;
			if (dt) {
				n += dep_load(dt, s, true);
				continue;
			}
			if (!k.ctx && !kmod_open(&k))
				break;
			n += load_module(&k, s, true);
		}
		fclose(f);
	}
	closedir(d);
	kmod_close(&k);
	log_info("boot", "modules", "%d platform modules loaded in %llu ms", n,
		 (unsigned long long)(ai_now_ms() - t0));
}

static bool stage1(struct ai_state *st);

void boot_early(struct ai_state *st)
{
	st->console_fd = -1;
	umask(022);
	/* The kernel gives init no PATH; agents' commands are looked up in it. */
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0);
	std_fds();
	early_mount(&early_mounts[0]); /* /proc, for the command line */
	/* returns when there is no root to switch to, or it was not reached */
	bool in_stage1 = stage1(st);
	for (size_t i = 0; i < AI_ARRAY_SIZE(early_mounts); i++)
		early_mount(&early_mounts[i]);
	if (st->console_fd < 0)
		console_open(st);
	dev_links();
	cgroup_enable_all();
	loopback_up();
	if (!in_stage1) /* else loaded already, and there is no libkmod */
		load_platform_modules(NULL);
	/* The kernel's own boot time, for the boot-time targets (DESIGN 11). */
	char up[64] = "";
	int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, up, sizeof up - 1);
		close(fd);
		up[n > 0 ? n : 0] = '\0';
		up[strcspn(up, " \n")] = '\0';
	}
	log_info("boot", NULL, "early boot done, %s s after the kernel started", up[0] ? up : "?");
}

/* ---- appliance.mounts ---------------------------------------------------
 * what: /dev/NAME, PARTLABEL=NAME (GPT partition name, from sysfs), or
 * LABEL=NAME (an ext2/3/4 volume label; failing that, a GPT partition of that
 * name, so that an empty data partition can be found to be formatted).
 * format_if_empty formats only a device whose first 64 KiB are all zero:
 * never one that holds anything, whatever it is. */

#define EMPTY_PROBE 65536
#define DEV_WAIT_MS 3000

/* ext2/3/4: superblock at 1024, magic 0xEF53 at +56, label at +120. */
static bool ext_label(const char *dev, char *label, size_t n)
{
	unsigned char sb[1024];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t r = pread(fd, sb, sizeof sb, 1024);
	close(fd);
	if (r != (ssize_t)sizeof sb || sb[56] != 0x53 || sb[57] != 0xEF)
		return false;
	size_t len = strnlen((const char *)sb + 120, 16);
	if (len >= n)
		len = n - 1;
	memcpy(label, sb + 120, len);
	label[len] = '\0';
	return true;
}

/* Every block device in sysfs, by DEVNAME and (for partitions) PARTNAME. */
static bool find_block(const char *partname, const char *extlabel, char *dev, size_t n)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *de;
	bool found = false;
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char p[300], buf[1024];
		if (de->d_name[0] == '.')
			continue;
		snprintf(dev, n, "/dev/%s", de->d_name);
		if (extlabel) {
			char l[17];
			found = ext_label(dev, l, sizeof l) && !strcmp(l, extlabel);
			continue;
		}
		snprintf(p, sizeof p, "/sys/class/block/%s/uevent", de->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		char *pn = strstr(buf, "PARTNAME=");
		if (pn && (pn == buf || pn[-1] == '\n')) {
			pn += 9;
			pn[strcspn(pn, "\n")] = '\0';
			found = !strcmp(pn, partname);
		}
	}
	closedir(d);
	return found;
}

static bool resolve_what(const char *what, char *dev, size_t n)
{
	if (!strncmp(what, "PARTLABEL=", 10))
		return find_block(what + 10, NULL, dev, n);
	if (!strncmp(what, "LABEL=", 6))
		return find_block(NULL, what + 6, dev, n) || find_block(what + 6, NULL, dev, n);
	snprintf(dev, n, "%s", what);
	return access(dev, F_OK) == 0;
}

/* ---- first stage: from a small initramfs to the root partition ----------
 * The disk image's UKI carries a small initramfs (ainit, libkmod, the
 * modules that reach the disk and its file system) and names the root on
 * the command line: root=PARTLABEL=AINIT_ROOT rootfstype=erofs ro. Done the
 * way switch_root(8) does it: mount, move the API file systems over, free the
 * initramfs (it is RAM), make the new root / and execve its /sbin/init. */

#define SYSROOT "/sysroot"

static bool word_is(const char *tok, const char *key, const char **val)
{
	size_t n = strlen(key);
	if (strncmp(tok, key, n) != 0)
		return false;
	*val = tok + n;
	return true;
}

static bool root_spec_ok(const char *v)
{
	const char *name;
	if (word_is(v, "PARTLABEL=", &name) || word_is(v, "LABEL=", &name))
		return *name != '\0';
	if (word_is(v, "/dev/", &name))
		return *name != '\0' && strstr(name, "..") == NULL;
	return false; /* UUID=, PARTUUID=, MAJ:MIN, ...: no udev, no blkid here */
}

int boot_parse_root(const char *cmdline, struct boot_root *r)
{
	bool bad = false, bad_root = false; /* root=: the last one counts */
	memset(r, 0, sizeof *r);
	r->wait_s = BOOT_ROOT_WAIT_S;
	for (const char *p = cmdline; *p;) {
		char tok[512];
		size_t n = 0;
		bool quoted = false, longtok = false;
		const char *v;
		p += strspn(p, " \t\n");
		if (!*p)
			break;
		/* The kernel's own rule: double quotes group, and are dropped. */
		for (; *p && (quoted || !strchr(" \t\n", *p)); p++) {
			if (*p == '"')
				quoted = !quoted;
			else if (n < sizeof tok - 1)
				tok[n++] = *p;
			else
				longtok = true;
		}
		tok[n] = '\0';
		if (!strcmp(tok, "--"))
			break; /* the rest is init's arguments */
		if (word_is(tok, "root=", &v)) {
			snprintf(r->what, sizeof r->what, "%.255s", v);
			bad_root = longtok || strlen(v) >= sizeof r->what || !root_spec_ok(v);
		} else if (word_is(tok, "rootfstype=", &v)) {
			size_t len = strlen(v);
			snprintf(r->fstype, sizeof r->fstype, "%.31s", v);
			if (longtok || len == 0 || len >= sizeof r->fstype ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
				r->fstype[0] = '\0', bad = true;
		} else if (!strcmp(tok, "ro")) {
			r->rw = false;
		} else if (!strcmp(tok, "rw")) {
			r->rw = true;
		} else if (!strcmp(tok, "rootwait")) {
			r->wait_s = BOOT_ROOT_WAIT_S; /* the kernel's "forever", bounded */
		} else if (word_is(tok, "rootwait=", &v)) {
			char *end;
			errno = 0;
			unsigned long s = strtoul(v, &end, 10);
			if (errno || end == v || *end || *v == '-' || s == 0 || s > BOOT_ROOT_WAIT_MAX_S)
				bad = true;
			else
				r->wait_s = (unsigned)s;
		}
	}
	if (!r->what[0])
		return 0; /* a bad rootwait= without root= concerns nobody */
	return bad || bad_root ? -EINVAL : 1;
}

static void degrade(struct ai_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void degrade(struct ai_state *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->degraded, sizeof st->degraded, fmt, ap);
	va_end(ap);
	log_err("boot", "root", "DEGRADED: %s; staying in the initramfs, serving ctl only",
		st->degraded);
}

/* / is an initramfs made to hand over to a root: the kernel's rootfs
 * (ramfs, or tmpfs when no root= was given) with /etc/initrd-release (the
 * systemd convention; image/disk writes it). Neither the whole-image
 * initramfs nor a PID 1 in a container on a tmpfs ever tries to switch,
 * whatever root= the kernel was given. */
static bool on_initramfs(void)
{
	struct statfs sf;
	if (statfs("/", &sf) < 0 || (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC))
		return false;
	return access("/etc/initrd-release", F_OK) == 0;
}

/* Bounded: sysfs has no inotify, so back off from 5 ms to 250 ms until the
 * device (and its devtmpfs node, made just after its sysfs entry) is there. */
static bool wait_root(const struct boot_root *r, char *dev, size_t n)
{
	uint64_t deadline = ai_now_ms() + (uint64_t)r->wait_s * 1000;
	long delay = 5;
	for (;;) {
		if (resolve_what(r->what, dev, n) && access(dev, F_OK) == 0)
			return true;
		uint64_t now = ai_now_ms();
		if (now >= deadline)
			return false;
		long ms = delay < (long)(deadline - now) ? delay : (long)(deadline - now);
		nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L},
			  NULL);
		delay = delay * 2 > 250 ? 250 : delay * 2;
	}
}

/* "vda vda1 vda2": what the kernel has, for the error message. */
static void list_block(char *buf, size_t n)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *de;
	size_t len = 0;
	buf[0] = '\0';
	if (!d) {
		snprintf(buf, n, "/sys/class/block: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d)) && len + 1 < n) {
		if (de->d_name[0] == '.')
			continue;
		int w = snprintf(buf + len, n - len, "%s%s", len ? " " : "", de->d_name);
		if (w < 0 || (size_t)w >= n - len)
			break;
		len += (size_t)w;
	}
	closedir(d);
	if (!len)
		snprintf(buf, n, "none");
}

/* Delete what is on DFD's file system below it (the initramfs), as
 * switch_root does; mount points (another st_dev) are left alone. Takes DFD.
 * Returns how many entries could not be removed. */
static int rm_tree(int dfd, dev_t dev)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int failed = 0;
	if (!d) {
		close(dfd);
		return 1;
	}
	while ((de = readdir(d))) {
		struct stat sb;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || sb.st_dev != dev)
			continue;
		bool dir = S_ISDIR(sb.st_mode);
		if (dir) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			failed += sub < 0 ? 1 : rm_tree(sub, dev);
		}
		if (unlinkat(dirfd(d), de->d_name, dir ? AT_REMOVEDIR : 0) < 0)
			failed++;
	}
	closedir(d);
	return failed;
}

static const char *const api_mounts[] = {"/dev", "/proc", "/sys"};

/* Back out of a half-done switch: the API mounts go back where they were. */
static void unmove_api(int n)
{
	for (int i = 0; i < n; i++) {
		char p[64];
		snprintf(p, sizeof p, SYSROOT "%s", api_mounts[i]);
		if (mount(p, api_mounts[i], NULL, MS_MOVE, NULL) < 0)
			log_err("boot", api_mounts[i], "move back from %s: %s", p, strerror(errno));
	}
}

/* SYSROOT becomes /. 0, or -1 with the reason in WHY (nothing changed). */
static int switch_root(char *why, size_t n)
{
	int moved = 0;
	for (; moved < (int)AI_ARRAY_SIZE(api_mounts); moved++) {
		char p[64];
		snprintf(p, sizeof p, SYSROOT "%s", api_mounts[moved]);
		if (mount(api_mounts[moved], p, NULL, MS_MOVE, NULL) < 0) {
			snprintf(why, n, "move %s to %s: %s", api_mounts[moved], p, strerror(errno));
			unmove_api(moved);
			return -1;
		}
	}
	struct stat rootst;
	int old = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (old < 0 || fstat(old, &rootst) < 0) {
		snprintf(why, n, "open the initramfs root: %s", strerror(errno));
		if (old >= 0)
			close(old);
		unmove_api(moved);
		return -1;
	}
	if (chdir(SYSROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0) {
		snprintf(why, n, "move %s to /: %s", SYSROOT, strerror(errno));
		if (chdir("/") < 0) {
			/* cwd stays in SYSROOT; nothing depends on it */
		}
		close(old);
		unmove_api(moved);
		return -1;
	}
	if (chroot(".") < 0 || chdir("/") < 0) {
		/* The root is mounted over /, but this process cannot enter it:
		 * nothing to undo that would work better. Say so; the caller goes
		 * on from here. */
		log_err("boot", "root", "chroot into the new root: %s", strerror(errno));
	}
	/* The initramfs is RAM that nothing will use again. */
	int left = rm_tree(old, rootst.st_dev);
	if (left)
		log_warn("boot", "root", "%d initramfs entries could not be freed", left);
	return 0;
}

/* The first stage; returns only when it did not execve a new init: false
 * when there was none to run (no root=, or this is the root already), true
 * when it ran and stays (st->degraded says why) or carries on in the new
 * root. See boot.h. */
static bool stage1(struct ai_state *st)
{
	char cmdline[4096];
	struct boot_root r;
	char dev[280], why[256];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t len = fd < 0 ? -1 : read(fd, cmdline, sizeof cmdline - 1);
	if (fd >= 0)
		close(fd);
	if (len < 0) {
		log_err("boot", "/proc/cmdline", "read: %s: a root= there is ignored", strerror(errno));
		return false;
	}
	cmdline[len] = '\0';
	int pr = boot_parse_root(cmdline, &r);
	if (pr == 0 || !on_initramfs())
		return false; /* no root=, or this is the second stage already */

	uint64_t t0 = ai_now_ms();
	early_mount(&early_mounts[1]); /* /sys: find the device */
	early_mount(&early_mounts[2]); /* /dev: its node */
	console_open(st);
	if (pr < 0) {
		degrade(st, "kernel command line root=%s: not usable (root= takes PARTLABEL=NAME, "
			    "LABEL=NAME or /dev/NAME; rootfstype= a name; rootwait= 1..%d seconds)",
			r.what, BOOT_ROOT_WAIT_MAX_S);
		return true;
	}
	log_info("boot", "root", "first stage: root=%s (%s), waiting up to %u s", r.what,
		 r.fstype[0] ? r.fstype : "erofs/squashfs/ext4", r.wait_s);
	struct deptab dt;
	if (dep_open(&dt)) {
		load_platform_modules(&dt); /* the disk's driver: the initramfs's modules-load.d */
		if (r.fstype[0]) {
			dep_load(&dt, r.fstype, true); /* built in (ext4) is fine */
		} else {
			dep_load(&dt, "erofs", true);
			dep_load(&dt, "squashfs", true);
		}
		dep_close(&dt);
	}
	if (!wait_root(&r, dev, sizeof dev)) {
		char have[160];
		list_block(have, sizeof have);
		degrade(st, "root=%s: no such block device within %u s (block devices: %s)", r.what,
			r.wait_s, have);
		return true;
	}
	if (mkdir(SYSROOT, 0755) < 0 && errno != EEXIST) {
		degrade(st, "mkdir " SYSROOT ": %s", strerror(errno));
		return true;
	}
	static const char *const guess[] = {"erofs", "squashfs", "ext4"};
	const char *type = NULL;
	int err = 0;
	unsigned long flags = r.rw ? 0 : MS_RDONLY;
	for (size_t i = 0; i < (r.fstype[0] ? 1 : AI_ARRAY_SIZE(guess)) && !type; i++) {
		const char *t = r.fstype[0] ? r.fstype : guess[i];
		if (mount(dev, SYSROOT, t, flags, NULL) == 0)
			type = t;
		else if (!err || errno != EINVAL)
			err = errno; /* EINVAL: not this type; keep a better reason */
	}
	if (!type) {
		degrade(st, "root=%s: mount %s (%s) on " SYSROOT ": %s", r.what, dev,
			r.fstype[0] ? r.fstype : "erofs, squashfs, ext4", strerror(err));
		return true;
	}
	if (access(SYSROOT "/sbin/init", X_OK) < 0) {
		int e = errno;
		if (umount2(SYSROOT, 0) < 0)
			log_warn("boot", SYSROOT, "umount: %s", strerror(errno));
		degrade(st, "root=%s: %s (%s) has no executable /sbin/init: %s", r.what, dev, type,
			strerror(e));
		return true;
	}
	if (switch_root(why, sizeof why) < 0) {
		if (umount2(SYSROOT, 0) < 0)
			log_warn("boot", SYSROOT, "umount: %s", strerror(errno));
		degrade(st, "root=%s: switching to %s: %s", r.what, dev, why);
		return true;
	}
	log_info("boot", "root", "%s (%s) mounted %s as / in %llu ms; initramfs freed; "
		 "execve /sbin/init", dev, type, r.rw ? "read-write" : "read-only",
		 (unsigned long long)(ai_now_ms() - t0));
	char *const argv[] = {"/sbin/init", NULL};
	execv(argv[0], argv);
	/* The new root is / already; this binary can boot it just as well. */
	log_err("boot", "root", "execve /sbin/init: %s; this init boots the new root itself",
		strerror(errno));
	return true;
}

/* -1 error, 0 holds something, 1 all zero. */
static int device_empty(const char *dev)
{
	static unsigned char buf[EMPTY_PROBE];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = pread(fd, buf, sizeof buf, 0);
	close(fd);
	if (r <= 0)
		return -1;
	for (ssize_t i = 0; i < r; i++)
		if (buf[i])
			return 0;
	return 1;
}

/* mkfs.TYPE [-L LABEL] DEV, waited for: boot, before the loop runs. */
static int format_device(const char *dev, const char *type, const char *label)
{
	char prog[64];
	snprintf(prog, sizeof prog, "mkfs.%s", type);
	const char *argv[8];
	int i = 0;
	argv[i++] = prog;
	if (!strncmp(type, "ext", 3)) {
		argv[i++] = "-q";
		argv[i++] = "-F";
	}
	if (label && *label) {
		argv[i++] = "-L";
		argv[i++] = label;
	}
	argv[i++] = dev;
	argv[i] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(prog, (char *const *)argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT : -EIO;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* "ro,noatime,commit=5": flags we know become MS_*, the rest is fs data. */
static unsigned long mount_options(const char *opts, char *data, size_t n)
{
	static const struct { const char *name; unsigned long flag; } known[] = {
		{"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV},
		{"noexec", MS_NOEXEC}, {"noatime", MS_NOATIME}, {"nodiratime", MS_NODIRATIME},
		{"relatime", MS_RELATIME}, {"sync", MS_SYNCHRONOUS}, {"dirsync", MS_DIRSYNC},
		{"rw", 0}, {"defaults", 0},
	};
	unsigned long flags = 0;
	char buf[256], *save = NULL;
	size_t len = 0;
	data[0] = '\0';
	if (!opts)
		return 0;
	snprintf(buf, sizeof buf, "%s", opts);
	for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		size_t k;
		for (k = 0; k < AI_ARRAY_SIZE(known); k++)
			if (!strcmp(o, known[k].name))
				break;
		if (k < AI_ARRAY_SIZE(known)) {
			flags |= known[k].flag;
			continue;
		}
		int w = snprintf(data + len, n - len, "%s%s", len ? "," : "", o);
		if (w > 0 && (size_t)w < n - len)
			len += (size_t)w;
	}
	return flags;
}

static void apply_mount(const struct cfg_fsmount *m)
{
	char dev[280], data[256];
	const char *type = m->type ? m->type : "ext4";
	const char *label = !strncmp(m->what, "LABEL=", 6) ? m->what + 6 : NULL;
	bool pseudo = m->what[0] != '/' && strchr(m->what, '=') == NULL;
	uint64_t t0 = ai_now_ms();

	if (pseudo) {
		/* tmpfs, a bind source name...: mounted as given */
		snprintf(dev, sizeof dev, "%s", m->what);
	} else {
		/* The disk driver probes on module load, but be patient with a
		 * slow device: bounded, at boot only. */
		while (!resolve_what(m->what, dev, sizeof dev)) {
			if (ai_now_ms() - t0 > DEV_WAIT_MS) {
				log_err("boot", m->where, "mount: %s: no such device; not mounted", m->what);
				return;
			}
			nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
		}
		if (m->format_if_empty) {
			int empty = device_empty(dev);
			if (empty < 0) {
				log_err("boot", m->where, "mount: %s: cannot read: %s; not mounted", dev,
					strerror(errno));
				return;
			}
			if (empty) {
				log_info("boot", m->where, "%s is empty: making a %s file system", dev, type);
				int r = format_device(dev, type, label);
				if (r < 0) {
					log_err("boot", m->where, "mkfs.%s %s: %s; not mounted", type, dev,
						r == -ENOENT ? "mkfs not in the image" : strerror(-r));
					return;
				}
			}
		}
	}
	int r = mkdir_p(m->where, 0755);
	if (r < 0) {
		log_err("boot", m->where, "mkdir: %s; not mounted", strerror(-r));
		return;
	}
	unsigned long flags = mount_options(m->options, data, sizeof data);
	if (mount(dev, m->where, type, flags, data[0] ? data : NULL) < 0) {
		log_err("boot", m->where, "mount %s (%s): %s", dev, type, strerror(errno));
		return;
	}
	log_info("boot", m->where, "mounted %s (%s) in %llu ms", dev, type,
		 (unsigned long long)(ai_now_ms() - t0));
}

/* ---- appliance.network.interfaces, appliance.hosts ----------------------- */

/* "192.168.50.10/24" (prefix default 24) and an optional gateway. */
static int parse_iface(const struct cfg_iface *f, struct netns_addr *a)
{
	char buf[64];
	memset(a, 0, sizeof *a);
	snprintf(buf, sizeof buf, "%s", f->address);
	char *slash = strchr(buf, '/');
	a->prefix = 24;
	if (slash) {
		*slash = '\0';
		char *end;
		long p = strtol(slash + 1, &end, 10);
		if (*end || p < 0 || p > 32)
			return -EINVAL;
		a->prefix = (int)p;
	}
	if (inet_pton(AF_INET, buf, &a->addr) != 1)
		return -EINVAL;
	if (f->gateway && inet_pton(AF_INET, f->gateway, &a->gw) != 1)
		return -EINVAL;
	return 0;
}

static void apply_interfaces(const struct ai_config *cfg)
{
	for (int i = 0; i < cfg->app.nifaces; i++) {
		const struct cfg_iface *f = &cfg->app.ifaces[i];
		const char *name = f->name ? f->name : "eth0";
		struct netns_addr a;
		struct ai_err e = {0};
		if (!f->address) {
			log_warn("boot", name, "no address configured; left down");
			continue;
		}
		if (parse_iface(f, &a) < 0) {
			log_err("boot", name, "bad address \"%s\" or gateway \"%s\"; left down",
				f->address, f->gateway ? f->gateway : "");
			continue;
		}
		/* virtio_net (a platform module) probes on load; a NIC that is
		 * slower to appear gets a short, bounded wait, at boot only. */
		for (uint64_t t0 = ai_now_ms(); !if_nametoindex(name) && ai_now_ms() - t0 < DEV_WAIT_MS;)
			nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
		if (netns_iface_config(name, &a, &e) < 0)
			log_error(&e);
		else
			log_info("boot", name, "up, %s%s%s", f->address, f->gateway ? " via " : "",
				 f->gateway ? f->gateway : "");
	}
}

/* /etc/hosts: localhost, our hostname, and appliance.hosts (an entry may be
 * ADDR:PORT for remote health; the port is not for this file). On an
 * initramfs root it is written at boot; a read-only root partition carries
 * the same text, written by image/build from the same config: then it is
 * only compared, and a difference (a ${VAR} the command line changed) is
 * reported. */
static void write_hosts(const struct ai_config *cfg)
{
	char want[8192], have[8192];
	size_t len = 0;
	int w = snprintf(want, sizeof want, "127.0.0.1\tlocalhost\n::1\tlocalhost\n");
	len = (size_t)w;
	if (cfg->app.hostname) {
		w = snprintf(want + len, sizeof want - len, "127.0.1.1\t%s\n", cfg->app.hostname);
		len = w > 0 && (size_t)w < sizeof want - len ? len + (size_t)w : sizeof want;
	}
	for (int i = 0; i < cfg->app.hosts.n && len < sizeof want; i++) {
		const struct cfg_kv *kv = &cfg->app.hosts.v[i];
		if (!kv->value)
			continue;
		w = snprintf(want + len, sizeof want - len, "%.*s\t%s\n",
			     (int)strcspn(kv->value, ":"), kv->value, kv->key);
		len = w > 0 && (size_t)w < sizeof want - len ? len + (size_t)w : sizeof want;
	}
	if (len >= sizeof want) {
		log_err("boot", "/etc/hosts", "more than %zu bytes of hosts; not written", sizeof want);
		return;
	}
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, have, sizeof have);
		close(fd);
		if (n == (ssize_t)len && !memcmp(have, want, len))
			return; /* the image's is right */
	}
	fd = open("/etc/hosts", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EROFS)
			log_warn("boot", "/etc/hosts", "read-only root and its /etc/hosts differs from "
				 "the config's hosts (hostname or appliance.hosts set from the kernel "
				 "command line?); the image's is used");
		else
			log_err("boot", "/etc/hosts", "open: %s", strerror(errno));
		return;
	}
	if (write(fd, want, len) != (ssize_t)len)
		log_err("boot", "/etc/hosts", "write: %s", strerror(errno));
	if (close(fd) != 0)
		log_err("boot", "/etc/hosts", "close: %s", strerror(errno));
}

void boot_apply(struct ai_state *st, const struct ai_config *cfg)
{
	(void)st;
	const char *h = cfg->app.hostname;
	if (h && *h && sethostname(h, strlen(h)) < 0)
		log_err("boot", h, "sethostname: %s", strerror(errno));
	if (cfg->app.kernel_modules.n > 0) {
		struct kmodlib k;
		bool ok = kmod_open(&k);
		uint64_t t0 = ai_now_ms();
		int n = 0;
		for (int i = 0; ok && i < cfg->app.kernel_modules.n; i++)
			n += load_module(&k, cfg->app.kernel_modules.v[i], false);
		if (ok) {
			kmod_close(&k);
			log_info("boot", "modules", "%d of %d configured modules loaded in %llu ms", n,
				 cfg->app.kernel_modules.n, (unsigned long long)(ai_now_ms() - t0));
		}
	}
	/* The NVIDIA driver makes no /dev nodes (nvidia-modprobe's job): after
	 * the modules, before any group starts. gpu.c */
	if (gpu_config_wants(cfg)) {
		struct gpu_paths gp;
		struct ai_err e = {0};
		char eb[320];
		gpu_paths_default(&gp);
		int n = gpu_make_nodes(&gp, &e);
		if (n < 0)
			log_warn("boot", "gpu", "%s; GPU groups will fail to start",
				 ai_err_str(&e, eb, sizeof eb));
		else
			log_info("boot", "gpu", "%d NVIDIA device nodes ready", n);
	}
	/* In order: a later mount may sit inside an earlier one. */
	for (int i = 0; i < cfg->app.nmounts; i++)
		apply_mount(&cfg->app.mounts[i]);
	write_hosts(cfg);
	apply_interfaces(cfg);
}

/* Reap whatever is left until none is, or the deadline passes. SIGCHLD is
 * blocked (signalfd), so sigtimedwait can wait for it. */
static bool reap_until(uint64_t deadline_ms)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		int r;
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 && errno == ECHILD)
			return true;
		uint64_t now = ai_now_ms();
		if (now >= deadline_ms)
			return false;
		struct timespec ts = {.tv_sec = (time_t)((deadline_ms - now) / 1000),
				      .tv_nsec = (long)((deadline_ms - now) % 1000) * 1000000L};
		sigtimedwait(&chld, NULL, &ts);
	}
}

/* What is still running was not ours to stop in order (orphans, strays):
 * TERM, a moment, then KILL. kill(-1) spares PID 1 itself. */
static void kill_all(void)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	if (kill(-1, SIGTERM) < 0 && errno != ESRCH)
		log_err("boot", NULL, "kill(-1, SIGTERM): %s", strerror(errno));
	if (reap_until(ai_now_ms() + 1000))
		return;
	log_warn("boot", NULL, "processes left after SIGTERM; sending SIGKILL");
	if (kill(-1, SIGKILL) < 0 && errno != ESRCH)
		log_err("boot", NULL, "kill(-1, SIGKILL): %s", strerror(errno));
	reap_until(ai_now_ms() + 1000);
}

/* Unmount in reverse mount order (children before parents). A busy disk
 * filesystem is remounted read-only instead, so its data is safe; a busy
 * pseudo filesystem is detached. / (the initramfs) stays. */
static void unmount_all(void)
{
	static char buf[32768];
	char *mp[256];
	int n = 0;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("boot", "/proc/self/mountinfo", "open: %s", strerror(errno));
		return;
	}
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = '\0';
	/* Field 5 is the mount point; "-" separates the optional fields from
	 * type and source. Octal escapes (\040) are left as they are: such
	 * mounts fail to unmount and are reported. */
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line && n < (int)AI_ARRAY_SIZE(mp);
	     line = strtok_r(NULL, "\n", &save)) {
		char *f = line;
		for (int i = 0; i < 4 && f; i++) {
			f = strchr(f, ' ');
			if (f)
				f++;
		}
		if (!f)
			continue;
		char *end = strchr(f, ' ');
		if (end)
			*end = '\0';
		if (strcmp(f, "/") != 0)
			mp[n++] = f;
	}
	for (int i = n - 1; i >= 0; i--) {
		if (umount2(mp[i], 0) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			continue; /* already gone with its parent */
		int err = errno;
		if (mount(NULL, mp[i], NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
			continue;
		if (umount2(mp[i], MNT_DETACH) < 0)
			log_warn("boot", mp[i], "umount: %s", strerror(err));
	}
}

static void console_last_line(struct ai_state *st, const char *what)
{
	char line[64];
	int fd = st->console_fd >= 0 ? st->console_fd : 2;
	int n = snprintf(line, sizeof line, "ainit: %s\n", what);
	/* This line must arrive: blocking write, then wait for the UART. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (write(fd, line, (size_t)n) < 0) {
		/* nothing else to tell it to */
	}
	tcdrain(fd);
}

void boot_final(struct ai_state *st)
{
	bool reboot_ = st->final == FINAL_REBOOT;
	const char *what = reboot_ ? "reboot" : "poweroff";
	log_info("boot", NULL, "stopping what is left, syncing, unmounting, then %s", what);
	vport_drain(st, 1000); /* the host's answer to `ctl poweroff` */
	kill_all();
	sync();
	unmount_all();
	sync();
	console_last_line(st, what);
	if (reboot(reboot_ ? RB_AUTOBOOT : RB_POWER_OFF) < 0)
		log_err("boot", NULL, "reboot(%s): %s", what, strerror(errno));
	/* reboot(2) failed (not PID 1 in the initial namespaces?). PID 1 must
	 * not exit: wait forever, quietly. */
	sigset_t none;
	sigfillset(&none);
	sigprocmask(SIG_BLOCK, &none, NULL);
	for (;;)
		pause();
}
