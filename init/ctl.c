/* Control socket server and request dispatch. See ctl.h for the protocol. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "logcap.h"
#include "probe.h"
#include "reload.h"
#include "sandbox.h"
#include "state.h"
#include "util.h"

#define CTL_MAX_NODES 256

struct ctl_req {
	struct jparse *p;
	int root;
	bool admin;
	struct ctl_client *client; /* NULL for transports without push (vport) */
};

typedef void (*ctl_handler)(struct ai_state *st, const struct ctl_req *rq, struct jw *w);

static void reply_error(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct jw *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	jw_kstr(w, "error", msg);
}

static void put_agent(struct ai_state *st, struct jw *w, const struct sup_agent *a, uint64_t now)
{
	const struct cfg_agent *c = a->cfg;
	jw_obj_begin(w);
	jw_kstr(w, "name", c->name);
	jw_kstr(w, "group", st->cfg->groups[c->group].name);
	jw_kstr(w, "state", sup_state_name(a->state));
	jw_kstr(w, "health", sup_health_name(a->health));
	jw_kint(w, "pid", a->pid);
	jw_kint(w, "restarts", a->restarts);
	jw_kint(w, "uptime_ms", a->pid > 0 ? (long long)(now - a->started_ms) : 0);
	jw_kint(w, "since_ms", (long long)(now - a->state_since_ms));
	jw_kstr(w, "reason", a->reason_text[0] ? a->reason_text : NULL);
	jw_kstr(w, "waiting_for", a->state == SUP_WAITING ? a->waiting_for : NULL);
	if (a->state == SUP_WAITING && a->waiting_for)
		jw_kstr(w, "waiting_reason", probe_remote_reason(st, a->waiting_for));
	{
		const struct probe_stat *ps = probe_stat_of(st, a->idx);
		jw_kstr(w, "probe", ps && ps->have_last ? ps->last : NULL);
	}
	jw_kint(w, "next_delay_ms", (long long)a->next_delay_ms);
	jw_kint(w, "port", c->port);
	jw_kint(w, "health_port", c->health_port);
	jw_kbool(w, "required", c->required);
	/* live edges: which dependency is down under a running agent, and
	 * what each edge does when its dependency leaves healthy */
	jw_kstr(w, "dep_down", a->pid > 0 ? sup_dep_down(st, a) : NULL);
	jw_key(w, "deps");
	jw_arr_begin(w);
	const struct cfg_deps *lists[2] = {&c->deps, &st->cfg->groups[c->group].deps};
	for (int l = 0; l < 2; l++)
		for (int i = 0; i < lists[l]->n; i++) {
			const struct cfg_dep *d = &lists[l]->v[i];
			if (d->kind == DEP_GROUP && d->index == c->group)
				continue;
			jw_obj_begin(w);
			jw_kstr(w, "name", d->name);
			jw_kstr(w, "on_failure", d->restart ? "restart" : "keep-running");
			jw_obj_end(w);
		}
	jw_arr_end(w);
	jw_obj_end(w);
}

static void cmd_status(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	uint64_t now = ai_now_ms();
	static const char *const phases[] = {"running", "stopping", "stopped"};
	(void)rq;
	jw_kbool(w, "ok", true);
	jw_kstr(w, "hostname", st->cfg && st->cfg->app.hostname ? st->cfg->app.hostname : NULL);
	jw_kstr(w, "phase", phases[st->phase]);
	jw_kbool(w, "pid1", st->pid1);
	jw_kstr(w, "degraded", st->degraded[0] ? st->degraded : NULL);
	jw_kbool(w, "reloading", reload_pending(st));
	jw_kint(w, "uptime_ms", (long long)(now - st->started_ms));
	/* CLOCK_MONOTONIC: as PID 1 about the ms since the kernel started, so that
	 * a host can tell boot timings (now - an agent's since_ms) in the guest's time */
	jw_kint(w, "clock_ms", (long long)now);
	/* inside sandboxed groups orphans land on the group's holder */
	jw_kint(w, "orphans_reaped",
		(long long)(st->orphans_reaped + (st->sbx ? sbx_sup_orphans(st->sbx) : 0)));
	jw_key(w, "agents");
	jw_arr_begin(w);
	for (int i = 0; i < st->nagents; i++)
		put_agent(st, w, &st->agents[i], now);
	jw_arr_end(w);
}

