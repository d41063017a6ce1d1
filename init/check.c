/* Static rules over whole configs. The loader (config.c) already reports
 * what one value alone can tell (types, unknown keys, durations, undefined
 * dependencies, duplicate agents); here are the rules that need the whole
 * config or several of them: ports, cycles, volumes, users, health-port rules,
 * HOST:AGENT dependencies. Legacy files: legacy.c, with the helpers below. */
#include "check.h"
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "legacy.h"

/* ---- ports ------------------------------------------------------------ */

static int port_cmp(const void *a, const void *b)
{
	const struct chk_port *x = a, *y = b;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}


long long chk_order(int file, struct cfg_pos p)
{
	return ((long long)file << 44) | ((long long)p.line << 16) | (p.col & 0xffff);
}

void chk_ports(struct chk_port *v, int n, struct diag_list *d)
{
	qsort(v, (size_t)n, sizeof *v, port_cmp);
	for (int i = 1; i < n; i++) {
		int j = i - 1;
		while (j > 0 && v[j - 1].port == v[i].port)
			j--;
		if (v[j].port != v[i].port)
			continue;
		const struct chk_port *first = &v[j], *x = &v[i];
		/* owner "" = a key of its own (error_bus_port: 7150) */
		if (!*x->owner)
			diag_add(d, DIAG_ERROR, x->pos, "port-collision", "%s %d is already the %s%s%s",
				 x->what, x->port, first->what, *first->owner ? " of " : "",
				 first->owner);
		else if (first->owner == x->owner || !strcmp(first->owner, x->owner))
			diag_add(d, DIAG_ERROR, x->pos, "port-collision",
				 "%s %d of %s is also its %s", x->what, x->port, x->owner,
				 first->what);
		else
			diag_add(d, DIAG_ERROR, x->pos, "port-collision",
				 "%s %d of %s is already the %s%s%s", x->what, x->port, x->owner,
				 first->what, *first->owner ? " of " : "", first->owner);
		if (*first->owner)
			diag_note(d, first->pos, "%s of %s is %d here", first->what, first->owner,
				  first->port);
		else
			diag_note(d, first->pos, "%s is %d here", first->what, first->port);
	}
}

/* ---- dependency cycles -------------------------------------------------- */

static int edge_cmp(const void *a, const void *b)
{
	const struct chk_edge *x = a, *y = b;
	return x->from < y->from ? -1 : x->from > y->from;
}

/* Iterative DFS with colours; a grey target closes a cycle, which is the
 * grey path from the target to the top of the stack. Nodes of a reported
 * cycle are marked so that a tangle is reported once per node set, not once
 * per back edge. Iterative so that a hostile config cannot overflow the
 * stack. */
void chk_cycles(int nn, const char *const *name, const struct chk_edge *ev, int ne,
		struct diag_list *d)
{
	struct chk_edge *e = NULL;
	int *first = NULL, *stack = NULL, *iter = NULL, *pos_in_stack = NULL;
	unsigned char *colour = NULL, *reported = NULL;
	if (nn <= 0 || ne <= 0)
		return;
	e = malloc((size_t)ne * sizeof *e);
	first = calloc((size_t)nn + 1, sizeof *first);
	stack = malloc((size_t)nn * sizeof *stack);
	iter = malloc((size_t)nn * sizeof *iter);
	pos_in_stack = malloc((size_t)nn * sizeof *pos_in_stack);
	colour = calloc((size_t)nn, 1);
	reported = calloc((size_t)nn, 1);
	if (!e || !first || !stack || !iter || !pos_in_stack || !colour || !reported) {
		d->oom = true;
		goto out;
	}
	memcpy(e, ev, (size_t)ne * sizeof *e);
	qsort(e, (size_t)ne, sizeof *e, edge_cmp);
	for (int i = 0; i < ne; i++)
		first[e[i].from + 1]++;
	for (int i = 0; i < nn; i++)
		first[i + 1] += first[i];

