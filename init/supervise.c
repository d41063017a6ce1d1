/* The agents' state machine: see supervise.h for what each state means.
 * Every (state, event) pair is in actions[][] below, no-ops included. */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "logcap.h"
#include "probe.h"
#include "sandbox.h"
#include "spawn.h"
#include "state.h"
#include "util.h"

extern char **environ;

typedef void (*sup_action)(struct ai_state *st, struct sup_agent *a);

static void set_state(struct ai_state *st, struct sup_agent *a, enum sup_state s);
static void try_start_waiting(struct ai_state *st);
static void shutdown_step(struct ai_state *st);

const char *sup_state_name(enum sup_state s)
{
	static const char *const n[] = {"waiting", "starting", "healthy", "unhealthy",
					"stopping", "exited", "failed", "backoff"};
	return s < SUP_NSTATES ? n[s] : "?";
}

const char *sup_health_name(enum sup_health h)
{
	static const char *const n[] = {"-", "starting", "healthy", "unhealthy"};
	return n[h];
}

const char *sup_reason_name(enum sup_reason r)
{
	static const char *const n[] = {"",	  "exit-code",	"signal",   "exec",	"burst",
					"unhealthy", "ctl-stop", "shutdown", "stop-timeout", "dependency"};
	return n[r];
}

uint64_t sup_backoff_next(uint64_t cur, uint64_t delay, uint64_t max_delay)
{
	uint64_t n = cur ? cur * 2 : delay;
	if (n < delay)
		n = delay;
	return n > max_delay ? max_delay : n;
}

bool sup_burst_allow(uint64_t *ring, unsigned cap, unsigned *n, unsigned *head, uint64_t now,
		     uint64_t within)
{
	if (cap == 0)
		return false;
	/* ring holds the last `cap` restart times; the oldest is at *head when full */
	if (*n == cap && now - ring[*head] < within)
		return false;
	ring[*head] = now;
	*head = (*head + 1) % cap;
	if (*n < cap)
		(*n)++;
	return true;
}

static bool running(const struct sup_agent *a)
{
	return a->pid > 0;
}

/* Does agent x depend on agent y (directly, or through groups)? */
/* The edge by which agent x depends on agent y (directly, or through a
 * group), or NULL; with restart_only, only an edge written restart: true. */
static const struct cfg_dep *edge(const struct ai_state *st, int x, int y, bool restart_only)
{
	const struct cfg_agent *ax = &st->cfg->agents[x], *ay = &st->cfg->agents[y];
	const struct cfg_deps *lists[2] = {&ax->deps, &st->cfg->groups[ax->group].deps};
	if (x == y)
		return NULL;
	for (int l = 0; l < 2; l++) {
		/* group dependencies apply to every agent of the group, but not
		 * between agents of the same group */
		if (l == 1 && ay->group == ax->group)
			break;
		for (int i = 0; i < lists[l]->n; i++) {
			const struct cfg_dep *d = &lists[l]->v[i];
			if ((!restart_only || d->restart) &&
			    ((d->kind == DEP_AGENT && d->index == y) ||
			     (d->kind == DEP_GROUP && d->index == ay->group)))
				return d;
		}
	}
	return NULL;
}

static bool agent_ready(const struct sup_agent *a)
{
	/* A one-shot that finished cleanly also satisfies dependants. */
	return a->state == SUP_HEALTHY ||
	       (a->state == SUP_EXITED && a->reason == SR_EXIT_CODE && a->last_status == 0);
}

/* All dependencies healthy? Sets a->waiting_for to the first that is not. */
static void dispatch(struct ai_state *st, struct sup_agent *a, enum sup_event ev);

/* The first dependency of a that is not healthy (its name), or NULL. */
static const char *first_unready(struct ai_state *st, const struct sup_agent *a)
{
	const struct ai_config *c = st->cfg;
	const struct cfg_deps *lists[2] = {&a->cfg->deps, &c->groups[a->cfg->group].deps};
	for (int l = 0; l < 2; l++)
		for (int i = 0; i < lists[l]->n; i++) {
			const struct cfg_dep *d = &lists[l]->v[i];
			if (d->kind == DEP_AGENT) {
				if (!agent_ready(&st->agents[d->index]))
					return d->target;
			} else if (d->kind == DEP_GROUP) {
				const struct cfg_group *g = &c->groups[d->index];
				if (d->index == a->cfg->group)
					continue;
				for (int k = 0; k < g->nagents; k++)
					if (!agent_ready(&st->agents[g->first_agent + k]))
						return st->agents[g->first_agent + k].cfg->name;
			} else if (!probe_remote_ready(st, d)) {
				/* Remote HOST:AGENT: healthy only once probed over the
				 * network (probe.c); until then we wait. */
				return d->name;
			}
		}
	return NULL;
}

