/* Live reload: see reload.h. The pure part (normalised descriptions, the
 * diff, the plan) comes first; then the two runtime steps. */
#include "reload.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "logcap.h"
#include "metrics.h"
#include "probe.h"
#include "run.h"
#include "sandbox.h"
#include "state.h"
#include "util.h"

#define RL_DESC (64 * 1024)   /* one agent's description */
#define RL_DIAG (12 * 1024)   /* diagnostics carried in a reply */

/* ---- normalised descriptions ---- */

struct dbuf {
	char *p;
	size_t cap, len;
};

static void dput(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dput(struct dbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->len >= b->cap)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len = n < 0 || (size_t)n >= b->cap - b->len ? b->cap : b->len + (size_t)n;
}

/* A value on one line: backslash and newline escaped; NULL as "-". */
static void dstr(struct dbuf *b, const char *s)
{
	if (!s) {
		dput(b, "-");
		return;
	}
	for (; *s && b->len < b->cap; s++) {
		if (*s == '\n')
			dput(b, "\\n");
		else if (*s == '\\')
			dput(b, "\\\\");
		else
			b->p[b->len++] = *s;
	}
}

static void dkey(struct dbuf *b, const char *key, const char *s)
{
	dput(b, "%s=", key);
	dstr(b, s);
	dput(b, "\n");
}

static void dstrv(struct dbuf *b, const char *key, const struct cfg_strv *v)
{
	dput(b, "%s=", key);
	for (int i = 0; i < v->n; i++) {
		dput(b, "%s\"", i ? " " : "");
		for (const char *s = v->v[i]; *s; s++) {
			if (*s == '"')
				dput(b, "\\\"");
			else if (*s == '\n')
				dput(b, "\\n");
			else if (*s == '\\')
				dput(b, "\\\\");
			else if (b->len < b->cap)
				b->p[b->len++] = *s;
		}
		dput(b, "\"");
	}
	dput(b, "\n");
}

static void ddeps(struct dbuf *b, const char *key, const struct cfg_deps *d, int skip_group)
{
	dput(b, "%s=", key);
	for (int i = 0, k = 0; i < d->n; i++) {
		if (d->v[i].kind == DEP_GROUP && d->v[i].index == skip_group)
			continue;
		dput(b, "%s", k++ ? "," : "");
		dstr(b, d->v[i].name);
		if (d->v[i].restart)
			dput(b, "[restart]");
	}
	dput(b, "\n");
}

static void drlimits(struct dbuf *b, const char *prefix, const struct cfg_rlimits *r)
{
	static const char *const n[RL_N] = {"nofile", "nproc", "core", "memlock", "stack"};
	for (int i = 0; i < RL_N; i++)
		dput(b, "%s.%s=%lld\n", prefix, n[i], (long long)r->v[i]);
}

static void dsandbox(struct dbuf *b, const struct ai_config *c, int gi, const char *pfx)
{
	const struct cfg_group *g = &c->groups[gi];
	char k[RL_KEY];
	dput(b, "%snetwork=%d\n", pfx, g->network);
	snprintf(k, sizeof k, "%suser", pfx);
	dkey(b, k, g->user);
	dput(b, "%sresources=memory:%lld,memory_high:%lld,cpus_milli:%lld,cpu_weight:%lld,pids:%lld\n",
	     pfx, (long long)g->res.memory_max, (long long)g->res.memory_high,
	     (long long)g->res.cpus_milli, (long long)g->res.cpu_weight, (long long)g->res.pids);
	dput(b, "%svolumes=", pfx);
	for (int i = 0; i < g->nmounts; i++) {
		const struct cfg_mount *m = &g->mounts[i];
		dput(b, "%s", i ? "," : "");
		dstr(b, m->source);
		dput(b, ":");
		dstr(b, m->target);
		dput(b, "%s%s", m->ro ? ":ro" : "", m->named ? "" : "(path)");
	}
	dput(b, "\n");
	snprintf(k, sizeof k, "%sdevices", pfx);
	dstrv(b, k, &g->devices);
	dput(b, "%sgpu=%d:%d:", pfx, g->gpu.mode, g->gpu.count);
	for (int i = 0; i < g->gpu.nindex; i++)
		dput(b, "%s%d", i ? "," : "", g->gpu.index[i]);
	dput(b, "\n");
	snprintf(k, sizeof k, "%sseccomp", pfx);
	dkey(b, k, g->seccomp);
	snprintf(k, sizeof k, "%scapabilities", pfx);
	dstrv(b, k, &g->caps);
	dput(b, "%sruntime=%d\n%sread_only_root=%d\n", pfx, g->runtime, pfx, g->read_only_root);
	snprintf(k, sizeof k, "%srlimits", pfx);
	drlimits(b, k, &g->rlimits);
}

