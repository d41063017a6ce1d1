#include "sandbox.h"
#include "spawn.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cgroup.h"
#include "config.h"
#include "gpu.h"
#include "log.h"
#include "netns.h"
#include "seccomp.h"
#include "util.h"

extern char **environ;

#define MAX_GROUPS_PER_USER 64
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a holder or agent child sends up its status pipe. */
struct sbx_msg {
	int ok;
	struct ai_err e;
};

static pid_t clone3_raw(struct clone_args *a)
{
	return (pid_t)syscall(SYS_clone3, a, sizeof *a);
}

/* In a child: report *e up the pipe and end. Never returns. */
static void __attribute__((noreturn)) child_fail(int fd, const struct ai_err *e, int code)
{
	struct sbx_msg m = {.ok = 0, .e = *e};
	if (write(fd, &m, sizeof m) < 0) {
		/* nothing left to tell it to */
	}
	_exit(code);
}

/* Put "group G: [agent A: ]" in front of a message set by another module. */
static void err_prefix(struct ai_err *e, const char *group, const char *agent)
{
	char m[sizeof e->msg];
	memcpy(m, e->msg, sizeof m);
	m[sizeof m - 1] = 0;
	int n = agent ? snprintf(e->msg, sizeof e->msg, "group %s: agent %s: ", group, agent)
		      : snprintf(e->msg, sizeof e->msg, "group %s: ", group);
	if (n < 0 || n >= (int)sizeof e->msg - 1)
		return;
	size_t l = strnlen(m, sizeof e->msg - (size_t)n - 1);
	memcpy(e->msg + n, m, l);
	e->msg[(size_t)n + l] = 0;
}

/* --- users ------------------------------------------------------------ */

/* Next ':'-separated field of a line, NUL-terminated in place. */
static char *field(char **p)
{
	char *s = *p, *c;
	if (!s)
		return NULL;
	c = strchr(s, ':');
	if (c) {
		*c = 0;
		*p = c + 1;
	} else {
		*p = NULL;
	}
	return s;
}

int sbx_lookup_user(const char *passwd, const char *group, const char *name, uid_t *uid,
		    gid_t *gid, gid_t *groups, int *ngroups, char *home, size_t homelen)
{
	char who[128], line[1024];
	bool found = false;
	int cap = *ngroups, ng = 0;
	const char *colon = strchr(name, ':');

	snprintf(home, homelen, "/");
	if (colon || ai_all_digits(name)) { /* "uid" or "uid:gid" */
		char u[32], g[32] = "";
		snprintf(u, sizeof u, "%.*s", (int)(colon ? colon - name : (long)strlen(name)), name);
		if (colon)
			snprintf(g, sizeof g, "%s", colon + 1);
		if (!ai_all_digits(u) || (colon && !ai_all_digits(g)))
			return -EINVAL;
		*uid = (uid_t)strtoul(u, NULL, 10);
		*gid = colon ? (gid_t)strtoul(g, NULL, 10) : (gid_t)*uid;
		*ngroups = 0;
		if (cap > 0)
			groups[0] = *gid, *ngroups = 1;
		return 0;
	}
	snprintf(who, sizeof who, "%s", name);
	for (const char *s = passwd; s && *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), s);
		s = nl ? nl + 1 : NULL;
		char *p = line;
		char *n = field(&p);
		if (!n || strcmp(n, who))
			continue;
		field(&p); /* password */
		char *u = field(&p), *g = field(&p);
		field(&p); /* gecos */
		char *h = field(&p);
		if (!u || !g || !ai_all_digits(u) || !ai_all_digits(g))
			return -EINVAL;
		*uid = (uid_t)strtoul(u, NULL, 10);
		*gid = (gid_t)strtoul(g, NULL, 10);
		if (h && *h)
			snprintf(home, homelen, "%s", h);
		found = true;
		break;
	}
	if (!found)
		return -ENOENT;
	if (cap > 0)
		groups[ng++] = *gid;
	for (const char *s = group; s && *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), s);
		s = nl ? nl + 1 : NULL;
		char *p = line;
		field(&p); /* name */
		field(&p); /* password */
		char *g = field(&p), *mem = p;
		if (!g || !mem || !ai_all_digits(g))
			continue;
		for (char *m = strtok(mem, ","); m; m = strtok(NULL, ",")) {
			if (strcmp(m, who))
				continue;
			gid_t x = (gid_t)strtoul(g, NULL, 10);
			bool dup = false;
			for (int i = 0; i < ng; i++)
				dup |= groups[i] == x;
			if (!dup && ng < cap)
				groups[ng++] = x;
		}
	}
	*ngroups = ng;
	return 0;
}

/* Read ROOT/REL whole into a malloc'd string ("" when missing). */
char *sbx_read_root_file(const char *root, const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s%s", strcmp(root, "/") ? root : "", rel);
	AI_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	if (!b)
		return NULL;
	b[0] = 0;
	if (fd < 0)
		return b;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= (1u << 22))
				break;
			char *nb = realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb, cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	b[n] = 0;
	return b;
}

/* --- the holder: builds the root, then reaps ------------------------- */

