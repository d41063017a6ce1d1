/* Legacy files: recognise by content, read into struct lg_file, check.
 * The files are read without ${VAR} substitution (their ${...} are data:
 * shell expressions the old launcher expanded, reported where they matter),
 * with anchors and aliases allowed and duplicate keys kept so that we can
 * report them ourselves. */
#include "legacy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LG_MAX_AGENTS 20000
#define LG_MAX_DEPS 200000
#define LG_MAX_MEMBERS 200000

struct lg_set {
	struct ai_arena a;
	struct lg_file *f;
	int n, cap;
};

struct reader {
	struct lg_set *s;
	struct lg_file *f;
	struct diag_list *d;
	int agent_cap;
	int ndeps_total;
	size_t nmembers_total;
	bool too_many;
};

static const char *const agent_keys[] = {
	"name",        "script_path",  "port",       "health_check_port", "required",
	"dependencies", "config",      "host",       "module",            "class",
	"startup_priority", "description", "priority", "environment",     "command_args",
};

static void nx_free(struct lg_index *x);

struct lg_set *lg_set_new(void)
{
	return calloc(1, sizeof(struct lg_set));
}

void lg_set_free(struct lg_set *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		free(s->f[i].agents);
		free(s->f[i].groups);
		free(s->f[i].docker);
		free(s->f[i].extra);
		nx_free(&s->f[i].agent_ix);
	}
	free(s->f);
	ai_arena_free(&s->a);
	free(s);
}

int lg_count(const struct lg_set *s)
{
	return s->n;
}

struct lg_file *lg_get(struct lg_set *s, int i)
{
	return i >= 0 && i < s->n ? &s->f[i] : NULL;
}

static int nx_get(const struct lg_index *x, const char *name);

bool lg_is_grouping(const struct lg_file *f)
{
	return f->kind == LG_GROUPING || f->kind == LG_GROUPS;
}

int lg_find_agent(const struct lg_file *f, const char *name)
{
	return nx_get(&f->agent_ix, name);
}

/* ---- reading ------------------------------------------------------------ */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void nx_free(struct lg_index *x)
{
	free(x->key);
	free(x->val);
	memset(x, 0, sizeof *x);
}

static int nx_get(const struct lg_index *x, const char *name)
{
	if (!x->cap)
		return -1;
	for (size_t i = hash(name) & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		if (!x->key[i])
			return -1;
		if (!strcmp(x->key[i], name))
			return x->val[i];
	}
}

/* Add name unless present; 0, or -1 out of memory. */
static int nx_put(struct lg_index *x, const char *name, int val)
{
	if ((x->n + 1) * 2 > x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 64;
		const char **k = calloc(nc, sizeof *k);
		int *v = calloc(nc, sizeof *v);
		if (!k || !v) {
			free(k);
			free(v);
			return -1;
		}
		for (size_t i = 0; i < x->cap; i++)
			if (x->key[i]) {
				size_t j = hash(x->key[i]) & (nc - 1);
				while (k[j])
					j = (j + 1) & (nc - 1);
				k[j] = x->key[i];
				v[j] = x->val[i];
			}
		free(x->key);
		free(x->val);
		x->key = k;
		x->val = v;
		x->cap = nc;
	}
	size_t j = hash(name) & (x->cap - 1);
	while (x->key[j]) {
		if (!strcmp(x->key[j], name))
			return 0;
		j = (j + 1) & (x->cap - 1);
	}
	x->key[j] = name;
	x->val[j] = val;
	x->n++;
	return 0;
}

/* A port: 7200, "7200", or the shell-style "${PORT_OFFSET}+7200". */
static int read_port(struct reader *r, const struct ct_node *n, const char *what,
		     const char *agent, bool *expr)
{
	int64_t v;
	*expr = false;
	if (n->kind == CT_NULL)
		return 0;
	if (n->kind != CT_SCALAR) {
		diag_add(r->d, DIAG_ERROR, n->pos, "bad-value", "%s of %s must be a number", what,
			 agent);
		return 0;
	}
	const char *s = n->value, *plus;
	if (s[0] == '$' && s[1] == '{' && (plus = strstr(s, "}+")) && ai_all_digits(plus + 2)) {
		if (ai_parse_int(plus + 2, 1, 65535, &v) == 0) {
			*expr = true;
			diag_add(r->d, DIAG_WARNING, n->pos, "port-expression",
				 "%s of %s is the %sshell-style expression \"%s\", a string to YAML; "
				 "ainit ports are numbers (read here as %lld, offset ignored)",
				 what, agent, n->quoted ? "quoted " : "", s, (long long)v);
			return (int)v;
		}
	}
	if (ai_parse_int(s, 1, 65535, &v) == 0)
		return (int)v;
	diag_add(r->d, DIAG_ERROR, n->pos, "bad-value",
		 "%s of %s must be a port number 1-65535, not \"%s\"", what, agent, s);
	return 0;
}

static int read_bool(const struct ct_node *n)
{
	if (n->kind != CT_SCALAR)
		return 2;
	const char *v = n->value;
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes"))
		return 1;
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no"))
		return 0;
	return 2;
}

static void add_extra(struct reader *r, int port, const char *owner, const char *what,
		      struct cfg_pos pos)
{
	struct lg_file *f = r->f;
	struct chk_port *v = realloc(f->extra, (size_t)(f->nextra + 1) * sizeof *v);
	if (!v) {
		r->d->oom = true;
		return;
	}
	f->extra = v;
	v[f->nextra++] = (struct chk_port){port, owner, what, pos, 0};
}

static void check_dup_keys(struct reader *r, const struct ct_node *m, const char *what)
{
	if (m->kind != CT_MAP || m->n > 256)
		return;
	for (size_t i = 1; i < m->n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(ct_key(m, i)->value, ct_key(m, j)->value)) {
				diag_add(r->d, DIAG_ERROR, ct_key(m, i)->pos, "duplicate-key",
					 "duplicate key \"%s\" in %s; YAML keeps only the last",
					 ct_key(m, i)->value, what);
				diag_note(r->d, ct_key(m, j)->pos, "first given here");
				break;
			}
}

