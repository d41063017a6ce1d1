/* GET /metrics and GET /health/AGENT. See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "probe.h"
#include "sandbox.h"
#include "state.h"
#include "util.h"

#define HDR_ROOM 256

struct met_client {
	int fd;
	struct loop_src src;
	struct loop_timer idle;
	char in[MET_MAX_REQ];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
};

struct met_server {
	int lfd;
	struct loop_src lsrc;
	struct met_client c[MET_MAX_CLIENTS];
	struct met_agent *a;
	struct met_group *g;
	size_t outcap;
	char addr[64];
};

/* ---- pure ---- */

static void put(struct met_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct met_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->overflow = true;
		return;
	}
	b->len += (size_t)n;
}

void met_escape(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; s && *s && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else
			out[o++] = *s;
	}
	out[o] = 0;
}

bool met_parse_request(const char *req, size_t len, char *path, size_t cap)
{
	const char *p, *sp;
	if (len < 5 || strncmp(req, "GET ", 4))
		return false;
	p = req + 4;
	sp = memchr(p, ' ', len - 4);
	if (!sp || sp == p || (size_t)(sp - p) >= cap || strncmp(sp + 1, "HTTP/1.", 7))
		return false;
	memcpy(path, p, (size_t)(sp - p));
	path[sp - p] = 0;
	return true;
}