static int mnt(const char *src, const char *tgt, const char *type, unsigned long fl,
	       const char *data, const char *group, struct ai_err *e)
{
	if (mount(src, tgt, type, fl, data) < 0)
		return ai_fail(e, "sandbox", "mount", errno, "group %s: %s on /%s", group,
			       type ? type : src, tgt);
	return 0;
}

/* Bind host path SRC onto TGT (relative to the new root) with one
 * open_tree+move_mount, read-only from the start when RO. */
static int bind_into(const char *src, const char *tgt, bool ro, const char *group,
		     struct ai_err *e)
{
	AI_AUTOCLOSE int t = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (t < 0)
		return ai_fail(e, "sandbox", "open_tree", errno, "group %s: volume %s", group, src);
	if (ro) {
		struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
		if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
			return ai_fail(e, "sandbox", "mount_setattr", errno, "group %s: volume %s read-only",
				       group, src);
	}
	if (move_mount(t, "", AT_FDCWD, tgt, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return ai_fail(e, "sandbox", "move_mount", errno, "group %s: volume %s on /%s", group,
			       src, tgt);
	return 0;
}

/* mkdir -p for a path relative to the new root (volume targets in tmpfs). */
static int mkdir_p(const char *rel)
{
	char b[PATH_MAX];
	snprintf(b, sizeof b, "%s", rel);
	for (char *p = b + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(b, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(b, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

struct devnode {
	const char *name;
	unsigned maj, min;
};

static const struct devnode dev_minimal[] = {
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
	{"tty", 5, 0},
};

static int build_dev(const struct sbx_group *s, const struct cfg_group *g,
		     const char *const *extra, struct ai_err *e)
{
	static const char *const links[][2] = {
		{"/proc/self/fd", "dev/fd"},     {"/proc/self/fd/0", "dev/stdin"},
		{"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
		{"pts/ptmx", "dev/ptmx"},        {"/proc/kcore", "dev/core"},
	};
	int r;
	/* Not nodev: the nodes below must work. Not noexec either: some
	 * programs map /dev/shm executable. */
	if ((r = mnt("tmpfs", "dev", "tmpfs", MS_NOSUID, "mode=755,size=65536k", s->name, e)) < 0)
		return r;
	for (size_t i = 0; i < AI_ARRAY_SIZE(dev_minimal); i++) {
		char p[64];
		snprintf(p, sizeof p, "dev/%s", dev_minimal[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(dev_minimal[i].maj, dev_minimal[i].min)) < 0)
			return ai_fail(e, "sandbox", "mknod", errno, "group %s: /%s", s->name, p);
	}
	if (mkdir("dev/pts", 0755) < 0 || mkdir("dev/shm", 01777) < 0)
		return ai_fail(e, "sandbox", "mkdir", errno, "group %s: /dev/pts, /dev/shm", s->name);
	if (chmod("dev/shm", 01777) < 0)
		return ai_fail(e, "sandbox", "chmod", errno, "group %s: /dev/shm", s->name);
	if ((r = mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		     "newinstance,ptmxmode=0666,mode=0620,gid=5", s->name, e)) < 0)
		return r;
	for (size_t i = 0; i < AI_ARRAY_SIZE(links); i++)
		if (i != 5 && symlink(links[i][0], links[i][1]) < 0)
			return ai_fail(e, "sandbox", "symlink", errno, "group %s: /%s", s->name,
				       links[i][1]);
	/* Granted devices: the same node as on the host. */
	for (int pass = 0; pass < 2; pass++) {
		const char *const *v = pass ? extra : g->devices.v;
		for (int i = 0; v && v[i]; i++) {
			struct stat sb;
			const char *host = v[i];
			const char *base = strncmp(host, "/dev/", 5) ? strrchr(host, '/') : host + 4;
			char p[PATH_MAX];
			if (stat(host, &sb) < 0)
				return ai_fail(e, "sandbox", "stat", errno, "group %s: device %s",
					       s->name, host);
			if (!S_ISCHR(sb.st_mode) && !S_ISBLK(sb.st_mode))
				return ai_fail(e, "sandbox", "stat", ENODEV,
					       "group %s: device %s is not a device node", s->name, host);
			snprintf(p, sizeof p, "dev%s", base ? base : "/?");
			char *slash = strrchr(p, '/');
			if (slash && slash != p + 3) {
				*slash = 0;
				mkdir_p(p);
				*slash = '/';
			}
			if (mknod(p, sb.st_mode & (S_IFMT | 07777), sb.st_rdev) < 0 && errno != EEXIST)
				return ai_fail(e, "sandbox", "mknod", errno, "group %s: %s", s->name, host);
		}
	}
	return 0;
}

const char *sbx_volume_source(const struct ai_config *c, const struct cfg_mount *m,
			      const char *volumes_dir, const char *state_dir, char *buf, size_t n)
{
	if (!m->named)
		return m->source;
	if (c->app.data_dir)
		snprintf(buf, n, "%s/%s", c->app.data_dir, m->source);
	else if (volumes_dir)
		snprintf(buf, n, "%s/%s", volumes_dir, m->source);
	else
		snprintf(buf, n, "%s/volumes/%s", state_dir ? state_dir : "/var/lib/ainit", m->source);
	return buf;
}

static int build_root(const struct sbx_group *s, const struct sbx_opts *o, struct ai_err *e)
{
	const struct cfg_group *g = &s->cfg->groups[s->gi];
	int r;

	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return ai_fail(e, "sandbox", "mount(MS_PRIVATE)", errno, "group %s: /", s->name);

	/* The group root: one non-recursive clone of the appliance root (no
	 * host submounts come along), read-only before anyone can see it. */
	AI_AUTOCLOSE int t = open_tree(AT_FDCWD, s->root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t < 0)
		return ai_fail(e, "sandbox", "open_tree", errno, "group %s: root %s", s->name, s->root);
	struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					    (g->read_only_root ? MOUNT_ATTR_RDONLY : 0)};
	if (mount_setattr(t, "", AT_EMPTY_PATH, &ma, sizeof ma) < 0)
		return ai_fail(e, "sandbox", "mount_setattr", errno, "group %s: root read-only",
			       s->name);
	if (move_mount(t, "", AT_FDCWD, s->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return ai_fail(e, "sandbox", "move_mount", errno, "group %s: root %s", s->name, s->root);
	/* From here on every path is relative to the new root (cwd): for
	 * root "/" an absolute path would still find the old one. */
	if (fchdir(t) < 0)
		return ai_fail(e, "sandbox", "fchdir", errno, "group %s: root", s->name);

	if ((r = mnt("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", s->name, e)) < 0 ||
	    (r = mnt("tmpfs", "run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755", s->name, e)) < 0)
		return r;
	if ((r = build_dev(s, g, o->extra_devices, e)) < 0)
		return r;
	if ((r = mnt("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL,
		     s->name, e)) < 0 ||
	    (r = mnt("sysfs", "sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL,
		     s->name, e)) < 0)
		return r;

	for (int i = 0; i < g->nmounts; i++) {
		const struct cfg_mount *m = &g->mounts[i];
		char src[PATH_MAX];
		const char *sp = sbx_volume_source(s->cfg, m, o->volumes_dir, o->state_dir, src, sizeof src);
		const char *tgt = m->target;
		struct stat sb;
		while (*tgt == '/')
			tgt++;
		if (m->named && stat(sp, &sb) < 0 && errno == ENOENT) {
			/* Named volumes are ours to make, on first use. */
			if (mkdir_p(sp) < 0)
				return ai_fail(e, "sandbox", "mkdir", errno, "group %s: volume %s: %s",
					       s->name, m->source, sp);
			/* ... owned by the group's user, who writes there (redis --dir /data
			 * as user agent); an existing volume's owner is left alone. */
			if (g->user && strcmp(g->user, "root")) {
				uid_t vu;
				gid_t vg, vgs[1];
				int nvg = 1;
				char home[PATH_MAX];
				if ((r = sbx_resolve_user(s, "volume", g->user, &vu, &vg, vgs, &nvg, home,
							  sizeof home, e)) < 0)
					return r;
				if (chown(sp, vu, vg) < 0)
					return ai_fail(e, "sandbox", "chown", errno,
						       "group %s: volume %s: %s to %s", s->name,
						       m->source, sp, g->user);
			}
		}
		if (stat(sp, &sb) < 0)
			return ai_fail(e, "sandbox", "stat", errno, "group %s: volume %s: %s does not exist",
				       s->name, m->source, sp);
		if (!*tgt)
			return ai_fail(e, "sandbox", "volume", EINVAL, "group %s: volume %s: target is /",
				       s->name, m->source);
		if (access(tgt, F_OK) < 0) {
			if (!S_ISDIR(sb.st_mode)) {
				AI_AUTOCLOSE int fd = open(tgt, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
				if (fd < 0)
					return ai_fail(e, "sandbox", "create", errno,
						       "group %s: volume %s: target %s is missing in the group root",
						       s->name, m->source, m->target);
			} else if ((r = mkdir_p(tgt)) < 0)
				return ai_fail(e, "sandbox", "mkdir", -r,
					       "group %s: volume %s: target %s is missing in the group root",
					       s->name, m->source, m->target);
		}
		if ((r = bind_into(sp, tgt, m->ro, s->name, e)) < 0)
			return r;
	}
	/* The supervisor's notify sockets (probe.c: STATE/notify/N.sock) on
	 * their own path, so that sd_notify agents reach them from inside. */
	if (o->state_dir) {
		char nd[PATH_MAX];
		struct stat sb;
		snprintf(nd, sizeof nd, "%s/notify", o->state_dir);
		if (nd[0] == '/' && stat(nd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (mkdir_p(nd + 1) < 0 || bind_into(nd, nd + 1, false, s->name, e) < 0)
				log_warn("sandbox", s->name,
					 "notify sockets %s not reachable inside (the root is read-only there): "
					 "notify health checks of this group will fail", nd);
		}
	}
	/* gpu: the driver's libraries, read-only on their own path (gpu.c) */
	for (int i = 0; s->gpu && i < s->gpu->nlibs; i++)
		if ((r = bind_into(s->gpu->libs[i], s->gpu->libs[i] + 1, true, s->name, e)) < 0)
			return r;

	/* pivot_root(".", "."): the old root lands on top of the new one and
	 * is detached at once; nothing of the host stays reachable. */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		/* The initramfs (rootfs) cannot be pivoted away from: our tree
		 * already sits on top of it at "/", so chroot into it (agents
		 * have no CAP_SYS_CHROOT to leave it). */
		/* (6.1 reports ELOOP there: the clone sits on the rootfs mount
		 * it was cloned from.) */
		if ((errno != EINVAL && errno != ELOOP) || chroot(".") < 0)
			return ai_fail(e, "sandbox", "pivot_root", errno, "group %s", s->name);
	} else if (umount2(".", MNT_DETACH) < 0) {
		return ai_fail(e, "sandbox", "umount2(old root)", errno, "group %s", s->name);
	}
	if (chdir("/") < 0)
		return ai_fail(e, "sandbox", "chdir", errno, "group %s: /", s->name);
	return 0;
}

/* The holder could not build the sandbox: report, then wait to be killed
 * (sbx_teardown). Exiting would take the pid namespace down at once, and
 * with it an agent child that waits for this very report (ready_in_child). */
static void __attribute__((noreturn)) holder_fail(int fd, const struct ai_err *e)
{
	struct sbx_msg m = {.ok = 0, .e = *e};
	if (write(fd, &m, sizeof m) < 0)
		_exit(125);
	for (;;)
		pause();
}

static void __attribute__((noreturn)) holder_main(const struct sbx_group *s,
						  const struct sbx_opts *o, int wfd, int gofd,
						  const struct netns_addr *na)
{
	const struct cfg_group *g = &s->cfg->groups[s->gi];
	struct ai_err e = {0};
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* The holder dies with its supervisor, and the namespace with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		ai_fail(&e, "sandbox", "prctl(PDEATHSIG)", errno, "group %s", s->name);
		holder_fail(wfd, &e);
	}
	prctl(PR_SET_NAME, "ainit-holder", 0, 0, 0); /* what `ps` shows inside */
	if (unshare(s->nsflags) < 0) {
		ai_fail(&e, "sandbox", "unshare", errno, "group %s: namespaces", s->name);
		holder_fail(wfd, &e);
	}
	/* Born in the group's cgroup, whose namespace root it now is; then
	 * into its leaf, so agents see themselves at /agent.NAME. */
	if (s->cgfd >= 0) {
		int pf = openat(s->cgfd, "holder/cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (pf < 0 || write(pf, "0", 1) != 1) {
			ai_fail(&e, "sandbox", "cgroup.procs", errno, "group %s: holder leaf", s->name);
			holder_fail(wfd, &e);
		}
		close(pf);
	}
	umask(0);
	if (build_root(s, o, &e) < 0)
		holder_fail(wfd, &e);
	umask(022);
	if (sethostname(s->name, strlen(s->name)) < 0) {
		ai_fail(&e, "sandbox", "sethostname", errno, "group %s", s->name);
		holder_fail(wfd, &e);
	}
	if (g->network != NET_HOST && netns_lo_up(&e) < 0)
		holder_fail(wfd, &e);
	struct sbx_msg ok = {.ok = 1};
	if (g->network == NET_BRIDGE) {
		char go;
		ssize_t n;
		/* Root built, namespace there: the supervisor may make the veth. */
		if (write(wfd, &ok, sizeof ok) != sizeof ok)
			_exit(125);
		do
			n = read(gofd, &go, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			ai_fail(&e, "sandbox", "veth", EPIPE, "group %s: no veth from the supervisor", s->name);
			holder_fail(wfd, &e);
		}
		if (netns_eth0_config(na, &e) < 0)
			holder_fail(wfd, &e);
	}
	if (write(wfd, &ok, sizeof ok) != sizeof ok)
		_exit(125);
	close(wfd);
	if (gofd >= 0)
		close(gofd);
	/* Drop every fd inherited from the supervisor but the orphan counter. */
	int ofd = s->orphfd;
	if (ofd >= 0) {
		if (ofd > 0)
			close_range(0, (unsigned)ofd - 1, 0);
		close_range((unsigned)ofd + 1, ~0U, 0);
	} else {
		close_range(0, ~0U, 0);
	}

	sigset_t w;
	sigemptyset(&w);
	sigaddset(&w, SIGCHLD);
	sigaddset(&w, SIGTERM);
	sigaddset(&w, SIGINT);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&w, &si);
		if (sig == SIGTERM || sig == SIGINT)
			_exit(0);
		uint64_t n = 0;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			n++;
		if (n && ofd >= 0 && write(ofd, &n, sizeof n) < 0) {
			/* the supervisor is gone; we are about to be killed */
		}
	}
}

/* --- prepare / spawn / stop ------------------------------------------ */

int sbx_prepare(struct sbx_group *s, const struct ai_config *cfg, int gi,
		const struct sbx_opts *o, struct ai_err *e)
{
	const struct cfg_group *g = &cfg->groups[gi];
	struct netns_addr na = {0};
	int r;
	int st[2] = {-1, -1}, go[2] = {-1, -1};
	pid_t pid = -1;
	int pidfd = -1;

	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->gi = gi;
	s->name = g->name;
	s->holder_pidfd = s->cgfd = s->own_pidns = s->orphfd = s->readyfd = -1;
	snprintf(s->root, sizeof s->root, "%s", o->root ? o->root : "/");

	if (g->runtime != RT_NATIVE)
		return ai_fail(e, "sandbox", "prepare", EINVAL,
			       "group %s: runtime is not native (runc groups are run by oci.c)", g->name);
	if ((r = caps_parse(g->caps.v, g->caps.n, &s->caps, e)) < 0) {
		err_prefix(e, g->name, NULL);
		return r;
	}
	if ((r = scf_prog(g->seccomp, o->seccomp_dirs, &s->seccomp, &s->seccomp_owned,
			  &s->unconfined, e)) < 0) {
		err_prefix(e, g->name, NULL);
		return r;
	}
	if (g->network == NET_BRIDGE) {
		if (!cfg->app.bridge_name || !cfg->app.bridge_subnet) {
			r = ai_fail(e, "sandbox", "network", EINVAL,
				    "group %s: network: bridge needs appliance.network.bridge {name, subnet}",
				    g->name);
			goto fail;
		}
		if (netns_subnet_addr(cfg->app.bridge_subnet, gi, &na) < 0) {
			r = ai_fail(e, "sandbox", "network", EINVAL,
				    "group %s: no address for group %d in bridge subnet %s", g->name, gi,
				    cfg->app.bridge_subnet);
			goto fail;
		}
	}

	/* gpu: the plan's nodes join the group's devices (its /dev and the
	 * device program), its environment goes to every agent (gpu.c). */
	const char *devs[64 + GPU_MAX_NODES + 1];
	struct sbx_opts og;
	if ((r = gpu_plan_group(g, &s->gpu, e)) < 0)
		goto fail;
	if (s->gpu) {
		int k = 0;
		for (int i = 0; o->extra_devices && o->extra_devices[i] && k < 64; i++)
			devs[k++] = o->extra_devices[i];
		for (int i = 0; i < s->gpu->nnodes; i++)
			devs[k++] = s->gpu->nodes[i].source;
		devs[k] = NULL;
		og = *o;
		og.extra_devices = devs;
		o = &og;
	}
	s->own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (s->own_pidns < 0) {
		r = ai_fail(e, "sandbox", "open /proc/self/ns/pid", errno, "group %s", g->name);
		goto fail;
	}
	if (o->cg) {
		s->cg = o->cg;
		if ((r = s->cgfd = cg_create(o->cg, g->name, e)) < 0)
			goto fail;
		/* Processes live in leaves: the holder's, one per agent (so one
		 * agent can be killed for sure); limits sit on the group. */
		int leaf = cg_leaf(s->cgfd, "holder", g->name, e);
		if (leaf < 0) {
			r = leaf;
			goto fail;
		}
		close(leaf);
	}

	s->nsflags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
		     (g->network != NET_HOST ? CLONE_NEWNET : 0);
	s->orphfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->orphfd < 0) {
		r = ai_fail(e, "sandbox", "eventfd", errno, "group %s: orphan counter", g->name);
		goto fail;
	}
	if (pipe2(st, O_CLOEXEC) < 0 || (g->network == NET_BRIDGE && pipe2(go, O_CLOEXEC) < 0)) {
		r = ai_fail(e, "sandbox", "pipe2", errno, "group %s", g->name);
		goto fail;
	}
	struct clone_args ca = {
		/* Only the pid namespace at clone (the holder must be its PID 1);
		 * the holder unshares the rest itself, so that the costly ones
		 * (net) do not block the supervisor. */
		.flags = CLONE_PIDFD | CLONE_NEWPID | (s->cgfd >= 0 ? CLONE_INTO_CGROUP : 0),
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)(s->cgfd >= 0 ? s->cgfd : 0),
	};
	pid = clone3_raw(&ca);
	if (pid < 0) {
		r = ai_fail(e, "sandbox", "clone3", errno, "group %s: holder", g->name);
		goto fail;
	}
	if (pid == 0) {
		close(st[0]);
		if (go[1] >= 0)
			close(go[1]);
		holder_main(s, o, st[1], go[0], &na);
	}
	close(st[1]), st[1] = -1;
	if (go[0] >= 0)
		close(go[0]), go[0] = -1;
	s->holder = pid;
	s->holder_pidfd = pidfd;
	/* Limits and the device program while the holder builds the root
	 * (another CPU): the holder only mknods the minimal set meanwhile,
	 * and no agent starts before this function returns. */
	if (s->cgfd >= 0) {
		if ((r = cg_apply_limits(o->cg, s->cgfd, g->name, &g->res, e)) < 0)
			goto fail;
		/* Device rules: the minimal set plus the group's own nodes. */
		struct cg_dev rules[64];
		int nr = 0;
		for (int i = 0; i < cg_dev_nminimal; i++)
			rules[nr++] = cg_dev_minimal[i];
		for (int pass = 0; pass < 2; pass++) {
			const char *const *v = pass ? o->extra_devices : g->devices.v;
			for (int i = 0; v && v[i] && nr < (int)AI_ARRAY_SIZE(rules); i++) {
				struct stat sb;
				if (stat(v[i], &sb) < 0) {
					r = ai_fail(e, "sandbox", "stat", errno, "group %s: device %s",
						    g->name, v[i]);
					goto fail;
				}
				rules[nr++] = (struct cg_dev){S_ISBLK(sb.st_mode) ? 'b' : 'c',
							      major(sb.st_rdev), minor(sb.st_rdev), "rwm"};
			}
		}
		if ((r = cg_apply_devices(s->cgfd, g->name, rules, nr, e)) < 0)
			goto fail;
	}

	if (o->ready_in_child && g->network != NET_BRIDGE) {
		s->readyfd = st[0]; /* read by the next agent child (sbx_spawn) */
		return 0;
	}
	struct sbx_msg m;
	ssize_t n;
	for (int phase = 0; phase < (g->network == NET_BRIDGE ? 2 : 1); phase++) {
		do
			n = read(st[0], &m, sizeof m);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof m || !m.ok) {
			if (n == (ssize_t)sizeof m)
				*e = m.e;
			else
				ai_fail(e, "sandbox", "holder", EPIPE,
					"group %s: holder died while building the root", g->name);
			r = -(e->errnum ? e->errnum : EINVAL);
			goto fail;
		}
		if (phase == 0 && g->network == NET_BRIDGE) {
			snprintf(s->veth, sizeof s->veth, "aiv%d.%d", gi, (int)(pid % 10000000));
			if ((r = netns_veth_create(cfg->app.bridge_name, &na, s->veth, pid, e)) < 0)
				goto fail;
			if (write(go[1], "g", 1) != 1) {
				r = ai_fail(e, "sandbox", "write", errno, "group %s: holder", g->name);
				goto fail;
			}
		}
	}
	close(st[0]);
	if (go[1] >= 0)
		close(go[1]);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (st[i] >= 0)
			close(st[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	sbx_teardown(s);
	return r;
}


/* The agent child: never returns. */
/* In an agent child: the security steps, in their order (DESIGN §5).
 * Shared by `ainit sandbox` and the supervisor (sbx_child_setup). */
static int enter_sandbox(const struct sbx_group *s, const char *agent, uid_t uid, gid_t gid,
			 const gid_t *groups, int ngroups, struct ai_err *e)
{
	if (setns(s->holder_pidfd, s->nsflags) < 0)
		return ai_fail(e, "sandbox", "setns", errno, "group %s: agent %s", s->name, agent);
	/* 1. rlimits: set before this, by the process that forked us
	 *    (spawn.c for agents, agent_main for `ainit sandbox`). */
	/* 2. no_new_privs: nothing exec'd may gain privileges (setuid bits,
	 *    file capabilities); seccomp needs it once caps are gone. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return ai_fail(e, "sandbox", "prctl(NO_NEW_PRIVS)", errno, "group %s: agent %s",
			       s->name, agent);
	/* 3. users: keep the permitted set across setresuid for step 4. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups((size_t)ngroups, groups) < 0 ||
	    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return ai_fail(e, "sandbox", "setresuid", errno, "group %s: agent %s: uid %u gid %u",
			       s->name, agent, (unsigned)uid, (unsigned)gid);
	/* 4. capabilities: exactly the list, also for root. */
	if (caps_apply(s->caps, e) < 0) {
		err_prefix(e, s->name, agent);
		return -EPERM;
	}
	return 0;
}

static void __attribute__((noreturn)) agent_main(const struct sbx_group *s, const struct sbx_exec *x,
						 int wfd, uid_t uid, gid_t gid, const gid_t *groups,
						 int ngroups, const char *home)
{
	const char *agent = x->agent ? x->agent : "sandbox";
	struct ai_err e = {0};
	sigset_t empty;

	if (s->readyfd >= 0) { /* ready_in_child: the holder's report comes here */
		struct sbx_msg m;
		ssize_t n;
		do
			n = read(s->readyfd, &m, sizeof m);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof m || !m.ok) {
			if (n == (ssize_t)sizeof m)
				e = m.e;
			else
				ai_fail(&e, "sandbox", "holder", EPIPE,
					"group %s: holder died while building the root", s->name);
			child_fail(wfd, &e, 125);
		}
	}
	for (int i = 0; i < 3; i++) {
		if (x->stdio[i] >= 0 && x->stdio[i] != i && dup2(x->stdio[i], i) < 0) {
			ai_fail(&e, "sandbox", "dup2", errno, "group %s: agent %s: fd %d", s->name, agent, i);
			child_fail(wfd, &e, 127);
		}
	}
	/* Whatever the supervisor left open must not reach the agent. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&empty);
	{
		/* the agent's limits when it names one, else the group's */
		int ai = x->agent ? cfg_find_agent(s->cfg, x->agent) : -1;
		if (spawn_rlimits(ai >= 0 ? &s->cfg->agents[ai].rlimits
					  : &s->cfg->groups[s->gi].rlimits, &e) < 0)
			child_fail(wfd, &e, 125);
	}
	if (enter_sandbox(s, agent, uid, gid, groups, ngroups, &e) < 0)
		child_fail(wfd, &e, 127);
	if (chdir(x->cwd ? x->cwd : "/") < 0) {
		ai_fail(&e, "sandbox", "chdir", errno, "group %s: agent %s: working_dir %s", s->name,
			agent, x->cwd ? x->cwd : "/");
		child_fail(wfd, &e, 127);
	}

	/* Environment: the caller's plus what a login would set. */
	int n = 0;
	while (x->envp && x->envp[n])
		n++;
	int ngpu = s->gpu ? s->gpu->nenv : 0;
	char **env = calloc((size_t)(n + ngpu) + 5, sizeof *env);
	if (!env) {
		ai_fail(&e, "sandbox", "calloc", ENOMEM, "group %s: agent %s: environment", s->name, agent);
		child_fail(wfd, &e, 127);
	}
	bool has_path = false, has_home = false;
	for (int i = 0; i < n; i++) {
		env[i] = x->envp[i];
		has_path |= !strncmp(env[i], "PATH=", 5);
		has_home |= !strncmp(env[i], "HOME=", 5);
	}
	char gb[3][192];
	for (int i = 0, n0 = n; i < ngpu && i < 3; i++) { /* gpu: unless the agent sets its own */
		const struct gpu_env *ge = &s->gpu->env[i];
		size_t kl = strlen(ge->key);
		bool set = false;
		for (int j = 0; j < n0 && !set; j++)
			set = !strncmp(x->envp[j], ge->key, kl) && x->envp[j][kl] == '=';
		if (!set) {
			snprintf(gb[i], sizeof gb[i], "%s=%s", ge->key, ge->value);
			env[n++] = gb[i];
		}
	}
	char hb[PATH_MAX + 8];
	if (!has_path)
		env[n++] = (char *)"PATH=" DEFAULT_PATH;
	if (!has_home) {
		snprintf(hb, sizeof hb, "HOME=%s", home);
		env[n++] = hb;
	}
	env[n] = NULL;
	environ = env;

	/* The signal mask last before the filter: nothing below may wait. */
	sigprocmask(SIG_SETMASK, x->sigmask ? x->sigmask : &empty, NULL);
	/* 5. seccomp last: it forbids calls the steps above need. */
	if (!s->unconfined && scf_apply(&s->seccomp, &e) < 0) {
		err_prefix(&e, s->name, agent);
		child_fail(wfd, &e, 127);
	}
	/* the same rule as agents: no /bin/sh fallback (126/127) */
	spawn_exec((const char *const *)x->argv, env);
	ai_fail(&e, "sandbox", "execve", errno, "group %s: agent %s: %s", s->name, agent, x->argv[0]);
	child_fail(wfd, &e, errno == ENOENT ? 127 : 126);
}

int sbx_pidns_enter(const struct sbx_group *s, struct ai_err *e)
{
	if (setns(s->holder_pidfd, CLONE_NEWPID) < 0)
		return ai_fail(e, "sandbox", "setns(pid)", errno, "group %s", s->name);
	return 0;
}

void sbx_pidns_leave(const struct sbx_group *s)
{
	/* Our own namespace: cannot fail short of a kernel bug; were it to,
	 * the next plain child would land in this group, so say it. */
	if (setns(s->own_pidns, CLONE_NEWPID) < 0)
		log_err("sandbox", s->name, "setns back to our own pid namespace: %s", strerror(errno));
}

int sbx_child_setup(void *data, struct ai_err *e)
{
	struct sbx_child *c = data;
	if (c->bind_root) {
		/* runc: its rootfs is the appliance root, bound in a mount
		 * namespace of the runc process's own. */
		char rfs[PATH_MAX + 16];
		snprintf(rfs, sizeof rfs, "%s/rootfs", c->bundle);
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("/", rfs, NULL, MS_BIND, NULL) < 0)
			return ai_fail(e, "sandbox", "bind / on rootfs", errno, "agent %s: %s", c->agent, rfs);
		return 0;
	}
	int r = enter_sandbox(c->s, c->agent, c->uid, c->gid, c->groups, c->ngroups, e);
	if (r < 0)
		return r;
	/* seccomp last; what follows in spawn.c (chdir, exec) is allowed. */
	if (!c->s->unconfined && scf_apply(&c->s->seccomp, e) < 0) {
		err_prefix(e, c->s->name, c->agent);
		return -EPERM;
	}
	return 0;
}

/* The agent's uid, gid and groups from the group root's files. */
int sbx_resolve_user(const struct sbx_group *s, const char *agent, const char *user,
			uid_t *uid, gid_t *gid, gid_t *groups, int *ngroups, char *home,
			size_t homelen, struct ai_err *e)
{
	*uid = 0, *gid = 0;
	if (!user || !strcmp(user, "root")) {
		*ngroups = 0;
		snprintf(home, homelen, "/root");
		return 0;
	}
	AI_AUTOFREE char *pw = sbx_read_root_file(s->root, "/etc/passwd");
	AI_AUTOFREE char *gr = sbx_read_root_file(s->root, "/etc/group");
	if (!pw || !gr)
		return ai_fail(e, "sandbox", "read /etc/passwd", ENOMEM, "group %s", s->name);
	int r = sbx_lookup_user(pw, gr, user, uid, gid, groups, ngroups, home, homelen);
	if (r < 0)
		return ai_fail(e, "sandbox", "user", -r, "group %s: agent %s: user \"%s\" %s in %s/etc/passwd",
			       s->name, agent, user, r == -ENOENT ? "not found" : "malformed",
			       strcmp(s->root, "/") ? s->root : "");
	return 0;
}

int sbx_spawn(struct sbx_group *s, const struct sbx_exec *x, struct sbx_proc *p,
	      struct ai_err *e)
{
	const char *agent = x->agent ? x->agent : "sandbox";
	uid_t uid = 0;
	gid_t gid = 0, groups[MAX_GROUPS_PER_USER];
	int ngroups = MAX_GROUPS_PER_USER;
	char home[PATH_MAX] = "/";
	int st[2];
	int pidfd = -1;

