#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

static pid_t sys_clone3(struct clone_args *args)
{
	return (pid_t)syscall(SYS_clone3, args, sizeof *args);
}

static void child_report(int fd, const char *step, int errnum, const char *msg)
{
	struct spawn_fail f = {.errnum = errnum};
	snprintf(f.step, sizeof f.step, "%s", step);
	snprintf(f.msg, sizeof f.msg, "%s", msg);
	/* Best effort: the parent sees EOF-less short data or EOF either way. */
	if (write(fd, &f, sizeof f) < 0)
		_exit(127);
}

static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0); /* clear CLOEXEC */
	return dup2(from, to) < 0 ? -1 : 0;
}

/* execvp without its fallback of running a non-executable file with
 * /bin/sh: a file that is not executable is an error (126), as in runc. */
int spawn_rlimits(const struct cfg_rlimits *rl, struct ai_err *e)
{
	static const struct { int res; const char *name; } map[RL_N] = {
		[RL_NOFILE] = {RLIMIT_NOFILE, "nofile"}, [RL_NPROC] = {RLIMIT_NPROC, "nproc"},
		[RL_CORE] = {RLIMIT_CORE, "core"}, [RL_MEMLOCK] = {RLIMIT_MEMLOCK, "memlock"},
		[RL_STACK] = {RLIMIT_STACK, "stack"},
	};
	for (int i = 0; i < RL_N; i++) {
		struct rlimit lim;
		if (rl->v[i] == CFG_UNSET)
			continue;
		lim.rlim_cur = lim.rlim_max =
			rl->v[i] == INT64_MAX ? RLIM_INFINITY : (rlim_t)rl->v[i];
		if (setrlimit(map[i].res, &lim) < 0)
			return ai_fail(e, "spawn", "setrlimit", errno, "rlimits.%s %lld", map[i].name,
				       (long long)rl->v[i]);
	}
	return 0;
}

void spawn_exec(const char *const *argv, char *const *envp)
{
	const char *path = NULL;
	int saved = ENOENT;
	if (strchr(argv[0], '/')) {
		execve(argv[0], (char *const *)argv, envp);
		return;
	}
	for (char *const *e = envp; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		char full[4096];
		size_t n = strcspn(path, ":");
		if (n && n + 1 + strlen(argv[0]) < sizeof full) {
			memcpy(full, path, n);
			full[n] = '/';
			strcpy(full + n + 1, argv[0]);
			execve(full, (char *const *)argv, envp);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	errno = saved;
}

static __attribute__((noreturn)) void child(const struct spawn_req *r, int wfd, pid_t parent)
{
	sigset_t all;
	struct ai_err e = {0};
	int nullfd = -1;

	/* Restore what ainit changed: dispositions and the blocked mask. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* An agent does not outlive its supervisor (`ainit run` killed by
	 * SIGKILL): it would run on unsupervised under the host's init.
	 * (getppid() is 0 when the parent lives outside our pid namespace.) */
	pid_t pp;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ((pp = getppid()) != parent && pp != 0)) {
		child_report(wfd, "prctl(PR_SET_PDEATHSIG)", errno, "supervisor gone");
		_exit(127);
	}
	if (setsid() < 0) {
		child_report(wfd, "setsid", errno, "new session");
		_exit(127);
	}
	if (r->in_fd < 0 || r->out_fd < 0 || r->err_fd < 0) {
		nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nullfd < 0) {
			child_report(wfd, "open", errno, "/dev/null");
			_exit(127);
		}
	}
	/* wfd may sit on 0..2: move it out of the way first. */
	if (wfd <= 2) {
		int n = fcntl(wfd, F_DUPFD_CLOEXEC, 3);
		if (n < 0)
			_exit(127);
		wfd = n;
	}
	int fds[3] = {r->in_fd < 0 ? nullfd : r->in_fd, r->out_fd < 0 ? nullfd : r->out_fd,
		      r->err_fd < 0 ? nullfd : r->err_fd};
	/* Dup sources above 2 first so that dup2 order cannot clobber them. */
	for (int i = 0; i < 3; i++)
		if (fds[i] <= 2 && fds[i] != i) {
			int n = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (n < 0) {
				child_report(wfd, "dup", errno, "stdio");
				_exit(127);
			}
			fds[i] = n;
		}
	for (int i = 0; i < 3; i++)
		if (move_fd(fds[i], i) < 0) {
			child_report(wfd, "dup2", errno, "stdio");
			_exit(127);
		}
	if (r->rlimits && spawn_rlimits(r->rlimits, &e) < 0) {
		child_report(wfd, e.step, e.errnum, e.msg);
		_exit(125);
	}
	if (r->child_setup && r->child_setup(r->child_data, &e) < 0) {
		child_report(wfd, e.step ? e.step : "setup", e.errnum, e.msg);
		_exit(e.errnum == ENOENT ? 127 : e.errnum == EACCES ? 126 : 125);
	}
	if (chdir(r->cwd ? r->cwd : "/") < 0) {
		child_report(wfd, "chdir", errno, r->cwd ? r->cwd : "/");
		_exit(127);
	}
	spawn_exec(r->argv, r->envp);
	{
		int err = errno;
		char m[192];
		snprintf(m, sizeof m, "%s", r->argv[0]);
		child_report(wfd, "execve", err, m);
		_exit(err == ENOENT ? 127 : 126);
	}
}

int spawn_start(const struct spawn_req *r, struct spawn_result *out, struct ai_err *e)
{
	int pfd[2];
	int pidfd = -1;
	struct clone_args args = {0};
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ai_fail(e, "spawn", "pipe2", errno, "%s", r->what);
	args.flags = CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	if (r->cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)r->cgroup_fd;
	}
	if (r->sandbox && sbx_pidns_enter(r->sandbox, e) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -EINVAL;
	}
	pid_t parent = getpid();
	pid = sys_clone3(&args);
	if (r->sandbox && pid != 0) {
		int err = errno;
		sbx_pidns_leave(r->sandbox);
		errno = err;
	}
	if (pid < 0) {
		int err = errno;
		close(pfd[0]);
		close(pfd[1]);
		return ai_fail(e, "spawn", "clone3", err, "%s", r->what);
	}
	if (pid == 0) {
		close(pfd[0]);
		child(r, pfd[1], parent);
	}
	close(pfd[1]);
	if (fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		/* Cannot happen on a pipe we own; if it did, reading may block
		 * briefly until exec: acceptable, but say so. */
		ai_fail(e, "spawn", "fcntl", errno, "%s: exec-status pipe", r->what);
	}
	out->pid = pid;
	out->pidfd = pidfd;
	out->execfd = pfd[0];
	return 0;
}

int spawn_read_status(int execfd, struct spawn_fail *f)
{
	ssize_t n;
	do
		n = read(execfd, f, sizeof *f);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 1;
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	if (n != (ssize_t)sizeof *f) {
		memset(f, 0, sizeof *f);
		snprintf(f->step, sizeof f->step, "setup");
		snprintf(f->msg, sizeof f->msg, "short status from child");
	}
	f->step[sizeof f->step - 1] = 0;
	f->msg[sizeof f->msg - 1] = 0;
	return 0;
}
