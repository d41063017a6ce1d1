/* check: `ainit check FILE...`, the static rules over loaded configs (schema
 * v1 and the legacy files, see legacy.h). Pure: reads files, never touches
 * the system. Rule ids are documented in docs/config.md.
 *
 * The supervisor calls chk_config() after cfg_load() and refuses a config
 * for which it adds errors.
 */
#ifndef AINIT_CHECK_H
#define AINIT_CHECK_H

#include <stdbool.h>

#include "config.h"

struct chk_opts {
	bool verbose; /* also a note per agent saying which health-port rule it follows */
};

/* Whole-config rules of one machine (ports, cycles, volumes, users, ...). */
void chk_config(const struct ai_config *c, struct diag_list *d);
void chk_config_opts(const struct ai_config *c, const struct chk_opts *o, struct diag_list *d);
/* Rules across machines: HOST:AGENT dependencies, health-port rule per machine. */
void chk_configs(const struct ai_config *const *cs, int n, struct diag_list *d);

/* Shared by the v1 and legacy checks. */
struct chk_port {
	int port;
	const char *owner; /* agent (or key) name */
	const char *what;  /* "port", "health port", "config.grpc_port", ... */
	struct cfg_pos pos;
	long long order;   /* tie-break: the earlier claim is "first" (chk_order) */
};
/* Sort claims and report each one whose port an earlier claim holds. */
void chk_ports(struct chk_port *v, int n, struct diag_list *d);
/* Order of a claim: file number given on the command line, then position. */
long long chk_order(int file, struct cfg_pos p);

struct chk_edge {
	int from, to;
	struct cfg_pos pos; /* where the dependency is written */
};
/* Report each dependency cycle once, as "A -> B -> A", at the edge leaving
 * the node with the lowest index. name[i] NULL = a virtual node (not shown). */
void chk_cycles(int nnodes, const char *const *name, const struct chk_edge *e, int ne,
		struct diag_list *d);

/* Health-port rules: bit 1 = port + 1000, bit 2 = in 8100-8199. */
struct chk_hp {
	const char *name;
	int port, hp; /* 0 = none: not counted */
	struct cfg_pos port_pos, hp_pos;
};
/* Which rule each agent follows (notes when verbose), the ones that follow
 * none, and two rules on one machine. key names the health port in messages. */
void chk_health_ports(const struct chk_hp *v, int n, const char *key, bool verbose,
		      struct diag_list *d);
#define CHK_HP_PLUS1000 1
#define CHK_HP_81XX 2
int chk_health_rule(int port, int health_port);
const char *chk_health_rule_name(int rules);

/* `ainit check`: exit 0 clean (warnings allowed), 1 errors, 2 unreadable
 * file or bad usage. */
int cmd_check(int argc, char **argv);

#endif
