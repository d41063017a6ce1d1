/* Schema v1 loader: cfgtree nodes -> struct ai_config, with inheritance
 * agent -> group -> defaults -> built-in. Unknown keys are errors with a
 * "did you mean". Static rules that need the whole config (ports, cycles,
 * legacy files) live in check.c. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct loader {
	struct ai_config *c;
	struct diag_list *d;
};

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void err(struct loader *L, const struct ct_node *n, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void err(struct loader *L, const struct ct_node *n, const char *rule, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	diag_add(L->d, DIAG_ERROR, n->pos, rule, "%s", buf);
}

static bool is_map(struct loader *L, const struct ct_node *n, const char *what)
{
	if (n->kind == CT_MAP)
		return true;
	err(L, n, "type", "%s must be a mapping", what);
	return false;
}

/* Report keys of m not in allowed[]. */
static void check_keys(struct loader *L, const struct ct_node *m, const char *const *allowed,
		       const char *what)
{
	size_t na = 0;
	while (allowed[na])
		na++;
	for (size_t i = 0; i < m->n; i++) {
		const struct ct_node *k = ct_key(m, i);
		size_t j;
		for (j = 0; j < na; j++)
			if (strcmp(k->value, allowed[j]) == 0)
				break;
		if (j < na)
			continue;
		const char *s = ct_suggest(k->value, allowed, na);
		if (s)
			err(L, k, "unknown-key", "unknown key \"%s\" in %s; did you mean \"%s\"?",
			    k->value, what, s);
		else
			err(L, k, "unknown-key", "unknown key \"%s\" in %s", k->value, what);
	}
}

static const char *get_str(struct loader *L, const struct ct_node *n, const char *what)
{
	if (n->kind == CT_SCALAR)
		return n->value;
	err(L, n, "type", "%s must be a string", what);
	return NULL;
}

static bool get_int(struct loader *L, const struct ct_node *n, const char *what, int64_t lo,
		    int64_t hi, int64_t *out)
{
	int r;
	if (n->kind != CT_SCALAR) {
		err(L, n, "type", "%s must be a number", what);
		return false;
	}
	r = ai_parse_int(n->value, lo, hi, out);
	if (r == -ERANGE)
		err(L, n, "range", "%s %s is out of range [%lld, %lld]", what, n->value,
		    (long long)lo, (long long)hi);
	else if (r < 0)
		err(L, n, "type", "%s must be a whole number, not \"%s\"", what, n->value);
	return r == 0;
}

static bool get_bool(struct loader *L, const struct ct_node *n, const char *what, bool *out)
{
	if (n->kind == CT_SCALAR) {
		const char *v = n->value;
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "True")) {
			*out = true;
			return true;
		}
		if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "False")) {
			*out = false;
			return true;
		}
	}
	err(L, n, "type", "%s must be true or false", what);
	return false;
}

static bool get_dur(struct loader *L, const struct ct_node *n, const char *what, int64_t *out)
{
	int r;
	if (n->kind != CT_SCALAR) {
		err(L, n, "type", "%s must be a duration like 200ms, 30s, 5m", what);
		return false;
	}
	r = ai_parse_duration_ms(n->value, out);
	if (r < 0)
		err(L, n, "bad-duration", "%s: bad duration \"%s\" (use e.g. 200ms, 30s, 5m, 1h)",
		    what, n->value);
	return r == 0;
}

static bool get_size(struct loader *L, const struct ct_node *n, const char *what, int64_t *out)
{
	int r;
	if (n->kind != CT_SCALAR) {
		err(L, n, "type", "%s must be a size like 512MiB or 2GiB", what);
		return false;
	}
	r = ai_parse_size(n->value, out);
	if (r < 0)
		err(L, n, "bad-size", "%s: bad size \"%s\" (use e.g. 512MiB, 2GiB, max)", what,
		    n->value);
	return r == 0;
}

static bool get_strv(struct loader *L, const struct ct_node *n, const char *what,
		     struct cfg_strv *out)
{
	struct ai_arena *a = &L->c->arena;
	out->at = n->pos;
	if (n->kind == CT_SCALAR) { /* a single string is a one-item list */
		out->v = ai_arena_alloc(a, 2 * sizeof *out->v);
		out->pos = ai_arena_alloc(a, sizeof *out->pos);
		if (!out->v || !out->pos)
			return false;
		out->v[0] = n->value;
		out->pos[0] = n->pos;
		out->n = 1;
		return true;
	}
	if (n->kind == CT_NULL) {
		out->n = 0;
		out->v = ai_arena_alloc(a, sizeof *out->v);
		return out->v != NULL;
	}
	if (n->kind != CT_SEQ) {
		err(L, n, "type", "%s must be a list of strings", what);
		return false;
	}
	out->v = ai_arena_alloc(a, (n->n + 1) * sizeof *out->v);
	out->pos = ai_arena_alloc(a, (n->n + 1) * sizeof *out->pos);
	if (!out->v || !out->pos)
		return false;
	out->n = 0;
	for (size_t i = 0; i < n->n; i++) {
		const struct ct_node *it = n->items[i];
		if (it->kind != CT_SCALAR) {
			err(L, it, "type", "%s: items must be strings", what);
			return false;
		}
		out->v[out->n] = it->value;
		out->pos[out->n++] = it->pos;
	}
	return true;
}

