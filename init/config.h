/* config: the appliance configuration, schema version 1.
 *
 * Owns: struct ai_config and everything hanging off it (one arena), loading
 * it from YAML (via cfgtree), inheritance agent -> group -> defaults ->
 * built-in, and the diagnostics of loading. After cfg_load() returns the
 * config is read-only. Never forks, never touches the system.
 *
 * Every value keeps its source position (struct cfg_pos) so that every
 * diagnostic, from the loader or from check.c, points at file:line:col.
 */
#ifndef AINIT_CONFIG_H
#define AINIT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cfgtree.h"
#include "diag.h"
#include "util.h"

#define CFG_UNSET (-1)
#define CFG_MAX_AGENTS 4096 /* per config; more is an error ("limit") */
#define CFG_MAX_GROUPS 1024

enum cfg_restart_policy { RP_UNSET = -1, RP_NO, RP_ON_FAILURE, RP_ALWAYS, RP_UNLESS_STOPPED };
enum cfg_health_kind { HK_NONE, HK_TCP, HK_ZMQ, HK_EXEC, HK_NOTIFY };
enum cfg_network { NET_UNSET = -1, NET_NONE, NET_HOST, NET_BRIDGE };
enum cfg_runtime { RT_UNSET = -1, RT_NATIVE, RT_RUNC };
enum cfg_gpu_mode { GPU_NONE, GPU_ALL, GPU_LIST, GPU_COUNT };
enum cfg_on_unhealthy { OU_UNSET = -1, OU_RESTART, OU_IGNORE };

struct cfg_kv {
	const char *key, *value;
	struct cfg_pos pos;
};

struct cfg_strv { /* list of strings with positions */
	const char **v; /* NULL-terminated */
	struct cfg_pos *pos;
	int n;
	struct cfg_pos at; /* position of the list itself; line 0 = not given */
};

struct cfg_restart {
	int policy;         /* enum cfg_restart_policy, RP_UNSET */
	int64_t delay_ms, max_delay_ms, within_ms, reset_after_ms; /* CFG_UNSET */
	int64_t burst;      /* CFG_UNSET */
	struct cfg_pos pos;
};

struct cfg_health {
	int kind;           /* enum cfg_health_kind; HK_NONE with !set = inherit */
	bool set;
	int port;           /* tcp / zmq */
	const char *host;   /* tcp / zmq target host, NULL = 127.0.0.1 */
	struct cfg_strv exec;
	int64_t interval_ms, timeout_ms, start_period_ms, start_interval_ms;
	int64_t watchdog_ms; /* notify: WATCHDOG=1 expected within this */
	int64_t retries;
	struct cfg_pos pos;
};

struct cfg_stop {
	int signal;         /* CFG_UNSET */
	int64_t timeout_ms; /* CFG_UNSET */
	struct cfg_pos pos;
};

enum cfg_dep_kind { DEP_AGENT, DEP_GROUP, DEP_REMOTE };
struct cfg_dep {
	const char *name;   /* as written: "X", or "HOST:X" */
	const char *host;   /* for DEP_REMOTE */
	const char *target; /* agent/group name */
	struct cfg_pos pos;
	int kind;           /* resolved by cfg_resolve() */
	int index;          /* agent or group index; -1 unresolved/remote */
	bool restart;       /* live edge: restart the dependant when this
			     * dependency restarts or turns unhealthy */
};

struct cfg_deps {
	struct cfg_dep *v;
	int n;
};

struct cfg_env {
	struct cfg_kv *v;
	int n;
};

struct cfg_mount { /* a group volume: NAME:/path[:ro] or /host:/path[:ro] */
	const char *source; /* volume name or absolute host path */
	const char *target;
	bool named, ro;
	struct cfg_pos pos;
};

struct cfg_resources {
	int64_t memory_max, memory_high; /* bytes, CFG_UNSET */
	int64_t cpus_milli;              /* 1500 = 1.5 CPUs, CFG_UNSET */
	int64_t cpu_weight, pids;        /* CFG_UNSET */
	struct cfg_pos pos;
};

