/* supervise: the agents' state machine. Every (state, event) pair is spelled
 * out in one table in supervise.c; this comment defines the states.
 *
 *   WAITING   not running; some dependency is not healthy yet (or the agent
 *             is administratively stopped and wants to be up again later)
 *   STARTING  process running, health not yet passed (inside start_period)
 *   HEALTHY   running and its health check passes (or it has none)
 *   UNHEALTHY running, `retries` health checks failed in a row
 *   STOPPING  stop signal sent, waiting for exit (stop timeout armed)
 *   EXITED    not running and not to be restarted (policy, ctl stop, exit 0
 *             under on-failure)
 *   FAILED    not running: restart budget spent, or it cannot be started
 *   BACKOFF   not running, restart timer armed
 *
 * Owns: starting processes (through sup_spawn hooks), restart policy,
 * backoff and burst budget, ordered shutdown. Never blocks; allocation only
 * in sup_init() and, for a reload, sup_table_prepare().
 */
#ifndef AINIT_SUPERVISE_H
#define AINIT_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "loop.h"

struct ai_state;
struct cfg_agent;

enum sup_state {
	SUP_WAITING, SUP_STARTING, SUP_HEALTHY, SUP_UNHEALTHY,
	SUP_STOPPING, SUP_EXITED, SUP_FAILED, SUP_BACKOFF,
	SUP_NSTATES
};

enum sup_event {
	SUP_EV_DEPS_READY,   /* all dependencies healthy (or none) */
	SUP_EV_EXEC_OK,      /* the child exec'd its command */
	SUP_EV_EXEC_FAIL,    /* the child could not set up or exec */
	SUP_EV_EXIT,         /* the process ended */
	SUP_EV_PROBE_OK,
	SUP_EV_PROBE_FAIL,   /* `retries` failures in a row */
	SUP_EV_TIMER,        /* backoff elapsed / stop timeout */
	SUP_EV_START,        /* ctl start */
	SUP_EV_STOP,         /* ctl stop, or shutdown */
	SUP_NEVENTS
};

/* Why an agent last stopped or failed: data, shown by status. */
enum sup_reason {
	SR_NONE, SR_EXIT_CODE, SR_SIGNAL, SR_EXEC, SR_BURST, SR_UNHEALTHY,
	SR_CTL_STOP, SR_SHUTDOWN, SR_STOP_TIMEOUT, SR_DEPENDENCY,
};

enum sup_health { SH_UNKNOWN, SH_STARTING, SH_HEALTHY, SH_UNHEALTHY };

struct sup_agent {
	const struct cfg_agent *cfg;
	int idx;
	enum sup_state state;
	bool want_up;            /* desired state: running */
	pid_t pid;
	int pidfd;
	struct loop_src pidsrc;
	int execfd;              /* CLOEXEC status pipe from the child */
	struct loop_src execsrc;
	struct loop_timer timer; /* backoff delay or stop timeout */
	uint64_t state_since_ms, started_ms, healthy_since_ms;
	unsigned restarts;       /* total restarts since ainit started */
	uint64_t *burst_ring;    /* start times of the last `burst` restarts */
	unsigned burst_n, burst_head;
	uint64_t next_delay_ms;  /* delay the next restart will wait */
	int last_status;         /* wait status of the last exit, -1 none */
	enum sup_reason reason;
	char reason_text[256];
	enum sup_health health;
	const char *waiting_for; /* name of the first unhealthy dependency */
	bool kill_sent;
	bool exec_failed;        /* this run never reached exec */
	bool restart_pending;    /* stopping in order to start again */
	bool retiring;           /* a reload removes or replaces it: stop, stay down */
	int notify_id;           /* its NOTIFY_SOCKET's number (probe_notify_path) */
	char **envp;             /* built once at sup_init */
	struct logcap *log;      /* stdout/stderr capture (logcap.c) */
};

int sup_init(struct ai_state *st, struct ai_err *e);
void sup_fini(struct ai_state *st);
/* Start everything whose dependencies are met. */
void sup_start_all(struct ai_state *st);
/* Begin orderly shutdown (reverse dependency order). When all agents are
 * down, st->phase becomes PHASE_DONE. */
void sup_shutdown(struct ai_state *st);
/* A child was reaped (by pidfd or the SIGCHLD loop). Returns true when the
 * pid belonged to an agent. */
bool sup_on_reaped(struct ai_state *st, pid_t pid, int status);
int sup_ctl_start(struct ai_state *st, const char *name, struct ai_err *e);
int sup_ctl_stop(struct ai_state *st, const char *name, struct ai_err *e);
int sup_ctl_restart(struct ai_state *st, const char *name, struct ai_err *e);
/* Something a waiting agent may depend on became healthy outside this
 * module (a remote dependency): start whatever is ready now. */
void sup_deps_changed(struct ai_state *st);
/* Health probes report here. */
void sup_probe_result(struct ai_state *st, struct sup_agent *a, bool ok);
/* An agent that is `failed` or required and not healthy. */
bool sup_any_failed(const struct ai_state *st);
/* The first dependency of a running agent that is not healthy now (a
 * dependency that restarted or turned unhealthy after a started), or NULL. */
const char *sup_dep_down(struct ai_state *st, const struct sup_agent *a);

/* Reload (reload.c). A new table for config nc, allocated but not in use
 * (nothing registered in the loop): agent i takes over old agent carry[i]'s
 * process, timers and counters when carry[i] >= 0. NULL on ENOMEM. */
struct ai_config;
struct sup_agent *sup_table_prepare(struct ai_state *st, struct ai_config *nc, const int *carry,
				    struct ai_err *e);
void sup_table_discard(struct sup_agent *t, int n);
/* Install t (and nc as st->cfg): carried agents move over (pidfd, exec
 * pipe and timer re-registered, log capture re-pointed); agent i keeps old
 * agent log_from[i]'s log capture; every other old agent is released (none
 * may be running). The old config is the caller's to free. */
void sup_table_commit(struct ai_state *st, struct ai_config *nc, struct sup_agent *t,
		      const int *carry, const int *log_from);
/* Agent i of a new table stays down (it was stopped by ctl stop before a
 * reload replaced it). */
void sup_hold_down(struct ai_state *st, int i);
/* Mark agent i to go (want it down, keep it down). */
void sup_retire(struct ai_state *st, int i);
/* Stop retiring agents that no running retiring agent depends on; true
 * while any of them still runs. */
bool sup_retire_step(struct ai_state *st);

const char *sup_state_name(enum sup_state s);
const char *sup_health_name(enum sup_health h);
const char *sup_reason_name(enum sup_reason r);

/* Pure helpers, unit-tested: next backoff delay, and the burst budget. */
uint64_t sup_backoff_next(uint64_t cur, uint64_t delay, uint64_t max_delay);
/* Record a start at now; returns false when it would exceed burst within. */
bool sup_burst_allow(uint64_t *ring, unsigned cap, unsigned *n, unsigned *head,
		     uint64_t now, uint64_t within);

#endif