static void parse_env(struct loader *L, const struct ct_node *n, struct cfg_env *env,
		      const char *what)
{
	struct ai_arena *a = &L->c->arena;
	if (n->kind == CT_NULL)
		return;
	if (n->kind == CT_SEQ) { /* ["K=V", ...] as in compose */
		env->v = ai_arena_alloc(a, (n->n + 1) * sizeof *env->v);
		if (!env->v)
			return;
		for (size_t i = 0; i < n->n; i++) {
			const struct ct_node *it = n->items[i];
			const char *eq;
			if (it->kind != CT_SCALAR || !(eq = strchr(it->value, '='))) {
				err(L, it, "type", "%s: list items must be KEY=VALUE", what);
				continue;
			}
			env->v[env->n++] = (struct cfg_kv){
				ai_arena_strndup(a, it->value, (size_t)(eq - it->value)), eq + 1,
				it->pos};
		}
		return;
	}
	if (!is_map(L, n, what))
		return;
	env->v = ai_arena_alloc(a, (n->n + 1) * sizeof *env->v);
	if (!env->v)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ct_node *v = ct_val(n, i);
		const char *s = v->kind == CT_NULL ? "" : get_str(L, v, what);
		if (s)
			env->v[env->n++] = (struct cfg_kv){ct_key(n, i)->value, s, ct_key(n, i)->pos};
	}
}

/* dst = base, then over's keys replace or add. */
static void env_merge(struct ai_arena *a, struct cfg_env *dst, const struct cfg_env *base,
		      const struct cfg_env *over)
{
	struct cfg_kv *v = ai_arena_alloc(a, (size_t)(base->n + over->n + 1) * sizeof *v);
	int n = 0;
	if (!v)
		return;
	for (int i = 0; i < base->n; i++)
		v[n++] = base->v[i];
	for (int i = 0; i < over->n; i++) {
		int j;
		for (j = 0; j < n; j++)
			if (strcmp(v[j].key, over->v[i].key) == 0)
				break;
		v[j] = over->v[i];
		if (j == n)
			n++;
	}
	dst->v = v;
	dst->n = n;
}

static void restart_unset(struct cfg_restart *r)
{
	r->policy = RP_UNSET;
	r->delay_ms = r->max_delay_ms = r->within_ms = r->reset_after_ms = r->burst = CFG_UNSET;
}

static void parse_restart(struct loader *L, const struct ct_node *n, struct cfg_restart *r)
{
	static const char *const pol[] = {"no", "on-failure", "always", "unless-stopped"};
	r->pos = n->pos;
	if (n->kind == CT_SCALAR) { /* restart: always */
		for (int i = 0; i < 4; i++)
			if (!strcmp(n->value, pol[i])) {
				r->policy = i;
				return;
			}
		if (!strcmp(n->value, "false")) {
			r->policy = RP_NO;
			return;
		}
		const char *s = ct_suggest(n->value, pol, 4);
		err(L, n, "bad-value", "unknown restart policy \"%s\"%s%s%s", n->value,
		    s ? "; did you mean \"" : "", s ? s : "", s ? "\"?" : "");
		return;
	}
	if (!is_map(L, n, "restart"))
		return;
	check_keys(L, n, KEYS("policy", "delay", "max_delay", "burst", "within", "reset_after"),
		   "restart");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		int64_t x;
		if (!strcmp(k, "policy"))
			parse_restart(L, v, r);
		else if (!strcmp(k, "delay"))
			get_dur(L, v, "restart.delay", &r->delay_ms);
		else if (!strcmp(k, "max_delay"))
			get_dur(L, v, "restart.max_delay", &r->max_delay_ms);
		else if (!strcmp(k, "within"))
			get_dur(L, v, "restart.within", &r->within_ms);
		else if (!strcmp(k, "reset_after"))
			get_dur(L, v, "restart.reset_after", &r->reset_after_ms);
		else if (!strcmp(k, "burst") && get_int(L, v, "restart.burst", 0, 10000, &x))
			r->burst = x;
	}
	r->pos = n->pos;
}

static void health_unset(struct cfg_health *h)
{
	memset(h, 0, sizeof *h);
	h->interval_ms = h->timeout_ms = h->start_period_ms = h->start_interval_ms = CFG_UNSET;
	h->watchdog_ms = h->retries = CFG_UNSET;
}

static void parse_health(struct loader *L, const struct ct_node *n, struct cfg_health *h)
{
	int64_t x;
	h->pos = n->pos;
	if (n->kind == CT_NULL || (n->kind == CT_SCALAR && !strcmp(n->value, "none"))) {
		h->set = true;
		h->kind = HK_NONE;
		return;
	}
	if (!is_map(L, n, "health"))
		return;
	check_keys(L, n, KEYS("tcp", "zmq", "exec", "notify", "host", "interval", "timeout",
			      "retries", "start_period", "start_interval", "watchdog"),
		   "health");
	for (size_t i = 0; i < n->n; i++) {
		const struct ct_node *kn = ct_key(n, i), *v = ct_val(n, i);
		const char *k = kn->value;
		bool b;
		if (!strcmp(k, "tcp") || !strcmp(k, "zmq")) {
			if (h->set && h->kind != HK_NONE)
				err(L, kn, "health-kind", "health: only one of tcp, zmq, exec, notify");
			if (get_int(L, v, k, 1, 65535, &x)) {
				h->kind = k[0] == 't' ? HK_TCP : HK_ZMQ;
				h->port = (int)x;
				h->set = true;
			}
		} else if (!strcmp(k, "exec")) {
			if (h->set && h->kind != HK_NONE)
				err(L, kn, "health-kind", "health: only one of tcp, zmq, exec, notify");
			if (get_strv(L, v, "health.exec", &h->exec)) {
				if (h->exec.n == 0)
					err(L, v, "bad-value", "health.exec must name a command");
				h->kind = HK_EXEC;
				h->set = true;
			}
		} else if (!strcmp(k, "notify")) {
			if (get_bool(L, v, "health.notify", &b) && b) {
				if (h->set && h->kind != HK_NONE)
					err(L, kn, "health-kind",
					    "health: only one of tcp, zmq, exec, notify");
				h->kind = HK_NOTIFY;
				h->set = true;
			}
		} else if (!strcmp(k, "host"))
			h->host = get_str(L, v, "health.host");
		else if (!strcmp(k, "interval"))
			get_dur(L, v, "health.interval", &h->interval_ms);
		else if (!strcmp(k, "timeout"))
			get_dur(L, v, "health.timeout", &h->timeout_ms);
		else if (!strcmp(k, "start_period"))
			get_dur(L, v, "health.start_period", &h->start_period_ms);
		else if (!strcmp(k, "start_interval"))
			get_dur(L, v, "health.start_interval", &h->start_interval_ms);
		else if (!strcmp(k, "watchdog"))
			get_dur(L, v, "health.watchdog", &h->watchdog_ms);
		else if (!strcmp(k, "retries") && get_int(L, v, "health.retries", 1, 1000, &x))
			h->retries = x;
	}
}