/* One agent: a map with script_path (startup) or name (grouping). */
static void read_agent(struct reader *r, const char *name, struct cfg_pos pos,
		       const struct ct_node *m, int group)
{
	struct lg_file *f = r->f;
	struct ai_arena *a = &r->s->a;
	if (f->nagents >= LG_MAX_AGENTS) {
		if (!r->too_many)
			diag_add(r->d, DIAG_ERROR, pos, "limit", "more than %d agents",
				 LG_MAX_AGENTS);
		r->too_many = true;
		return;
	}
	if (f->nagents == r->agent_cap) {
		int nc = r->agent_cap ? r->agent_cap * 2 : 64;
		struct lg_agent *v = realloc(f->agents, (size_t)nc * sizeof *v);
		if (!v) {
			r->d->oom = true;
			return;
		}
		f->agents = v;
		r->agent_cap = nc;
	}
	struct lg_agent *ag = &f->agents[f->nagents];
	memset(ag, 0, sizeof *ag);
	ag->name = name;
	ag->pos = pos;
	ag->group = group;
	ag->node = m;
	ag->required = -1;
	ag->dup_of = nx_get(&f->agent_ix, name);
	if (ag->dup_of >= 0) {
		const struct lg_agent *o = &f->agents[ag->dup_of];
		if (group >= 0)
			diag_add(r->d, DIAG_ERROR, pos, "duplicate-agent",
				 "agent %s is defined twice (again in %s)", name, f->groups[group].name);
		else
			diag_add(r->d, DIAG_ERROR, pos, "duplicate-agent", "agent %s is defined twice",
				 name);
		diag_note(r->d, o->pos, "first defined here%s%s", o->group >= 0 ? ", in " : "",
			  o->group >= 0 ? f->groups[o->group].name : "");
	}
	check_dup_keys(r, m, "an agent");
	for (size_t i = 0; i < m->n; i++) {
		const struct ct_node *kn = ct_key(m, i), *v = ct_val(m, i);
		const char *k = kn->value;
		if (!strcmp(k, "script_path")) {
			if (v->kind == CT_SCALAR) {
				ag->script = v->value;
				ag->script_pos = v->pos;
			} else
				diag_add(r->d, DIAG_ERROR, v->pos, "bad-value",
					 "script_path of %s must be a path", name);
		} else if (!strcmp(k, "port")) {
			ag->port = read_port(r, v, "port", name, &ag->port_expr);
			ag->port_pos = v->pos;
		} else if (!strcmp(k, "health_check_port")) {
			ag->hp = read_port(r, v, "health_check_port", name, &ag->hp_expr);
			ag->hp_pos = v->pos;
		} else if (!strcmp(k, "required")) {
			ag->required = read_bool(v);
			ag->req_pos = v->pos;
			if (ag->required == 2)
				diag_add(r->d, DIAG_ERROR, v->pos, "bad-value",
					 "required of %s must be true or false; \"%s\" is a string "
					 "expression that nothing evaluates",
					 name, v->kind == CT_SCALAR ? v->value : "?");
		} else if (!strcmp(k, "host") && v->kind == CT_SCALAR) {
			ag->host = v->value;
		} else if (!strcmp(k, "dependencies")) {
			if (v->kind == CT_NULL)
				continue;
			if (v->kind != CT_SEQ) {
				diag_add(r->d, DIAG_ERROR, v->pos, "bad-value",
					 "dependencies of %s must be a list of agent names", name);
				continue;
			}
			if (r->ndeps_total + (int)v->n > LG_MAX_DEPS) {
				diag_add(r->d, DIAG_ERROR, v->pos, "limit", "more than %d dependencies",
					 LG_MAX_DEPS);
				continue;
			}
			ag->deps = ai_arena_alloc(a, (v->n + 1) * sizeof *ag->deps);
			if (!ag->deps) {
				r->d->oom = true;
				continue;
			}
			r->ndeps_total += (int)v->n;
			ag->ndeps = 0; /* a repeated key (reported) replaces the list, as YAML would */
			for (size_t j = 0; j < v->n; j++) {
				const struct ct_node *it = v->items[j];
				if (it->kind != CT_SCALAR) {
					diag_add(r->d, DIAG_ERROR, it->pos, "bad-value",
						 "dependencies of %s: items must be agent names", name);
					continue;
				}
				ag->deps[ag->ndeps++] = (struct lg_name){it->value, it->pos};
			}
		} else if (!strcmp(k, "config") && v->kind == CT_MAP) {
			/* Ports an agent opens besides its own: grpc_port, rest_port... A
			 * zmq_port equal to its own port is the same socket. */
			for (size_t j = 0; j < v->n; j++) {
				const struct ct_node *ck = ct_key(v, j), *cv = ct_val(v, j);
				size_t kl = strlen(ck->value);
				bool e;
				if (kl < 5 || strcmp(ck->value + kl - 5, "_port") || cv->kind != CT_SCALAR)
					continue;
				int p = read_port(r, cv, ck->value, name, &e);
				if (!p || (!strcmp(ck->value, "zmq_port") && p == ag->port))
					continue;
				char *what = ai_arena_alloc(a, kl + 8);
				if (what)
					snprintf(what, kl + 8, "config.%s", ck->value);
				add_extra(r, p, name, what ? what : "config port", cv->pos);
			}
		} else {
			bool known = false;
			for (size_t j = 0; j < AI_ARRAY_SIZE(agent_keys); j++)
				known |= !strcmp(k, agent_keys[j]);
			if (!known) {
				const char *s = ct_suggest(k, agent_keys, AI_ARRAY_SIZE(agent_keys));
				diag_add(r->d, DIAG_WARNING, kn->pos, "unknown-key",
					 "unknown key \"%s\" in agent %s%s%s%s", k, name,
					 s ? "; did you mean \"" : "", s ? s : "", s ? "\"?" : "");
			}
		}
	}
	if (ag->dup_of < 0 && nx_put(&f->agent_ix, name, f->nagents) < 0) {
		r->d->oom = true;
		return;
	}
	f->nagents++;
}

static int add_group(struct reader *r, struct lg_group **v, int *n, const char *name,
		     struct cfg_pos pos)
{
	struct lg_group *x = realloc(*v, (size_t)(*n + 1) * sizeof *x);
	if (!x) {
		r->d->oom = true;
		return -1;
	}
	*v = x;
	memset(&x[*n], 0, sizeof x[*n]);
	x[*n].name = name;
	x[*n].pos = pos;
	return (*n)++;
}

