/* reload: `ainit ctl reload` and SIGHUP. The running supervisor re-reads the
 * config files it was started with (run.c decides which and loads them the
 * way it did at start), refuses a config with errors as a whole (the old one
 * keeps running untouched, the reply carries the file:line:col diagnostics)
 * and applies the difference, agent by agent, on the normalised config
 * (everything resolved: defaults, group values, dependencies by name):
 *
 *   added      only in the new config: started, dependency-gated as at boot
 *   removed    gone from the new config: stopped (reverse dependency order,
 *              its stop signal and timeout) and dropped
 *   restarted  its normalised config changed: stopped with the old config,
 *              started with the new one (the reply names the first key)
 *   unchanged  not touched: same process, restarts, backoff and burst budget
 *
 * Appliance-level changes that cannot be applied live (hostname, kernel
 * modules, mounts, network, ctl socket, metrics listener, data dir) are
 * reported as "needs reboot" and otherwise ignored. With sandboxes (PID 1,
 * `ainit run --sandbox`), a group whose sandbox settings changed restarts all
 * its agents in a rebuilt sandbox.
 *
 * Two steps, so that nothing is freed under a running callback:
 * reload_request() loads, checks, diffs and begins stopping what goes;
 * reload_poll(), which the loop's owner calls between rounds, swaps the
 * tables (agents, probes, log capture, followers, metrics, sandboxes) once
 * none of the agents that go is running, then starts what is new.
 *
 * Owns: the pending reload and the diff. Allocates at request and swap time
 * only; a failed allocation before the swap leaves the old config running.
 */
#ifndef AINIT_RELOAD_H
#define AINIT_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define RL_KEY 64
#define RL_MAX_REBOOT 16

enum rl_act { RL_KEEP, RL_RESTART, RL_ADD, RL_REMOVE };

struct rl_plan {
	int nold, nnew;
	int *old_of_new;          /* new index -> old index, -1 = added */
	int *new_of_old;          /* old index -> new index, -1 = removed */
	unsigned char *act;       /* enum rl_act, per new agent */
	char (*why)[RL_KEY];      /* per new agent: the first key that changed */
	bool *group_rebuild;      /* per new group: its sandbox settings changed */
	int nkeep, nrestart, nadd, nremove;
	char reboot[RL_MAX_REBOOT][RL_KEY]; /* appliance keys not applied live */
	int nreboot;
};

/* Pure: agent i's normalised config as "key=value" lines in a fixed order
 * (environment sorted by name, newlines in values escaped). With
 * `sandboxed`, its group's sandbox settings are part of it. Returns the
 * length, or cap when it did not fit (callers size generously). */
size_t rl_describe_agent(const struct ai_config *c, int i, bool sandboxed, char *buf, size_t cap);
/* Pure: group gi's sandbox settings, the same way. */
size_t rl_describe_sandbox(const struct ai_config *c, int gi, char *buf, size_t cap);
/* Pure: the first key (in a's order, then b's) whose line differs between
 * two descriptions, into key; false when they are equal. */
bool rl_first_diff(const char *a, const char *b, char *key, size_t cap);
/* Pure: appliance-level keys that differ (into p->reboot). */
void rl_appliance_diff(const struct ai_config *a, const struct ai_config *b, struct rl_plan *p);
/* The whole diff. 0 or -ENOMEM (p is then empty). */
int rl_plan_make(const struct ai_config *old, const struct ai_config *nc, bool sandboxed,
		 struct rl_plan *p);
void rl_plan_free(struct rl_plan *p);

struct ai_state;
struct jw;
/* ctl reload (w: the reply being written) or SIGHUP (w NULL: logged).
 * Returns 0 when the new config was accepted, else -errno. */
int reload_request(struct ai_state *st, struct jw *w);
/* Between loop rounds: finish a pending reload when it can be finished. */
void reload_poll(struct ai_state *st);
/* Is a reload waiting for agents to stop? (ctl start/stop are refused.) */
bool reload_pending(const struct ai_state *st);

#endif