	for (int root = 0; root < nn; root++) {
		int sp = 0;
		if (colour[root])
			continue;
		stack[sp] = root;
		iter[sp] = first[root];
		pos_in_stack[root] = sp++;
		colour[root] = 1;
		while (sp) {
			int u = stack[sp - 1];
			if (iter[sp - 1] == first[u + 1]) {
				colour[u] = 2;
				sp--;
				continue;
			}
			const struct chk_edge *x = &e[iter[sp - 1]++];
			int v = x->to;
			if (colour[v] == 0) {
				colour[v] = 1;
				stack[sp] = v;
				iter[sp] = first[v];
				pos_in_stack[v] = sp++;
				continue;
			}
			if (colour[v] != 1)
				continue;
			/* cycle: stack[pos_in_stack[v]..sp-1] then back to v */
			int lo = pos_in_stack[v], len = sp - lo, start = lo;
			bool seen = false;
			for (int k = lo; k < sp; k++) {
				seen |= reported[stack[k]];
				if (stack[k] < stack[start])
					start = k;
			}
			if (seen)
				continue;
			for (int k = lo; k < sp; k++)
				reported[stack[k]] = 1;
			/* Rotate to begin at the lowest-numbered (first defined) node;
			 * the edge out of it is where the error points. Each hop shows
			 * the line of the dependency that makes it. */
			char msg[1024];
			size_t m = 0;
			struct cfg_pos at = x->pos, closing = x->pos, pend = x->pos;
			for (int step = 0; step <= len; step++) {
				int k = lo + (start - lo + step) % len;
				int node = stack[k];
				const struct chk_edge *out = k == sp - 1 ? x : &e[iter[k] - 1];
				if (name[node] && m < sizeof msg) {
					if (step == 0)
						m += (size_t)snprintf(msg, sizeof msg, "%s", name[node]);
					else if (pend.line && pend.file == at.file)
						m += (size_t)snprintf(msg + m, sizeof msg - m,
								      " -> %s (line %u)", name[node],
								      pend.line);
					else
						m += (size_t)snprintf(msg + m, sizeof msg - m, " -> %s",
								      name[node]);
				}
				if (step == len)
					break;
				if (step == 0)
					at = out->pos;
				if (name[node]) {
					pend = out->pos;
					closing = out->pos;
				}
			}
			diag_add(d, DIAG_ERROR, at, "dependency-cycle", "dependency cycle: %s", msg);
			diag_note(d, closing, "the cycle closes here");
		}
	}
out:
	free(e);
	free(first);
	free(stack);
	free(iter);
	free(pos_in_stack);
	free(colour);
	free(reported);
}

/* Agents 0..na-1, then per group an "out" node (the group's own
 * depends_on, inherited by its agents) and an "all" node (depending on the
 * group means depending on each of its agents). */
static void check_cycles(const struct ai_config *c, struct diag_list *d)
{
	int na = c->nagents, ng = c->ngroups, nn = na + 2 * ng, ne = 0, cap = 0;
	const char **name = calloc((size_t)nn + 1, sizeof *name);
	struct chk_edge *e = NULL;
	if (!name) {
		d->oom = true;
		return;
	}
	for (int i = 0; i < na; i++) {
		name[i] = c->agents[i].name;
		cap += c->agents[i].deps.n + 1;
	}
	for (int g = 0; g < ng; g++)
		cap += c->groups[g].deps.n + c->groups[g].nagents;
	e = malloc(((size_t)cap + 1) * sizeof *e);
	if (!e) {
		free(name);
		d->oom = true;
		return;
	}
#define OUT(g) (na + 2 * (g))
#define ALL(g) (na + 2 * (g) + 1)
	for (int i = 0; i < na; i++) {
		const struct cfg_agent *a = &c->agents[i];
		for (int k = 0; k < a->deps.n; k++) {
			const struct cfg_dep *x = &a->deps.v[k];
			if (x->index < 0 || x->kind == DEP_REMOTE)
				continue;
			e[ne++] = (struct chk_edge){i, x->kind == DEP_AGENT ? x->index : ALL(x->index),
						    x->pos};
		}
		if (c->groups[a->group].deps.n)
			e[ne++] = (struct chk_edge){i, OUT(a->group), c->groups[a->group].deps.v[0].pos};
	}
	for (int g = 0; g < ng; g++) {
		const struct cfg_group *gr = &c->groups[g];
		for (int k = 0; k < gr->deps.n; k++) {
			const struct cfg_dep *x = &gr->deps.v[k];
			if (x->index < 0 || x->kind == DEP_REMOTE)
				continue;
			e[ne++] = (struct chk_edge){OUT(g),
						    x->kind == DEP_AGENT ? x->index : ALL(x->index),
						    x->pos};
		}
		for (int k = 0; k < gr->nagents; k++)
			e[ne++] = (struct chk_edge){ALL(g), gr->first_agent + k,
						    c->agents[gr->first_agent + k].pos};
	}
#undef OUT
#undef ALL
	chk_cycles(nn, name, e, ne, d);
	free(e);
	free(name);
}

