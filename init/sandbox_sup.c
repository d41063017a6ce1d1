/* The supervisor's side of the sandbox: one struct sbx_sup for `ainit run`
 * and PID 1; groups are prepared on their first agent's start (and again
 * when their holder died); each start goes through spawn.c with the
 * request pointed at the group's sandbox (sandbox.h). */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "gpu.h"
#include "log.h"
#include "oci.h"
#include "spawn.h"
#include "util.h"

int sbx_sup_init(struct sbx_sup *x, const struct ai_config *cfg, const char *config_path,
		 const char *state_dir, const char *volumes_dir, struct ai_err *e)
{
	struct ai_err ce = {0};
	char name[64];
	memset(x, 0, sizeof *x);
	x->state_dir = state_dir;
	x->ngroups = cfg->ngroups;
	x->groups = calloc((size_t)(cfg->ngroups ? cfg->ngroups : 1), sizeof *x->groups);
	if (!x->groups)
		return ai_fail(e, "sandbox", "calloc", ENOMEM, "%d groups", cfg->ngroups);
	for (int i = 0; i < cfg->ngroups; i++)
		x->groups[i].holder_pidfd = x->groups[i].cgfd = x->groups[i].own_pidns =
			x->groups[i].orphfd = x->groups[i].readyfd = -1;
	/* Profiles: next to the config (configs/seccomp/), then /etc/ainit/seccomp. */
	const char *slash = config_path ? strrchr(config_path, '/') : NULL;
	snprintf(x->sdir, sizeof x->sdir, "%.*s/seccomp", slash ? (int)(slash - config_path) : 1,
		 slash ? config_path : ".");
	x->dirs[0] = x->sdir;
	x->dirs[1] = "/etc/ainit/seccomp";
	x->dirs[2] = NULL;
	x->nagents = cfg->nagents;
	x->ids = calloc((size_t)(cfg->nagents ? cfg->nagents : 1), sizeof *x->ids);
	for (int i = 0; x->ids && i < cfg->nagents; i++)
		x->ids[i].leaffd = -1;
	x->cg = calloc(1, sizeof *x->cg);
	if (!x->cg || !x->ids) {
		free(x->cg);
		free(x->ids);
		free(x->groups);
		return ai_fail(e, "sandbox", "calloc", ENOMEM, "cgroup base");
	}
	/* PID 1 owns the whole hierarchy; `ainit run` a directory of its own. */
	if (getpid() == 1)
		snprintf(name, sizeof name, "ainit");
	else
		snprintf(name, sizeof name, "ainit.%d", (int)getpid());
	if (cg_open_base(x->cg, name, &ce) == 0) {
		cg_sweep_stale(x->cg); /* what SIGKILLed predecessors left */
	} else {
		log_warn("sandbox", NULL, "%s: groups run without a cgroup (no limits, no device program)",
			 ce.msg);
		free(x->cg);
		x->cg = NULL;
	}
	x->o = (struct sbx_opts){.root = NULL, .state_dir = state_dir, .volumes_dir = volumes_dir,
				 .seccomp_dirs = x->dirs, .cg = x->cg};
	return 0;
}

/* runc leaves a container's state (/run/runc/ID, its cgroups) behind when
 * it is SIGKILLed at a stop timeout: at the end, delete every container
 * this supervisor started (ids ainit-AGENT-PID-N). Blocking is fine here:
 * supervision is over. */
static void runc_cleanup(const struct sbx_sup *x)
{
	char tag[32], line[256];
	if (!x->seq)
		return;
	snprintf(tag, sizeof tag, "-%d-", (int)getpid());
	FILE *f = popen("runc list -q 2>/dev/null", "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (strncmp(line, "ainit-", 6) || !strstr(line, tag))
			continue;
		pid_t p = fork();
		if (p == 0) {
			int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
			if (dn >= 0) {
				dup2(dn, 1);
				dup2(dn, 2);
			}
			execlp("runc", "runc", "delete", "-f", line, (char *)NULL);
			_exit(127);
		}
		if (p > 0)
			while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
				;
	}
	pclose(f);
}

void sbx_sup_fini(struct sbx_sup *x)
{
	runc_cleanup(x);
	for (int i = 0; i < x->ngroups; i++)
		if (x->groups[i].holder)
			sbx_teardown(&x->groups[i]);
	free(x->groups);
	x->groups = NULL;
	x->ngroups = 0;
	for (int i = 0; x->ids && i < x->nagents; i++)
		if (x->ids[i].leaffd >= 0)
			close(x->ids[i].leaffd);
	free(x->ids);
	x->ids = NULL;
	if (x->cg) {
		cg_close_base(x->cg);
		free(x->cg);
		x->cg = NULL;
	}
}

static bool holder_alive(const struct sbx_group *s)
{
	struct pollfd p = {s->holder_pidfd, POLLIN, 0};
	return s->holder && s->holder_pidfd >= 0 && poll(&p, 1, 0) == 0;
}

