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
#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

static void early_mount(const struct early_mount *m)
{
	if (mkdir(m->where, m->mode) < 0 && errno != EEXIST) {
		log_err("boot", m->where, "mkdir: %s", strerror(errno));
		return;
	}
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

/* The image's platform modules (control channel, pvpanic): one name per
 * line in MODULES_LOAD_DIR/ *.conf, '#' comments, as modules-load.d(5).
 * Loaded before the config so that a broken config still leaves a
 * reachable init. Absent ones are silent: the machine may lack the device. */
static void load_platform_modules(void)
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

void boot_early(struct ai_state *st)
{
	st->console_fd = -1;
	umask(022);
	/* The kernel gives init no PATH; agents' commands are looked up in it. */
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0);
	std_fds();
	for (size_t i = 0; i < AI_ARRAY_SIZE(early_mounts); i++)
		early_mount(&early_mounts[i]);
	console_open(st);
	dev_links();
	cgroup_enable_all();
	loopback_up();
	load_platform_modules();
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
 * ADDR:PORT for remote health; the port is not for this file). The root is
 * the initramfs, writable at boot. */
static void write_hosts(const struct ai_config *cfg)
{
	FILE *f = fopen("/etc/hosts", "we");
	if (!f) {
		log_err("boot", "/etc/hosts", "open: %s", strerror(errno));
		return;
	}
	fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost\n");
	if (cfg->app.hostname)
		fprintf(f, "127.0.1.1\t%s\n", cfg->app.hostname);
	for (int i = 0; i < cfg->app.hosts.n; i++) {
		const struct cfg_kv *kv = &cfg->app.hosts.v[i];
		if (!kv->value)
			continue;
		fprintf(f, "%.*s\t%s\n", (int)strcspn(kv->value, ":"), kv->value, kv->key);
	}
	if (fclose(f) != 0)
		log_err("boot", "/etc/hosts", "write: %s", strerror(errno));
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