/* agents: [A, B] or agents: [{name: A, ...}] -> members */
static void read_members(struct reader *r, struct lg_group *g, const struct ct_node *seq)
{
	if (seq->kind == CT_NULL)
		return;
	if (seq->kind != CT_SEQ) {
		diag_add(r->d, DIAG_ERROR, seq->pos, "bad-value",
			 "the agents of group %s must be a list", g->name);
		return;
	}
	if (r->nmembers_total + seq->n > LG_MAX_MEMBERS) {
		diag_add(r->d, DIAG_ERROR, seq->pos, "limit", "more than %d group members",
			 LG_MAX_MEMBERS);
		return;
	}
	r->nmembers_total += seq->n;
	g->members = ai_arena_alloc(&r->s->a, (seq->n + 1) * sizeof *g->members);
	if (!g->members) {
		r->d->oom = true;
		return;
	}
	for (size_t i = 0; i < seq->n; i++) {
		const struct ct_node *it = seq->items[i], *nm;
		if (it->kind == CT_SCALAR)
			g->members[g->nmembers++] = (struct lg_name){it->value, it->pos};
		else if (it->kind == CT_MAP && (nm = ct_get(it, "name")) && nm->kind == CT_SCALAR)
			g->members[g->nmembers++] = (struct lg_name){nm->value, nm->pos};
		else
			diag_add(r->d, DIAG_ERROR, it->pos, "bad-value",
				 "group %s: an item must be an agent name", g->name);
	}
}

static void read_docker_group(struct reader *r, const struct ct_node *kn, const struct ct_node *v)
{
	struct lg_file *f = r->f;
	int gi = add_group(r, &f->docker, &f->ndocker, kn->value, kn->pos);
	const struct ct_node *x;
	if (gi < 0)
		return;
	f->docker[gi].misplaced = true;
	if ((x = ct_get(v, "description")) && x->kind == CT_SCALAR)
		f->docker[gi].description = x->value;
	if ((x = ct_get(v, "agents")))
		read_members(r, &f->docker[gi], x);
}

static bool is_docker_group(const struct ct_node *v)
{
	const struct ct_node *ag;
	return v->kind == CT_MAP && (ag = ct_get(v, "agents")) && (ag->kind == CT_SEQ) &&
	       !ct_get(v, "script_path");
}

static void read_startup_mainpc(struct reader *r, const struct ct_node *groups)
{
	struct lg_file *f = r->f;
	struct cfg_pos docker_at = {0};
	if (groups->kind != CT_MAP) {
		diag_add(r->d, DIAG_ERROR, groups->pos, "bad-value",
			 "agent_groups must be a mapping of groups");
		return;
	}
	check_dup_keys(r, groups, "agent_groups");
	for (size_t i = 0; i < groups->n && !r->too_many; i++) {
		const struct ct_node *kn = ct_key(groups, i), *gv = ct_val(groups, i);
		if (!strcmp(kn->value, "docker_groups") && gv->kind == CT_MAP) {
			docker_at = kn->pos;
			diag_add(r->d, DIAG_ERROR, kn->pos, "legacy-structure",
				 "docker_groups is nested under agent_groups, so YAML reads it as an "
				 "agent group whose agents are its docker groups; it belongs at the "
				 "top level");
			for (size_t j = 0; j < gv->n; j++)
				if (is_docker_group(ct_val(gv, j)))
					read_docker_group(r, ct_key(gv, j), ct_val(gv, j));
			continue;
		}
		if (is_docker_group(gv)) {
			read_docker_group(r, kn, gv);
			if (docker_at.line)
				diag_add(r->d, DIAG_ERROR, kn->pos, "legacy-structure",
					 "%s is at the indent of agent groups, so YAML reads it as an "
					 "agent group with agents named \"description\" and \"agents\"; "
					 "it is a docker group and belongs under docker_groups",
					 kn->value);
			else
				diag_add(r->d, DIAG_ERROR, kn->pos, "legacy-structure",
					 "%s holds \"description\" and \"agents\", not agents: a docker "
					 "group indented as an agent group", kn->value);
			if (docker_at.line)
				diag_note(r->d, docker_at, "docker_groups starts here");
			continue;
		}
		int gi = add_group(r, &f->groups, &f->ngroups, kn->value, kn->pos);
		if (gi < 0)
			return;
		if (gv->kind == CT_NULL) {
			diag_add(r->d, DIAG_WARNING, kn->pos, "empty-group",
				 "group %s is empty (null)", kn->value);
			continue;
		}
		if (gv->kind != CT_MAP) {
			diag_add(r->d, DIAG_ERROR, gv->pos, "bad-value",
				 "group %s must be a mapping of agents", kn->value);
			continue;
		}
		for (size_t j = 0; j < gv->n; j++) {
			const struct ct_node *an = ct_key(gv, j), *av = ct_val(gv, j);
			if (av->kind != CT_MAP || !ct_get(av, "script_path")) {
				diag_add(r->d, DIAG_ERROR, an->pos, "legacy-structure",
					 "%s in group %s is not an agent (%s)", an->value, kn->value,
					 av->kind == CT_MAP ? "no script_path" : "not a mapping");
				continue;
			}
			read_agent(r, an->value, an->pos, av, gi);
		}
	}
}

static bool is_agent_list(const struct ct_node *v)
{
	const struct ct_node *it;
	if (v->kind != CT_SEQ || !v->n)
		return false;
	it = v->items[0];
	return it->kind == CT_MAP && ct_get(it, "name") && ct_get(it, "script_path");
}

static void read_agent_list(struct reader *r, const struct ct_node *kn, const struct ct_node *v)
{
	int gi = add_group(r, &r->f->groups, &r->f->ngroups, kn->value, kn->pos);
	if (gi < 0)
		return;
	for (size_t j = 0; j < v->n; j++) {
		const struct ct_node *it = v->items[j], *nm;
		if (it->kind != CT_MAP || !(nm = ct_get(it, "name")) || nm->kind != CT_SCALAR) {
			diag_add(r->d, DIAG_ERROR, it->pos, "legacy-structure",
				 "an item of %s is not an agent (no name)", kn->value);
			continue;
		}
		read_agent(r, nm->value, nm->pos, it, gi);
	}
}

static void read_range(struct reader *r, const struct ct_node *m, int which)
{
	const struct ct_node *lo = ct_get(m, "start"), *hi = ct_get(m, "end");
	int64_t a, b;
	if (lo && hi && lo->kind == CT_SCALAR && hi->kind == CT_SCALAR &&
	    !ai_parse_int(lo->value, 1, 65535, &a) && !ai_parse_int(hi->value, 1, 65535, &b)) {
		r->f->range_lo[which] = (int)a;
		r->f->range_hi[which] = (int)b;
		r->f->range_pos[which] = m->pos;
	}
}

static void read_top_ports(struct reader *r, const struct ct_node *root)
{
	for (size_t i = 0; i < root->n; i++) {
		const struct ct_node *kn = ct_key(root, i), *v = ct_val(root, i);
		size_t kl = strlen(kn->value);
		int64_t p;
		if (kl >= 5 && !strcmp(kn->value + kl - 5, "_port") && v->kind == CT_SCALAR &&
		    !ai_parse_int(v->value, 1, 65535, &p))
			add_extra(r, (int)p, "", kn->value, v->pos);
	}
}