static void cmd_target(struct ai_state *st, const struct ctl_req *rq, struct jw *w,
		       int (*fn)(struct ai_state *, const char *, struct ai_err *))
{
	const char *t = json_get_str(rq->p, rq->root, "target");
	struct ai_err e = {0};
	if (!st->cfg) {
		reply_error(w, "no configuration loaded (%s)", st->degraded);
		return;
	}
	if (!t) {
		reply_error(w, "missing \"target\" (an agent or group name)");
		return;
	}
	if (fn(st, t, &e) < 0) {
		reply_error(w, "%s", e.msg);
		return;
	}
	jw_kbool(w, "ok", true);
}

static void cmd_start(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	cmd_target(st, rq, w, sup_ctl_start);
}
static void cmd_stop(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	cmd_target(st, rq, w, sup_ctl_stop);
}
static void cmd_restart(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	cmd_target(st, rq, w, sup_ctl_restart);
}

static void cmd_logs(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	const char *t = json_get_str(rq->p, rq->root, "target");
	int ni = json_get(rq->p, rq->root, "n"), fi = json_get(rq->p, rq->root, "follow");
	unsigned n = 100;
	int ai;
	char *text = st->ctl.scratch;
	if (!st->cfg || !text) {
		reply_error(w, "no configuration loaded (%s)", st->degraded);
		return;
	}
	if (!t || (ai = cfg_find_agent(st->cfg, t)) < 0) {
		reply_error(w, "logs: name an agent%s%s", t ? "; no agent named " : "", t ? t : "");
		return;
	}
	if (ni >= 0) {
		double v = rq->p->pool[ni].num;
		if (rq->p->pool[ni].kind != JV_NUM || v < 0 || v > 100000) {
			reply_error(w, "logs: n must be a number of lines from 0 to 100000");
			return;
		}
		n = (unsigned)v;
	}
	/* half the reply buffer: escaping can double the text */
	size_t len = logcap_tail(&st->agents[ai], n, text, CTL_MAX_REPLY / 2);
	jw_kbool(w, "ok", true);
	jw_kstr(w, "agent", t);
	jw_key(w, "text");
	jw_strn(w, text, len);
	if (fi >= 0 && rq->p->pool[fi].kind == JV_BOOL && rq->p->pool[fi].b && rq->client)
		rq->client->follow = ai;
}

static void cmd_health(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	const char *t = json_get_str(rq->p, rq->root, "target");
	int ai;
	if (!st->cfg) {
		reply_error(w, "no configuration loaded (%s)", st->degraded);
		return;
	}
	if (!t) {
		reply_error(w, "missing \"target\" (an agent name)");
		return;
	}
	if ((ai = cfg_find_agent(st->cfg, t)) < 0) {
		reply_error(w, "no agent named \"%.64s\"", t);
		return;
	}
	jw_kbool(w, "ok", true);
	jw_kstr(w, "name", t);
	jw_kstr(w, "state", sup_state_name(st->agents[ai].state));
	jw_kstr(w, "health", sup_health_name(st->agents[ai].health));
	jw_kstr(w, "reason", st->agents[ai].reason_text[0] ? st->agents[ai].reason_text : NULL);
	jw_key(w, "probe");
	jw_obj_begin(w);
	probe_put_json(st, ai, w);
	jw_obj_end(w);
}

static void cmd_events(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	(void)st;
	if (!rq->client) {
		reply_error(w, "events: a stream, only over the control socket");
		return;
	}
	rq->client->events = true;
	jw_kbool(w, "ok", true);
}