static void parse_stop(struct loader *L, const struct ct_node *n, struct cfg_stop *s)
{
	s->pos = n->pos;
	if (!is_map(L, n, "stop"))
		return;
	check_keys(L, n, KEYS("signal", "timeout"), "stop");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		if (!strcmp(k, "timeout"))
			get_dur(L, v, "stop.timeout", &s->timeout_ms);
		else if (!strcmp(k, "signal")) {
			int sig = v->kind == CT_SCALAR ? ai_parse_signal(v->value) : -EINVAL;
			if (sig < 0)
				err(L, v, "bad-value", "stop.signal: unknown signal");
			else
				s->signal = sig;
		}
	}
}

/* depends_on: [NAME, HOST:NAME, {name: NAME, restart: true}, ...] */
static void parse_deps(struct loader *L, const struct ct_node *n, struct cfg_deps *deps)
{
	struct ai_arena *a = &L->c->arena;
	size_t cnt = n->kind == CT_SEQ ? n->n : 1;
	if (n->kind == CT_NULL)
		return;
	if (n->kind != CT_SEQ && n->kind != CT_SCALAR) {
		err(L, n, "type", "depends_on must be a list of names");
		return;
	}
	deps->v = ai_arena_alloc(a, (cnt + 1) * sizeof *deps->v);
	if (!deps->v)
		return;
	for (size_t i = 0; i < cnt; i++) {
		const struct ct_node *it = n->kind == CT_SEQ ? n->items[i] : n;
		const struct ct_node *nm = it;
		bool restart = false;
		if (it->kind == CT_MAP) {
			const struct ct_node *r = ct_get(it, "restart");
			check_keys(L, it, KEYS("name", "restart"), "a dependency");
			nm = ct_get(it, "name");
			if (!nm) {
				err(L, it, "missing-key", "a dependency written as a mapping needs name");
				continue;
			}
			if (r && !get_bool(L, r, "restart", &restart))
				continue;
		}
		if (nm->kind != CT_SCALAR) {
			err(L, nm, "type", "depends_on: a dependency is a name or {name: NAME, restart: true}");
			continue;
		}
		struct cfg_dep *d = &deps->v[deps->n++];
		const char *colon = strchr(nm->value, ':');
		d->name = nm->value;
		d->pos = nm->pos;
		d->index = -1;
		d->restart = restart;
		if (colon) {
			d->kind = DEP_REMOTE;
			d->host = ai_arena_strndup(a, nm->value, (size_t)(colon - nm->value));
			d->target = colon + 1;
		} else {
			d->target = nm->value;
		}
	}
}

static void parse_caps_or_strv(struct loader *L, const struct ct_node *v, const char *what,
			       struct cfg_strv *out)
{
	get_strv(L, v, what, out);
}

static const char *const rlimit_names[RL_N] = {"nofile", "nproc", "core", "memlock", "stack"};

/* rlimits: {nofile: 65536, core: 0, memlock: unlimited, stack: 8MiB} */
static void parse_rlimits(struct loader *L, const struct ct_node *n, struct cfg_rlimits *rl)
{
	if (!is_map(L, n, "rlimits"))
		return;
	check_keys(L, n, KEYS("nofile", "nproc", "core", "memlock", "stack"), "rlimits");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		for (int r = 0; r < RL_N; r++) {
			if (strcmp(k, rlimit_names[r]))
				continue;
			if (v->kind == CT_SCALAR && !strcmp(v->value, "unlimited"))
				rl->v[r] = INT64_MAX;
			else if (r == RL_NOFILE || r == RL_NPROC)
				get_int(L, v, k, 0, 1 << 30, &rl->v[r]);
			else if (get_size(L, v, k, &rl->v[r]) && rl->v[r] < 0)
				rl->v[r] = INT64_MAX; /* "max" */
		}
	}
}

/* Settings shared by defaults, groups and agents. */
struct common {
	const char *user;
	struct cfg_pos user_pos;
	struct cfg_restart restart;
	struct cfg_health health;
	struct cfg_stop stop;
	struct cfg_env env;
	const char *seccomp;
	struct cfg_strv caps;
	bool caps_set;
	int network, runtime, on_unhealthy;
	struct cfg_rlimits rl;
};

static void common_unset(struct common *c)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i < RL_N; i++)
		c->rl.v[i] = CFG_UNSET;
	restart_unset(&c->restart);
	health_unset(&c->health);
	c->stop.signal = CFG_UNSET;
	c->stop.timeout_ms = CFG_UNSET;
	c->network = NET_UNSET;
	c->runtime = RT_UNSET;
	c->on_unhealthy = OU_UNSET;
}

