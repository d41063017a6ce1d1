/* state: the init's one state struct, made in main and passed as `st`.
 * No other mutable global exists but the log sink (log.c).
 */
#ifndef AINIT_STATE_H
#define AINIT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ctl.h"
#include "loop.h"
#include "supervise.h"
#include "vport.h"

struct probe_tab;
struct met_server;
struct sbx_sup;
struct rl_pending;

enum ai_phase { PHASE_RUN, PHASE_STOPPING, PHASE_DONE };
enum ai_final { FINAL_EXIT, FINAL_POWEROFF, FINAL_REBOOT };

struct ai_state {
	struct ai_config *cfg;      /* NULL in degraded mode (no usable config) */
	const char *config_path;
	const char *const *config_files; /* `ainit run`: the --config files, in order */
	int nconfig_files;
	struct ai_loop loop;
	int sigfd;
	struct loop_src sigsrc;
	bool pid1;
	const char *state_dir;
	struct ctl_server ctl;
	struct sup_agent *agents;   /* parallel to cfg->agents */
	int nagents;
	enum ai_phase phase;
	enum ai_final final;
	char degraded[256];         /* why there is no config; "" when fine */
	uint64_t started_ms;
	uint64_t orphans_reaped;
	struct probe_tab *probes;   /* probe.c: health checks, remote dependencies */
	struct met_server *metrics; /* metrics.c: GET /metrics, /health/AGENT */
	int console_fd;             /* PID 1: /dev/console (boot.c), else -1 */
	struct ai_vport vport;      /* PID 1: virtio-serial control channel */
	struct sbx_sup *sbx;        /* non-NULL: groups run in their sandbox (sandbox.h) */
	struct rl_pending *reload;  /* reload.c: a reload waiting for agents to stop */
	char (*cfg_names)[256];     /* reload.c: file names cfg's positions point at */
	int next_notify_id;         /* notify sockets: ids of agents added by a reload */
};

#endif