static void read_startup(struct reader *r, const struct ct_node *root)
{
	const struct ct_node *x, *gs = ct_get(root, "global_settings");
	r->f->kind = LG_STARTUP;
	if (gs && gs->kind == CT_MAP) {
		r->f->env = ct_get(gs, "environment");
		r->f->health = ct_get(gs, "health_checks");
	}
	if ((x = ct_get(root, "environment")))
		r->f->env = x;
	if ((x = ct_get(root, "health_checks")))
		r->f->health = x;
	if ((x = ct_get(root, "pc2_network")) && x->kind == CT_MAP) {
		const struct ct_node *y;
		if ((y = ct_get(x, "agent_ports")) && y->kind == CT_MAP)
			read_range(r, y, 0);
		if ((y = ct_get(x, "health_check_ports")) && y->kind == CT_MAP)
			read_range(r, y, 1);
	}
	if ((x = ct_get(root, "agent_groups")))
		read_startup_mainpc(r, x);
	for (size_t i = 0; i < root->n; i++)
		if (is_agent_list(ct_val(root, i)))
			read_agent_list(r, ct_key(root, i), ct_val(root, i));
	read_top_ports(r, root);
}

static void read_grouping(struct reader *r, const struct ct_node *cg)
{
	struct lg_file *f = r->f;
	r->f->kind = LG_GROUPING;
	check_dup_keys(r, cg, "container_groups");
	for (size_t i = 0; i < cg->n; i++) {
		const struct ct_node *kn = ct_key(cg, i), *gv = ct_val(cg, i), *x;
		int gi = add_group(r, &f->groups, &f->ngroups, kn->value, kn->pos);
		if (gi < 0)
			return;
		if (gv->kind != CT_MAP) {
			diag_add(r->d, DIAG_ERROR, gv->pos, "bad-value",
				 "container group %s must be a mapping with agents", kn->value);
			continue;
		}
		if ((x = ct_get(gv, "description")) && x->kind == CT_SCALAR)
			f->groups[gi].description = x->value;
		if (!(x = ct_get(gv, "agents")))
			continue;
		read_members(r, &f->groups[gi], x);
		if (x->kind != CT_SEQ)
			continue;
		for (size_t j = 0; j < x->n; j++) {
			const struct ct_node *it = x->items[j], *nm;
			if (it->kind == CT_MAP && (nm = ct_get(it, "name")) && nm->kind == CT_SCALAR)
				read_agent(r, nm->value, nm->pos, it, gi);
		}
	}
}

static void read_groups(struct reader *r, const struct ct_node *root)
{
	struct lg_file *f = r->f;
	const struct ct_node *map = NULL;
	r->f->kind = LG_GROUPS;
	for (size_t i = 0; i < root->n; i++) {
		const struct ct_node *kn = ct_key(root, i), *v = ct_val(root, i);
		if (!strcmp(kn->value, "container_mapping")) {
			map = v;
			continue;
		}
		if (v->kind != CT_SEQ && v->kind != CT_NULL)
			continue;
		int gi = add_group(r, &f->groups, &f->ngroups, kn->value, kn->pos);
		if (gi >= 0)
			read_members(r, &f->groups[gi], v);
	}
	if (map && map->kind == CT_MAP)
		for (size_t i = 0; i < map->n; i++) {
			const struct ct_node *kn = ct_key(map, i), *v = ct_val(map, i);
			int g;
			if (v->kind != CT_SCALAR)
				continue;
			for (g = 0; g < f->ngroups; g++)
				if (!strcmp(f->groups[g].name, v->value))
					break;
			if (g < f->ngroups)
				f->groups[g].container = kn->value;
			else
				diag_add(r->d, DIAG_ERROR, v->pos, "undefined-group",
					 "container %s maps to group \"%s\", which this file does not "
					 "define", kn->value, v->value);
		}
}

/* container_groups.yaml: a map of lists of names (plus container_mapping). */
static bool looks_like_groups(const struct ct_node *root)
{
	int lists = 0;
	for (size_t i = 0; i < root->n; i++) {
		const struct ct_node *v = ct_val(root, i);
		if (!strcmp(ct_key(root, i)->value, "container_mapping"))
			continue;
		if (v->kind != CT_SEQ)
			return false;
		for (size_t j = 0; j < v->n; j++)
			if (v->items[j]->kind != CT_SCALAR)
				return false;
		lists++;
	}
	return lists > 0;
}

/* PORT_REGISTRY.md: a markdown table whose header names an agent column,
 * a (ZMQ) port column and a health port column. */
static bool cell_is(const char *c, size_t n, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i + wl <= n; i++)
		if (!strncasecmp(c + i, word, wl))
			return true;
	return false;
}