static int runc_req(struct sbx_sup *x, const struct ai_config *cfg, int ai, struct sbx_child *c,
		    struct spawn_req *req, struct ai_err *e)
{
	const struct cfg_agent *a = &cfg->agents[ai];
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/oci", x->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ai_fail(e, "sandbox", "mkdir", errno, "agent %s: %s", a->name, dir);
	snprintf(c->bundle, sizeof c->bundle, "%s/oci/%s", x->state_dir, a->name);
	struct oci_opts oo = {.root = x->o.root, .state_dir = x->state_dir, .volumes_dir = x->o.volumes_dir,
			      .seccomp_dirs = x->dirs, .argv = (char *const *)a->command.v,
			      .envp = req->envp, .user = a->user};
	/* Written once: the bundle does not change between restarts. */
	if (!x->ids[ai].bundle) {
		int r = oci_export(cfg, a->group, &oo, c->bundle, e);
		if (r < 0)
			return r;
		x->ids[ai].bundle = true;
	}
	snprintf(c->id, sizeof c->id, "ainit-%s-%d-%lu", a->name, (int)getpid(), ++x->seq);
	c->argv[0] = (char *)"runc";
	c->argv[1] = (char *)"run";
	c->argv[2] = (char *)"--bundle";
	c->argv[3] = c->bundle;
	c->argv[4] = c->id;
	c->argv[5] = NULL;
	c->agent = a->name;
	c->bind_root = !x->o.root || !strcmp(x->o.root, "/");
	req->argv = (const char *const *)c->argv;
	req->cwd = NULL;
	req->child_setup = c->bind_root ? sbx_child_setup : NULL;
	req->child_data = c;
	return 0;
}

/* gpu: the group's CUDA_/NVIDIA_ variables (gpu.c plans them) join the
 * agent's environment, unless the agent sets its own. No allocation: the
 * storage is C, which lives until the child has exec'd. */
static void gpu_env(const struct sbx_group *s, struct sbx_child *c, struct spawn_req *req)
{
	int n = 0;
	for (char *const *v = req->envp; v && *v && n < SBX_MAX_ENV; v++)
		c->envp[n++] = *v;
	for (int i = 0, n0 = n; i < s->gpu->nenv && i < 3; i++) {
		const struct gpu_env *ge = &s->gpu->env[i];
		size_t kl = strlen(ge->key);
		bool set = false;
		for (int j = 0; j < n0 && !set; j++)
			set = !strncmp(c->envp[j], ge->key, kl) && c->envp[j][kl] == '=';
		if (!set) {
			snprintf(c->gpu_env[i], sizeof c->gpu_env[i], "%s=%s", ge->key, ge->value);
			c->envp[n++] = c->gpu_env[i];
		}
	}
	c->envp[n] = NULL;
	req->envp = c->envp;
}

/* Every agent of group S: its ids from the group root's files, once per
 * holder (the files are read here, at prepare time, not at each start). */
static void resolve_group(struct sbx_sup *x, const struct ai_config *cfg, struct sbx_group *s)
{
	const struct cfg_group *g = &cfg->groups[s->gi];
	char home[PATH_MAX];
	for (int k = g->first_agent; k < g->first_agent + g->nagents && k < x->nagents; k++) {
		struct sbx_ids *d = &x->ids[k];
		bool bundle = d->bundle;
		if (d->leaffd >= 0)
			close(d->leaffd);
		memset(d, 0, sizeof *d);
		d->bundle = bundle;
		d->leaffd = -1;
		if (s->cgfd >= 0) {
			char ln[128];
			struct ai_err le;
			snprintf(ln, sizeof ln, "agent.%s", cfg->agents[k].name);
			d->leaffd = cg_leaf(s->cgfd, ln, s->name, &le);
			if (d->leaffd < 0) {
				d->rc = d->leaffd;
				d->err = le;
				d->leaffd = -1;
				d->holder = s->holder;
				continue;
			}
		}
		d->holder = s->holder;
		d->ngroups = SBX_MAX_GROUPS_PER_USER;
		d->rc = sbx_resolve_user(s, cfg->agents[k].name, cfg->agents[k].user, &d->uid, &d->gid,
					 d->groups, &d->ngroups, home, sizeof home, &d->err);
	}
}

int sbx_sup_spawn_req(struct sbx_sup *x, const struct ai_config *cfg, int ai,
		      struct sbx_child *c, struct spawn_req *req, struct ai_err *e)
{
	const struct cfg_agent *a = &cfg->agents[ai];
	struct sbx_group *s = &x->groups[a->group];
	int r;