/* ---- health-port rules -------------------------------------------------- */

int chk_health_rule(int port, int hp)
{
	int r = 0;
	if (port > 0 && hp == port + 1000)
		r |= CHK_HP_PLUS1000;
	if (hp >= 8100 && hp <= 8199)
		r |= CHK_HP_81XX;
	return r;
}

const char *chk_health_rule_name(int r)
{
	static const char *const n[] = {"no rule", "port+1000", "81xx", "port+1000 and 81xx"};
	return n[r & 3];
}

/* Which rule a machine follows: the one most of its agents follow. */
static int majority_rule(const int *count)
{
	int plus = count[CHK_HP_PLUS1000] + count[3], x81 = count[CHK_HP_81XX] + count[3];
	return plus >= x81 ? CHK_HP_PLUS1000 : CHK_HP_81XX;
}

void chk_health_ports(const struct chk_hp *v, int n, const char *key, bool verbose,
		      struct diag_list *d)
{
	int count[4] = {0}, first[4] = {-1, -1, -1, -1}, total = 0;
	for (int i = 0; i < n; i++) {
		if (!v[i].port || !v[i].hp)
			continue;
		int r = chk_health_rule(v[i].port, v[i].hp);
		count[r]++;
		total++;
		if (first[r] < 0)
			first[r] = i;
		if (verbose)
			diag_add(d, DIAG_NOTE, v[i].hp_pos, "health-port-rule",
				 "%s: %s %d for port %d follows %s", v[i].name, key, v[i].hp,
				 v[i].port, chk_health_rule_name(r));
	}
	int maj = majority_rule(count);
	int nmaj = count[maj] + count[3];
	for (int i = 0; i < n; i++) {
		if (!v[i].port || !v[i].hp || chk_health_rule(v[i].port, v[i].hp))
			continue;
		diag_add(d, DIAG_WARNING, v[i].hp_pos, "health-port-rule",
			 "%s %d of %s follows no rule: not port+1000 (%d) and not in 8100-8199; "
			 "%d of the %d agents here follow %s",
			 key, v[i].hp, v[i].name, v[i].port + 1000, nmaj, total,
			 chk_health_rule_name(maj));
		diag_note(d, v[i].port_pos, "port %d of %s", v[i].port, v[i].name);
	}
	/* Where most agents follow both rules (PC-2: 71xx -> 81xx), one that
	 * follows only one breaks the machine's pattern. */
	if (count[3] > count[1] + count[2])
		for (int i = 0; i < n; i++) {
			int r = v[i].port && v[i].hp ? chk_health_rule(v[i].port, v[i].hp) : 3;
			if (r == 3 || r == 0)
				continue;
			diag_add(d, DIAG_WARNING, v[i].hp_pos, "health-port-rule",
				 "%s %d of %s follows only %s; %d of the %d agents here follow "
				 "port+1000 and 81xx", key, v[i].hp, v[i].name, chk_health_rule_name(r),
				 count[3], total);
			diag_note(d, v[i].port_pos, "port %d of %s", v[i].port, v[i].name);
		}
	/* Some agents follow only +1000 and others only 81xx: two rules on one
	 * machine, which is what broke common liveness probes. */
	if (count[CHK_HP_PLUS1000] && count[CHK_HP_81XX]) {
		int minor = maj == CHK_HP_PLUS1000 ? CHK_HP_81XX : CHK_HP_PLUS1000;
		const struct chk_hp *x = &v[first[minor]], *y = &v[first[maj]];
		diag_add(d, DIAG_WARNING, x->hp_pos, "health-port-divergence",
			 "%s follows %s (%d agent%s) while %d follow %s", x->name,
			 chk_health_rule_name(minor), count[minor], count[minor] == 1 ? "" : "s",
			 count[maj], chk_health_rule_name(maj));
		diag_note(d, y->hp_pos, "%s follows %s", y->name, chk_health_rule_name(maj));
	}
}

static void check_health_rules(const struct ai_config *c, const struct chk_opts *o,
			       struct diag_list *d)
{
	struct chk_hp *v = malloc(((size_t)c->nagents + 1) * sizeof *v);
	if (!v) {
		d->oom = true;
		return;
	}
	for (int i = 0; i < c->nagents; i++) {
		const struct cfg_agent *a = &c->agents[i];
		v[i] = (struct chk_hp){a->name, a->port, a->health_port, a->port_pos,
				       a->health_port_pos};
	}
	chk_health_ports(v, c->nagents, "health port", o && o->verbose, d);
	free(v);
}