/* All dependencies healthy? Sets a->waiting_for to the first that is not. */
static bool deps_ready(struct ai_state *st, struct sup_agent *a)
{
	a->waiting_for = first_unready(st, a);
	return a->waiting_for == NULL;
}

const char *sup_dep_down(struct ai_state *st, const struct sup_agent *a)
{
	return st->cfg ? first_unready(st, a) : NULL;
}

/* A dependency left `healthy` (it exited, restarts or failed its checks):
 * dependants whose edge says restart go down now and start again once it
 * is healthy; the others keep running and status names the dependency. */
static void on_dependency_down(struct ai_state *st, struct sup_agent *dep)
{
	for (int i = 0; i < st->nagents; i++) {
		struct sup_agent *b = &st->agents[i];
		const struct cfg_dep *d;
		if (!running(b) || b->state == SUP_STOPPING || !b->want_up)
			continue;
		if (!(d = edge(st, i, dep->idx, true)))
			continue;
		log_info("supervise", b->cfg->name, "dependency %s left healthy (%s); restarting",
			 dep->cfg->name, sup_state_name(dep->state));
		b->reason = SR_DEPENDENCY;
		snprintf(b->reason_text, sizeof b->reason_text, "restarted: dependency %s left healthy",
			 dep->cfg->name);
		b->restart_pending = true;
		dispatch(st, b, SUP_EV_STOP);
	}
}

static void on_timer(struct ai_state *st, struct loop_timer *t);
static void on_pidfd(struct ai_state *st, struct loop_src *src, uint32_t ev);
static void on_execfd(struct ai_state *st, struct loop_src *src, uint32_t ev);


static void close_exec(struct ai_state *st, struct sup_agent *a)
{
	if (a->execfd >= 0) {
		loop_del(&st->loop, &a->execsrc);
		close(a->execfd);
		a->execfd = -1;
	}
}

static void do_start(struct ai_state *st, struct sup_agent *a)
{
	struct ai_err e = {0};
	struct spawn_result r;
	struct spawn_req req = {
		.argv = a->cfg->command.v,
		.envp = a->envp,
		.cwd = a->cfg->working_dir,
		.in_fd = -1,
		.out_fd = logcap_out_fd(a),
		.err_fd = logcap_err_fd(a),
		.what = a->cfg->name,
		.cgroup_fd = -1,
		.rlimits = &a->cfg->rlimits,
	};
	if (!deps_ready(st, a)) {
		set_state(st, a, SUP_WAITING);
		return;
	}
	a->exec_failed = false;
	a->kill_sent = false;
	a->restart_pending = false;
	struct sbx_child sc; /* read by the child of spawn_start() */
	if (st->sbx && sbx_sup_spawn_req(st->sbx, st->cfg, a->idx, &sc, &req, &e) < 0) {
		log_error(&e);
		a->reason = SR_EXEC;
		ai_err_str(&e, a->reason_text, sizeof a->reason_text);
		set_state(st, a, SUP_FAILED);
		return;
	}
	if (spawn_start(&req, &r, &e) < 0) {
		log_error(&e);
		a->reason = SR_EXEC;
		ai_err_str(&e, a->reason_text, sizeof a->reason_text);
		set_state(st, a, SUP_FAILED);
		return;
	}
	a->pid = r.pid;
	a->pidfd = r.pidfd;
	a->execfd = r.execfd;
	a->started_ms = ai_now_ms();
	a->health = a->cfg->health.kind == HK_NONE ? SH_UNKNOWN : SH_STARTING;
	if (loop_add(&st->loop, &a->pidsrc, a->pidfd, EPOLLIN, on_pidfd, a, &e) < 0)
		log_error(&e); /* the SIGCHLD reaper still sees the exit */
	if (loop_add(&st->loop, &a->execsrc, a->execfd, EPOLLIN, on_execfd, a, &e) < 0) {
		log_error(&e);
		close_exec(st, a);
	}
	log_info("supervise", a->cfg->name, "started, pid %d", (int)a->pid);
	{
		char note[64];
		snprintf(note, sizeof note, "ainit: started, pid %d", (int)a->pid);
		logcap_note(st, a, note);
	}
	set_state(st, a, SUP_STARTING);
}

