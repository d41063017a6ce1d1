/* Legacy -> schema v1. The mapping (docs/config.md, "Importing"):
 *   script_path P          -> command: [python3, /opt/ai/P], working_dir: /opt/ai
 *   port / health_check_port -> port / health_port + health: {zmq: HP}
 *   dependencies           -> depends_on (undefined ones kept as a comment)
 *   required               -> required
 *   global environment     -> defaults.environment (/app -> /opt/ai)
 *   global health_checks   -> defaults.health
 *   global volumes ./X:/app/X -> volumes: {X: {}} mounted X:/opt/ai/X in every group
 *   groups                 -> groups (from the grouping file when one is given)
 * Everything else is reported with its legacy file:line. */
#include "import.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define APP_ROOT "/opt/ai"

struct out_group {
	char *name;
	const struct lg_file *from;
	struct cfg_pos pos;
	const char *description;
	int *agents;
	int n;
};

struct imp {
	struct lg_set *s;
	struct lg_file *st;
	struct diag_list *d;
	struct out_group *g;
	int ng;
	int *assigned; /* per startup agent: out group or -1 */
	FILE *out;
};

/* ---- YAML writing ---------------------------------------------------------- */

static bool plain_ok(const char *s)
{
	static const char *const special[] = {"true", "false", "yes", "no", "on", "off",
					      "null", "True", "False", "Yes", "No", "On",
					      "Off", "Null", "NULL", "TRUE", "FALSE", "y", "n"};
	if (!isalpha((unsigned char)s[0]) && s[0] != '/' && s[0] != '_')
		return false;
	for (size_t i = 0; i < AI_ARRAY_SIZE(special); i++)
		if (!strcmp(s, special[i]))
			return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_-./+=@", *p))
			return false;
	return true;
}

void imp_yaml_str(FILE *f, const char *s)
{
	if (plain_ok(s)) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void imp_yaml_strv(FILE *f, const char *const *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		imp_yaml_str(f, v[i]);
	}
	fputc(']', f);
}