/* Returns true when key k was one of the common keys. */
static bool parse_common(struct loader *L, const char *k, const struct ct_node *v,
			 struct common *c)
{
	if (!strcmp(k, "user")) {
		c->user = get_str(L, v, "user");
		c->user_pos = v->pos;
	} else if (!strcmp(k, "restart"))
		parse_restart(L, v, &c->restart);
	else if (!strcmp(k, "health"))
		parse_health(L, v, &c->health);
	else if (!strcmp(k, "stop"))
		parse_stop(L, v, &c->stop);
	else if (!strcmp(k, "environment"))
		parse_env(L, v, &c->env, "environment");
	else if (!strcmp(k, "seccomp"))
		c->seccomp = get_str(L, v, "seccomp");
	else if (!strcmp(k, "capabilities")) {
		parse_caps_or_strv(L, v, "capabilities", &c->caps);
		c->caps_set = true;
	} else if (!strcmp(k, "network")) {
		const char *s = get_str(L, v, "network");
		if (!s)
			return true;
		if (!strcmp(s, "none"))
			c->network = NET_NONE;
		else if (!strcmp(s, "host"))
			c->network = NET_HOST;
		else if (!strcmp(s, "bridge"))
			c->network = NET_BRIDGE;
		else
			err(L, v, "bad-value", "network must be none, host or bridge, not \"%s\"", s);
	} else if (!strcmp(k, "runtime")) {
		const char *s = get_str(L, v, "runtime");
		if (!s)
			return true;
		if (!strcmp(s, "native"))
			c->runtime = RT_NATIVE;
		else if (!strcmp(s, "runc"))
			c->runtime = RT_RUNC;
		else
			err(L, v, "bad-value", "runtime must be native or runc, not \"%s\"", s);
	} else if (!strcmp(k, "rlimits")) {
		parse_rlimits(L, v, &c->rl);
	} else if (!strcmp(k, "on_unhealthy")) {
		const char *s = get_str(L, v, "on_unhealthy");
		if (!s)
			return true;
		if (!strcmp(s, "restart"))
			c->on_unhealthy = OU_RESTART;
		else if (!strcmp(s, "ignore"))
			c->on_unhealthy = OU_IGNORE;
		else
			err(L, v, "bad-value", "on_unhealthy must be restart or ignore");
	} else
		return false;
	return true;
}

#define PICK(field, unset, ...)                                                    \
	do {                                                                       \
		const __typeof__(out->field) cand_[] = {__VA_ARGS__};                  \
		for (size_t i_ = 0; i_ < AI_ARRAY_SIZE(cand_); i_++)               \
			if (cand_[i_] != (unset)) {                                 \
				out->field = cand_[i_];                             \
				break;                                              \
			}                                                           \
	} while (0)

static void resolve_restart(struct cfg_restart *out, const struct cfg_restart *a,
			    const struct cfg_restart *g, const struct cfg_restart *d)
{
	static const struct cfg_restart builtin = {RP_ON_FAILURE, 1000, 30000, 60000, 60000, 5, {0}};
	*out = builtin;
	PICK(policy, RP_UNSET, a->policy, g->policy, d->policy, builtin.policy);
	PICK(delay_ms, CFG_UNSET, a->delay_ms, g->delay_ms, d->delay_ms, builtin.delay_ms);
	PICK(max_delay_ms, CFG_UNSET, a->max_delay_ms, g->max_delay_ms, d->max_delay_ms,
	     builtin.max_delay_ms);
	PICK(within_ms, CFG_UNSET, a->within_ms, g->within_ms, d->within_ms, builtin.within_ms);
	PICK(reset_after_ms, CFG_UNSET, a->reset_after_ms, g->reset_after_ms, d->reset_after_ms,
	     builtin.reset_after_ms);
	PICK(burst, CFG_UNSET, a->burst, g->burst, d->burst, builtin.burst);
	out->pos = a->pos.line ? a->pos : g->pos.line ? g->pos : d->pos;
	if (out->max_delay_ms < out->delay_ms)
		out->max_delay_ms = out->delay_ms;
}

static void resolve_health(struct cfg_health *out, const struct cfg_health *a,
			   const struct cfg_health *g, const struct cfg_health *d)
{
	const struct cfg_health *kind = a->set ? a : g->set ? g : d->set ? d : NULL;
	health_unset(out);
	if (kind) {
		out->kind = kind->kind;
		out->port = kind->port;
		out->exec = kind->exec;
		out->host = kind->host;
		out->pos = kind->pos;
		out->set = true;
	}
	PICK(interval_ms, CFG_UNSET, a->interval_ms, g->interval_ms, d->interval_ms, 30000);
	PICK(timeout_ms, CFG_UNSET, a->timeout_ms, g->timeout_ms, d->timeout_ms, 10000);
	PICK(start_period_ms, CFG_UNSET, a->start_period_ms, g->start_period_ms,
	     d->start_period_ms, 0);
	PICK(start_interval_ms, CFG_UNSET, a->start_interval_ms, g->start_interval_ms,
	     d->start_interval_ms, 1000);
	PICK(watchdog_ms, CFG_UNSET, a->watchdog_ms, g->watchdog_ms, d->watchdog_ms, 0);
	PICK(retries, CFG_UNSET, a->retries, g->retries, d->retries, 3);
}

static void parse_resources(struct loader *L, const struct ct_node *n, struct cfg_resources *r)
{
	r->pos = n->pos;
	if (!is_map(L, n, "resources"))
		return;
	check_keys(L, n, KEYS("memory", "memory_high", "cpus", "cpu_weight", "pids"), "resources");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		int64_t x;
		if (!strcmp(k, "memory"))
			get_size(L, v, "resources.memory", &r->memory_max);
		else if (!strcmp(k, "memory_high"))
			get_size(L, v, "resources.memory_high", &r->memory_high);
		else if (!strcmp(k, "cpus")) {
			char *end;
			double cpus = v->kind == CT_SCALAR ? strtod(v->value, &end) : -1;
			if (v->kind != CT_SCALAR || *end || cpus <= 0 || cpus > 4096)
				err(L, v, "bad-value", "resources.cpus must be a number of CPUs > 0, like 2 or 0.5");
			else
				r->cpus_milli = (int64_t)(cpus * 1000 + 0.5);
		} else if (!strcmp(k, "cpu_weight") &&
			   get_int(L, v, "resources.cpu_weight", 1, 10000, &x))
			r->cpu_weight = x;
		else if (!strcmp(k, "pids") && get_int(L, v, "resources.pids", 1, 4194304, &x))
			r->pids = x;
	}
}

