#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

const struct cg_dev cg_dev_minimal[] = {
	{'c', -1, -1, "m"}, {'b', -1, -1, "m"}, /* mknod is harmless: open is what counts */
	{'c', 1, 3, "rwm"}, {'c', 1, 5, "rwm"}, {'c', 1, 7, "rwm"}, /* null zero full */
	{'c', 1, 8, "rwm"}, {'c', 1, 9, "rwm"},                     /* random urandom */
	{'c', 5, 0, "rwm"}, {'c', 5, 2, "rwm"}, {'c', 136, -1, "rwm"}, /* tty ptmx pts */
};
const int cg_dev_nminimal = (int)AI_ARRAY_SIZE(cg_dev_minimal);

static int read_small(int dirfd, const char *name, char *buf, size_t n)
{
	AI_AUTOCLOSE int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return (int)r;
}

static int write_small(int dirfd, const char *name, const char *val)
{
	AI_AUTOCLOSE int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = write(fd, val, strlen(val));
	if (r < 0)
		return -errno;
	return 0;
}

/* Mount point of cgroup2 from mountinfo; "" when none. */
static int find_cgroup2(char *mnt, size_t n)
{
	static const char *const usual[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
	struct statfs sf;
	/* The usual places first: statfs is cheaper than reading mountinfo. */
	for (size_t i = 0; i < AI_ARRAY_SIZE(usual); i++)
		if (statfs(usual[i], &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
			snprintf(mnt, n, "%s", usual[i]);
			return 0;
		}
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	mnt[0] = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof line, f)) {
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		/* id parent major:minor root mountpoint ... */
		char *p = line;
		for (int i = 0; i < 4 && p; i++)
			p = strchr(p + 1, ' ');
		if (!p)
			continue;
		p++;
		char *end = strchr(p, ' ');
		if (!end)
			continue;
		snprintf(mnt, n, "%.*s", (int)(end - p), p);
		break;
	}
	fclose(f);
	return 0;
}

static int own_cgroup(char *path, size_t n)
{
	char buf[4096];
	AI_AUTOCLOSE int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, "0::", 3)) {
			char *end = strchr(l, '\n');
			snprintf(path, n, "%.*s", (int)(end ? end - l - 3 : (long)strlen(l + 3)), l + 3);
			return 0;
		}
	}
	return -ENOENT;
}

static unsigned parse_controllers(const char *s)
{
	unsigned m = 0;
	char buf[512];
	snprintf(buf, sizeof buf, "%s", s);
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) {
		if (!strcmp(t, "memory"))
			m |= CG_MEMORY;
		else if (!strcmp(t, "cpu"))
			m |= CG_CPU;
		else if (!strcmp(t, "pids"))
			m |= CG_PIDS;
	}
	return m;
}

static void enable_controllers(int dirfd, unsigned want)
{
	/* One at a time: one the kernel refuses must not stop the others. */
	if (want & CG_MEMORY)
		write_small(dirfd, "cgroup.subtree_control", "+memory");
	if (want & CG_CPU)
		write_small(dirfd, "cgroup.subtree_control", "+cpu");
	if (want & CG_PIDS)
		write_small(dirfd, "cgroup.subtree_control", "+pids");
}

int cg_open_base(struct cg_base *b, const char *name, struct ai_err *e)
{
	char mnt[1024], own[2048], buf[512];
	int r;

	memset(b, 0, sizeof *b);
	b->fd = -1;
	if ((r = find_cgroup2(mnt, sizeof mnt)) < 0)
		return ai_fail(e, "cgroup", "read /proc/self/mountinfo", -r, "cgroup2");
	if (!mnt[0] && getpid() == 1) {
		if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "nsdelegate") < 0)
			return ai_fail(e, "cgroup", "mount cgroup2", errno, "/sys/fs/cgroup");
		snprintf(mnt, sizeof mnt, "/sys/fs/cgroup");
	}
	if (!mnt[0])
		return ai_fail(e, "cgroup", "find cgroup2", ENOENT,
			       "no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)");
	if ((r = own_cgroup(own, sizeof own)) < 0)
		return ai_fail(e, "cgroup", "read /proc/self/cgroup", -r, "own cgroup v2 path");
	AI_AUTOCLOSE int ownfd = -1;
	snprintf(b->path, sizeof b->path, "%s%s", mnt, strcmp(own, "/") ? own : "");
	ownfd = open(b->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ownfd < 0)
		return ai_fail(e, "cgroup", "open", errno, "%s", b->path);
	unsigned avail = 0;
	if (read_small(ownfd, "cgroup.controllers", buf, sizeof buf) >= 0)
		avail = parse_controllers(buf);
	if (avail) {
		enable_controllers(ownfd, avail);
		if (read_small(ownfd, "cgroup.subtree_control", buf, sizeof buf) >= 0)
			avail &= parse_controllers(buf);
	}
	size_t l = strlen(b->path);
	snprintf(b->path + l, sizeof b->path - l, "/%s", name);
	if (mkdir(b->path, 0755) == 0)
		b->created = true;
	else if (errno != EEXIST)
		return ai_fail(e, "cgroup", "mkdir", errno, "%s", b->path);
	b->fd = open(b->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b->fd < 0)
		return ai_fail(e, "cgroup", "open", errno, "%s", b->path);
	if (avail) {
		enable_controllers(b->fd, avail);
		if (read_small(b->fd, "cgroup.subtree_control", buf, sizeof buf) >= 0)
			avail &= parse_controllers(buf);
	}
	b->have = avail;
	return 0;
}

