/* legacy: the seed-era YAML files ainit replaces, read as they are.
 *
 * Owns: recognising a legacy file by its content (not its name), reading it
 * into a flat model with the position of every value, and the checks of
 * those files alone and together (the same rule ids as the v1 checks where
 * the rule is the same). Used by check.c and import.c. Never writes files.
 *
 *   startup_config.yaml, MainPC form:  agent_groups: {GROUP: {AGENT: {...}}}
 *   startup_config.yaml, PC-2 form:    KEY: [{name: AGENT, script_path: ...}, ...]
 *   container_grouping.yaml:           container_groups: {GROUP: {agents: [{name: ...}]}}
 *   container_groups.yaml:             GROUP: [AGENT, ...], container_mapping: {...}
 *   PORT_REGISTRY.md:                  a markdown table | # | Agent Name | ZMQ Port | Health Check Port |
 */
#ifndef AINIT_LEGACY_H
#define AINIT_LEGACY_H

#include "check.h"

enum lg_kind { LG_ERROR = -1, LG_V1 = 0, LG_STARTUP, LG_GROUPING, LG_GROUPS, LG_REGISTRY };

struct lg_name {
	const char *name;
	struct cfg_pos pos;
};

struct lg_agent {
	const char *name;
	struct cfg_pos pos;
	int group;               /* index into file->groups, -1 none */
	const struct ct_node *node;
	const char *script;
	struct cfg_pos script_pos;
	int port, hp;            /* 0 = none; base number for "${PORT_OFFSET}+N" */
	struct cfg_pos port_pos, hp_pos;
	bool port_expr, hp_expr; /* written as ${PORT_OFFSET}+N */
	int required;            /* -1 unset, 0, 1, 2 = not a boolean */
	struct cfg_pos req_pos;
	struct lg_name *deps;
	int ndeps;
	const char *host;
	int dup_of;              /* index of the first definition, -1 */
};

struct lg_group {
	const char *name;        /* as written */
	const char *container;   /* container_mapping name, or NULL */
	struct cfg_pos pos;
	struct lg_name *members; /* grouping files: the listed agent names */
	int nmembers;
	const char *description;
	bool misplaced;          /* a docker group indented under agent_groups */
};

/* name -> int, open addressing; keys are not copied */
struct lg_index {
	const char **key;
	int *val;
	size_t cap, n;
};

struct lg_file {
	const char *path;
	int kind;                /* enum lg_kind */
	struct ct_node *root;
	struct lg_agent *agents;
	int nagents;
	struct lg_group *groups;
	int ngroups;
	struct lg_group *docker; /* startup files: docker groups found inside */
	int ndocker;
	struct chk_port *extra;  /* other port claims: error_bus_port, config.*_port */
	int nextra;
	const struct ct_node *env;    /* global environment mapping */
	const struct ct_node *health; /* global health_checks mapping */
	int range_lo[2], range_hi[2]; /* pc2_network agent/health port ranges, 0 = none */
	struct cfg_pos range_pos[2];
	struct lg_index agent_ix;     /* first definitions only */
};

struct lg_set;
struct lg_set *lg_set_new(void);
void lg_set_free(struct lg_set *s);
/* Read one file. Returns LG_V1 (not kept: load it with cfg_load), a legacy
 * kind (kept in the set), or LG_ERROR (diagnostic added). */
int lg_add_file(struct lg_set *s, const char *path, struct diag_list *d);
/* The same for text in memory (name is kept, buf is not). */
int lg_add_buf(struct lg_set *s, const char *name, const char *buf, size_t len,
	       struct diag_list *d);
int lg_count(const struct lg_set *s);
struct lg_file *lg_get(struct lg_set *s, int i);
/* All checks over the legacy files of the set, alone and together. */
void lg_check(struct lg_set *s, const struct chk_opts *o, struct diag_list *d);
/* The startup file a grouping file describes: same directory, else the only
 * startup file given; NULL when none. */
struct lg_file *lg_startup_for(struct lg_set *s, const struct lg_file *grouping);
int lg_find_agent(const struct lg_file *f, const char *name);
/* A grouping file (container_grouping.yaml or container_groups.yaml)? */
bool lg_is_grouping(const struct lg_file *f);

#endif