	p->pid = -1;
	p->pidfd = p->execfd = -1;
	if (!s->holder)
		return ai_fail(e, "sandbox", "spawn", ESRCH, "group %s: agent %s: sandbox not prepared",
			       s->name, agent);
	int r = sbx_resolve_user(s, agent, x->user, &uid, &gid, groups, &ngroups, home, sizeof home, e);
	if (r < 0)
		return r;

	AI_AUTOCLOSE int leaf = -1;
	if (s->cgfd >= 0) {
		char ln[128];
		snprintf(ln, sizeof ln, "agent.%s", agent);
		if ((leaf = cg_leaf(s->cgfd, ln, s->name, e)) < 0)
			return leaf;
	}
	if (pipe2(st, O_CLOEXEC | O_NONBLOCK) < 0)
		return ai_fail(e, "sandbox", "pipe2", errno, "group %s: agent %s", s->name, agent);
	struct clone_args ca = {
		.flags = CLONE_PIDFD | (leaf >= 0 ? CLONE_INTO_CGROUP : 0),
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)(leaf >= 0 ? leaf : 0),
	};
	/* The child is born in the group's pid namespace: the supervisor's
	 * pid_for_children points there for the one clone3 call. */
	if (setns(s->holder_pidfd, CLONE_NEWPID) < 0) {
		int err = errno;
		close(st[0]), close(st[1]);
		return ai_fail(e, "sandbox", "setns(pid)", err, "group %s: agent %s", s->name, agent);
	}
	pid_t pid = clone3_raw(&ca);
	int cerr = errno;
	if (pid != 0 && setns(s->own_pidns, CLONE_NEWPID) < 0) {
		/* Cannot happen for our own namespace; if it did, every later
		 * child would land in this group: say so loudly. */
		int err = errno;
		if (pid > 0)
			pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
		close(st[0]), close(st[1]);
		return ai_fail(e, "sandbox", "setns(own pid namespace)", err, "group %s", s->name);
	}
	if (pid == 0) {
		close(st[0]);
		agent_main(s, x, st[1], uid, gid, groups, ngroups, home);
	}
	close(st[1]);
	if (s->readyfd >= 0) { /* the child has it now */
		close(s->readyfd);
		s->readyfd = -1;
	}
	if (pid < 0) {
		close(st[0]);
		return ai_fail(e, "sandbox", "clone3", cerr, "group %s: agent %s", s->name, agent);
	}
	p->pid = pid;
	p->pidfd = pidfd;
	p->execfd = st[0];
	return 0;
}

