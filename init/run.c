#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "check.h"
#include "log.h"
#include "metrics.h"
#include "logcap.h"
#include "probe.h"
#include "reload.h"
#include "sandbox.h"
#include "state.h"
#include "util.h"
#include "vport.h"

#define PID1_CONFIG "/etc/ainit/appliance.yaml"
#define PID1_OVERRIDE_DIR "/etc/ainit/appliance.d"
#define PID1_MAX_OVERRIDES 8
#define DEFAULT_STATE_DIR "/run/ainit"
/* Named volumes of PID 1 without appliance.data_dir: on the data disk
 * (appliance.mounts puts it at /var/lib/ainit), never on the /run tmpfs,
 * where they would be lost at every poweroff. */
#define PID1_VOLUMES "/var/lib/ainit/volumes"

/* Reap everything that is ready: agents go to the supervisor, the rest are
 * orphans that landed on us. One SIGCHLD may stand for many deaths. */
static void reap_all(struct ai_state *st)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0) {
			if (pid < 0 && errno == EINTR)
				continue;
			return; /* 0: none ready; ECHILD: no children */
		}
		if (!st->cfg || (!sup_on_reaped(st, pid, status) && !probe_on_reaped(st, pid, status)))
			st->orphans_reaped++;
	}
}

static void begin_stop(struct ai_state *st, enum ai_final f, const char *why)
{
	if (st->phase != PHASE_RUN)
		return;
	log_info("run", NULL, "%s: stopping", why);
	st->final = f;
	if (st->cfg)
		sup_shutdown(st);
	else
		st->phase = PHASE_DONE;
}

static void on_signal(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct signalfd_siginfo si;
	(void)src;
	(void)ev;
	for (;;) {
		ssize_t n = read(st->sigfd, &si, sizeof si);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof si)
			break;
		switch (si.ssi_signo) {
		case SIGCHLD:
			break; /* reaped below, once for all */
		case SIGTERM:
			begin_stop(st, st->pid1 ? FINAL_POWEROFF : FINAL_EXIT, "SIGTERM");
			break;
		case SIGPWR:
			begin_stop(st, st->pid1 ? FINAL_POWEROFF : FINAL_EXIT, "SIGPWR");
			break;
		case SIGINT: /* PID 1: ctrl-alt-del, since RB_DISABLE_CAD */
			begin_stop(st, st->pid1 ? FINAL_REBOOT : FINAL_EXIT, "SIGINT");
			break;
		case SIGHUP: /* the same as `ainit ctl reload`; the outcome is logged */
			reload_request(st, NULL);
			break;
		default:
			break;
		}
	}
	reap_all(st);
}

static int setup_signals(struct ai_state *st, struct ai_err *e)
{
	sigset_t set;
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGPWR, SIGHUP, SIGUSR1, SIGUSR2};
	sigemptyset(&set);
	/* Faults (SEGV, BUS, ILL, FPE, ABRT, TRAP, SYS) stay synchronous and
	 * unblocked; everything asynchronous arrives through the signalfd. */
	for (size_t i = 0; i < AI_ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	sigaddset(&set, SIGIO);   /* vport has its own signalfd for it */
	sigaddset(&set, SIGPIPE); /* writes to closed peers return EPIPE instead */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return ai_fail(e, "run", "sigprocmask", errno, "blocking signals");
	sigdelset(&set, SIGIO);
	sigdelset(&set, SIGPIPE);
	st->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (st->sigfd < 0)
		return ai_fail(e, "run", "signalfd", errno, "signals");
	return loop_add(&st->loop, &st->sigsrc, st->sigfd, EPOLLIN, on_signal, NULL, e);
}

struct ai_config *run_load_config(const char *const *files, int n, struct diag_list *d)
{
	struct ai_config *c = cfg_load(files, n, d);
	if (c)
		chk_config(c, d);
	diag_sort(d);
	if (d->errors && c) {
		cfg_free(c);
		c = NULL;
	}
	return c;
}