/* ---- the rest ------------------------------------------------------------ */

static int listen_port(const char *listen)
{
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	int64_t p;
	if (!colon || ai_parse_int(colon + 1, 1, 65535, &p) < 0)
		return 0;
	return (int)p;
}

static bool local_host(const char *h)
{
	return !h || !strcmp(h, "127.0.0.1") || !strcmp(h, "localhost") || !strcmp(h, "::1");
}

static void check_ports(const struct ai_config *c, struct diag_list *d)
{
	struct chk_port *v = malloc(((size_t)c->nagents * 2 + 2) * sizeof *v);
	int n = 0, mp;
	if (!v) {
		d->oom = true;
		return;
	}
	for (int i = 0; i < c->nagents; i++) {
		const struct cfg_agent *a = &c->agents[i];
		if (a->port)
			v[n++] = (struct chk_port){a->port, a->name, "port", a->port_pos, chk_order(0, a->port_pos)};
		if (a->health_port)
			v[n++] = (struct chk_port){a->health_port, a->name, "health port",
						   a->health_port_pos, chk_order(0, a->health_port_pos)};
		/* An agent that names no port but is probed on one listens there
		 * (redis: health: {tcp: 6379}). */
		if (!a->port && !a->health_port && a->health.port &&
		    (a->health.kind == HK_TCP || a->health.kind == HK_ZMQ) && local_host(a->health.host))
			v[n++] = (struct chk_port){a->health.port, a->name, "probed port", a->health.pos,
						   chk_order(0, a->health.pos)};
	}
	if ((mp = listen_port(c->app.metrics_listen)))
		v[n++] = (struct chk_port){mp, "", "metrics.listen port", c->app.metrics_pos,
					   chk_order(0, c->app.metrics_pos)};
	chk_ports(v, n, d);
	free(v);
}

static void check_probe_ports(const struct ai_config *c, struct diag_list *d)
{
	for (int i = 0; i < c->nagents; i++) {
		const struct cfg_agent *a = &c->agents[i];
		const struct cfg_health *h = &a->health;
		if ((h->kind != HK_TCP && h->kind != HK_ZMQ) || !local_host(h->host))
			continue;
		if (h->kind == HK_ZMQ && a->health_port && h->port != a->health_port) {
			diag_add(d, DIAG_WARNING, h->pos, "health-port-mismatch",
				 "%s: the zmq probe targets %d but its health_port is %d", a->name,
				 h->port, a->health_port);
			diag_note(d, a->health_port_pos, "health_port of %s", a->name);
		}
	}
}

static void check_volumes(const struct ai_config *c, struct diag_list *d)
{
	const char **names = malloc(((size_t)c->nvolumes + 1) * sizeof *names);
	if (!names) {
		d->oom = true;
		return;
	}
	for (int i = 0; i < c->nvolumes; i++)
		names[i] = c->volumes[i].name;
	for (int g = 0; g < c->ngroups; g++) {
		const struct cfg_group *gr = &c->groups[g];
		for (int k = 0; k < gr->nmounts; k++) {
			const struct cfg_mount *m = &gr->mounts[k];
			int i;
			if (!m->named)
				continue;
			for (i = 0; i < c->nvolumes; i++)
				if (!strcmp(names[i], m->source))
					break;
			if (i < c->nvolumes)
				continue;
			const char *s = ct_suggest(m->source, names, (size_t)c->nvolumes);
			if (s)
				diag_add(d, DIAG_ERROR, m->pos, "undeclared-volume",
					 "group %s mounts volume \"%s\", which is not declared under "
					 "volumes; did you mean \"%s\"?", gr->name, m->source, s);
			else
				diag_add(d, DIAG_ERROR, m->pos, "undeclared-volume",
					 "group %s mounts volume \"%s\", which is not declared under "
					 "volumes", gr->name, m->source);
		}
	}
	free(names);
}

/* Root by default is allowed (a config of bare commands runs anywhere), but
 * never silently: say user: root. One warning per group when the whole
 * group inherits root, else one per agent. */