static void parse_gpu(struct loader *L, const struct ct_node *n, struct cfg_gpu *gpu)
{
	struct ai_arena *a = &L->c->arena;
	int64_t x;
	gpu->pos = n->pos;
	if (n->kind == CT_SCALAR && !strcmp(n->value, "all")) {
		gpu->mode = GPU_ALL;
	} else if (n->kind == CT_SCALAR && !strcmp(n->value, "none")) {
		gpu->mode = GPU_NONE;
	} else if (n->kind == CT_SEQ) {
		gpu->mode = GPU_LIST;
		gpu->index = ai_arena_alloc(a, (n->n + 1) * sizeof *gpu->index);
		if (!gpu->index)
			return;
		for (size_t i = 0; i < n->n; i++)
			if (get_int(L, n->items[i], "gpu index", 0, 255, &x))
				gpu->index[gpu->nindex++] = (int)x;
	} else if (n->kind == CT_MAP) {
		check_keys(L, n, KEYS("count"), "gpu");
		const struct ct_node *c = ct_get(n, "count");
		gpu->mode = GPU_COUNT;
		if (!c)
			err(L, n, "bad-value", "gpu: {count: N} needs count");
		else if (get_int(L, c, "gpu.count", 1, 256, &x))
			gpu->count = (int)x;
	} else {
		err(L, n, "bad-value", "gpu must be all, a list of indexes like [0], or {count: N}");
	}
}

static void parse_mounts(struct loader *L, const struct ct_node *n, struct cfg_group *g)
{
	struct ai_arena *a = &L->c->arena;
	struct cfg_strv sv = {0};
	if (!get_strv(L, n, "volumes", &sv))
		return;
	g->mounts = ai_arena_alloc(a, (size_t)(sv.n + 1) * sizeof *g->mounts);
	if (!g->mounts)
		return;
	for (int i = 0; i < sv.n; i++) {
		const char *s = sv.v[i];
		const char *c1 = strchr(s, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		struct cfg_mount *m = &g->mounts[g->nmounts];
		struct cfg_pos p = sv.pos[i];
		if (!c1 || c1 == s || c1[1] != '/') {
			diag_add(L->d, DIAG_ERROR, p, "bad-volume",
				 "volume \"%s\" must be NAME:/path[:ro] or /host/path:/path[:ro]", s);
			continue;
		}
		m->source = ai_arena_strndup(a, s, (size_t)(c1 - s));
		m->target = c2 ? ai_arena_strndup(a, c1 + 1, (size_t)(c2 - c1 - 1)) : c1 + 1;
		m->named = s[0] != '/';
		m->pos = p;
		if (c2) {
			if (!strcmp(c2 + 1, "ro"))
				m->ro = true;
			else if (strcmp(c2 + 1, "rw")) {
				diag_add(L->d, DIAG_ERROR, p, "bad-volume",
					 "volume \"%s\": mode must be ro or rw", s);
				continue;
			}
		}
		g->nmounts++;
	}
}

static void parse_agent(struct loader *L, const struct ct_node *kn, const struct ct_node *n,
			int gi, const struct common *dflt, const struct common *gc)
{
	struct ai_config *c = L->c;
	struct cfg_agent *ag = &c->agents[c->nagents];
	struct common ac;
	bool have_cmd = false;
	int64_t x;

	common_unset(&ac);
	memset(ag, 0, sizeof *ag);
	ag->name = kn->value;
	ag->pos = kn->pos;
	ag->group = gi;
	if (!is_map(L, n, "an agent"))
		return;
	check_keys(L, n, KEYS("command", "working_dir", "environment", "user", "port", "health_port",
			      "health", "restart", "stop", "depends_on", "required", "on_unhealthy",
			      "rlimits"),
		   "agent");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		if (parse_common(L, k, v, &ac))
			continue;
		if (!strcmp(k, "command")) {
			if (get_strv(L, v, "command", &ag->command)) {
				if (ag->command.n == 0)
					err(L, v, "bad-value", "command must not be empty");
				else
					have_cmd = true;
			}
		} else if (!strcmp(k, "working_dir"))
			ag->working_dir = get_str(L, v, "working_dir");
		else if (!strcmp(k, "port")) {
			if (get_int(L, v, "port", 1, 65535, &x))
				ag->port = (int)x, ag->port_pos = v->pos;
		} else if (!strcmp(k, "health_port")) {
			if (get_int(L, v, "health_port", 1, 65535, &x))
				ag->health_port = (int)x, ag->health_port_pos = v->pos;
		} else if (!strcmp(k, "depends_on"))
			parse_deps(L, v, &ag->deps);
		else if (!strcmp(k, "required"))
			get_bool(L, v, "required", &ag->required);
	}
	if (!have_cmd && !ct_get(n, "command"))
		err(L, kn, "missing-key", "agent %s has no command", kn->value);

	ag->user = ac.user ? ac.user : gc->user ? gc->user : dflt->user;
	ag->user_pos = ac.user ? ac.user_pos : gc->user ? gc->user_pos : dflt->user_pos;
	resolve_restart(&ag->restart, &ac.restart, &gc->restart, &dflt->restart);
	resolve_health(&ag->health, &ac.health, &gc->health, &dflt->health);
	ag->stop.signal = ac.stop.signal != CFG_UNSET   ? ac.stop.signal
			  : gc->stop.signal != CFG_UNSET ? gc->stop.signal
			  : dflt->stop.signal != CFG_UNSET ? dflt->stop.signal
							   : 15;
	ag->stop.timeout_ms = ac.stop.timeout_ms != CFG_UNSET	 ? ac.stop.timeout_ms
			      : gc->stop.timeout_ms != CFG_UNSET	 ? gc->stop.timeout_ms
			      : dflt->stop.timeout_ms != CFG_UNSET ? dflt->stop.timeout_ms
								   : 10000;
	for (int r = 0; r < RL_N; r++)
		ag->rlimits.v[r] = ac.rl.v[r] != CFG_UNSET   ? ac.rl.v[r]
				   : gc->rl.v[r] != CFG_UNSET ? gc->rl.v[r]
							      : dflt->rl.v[r];
	ag->on_unhealthy = ac.on_unhealthy != OU_UNSET	 ? ac.on_unhealthy
			   : gc->on_unhealthy != OU_UNSET ? gc->on_unhealthy
			   : dflt->on_unhealthy != OU_UNSET ? dflt->on_unhealthy
							    : OU_RESTART;
	{
		struct cfg_env tmp = {0};
		env_merge(&c->arena, &tmp, &dflt->env, &gc->env);
		env_merge(&c->arena, &ag->env, &tmp, &ac.env);
	}
	c->nagents++;
}