static void signal_agent(struct ai_state *st, struct sup_agent *a, int sig)
{
	(void)st;
	if (!running(a))
		return;
	/* The agent leads its own session: signal its whole process group so
	 * that helpers it forked go too; fall back to the pid. */
	if (kill(-a->pid, sig) < 0 && kill(a->pid, sig) < 0 && errno != ESRCH)
		log_warn("supervise", a->cfg->name, "kill(%s): %s", ai_signal_name(sig),
			 strerror(errno));
}

static void do_stop(struct ai_state *st, struct sup_agent *a)
{
	if (!running(a)) {
		set_state(st, a, SUP_EXITED);
		return;
	}
	signal_agent(st, a, a->cfg->stop.signal);
	loop_timer_arm_in(&st->loop, &a->timer, (uint64_t)a->cfg->stop.timeout_ms);
	set_state(st, a, SUP_STOPPING);
}

static void schedule_restart(struct ai_state *st, struct sup_agent *a)
{
	const struct cfg_restart *rp = &a->cfg->restart;
	uint64_t now = ai_now_ms();
	if (!sup_burst_allow(a->burst_ring, (unsigned)rp->burst, &a->burst_n, &a->burst_head, now,
			     (uint64_t)rp->within_ms)) {
		char w[32];
		ai_fmt_duration(w, sizeof w, (uint64_t)rp->within_ms);
		a->reason = SR_BURST;
		snprintf(a->reason_text, sizeof a->reason_text,
			 "restarted %lld times within %s; giving up", (long long)rp->burst, w);
		log_err("supervise", a->cfg->name, "%s", a->reason_text);
		set_state(st, a, SUP_FAILED);
		return;
	}
	/* A run that stayed up for reset_after starts the backoff afresh. */
	if (a->started_ms && now - a->started_ms >= (uint64_t)rp->reset_after_ms)
		a->next_delay_ms = 0;
	a->next_delay_ms = sup_backoff_next(a->next_delay_ms, (uint64_t)rp->delay_ms,
					    (uint64_t)rp->max_delay_ms);
	a->restarts++;
	loop_timer_arm_in(&st->loop, &a->timer, a->next_delay_ms);
	set_state(st, a, SUP_BACKOFF);
}

/* The process is gone; decide what comes next. */
static void on_exit_ev(struct ai_state *st, struct sup_agent *a)
{
	int s = a->last_status;
	bool clean = WIFEXITED(s) && WEXITSTATUS(s) == 0;
	enum sup_state prev = a->state;
	/* stopped because its health checks failed: a restart, whatever the
	 * exit status, and the reason stays the failed check */
	bool unhealthy_stop = prev == SUP_STOPPING && a->reason == SR_UNHEALTHY && a->want_up;

	loop_timer_disarm(&st->loop, &a->timer);
	if (unhealthy_stop) {
		/* keep reason_text */
	} else if (a->reason != SR_EXEC || !a->exec_failed) {
		if (WIFSIGNALED(s)) {
			a->reason = SR_SIGNAL;
			snprintf(a->reason_text, sizeof a->reason_text, "killed by %s",
				 ai_signal_name(WTERMSIG(s)));
		} else {
			a->reason = SR_EXIT_CODE;
			snprintf(a->reason_text, sizeof a->reason_text, "exited with status %d",
				 WEXITSTATUS(s));
		}
	}
	if (prev == SUP_STOPPING && a->kill_sent) {
		a->reason = SR_STOP_TIMEOUT;
		snprintf(a->reason_text, sizeof a->reason_text,
			 "did not stop within %lldms of %s; killed", (long long)a->cfg->stop.timeout_ms,
			 ai_signal_name(a->cfg->stop.signal));
	}
	log_info("supervise", a->cfg->name, "%s", a->reason_text);
	{
		char note[300];
		snprintf(note, sizeof note, "ainit: %s", a->reason_text);
		logcap_note(st, a, note);
	}

	if (st->phase != PHASE_RUN || !a->want_up) {
		if (prev == SUP_STOPPING && !a->kill_sent && a->reason != SR_EXEC)
			a->reason = st->phase != PHASE_RUN ? SR_SHUTDOWN : SR_CTL_STOP;
		set_state(st, a, SUP_EXITED);
		return;
	}
	if (a->exec_failed) {
		/* Not executable / not found / sandbox setup: a config problem that
		 * restarting cannot fix. */
		set_state(st, a, SUP_FAILED);
		return;
	}
	if (a->restart_pending) {
		a->restart_pending = false;
		deps_ready(st, a); /* so that the `waiting` event names what it waits for */
		set_state(st, a, SUP_WAITING);
		do_start(st, a);
		return;
	}
	switch (a->cfg->restart.policy) {
	case RP_NO:
		set_state(st, a, SUP_EXITED);
		return;
	case RP_ON_FAILURE:
		if (clean && prev != SUP_UNHEALTHY && !unhealthy_stop) {
			set_state(st, a, SUP_EXITED);
			return;
		}
		break;
	default:
		break;
	}
	schedule_restart(st, a);
}