int sbx_exec_status(int execfd, struct ai_err *e)
{
	struct sbx_msg m;
	ssize_t n;
	do
		n = read(execfd, &m, sizeof m);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : ai_fail(e, "sandbox", "read", errno, "exec status");
	if (n != (ssize_t)sizeof m)
		return ai_fail(e, "sandbox", "read", EPROTO, "exec status: short message");
	*e = m.e;
	return -(e->errnum ? e->errnum : EINVAL);
}

int sbx_exec_code(const struct ai_err *e)
{
	if (e->step && !strcmp(e->step, "execve"))
		return e->errnum == ENOENT ? 127 : 126;
	return 125;
}

int sbx_kill(struct sbx_group *s, struct ai_err *e)
{
	if (s->cgfd >= 0)
		return cg_kill(s->cgfd, s->name, e);
	if (s->holder_pidfd >= 0 && pidfd_send_signal(s->holder_pidfd, SIGKILL, NULL, 0) < 0)
		return ai_fail(e, "sandbox", "pidfd_send_signal", errno, "group %s: holder", s->name);
	return 0;
}

void sbx_teardown(struct sbx_group *s)
{
	struct ai_err e;
	if (s->cgfd >= 0)
		cg_kill(s->cgfd, s->name, &e);
	if (s->holder_pidfd >= 0) {
		siginfo_t si;
		pidfd_send_signal(s->holder_pidfd, SIGKILL, NULL, 0);
		/* The supervisor's reap loop may have taken it already. */
		while (waitid(P_PIDFD, (id_t)s->holder_pidfd, &si, WEXITED) < 0 && errno == EINTR)
			;
		close(s->holder_pidfd);
	}
	s->holder_pidfd = -1;
	s->holder = 0;
	if (s->cgfd >= 0) {
		close(s->cgfd);
		if (s->cg)
			cg_remove(s->cg, s->name, &e);
	}
	s->cgfd = -1;
	if (s->own_pidns >= 0)
		close(s->own_pidns);
	s->own_pidns = -1;
	if (s->orphfd >= 0)
		close(s->orphfd);
	s->orphfd = -1;
	if (s->readyfd >= 0)
		close(s->readyfd);
	s->readyfd = -1;
	if (s->seccomp_owned)
		free(s->seccomp.filter);
	s->seccomp.filter = NULL;
	s->seccomp_owned = 0;
	free(s->gpu);
	s->gpu = NULL;
}