static void parse_group(struct loader *L, const struct ct_node *kn, const struct ct_node *n,
			const struct common *dflt)
{
	struct ai_config *c = L->c;
	struct cfg_group *g = &c->groups[c->ngroups];
	struct common gc;
	const struct ct_node *agents = NULL;

	common_unset(&gc);
	memset(g, 0, sizeof *g);
	g->name = kn->value;
	g->pos = kn->pos;
	g->res.memory_max = g->res.memory_high = g->res.cpus_milli = CFG_UNSET;
	g->res.cpu_weight = g->res.pids = CFG_UNSET;
	g->first_agent = c->nagents;
	c->ngroups++;
	if (n->kind == CT_NULL) {
		diag_add(L->d, DIAG_WARNING, kn->pos, "empty-group", "group %s has no agents",
			 kn->value);
		goto resolve;
	}
	if (!is_map(L, n, "a group"))
		goto resolve;
	check_keys(L, n, KEYS("agents", "depends_on", "network", "user", "resources", "volumes",
			      "devices", "gpu", "seccomp", "capabilities", "runtime", "environment",
			      "read_only_root", "restart", "health", "stop", "on_unhealthy", "rlimits"),
		   "group");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		if (parse_common(L, k, v, &gc))
			continue;
		if (!strcmp(k, "agents"))
			agents = v;
		else if (!strcmp(k, "depends_on"))
			parse_deps(L, v, &g->deps);
		else if (!strcmp(k, "resources"))
			parse_resources(L, v, &g->res);
		else if (!strcmp(k, "volumes"))
			parse_mounts(L, v, g);
		else if (!strcmp(k, "devices"))
			get_strv(L, v, "devices", &g->devices);
		else if (!strcmp(k, "gpu"))
			parse_gpu(L, v, &g->gpu);
		else if (!strcmp(k, "read_only_root"))
			get_bool(L, v, "read_only_root", &g->read_only_root);
	}
	g->read_only_root = ct_get(n, "read_only_root") ? g->read_only_root : true;
	if (agents && agents->kind == CT_MAP) {
		for (size_t i = 0; i < agents->n; i++) {
			const struct ct_node *an = ct_key(agents, i);
			if (cfg_find_agent(c, an->value) >= 0) {
				err(L, an, "duplicate-agent", "agent %s is defined twice", an->value);
				diag_note(L->d, c->agents[cfg_find_agent(c, an->value)].pos,
					  "first defined here");
				continue;
			}
			parse_agent(L, an, ct_val(agents, i), c->ngroups - 1, dflt, &gc);
		}
	} else if (agents && agents->kind != CT_NULL) {
		err(L, agents, "type", "agents must be a mapping of agent names to agents");
	} else {
		diag_add(L->d, DIAG_WARNING, kn->pos, "empty-group", "group %s has no agents",
			 kn->value);
	}
resolve:
	g->nagents = c->nagents - g->first_agent;
	g->user = gc.user ? gc.user : dflt->user;
	g->user_pos = gc.user ? gc.user_pos : dflt->user_pos;
	g->network = gc.network != NET_UNSET ? gc.network
		     : dflt->network != NET_UNSET ? dflt->network
						  : NET_HOST;
	g->runtime = gc.runtime != RT_UNSET ? gc.runtime : dflt->runtime != RT_UNSET ? dflt->runtime
											: RT_NATIVE;
	g->seccomp = gc.seccomp ? gc.seccomp : dflt->seccomp ? dflt->seccomp : "default";
	g->caps = gc.caps_set ? gc.caps : dflt->caps;
	g->env = gc.env;
	for (int r = 0; r < RL_N; r++)
		g->rlimits.v[r] = gc.rl.v[r] != CFG_UNSET ? gc.rl.v[r] : dflt->rl.v[r];
}

static size_t count_agents(const struct ct_node *groups)
{
	size_t n = 0;
	for (size_t i = 0; groups && groups->kind == CT_MAP && i < groups->n; i++) {
		const struct ct_node *a = ct_get(ct_val(groups, i), "agents");
		if (a && a->kind == CT_MAP)
			n += a->n;
	}
	return n;
}