/* ---- actions ---- */
static void act_none(struct ai_state *st, struct sup_agent *a) { (void)st, (void)a; }
static void act_start(struct ai_state *st, struct sup_agent *a) { do_start(st, a); }
static void act_exit(struct ai_state *st, struct sup_agent *a) { on_exit_ev(st, a); }

static void act_exec_ok(struct ai_state *st, struct sup_agent *a)
{
	if (a->cfg->health.kind == HK_NONE) {
		a->health = SH_UNKNOWN;
		set_state(st, a, SUP_HEALTHY);
	}
}

static void act_exec_fail(struct ai_state *st, struct sup_agent *a)
{
	(void)st;
	a->exec_failed = true;
	a->reason = SR_EXEC;
}

static void act_probe_ok(struct ai_state *st, struct sup_agent *a)
{
	a->health = SH_HEALTHY;
	set_state(st, a, SUP_HEALTHY);
}

static void act_probe_fail(struct ai_state *st, struct sup_agent *a)
{
	a->health = SH_UNHEALTHY;
	set_state(st, a, SUP_UNHEALTHY);
	if (a->cfg->on_unhealthy == OU_RESTART) {
		a->reason = SR_UNHEALTHY;
		const struct probe_stat *ps = probe_stat_of(st, a->idx);
		snprintf(a->reason_text, sizeof a->reason_text, "health check failed %lld times: %.190s",
			 (long long)a->cfg->health.retries, ps ? ps->last : "");
		log_warn("supervise", a->cfg->name, "%s; restarting", a->reason_text);
		do_stop(st, a);
	}
}

static void act_stop(struct ai_state *st, struct sup_agent *a)
{
	loop_timer_disarm(&st->loop, &a->timer);
	do_stop(st, a);
}

static void act_stop_idle(struct ai_state *st, struct sup_agent *a)
{
	loop_timer_disarm(&st->loop, &a->timer);
	if (a->reason != SR_BURST && a->reason != SR_EXEC)
		a->reason = st->phase == PHASE_RUN ? SR_CTL_STOP : SR_SHUTDOWN;
	set_state(st, a, a->state == SUP_FAILED ? SUP_FAILED : SUP_EXITED);
}

static void act_stop_timeout(struct ai_state *st, struct sup_agent *a)
{
	log_warn("supervise", a->cfg->name, "still running %lldms after %s; sending SIGKILL",
		 (long long)a->cfg->stop.timeout_ms, ai_signal_name(a->cfg->stop.signal));
	a->kill_sent = true;
	signal_agent(st, a, SIGKILL);
	if (st->sbx) { /* and whatever it left in its cgroup leaf (sandbox.h) */
		struct ai_err ke = {0};
		if (sbx_sup_kill_agent(st->sbx, a->idx, &ke) < 0)
			log_error(&ke);
	}
}

static void act_restart_when_stopped(struct ai_state *st, struct sup_agent *a)
{
	(void)st;
	a->restart_pending = true;
}

static void act_start_fresh(struct ai_state *st, struct sup_agent *a)
{
	/* ctl start of a failed/exited agent: a fresh budget */
	a->burst_n = a->burst_head = 0;
	a->next_delay_ms = 0;
	a->reason = SR_NONE;
	a->reason_text[0] = 0;
	do_start(st, a);
}