static void begin_final(struct ai_state *st, enum ai_final f, struct jw *w)
{
	if (st->phase == PHASE_RUN) {
		st->final = f;
		log_info("ctl", NULL, "%s requested", f == FINAL_REBOOT ? "reboot" : "poweroff");
		if (st->cfg)
			sup_shutdown(st);
		else
			st->phase = PHASE_DONE;
	}
	jw_kbool(w, "ok", true);
}

static void cmd_poweroff(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	(void)rq;
	begin_final(st, st->pid1 ? FINAL_POWEROFF : FINAL_EXIT, w);
}

static void cmd_reboot(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	(void)rq;
	begin_final(st, st->pid1 ? FINAL_REBOOT : FINAL_EXIT, w);
}

static void cmd_reload(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	(void)rq;
	reload_request(st, w); /* writes "ok" and the diff, or "error" */
}

static void cmd_ping(struct ai_state *st, const struct ctl_req *rq, struct jw *w)
{
	(void)st;
	(void)rq;
	jw_kbool(w, "ok", true);
	jw_kbool(w, "admin", rq->admin);
}

static const struct {
	const char *name;
	bool admin; /* changes state: uid 0 or the admin group only */
	ctl_handler fn;
} ctl_cmds[] = {
	{"status", false, cmd_status},	 {"ping", false, cmd_ping},
	{"start", true, cmd_start},	 {"stop", true, cmd_stop},
	{"restart", true, cmd_restart},	 {"poweroff", true, cmd_poweroff},
	{"reboot", true, cmd_reboot},	 {"logs", false, cmd_logs},
	{"health", false, cmd_health},	 {"events", false, cmd_events},
	{"reload", true, cmd_reload},
};

static size_t handle_line(struct ai_state *st, const char *line, size_t len, bool admin,
			  struct ctl_client *client, char *out, size_t cap)
{
	struct jv pool[CTL_MAX_NODES];
	char sbuf[CTL_MAX_REQ + 1];
	struct jparse p = {.pool = pool, .cap = CTL_MAX_NODES, .sbuf = sbuf, .scap = sizeof sbuf};
	struct jw w;
	struct ctl_req rq = {&p, -1, admin, client};
	const char *cmd;
	size_t i;

	jw_init(&w, out, cap - 1);
	jw_obj_begin(&w);
	jw_kint(&w, "v", CTL_VERSION);
	if (len > CTL_MAX_REQ) {
		reply_error(&w, "request longer than %d bytes", CTL_MAX_REQ);
		goto done;
	}
	rq.root = json_parse(&p, line, len);
	if (rq.root < 0) {
		reply_error(&w, "malformed request: %s at byte %zu", p.err ? p.err : "bad JSON",
			    p.err_off);
		goto done;
	}
	if (pool[rq.root].kind != JV_OBJ) {
		reply_error(&w, "a request is a JSON object like {\"cmd\":\"status\"}");
		goto done;
	}
	if (!(cmd = json_get_str(&p, rq.root, "cmd"))) {
		reply_error(&w, "missing \"cmd\"");
		goto done;
	}
	for (i = 0; i < AI_ARRAY_SIZE(ctl_cmds); i++)
		if (!strcmp(ctl_cmds[i].name, cmd))
			break;
	if (i == AI_ARRAY_SIZE(ctl_cmds)) {
		reply_error(&w, "unknown command \"%.64s\"", cmd);
		goto done;
	}
	if (ctl_cmds[i].admin && !admin) {
		reply_error(&w, "permission denied: \"%s\" needs root or the admin group", cmd);
		goto done;
	}
	ctl_cmds[i].fn(st, &rq, &w);
done:
	jw_obj_end(&w);
	if (w.overflow) {
		jw_init(&w, out, cap - 1);
		jw_obj_begin(&w);
		jw_kint(&w, "v", CTL_VERSION);
		reply_error(&w, "reply larger than %zu bytes", cap);
		jw_obj_end(&w);
	}
	out[w.len++] = '\n';
	return w.len;
}

size_t ctl_handle_line(struct ai_state *st, const char *line, size_t len, bool admin, char *out,
		       size_t cap)
{
	return handle_line(st, line, len, admin, NULL, out, cap);
}

/* ---- socket server ---- */