/* ---- helpers ------------------------------------------------------------------ */

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void unmapped(struct imp *m, struct cfg_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void unmapped(struct imp *m, struct cfg_pos pos, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	diag_add(m->d, DIAG_WARNING, pos, "import-unmapped", "%s", buf);
}

/* core_services -> core-services */
static char *group_name(const char *s)
{
	char *n = strdup(s);
	for (char *p = n; p && *p; p++)
		if (*p == '_')
			*p = '-';
	return n;
}

static int find_out(struct imp *m, const char *name)
{
	for (int i = 0; i < m->ng; i++)
		if (!strcmp(m->g[i].name, name))
			return i;
	return -1;
}

static int add_out(struct imp *m, const char *legacy_name, const char *container,
		   const struct lg_file *from, struct cfg_pos pos, const char *descr)
{
	char *name = container ? strdup(container) : group_name(legacy_name);
	int i;
	if (!name)
		return -1;
	if ((i = find_out(m, name)) >= 0) {
		free(name);
		return i;
	}
	struct out_group *v = realloc(m->g, (size_t)(m->ng + 1) * sizeof *v);
	if (!v) {
		free(name);
		return -1;
	}
	m->g = v;
	v[m->ng] = (struct out_group){name, from, pos, descr, NULL, 0};
	return m->ng++;
}

static int assign(struct imp *m, int gi, int ai)
{
	struct out_group *g = &m->g[gi];
	int *v = realloc(g->agents, (size_t)(g->n + 1) * sizeof *v);
	if (!v)
		return -1;
	g->agents = v;
	v[g->n++] = ai;
	m->assigned[ai] = gi;
	return 0;
}

/* ---- grouping ------------------------------------------------------------------ */

static int make_groups(struct imp *m)
{
	struct lg_set *s = m->s;
	struct lg_file *st = m->st, *gf = NULL;
	for (int i = 0; i < lg_count(s); i++) {
		struct lg_file *f = lg_get(s, i);
		if (!lg_is_grouping(f) || lg_startup_for(s, f) != st)
			continue;
		if (!gf)
			gf = f;
		else if (f->ngroups)
			unmapped(m, f->groups[0].pos,
				 "a second grouping for %s: only %s is used for the groups",
				 base(st->path), base(gf->path));
	}
	if (gf) {
		for (int g = 0; g < gf->ngroups; g++) {
			const struct lg_group *x = &gf->groups[g];
			int gi = -1;
			for (int k = 0; k < x->nmembers; k++) {
				int ai = lg_find_agent(st, x->members[k].name);
				if (ai < 0) {
					unmapped(m, x->members[k].pos,
						 "%s is not defined in %s: not imported", x->members[k].name,
						 base(st->path));
					continue;
				}
				if (m->assigned[ai] >= 0)
					continue;
				if (gi < 0 && (gi = add_out(m, x->name, x->container, gf, x->pos,
							    x->description)) < 0)
					return -1;
				if (assign(m, gi, ai) < 0)
					return -1;
			}
			if (gi < 0)
				unmapped(m, x->pos, "group %s has no agent of %s: not imported", x->name,
					 base(st->path));
		}
	}
	for (int ai = 0; ai < st->nagents; ai++) {
		const struct lg_agent *a = &st->agents[ai];
		if (a->dup_of >= 0 || m->assigned[ai] >= 0)
			continue;
		const struct lg_group *lg = a->group >= 0 ? &st->groups[a->group] : NULL;
		int gi = add_out(m, lg ? lg->name : "ungrouped", NULL, st,
				 lg ? lg->pos : a->pos, NULL);
		if (gi < 0 || assign(m, gi, ai) < 0)
			return -1;
		if (gf)
			unmapped(m, a->pos, "%s is in no group of %s: kept in group %s", a->name,
				 base(gf->path), m->g[gi].name);
	}
	for (int g = 0; g < st->ngroups; g++) {
		bool any = false;
		for (int ai = 0; ai < st->nagents && !any; ai++)
			any = st->agents[ai].group == g;
		if (!any)
			unmapped(m, st->groups[g].pos, "group %s has no agents: not imported",
				 st->groups[g].name);
	}
	return 0;
}

/* ---- the top of the file ---------------------------------------------------------- */

static const char *app_path(const char *v, char *buf, size_t n)
{
	if (!strcmp(v, "/app") || !strncmp(v, "/app/", 5)) {
		snprintf(buf, n, APP_ROOT "%s", v + 4);
		return buf;
	}
	return v;
}

static void emit_env(struct imp *m)
{
	const struct ct_node *env = m->st->env;
	const char *host = NULL;
	bool one_host = true;
	FILE *o = m->out;
	for (int i = 0; i < m->st->nagents; i++) {
		const char *h = m->st->agents[i].host;
		if (!h)
			continue;
		if (host && strcmp(host, h))
			one_host = false;
		host = h;
	}
	if ((!env || env->kind != CT_MAP || !env->n) && !(host && one_host))
		return;
	fprintf(o, "  environment:");
	if (env && env->kind == CT_MAP)
		fprintf(o, "   # %s:%u", base(m->st->path), env->pos.line);
	fputc('\n', o);
	for (size_t i = 0; env && env->kind == CT_MAP && i < env->n; i++) {
		const struct ct_node *k = ct_key(env, i), *v = ct_val(env, i);
		char buf[512];
		if (v->kind != CT_SCALAR) {
			unmapped(m, v->pos, "environment %s is not a string: not imported", k->value);
			continue;
		}
		const char *val = app_path(v->value, buf, sizeof buf);
		if (strstr(v->value, "${")) {
			/* the old launcher ran this through a shell; here the code lives
			 * in one place, so the path is known */
			unmapped(m, v->pos,
				 "%s: \"%s\" needs shell expansion; imported as %s", k->value,
				 v->value, !strcmp(k->value, "PYTHONPATH") ? APP_ROOT : "\"\"");
			val = !strcmp(k->value, "PYTHONPATH") ? APP_ROOT : "";
		} else if (val != v->value)
			unmapped(m, v->pos, "%s: %s rewritten to %s (the code lives in " APP_ROOT ")",
				 k->value, v->value, val);
		fprintf(o, "    ");
		imp_yaml_str(o, k->value);
		fputs(": ", o);
		imp_yaml_str(o, val);
		fputc('\n', o);
	}
	if (host && one_host) {
		fputs("    ZMQ_BIND_IP: ", o);
		imp_yaml_str(o, host);
		fputs("   # from the agents' host: keys\n", o);
	}
}

static void emit_health_defaults(struct imp *m)
{
	const struct ct_node *h = m->st->health;
	static const struct {
		const char *legacy, *key;
	} map[] = {{"interval_seconds", "interval"},
		   {"timeout_seconds", "timeout"},
		   {"start_period_seconds", "start_period"},
		   {"retries", "retries"}};
	if (!h || h->kind != CT_MAP)
		return;
	fprintf(m->out, "  health:   # %s:%u\n", base(m->st->path), h->pos.line);
	for (size_t i = 0; i < h->n; i++) {
		const struct ct_node *k = ct_key(h, i), *v = ct_val(h, i);
		size_t j;
		int64_t x;
		for (j = 0; j < AI_ARRAY_SIZE(map); j++)
			if (!strcmp(k->value, map[j].legacy))
				break;
		if (j == AI_ARRAY_SIZE(map) || v->kind != CT_SCALAR ||
		    ai_parse_int(v->value, 0, 100000000, &x) < 0) {
			unmapped(m, k->pos, "health_checks.%s: not imported", k->value);
			continue;
		}
		if (!strcmp(map[j].key, "retries"))
			fprintf(m->out, "    retries: %lld\n", (long long)(x ? x : 1));
		else
			fprintf(m->out, "    %s: %llds\n", map[j].key, (long long)x);
	}
}

/* global_settings.volumes: [{source: ./logs, target: /app/logs}] */
struct vol {
	const char *name, *target;
};

static int read_volumes(struct imp *m, struct vol *v, int max)
{
	const struct ct_node *gs = ct_get(m->st->root, "global_settings"), *vs;
	int n = 0;
	if (!(vs = ct_get(gs, "volumes")) || vs->kind != CT_SEQ)
		return 0;
	for (size_t i = 0; i < vs->n && n < max; i++) {
		const struct ct_node *src = ct_get(vs->items[i], "source"),
				     *tgt = ct_get(vs->items[i], "target");
		if (!src || !tgt || src->kind != CT_SCALAR || tgt->kind != CT_SCALAR ||
		    tgt->value[0] != '/') {
			unmapped(m, vs->items[i]->pos, "volume entry: not imported");
			continue;
		}
		const char *name = src->value;
		while (*name == '.' || *name == '/')
			name++;
		if (!*name || strchr(name, '/') || strchr(name, ':')) {
			unmapped(m, src->pos, "volume source %s is not a plain directory: not imported",
				 src->value);
			continue;
		}
		v[n++] = (struct vol){name, tgt->value};
	}
	return n;
}

static void report_top_level(struct imp *m)
{
	static const char *const mapped[] = {"agent_groups", "global_settings", "environment",
					     "health_checks"};
	const struct ct_node *r = m->st->root, *gs = ct_get(r, "global_settings");
	for (size_t i = 0; i < r->n; i++) {
		const struct ct_node *k = ct_key(r, i);
		bool ok = false;
		for (size_t j = 0; j < AI_ARRAY_SIZE(mapped); j++)
			ok |= !strcmp(k->value, mapped[j]);
		for (int g = 0; g < m->st->ngroups; g++)
			ok |= !strcmp(m->st->groups[g].name, k->value); /* agent lists */
		if (!ok)
			unmapped(m, k->pos, "%s: no schema-v1 equivalent; not imported", k->value);
	}
	for (size_t i = 0; gs && gs->kind == CT_MAP && i < gs->n; i++) {
		const char *k = ct_key(gs, i)->value;
		if (!strcmp(k, "environment") || !strcmp(k, "health_checks") || !strcmp(k, "volumes"))
			continue;
		if (!strcmp(k, "resource_limits"))
			unmapped(m, ct_key(gs, i)->pos,
				 "global_settings.resource_limits are per agent; ainit limits groups "
				 "(groups.NAME.resources): not imported, set them per group");
		else if (!strcmp(k, "network"))
			unmapped(m, ct_key(gs, i)->pos,
				 "global_settings.network is a docker network; ainit groups use the "
				 "host network unless a group says network: bridge: not imported");
		else
			unmapped(m, ct_key(gs, i)->pos, "global_settings.%s: not imported", k);
	}
}

/* ---- agents ------------------------------------------------------------------------ */

static void emit_agent(struct imp *m, int ai)
{
	const struct lg_agent *a = &m->st->agents[ai];
	FILE *o = m->out;
	fprintf(o, "      # %s:%u\n      ", m->st->path, a->pos.line);
	imp_yaml_str(o, a->name);
	fputs(":\n", o);
	if (a->script) {
		char cmd[4096];
		const char *argv[2] = {"python3", cmd};
		snprintf(cmd, sizeof cmd, APP_ROOT "/%s", a->script);
		fputs("        command: ", o);
		imp_yaml_strv(o, argv, 2);
		fputs("\n        working_dir: " APP_ROOT "\n", o);
	} else {
		unmapped(m, a->pos, "%s has no script_path; given command: [\"false\"]", a->name);
		fputs("        command: [\"false\"]\n", o);
	}
	if (a->port) {
		fprintf(o, "        port: %d\n", a->port);
		if (a->port_expr)
			unmapped(m, a->port_pos, "port of %s: ${PORT_OFFSET} dropped, imported as %d",
				 a->name, a->port);
	}
	if (a->hp) {
		fprintf(o, "        health_port: %d\n        health: {zmq: %d}\n", a->hp, a->hp);
		if (a->hp_expr)
			unmapped(m, a->hp_pos,
				 "health_check_port of %s: ${PORT_OFFSET} dropped, imported as %d",
				 a->name, a->hp);
	}
	if (a->required == 0 || a->required == 1)
		fprintf(o, "        required: %s\n", a->required ? "true" : "false");
	else if (a->required == 2) {
		fputs("        required: true   # legacy value was an unevaluated expression\n", o);
		unmapped(m, a->req_pos, "required of %s is not a boolean; imported as true",
			 a->name);
	}
	int ndef = 0;
	for (int k = 0; k < a->ndeps; k++)
		ndef += lg_find_agent(m->st, a->deps[k].name) >= 0;
	if (a->ndeps) {
		fputs("        depends_on:", o);
		if (!ndef)
			fputs(" []", o);
		fputc('\n', o);
		for (int k = 0; k < a->ndeps; k++) {
			if (lg_find_agent(m->st, a->deps[k].name) >= 0) {
				fputs("          - ", o);
				imp_yaml_str(o, a->deps[k].name);
				fputc('\n', o);
				continue;
			}
			fprintf(o, "          # - %s   (undefined in %s:%u)\n", a->deps[k].name,
				base(m->st->path), a->deps[k].pos.line);
			unmapped(m, a->deps[k].pos, "%s depends on %s, which is not defined: left as a "
				 "comment", a->name, a->deps[k].name);
		}
	}
	static const char *const dropped[] = {"module", "class", "startup_priority", "description",
					      "priority", "command_args"};
	for (size_t i = 0; a->node->kind == CT_MAP && i < a->node->n; i++) {
		const struct ct_node *k = ct_key(a->node, i);
		if (!strcmp(k->value, "config"))
			unmapped(m, k->pos,
				 "config of %s (agent-specific settings) has no schema-v1 key: not "
				 "imported", a->name);
		for (size_t j = 0; j < AI_ARRAY_SIZE(dropped); j++)
			if (!strcmp(k->value, dropped[j]))
				unmapped(m, k->pos, "%s of %s: not imported", dropped[j], a->name);
	}
}

int imp_legacy(struct lg_set *s, struct lg_file *st, FILE *o, struct diag_list *d)
{
	struct imp m = {.s = s, .st = st, .d = d, .out = o};
	struct vol vols[32];
	int nvol, rc = 0;
	char host[65] = "appliance";

	m.assigned = malloc(((size_t)st->nagents + 1) * sizeof *m.assigned);
	if (!m.assigned)
		return -ENOMEM;
	for (int i = 0; i < st->nagents; i++)
		m.assigned[i] = -1;
	if (make_groups(&m) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < st->nagents; i++)
		if (st->agents[i].dup_of >= 0)
			unmapped(&m, st->agents[i].pos,
				 "second definition of %s: not imported (the first, line %u, is)",
				 st->agents[i].name, st->agents[st->agents[i].dup_of].pos.line);
	/* hostname: the directory the startup file sits in (mainpc/, pc2/) */
	{
		const char *b = base(st->path);
		if (b > st->path + 1) {
			const char *e = b - 1, *p = e;
			while (p > st->path && p[-1] != '/')
				p--;
			size_t n = (size_t)(e - p);
			if (n && n < sizeof host) {
				memcpy(host, p, n);
				host[n] = 0;
			}
			for (char *q = host; *q; q++)
				if (!isalnum((unsigned char)*q) && *q != '-')
					*q = '-';
			if (!strcmp(host, ".") || !strcmp(host, "-") || !strcmp(host, "--"))
				strcpy(host, "appliance");
		}
	}
	fprintf(o, "# Imported by `ainit import legacy` from %s", st->path);
	for (int i = 0; i < lg_count(s); i++) {
		struct lg_file *f = lg_get(s, i);
		if (f != st && lg_startup_for(s, f) == st)
			fprintf(o, " and %s", f->path);
		else if (f != st && lg_is_grouping(f))
			fprintf(o, " (%s: not for this file, ignored)", f->path);
	}
	fprintf(o, ".\n# Each agent names its legacy line. What could not be mapped was "
		   "reported\n# by the importer with its legacy file:line; check with "
		   "`ainit check`.\nversion: 1\nappliance:\n  hostname: ");
	imp_yaml_str(o, host);
	fputs("\ndefaults:\n", o);
	fputs("  # The legacy files name no user; the agents ran as their containers' root.\n"
	      "  # Said here on purpose: choose a user for them.\n  user: root\n", o);
	emit_health_defaults(&m);
	emit_env(&m);
	nvol = read_volumes(&m, vols, (int)AI_ARRAY_SIZE(vols));
	if (nvol) {
		fputs("volumes:\n", o);
		for (int i = 0; i < nvol; i++) {
			fputs("  ", o);
			imp_yaml_str(o, vols[i].name);
			fputs(": {}\n", o);
		}
	}
	report_top_level(&m);
	fputs("groups:\n", o);
	for (int g = 0; g < m.ng; g++) {
		struct out_group *x = &m.g[g];
		fputs("  ", o);
		imp_yaml_str(o, x->name);
		fprintf(o, ":   # %s:%u%s%s\n", x->from->path, x->pos.line,
			x->description ? ": " : "", x->description ? x->description : "");
		if (nvol) {
			fputs("    volumes: [", o);
			for (int i = 0; i < nvol; i++) {
				char buf[512], mnt[600];
				snprintf(mnt, sizeof mnt, "%s:%s", vols[i].name,
					 app_path(vols[i].target, buf, sizeof buf));
				if (i)
					fputs(", ", o);
				imp_yaml_str(o, mnt);
			}
			fputs("]\n", o);
		}
		fputs("    agents:\n", o);
		for (int k = 0; k < x->n; k++)
			emit_agent(&m, x->agents[k]);
	}
	if (!m.ng)
		fputs("  {}\n", o);
out:
	for (int g = 0; g < m.ng; g++) {
		free(m.g[g].name);
		free(m.g[g].agents);
	}
	free(m.g);
	free(m.assigned);
	return rc;
}

/* ---- the command ---------------------------------------------------------------------- */

int cmd_import(int argc, char **argv)
{
	const char *out = NULL;
	const char **files = calloc((size_t)argc + 1, sizeof *files);
	int nf = 0, rc = 0;
	struct diag_list d = {0};
	struct lg_set *s = NULL;
	struct lg_file *st = NULL;
	FILE *o = stdout;

	if (!files)
		return 2;
	if (argc < 2 || strcmp(argv[1], "legacy")) {
		fprintf(stderr, "usage: ainit import legacy STARTUP [GROUPING...] [-o OUT]\n");
		free(files);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "ainit: import: unknown option %s\n"
					"usage: ainit import legacy STARTUP [GROUPING...] [-o OUT]\n",
				argv[i]);
			free(files);
			return 2;
		} else
			files[nf++] = argv[i];
	}
	if (!nf) {
		fprintf(stderr, "usage: ainit import legacy STARTUP [GROUPING...] [-o OUT]\n");
		free(files);
		return 2;
	}
	if (!(s = lg_set_new())) {
		free(files);
		return 2;
	}
	for (int i = 0; i < nf; i++) {
		int k = lg_add_file(s, files[i], &d);
		if (k == LG_ERROR) {
			rc = 2;
		} else if (k == LG_V1) {
			diag_add(&d, DIAG_ERROR, (struct cfg_pos){files[i], 0, 0}, "usage",
				 "not a legacy startup_config.yaml, container_grouping.yaml or "
				 "container_groups.yaml");
			rc = 2;
		}
	}
	for (int i = 0; i < lg_count(s) && !st; i++)
		if (lg_get(s, i)->kind == LG_STARTUP)
			st = lg_get(s, i);
	if (!rc && !st) {
		diag_add(&d, DIAG_ERROR, (struct cfg_pos){files[0], 0, 0}, "usage",
			 "no startup_config.yaml among the files");
		rc = 2;
	}
	if (!rc && out && !(o = fopen(out, "we"))) {
		fprintf(stderr, "ainit: import: %s: open: %s\n", out, strerror(errno));
		rc = 2;
	}
	if (!rc) {
		if (imp_legacy(s, st, o, &d) < 0)
			rc = 2;
		if (o != stdout && fclose(o) != 0) {
			fprintf(stderr, "ainit: import: %s: write: %s\n", out, strerror(errno));
			rc = 2;
		} else if (o == stdout && fflush(o) != 0)
			rc = 2;
	}
	diag_sort(&d);
	diag_print(&d, stderr);
	if (!rc)
		fprintf(stderr, "ainit import: %s written; %d item%s reported above\n",
			out ? out : "config", d.n, d.n == 1 ? "" : "s");
	lg_set_free(s);
	diag_free(&d);
	free(files);
	return rc;
}