struct cfg_gpu {
	int mode;           /* enum cfg_gpu_mode */
	int *index;
	int nindex;
	int count;
	struct cfg_pos pos;
};

/* Resource limits applied to each agent before it drops privileges:
 * soft = hard; CFG_UNSET = inherit from the supervisor; -1 stays "unset",
 * RLIM_INFINITY is written as "unlimited". */
enum cfg_rlimit { RL_NOFILE, RL_NPROC, RL_CORE, RL_MEMLOCK, RL_STACK, RL_N };
struct cfg_rlimits {
	int64_t v[RL_N];    /* CFG_UNSET or the value; INT64_MAX = unlimited */
};

struct cfg_agent {
	const char *name;
	struct cfg_pos pos;
	int group;          /* index into cfg->groups */
	struct cfg_strv command;
	const char *working_dir;
	struct cfg_env env;     /* merged: defaults < group < agent */
	const char *user;       /* resolved: agent > group > defaults > NULL(root) */
	struct cfg_pos user_pos;
	int port, health_port;  /* 0 = none */
	struct cfg_pos port_pos, health_port_pos;
	struct cfg_health health;   /* resolved */
	struct cfg_restart restart; /* resolved, no CFG_UNSET left */
	struct cfg_stop stop;       /* resolved */
	struct cfg_deps deps;       /* own depends_on (group's added by resolve) */
	bool required;
	int on_unhealthy;
	struct cfg_rlimits rlimits; /* resolved: agent > group > defaults */
};

struct cfg_group {
	const char *name;
	struct cfg_pos pos;
	struct cfg_deps deps;
	int network;            /* resolved enum cfg_network */
	const char *user;
	struct cfg_pos user_pos;
	struct cfg_resources res;
	struct cfg_mount *mounts;
	int nmounts;
	struct cfg_strv devices;
	struct cfg_gpu gpu;
	const char *seccomp;    /* profile name, resolved */
	struct cfg_strv caps;   /* resolved */
	int runtime;            /* resolved */
	bool read_only_root;
	struct cfg_env env;     /* group-level (already merged into agents) */
	struct cfg_rlimits rlimits; /* group > defaults (agents may override) */
	int first_agent, nagents; /* agents of a group are contiguous */
};

struct cfg_fsmount {
	const char *what, *where, *type, *options;
	bool format_if_empty;
	struct cfg_pos pos;
};

struct cfg_iface {
	const char *name, *address, *gateway;
	struct cfg_pos pos;
};

struct cfg_appliance {
	const char *hostname;
	struct cfg_pos hostname_pos;
	struct cfg_strv kernel_modules;
	struct cfg_fsmount *mounts;
	int nmounts;
	struct cfg_iface *ifaces;
	int nifaces;
	const char *bridge_name, *bridge_subnet;
	struct cfg_env hosts;          /* name -> address */
	const char *ctl_socket, *ctl_admin_group;
	const char *metrics_listen;
	struct cfg_pos metrics_pos;
	const char *data_dir;          /* where named volumes live */
};

struct cfg_volume {
	const char *name;
	struct cfg_pos pos;
};

struct ai_config {
	struct ai_arena arena;
	const char *file;
	int version;
	struct cfg_appliance app;
	struct cfg_volume *volumes;
	int nvolumes;
	struct cfg_group *groups;
	int ngroups;
	struct cfg_agent *agents;
	int nagents;
};

/* Load and resolve FILE (more files = overrides merged in order, later
 * wins per key). Diagnostics go to *d. Returns NULL when any error was
 * reported (the caller prints d), else the config. */
struct ai_config *cfg_load(const char *const *files, int nfiles, struct diag_list *d);
void cfg_free(struct ai_config *c);

int cfg_find_agent(const struct ai_config *c, const char *name);
int cfg_find_group(const struct ai_config *c, const char *name);

/* Names, for messages and the ctl protocol. */
const char *cfg_restart_policy_name(int p);
const char *cfg_health_kind_name(int k);

#endif