static bool read_registry(struct reader *r, const char *buf, size_t len)
{
	struct ai_arena *a = &r->s->a;
	int col_agent = -1, col_port = -1, col_health = -1;
	unsigned line = 0;
	bool header = false;
	for (const char *p = buf, *end = buf + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		const char *cell[16];
		size_t clen[16];
		int nc = 0;
		line++;
		if (*p == '|') {
			/* cells between bars, trimmed; cell[i] keeps its column */
			for (const char *q = p + 1; q < le && nc < 16;) {
				const char *bar = memchr(q, '|', (size_t)(le - q));
				const char *ce = bar ? bar : le, *cs = q;
				while (cs < ce && (*cs == ' ' || *cs == '\t'))
					cs++;
				const char *cz = ce;
				while (cz > cs && (cz[-1] == ' ' || cz[-1] == '\t' || cz[-1] == '\r'))
					cz--;
				cell[nc] = cs;
				clen[nc++] = (size_t)(cz - cs);
				if (!bar)
					break;
				q = bar + 1;
			}
		}
		if (nc && !header) {
			for (int i = 0; i < nc; i++) {
				if (cell_is(cell[i], clen[i], "agent"))
					col_agent = i;
				else if (cell_is(cell[i], clen[i], "health"))
					col_health = i;
				else if (cell_is(cell[i], clen[i], "port"))
					col_port = i;
			}
			header = col_agent >= 0 && col_port >= 0 && col_health >= 0;
		} else if (nc > col_agent && nc > col_port && nc > col_health && header &&
			   clen[col_agent] && !strchr("-:", cell[col_agent][0])) {
			char num[16];
			int64_t v;
			struct lg_agent *ag;
			if (r->f->nagents >= LG_MAX_AGENTS)
				break;
			if (r->f->nagents == r->agent_cap) {
				int ncap = r->agent_cap ? r->agent_cap * 2 : 64;
				struct lg_agent *nv = realloc(r->f->agents, (size_t)ncap * sizeof *nv);
				if (!nv) {
					r->d->oom = true;
					break;
				}
				r->f->agents = nv;
				r->agent_cap = ncap;
			}
			ag = &r->f->agents[r->f->nagents];
			memset(ag, 0, sizeof *ag);
			ag->name = ai_arena_strndup(a, cell[col_agent], clen[col_agent]);
			if (!ag->name) {
				r->d->oom = true;
				break;
			}
			ag->group = -1;
			ag->required = -1;
			ag->pos = (struct cfg_pos){r->f->path, line, (unsigned)(cell[col_agent] - p) + 1};
			ag->port_pos = (struct cfg_pos){r->f->path, line, (unsigned)(cell[col_port] - p) + 1};
			ag->hp_pos = (struct cfg_pos){r->f->path, line, (unsigned)(cell[col_health] - p) + 1};
			snprintf(num, sizeof num, "%.*s", (int)(clen[col_port] < 15 ? clen[col_port] : 15),
				 cell[col_port]);
			if (!ai_parse_int(num, 1, 65535, &v))
				ag->port = (int)v;
			snprintf(num, sizeof num, "%.*s",
				 (int)(clen[col_health] < 15 ? clen[col_health] : 15), cell[col_health]);
			if (!ai_parse_int(num, 1, 65535, &v))
				ag->hp = (int)v;
			ag->dup_of = nx_get(&r->f->agent_ix, ag->name);
			if (ag->dup_of >= 0) {
				diag_add(r->d, DIAG_ERROR, ag->pos, "duplicate-agent",
					 "agent %s is listed twice", ag->name);
				diag_note(r->d, r->f->agents[ag->dup_of].pos, "first listed here");
			} else if (nx_put(&r->f->agent_ix, ag->name, r->f->nagents) < 0) {
				r->d->oom = true;
				break;
			}
			r->f->nagents++;
		}
		p = le + 1;
	}
	return header && r->f->nagents > 0;
}

static bool has_table(const char *buf, size_t len)
{
	if (len && buf[0] == '|')
		return true;
	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))) && p + 1 < buf + len; p++)
		if (p[1] == '|')
			return true;
	return false;
}

/* The PC-2 file writes its agents as flow mappings {...} spanning lines,
 * with trailing commas and # comments inside the braces. YAML allows both,
 * but many tools that read "JSON-like" YAML do not, and the comments there
 * carry facts (a dependency removed to break a cycle) that no parser keeps:
 * report them. Quotes are skipped; the scan is linear. */
static bool starts_scalar(const char *buf, size_t i)
{
	while (i > 0 && (buf[i - 1] == ' ' || buf[i - 1] == '\t'))
		i--;
	return i == 0 || strchr(":-[{,\n", buf[i - 1]);
}

static void scan_flow_style(const char *name, const char *buf, size_t len, struct diag_list *d)
{
	int depth = 0, ntrail = 0;
	unsigned line = 1, col = 1;
	struct cfg_pos first_trail = {0}, comma = {0};
	bool after_comma = false;
	for (size_t i = 0; i < len; i++, col++) {
		char c = buf[i];
		if (c == '\n') {
			line++;
			col = 0;
			continue;
		}
		if ((c == '\'' || c == '"') && starts_scalar(buf, i)) {
			char q = c;
			for (i++, col++; i < len && buf[i] != '\n'; i++, col++) {
				if (q == '"' && buf[i] == '\\' && i + 1 < len)
					i++, col++;
				else if (q == '\'' && buf[i] == q && i + 1 < len && buf[i + 1] == q)
					i++, col++; /* '' is a quote inside '...' */
				else if (buf[i] == q)
					break;
			}
			if (i < len && buf[i] == '\n')
				line++, col = 0;
			after_comma = false;
			continue;
		}
		if (c == '#' && (i == 0 || buf[i - 1] == ' ' || buf[i - 1] == '\t')) {
			size_t e = i;
			while (e < len && buf[e] != '\n')
				e++;
			if (depth)
				diag_add(d, DIAG_WARNING, (struct cfg_pos){name, line, col}, "flow-style",
					 "a comment inside a flow mapping: \"%.*s\"; parsers that take "
					 "{...} as JSON reject it, and no parser keeps it",
					 (int)(e - i > 200 ? 200 : e - i), buf + i);
			col += (unsigned)(e - i) - 1;
			i = e - 1;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
			after_comma = false;
		} else if (c == '}' || c == ']') {
			if (after_comma && !ntrail++)
				first_trail = comma;
			if (depth)
				depth--;
			after_comma = false;
		} else if (c == ',' && depth) {
			after_comma = true;
			comma = (struct cfg_pos){name, line, col};
		} else if (c != ' ' && c != '\t' && c != '\r')
			after_comma = false;
	}
	if (ntrail)
		diag_add(d, DIAG_WARNING, first_trail, "flow-style",
			 "%d flow mapping%s end%s with a trailing comma (the first here); YAML allows "
			 "it, JSON and many YAML-as-JSON tools do not", ntrail, ntrail == 1 ? "" : "s",
			 ntrail == 1 ? "s" : "");
}

/* Cheap look at the top-level keys of the text: a v1 config is handed to
 * the loader without building a second tree. */
static bool sniff_v1(const char *buf, size_t len)
{
	static const char *const keys[] = {"version", "appliance", "defaults", "groups", "volumes"};
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (isalpha((unsigned char)*p))
			for (size_t i = 0; i < AI_ARRAY_SIZE(keys); i++) {
				size_t kl = strlen(keys[i]);
				if ((size_t)(le - p) > kl && !memcmp(p, keys[i], kl) && p[kl] == ':')
					return true;
			}
		p = le + 1;
	}
	return false;
}