size_t rl_describe_sandbox(const struct ai_config *c, int gi, char *buf, size_t cap)
{
	struct dbuf b = {buf, cap ? cap - 1 : 0, 0};
	if (!cap)
		return 0;
	dsandbox(&b, c, gi, "");
	buf[b.len < cap ? b.len : cap - 1] = 0;
	return b.len >= b.cap ? cap : b.len;
}

size_t rl_describe_agent(const struct ai_config *c, int i, bool sandboxed, char *buf, size_t cap)
{
	const struct cfg_agent *a = &c->agents[i];
	const struct cfg_group *g = &c->groups[a->group];
	const struct cfg_health *h = &a->health;
	const struct cfg_restart *r = &a->restart;
	struct dbuf b = {buf, cap ? cap - 1 : 0, 0};
	if (!cap)
		return 0;
	dkey(&b, "group", g->name);
	dstrv(&b, "command", &a->command);
	dkey(&b, "working_dir", a->working_dir);
	dkey(&b, "user", a->user);
	for (int k = 0; k < a->env.n; k++) {
		dput(&b, "environment.%s=", a->env.v[k].key);
		dstr(&b, a->env.v[k].value);
		dput(&b, "\n");
	}
	dput(&b, "port=%d\nhealth_port=%d\n", a->port, a->health_port);
	dput(&b, "health.kind=%s\nhealth.port=%d\n", cfg_health_kind_name(h->kind), h->port);
	dkey(&b, "health.host", h->host);
	dstrv(&b, "health.exec", &h->exec);
	dput(&b, "health.interval=%lld\nhealth.timeout=%lld\nhealth.start_period=%lld\n",
	     (long long)h->interval_ms, (long long)h->timeout_ms, (long long)h->start_period_ms);
	dput(&b, "health.start_interval=%lld\nhealth.watchdog=%lld\nhealth.retries=%lld\n",
	     (long long)h->start_interval_ms, (long long)h->watchdog_ms, (long long)h->retries);
	dput(&b, "restart.policy=%s\nrestart.delay=%lld\nrestart.max_delay=%lld\n",
	     cfg_restart_policy_name(r->policy), (long long)r->delay_ms, (long long)r->max_delay_ms);
	dput(&b, "restart.burst=%lld\nrestart.within=%lld\nrestart.reset_after=%lld\n",
	     (long long)r->burst, (long long)r->within_ms, (long long)r->reset_after_ms);
	dput(&b, "stop.signal=%s\nstop.timeout=%lld\n", ai_signal_name(a->stop.signal),
	     (long long)a->stop.timeout_ms);
	ddeps(&b, "depends_on", &a->deps, -1);
	ddeps(&b, "group.depends_on", &g->deps, a->group);
	dput(&b, "required=%d\non_unhealthy=%d\n", a->required, a->on_unhealthy);
	drlimits(&b, "rlimits", &a->rlimits);
	if (sandboxed)
		dsandbox(&b, c, a->group, "sandbox.");
	buf[b.len < cap ? b.len : cap - 1] = 0;
	return b.len >= b.cap ? cap : b.len;
}