static void client_close(struct ai_state *st, struct ctl_client *c)
{
	loop_del(&st->loop, &c->src);
	loop_timer_disarm(&st->loop, &c->idle);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->inlen = c->outlen = c->outoff = 0;
	c->skipping = false;
	c->follow = -1;
	c->events = false;
}

static bool client_flush(struct ai_state *st, struct ctl_client *c);

void ctl_follow_remap(struct ai_state *st, const int *new_of_old, int nold)
{
	for (int i = 0; st->ctl.clients && i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &st->ctl.clients[i];
		if (c->fd < 0 || c->follow < 0)
			continue;
		c->follow = c->follow < nold ? new_of_old[c->follow] : -1;
		if (c->follow < 0 && client_flush(st, c))
			client_close(st, c); /* the agent is gone: so is its stream */
	}
}

/* Write what is pending; returns false when the client was closed. */
static bool client_flush(struct ai_state *st, struct ctl_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_mod(&st->loop, &c->src, EPOLLIN | EPOLLOUT, NULL);
			return true;
		}
		if (n < 0) {
			client_close(st, c);
			return false;
		}
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	loop_mod(&st->loop, &c->src, EPOLLIN, NULL);
	return true;
}

static void client_line(struct ai_state *st, struct ctl_client *c, const char *line, size_t len)
{
	if (CTL_MAX_REPLY - c->outlen < 1024) {
		/* The peer sends requests but never reads replies. */
		log_warn("ctl", NULL, "client does not read its replies; closing it");
		client_close(st, c);
		return;
	}
	c->outlen += handle_line(st, line, len, c->admin, c, c->out + c->outlen,
				 CTL_MAX_REPLY - c->outlen);
	if (c->follow >= 0 || c->events) /* a follower is not idle while it waits */
		loop_timer_disarm(&st->loop, &c->idle);
}

static void on_client(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct ctl_client *c = src->data;
	if (ev & EPOLLOUT && !client_flush(st, c))
		return;
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = recv(c->fd, c->in + c->inlen, CTL_MAX_REQ + 1 - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) { /* EOF or error */
			client_close(st, c);
			return;
		}
		c->inlen += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < c->inlen; i++) {
			if (c->in[i] != '\n')
				continue;
			if (!c->skipping)
				client_line(st, c, c->in + start, i - start);
			else
				c->skipping = false;
			if (c->fd < 0)
				return;
			start = i + 1;
		}
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
		if (c->inlen > CTL_MAX_REQ) {
			/* Oversized: answer once, then drop bytes up to the newline. */
			if (!c->skipping)
				client_line(st, c, c->in, c->inlen);
			if (c->fd < 0)
				return;
			c->skipping = true;
			c->inlen = 0;
		}
		if (c->follow < 0 && !c->events)
			loop_timer_arm_in(&st->loop, &c->idle, CTL_IDLE_MS);
	}
	if (c->outlen)
		client_flush(st, c);
}

/* Append one pushed object (writer state in *w, already ended) to the
 * client's output; a follower that does not keep up loses it, counted. */
static void push_done(struct ai_state *st, struct ctl_client *c, struct jw *w)
{
	if (w->overflow) {
		c->follow_dropped++;
		return;
	}
	c->outlen += w->len;
	c->out[c->outlen++] = '\n';
	client_flush(st, c);
}

void ctl_log_line(struct ai_state *st, const struct sup_agent *a, const char *line, size_t n)
{
	struct ctl_server *s = &st->ctl;
	if (!s->clients)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &s->clients[i];
		struct jw w;
		if (c->fd < 0 || c->follow != a->idx)
			continue;
		jw_init(&w, c->out + c->outlen, CTL_MAX_REPLY - c->outlen - 1);
		jw_obj_begin(&w);
		jw_kint(&w, "v", CTL_VERSION);
		jw_key(&w, "log");
		jw_strn(&w, line, n && line[n - 1] == '\n' ? n - 1 : n);
		jw_obj_end(&w);
		push_done(st, c, &w);
	}
}