static void head(struct met_buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void met_format(struct met_buf *b, const struct met_agent *a, int na, const struct met_group *g,
		int ng, uint64_t wakeups, uint64_t rss_bytes)
{
	char n[160], gr[160];
#define EACH_AGENT(metric, type, help, cond, fmt, ...)                                        \
	do {                                                                                  \
		head(b, metric, type, help);                                                  \
		for (int i = 0; i < na; i++) {                                                \
			if (!(cond))                                                          \
				continue;                                                     \
			met_escape(n, sizeof n, a[i].name);                                   \
			met_escape(gr, sizeof gr, a[i].group);                                \
			put(b, metric "{agent=\"%s\",group=\"%s\"} " fmt "\n", n, gr, __VA_ARGS__); \
		}                                                                             \
	} while (0)
	EACH_AGENT("ainit_agent_up", "gauge", "1 when the agent's process runs.", 1, "%d",
		   a[i].up ? 1 : 0);
	EACH_AGENT("ainit_agent_healthy", "gauge", "1 when the agent is healthy.", 1, "%d",
		   a[i].healthy ? 1 : 0);
	EACH_AGENT("ainit_agent_restarts_total", "counter", "Restarts since ainit started.", 1, "%u",
		   a[i].restarts);
	head(b, "ainit_agent_state", "gauge", "1 for the agent's current state.");
	for (int i = 0; i < na; i++) {
		met_escape(n, sizeof n, a[i].name);
		met_escape(gr, sizeof gr, a[i].group);
		put(b, "ainit_agent_state{agent=\"%s\",group=\"%s\",state=\"%s\"} 1\n", n, gr,
		    a[i].state);
	}
	EACH_AGENT("ainit_health_checks_total", "counter", "Health checks run.", a[i].probed,
		   "%llu", (unsigned long long)a[i].checks);
	EACH_AGENT("ainit_health_check_failures_total", "counter", "Health checks failed.",
		   a[i].probed, "%llu", (unsigned long long)a[i].failures);
	EACH_AGENT("ainit_health_check_last_seconds", "gauge", "Latency of the last health check.",
		   a[i].probed && a[i].checks, "%.6f", (double)a[i].last_us / 1e6);
	EACH_AGENT("ainit_health_check_seconds_sum", "counter", "Sum of health check latencies.",
		   a[i].probed, "%.6f", (double)a[i].sum_us / 1e6);
#undef EACH_AGENT
#define EACH_GROUP(metric, type, help, field, scale)                                          \
	do {                                                                                  \
		head(b, metric, type, help);                                                  \
		for (int i = 0; i < ng; i++) {                                                \
			if (g[i].field < 0)                                                   \
				continue;                                                     \
			met_escape(gr, sizeof gr, g[i].name);                                 \
			put(b, metric "{group=\"%s\"} %.6g\n", gr, (double)g[i].field / (scale)); \
		}                                                                             \
	} while (0)
	EACH_GROUP("ainit_group_memory_bytes", "gauge", "memory.current of the group's cgroup.",
		   mem_bytes, 1);
	EACH_GROUP("ainit_group_pids", "gauge", "pids.current of the group's cgroup.", pids, 1);
	EACH_GROUP("ainit_group_cpu_seconds_total", "counter", "CPU time of the group's cgroup.",
		   cpu_usec, 1e6);
#undef EACH_GROUP
	head(b, "ainit_loop_wakeups_total", "counter", "Event loop wakeups of ainit.");
	put(b, "ainit_loop_wakeups_total %llu\n", (unsigned long long)wakeups);
	head(b, "ainit_resident_memory_bytes", "gauge", "ainit's own resident set size.");
	put(b, "ainit_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes);
}

/* ---- gathering ---- */

static int64_t read_num_at(int dirfd, const char *file, const char *key)
{
	char buf[1024];
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (key) {
		char *p = strstr(buf, key);
		if (!p)
			return -1;
		return strtoll(p + strlen(key), NULL, 10);
	}
	return strtoll(buf, NULL, 10);
}

static uint64_t self_rss(void)
{
	char buf[128];
	long long pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%*s %lld", &pages) != 1)
		return 0;
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void gather(struct ai_state *st, struct met_server *m)
{
	for (int i = 0; i < st->nagents; i++) {
		const struct sup_agent *sa = &st->agents[i];
		const struct probe_stat *ps = probe_stat_of(st, i);
		struct met_agent *x = &m->a[i];
		x->name = sa->cfg->name;
		x->group = st->cfg->groups[sa->cfg->group].name;
		x->state = sup_state_name(sa->state);
		x->up = sa->pid > 0;
		x->healthy = sa->state == SUP_HEALTHY;
		x->restarts = sa->restarts;
		x->probed = ps != NULL;
		if (ps) {
			x->checks = ps->checks;
			x->failures = ps->failures;
			x->last_us = ps->last_us;
			x->sum_us = ps->sum_us;
		}
	}
	for (int i = 0; i < st->cfg->ngroups; i++) {
		struct met_group *g = &m->g[i];
		int fd = st->sbx && st->sbx->groups && i < st->sbx->ngroups ? st->sbx->groups[i].cgfd : -1;
		g->name = st->cfg->groups[i].name;
		g->mem_bytes = g->pids = g->cpu_usec = -1;
		if (fd >= 0) {
			g->mem_bytes = read_num_at(fd, "memory.current", NULL);
			g->pids = read_num_at(fd, "pids.current", NULL);
			g->cpu_usec = read_num_at(fd, "cpu.stat", "usage_usec ");
		}
	}
}

/* ---- server ---- */

static void client_close(struct ai_state *st, struct met_client *c)
{
	loop_del(&st->loop, &c->src);
	loop_timer_disarm(&st->loop, &c->idle);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->inlen = c->outlen = c->outoff = 0;
}

static void respond(struct ai_state *st, struct met_server *m, struct met_client *c,
		    const char *path)
{
	struct met_buf b = {.p = c->out + HDR_ROOM, .cap = m->outcap - HDR_ROOM};
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
	char hdr[HDR_ROOM];
	int hl;
	if (!strcmp(path, "/metrics")) {
		gather(st, m);
		met_format(&b, m->a, st->nagents, m->g, st->cfg->ngroups, st->loop.wakeups, self_rss());
	} else if (!strncmp(path, "/health/", 8)) {
		int ai = cfg_find_agent(st->cfg, path + 8);
		char n[160];
		type = "application/json";
		met_escape(n, sizeof n, path + 8);
		if (ai < 0) {
			status = "404 Not Found";
			put(&b, "{\"status\":\"unknown\",\"agent\":\"%s\",\"error\":\"no such agent\"}\n", n);
		} else {
			const struct sup_agent *sa = &st->agents[ai];
			bool ok = sa->state == SUP_HEALTHY;
			if (!ok)
				status = "503 Service Unavailable";
			put(&b, "{\"status\":\"%s\",\"agent\":\"%s\",\"state\":\"%s\",\"restarts\":%u}\n",
			    ok ? "ok" : "unhealthy", n, sup_state_name(sa->state), sa->restarts);
		}
	} else {
		status = "404 Not Found";
		put(&b, "not found: try /metrics or /health/AGENT\n");
	}
	if (b.overflow) {
		status = "500 Internal Server Error";
		b.overflow = false;
		b.len = 0;
		put(&b, "reply larger than %zu bytes\n", b.cap);
	}
	hl = snprintf(hdr, sizeof hdr,
		      "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, type, b.len);
	memcpy(c->out + HDR_ROOM - hl, hdr, (size_t)hl);
	c->outoff = HDR_ROOM - (size_t)hl;
	c->outlen = HDR_ROOM + b.len;
}

static void client_flush(struct ai_state *st, struct met_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_mod(&st->loop, &c->src, EPOLLOUT, NULL);
			return;
		}
		if (n < 0)
			break;
		c->outoff += (size_t)n;
	}
	client_close(st, c); /* HTTP/1.0: one request per connection */
}

static void on_client(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct met_client *c = src->data;
	struct met_server *m = st->metrics;
	char path[256];
	if (c->outlen) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			client_flush(st, c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - 1 - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_close(st, c);
			return;
		}
		c->inlen += (size_t)n;
		if (c->inlen == sizeof c->in - 1)
			break;
	}
	c->in[c->inlen] = 0;
	if (!strstr(c->in, "\r\n\r\n") && !strstr(c->in, "\n\n")) {
		if (c->inlen < sizeof c->in - 1)
			return; /* wait for the rest of the header */
		client_close(st, c);
		return;
	}
	if (!met_parse_request(c->in, c->inlen, path, sizeof path))
		snprintf(path, sizeof path, "/");
	respond(st, m, c, path);
	client_flush(st, c);
}

static void on_idle(struct ai_state *st, struct loop_timer *t)
{
	client_close(st, t->data);
}

static void on_accept(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct met_server *m = st->metrics;
	(void)src;
	(void)ev;
	for (;;) {
		struct met_client *c = NULL;
		struct ai_err e = {0};
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("metrics", m->addr, "accept4: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < MET_MAX_CLIENTS; i++)
			if (m->c[i].fd < 0) {
				c = &m->c[i];
				break;
			}
		if (!c) { /* busy: a scraper retries */
			close(fd);
			continue;
		}
		c->fd = fd;
		if (loop_add(&st->loop, &c->src, fd, EPOLLIN, on_client, c, &e) < 0) {
			close(fd);
			c->fd = -1;
			continue;
		}
		loop_timer_arm_in(&st->loop, &c->idle, MET_IDLE_MS);
	}
}

int met_init(struct ai_state *st, struct ai_err *e)
{
	const struct ai_config *cfg = st->cfg;
	struct met_server *m;
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	char host[96];
	int port, one = 1;
	AI_AUTOCLOSE int fd = -1;
	if (!cfg || !cfg->app.metrics_listen)
		return 0;
	if (probe_parse_hostport(cfg->app.metrics_listen, host, sizeof host, &port, 0) < 0 || !port)
		return ai_fail(e, "metrics", NULL, EINVAL,
			       "metrics.listen \"%s\" is not ADDR:PORT", cfg->app.metrics_listen);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		sl = sizeof *in;
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		sl = sizeof *in6;
	} else
		return ai_fail(e, "metrics", NULL, EINVAL, "metrics.listen \"%s\": not a numeric address",
			       cfg->app.metrics_listen);
	m = calloc(1, sizeof *m);
	if (!m)
		return ai_fail(e, "metrics", "calloc", ENOMEM, "metrics server");
	st->metrics = m;
	m->lfd = -1;
	snprintf(m->addr, sizeof m->addr, "%s", cfg->app.metrics_listen);
	m->outcap = 8192 + (size_t)st->nagents * 1400 + (size_t)cfg->ngroups * 400;
	m->a = calloc((size_t)st->nagents + 1, sizeof *m->a);
	m->g = calloc((size_t)cfg->ngroups + 1, sizeof *m->g);
	if (!m->a || !m->g)
		return ai_fail(e, "metrics", "calloc", ENOMEM, "metrics tables");
	for (int i = 0; i < MET_MAX_CLIENTS; i++) {
		struct met_client *c = &m->c[i];
		c->fd = -1;
		c->out = malloc(m->outcap);
		if (!c->out)
			return ai_fail(e, "metrics", "malloc", ENOMEM, "reply buffers");
		if (loop_timer_register(&st->loop, &c->idle, on_idle, c, e) < 0)
			return -ENOMEM;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ai_fail(e, "metrics", "socket", errno, "%s", m->addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return ai_fail(e, "metrics", "bind", errno, "metrics.listen %s", m->addr);
	if (listen(fd, 16) < 0)
		return ai_fail(e, "metrics", "listen", errno, "%s", m->addr);
	if (loop_add(&st->loop, &m->lsrc, fd, EPOLLIN, on_accept, m, e) < 0)
		return -EIO;
	m->lfd = ai_take_fd(&fd);
	log_info("metrics", NULL, "serving /metrics and /health/AGENT on %s", m->addr);
	return 0;
}

int met_resize(struct ai_state *st, struct ai_err *e)
{
	struct met_server *m = st->metrics;
	size_t outcap = 8192 + (size_t)st->nagents * 1400 + (size_t)st->cfg->ngroups * 400;
	struct met_agent *a;
	struct met_group *g;
	if (!m)
		return 0;
	a = realloc(m->a, ((size_t)st->nagents + 1) * sizeof *a);
	if (a)
		m->a = a;
	g = realloc(m->g, ((size_t)st->cfg->ngroups + 1) * sizeof *g);
	if (g)
		m->g = g;
	if (!a || !g) { /* too small for the new agents: no /metrics rather than a wrong one */
		met_fini(st);
		return ai_fail(e, "metrics", "realloc", ENOMEM, "metrics tables; /metrics is off");
	}
	memset(m->a, 0, ((size_t)st->nagents + 1) * sizeof *a);
	memset(m->g, 0, ((size_t)st->cfg->ngroups + 1) * sizeof *g);
	if (outcap <= m->outcap)
		return 0;
	for (int i = 0; i < MET_MAX_CLIENTS; i++) {
		char *o = realloc(m->c[i].out, outcap);
		if (!o)
			return ai_fail(e, "metrics", "realloc", ENOMEM, "reply buffers");
		m->c[i].out = o;
	}
	m->outcap = outcap;
	return 0;
}

void met_fini(struct ai_state *st)
{
	struct met_server *m = st->metrics;
	if (!m)
		return;
	for (int i = 0; i < MET_MAX_CLIENTS; i++) {
		if (m->c[i].fd >= 0)
			client_close(st, &m->c[i]);
		if (m->c[i].idle.cb)
			loop_timer_unregister(&st->loop, &m->c[i].idle);
		free(m->c[i].out);
	}
	if (m->lfd >= 0) {
		loop_del(&st->loop, &m->lsrc);
		close(m->lfd);
	}
	free(m->a);
	free(m->g);
	free(m);
	st->metrics = NULL;
}