static void parse_appliance(struct loader *L, const struct ct_node *n)
{
	struct ai_config *c = L->c;
	struct cfg_appliance *app = &c->app;
	struct ai_arena *a = &c->arena;
	if (!is_map(L, n, "appliance"))
		return;
	check_keys(L, n, KEYS("hostname", "kernel_modules", "mounts", "network", "hosts", "ctl",
			      "metrics", "data_dir"),
		   "appliance");
	for (size_t i = 0; i < n->n; i++) {
		const char *k = ct_key(n, i)->value;
		const struct ct_node *v = ct_val(n, i);
		if (!strcmp(k, "hostname")) {
			app->hostname = get_str(L, v, "hostname");
			app->hostname_pos = v->pos;
			if (app->hostname && (strlen(app->hostname) == 0 || strlen(app->hostname) > 64))
				err(L, v, "bad-value", "hostname must be 1 to 64 characters");
		} else if (!strcmp(k, "kernel_modules"))
			get_strv(L, v, "kernel_modules", &app->kernel_modules);
		else if (!strcmp(k, "data_dir"))
			app->data_dir = get_str(L, v, "data_dir");
		else if (!strcmp(k, "hosts"))
			parse_env(L, v, &app->hosts, "hosts");
		else if (!strcmp(k, "ctl") && is_map(L, v, "ctl")) {
			check_keys(L, v, KEYS("socket", "admin_group"), "ctl");
			const struct ct_node *s = ct_get(v, "socket"), *g = ct_get(v, "admin_group");
			if (s)
				app->ctl_socket = get_str(L, s, "ctl.socket");
			if (g)
				app->ctl_admin_group = get_str(L, g, "ctl.admin_group");
		} else if (!strcmp(k, "metrics") && is_map(L, v, "metrics")) {
			check_keys(L, v, KEYS("listen"), "metrics");
			const struct ct_node *l = ct_get(v, "listen");
			if (l) {
				app->metrics_listen = get_str(L, l, "metrics.listen");
				app->metrics_pos = l->pos;
			}
		} else if (!strcmp(k, "mounts")) {
			if (v->kind != CT_SEQ) {
				err(L, v, "type", "mounts must be a list");
				continue;
			}
			app->mounts = ai_arena_alloc(a, (v->n + 1) * sizeof *app->mounts);
			for (size_t j = 0; app->mounts && j < v->n; j++) {
				const struct ct_node *m = v->items[j];
				struct cfg_fsmount *fm = &app->mounts[app->nmounts];
				if (!is_map(L, m, "a mount"))
					continue;
				check_keys(L, m, KEYS("what", "where", "type", "options", "format_if_empty"),
					   "mount");
				const struct ct_node *w;
				fm->pos = m->pos;
				if ((w = ct_get(m, "what")))
					fm->what = get_str(L, w, "what");
				if ((w = ct_get(m, "where")))
					fm->where = get_str(L, w, "where");
				if ((w = ct_get(m, "type")))
					fm->type = get_str(L, w, "type");
				if ((w = ct_get(m, "options")))
					fm->options = get_str(L, w, "options");
				if ((w = ct_get(m, "format_if_empty")))
					get_bool(L, w, "format_if_empty", &fm->format_if_empty);
				if (!fm->what || !fm->where)
					err(L, m, "missing-key", "a mount needs what and where");
				else
					app->nmounts++;
			}
		} else if (!strcmp(k, "network") && is_map(L, v, "network")) {
			check_keys(L, v, KEYS("interfaces", "bridge"), "network");
			const struct ct_node *ifs = ct_get(v, "interfaces"), *br = ct_get(v, "bridge");
			if (ifs && ifs->kind == CT_SEQ) {
				app->ifaces = ai_arena_alloc(a, (ifs->n + 1) * sizeof *app->ifaces);
				for (size_t j = 0; app->ifaces && j < ifs->n; j++) {
					const struct ct_node *m = ifs->items[j], *w;
					struct cfg_iface *fi = &app->ifaces[app->nifaces];
					if (!is_map(L, m, "an interface"))
						continue;
					check_keys(L, m, KEYS("name", "address", "gateway"), "interface");
					fi->pos = m->pos;
					if ((w = ct_get(m, "name")))
						fi->name = get_str(L, w, "name");
					if ((w = ct_get(m, "address")))
						fi->address = get_str(L, w, "address");
					if ((w = ct_get(m, "gateway")))
						fi->gateway = get_str(L, w, "gateway");
					if (!fi->name)
						err(L, m, "missing-key", "an interface needs a name");
					else
						app->nifaces++;
				}
			} else if (ifs && ifs->kind != CT_NULL)
				err(L, ifs, "type", "interfaces must be a list");
			if (br && is_map(L, br, "bridge")) {
				check_keys(L, br, KEYS("name", "subnet"), "bridge");
				const struct ct_node *w;
				if ((w = ct_get(br, "name")))
					app->bridge_name = get_str(L, w, "bridge.name");
				if ((w = ct_get(br, "subnet")))
					app->bridge_subnet = get_str(L, w, "bridge.subnet");
			}
		}
	}
}