static void check_users(const struct ai_config *c, struct diag_list *d)
{
	for (int g = 0; g < c->ngroups; g++) {
		const struct cfg_group *gr = &c->groups[g];
		int implicit = 0;
		for (int k = 0; k < gr->nagents; k++)
			implicit += !c->agents[gr->first_agent + k].user;
		if (!implicit)
			continue;
		if (implicit == gr->nagents && gr->nagents > 1) {
			diag_add(d, DIAG_WARNING, gr->pos, "implicit-root",
				 "the %d agents of group %s run as root because no user is set "
				 "(agent, group or defaults); write user: root to mean it, or name a user",
				 gr->nagents, gr->name);
			continue;
		}
		for (int k = 0; k < gr->nagents; k++) {
			const struct cfg_agent *a = &c->agents[gr->first_agent + k];
			if (!a->user)
				diag_add(d, DIAG_WARNING, a->pos, "implicit-root",
					 "agent %s runs as root because no user is set (agent, group "
					 "or defaults); write user: root to mean it, or name a user",
					 a->name);
		}
	}
}

static void check_remote_hosts(const struct ai_config *c, const struct cfg_deps *deps,
			       struct diag_list *d)
{
	for (int k = 0; k < deps->n; k++) {
		const struct cfg_dep *x = &deps->v[k];
		int i;
		if (x->kind != DEP_REMOTE)
			continue;
		if (c->app.hostname && !strcmp(x->host, c->app.hostname))
			continue;
		for (i = 0; i < c->app.hosts.n; i++)
			if (!strcmp(c->app.hosts.v[i].key, x->host))
				break;
		if (i == c->app.hosts.n)
			diag_add(d, DIAG_WARNING, x->pos, "unknown-host",
				 "dependency %s names host \"%s\", which appliance.hosts does not "
				 "list; the probe cannot reach it", x->name, x->host);
	}
}

void chk_config(const struct ai_config *c, struct diag_list *d)
{
	chk_config_opts(c, NULL, d);
}

void chk_config_opts(const struct ai_config *c, const struct chk_opts *o, struct diag_list *d)
{
	if (!c)
		return;
	check_ports(c, d);
	check_probe_ports(c, d);
	check_cycles(c, d);
	check_volumes(c, d);
	check_users(c, d);
	check_health_rules(c, o, d);
	sbx_check(c, d); /* sandbox_check.c: capabilities, seccomp profiles, bridge */
	for (int g = 0; g < c->ngroups; g++)
		check_remote_hosts(c, &c->groups[g].deps, d);
	for (int i = 0; i < c->nagents; i++)
		check_remote_hosts(c, &c->agents[i].deps, d);
}

/* ---- several machines ------------------------------------------------------ */

static const struct ai_config *by_host(const struct ai_config *const *cs, int n, const char *h)
{
	for (int i = 0; i < n; i++)
		if (cs[i] && cs[i]->app.hostname && !strcmp(cs[i]->app.hostname, h))
			return cs[i];
	return NULL;
}

static void resolve_remote(const struct ai_config *const *cs, int n, const struct ai_config *self,
			   const struct cfg_deps *deps, struct diag_list *d)
{
	for (int k = 0; k < deps->n; k++) {
		const struct cfg_dep *x = &deps->v[k];
		if (x->kind != DEP_REMOTE)
			continue;
		const struct ai_config *o = by_host(cs, n, x->host);
		if (!o) {
			diag_add(d, DIAG_WARNING, x->pos, "unresolved-remote-dependency",
				 "%s: no config for host \"%s\" was given, so it cannot be checked",
				 x->name, x->host);
			continue;
		}
		if (o == self && !x->target[0])
			continue;
		if (cfg_find_agent(o, x->target) >= 0 || cfg_find_group(o, x->target) >= 0)
			continue;
		const char **names = malloc(((size_t)o->nagents + 1) * sizeof *names);
		const char *s = NULL;
		if (names) {
			for (int i = 0; i < o->nagents; i++)
				names[i] = o->agents[i].name;
			s = ct_suggest(x->target, names, (size_t)o->nagents);
		}
		diag_add(d, DIAG_ERROR, x->pos, "undefined-remote-dependency",
			 "%s: host %s (%s) has no agent or group \"%s\"%s%s%s", x->name, x->host,
			 o->file, x->target, s ? "; did you mean \"" : "", s ? s : "", s ? "\"?" : "");
		free(names);
	}
}