/* Load and check; on failure print the diagnostics and return NULL. */
static struct ai_config *load_config(const char *const *files, int n, char *why, size_t whylen)
{
	struct diag_list d = {0};
	struct ai_config *c = run_load_config(files, n, &d);
	diag_print(&d, stderr);
	if (!c)
		snprintf(why, whylen, "%s: %d error(s) in the configuration (see `ainit check %s`)",
			 files[0], d.errors ? d.errors : 1, files[0]);
	diag_free(&d);
	return c;
}

static int mkdir_p(const char *dir)
{
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s", dir);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* `ainit run` leaves nothing behind: whatever orphan still runs with us as
 * its parent (a daemon an agent forked) is killed and reaped. */
static void kill_leftovers(struct ai_state *st)
{
	pid_t self = getpid();
	for (int round = 0; round < 50; round++) {
		int found = 0;
		DIR *d = opendir("/proc");
		struct dirent *de;
		if (!d)
			return;
		while ((de = readdir(d))) {
			char path[64], buf[512];
			FILE *f;
			int pid = atoi(de->d_name), ppid = 0;
			if (pid <= 0)
				continue;
			snprintf(path, sizeof path, "/proc/%d/stat", pid);
			if (!(f = fopen(path, "re")))
				continue;
			if (fgets(buf, sizeof buf, f)) {
				char *rp = strrchr(buf, ')');
				if (rp && sscanf(rp + 2, "%*c %d", &ppid) != 1)
					ppid = 0;
			}
			fclose(f);
			if (ppid == self) {
				found++;
				kill(pid, SIGKILL);
			}
		}
		closedir(d);
		if (!found)
			return;
		/* Blocking waits are fine here: the supervisor is done. */
		for (;;) {
			pid_t p = waitpid(-1, NULL, 0);
			if (p > 0) {
				st->orphans_reaped++;
				continue;
			}
			if (p < 0 && errno == EINTR)
				continue;
			break;
		}
	}
}

static int supervise_loop(struct ai_state *st)
{
	unsigned failures = 0;
	while (st->phase != PHASE_DONE) {
		int r = loop_run_once(st, &st->loop);
		/* between rounds, where no callback holds a pointer into the
		 * tables a reload replaces */
		reload_poll(st);
		if (r < 0) {
			log_err("run", NULL, "epoll_wait: %s", strerror(-r));
			if (!st->pid1 || ++failures > 1000)
				return r;
			/* PID 1 must not die and must not spin: pause, then retry. */
			nanosleep(&(struct timespec){.tv_sec = 1}, NULL);
		}
	}
	return 0;
}

static int state_init(struct ai_state *st, struct ai_err *e)
{
	memset(st, 0, sizeof *st);
	st->sigfd = -1;
	st->ctl.lfd = -1;
	st->console_fd = -1;
	st->vport.fd = st->vport.uevfd = st->vport.sigfd = -1;
	st->started_ms = ai_now_ms();
	/* timers: one per agent, one per ctl client, a few for the modules */
	return loop_init(&st->loop, 64, e);
}

static void start_supervision(struct ai_state *st)
{
	struct ai_err e = {0};
	if (!st->cfg)
		return;
	if (sup_init(st, &e) < 0) {
		log_error(&e);
		snprintf(st->degraded, sizeof st->degraded, "cannot set up supervision: %.200s", e.msg);
		logcap_fini(st);
		sup_fini(st);
		cfg_free(st->cfg);
		st->cfg = NULL;
		return;
	}
	if (logcap_init(st, &e) < 0)
		log_error(&e); /* agents without capture write to /dev/null */
	if (probe_init(st, &e) < 0)
		log_error(&e); /* agents still run; their checks report the failure */
	if (met_init(st, &e) < 0)
		log_error(&e); /* supervision goes on without /metrics */
	log_info("run", NULL, "supervising %d agents in %d groups", st->cfg->nagents,
		 st->cfg->ngroups);
	sup_start_all(st);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"state-dir", required_argument, NULL, 'd'},
		{"verbose", no_argument, NULL, 'v'},
		{"sandbox", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *files[16];
	int nfiles = 0, c;
	struct ai_state state, *st = &state;
	struct ai_err e = {0};
	char path[256];
	const char *state_dir = DEFAULT_STATE_DIR;
	bool sandbox = false;
	struct sbx_sup sbx;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:vsh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (nfiles == (int)AI_ARRAY_SIZE(files)) {
				fprintf(stderr, "ainit run: too many --config files\n");
				return 2;
			}
			files[nfiles++] = optarg;
			break;
		case 'd': state_dir = optarg; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 's': sandbox = true; break;
		case 'h':
			printf("usage: ainit run --config FILE [--config OVERRIDE...] [--state-dir DIR] [--sandbox]\n");
			return 0;
		default:
			fprintf(stderr, "usage: ainit run --config FILE [--config OVERRIDE...] [--state-dir DIR] [--sandbox]\n");
			return 2;
		}
	}
	if (!nfiles || optind != argc) {
		fprintf(stderr, "usage: ainit run --config FILE [--config OVERRIDE...] [--state-dir DIR] [--sandbox]\n");
		return 2;
	}
	int rc = 1;
	if (state_init(st, &e) < 0) {
		log_error(&e);
		goto out;
	}
	st->state_dir = state_dir;
	st->config_path = files[0];
	st->config_files = files;
	st->nconfig_files = nfiles;
	st->cfg = load_config(files, nfiles, st->degraded, sizeof st->degraded);
	if (!st->cfg)
		goto out;
	/* Orphans of our agents are re-parented to us, not to the host's init. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		ai_fail(&e, "run", "prctl(PR_SET_CHILD_SUBREAPER)", errno, "subreaper");
		log_error(&e);
		goto out;
	}
	if (setup_signals(st, &e) < 0) {
		log_error(&e);
		goto out;
	}
	if (mkdir_p(state_dir) < 0) {
		log_err("run", state_dir, "mkdir: %s", strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/ctl.sock", state_dir);
	if (ctl_open(st, path, st->cfg->app.ctl_admin_group, &e) < 0) {
		log_error(&e);
		goto out;
	}
	log_info("run", NULL, "control socket %s", path);
	/* --sandbox: every group in its sandbox, as under PID 1 (sandbox.h). */
	if (sandbox) {
		if (sbx_sup_init(&sbx, st->cfg, files[0], state_dir, NULL, &e) < 0) {
			log_error(&e);
			goto out;
		}
		st->sbx = &sbx;
	}
	start_supervision(st);
	rc = supervise_loop(st) < 0 ? 1 : 0;
	ctl_close(st);
	kill_leftovers(st);
	if (st->sbx)
		sbx_sup_fini(st->sbx);
	st->sbx = NULL;
	log_info("run", NULL, "all agents stopped; %llu orphans reaped",
		 (unsigned long long)st->orphans_reaped);