void cg_close_base(struct cg_base *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	if (b->created)
		rmdir(b->path);
	b->created = false;
}

int cg_create(struct cg_base *b, const char *group, struct ai_err *e)
{
	if (mkdirat(b->fd, group, 0755) < 0 && errno != EEXIST)
		return ai_fail(e, "cgroup", "mkdir", errno, "group %s: %s/%s", group, b->path, group);
	int fd = openat(b->fd, group, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ai_fail(e, "cgroup", "open", errno, "group %s: %s/%s", group, b->path, group);
	return fd;
}

void cg_cpu_max(int64_t cpus_milli, char *buf, unsigned n)
{
	/* period 100 ms; quota = CPUs x period */
	snprintf(buf, n, "%" PRId64 " 100000", cpus_milli * 100);
}

static bool need(struct cg_base *b, unsigned c, const char *ctl, const char *group)
{
	if (b->have & c)
		return true;
	if (!(b->warned & c)) {
		b->warned |= c;
		log_warn("cgroup", group,
			 "the host's cgroup v2 has no %s controller (held by cgroup v1 on this host?): "
			 "running without %s limits",
			 ctl, ctl);
	}
	return false;
}

int cg_apply_limits(struct cg_base *b, int dirfd, const char *group,
		    const struct cfg_resources *r, struct ai_err *e)
{
	char v[64];
	int rc;
#define SET(ctl, cname, file, cond, ...)                                                      \
	do {                                                                                  \
		if ((cond) && need(b, ctl, cname, group)) {                                   \
			snprintf(v, sizeof v, __VA_ARGS__);                                   \
			if ((rc = write_small(dirfd, file, v)) < 0)                           \
				return ai_fail(e, "cgroup", "write " file, -rc, "group %s: %s", \
					       group, v);                                     \
		}                                                                             \
	} while (0)
	SET(CG_MEMORY, "memory", "memory.max", r->memory_max != CFG_UNSET, "%" PRId64, r->memory_max);
	SET(CG_MEMORY, "memory", "memory.high", r->memory_high != CFG_UNSET, "%" PRId64,
	    r->memory_high);
	SET(CG_PIDS, "pids", "pids.max", r->pids != CFG_UNSET, "%" PRId64, r->pids);
	SET(CG_CPU, "cpu", "cpu.weight", r->cpu_weight != CFG_UNSET, "%" PRId64, r->cpu_weight);
	if (r->cpus_milli != CFG_UNSET && need(b, CG_CPU, "cpu", group)) {
		cg_cpu_max(r->cpus_milli, v, sizeof v);
		if ((rc = write_small(dirfd, "cpu.max", v)) < 0)
			return ai_fail(e, "cgroup", "write cpu.max", -rc, "group %s: %s", group, v);
	}
#undef SET
	return 0;
}

/* --- device program --------------------------------------------------- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

int cg_dev_prog(const struct cg_dev *rules, int n, void *out, int cap)
{
	struct bpf_insn *p = out;
	int k = 0;
#define EMIT(x)                          \
	do {                             \
		if (k >= cap)            \
			return -E2BIG;   \
		p[k++] = (x);            \
	} while (0)
	/* r2 = type, r3 = access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx) */
	EMIT(INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0));
	EMIT(INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff));
	EMIT(INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0));
	EMIT(INSN(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
	EMIT(INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0));
	EMIT(INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0));
	for (int i = 0; i < n; i++) {
		const struct cg_dev *r = &rules[i];
		int acc = 0, len = 2; /* mov r0,1; exit */
		for (const char *a = r->access; a && *a; a++)
			acc |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE
				: *a == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
		int all = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
		len += 1;                      /* type */
		len += acc != all ? 3 : 0;     /* access subset */
		len += r->major >= 0 ? 1 : 0;
		len += r->minor >= 0 ? 1 : 0;
		int next = len; /* jump target: the instruction after this block */
		int at = 0;
		EMIT(INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, (short)(next - ++at),
			  r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
		if (acc != all) {
			EMIT(INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
			at++;
			EMIT(INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, ~acc));
			at++;
			EMIT(INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, (short)(next - ++at), 0));
		}
		if (r->major >= 0)
			EMIT(INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, (short)(next - ++at),
				  (int)r->major));
		if (r->minor >= 0)
			EMIT(INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, (short)(next - ++at),
				  (int)r->minor));
		EMIT(INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
		EMIT(INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
	}
	EMIT(INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
	EMIT(INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
#undef EMIT
	return k;
}

int cg_apply_devices(int dirfd, const char *group, const struct cg_dev *rules, int n,
		     struct ai_err *e)
{
	struct bpf_insn insns[1024];
	char log[4096] = "";
	int k = cg_dev_prog(rules, n, insns, (int)AI_ARRAY_SIZE(insns));
	if (k < 0)
		return ai_fail(e, "cgroup", "device program", E2BIG, "group %s: %d rules", group, n);
	union bpf_attr a;
	memset(&a, 0, sizeof a);
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = (uint32_t)k;
	a.license = (uint64_t)(uintptr_t)"GPL";
	AI_AUTOCLOSE int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
	if (prog < 0) {
		/* Retry with the verifier's log for the message. */
		int err = errno;
		a.log_level = 1;
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = sizeof log;
		int p2 = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
		if (p2 >= 0)
			close(p2);
		char *nl = strrchr(log, '\n');
		if (nl && nl == log + strlen(log) - 1)
			*nl = 0;
		return ai_fail(e, "cgroup", "bpf(PROG_LOAD)", err, "group %s: device program%s%.120s",
			       group, log[0] ? ": " : "", log);
	}
	memset(&a, 0, sizeof a);
	a.target_fd = (uint32_t)dirfd;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) < 0)
		return ai_fail(e, "cgroup", "bpf(PROG_ATTACH)", errno, "group %s: device program",
			       group);
	return 0; /* the attachment keeps the program alive */
}