void ctl_agent_event(struct ai_state *st, const struct sup_agent *a, int from, int to)
{
	struct ctl_server *s = &st->ctl;
	if (!s->clients || !st->cfg)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &s->clients[i];
		struct jw w;
		if (c->fd < 0 || !c->events)
			continue;
		jw_init(&w, c->out + c->outlen, CTL_MAX_REPLY - c->outlen - 1);
		jw_obj_begin(&w);
		jw_kint(&w, "v", CTL_VERSION);
		jw_key(&w, "event");
		jw_obj_begin(&w);
		jw_kint(&w, "t_ms", (long long)(ai_now_ms() - st->started_ms));
		jw_kstr(&w, "agent", a->cfg->name);
		jw_kstr(&w, "group", st->cfg->groups[a->cfg->group].name);
		jw_kstr(&w, "from", sup_state_name((enum sup_state)from));
		jw_kstr(&w, "to", sup_state_name((enum sup_state)to));
		jw_kint(&w, "pid", a->pid);
		jw_kstr(&w, "reason", a->reason_text[0] ? a->reason_text : NULL);
		jw_kstr(&w, "waiting_for", to == SUP_WAITING ? a->waiting_for : NULL);
		jw_obj_end(&w);
		jw_obj_end(&w);
		push_done(st, c, &w);
	}
}

static void on_idle(struct ai_state *st, struct loop_timer *t)
{
	struct ctl_client *c = t->data;
	log_debug("ctl", NULL, "closing an idle client");
	client_close(st, c);
}

static bool peer_is_admin(int fd, gid_t admin_gid)
{
	struct ucred cr;
	socklen_t l = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return false;
	if (cr.uid == 0)
		return true;
	if (admin_gid == (gid_t)-1)
		return false;
	if (cr.gid == admin_gid)
		return true;
	gid_t groups[64];
	l = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) == 0)
		for (size_t i = 0; i < l / sizeof(gid_t); i++)
			if (groups[i] == admin_gid)
				return true;
	return false;
}

static void on_accept(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct ctl_server *s = &st->ctl;
	(void)src;
	(void)ev;
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c = NULL;
		struct ai_err e = {0};
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("ctl", s->path, "accept4: %s", strerror(errno));
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < CTL_MAX_CLIENTS; i++)
			if (s->clients[i].fd < 0) {
				c = &s->clients[i];
				break;
			}
		if (!c) {
			static const char busy[] = "{\"v\":1,\"error\":\"too many clients\"}\n";
			if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("ctl", NULL, "busy reply: %s", strerror(errno));
			close(fd);
			continue;
		}
		c->fd = fd;
		c->admin = peer_is_admin(fd, s->admin_gid);
		if (loop_add(&st->loop, &c->src, fd, EPOLLIN, on_client, c, &e) < 0) {
			log_error(&e);
			close(fd);
			c->fd = -1;
			continue;
		}
		loop_timer_arm_in(&st->loop, &c->idle, CTL_IDLE_MS);
	}
}

/* The admin group from /etc/group itself: getgrnam() would load the NSS
 * modules of nsswitch.conf (libnss_systemd and libm here, 0.6 MiB of RSS
 * kept for ainit's whole life) to answer a question the appliance's
 * /etc/group answers. */
static int group_gid(const char *name, gid_t *gid)
{
	char line[1024];
	size_t nl = strlen(name);
	FILE *f = fopen("/etc/group", "re");
	int r = -ENOENT;
	if (!f)
		return -errno;
	while (fgets(line, sizeof line, f)) {
		char *p;
		if (strncmp(line, name, nl) || line[nl] != ':')
			continue;
		p = strchr(line + nl + 1, ':'); /* past the password field */
		if (p) {
			char *end;
			unsigned long v = strtoul(p + 1, &end, 10);
			if (end != p + 1 && (*end == ':' || *end == '\n')) {
				*gid = (gid_t)v;
				r = 0;
			}
		}
		break;
	}
	fclose(f);
	return r;
}