static const sup_action actions[SUP_NSTATES][SUP_NEVENTS] = {
	/*                DEPS_READY  EXEC_OK      EXEC_FAIL      EXIT      PROBE_OK      PROBE_FAIL      TIMER             START                      STOP */
	[SUP_WAITING]   = {act_start, act_none,    act_none,      act_none, act_none,     act_none,       act_none,         act_start,                 act_stop_idle},
	[SUP_STARTING]  = {act_none,  act_exec_ok, act_exec_fail, act_exit, act_probe_ok, act_probe_fail, act_none,         act_none,                  act_stop},
	[SUP_HEALTHY]   = {act_none,  act_none,    act_none,      act_exit, act_none,     act_probe_fail, act_none,         act_none,                  act_stop},
	[SUP_UNHEALTHY] = {act_none,  act_none,    act_none,      act_exit, act_probe_ok, act_probe_fail, act_none,         act_none,                  act_stop},
	[SUP_STOPPING]  = {act_none,  act_none,    act_exec_fail, act_exit, act_none,     act_none,       act_stop_timeout, act_restart_when_stopped,  act_none},
	[SUP_EXITED]    = {act_none,  act_none,    act_none,      act_none, act_none,     act_none,       act_none,         act_start_fresh,           act_none},
	[SUP_FAILED]    = {act_none,  act_none,    act_none,      act_none, act_none,     act_none,       act_none,         act_start_fresh,           act_stop_idle},
	[SUP_BACKOFF]   = {act_none,  act_none,    act_none,      act_none, act_none,     act_none,       act_start,        act_start,                 act_stop_idle},
};

static void dispatch(struct ai_state *st, struct sup_agent *a, enum sup_event ev)
{
	actions[a->state][ev](st, a);
}

static void set_state(struct ai_state *st, struct sup_agent *a, enum sup_state s)
{
	enum sup_state old = a->state;
	if (old == s)
		return;
	a->state = s;
	a->state_since_ms = ai_now_ms();
	if (s == SUP_HEALTHY)
		a->healthy_since_ms = a->state_since_ms;
	log_debug("supervise", a->cfg->name, "%s -> %s", sup_state_name(old), sup_state_name(s));
	ctl_agent_event(st, a, (int)old, (int)s);
	probe_on_state(st, a); /* start or end health checks */
	/* Transitions that can unblock others, or take them down. */
	if (st->phase == PHASE_RUN && (s == SUP_HEALTHY || s == SUP_EXITED))
		try_start_waiting(st);
	if (st->phase == PHASE_RUN && old == SUP_HEALTHY)
		on_dependency_down(st, a);
	if (st->phase == PHASE_STOPPING && !running(a))
		shutdown_step(st);
}

static void try_start_waiting(struct ai_state *st)
{
	/* Starting one agent cannot make another ready (it is not healthy
	 * yet), so one pass is enough. */
	for (int i = 0; i < st->nagents; i++) {
		struct sup_agent *a = &st->agents[i];
		if (a->state == SUP_WAITING && a->want_up && deps_ready(st, a))
			dispatch(st, a, SUP_EV_DEPS_READY);
	}
}

void sup_deps_changed(struct ai_state *st)
{
	if (st->phase == PHASE_RUN)
		try_start_waiting(st);
}

static void note_spawn_fail(struct sup_agent *a, const struct spawn_fail *f)
{
	snprintf(a->reason_text, sizeof a->reason_text, "%.31s: %.150s: %.60s", f->step, f->msg,
		 f->errnum ? strerror(f->errnum) : "failed");
	log_err("supervise", a->cfg->name, "cannot start: %s", a->reason_text);
}

static struct sup_agent *find_by_pid(struct ai_state *st, pid_t pid)
{
	for (int i = 0; i < st->nagents; i++)
		if (st->agents[i].pid == pid)
			return &st->agents[i];
	return NULL;
}

bool sup_on_reaped(struct ai_state *st, pid_t pid, int status)
{
	struct sup_agent *a = find_by_pid(st, pid);
	if (!a)
		return false;
	a->last_status = status;
	a->pid = 0;
	if (a->pidfd >= 0) {
		loop_del(&st->loop, &a->pidsrc);
		close(a->pidfd);
		a->pidfd = -1;
	}
	/* The exec pipe may still hold the child's failure report. */
	if (a->execfd >= 0) {
		struct spawn_fail f;
		if (spawn_read_status(a->execfd, &f) == 0) {
			a->exec_failed = true;
			a->reason = SR_EXEC;
			note_spawn_fail(a, &f);
		}
		close_exec(st, a);
	}
	dispatch(st, a, SUP_EV_EXIT);
	return true;
}

static void on_pidfd(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct sup_agent *a = src->data;
	siginfo_t si = {0};
	(void)ev;
	if (waitid(P_PIDFD, (id_t)a->pidfd, &si, WEXITED | WNOHANG) < 0) {
		/* ECHILD: the SIGCHLD reaper got it first and dispatched it. */
		if (errno != ECHILD)
			log_warn("supervise", a->cfg->name, "waitid: %s", strerror(errno));
		return;
	}
	if (si.si_pid == 0)
		return;
	int status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
					       : W_EXITCODE(0, si.si_status) |
							 (si.si_code == CLD_DUMPED ? 0x80 : 0);
	sup_on_reaped(st, si.si_pid, status);
}