static void parse_root(struct loader *L, const struct ct_node *root)
{
	struct ai_config *c = L->c;
	const struct ct_node *n, *groups;
	struct common dflt;
	int64_t x;

	common_unset(&dflt);
	if (root->kind == CT_NULL) {
		err(L, root, "empty", "the file is empty");
		return;
	}
	if (!is_map(L, root, "the top level"))
		return;
	check_keys(L, root, KEYS("version", "appliance", "defaults", "volumes", "groups"),
		   "the top level");
	if (!(n = ct_get(root, "version")))
		err(L, root, "missing-key", "missing \"version: 1\"");
	else if (get_int(L, n, "version", 0, 1000, &x)) {
		c->version = (int)x;
		if (x != 1)
			err(L, n, "version", "unsupported schema version %lld (this ainit reads version 1)",
			    (long long)x);
	}
	if ((n = ct_get(root, "appliance")))
		parse_appliance(L, n);
	if ((n = ct_get(root, "defaults")) && is_map(L, n, "defaults")) {
		check_keys(L, n, KEYS("user", "restart", "health", "stop", "seccomp", "capabilities",
				      "environment", "network", "runtime", "on_unhealthy", "rlimits"),
			   "defaults");
		for (size_t i = 0; i < n->n; i++)
			parse_common(L, ct_key(n, i)->value, ct_val(n, i), &dflt);
	}
	if ((n = ct_get(root, "volumes"))) {
		if (n->kind == CT_MAP) {
			c->volumes = ai_arena_alloc(&c->arena, (n->n + 1) * sizeof *c->volumes);
			for (size_t i = 0; c->volumes && i < n->n; i++)
				c->volumes[c->nvolumes++] =
					(struct cfg_volume){ct_key(n, i)->value, ct_key(n, i)->pos};
		} else if (n->kind == CT_SEQ) {
			c->volumes = ai_arena_alloc(&c->arena, (n->n + 1) * sizeof *c->volumes);
			for (size_t i = 0; c->volumes && i < n->n; i++)
				if (n->items[i]->kind == CT_SCALAR)
					c->volumes[c->nvolumes++] =
						(struct cfg_volume){n->items[i]->value, n->items[i]->pos};
		} else if (n->kind != CT_NULL)
			err(L, n, "type", "volumes must be a mapping of volume names");
	}
	groups = ct_get(root, "groups");
	if (!groups) {
		err(L, root, "missing-key", "missing \"groups\"");
		return;
	}
	if (groups->kind == CT_NULL)
		return;
	if (!is_map(L, groups, "groups"))
		return;
	/* Names are looked up by linear search (a config has tens of agents):
	 * bound the count so that a hostile file cannot make that quadratic. */
	if (groups->n > CFG_MAX_GROUPS || count_agents(groups) > CFG_MAX_AGENTS) {
		err(L, groups, "limit", "more than %d groups or %d agents", CFG_MAX_GROUPS,
		    CFG_MAX_AGENTS);
		return;
	}
	c->groups = ai_arena_alloc(&c->arena, (groups->n + 1) * sizeof *c->groups);
	c->agents = ai_arena_alloc(&c->arena, (count_agents(groups) + 1) * sizeof *c->agents);
	if (!c->groups || !c->agents) {
		err(L, groups, "oom", "out of memory");
		return;
	}
	for (size_t i = 0; i < groups->n; i++) {
		const struct ct_node *kn = ct_key(groups, i);
		if (cfg_find_group(c, kn->value) >= 0) {
			err(L, kn, "duplicate-group", "group %s is defined twice", kn->value);
			continue;
		}
		parse_group(L, kn, ct_val(groups, i), &dflt);
	}
}

/* Dependencies name agents or groups of this config, or HOST:AGENT. */
static void resolve_deps(struct loader *L, struct cfg_deps *deps, const char *owner)
{
	struct ai_config *c = L->c;
	for (int i = 0; i < deps->n; i++) {
		struct cfg_dep *d = &deps->v[i];
		if (d->kind == DEP_REMOTE)
			continue;
		if ((d->index = cfg_find_agent(c, d->target)) >= 0) {
			d->kind = DEP_AGENT;
		} else if ((d->index = cfg_find_group(c, d->target)) >= 0) {
			d->kind = DEP_GROUP;
		} else {
			diag_add(L->d, DIAG_ERROR, d->pos, "undefined-dependency",
				 "%s depends on \"%s\", which is neither an agent nor a group", owner,
				 d->target);
		}
	}
}

struct ai_config *cfg_load(const char *const *files, int nfiles, struct diag_list *d)
{
	struct ai_config *c = calloc(1, sizeof *c);
	struct ct_opts o = {.substitute_env = true};
	struct ct_node *root = NULL;
	struct loader L = {c, d};
	int errors0 = d->errors;

	if (!c) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){files[0], 0, 0}, "oom", "out of memory");
		return NULL;
	}
	c->file = nfiles > 0 ? files[0] : "";
	for (int i = 0; i < nfiles; i++) {
		struct ct_node *t = ct_parse_file(files[i], &o, &c->arena, d);
		if (!t)
			goto fail;
		root = root ? ct_merge(&c->arena, root, t) : t;
		if (!root)
			goto fail;
	}
	if (!root) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){"ainit", 0, 0}, "usage", "no config file");
		goto fail;
	}
	parse_root(&L, root);
	for (int i = 0; i < c->ngroups; i++)
		resolve_deps(&L, &c->groups[i].deps, c->groups[i].name);
	for (int i = 0; i < c->nagents; i++)
		resolve_deps(&L, &c->agents[i].deps, c->agents[i].name);
	if (d->oom)
		goto fail;
	if (d->errors == errors0)
		return c;
fail:
	cfg_free(c);
	return NULL;
}

void cfg_free(struct ai_config *c)
{
	if (!c)
		return;
	ai_arena_free(&c->arena);
	free(c);
}

int cfg_find_agent(const struct ai_config *c, const char *name)
{
	for (int i = 0; i < c->nagents; i++)
		if (strcmp(c->agents[i].name, name) == 0)
			return i;
	return -1;
}

int cfg_find_group(const struct ai_config *c, const char *name)
{
	for (int i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return i;
	return -1;
}

const char *cfg_restart_policy_name(int p)
{
	static const char *const n[] = {"no", "on-failure", "always", "unless-stopped"};
	return p >= 0 && p < 4 ? n[p] : "?";
}

const char *cfg_health_kind_name(int k)
{
	static const char *const n[] = {"none", "tcp", "zmq", "exec", "notify"};
	return k >= 0 && k < 5 ? n[k] : "?";
}