int lg_add_buf(struct lg_set *s, const char *name, const char *buf, size_t len,
	       struct diag_list *d)
{
	struct ct_opts o = {.allow_aliases = true, .allow_duplicate_keys = true};
	struct ct_node *root;
	const struct ct_node *x;
	struct lg_file f = {0};
	struct reader r = {.s = s, .f = &f, .d = d};
	f.path = name;
	if (has_table(buf, len)) {
		f.kind = LG_REGISTRY;
		if (read_registry(&r, buf, len))
			goto keep;
		free(f.agents);
		nx_free(&f.agent_ix);
		memset(&f, 0, sizeof f);
		r = (struct reader){.s = s, .f = &f, .d = d};
	}
	if (sniff_v1(buf, len))
		return LG_V1;
	root = ct_parse_buf(name, buf, len, &o, &s->a, d);
	if (!root)
		return LG_ERROR;
	if (root->kind != CT_MAP)
		return LG_V1;
	f.path = name;
	f.root = root;
	if (ct_get(root, "agent_groups") || ct_get(root, "global_settings"))
		read_startup(&r, root);
	else if ((x = ct_get(root, "container_groups")) && x->kind == CT_MAP)
		read_grouping(&r, x);
	else if (looks_like_groups(root))
		read_groups(&r, root);
	else {
		for (size_t i = 0; i < root->n; i++)
			if (is_agent_list(ct_val(root, i)))
				f.kind = LG_STARTUP;
		if (f.kind != LG_STARTUP)
			return LG_V1;
		read_startup(&r, root);
	}
	if (f.kind == LG_STARTUP)
		scan_flow_style(name, buf, len, d);
keep:
	if (s->n == s->cap) {
		int nc = s->cap ? s->cap * 2 : 8;
		struct lg_file *v = realloc(s->f, (size_t)nc * sizeof *v);
		if (!v) {
			d->oom = true;
			free(f.agents);
			free(f.groups);
			free(f.docker);
			free(f.extra);
			nx_free(&f.agent_ix);
			return LG_ERROR;
		}
		s->f = v;
		s->cap = nc;
	}
	s->f[s->n++] = f;
	return f.kind;
}

int lg_add_file(struct lg_set *s, const char *path, struct diag_list *d)
{
	char *buf = NULL;
	size_t len = 0;
	const char *name = ai_arena_strdup(&s->a, path);
	int k;
	if (!name) {
		d->oom = true;
		return LG_ERROR;
	}
	if (ct_read_file(name, &buf, &len, d) < 0)
		return LG_ERROR;
	k = lg_add_buf(s, name, buf, len, d);
	free(buf);
	return k;
}

/* ---- checks ------------------------------------------------------------- */

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static bool same_dir(const char *a, const char *b)
{
	size_t la = (size_t)(base(a) - a), lb = (size_t)(base(b) - b);
	return la == lb && !memcmp(a, b, la);
}

struct lg_file *lg_startup_for(struct lg_set *s, const struct lg_file *g)
{
	struct lg_file *only = NULL;
	int nstart = 0;
	for (int i = 0; i < s->n; i++) {
		if (s->f[i].kind != LG_STARTUP)
			continue;
		if (same_dir(s->f[i].path, g->path))
			return &s->f[i];
		only = &s->f[i];
		nstart++;
	}
	return nstart == 1 ? only : NULL;
}

/* "did you mean": for files of a realistic size only (it is quadratic) */
static const char *suggest_agent(const struct lg_file *f, const char *name)
{
	const char *best = NULL;
	int bd = 4;
	if (f->nagents > 1000)
		return NULL;
	for (int i = 0; i < f->nagents; i++) {
		int dd = ct_edit_distance(name, f->agents[i].name);
		if (dd < bd)
			bd = dd, best = f->agents[i].name;
	}
	return best;
}

static void check_deps(const struct lg_file *f, struct diag_list *d)
{
	int ne = 0, cap = 0;
	for (int i = 0; i < f->nagents; i++)
		cap += f->agents[i].ndeps;
	struct chk_edge *e = malloc(((size_t)cap + 1) * sizeof *e);
	const char **name = malloc(((size_t)f->nagents + 1) * sizeof *name);
	if (!e || !name) {
		d->oom = true;
		free(e);
		free(name);
		return;
	}
	for (int i = 0; i < f->nagents; i++) {
		const struct lg_agent *a = &f->agents[i];
		name[i] = a->name;
		if (a->dup_of >= 0)
			continue;
		for (int k = 0; k < a->ndeps; k++) {
			int t = lg_find_agent(f, a->deps[k].name);
			if (t >= 0) {
				e[ne++] = (struct chk_edge){i, t, a->deps[k].pos};
				continue;
			}
			const char *s = suggest_agent(f, a->deps[k].name);
			diag_add(d, DIAG_ERROR, a->deps[k].pos, "undefined-dependency",
				 "%s depends on %s, which this file does not define%s%s%s", a->name,
				 a->deps[k].name, s ? "; did you mean " : "", s ? s : "", s ? "?" : "");
		}
	}
	chk_cycles(f->nagents, name, e, ne, d);
	free(e);
	free(name);
}

static void check_health(const struct lg_file *f, const struct chk_opts *o, struct diag_list *d)
{
	struct chk_hp *v = malloc(((size_t)f->nagents + 1) * sizeof *v);
	if (!v) {
		d->oom = true;
		return;
	}
	for (int i = 0; i < f->nagents; i++) {
		const struct lg_agent *a = &f->agents[i];
		v[i] = (struct chk_hp){a->name, a->port, a->hp, a->port_pos, a->hp_pos};
	}
	chk_health_ports(v, f->nagents, "health_check_port", o && o->verbose, d);
	free(v);
	/* pc2_network's declared ranges */
	static const char *const what[] = {"port", "health_check_port"};
	for (int w = 0; w < 2; w++) {
		if (!f->range_lo[w])
			continue;
		for (int i = 0; i < f->nagents; i++) {
			const struct lg_agent *a = &f->agents[i];
			int p = w ? a->hp : a->port;
			if (!p || (p >= f->range_lo[w] && p <= f->range_hi[w]))
				continue;
			diag_add(d, DIAG_WARNING, w ? a->hp_pos : a->port_pos, "port-range",
				 "%s %d of %s is outside the declared range %d-%d", what[w], p,
				 a->name, f->range_lo[w], f->range_hi[w]);
			diag_note(d, f->range_pos[w], "range declared here");
		}
	}
}

static void check_env(const struct lg_file *f, struct diag_list *d)
{
	const struct ct_node *env = f->env;
	if (!env || env->kind != CT_MAP)
		return;
	for (size_t i = 0; i < env->n; i++) {
		const struct ct_node *v = ct_val(env, i);
		if (v->kind == CT_SCALAR && strstr(v->value, "${"))
			diag_add(d, DIAG_WARNING, v->pos, "env-expansion",
				 "%s: \"%s\" needs shell-style expansion at start; ainit expands "
				 "${VAR} from its own environment when it loads a config, where "
				 "${PWD} is not the agent's directory", ct_key(env, i)->value, v->value);
	}
}

/* Members of groups (grouping files, or docker groups inside a startup file)
 * against the agents of the startup file. */