static void on_execfd(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct sup_agent *a = src->data;
	struct spawn_fail f;
	int r = spawn_read_status(a->execfd, &f);
	(void)ev;
	if (r == -EAGAIN)
		return;
	if (r == 1) {
		close_exec(st, a);
		dispatch(st, a, SUP_EV_EXEC_OK);
		return;
	}
	if (r == 0)
		note_spawn_fail(a, &f);
	close_exec(st, a);
	dispatch(st, a, SUP_EV_EXEC_FAIL);
}

static void on_timer(struct ai_state *st, struct loop_timer *t)
{
	dispatch(st, t->data, SUP_EV_TIMER);
}

static char **build_env(struct ai_state *st, struct ai_config *c, const struct cfg_agent *ca,
			     int notify_id)
{
	const struct cfg_group *g = &c->groups[ca->group];
	struct ai_arena *ar = &c->arena;
	int max = ca->env.n + 16;
	char **env = ai_arena_alloc(ar, (size_t)max * sizeof *env);
	int n = 0;
	char buf[512];
	bool have_path = false, have_bind = false;
	if (!env)
		return NULL;
#define ADD(...)                                                      \
	do {                                                          \
		snprintf(buf, sizeof buf, __VA_ARGS__);               \
		if (n < max - 1 && (env[n] = ai_arena_strdup(ar, buf))) \
			n++;                                          \
	} while (0)
	for (int i = 0; i < ca->env.n; i++) {
		if (!strcmp(ca->env.v[i].key, "PATH"))
			have_path = true;
		if (!strcmp(ca->env.v[i].key, "ZMQ_BIND_IP"))
			have_bind = true;
		ADD("%s=%s", ca->env.v[i].key, ca->env.v[i].value);
	}
	if (!have_path)
		ADD("PATH=%s", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!have_bind)
		ADD("ZMQ_BIND_IP=0.0.0.0");
	ADD("AINIT_AGENT=%s", ca->name);
	ADD("AINIT_GROUP=%s", g->name);
	if (ca->port)
		ADD("AGENT_PORT=%d", ca->port);
	if (ca->health_port)
		ADD("HEALTH_CHECK_PORT=%d", ca->health_port);
	if (ca->health.kind == HK_NOTIFY) {
		char np[128];
		probe_notify_path(st->state_dir, notify_id, getpid(), np, sizeof np);
		ADD("NOTIFY_SOCKET=%s", np);
		if (ca->health.watchdog_ms > 0)
			ADD("WATCHDOG_USEC=%lld", (long long)ca->health.watchdog_ms * 1000);
	}
#undef ADD
	env[n] = NULL;
	return env;
}

/* One fresh agent entry: nothing in the loop yet. */
static int agent_make(struct ai_state *st, struct ai_config *c, struct sup_agent *a, int i,
		      int notify_id, struct ai_err *e)
{
	a->cfg = &c->agents[i];
	a->idx = i;
	a->state = SUP_WAITING;
	a->want_up = true;
	a->pidfd = a->execfd = -1;
	a->last_status = -1;
	a->timer.slot = -1;
	a->notify_id = notify_id;
	a->burst_ring = calloc((size_t)a->cfg->restart.burst + 1, sizeof *a->burst_ring);
	a->envp = build_env(st, c, a->cfg, notify_id);
	if (!a->burst_ring || !a->envp)
		return ai_fail(e, "supervise", "calloc", ENOMEM, "agent %s", a->cfg->name);
	return 0;
}

int sup_init(struct ai_state *st, struct ai_err *e)
{
	struct ai_config *c = st->cfg;
	st->agents = calloc((size_t)c->nagents + 1, sizeof *st->agents);
	if (!st->agents) /* nagents stays 0: the fini functions walk nothing */
		return ai_fail(e, "supervise", "calloc", ENOMEM, "agent table");
	st->nagents = c->nagents;
	st->next_notify_id = c->nagents;
	for (int i = 0; i < c->nagents; i++) {
		struct sup_agent *a = &st->agents[i];
		if (agent_make(st, c, a, i, i, e) < 0)
			return -ENOMEM;
		if (loop_timer_register(&st->loop, &a->timer, on_timer, a, e) < 0)
			return -ENOMEM;
	}
	return 0;
}