int cg_leaf(int groupfd, const char *leaf, const char *group, struct ai_err *e)
{
	if (mkdirat(groupfd, leaf, 0755) < 0 && errno != EEXIST)
		return ai_fail(e, "cgroup", "mkdir", errno, "group %s: %s", group, leaf);
	int fd = openat(groupfd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ai_fail(e, "cgroup", "open", errno, "group %s: %s", group, leaf);
	return fd;
}

int cg_kill(int dirfd, const char *group, struct ai_err *e)
{
	int r = write_small(dirfd, "cgroup.kill", "1");
	if (r < 0)
		return ai_fail(e, "cgroup", "write cgroup.kill", -r, "group %s", group);
	return 0;
}

/* rmdir, retrying while the last tasks leave (they do a moment after
 * they are reaped). */
static int rmdir_retry(int dirfd, const char *name)
{
	for (int i = 0; i < 200; i++) {
		if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		struct timespec ts = {0, 100000 * (i < 10 ? 1 : 10)};
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

int cg_remove(struct cg_base *b, const char *group, struct ai_err *e)
{
	/* The leaves first (holder, agents). */
	int gfd = openat(b->fd, group, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (gfd >= 0) {
		DIR *d = fdopendir(gfd);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d)))
				if (de->d_type == DT_DIR && de->d_name[0] != '.')
					rmdir_retry(dirfd(d), de->d_name);
			closedir(d);
		} else {
			close(gfd);
		}
	}
	int r = rmdir_retry(b->fd, group);
	if (r < 0)
		return ai_fail(e, "cgroup", "rmdir", -r, "group %s: %s/%s", group, b->path, group);
	return 0;
}

/* rmdir DIR/NAME and, first, its subdirectories (two levels: group, leaf);
 * a populated cgroup stays (rmdir fails with EBUSY). */
static void rm_tree(int pfd, const char *name, int depth)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d)))
				if (de->d_type == DT_DIR && de->d_name[0] != '.' && depth > 0)
					rm_tree(dirfd(d), de->d_name, depth - 1);
			closedir(d);
		} else {
			close(fd);
		}
	}
	unlinkat(pfd, name, AT_REMOVEDIR);
}

void cg_sweep_stale(const struct cg_base *b)
{
	char parent[sizeof b->path];
	snprintf(parent, sizeof parent, "%s", b->path);
	char *slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return;
	*slash = 0;
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name, *num = NULL;
		if (!strncmp(n, "ainit-sandbox.", 14))
			num = n + 14;
		else if (!strncmp(n, "ainit.", 6))
			num = n + 6;
		if (!num || !*num || de->d_type != DT_DIR)
			continue;
		char *end;
		long pid = strtol(num, &end, 10);
		if (*end || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		rm_tree(dirfd(d), n, 2);
	}
	closedir(d);
}