static void check_members(const struct lg_file *g, const struct lg_group *gv, int ng,
			  const struct lg_file *s, struct diag_list *d)
{
	for (int i = 0; i < ng; i++)
		for (int k = 0; k < gv[i].nmembers; k++) {
			const struct lg_name *m = &gv[i].members[k];
			if (lg_find_agent(s, m->name) >= 0)
				continue;
			const char *sug = suggest_agent(s, m->name);
			diag_add(d, DIAG_ERROR, m->pos, "grouping-unknown-agent",
				 "%s is in group %s%s%s but %s does not define it%s%s%s", m->name,
				 gv[i].name, g == s ? "" : " of ", g == s ? "" : base(g->path),
				 base(s->path), sug ? "; did you mean " : "", sug ? sug : "",
				 sug ? "?" : "");
		}
}

/* Index of the members of groups: name -> group*LG_MAX_MEMBERS-free id of
 * its first listing (group index in *gi, member index in *ki). */
struct members {
	struct lg_index ix;
	int *gi, *ki;
};

static int members_index(struct members *m, const struct lg_group *gv, int ng,
			 struct diag_list *d)
{
	int total = 0, id = 0;
	memset(m, 0, sizeof *m);
	for (int i = 0; i < ng; i++)
		total += gv[i].nmembers;
	m->gi = malloc(((size_t)total + 1) * sizeof *m->gi);
	m->ki = malloc(((size_t)total + 1) * sizeof *m->ki);
	if (!m->gi || !m->ki)
		goto oom;
	for (int i = 0; i < ng; i++)
		for (int k = 0; k < gv[i].nmembers; k++) {
			if (nx_get(&m->ix, gv[i].members[k].name) >= 0)
				continue;
			m->gi[id] = i;
			m->ki[id] = k;
			if (nx_put(&m->ix, gv[i].members[k].name, id++) < 0)
				goto oom;
		}
	return 0;
oom:
	d->oom = true;
	return -1;
}

static void members_free(struct members *m)
{
	nx_free(&m->ix);
	free(m->gi);
	free(m->ki);
}

static void check_dup_members(const struct lg_group *gv, int ng, struct diag_list *d)
{
	struct members m;
	if (members_index(&m, gv, ng, d) == 0)
		for (int i = 0; i < ng; i++)
			for (int k = 0; k < gv[i].nmembers; k++) {
				int id = nx_get(&m.ix, gv[i].members[k].name);
				int j = m.gi[id], l = m.ki[id];
				if (j == i && l == k)
					continue;
				diag_add(d, DIAG_ERROR, gv[i].members[k].pos, "duplicate-member",
					 "%s is listed in group %s and again in %s",
					 gv[i].members[k].name, gv[j].name, gv[i].name);
				diag_note(d, gv[j].members[l].pos, "listed here first");
			}
	members_free(&m);
}

static int find_group(const struct lg_file *f, const char *name)
{
	for (int i = 0; i < f->ngroups; i++)
		if (!strcmp(f->groups[i].name, name))
			return i;
	return -1;
}

static void check_grouping(const struct lg_file *g, const struct lg_file *s, struct diag_list *d)
{
	check_members(g, g->groups, g->ngroups, s, d);
	if (g->kind == LG_GROUPS)
		check_dup_members(g->groups, g->ngroups, d);
	struct members mi;
	if (members_index(&mi, g->groups, g->ngroups, d) == 0)
		for (int i = 0; i < s->nagents; i++) {
			const struct lg_agent *a = &s->agents[i];
			if (a->dup_of < 0 && nx_get(&mi.ix, a->name) < 0)
				diag_add(d, DIAG_WARNING, a->pos, "ungrouped-agent",
					 "%s is in no group of %s", a->name, base(g->path));
		}
	members_free(&mi);
	/* Groups by name, when the startup file has real groups (MainPC form). */
	if (ct_get(s->root, "agent_groups")) {
		for (int i = 0; i < g->ngroups; i++) {
			const struct lg_group *x = &g->groups[i];
			if (find_group(s, x->name) >= 0)
				continue;
			char where[512] = "";
			size_t m = 0;
			for (int k = 0; k < x->nmembers && m < sizeof where; k++) {
				int ai = lg_find_agent(s, x->members[k].name);
				if (ai < 0 || s->agents[ai].group < 0)
					continue;
				m += (size_t)snprintf(where + m, sizeof where - m, "%s%s in %s",
						      m ? ", " : "; there ", s->agents[ai].name,
						      s->groups[s->agents[ai].group].name);
			}
			diag_add(d, DIAG_WARNING, x->pos, "grouping-group-mismatch",
				 "group %s does not exist in %s%s", x->name, base(s->path), where);
		}
		for (int i = 0; i < s->ngroups; i++)
			if (find_group(g, s->groups[i].name) < 0)
				diag_add(d, DIAG_WARNING, s->groups[i].pos, "grouping-group-mismatch",
					 "group %s is missing from %s", s->groups[i].name,
					 base(g->path));
	}
	/* Per-agent details a grouping file repeats. */
	for (int i = 0; i < g->nagents; i++) {
		const struct lg_agent *x = &g->agents[i];
		int si = lg_find_agent(s, x->name);
		if (si < 0 || x->dup_of >= 0)
			continue;
		const struct lg_agent *y = &s->agents[si];
		if (x->port && y->port && x->port != y->port) {
			diag_add(d, DIAG_ERROR, x->port_pos, "grouping-mismatch",
				 "%s has port %d here but %d in %s", x->name, x->port, y->port,
				 base(s->path));
			diag_note(d, y->port_pos, "port of %s in %s", y->name, base(s->path));
		}
		if (x->script && y->script && strcmp(x->script, y->script)) {
			diag_add(d, DIAG_ERROR, x->script_pos, "grouping-mismatch",
				 "%s runs %s here but %s in %s", x->name, x->script, y->script,
				 base(s->path));
			diag_note(d, y->script_pos, "script_path of %s in %s", y->name,
				  base(s->path));
		}
		if (x->required >= 0 && x->required < 2 && y->required >= 0 && y->required < 2 &&
		    x->required != y->required) {
			diag_add(d, DIAG_WARNING, x->req_pos, "grouping-mismatch",
				 "%s is required: %s here but %s in %s", x->name,
				 x->required ? "true" : "false", y->required ? "true" : "false",
				 base(s->path));
			diag_note(d, y->req_pos, "required of %s in %s", y->name, base(s->path));
		}
	}
}