void sup_fini(struct ai_state *st)
{
	for (int i = 0; i < st->nagents; i++)
		free(st->agents[i].burst_ring);
	free(st->agents);
	st->agents = NULL;
	st->nagents = 0;
}

/* ---- reload ---- */

struct sup_agent *sup_table_prepare(struct ai_state *st, struct ai_config *nc, const int *carry,
				    struct ai_err *e)
{
	struct sup_agent *t = calloc((size_t)nc->nagents + 1, sizeof *t);
	int next = st->next_notify_id;
	if (!t) {
		ai_fail(e, "supervise", "calloc", ENOMEM, "agent table");
		return NULL;
	}
	for (int i = 0; i < nc->nagents; i++) {
		/* a carried agent keeps its NOTIFY_SOCKET: its process has it */
		int nid = carry[i] >= 0 ? st->agents[carry[i]].notify_id : next++;
		if (agent_make(st, nc, &t[i], i, nid, e) < 0) {
			sup_table_discard(t, nc->nagents);
			return NULL;
		}
	}
	st->next_notify_id = next;
	return t;
}

void sup_table_discard(struct sup_agent *t, int n)
{
	for (int i = 0; t && i < n; i++)
		free(t[i].burst_ring);
	free(t);
}

/* Old agent o's process, timer, counters and log move to n (whose config
 * is the same, in the new config). */
static void adopt(struct ai_state *st, struct sup_agent *n, struct sup_agent *o)
{
	struct ai_err e = {0};
	const struct cfg_agent *cfg = n->cfg;
	char **envp = n->envp;
	int idx = n->idx;
	bool pid_in = o->pidsrc.added, exec_in = o->execsrc.added, armed = o->timer.armed;
	uint64_t when = o->timer.when_ms;
	loop_del(&st->loop, &o->pidsrc);
	loop_del(&st->loop, &o->execsrc);
	loop_timer_unregister(&st->loop, &o->timer);
	free(n->burst_ring); /* the old ring, same size, keeps the budget */
	*n = *o;
	n->cfg = cfg;
	n->idx = idx;
	n->envp = envp;
	n->waiting_for = NULL; /* pointed into the old config; recomputed */
	n->pidsrc = n->execsrc = (struct loop_src){0};
	n->timer = (struct loop_timer){.slot = -1};
	o->burst_ring = NULL;
	o->log = NULL;
	o->pid = 0;
	o->pidfd = o->execfd = -1;
	if (pid_in && loop_add(&st->loop, &n->pidsrc, n->pidfd, EPOLLIN, on_pidfd, n, &e) < 0)
		log_error(&e); /* the SIGCHLD reaper still sees the exit */
	if (exec_in && loop_add(&st->loop, &n->execsrc, n->execfd, EPOLLIN, on_execfd, n, &e) < 0)
		log_error(&e);
	if (loop_timer_register(&st->loop, &n->timer, on_timer, n, &e) < 0)
		log_error(&e);
	else if (armed)
		loop_timer_arm(&st->loop, &n->timer, when);
	logcap_rebind(n);
}

/* An old agent that does not carry over (it is not running). */
static void release(struct ai_state *st, struct sup_agent *o)
{
	loop_timer_unregister(&st->loop, &o->timer);
	close_exec(st, o);
	if (o->pidfd >= 0) {
		loop_del(&st->loop, &o->pidsrc);
		close(o->pidfd);
		o->pidfd = -1;
	}
	logcap_agent_close(st, o);
	free(o->burst_ring);
	o->burst_ring = NULL;
}

void sup_table_commit(struct ai_state *st, struct ai_config *nc, struct sup_agent *t,
		      const int *carry, const int *log_from)
{
	struct ai_err e = {0};
	for (int i = 0; i < nc->nagents; i++) {
		struct sup_agent *n = &t[i];
		if (carry[i] >= 0) {
			adopt(st, n, &st->agents[carry[i]]);
			continue;
		}
		if (loop_timer_register(&st->loop, &n->timer, on_timer, n, &e) < 0)
			log_error(&e);
		if (log_from[i] >= 0) { /* a restarted agent keeps its log history */
			n->log = st->agents[log_from[i]].log;
			st->agents[log_from[i]].log = NULL;
			logcap_rebind(n);
		}
	}
	for (int j = 0; j < st->nagents; j++)
		release(st, &st->agents[j]);
	free(st->agents);
	st->agents = t;
	st->nagents = nc->nagents;
	st->cfg = nc;
}