int ctl_open(struct ai_state *st, const char *path, const char *admin_group, struct ai_err *e)
{
	struct ctl_server *s = &st->ctl;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	AI_AUTOCLOSE int fd = -1;

	s->lfd = -1;
	s->admin_gid = (gid_t)-1;
	if (strlen(path) >= sizeof sa.sun_path)
		return ai_fail(e, "ctl", NULL, ENAMETOOLONG, "socket path %s", path);
	snprintf(s->path, sizeof s->path, "%s", path);
	memcpy(sa.sun_path, path, strlen(path));
	if (!s->scratch && !(s->scratch = malloc(CTL_MAX_REPLY / 2)))
		return ai_fail(e, "ctl", "malloc", ENOMEM, "reply scratch");
	if (!s->clients) {
		s->clients = calloc(CTL_MAX_CLIENTS, sizeof *s->clients);
		if (!s->clients)
			return ai_fail(e, "ctl", "calloc", ENOMEM, "client table");
		for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct ctl_client *c = &s->clients[i];
			c->fd = -1;
			c->follow = -1;
			c->in = malloc(CTL_MAX_REQ + 1);
			c->out = malloc(CTL_MAX_REPLY);
			if (!c->in || !c->out)
				return ai_fail(e, "ctl", "malloc", ENOMEM, "client buffers");
			if (loop_timer_register(&st->loop, &c->idle, on_idle, c, e) < 0)
				return -ENOMEM;
		}
	}
	if (admin_group) {
		gid_t gid = (gid_t)-1;
		if (group_gid(admin_group, &gid) == 0)
			s->admin_gid = gid;
		else
			log_warn("ctl", path, "admin group \"%s\" does not exist; only root may change state",
				 admin_group);
	}
	/* Bind under a temporary name, set its mode, listen, then rename into
	 * place: a client never sees the socket before it accepts connections
	 * or with the wrong mode. */
	char tmp[sizeof sa.sun_path];
	if (snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid()) >= (int)sizeof tmp)
		return ai_fail(e, "ctl", NULL, ENAMETOOLONG, "socket path %s", path);
	memset(sa.sun_path, 0, sizeof sa.sun_path);
	memcpy(sa.sun_path, tmp, strlen(tmp));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ai_fail(e, "ctl", "socket", errno, "%s", path);
	if (unlink(tmp) < 0 && errno != ENOENT)
		return ai_fail(e, "ctl", "unlink", errno, "stale socket %s", tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return ai_fail(e, "ctl", "bind", errno, "%s", tmp);
	if (s->admin_gid != (gid_t)-1 && chown(tmp, 0, s->admin_gid) < 0)
		log_warn("ctl", tmp, "chown: %s", strerror(errno));
	/* Anyone who can connect may read: 0666 would widen that to every local
	 * user; 0660 keeps it to root and the admin group, as DESIGN §8 says.
	 * Without an admin group the socket is for root only. */
	if (chmod(tmp, 0660) < 0) {
		ai_fail(e, "ctl", "chmod", errno, "%s", tmp);
		unlink(tmp);
		return -EPERM;
	}
	if (listen(fd, 64) < 0 || rename(tmp, path) < 0) {
		ai_fail(e, "ctl", "listen/rename", errno, "%s", path);
		unlink(tmp);
		return -EIO;
	}
	if (loop_add(&st->loop, &s->lsrc, fd, EPOLLIN, on_accept, s, e) < 0)
		return -EIO;
	s->lfd = ai_take_fd(&fd);
	return 0;
}

void ctl_close(struct ai_state *st)
{
	struct ctl_server *s = &st->ctl;
	if (s->clients) {
		for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
			if (s->clients[i].fd >= 0)
				client_close(st, &s->clients[i]);
			free(s->clients[i].in);
			free(s->clients[i].out);
		}
		free(s->clients);
		s->clients = NULL;
	}
	free(s->scratch);
	s->scratch = NULL;
	if (s->lfd >= 0) {
		loop_del(&st->loop, &s->lsrc);
		close(s->lfd);
		unlink(s->path);
		s->lfd = -1;
	}
}