out:
	if (st->reload) { /* ended (SIGTERM) while a reload waited */
		st->phase = PHASE_DONE;
		reload_poll(st);
	}
	ctl_close(st);
	logcap_fini(st);
	met_fini(st);
	probe_fini(st);
	sup_fini(st);
	cfg_free(st->cfg);
	free(st->cfg_names);
	loop_fini(&st->loop);
	if (st->sigfd >= 0)
		close(st->sigfd);
	return rc;
}

static bool cmdline_has(const char *word)
{
	char buf[4096];
	FILE *f = fopen("/proc/cmdline", "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n"))
		if (!strcmp(t, word))
			return true;
	return false;
}

/* The *.yaml files of /etc/ainit/appliance.d, in name order, merged over the appliance
 * config as `ainit run --config A --config B` does (e.g. stub agents). */
static int pid1_overrides(char (*buf)[256], const char **files)
{
	struct dirent **names;
	int n = scandir(PID1_OVERRIDE_DIR, &names, NULL, alphasort), k = 0;
	if (n < 0) {
		if (errno != ENOENT)
			log_warn("run", PID1_OVERRIDE_DIR, "scandir: %s", strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		size_t l = strlen(names[i]->d_name);
		if (l > 5 && !strcmp(names[i]->d_name + l - 5, ".yaml") && names[i]->d_name[0] != '.') {
			if (k == PID1_MAX_OVERRIDES)
				log_warn("run", PID1_OVERRIDE_DIR, "more than %d overrides; %s ignored",
					 PID1_MAX_OVERRIDES, names[i]->d_name);
			else {
				snprintf(buf[k], 256, "%s/%.200s", PID1_OVERRIDE_DIR, names[i]->d_name);
				files[k] = buf[k];
				log_info("run", NULL, "config override %s", buf[k]);
				k++;
			}
		}
		free(names[i]);
	}
	free(names);
	return k;
}

int run_config_files(const struct ai_state *st, char (*buf)[256], const char **files)
{
	if (!st->pid1) {
		for (int i = 0; i < st->nconfig_files && i < RUN_MAX_FILES; i++)
			files[i] = st->config_files[i];
		return st->nconfig_files;
	}
	files[0] = PID1_CONFIG;
	return 1 + pid1_overrides(buf, files + 1);
}

int run_pid1(int argc, char **argv)
{
	struct ai_state state, *st = &state;
	struct ai_err e = {0};
	const char *files[1 + PID1_MAX_OVERRIDES] = {PID1_CONFIG};
	char overrides[PID1_MAX_OVERRIDES][256];
	int nfiles;
	const char *sock;
	(void)argc;
	(void)argv;

	if (state_init(st, &e) < 0)
		log_error(&e); /* without a loop little works, but PID 1 goes on */
	st->pid1 = true;
	st->state_dir = DEFAULT_STATE_DIR;
	st->config_path = PID1_CONFIG;
	boot_early(st);
	if (setup_signals(st, &e) < 0)
		log_error(&e);
	/* boot_early sets st->degraded when the root partition could not be
	 * reached: the initramfs it stayed in has no config. */
	if (!st->degraded[0]) {
		nfiles = 1 + pid1_overrides(overrides, files + 1);
		st->cfg = load_config(files, nfiles, st->degraded, sizeof st->degraded);
	}
	if (!st->cfg)
		log_err("run", NULL, "DEGRADED: %s; serving ctl only", st->degraded);
	else
		boot_apply(st, st->cfg);
	if (mkdir_p(DEFAULT_STATE_DIR) < 0)
		log_err("run", DEFAULT_STATE_DIR, "mkdir: %s", strerror(errno));
	sock = st->cfg && st->cfg->app.ctl_socket ? st->cfg->app.ctl_socket
						  : DEFAULT_STATE_DIR "/ctl.sock";
	if (ctl_open(st, sock, st->cfg ? st->cfg->app.ctl_admin_group : NULL, &e) < 0)
		log_error(&e);
	if (vport_open(st, &e) < 0)
		log_error(&e);
	/* Every group in its sandbox, unless the kernel command line says
	 * ainit.sandbox=0 (a debugging escape, said loudly). */
	struct sbx_sup sbx1; /* run_pid1 never returns: lives as long as PID 1 */
	if (st->cfg && !cmdline_has("ainit.sandbox=0")) {
		if (sbx_sup_init(&sbx1, st->cfg, PID1_CONFIG, DEFAULT_STATE_DIR, PID1_VOLUMES, &e) < 0)
			log_error(&e);
		else
			st->sbx = &sbx1;
	} else if (st->cfg) {
		log_warn("run", NULL, "ainit.sandbox=0: agents run WITHOUT their sandboxes");
	}
	start_supervision(st);
	for (;;) {
		supervise_loop(st);
		if (st->phase == PHASE_DONE)
			boot_final(st); /* never returns */
	}
}