void sup_hold_down(struct ai_state *st, int i)
{
	st->agents[i].want_up = false;
	dispatch(st, &st->agents[i], SUP_EV_STOP); /* waiting -> exited, ctl-stop */
}

/* One round of an ordered stop of the agents that go (every agent at
 * shutdown; with retiring_only, those a reload drops or replaces): each one
 * running that no running agent of the same set depends on is stopped, the
 * rest wait for a later round. Returns whether any of the set still runs. */
static bool stop_step(struct ai_state *st, bool retiring_only)
{
	bool busy = false;
	for (int i = 0; i < st->nagents; i++) {
		struct sup_agent *a = &st->agents[i];
		if (retiring_only && !a->retiring)
			continue;
		if (!running(a)) {
			if (a->state == SUP_WAITING || a->state == SUP_BACKOFF)
				dispatch(st, a, SUP_EV_STOP);
			continue;
		}
		busy = true;
		if (a->state == SUP_STOPPING)
			continue;
		bool needed = false;
		for (int j = 0; j < st->nagents && !needed; j++) {
			const struct sup_agent *b = &st->agents[j];
			needed = (!retiring_only || b->retiring) && running(b) && edge(st, j, i, false);
		}
		if (!needed)
			dispatch(st, a, SUP_EV_STOP);
	}
	return busy;
}

void sup_retire(struct ai_state *st, int i)
{
	st->agents[i].retiring = true;
	st->agents[i].want_up = false;
}

bool sup_retire_step(struct ai_state *st)
{
	return stop_step(st, true);
}

void sup_start_all(struct ai_state *st)
{
	for (int i = 0; i < st->nagents; i++) {
		struct sup_agent *a = &st->agents[i];
		if (a->state == SUP_WAITING && deps_ready(st, a))
			dispatch(st, a, SUP_EV_DEPS_READY);
	}
}

static void shutdown_step(struct ai_state *st)
{
	if (!stop_step(st, false))
		st->phase = PHASE_DONE;
}

void sup_shutdown(struct ai_state *st)
{
	if (st->phase != PHASE_RUN)
		return;
	st->phase = PHASE_STOPPING;
	log_info("supervise", NULL, "stopping %d agents in reverse dependency order", st->nagents);
	for (int i = 0; i < st->nagents; i++)
		st->agents[i].want_up = false;
	shutdown_step(st);
}

/* ctl: an agent name or a group name. */
static int for_target(struct ai_state *st, const char *name, enum sup_event ev, bool want_up,
		      struct ai_err *e)
{
	int ai = cfg_find_agent(st->cfg, name), gi;
	if (st->phase != PHASE_RUN)
		return ai_fail(e, "supervise", NULL, EBUSY, "%s: shutting down", name);
	if (st->reload)
		return ai_fail(e, "supervise", NULL, EBUSY,
			       "%s: a reload is in progress (waiting for agents to stop); try again", name);
	if (ai >= 0) {
		st->agents[ai].want_up = want_up;
		dispatch(st, &st->agents[ai], ev);
		return 0;
	}
	if ((gi = cfg_find_group(st->cfg, name)) >= 0) {
		const struct cfg_group *g = &st->cfg->groups[gi];
		for (int k = 0; k < g->nagents; k++) {
			st->agents[g->first_agent + k].want_up = want_up;
			dispatch(st, &st->agents[g->first_agent + k], ev);
		}
		return 0;
	}
	return ai_fail(e, "supervise", NULL, ENOENT, "no agent or group named \"%s\"", name);
}

int sup_ctl_start(struct ai_state *st, const char *name, struct ai_err *e)
{
	return for_target(st, name, SUP_EV_START, true, e);
}

int sup_ctl_stop(struct ai_state *st, const char *name, struct ai_err *e)
{
	return for_target(st, name, SUP_EV_STOP, false, e);
}

int sup_ctl_restart(struct ai_state *st, const char *name, struct ai_err *e)
{
	int r = for_target(st, name, SUP_EV_STOP, true, e);
	if (r < 0)
		return r;
	/* Whatever stopped at once (not running) starts again now; the rest
	 * restart when their exit arrives. */
	return for_target(st, name, SUP_EV_START, true, e);
}

void sup_probe_result(struct ai_state *st, struct sup_agent *a, bool ok)
{
	dispatch(st, a, ok ? SUP_EV_PROBE_OK : SUP_EV_PROBE_FAIL);
}

bool sup_any_failed(const struct ai_state *st)
{
	for (int i = 0; i < st->nagents; i++)
		if (st->agents[i].state == SUP_FAILED)
			return true;
	return false;
}