/* The line of `key` (keylen bytes, '=' excluded) in text, or NULL. */
static const char *find_line(const char *text, const char *key, size_t keylen, size_t *len)
{
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		if (n > keylen && l[keylen] == '=' && !memcmp(l, key, keylen)) {
			*len = n;
			return l;
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return NULL;
}

/* The first line of a whose key is missing in b or has another value. */
static bool one_way(const char *a, const char *b, char *key, size_t cap)
{
	for (const char *l = a; *l;) {
		const char *nl = strchr(l, '\n'), *eq = strchr(l, '=');
		size_t n = nl ? (size_t)(nl - l) : strlen(l), blen;
		if (eq && eq < l + n) {
			size_t kl = (size_t)(eq - l);
			const char *o = find_line(b, l, kl, &blen);
			if (!o || blen != n || memcmp(o, l, n)) {
				snprintf(key, cap, "%.*s", (int)kl, l);
				return true;
			}
		}
		if (!nl)
			break;
		l = nl + 1;
	}
	return false;
}

bool rl_first_diff(const char *a, const char *b, char *key, size_t cap)
{
	return one_way(a, b, key, cap) || one_way(b, a, key, cap);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void reboot_key(struct rl_plan *p, const char *k)
{
	if (p->nreboot < RL_MAX_REBOOT)
		snprintf(p->reboot[p->nreboot++], RL_KEY, "%s", k);
}

static bool strv_eq(const struct cfg_strv *a, const struct cfg_strv *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

static bool mounts_eq(const struct cfg_appliance *a, const struct cfg_appliance *b)
{
	if (a->nmounts != b->nmounts)
		return false;
	for (int i = 0; i < a->nmounts; i++) {
		const struct cfg_fsmount *x = &a->mounts[i], *y = &b->mounts[i];
		if (!str_eq(x->what, y->what) || !str_eq(x->where, y->where) ||
		    !str_eq(x->type, y->type) || !str_eq(x->options, y->options) ||
		    x->format_if_empty != y->format_if_empty)
			return false;
	}
	return true;
}

static bool ifaces_eq(const struct cfg_appliance *a, const struct cfg_appliance *b)
{
	if (a->nifaces != b->nifaces || !str_eq(a->bridge_name, b->bridge_name) ||
	    !str_eq(a->bridge_subnet, b->bridge_subnet))
		return false;
	for (int i = 0; i < a->nifaces; i++)
		if (!str_eq(a->ifaces[i].name, b->ifaces[i].name) ||
		    !str_eq(a->ifaces[i].address, b->ifaces[i].address) ||
		    !str_eq(a->ifaces[i].gateway, b->ifaces[i].gateway))
			return false;
	return true;
}

static bool volumes_eq(const struct ai_config *a, const struct ai_config *b)
{
	if (a->nvolumes != b->nvolumes)
		return false;
	for (int i = 0; i < a->nvolumes; i++)
		if (strcmp(a->volumes[i].name, b->volumes[i].name))
			return false;
	return true;
}

void rl_appliance_diff(const struct ai_config *a, const struct ai_config *b, struct rl_plan *p)
{
	const struct cfg_appliance *x = &a->app, *y = &b->app;
	if (!str_eq(x->hostname, y->hostname))
		reboot_key(p, "appliance.hostname");
	if (!strv_eq(&x->kernel_modules, &y->kernel_modules))
		reboot_key(p, "appliance.kernel_modules");
	if (!mounts_eq(x, y))
		reboot_key(p, "appliance.mounts");
	if (!ifaces_eq(x, y))
		reboot_key(p, "appliance.network");
	if (!str_eq(x->ctl_socket, y->ctl_socket))
		reboot_key(p, "appliance.ctl.socket");
	if (!str_eq(x->ctl_admin_group, y->ctl_admin_group))
		reboot_key(p, "appliance.ctl.admin_group");
	if (!str_eq(x->metrics_listen, y->metrics_listen))
		reboot_key(p, "appliance.metrics.listen");
	if (!str_eq(x->data_dir, y->data_dir))
		reboot_key(p, "appliance.data_dir");
	if (!volumes_eq(a, b))
		reboot_key(p, "volumes");
}

void rl_plan_free(struct rl_plan *p)
{
	free(p->old_of_new);
	free(p->new_of_old);
	free(p->act);
	free(p->why);
	free(p->group_rebuild);
	memset(p, 0, sizeof *p);
}

static int plan_alloc(struct rl_plan *p, int nold, int nnew, int ngroups)
{
	memset(p, 0, sizeof *p);
	p->nold = nold;
	p->nnew = nnew;
	p->old_of_new = calloc((size_t)nnew + 1, sizeof *p->old_of_new);
	p->new_of_old = calloc((size_t)nold + 1, sizeof *p->new_of_old);
	p->act = calloc((size_t)nnew + 1, sizeof *p->act);
	p->why = calloc((size_t)nnew + 1, sizeof *p->why);
	p->group_rebuild = calloc((size_t)ngroups + 1, sizeof *p->group_rebuild);
	if (!p->old_of_new || !p->new_of_old || !p->act || !p->why || !p->group_rebuild) {
		rl_plan_free(p);
		return -ENOMEM;
	}
	return 0;
}

/* Groups present in both whose sandbox settings differ. */
static int plan_groups(const struct ai_config *old, const struct ai_config *nc, struct rl_plan *p,
		       char *x, char *y)
{
	char key[RL_KEY];
	for (int g = 0; g < nc->ngroups; g++) {
		int og = cfg_find_group(old, nc->groups[g].name);
		if (og < 0)
			continue;
		if (rl_describe_sandbox(old, og, x, RL_DESC) == RL_DESC ||
		    rl_describe_sandbox(nc, g, y, RL_DESC) == RL_DESC)
			return -E2BIG;
		p->group_rebuild[g] = rl_first_diff(x, y, key, sizeof key);
	}
	return 0;
}

static void plan_agent(const struct ai_config *old, const struct ai_config *nc, bool sandboxed,
		       struct rl_plan *p, int i, char *x, char *y)
{
	int j = cfg_find_agent(old, nc->agents[i].name);
	p->old_of_new[i] = j;
	if (j < 0) {
		p->act[i] = RL_ADD;
		p->nadd++;
		return;
	}
	p->new_of_old[j] = i;
	if (rl_describe_agent(old, j, sandboxed, x, RL_DESC) == RL_DESC ||
	    rl_describe_agent(nc, i, sandboxed, y, RL_DESC) == RL_DESC)
		snprintf(p->why[i], RL_KEY, "config too large to compare");
	else if (!rl_first_diff(x, y, p->why[i], RL_KEY)) {
		p->act[i] = RL_KEEP;
		p->nkeep++;
		return;
	}
	p->act[i] = RL_RESTART;
	p->nrestart++;
}

int rl_plan_make(const struct ai_config *old, const struct ai_config *nc, bool sandboxed,
		 struct rl_plan *p)
{
	char *x, *y;
	if (plan_alloc(p, old->nagents, nc->nagents, nc->ngroups) < 0)
		return -ENOMEM;
	x = malloc(RL_DESC);
	y = malloc(RL_DESC);
	if (!x || !y) {
		free(x);
		free(y);
		rl_plan_free(p);
		return -ENOMEM;
	}
	for (int j = 0; j < old->nagents; j++)
		p->new_of_old[j] = -1;
	for (int i = 0; i < nc->nagents; i++)
		plan_agent(old, nc, sandboxed, p, i, x, y);
	for (int j = 0; j < old->nagents; j++)
		if (p->new_of_old[j] < 0)
			p->nremove++;
	if (sandboxed && plan_groups(old, nc, p, x, y) < 0) {
		/* cannot tell: rebuild every group present in both */
		for (int g = 0; g < nc->ngroups; g++)
			p->group_rebuild[g] = cfg_find_group(old, nc->groups[g].name) >= 0;
	}
	rl_appliance_diff(old, nc, p);
	free(x);
	free(y);
	return 0;
}

/* ---- runtime ---- */

struct rl_pending {
	struct ai_config *nc;
	struct rl_plan plan;
	struct sup_agent *table;  /* prepared for nc, not yet in use */
	int *carry;               /* per new agent: old index it takes over, -1 */
	int *log_from;            /* per new agent: old index whose log it keeps, -1 */
	bool *held;               /* per new agent: stopped by ctl stop, stays stopped */
	uint64_t t0_ms;
	int stopping;             /* agents that had to stop first */
	char (*names)[256];       /* the files' names, as long as nc lives */
	struct sbx_remap sbx;     /* sandbox tables for nc, when groups are sandboxed */
};

bool reload_pending(const struct ai_state *st)
{
	return st->reload != NULL;
}

static void pending_free(struct rl_pending *r)
{
	if (!r)
		return;
	if (r->table)
		sup_table_discard(r->table, r->nc ? r->nc->nagents : 0);
	cfg_free(r->nc);
	rl_plan_free(&r->plan);
	free(r->carry);
	free(r->log_from);
	free(r->held);
	free(r->names);
	sbx_sup_remap_discard(&r->sbx);
	free(r);
}

static void refuse(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct jw *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warn("reload", NULL, "refused: %s", msg);
	if (w)
		jw_kstr(w, "error", msg);
}

/* The diagnostics as text (bounded), for the reply and the log. */
static void diag_text(const struct diag_list *d, char *buf, size_t cap)
{
	FILE *f = fmemopen(buf, cap, "w");
	buf[0] = 0;
	if (!f) {
		snprintf(buf, cap, "(diagnostics unavailable: fmemopen: %s)\n", strerror(errno));
		return;
	}
	setvbuf(f, NULL, _IONBF, 0);
	diag_print(d, f);
	fclose(f);
	buf[cap - 1] = 0;
}

/* Load the files run.c names; on errors the reply carries them. The
 * config's positions point at names (PID 1's appliance.d files), so names
 * lives as long as the config: in the pending reload, then in st. */
static struct ai_config *load_new(struct ai_state *st, struct jw *w, char (*names)[256])
{
	const char *files[RUN_MAX_FILES];
	struct diag_list d = {0};
	int n = run_config_files(st, names, files);
	struct ai_config *nc;
	char *text;
	if (n < 1) {
		refuse(w, "this supervisor was not started from config files; nothing to re-read");
		return NULL;
	}
	nc = run_load_config(files, n, &d);
	text = malloc(RL_DIAG);
	if (text)
		diag_text(&d, text, RL_DIAG);
	if (!nc) {
		refuse(w, "%s: %d error(s) in the new configuration; the running configuration is "
			  "unchanged", files[0], d.errors ? d.errors : 1);
		if (w)
			jw_kstr(w, "diagnostics", text);
		else
			diag_print(&d, stderr);
	} else if (w && d.warnings)
		jw_kstr(w, "diagnostics", text);
	free(text);
	diag_free(&d);
	return nc;
}

/* What needs a reboot is not applied: the running values stay in the new
 * config, so that status and later sandbox preparations use them. */
static int keep_one(struct ai_config *nc, const char **dst, const char *old)
{
	if (str_eq(*dst, old))
		return 0;
	*dst = old ? ai_arena_strdup(&nc->arena, old) : NULL;
	return old && !*dst ? -ENOMEM : 0;
}

static int keep_appliance(struct ai_config *nc, const struct ai_config *oc)
{
	struct cfg_appliance *n = &nc->app;
	const struct cfg_appliance *o = &oc->app;
	if (keep_one(nc, &n->hostname, o->hostname) < 0 || keep_one(nc, &n->data_dir, o->data_dir) < 0 ||
	    keep_one(nc, &n->bridge_name, o->bridge_name) < 0 ||
	    keep_one(nc, &n->bridge_subnet, o->bridge_subnet) < 0 ||
	    keep_one(nc, &n->ctl_socket, o->ctl_socket) < 0 ||
	    keep_one(nc, &n->ctl_admin_group, o->ctl_admin_group) < 0 ||
	    keep_one(nc, &n->metrics_listen, o->metrics_listen) < 0)
		return -ENOMEM;
	return 0;
}

static int pending_make(struct ai_state *st, struct ai_config *nc, char (*names)[256],
			struct rl_pending **out, struct ai_err *e)
{
	struct rl_pending *r = calloc(1, sizeof *r);
	if (!r)
		return ai_fail(e, "reload", "calloc", ENOMEM, "pending reload");
	r->nc = nc;
	r->names = names;
	r->t0_ms = ai_now_ms();
	if (rl_plan_make(st->cfg, nc, st->sbx != NULL, &r->plan) < 0 ||
	    keep_appliance(nc, st->cfg) < 0 ||
	    !(r->carry = calloc((size_t)nc->nagents + 1, sizeof *r->carry)) ||
	    !(r->log_from = calloc((size_t)nc->nagents + 1, sizeof *r->log_from)) ||
	    !(r->held = calloc((size_t)nc->nagents + 1, sizeof *r->held))) {
		r->nc = NULL; /* the caller frees it and names */
		r->names = NULL;
		pending_free(r);
		return ai_fail(e, "reload", "calloc", ENOMEM, "reload plan");
	}
	for (int i = 0; i < nc->nagents; i++) {
		r->log_from[i] = r->plan.old_of_new[i];
		r->carry[i] = r->plan.act[i] == RL_KEEP ? r->plan.old_of_new[i] : -1;
	}
	r->table = sup_table_prepare(st, nc, r->carry, e);
	if (!r->table || (st->sbx && sbx_sup_remap_prepare(st->sbx, nc, &r->sbx, e) < 0)) {
		sup_table_discard(r->table, nc->nagents);
		r->table = NULL;
		r->nc = NULL;
		r->names = NULL;
		pending_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

static void reply_plan(struct ai_state *st, const struct rl_pending *r, struct jw *w)
{
	const struct rl_plan *p = &r->plan;
	const struct ai_config *nc = r->nc;
	jw_kbool(w, "ok", true);
	jw_key(w, "added");
	jw_arr_begin(w);
	for (int i = 0; i < nc->nagents; i++)
		if (p->act[i] == RL_ADD)
			jw_str(w, nc->agents[i].name);
	jw_arr_end(w);
	jw_key(w, "removed");
	jw_arr_begin(w);
	for (int j = 0; j < st->cfg->nagents; j++)
		if (p->new_of_old[j] < 0)
			jw_str(w, st->cfg->agents[j].name);
	jw_arr_end(w);
	jw_key(w, "restarted");
	jw_arr_begin(w);
	for (int i = 0; i < nc->nagents; i++)
		if (p->act[i] == RL_RESTART) {
			jw_obj_begin(w);
			jw_kstr(w, "name", nc->agents[i].name);
			jw_kstr(w, "changed", p->why[i]);
			jw_obj_end(w);
		}
	jw_arr_end(w);
	jw_key(w, "rebuilt_groups");
	jw_arr_begin(w);
	for (int g = 0; st->sbx && g < nc->ngroups; g++)
		if (p->group_rebuild[g])
			jw_str(w, nc->groups[g].name);
	jw_arr_end(w);
	jw_kint(w, "unchanged", p->nkeep);
	jw_key(w, "needs_reboot");
	jw_arr_begin(w);
	for (int k = 0; k < p->nreboot; k++)
		jw_str(w, p->reboot[k]);
	jw_arr_end(w);
	jw_kint(w, "stopping", r->stopping);
}

static void log_plan(const struct rl_pending *r)
{
	const struct rl_plan *p = &r->plan;
	for (int i = 0; i < r->nc->nagents; i++)
		if (p->act[i] == RL_RESTART)
			log_info("reload", r->nc->agents[i].name, "changed (%s): restarting", p->why[i]);
		else if (p->act[i] == RL_ADD)
			log_info("reload", r->nc->agents[i].name, "added");
	for (int k = 0; k < p->nreboot; k++)
		log_warn("reload", NULL, "%s changed: needs a reboot; not applied", p->reboot[k]);
	log_info("reload", NULL, "%d added, %d removed, %d restarted, %d unchanged", p->nadd,
		 p->nremove, p->nrestart, p->nkeep);
}

/* What goes (removed, changed) is stopped first, in reverse dependency
 * order; a rebuilt group's agents all go (their description changed). */
static void begin_stops(struct ai_state *st, struct rl_pending *r)
{
	char note[160];
	for (int j = 0; j < st->nagents; j++) {
		int i = r->plan.new_of_old[j];
		if (i >= 0 && r->plan.act[i] == RL_KEEP)
			continue;
		if (i < 0)
			snprintf(note, sizeof note, "ainit: reload: removed from the configuration");
		else
			snprintf(note, sizeof note, "ainit: reload: %s changed; restarting with it",
				 r->plan.why[i]);
		logcap_note(st, &st->agents[j], note);
		if (i >= 0 && !st->agents[j].want_up)
			r->held[i] = true;
		if (st->agents[j].pid > 0)
			r->stopping++;
		sup_retire(st, j);
	}
	sup_retire_step(st);
}

/* Status and the log say why a restarted agent restarted. */
static void note_restarts(struct ai_state *st, const struct rl_plan *p)
{
	for (int i = 0; i < st->nagents; i++) {
		struct sup_agent *a = &st->agents[i];
		if (p->act[i] == RL_RESTART)
			snprintf(a->reason_text, sizeof a->reason_text, "reload: %s changed", p->why[i]);
		else if (p->act[i] == RL_ADD)
			logcap_note(st, a, "ainit: reload: added to the configuration");
	}
}

int reload_request(struct ai_state *st, struct jw *w)
{
	struct ai_err e = {0};
	struct rl_pending *r = NULL;
	struct ai_config *nc;
	char (*names)[256];
	if (!st->cfg) {
		refuse(w, "no configuration is running (%s); reboot to load one", st->degraded);
		return -EINVAL;
	}
	if (st->phase != PHASE_RUN) {
		refuse(w, "shutting down");
		return -EBUSY;
	}
	if (st->reload) {
		refuse(w, "a reload is already in progress (waiting for agents to stop)");
		return -EBUSY;
	}
	log_info("reload", NULL, "reloading the configuration");
	if (!(names = calloc(RUN_MAX_FILES, sizeof *names))) {
		refuse(w, "out of memory; the running configuration is unchanged");
		return -ENOMEM;
	}
	if (!(nc = load_new(st, w, names))) {
		free(names);
		return -EINVAL;
	}
	if (pending_make(st, nc, names, &r, &e) < 0) {
		cfg_free(nc);
		free(names);
		log_error(&e);
		refuse(w, "%s; the running configuration is unchanged", e.msg);
		return -ENOMEM;
	}
	st->reload = r;
	log_plan(r);
	begin_stops(st, r);
	if (w)
		reply_plan(st, r, w);
	return 0;
}

static void swap(struct ai_state *st, struct rl_pending *r)
{
	struct ai_err e = {0};
	struct ai_config *oc = st->cfg;
	struct probe_tab *pt = probe_detach(st);
	int nold = st->nagents;
	/* sandboxes follow the new group table; changed groups are rebuilt at
	 * their next start */
	if (st->sbx)
		sbx_sup_remap_commit(st->sbx, st->cfg, r->nc, r->plan.new_of_old,
				     r->plan.group_rebuild, &r->sbx);
	sup_table_commit(st, r->nc, r->table, r->carry, r->log_from);
	r->table = NULL;
	r->nc = NULL; /* st->cfg now */
	if (logcap_attach(st, &e) < 0)
		log_error(&e); /* those agents write to /dev/null */
	if (probe_reload(st, pt, r->carry, &e) < 0)
		log_error(&e);
	ctl_follow_remap(st, r->plan.new_of_old, nold);
	if (met_resize(st, &e) < 0)
		log_error(&e);
	note_restarts(st, &r->plan);
	cfg_free(oc);
	free(st->cfg_names); /* what oc's positions pointed at */
	st->cfg_names = r->names;
	r->names = NULL;
	log_info("reload", NULL, "applied in %llu ms; %d agents",
		 (unsigned long long)(ai_now_ms() - r->t0_ms), st->nagents);
	st->reload = NULL;
	for (int i = 0; i < st->nagents; i++)
		if (r->held[i])
			sup_hold_down(st, i);
	pending_free(r);
	sup_start_all(st);
}

void reload_poll(struct ai_state *st)
{
	struct rl_pending *r = st->reload;
	if (!r)
		return;
	if (st->phase != PHASE_RUN) {
		log_info("reload", NULL, "abandoned: shutting down");
		st->reload = NULL;
		pending_free(r);
		return;
	}
	if (sup_retire_step(st))
		return; /* some of them still run */
	swap(st, r);
}