void chk_configs(const struct ai_config *const *cs, int n, struct diag_list *d)
{
	for (int i = 0; i < n; i++) {
		if (!cs[i])
			continue;
		for (int j = 0; j < i; j++)
			if (cs[j] && cs[i]->app.hostname && cs[j]->app.hostname &&
			    !strcmp(cs[i]->app.hostname, cs[j]->app.hostname)) {
				diag_add(d, DIAG_WARNING, cs[i]->app.hostname_pos, "duplicate-host",
					 "hostname %s is also the hostname of %s; HOST:AGENT "
					 "dependencies resolve to the first", cs[i]->app.hostname,
					 cs[j]->file);
				diag_note(d, cs[j]->app.hostname_pos, "first given here");
			}
		for (int g = 0; g < cs[i]->ngroups; g++)
			resolve_remote(cs, n, cs[i], &cs[i]->groups[g].deps, d);
		for (int a = 0; a < cs[i]->nagents; a++)
			resolve_remote(cs, n, cs[i], &cs[i]->agents[a].deps, d);
	}
	/* Machines that follow different health-port rules. A machine whose
	 * agents all satisfy both rules (PC-2: 71xx -> 81xx) is compatible with
	 * either; only an exclusive rule diverges. */
	int first = -1, first_rule = 0;
	for (int i = 0; i < n; i++) {
		int count[4] = {0}, rule;
		if (!cs[i])
			continue;
		for (int a = 0; a < cs[i]->nagents; a++) {
			const struct cfg_agent *x = &cs[i]->agents[a];
			if (x->port && x->health_port)
				count[chk_health_rule(x->port, x->health_port)]++;
		}
		rule = count[CHK_HP_PLUS1000] ? CHK_HP_PLUS1000 : count[CHK_HP_81XX] ? CHK_HP_81XX : 0;
		if (!rule)
			continue;
		if (first < 0) {
			first = i;
			first_rule = rule;
		} else if (rule != first_rule)
			diag_add(d, DIAG_WARNING, (struct cfg_pos){cs[i]->file, 0, 0},
				 "health-port-divergence",
				 "the agents of %s follow %s but those of %s follow %s", cs[i]->file,
				 chk_health_rule_name(rule), cs[first]->file,
				 chk_health_rule_name(first_rule));
	}
}

/* ---- the command ------------------------------------------------------------ */

static bool has_io_error(const struct diag_list *d)
{
	for (int i = 0; i < d->n; i++)
		if (d->v[i].rule && (!strcmp(d->v[i].rule, "io") || !strcmp(d->v[i].rule, "usage")))
			return true;
	return false;
}

int cmd_check(int argc, char **argv)
{
	struct chk_opts o = {0};
	struct diag_list d = {0};
	const char **files = calloc((size_t)argc + 1, sizeof *files);
	struct ai_config **cs = calloc((size_t)argc + 1, sizeof *cs);
	struct lg_set *lg = lg_set_new();
	int nf = 0, rc = 2;
	bool opts_done = false;

	if (!files || !cs || !lg) {
		fprintf(stderr, "ainit: check: out of memory\n");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		if (!opts_done && !strcmp(argv[i], "--"))
			opts_done = true;
		else if (!opts_done && (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")))
			o.verbose = true;
		else if (!opts_done && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
			printf("usage: ainit check [-v] FILE...\n"
			       "Check ainit configs (schema v1) and legacy startup_config.yaml,\n"
			       "container_grouping.yaml and container_groups.yaml files. Files given\n"
			       "together are checked against each other. Exit 0 clean, 1 errors,\n"
			       "2 unreadable file or bad usage.\n");
			rc = 0;
			goto out;
		} else if (!opts_done && argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "ainit: check: unknown option %s\n", argv[i]);
			nf = 0;
			break;
		} else
			files[nf++] = argv[i];
	}
	if (!nf) {
		fprintf(stderr, "usage: ainit check [-v] FILE...\n");
		goto out;
	}
	for (int i = 0; i < nf; i++) {
		if (lg_add_file(lg, files[i], &d) != LG_V1)
			continue;
		cs[i] = cfg_load(&files[i], 1, &d);
		if (cs[i]) {
			chk_config_opts(cs[i], &o, &d);
			chk_gpu(cs[i], &d); /* the host's GPUs: gpu.c */
		}
	}
	lg_check(lg, &o, &d);
	if (nf > 1)
		chk_configs((const struct ai_config *const *)cs, nf, &d);
	diag_sort(&d);
	diag_print(&d, stderr);
	rc = has_io_error(&d) ? 2 : d.errors ? 1 : 0;
	if (o.verbose || d.n)
		fprintf(stderr, "ainit check: %d error%s, %d warning%s\n", d.errors,
			d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
out:
	for (int i = 0; cs && i < nf; i++)
		cfg_free(cs[i]);
	diag_free(&d);
	lg_set_free(lg);
	free(files);
	free(cs);
	return rc;
}