	memset(c, 0, sizeof *c);
	if (cfg->groups[a->group].runtime == RT_RUNC)
		return runc_req(x, cfg, ai, c, req, e);
	if (s->holder && !holder_alive(s)) {
		log_warn("sandbox", s->name, "holder %d is gone: rebuilding the group's sandbox",
			 (int)s->holder);
		sbx_teardown(s);
	}
	if (!s->holder && (r = sbx_prepare(s, cfg, a->group, &x->o, e)) < 0)
		return r;
	c->s = s;
	c->agent = a->name;
	/* The same lookup `ainit sandbox` makes (sandbox.c), done at prepare. */
	if (x->ids[ai].holder != s->holder)
		resolve_group(x, cfg, s);
	const struct sbx_ids *d = &x->ids[ai];
	if (d->rc < 0) {
		*e = d->err;
		return d->rc;
	}
	c->uid = d->uid;
	c->gid = d->gid;
	c->ngroups = d->ngroups;
	memcpy(c->groups, d->groups, sizeof c->groups);
	req->sandbox = s;
	req->cgroup_fd = d->leaffd >= 0 ? d->leaffd : s->cgfd;
	req->child_setup = sbx_child_setup;
	req->child_data = c;
	if (s->gpu)
		gpu_env(s, c, req);
	return 0;
}

int sbx_sup_kill_group(struct sbx_sup *x, int gi, struct ai_err *e)
{
	if (gi < 0 || gi >= x->ngroups || !x->groups[gi].holder)
		return 0;
	return sbx_kill(&x->groups[gi], e);
}

static void group_blank(struct sbx_group *s)
{
	memset(s, 0, sizeof *s);
	s->holder_pidfd = s->cgfd = s->own_pidns = s->orphfd = s->readyfd = -1;
}

/* New group g's old index when it keeps its sandbox, else -1. */
static int kept_group(const struct ai_config *old, const struct ai_config *nc, const bool *rebuild,
		      int g)
{
	return rebuild[g] ? -1 : cfg_find_group(old, nc->groups[g].name);
}

int sbx_sup_remap_prepare(const struct sbx_sup *x, const struct ai_config *nc,
			  struct sbx_remap *m, struct ai_err *e)
{
	m->groups = calloc((size_t)nc->ngroups + 1, sizeof *m->groups);
	m->ids = calloc((size_t)nc->nagents + 1, sizeof *m->ids);
	m->taken = calloc((size_t)x->ngroups + 1, sizeof *m->taken);
	if (!m->groups || !m->ids || !m->taken) {
		sbx_sup_remap_discard(m);
		return ai_fail(e, "sandbox", "calloc", ENOMEM, "reload: group table");
	}
	return 0;
}

void sbx_sup_remap_discard(struct sbx_remap *m)
{
	free(m->groups);
	free(m->ids);
	free(m->taken);
	m->groups = NULL;
	m->ids = NULL;
	m->taken = NULL;
}

void sbx_sup_remap_commit(struct sbx_sup *x, const struct ai_config *old,
			  const struct ai_config *nc, const int *new_of_old, const bool *rebuild,
			  struct sbx_remap *m)
{
	struct sbx_group *ng = m->groups;
	struct sbx_ids *nids = m->ids;
	for (int g = 0; g < nc->ngroups; g++) {
		int og = kept_group(old, nc, rebuild, g);
		group_blank(&ng[g]);
		if (og < 0 || og >= x->ngroups)
			continue;
		ng[g] = x->groups[og];
		ng[g].gi = g;
		ng[g].name = nc->groups[g].name; /* the old config goes */
		m->taken[og] = true;
	}
	for (int i = 0; i < nc->nagents; i++)
		nids[i].leaffd = -1;
	for (int j = 0; j < x->nagents && j < old->nagents; j++) {
		int i = new_of_old[j];
		struct sbx_ids *d = &x->ids[j];
		if (i >= 0 && kept_group(old, nc, rebuild, nc->agents[i].group) ==
				      old->agents[j].group) {
			nids[i] = *d;
			nids[i].holder = 0; /* its user may have changed: looked up again */
			nids[i].bundle = false;
		} else if (d->leaffd >= 0)
			close(d->leaffd);
	}
	for (int og = 0; og < x->ngroups; og++)
		if (!m->taken[og] && x->groups[og].holder) {
			log_info("sandbox", x->groups[og].name, "reload: sandbox torn down");
			sbx_teardown(&x->groups[og]);
		}
	free(m->taken);
	free(x->groups);
	free(x->ids);
	x->groups = ng;
	x->ngroups = nc->ngroups;
	x->ids = nids;
	x->nagents = nc->nagents;
	m->groups = NULL;
	m->ids = NULL;
	m->taken = NULL;
}

uint64_t sbx_sup_orphans(struct sbx_sup *x)
{
	uint64_t sum = 0;
	for (int i = 0; x && i < x->ngroups; i++) {
		struct sbx_group *s = &x->groups[i];
		uint64_t v;
		if (s->orphfd >= 0 && read(s->orphfd, &v, sizeof v) == (ssize_t)sizeof v)
			s->orphans += v;
		sum += s->orphans;
	}
	return sum;
}

int sbx_sup_kill_agent(struct sbx_sup *x, int ai, struct ai_err *e)
{
	if (!x || ai < 0 || ai >= x->nagents || x->ids[ai].leaffd < 0)
		return 0;
	return cg_kill(x->ids[ai].leaffd, "agent", e);
}