static void add_claims(const struct lg_file *f, int fileno, const struct lg_file *s,
		       struct chk_port **v, int *n, int *cap, struct diag_list *d)
{
	int need = *n + 2 * f->nagents + f->nextra + 1;
	if (need > *cap) {
		struct chk_port *x = realloc(*v, (size_t)need * sizeof *x);
		if (!x) {
			d->oom = true;
			return;
		}
		*v = x;
		*cap = need;
	}
	for (int i = 0; i < f->nagents; i++) {
		const struct lg_agent *a = &f->agents[i];
		/* a duplicate is reported as one; a grouping file's entry for an
		 * agent of the startup file is compared as a mismatch instead */
		if (a->dup_of >= 0 || (s && s != f && lg_find_agent(s, a->name) >= 0))
			continue;
		if (a->port)
			(*v)[(*n)++] = (struct chk_port){a->port, a->name, "port", a->port_pos,
							 chk_order(fileno, a->port_pos)};
		if (a->hp)
			(*v)[(*n)++] = (struct chk_port){a->hp, a->name, "health_check_port",
							 a->hp_pos, chk_order(fileno, a->hp_pos)};
	}
	for (int i = 0; i < f->nextra; i++) {
		(*v)[*n] = f->extra[i];
		(*v)[*n].order = chk_order(fileno, f->extra[i].pos);
		(*n)++;
	}
}

static int group_set_cmp(const struct lg_file *a, const struct lg_file *b)
{
	if (a->ngroups != b->ngroups)
		return 1;
	for (int i = 0; i < a->ngroups; i++)
		if (find_group(b, a->groups[i].name) < 0)
			return 1;
	return 0;
}

/* A port registry alone (its own duplicates and rules) and against the
 * startup file of its machine. */
static void check_registry(const struct lg_file *f, const struct lg_file *st,
			   const struct chk_opts *o, struct diag_list *d)
{
	struct chk_port *v = NULL;
	int n = 0, cap = 0;
	add_claims(f, 0, NULL, &v, &n, &cap, d);
	chk_ports(v, n, d);
	free(v);
	check_health(f, o, d);
	if (!st)
		return;
	for (int i = 0; i < f->nagents; i++) {
		const struct lg_agent *x = &f->agents[i];
		int si = x->dup_of < 0 ? lg_find_agent(st, x->name) : -2;
		if (si == -2)
			continue;
		if (si < 0) {
			diag_add(d, DIAG_WARNING, x->pos, "registry-unknown-agent",
				 "%s has ports %d/%d here but %s does not define it", x->name, x->port,
				 x->hp, base(st->path));
			continue;
		}
		const struct lg_agent *y = &st->agents[si];
		if (x->port && y->port && x->port != y->port) {
			diag_add(d, DIAG_ERROR, x->port_pos, "registry-mismatch",
				 "%s has port %d here but %d in %s", x->name, x->port, y->port,
				 base(st->path));
			diag_note(d, y->port_pos, "port of %s in %s", y->name, base(st->path));
		}
		if (x->hp && y->hp && x->hp != y->hp) {
			diag_add(d, DIAG_ERROR, x->hp_pos, "registry-mismatch",
				 "%s has health port %d here but %d in %s", x->name, x->hp, y->hp,
				 base(st->path));
			diag_note(d, y->hp_pos, "health_check_port of %s in %s", y->name,
				  base(st->path));
		}
	}
	for (int i = 0; i < st->nagents; i++) {
		const struct lg_agent *y = &st->agents[i];
		if (y->dup_of < 0 && lg_find_agent(f, y->name) < 0)
			diag_add(d, DIAG_WARNING, y->pos, "unregistered-agent",
				 "%s (port %d) has no entry in %s", y->name, y->port, base(f->path));
	}
	/* the same port under another name in the registry */
	int *by_port = malloc(65536 * sizeof *by_port);
	if (!by_port) {
		d->oom = true;
		return;
	}
	for (int p = 0; p < 65536; p++)
		by_port[p] = -1;
	for (int k = st->nagents; k-- > 0;)
		if (st->agents[k].dup_of < 0 && st->agents[k].port)
			by_port[st->agents[k].port] = k;
	for (int i = 0; i < f->nagents; i++) {
		const struct lg_agent *x = &f->agents[i];
		int k = x->port ? by_port[x->port] : -1;
		if (k < 0 || !strcmp(x->name, st->agents[k].name))
			continue;
		const struct lg_agent *y = &st->agents[k];
		diag_add(d, DIAG_ERROR, x->port_pos, "registry-mismatch",
			 "port %d is %s's here but %s's in %s", x->port, x->name, y->name,
			 base(st->path));
		diag_note(d, y->port_pos, "port of %s in %s", y->name, base(st->path));
	}
	free(by_port);
}

void lg_check(struct lg_set *s, const struct chk_opts *o, struct diag_list *d)
{
	for (int i = 0; i < s->n; i++) {
		struct lg_file *f = &s->f[i];
		struct lg_file *st = f->kind == LG_STARTUP ? f : lg_startup_for(s, f);
		if (f->kind == LG_STARTUP) {
			struct chk_port *v = NULL;
			int n = 0, cap = 0;
			check_deps(f, d);
			check_health(f, o, d);
			check_env(f, d);
			check_members(f, f->docker, f->ndocker, f, d);
			check_dup_members(f->docker, f->ndocker, d);
			add_claims(f, 0, f, &v, &n, &cap, d);
			for (int j = 0; j < s->n; j++)
				if (lg_is_grouping(&s->f[j]) && lg_startup_for(s, &s->f[j]) == f)
					add_claims(&s->f[j], j + 1, f, &v, &n, &cap, d);
			chk_ports(v, n, d);
			free(v);
			continue;
		}
		if (f->kind == LG_REGISTRY) {
			check_registry(f, st, o, d);
			continue;
		}
		if (st) {
			check_grouping(f, st, d);
			for (int j = 0; j < i; j++)
				if (lg_is_grouping(&s->f[j]) && lg_startup_for(s, &s->f[j]) == st &&
				    group_set_cmp(&s->f[j], f) && f->ngroups) {
					diag_add(d, DIAG_WARNING, f->groups[0].pos, "conflicting-groupings",
						 "%s groups the agents of %s into %d groups, %s into %d "
						 "other ones; one machine needs one grouping",
						 base(f->path), base(st->path), f->ngroups,
						 base(s->f[j].path), s->f[j].ngroups);
					diag_note(d, s->f[j].groups ? s->f[j].groups[0].pos
								    : (struct cfg_pos){s->f[j].path, 0, 0},
						  "the other grouping");
				}
		} else {
			/* alone: its own duplicates and ports */
			struct chk_port *v = NULL;
			int n = 0, cap = 0;
			if (f->kind == LG_GROUPS)
				check_dup_members(f->groups, f->ngroups, d);
			add_claims(f, 0, NULL, &v, &n, &cap, d);
			chk_ports(v, n, d);
			free(v);
		}
	}
}
