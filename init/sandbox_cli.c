/* `ainit sandbox`: run one command in a group's sandbox exactly as an agent
 * of that group would run, for debugging, tests and benchmarks. Exit status
 * like `docker run`: the command's, 128+N on signal N, 125 when the sandbox
 * could not be set up, 126 not executable, 127 not found. */
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "log.h"
#include "oci.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: ainit sandbox [--config FILE] [--root DIR] [--state-dir DIR] [--user USER]\n"
		"                     GROUP -- CMD [ARGS...]\n"
		"Runs CMD in GROUP's sandbox as an agent of GROUP would run. Exit status: CMD's,\n"
		"128+N when killed by signal N, 125 sandbox setup failed, 126 not executable,\n"
		"127 not found.\n");
	return 125;
}

static int wait_child(const struct sbx_proc *p, const sigset_t *fwd)
{
	int sfd = signalfd(-1, fwd, SFD_CLOEXEC | SFD_NONBLOCK);
	struct pollfd pf[2] = {{p->pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
	siginfo_t si;
	for (;;) {
		int n = poll(pf, sfd >= 0 ? 2 : 1, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (sfd >= 0 && (pf[1].revents & POLLIN)) {
			struct signalfd_siginfo ss;
			while (read(sfd, &ss, sizeof ss) == (ssize_t)sizeof ss)
				pidfd_send_signal(p->pidfd, (int)ss.ssi_signo, NULL, 0);
		}
		if (pf[0].revents)
			break;
	}
	if (sfd >= 0)
		close(sfd);
	memset(&si, 0, sizeof si);
	while (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED) < 0) {
		if (errno != EINTR)
			return 125;
	}
	if (si.si_code == CLD_EXITED)
		return si.si_status;
	return 128 + si.si_status;
}

/* runtime: runc: the same config as an OCI bundle, run by `runc run` in the
 * foreground (runc passes stdio and the exit status through). */
static int run_runc(const struct ai_config *c, int gi, const struct oci_opts *o)
{
	char dir[] = "/tmp/ainit-oci.XXXXXX", id[64], path[PATH_MAX];
	struct ai_err e = {0};
	int rc = 125;
	if (!mkdtemp(dir)) {
		log_err("sandbox", c->groups[gi].name, "mkdtemp: %s", strerror(errno));
		return 125;
	}
	snprintf(path, sizeof path, "%s/bundle", dir);
	if (oci_export(c, gi, o, path, &e) < 0) {
		log_error(&e);
		goto out;
	}
	snprintf(id, sizeof id, "ainit-%s-%d", c->groups[gi].name, (int)getpid());
	pid_t pid = fork();
	if (pid < 0) {
		log_err("sandbox", c->groups[gi].name, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (!o->root || !strcmp(o->root, "/")) {
			/* rootfs = the appliance root, bound in a mount namespace
			 * of our own so the host never sees the bind. */
			char rfs[PATH_MAX + 16];
			snprintf(rfs, sizeof rfs, "%s/rootfs", path);
			if (unshare(CLONE_NEWNS) < 0 ||
			    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
			    mount("/", rfs, NULL, MS_BIND, NULL) < 0) {
				fprintf(stderr, "ainit: sandbox: group %s: bind / on %s: %s\n",
					c->groups[gi].name, rfs, strerror(errno));
				_exit(125);
			}
		}
		execlp("runc", "runc", "run", "--bundle", path, id, (char *)NULL);
		fprintf(stderr, "ainit: sandbox: group %s: exec runc: %s\n", c->groups[gi].name,
			strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
out:
	snprintf(path, sizeof path, "%s/bundle/config.json", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/bundle/rootfs", dir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/bundle", dir);
	rmdir(path);
	rmdir(dir);
	return rc;
}

int cmd_sandbox(int argc, char **argv)
{
	const char *config = "/etc/ainit/appliance.yaml", *root = NULL, *state = NULL;
	const char *user = NULL, *group = NULL;
	char **cmd = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			cmd = argv + i + 1;
			break;
		}
		if ((!strcmp(a, "--config") || !strcmp(a, "-c")) && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(a, "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(a, "--state-dir") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(a, "--user") && i + 1 < argc)
			user = argv[++i];
		else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return usage();
		else if (a[0] == '-')
			return usage();
		else if (!group)
			group = a;
		else {
			cmd = argv + i;
			break;
		}
	}
	if (!group || !cmd || !cmd[0])
		return usage();

	struct diag_list d = {0};
	const char *files[] = {config};
	struct ai_config *c = cfg_load(files, 1, &d);
	if (!c) {
		diag_sort(&d);
		diag_print(&d, stderr);
		diag_free(&d);
		return 125;
	}
	diag_free(&d);
	int gi = cfg_find_group(c, group);
	if (gi < 0) {
		log_err("sandbox", group, "no such group in %s", config);
		cfg_free(c);
		return 125;
	}
	const struct cfg_group *g = &c->groups[gi];

	/* Profiles: next to the config (configs/seccomp/), then /etc/ainit/seccomp. */
	char sdir[PATH_MAX];
	const char *slash = strrchr(config, '/');
	snprintf(sdir, sizeof sdir, "%.*s/seccomp", slash ? (int)(slash - config) : 1,
		 slash ? config : ".");
	const char *dirs[] = {sdir, "/etc/ainit/seccomp", NULL};

	if (g->runtime == RT_RUNC) {
		struct oci_opts oo = {.root = root, .state_dir = state, .seccomp_dirs = dirs,
				      .argv = cmd, .user = user};
		int r = run_runc(c, gi, &oo);
		cfg_free(c);
		return r;
	}

	struct ai_err e = {0};
	struct cg_base cg;
	char cgname[64];
	bool have_cg = true;
	snprintf(cgname, sizeof cgname, "ainit-sandbox.%d", (int)getpid());
	if (cg_open_base(&cg, cgname, &e) < 0) {
		log_warn("sandbox", group, "no cgroup v2 (%s): running without a cgroup",
			 e.msg);
		have_cg = false;
	}

	struct sbx_opts o = {.root = root, .state_dir = state, .seccomp_dirs = dirs,
			     .cg = have_cg ? &cg : NULL, .ready_in_child = true};
	struct sbx_group sg;
	int rc = 125;
	if (sbx_prepare(&sg, c, gi, &o, &e) < 0) {
		log_error(&e);
		goto out;
	}

	/* Environment: the group's, plus what identifies the sandbox. */
	char *env[256];
	char bufs[4][PATH_MAX + 32];
	int n = 0, nalloc;
	for (int k = 0; k < g->env.n && n < 250; k++) {
		size_t l = strlen(g->env.v[k].key) + strlen(g->env.v[k].value) + 2;
		char *kv = malloc(l);
		if (!kv)
			break;
		snprintf(kv, l, "%s=%s", g->env.v[k].key, g->env.v[k].value);
		env[n++] = kv;
	}
	nalloc = n;
	snprintf(bufs[0], sizeof bufs[0], "AINIT_GROUP=%s", g->name);
	env[n++] = bufs[0];
	if (getenv("TERM")) {
		snprintf(bufs[1], sizeof bufs[1], "TERM=%s", getenv("TERM"));
		env[n++] = bufs[1];
	}
	env[n] = NULL;

	sigset_t fwd, old;
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGHUP);
	sigaddset(&fwd, SIGQUIT);
	sigprocmask(SIG_BLOCK, &fwd, &old);

	struct sbx_exec x = {.agent = "sandbox", .argv = cmd, .envp = env,
			     .user = user ? user : g->user, .cwd = NULL,
			     .stdio = {-1, -1, -1}, .sigmask = &old};
	struct sbx_proc p;
	if (sbx_spawn(&sg, &x, &p, &e) < 0) {
		log_error(&e);
		goto out_sg;
	}
	/* One wait: a child that could not exec has _exit()ed with its
	 * message in the pipe; after the exit the pipe holds the message or
	 * EOF (exec closed it), so it is read once, afterwards. */
	rc = wait_child(&p, &fwd);
	close(p.pidfd);
	int r = sbx_exec_status(p.execfd, &e);
	close(p.execfd);
	if (r < 0) {
		log_error(&e);
		rc = sbx_exec_code(&e);
	}
out_sg:
	for (int k = 0; k < nalloc; k++)
		free(env[k]);
	sbx_teardown(&sg);
out:
	if (have_cg)
		cg_close_base(&cg);
	cfg_free(c);
	return rc;
}
