/* Health probes. See probe.h for the schedule and each kind. */
#include "probe.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "sandbox.h"
#include "spawn.h"
#include "state.h"
#include "util.h"

/* libzmq's ABI constants (zmq.h); stable since 4.0. Spelled out here so
 * that ainit needs neither libzmq to link nor its header to build. */
enum {
	PZ_REQ = 3, PZ_FD = 14, PZ_EVENTS = 15, PZ_LINGER = 17, PZ_IMMEDIATE = 39,
	PZ_POLLIN = 1, PZ_POLLOUT = 2, PZ_DONTWAIT = 1, PZ_IO_THREADS = 1, PZ_BLOCKY = 70,
};

struct pzmq {
	void *lib, *ctx;
	void *(*ctx_new)(void);
	int (*ctx_set)(void *, int, int);
	int (*ctx_term)(void *);
	void *(*socket)(void *, int);
	int (*close)(void *);
	int (*setsockopt)(void *, int, const void *, size_t);
	int (*getsockopt)(void *, int, void *, size_t *);
	int (*connect)(void *, const char *);
	int (*send)(void *, const void *, size_t, int);
	int (*recv)(void *, void *, size_t, int);
	int (*errno_)(void);
	const char *(*strerror)(int);
};

#define REMOTE_TIMEOUT_MS 3000
#define REMOTE_GAP_MAX_MS 5000
#define REMOTE_INTERVAL_MS 30000
#define FIRST_GAP_MS 50

struct probe {
	struct sup_agent *a;
	bool active;           /* the agent is up: checks are scheduled */
	bool passed;           /* passed once since this start */
	bool running;          /* a check is in flight */
	uint64_t gap_ms;       /* start phase: gap before the next check */
	uint64_t t0_us;
	struct loop_timer timer; /* next check, or the running check's deadline */
	struct probe_stat stat;
	struct sockaddr_storage addr;
	socklen_t alen;
	char target[96];       /* "127.0.0.1:8200", the command, or the socket */
	/* tcp */
	int fd;
	struct loop_src src;
	/* zmq */
	void *zs;
	int zfd;
	struct loop_src zsrc;
	bool zsent;
	/* native ZMTP */
	bool zgreeted;         /* our greeting is out */
	uint8_t zbuf[1024];    /* greeting + READY + a reply of ~900 bytes */
	size_t zlen;
	/* exec */
	pid_t pid;
	int pidfd, outfd, execfd;
	struct loop_src pidsrc;
	char out[160];         /* the tail of an exec check's output */
	size_t outlen;
	/* notify */
	int nfd;
	struct loop_src nsrc;
	char npath[108];
	bool ready;
	uint64_t ignored;      /* messages from other processes */
};

struct probe_remote {
	const char *name, *host, *agent;
	struct sockaddr_storage addr;
	socklen_t alen;
	char target[96];
	bool ok, usable, running;
	int fd;
	struct loop_src src;
	struct loop_timer timer;
	uint64_t t0_us, gap_ms;
	char req[256], resp[512];
	size_t reqlen, reqoff, resplen;
	struct probe_stat stat;
};

struct probe_tab {
	struct probe *p;       /* parallel to st->agents */
	int n;
	struct probe_remote *r;
	int nr;
	struct pzmq z;
	bool zwanted, zok;
	bool use_libzmq;       /* AINIT_ZMQ_PROBE=libzmq: the dlopen'd library */
	char zerr[160];
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- pure helpers ---- */

uint64_t probe_start_gap(uint64_t prev, uint64_t cap)
{
	uint64_t g = prev ? prev * 2 : FIRST_GAP_MS;
	if (cap < FIRST_GAP_MS)
		cap = FIRST_GAP_MS;
	return g > cap ? cap : g;
}

void probe_notify_path(const char *state_dir, int idx, pid_t self, char *buf, size_t n)
{
	int w = -1;
	if (state_dir && state_dir[0] == '/')
		w = snprintf(buf, n, "%s/notify/%d.sock", state_dir, idx);
	/* sun_path holds 107 characters; longer paths use the abstract
	 * namespace, which only agents in ainit's network namespace reach. */
	if (w < 0 || (size_t)w >= n || w > 107)
		snprintf(buf, n, "@ainit-%d-notify-%d", (int)self, idx);
}

int probe_parse_hostport(const char *s, char *host, size_t hcap, int *port, int dflt)
{
	const char *colon, *h = s;
	size_t hl;
	long p = dflt;
	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb)
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (rb[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (colon) {
		char *end;
		p = strtol(colon + 1, &end, 10);
		if (*end || p < 1 || p > 65535)
			return -EINVAL;
	}
	if (hl == 0 || hl >= hcap)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (int)p;
	return 0;
}

/* Printable excerpt of bytes that may be anything. */
static void excerpt(char *out, size_t cap, const char *buf, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	if (o < cap)
		out[o] = 0;
	if (cap > 4 && o + 5 >= cap)
		memcpy(out + cap - 4, "...", 4);
}

bool probe_parse_reply(const char *buf, size_t len, char *why, size_t cap)
{
	struct jv pool[64];
	char sbuf[1024], ex[64];
	struct jparse p = {.pool = pool, .cap = 64, .sbuf = sbuf, .scap = sizeof sbuf};
	int root, st;
	const char *s, *detail;
	if (len >= sizeof sbuf) {
		snprintf(why, cap, "reply of %zu bytes is too long for a health reply", len);
		return false;
	}
	root = json_parse(&p, buf, len);
	if (root < 0 || pool[root].kind != JV_OBJ) {
		excerpt(ex, sizeof ex, buf, len < 40 ? len : 40);
		snprintf(why, cap, "reply is not a JSON object: \"%s\"", ex);
		return false;
	}
	st = json_get(&p, root, "status");
	if (st < 0 || pool[st].kind != JV_STR) {
		snprintf(why, cap, "reply has no \"status\" string");
		return false;
	}
	s = pool[st].str;
	if (!strcasecmp(s, "ok") || !strcasecmp(s, "healthy")) {
		snprintf(why, cap, "status %s", s);
		return true;
	}
	detail = json_get_str(&p, root, "error");
	if (!detail)
		detail = json_get_str(&p, root, "message");
	snprintf(why, cap, "status \"%.40s\"%s%.120s", s, detail ? ": " : "", detail ? detail : "");
	return false;
}

/* ---- ZMTP 3.0 (rfc.zeromq.org/spec/23), the client side of REQ ----
 * What libzmq would do for one request, spoken directly: greeting, NULL
 * mechanism READY with Socket-Type REQ, then [empty delimiter][body]. */

static const char zmtp_req_body[] = "health_check";

size_t probe_zmtp_greeting(uint8_t *out, size_t cap)
{
	if (cap < 64)
		return 0;
	memset(out, 0, 64);
	out[0] = 0xff;
	out[8] = 0x01; /* as libzmq: a ZMTP 1.0 peer reads "length 1" */
	out[9] = 0x7f;
	out[10] = 3; /* version 3.0 */
	out[11] = 0;
	memcpy(out + 12, "NULL", 4);
	return 64;
}

size_t probe_zmtp_request(uint8_t *out, size_t cap)
{
	static const char ready_cmd[] = "\x05READY\x0bSocket-Type\x00\x00\x00\x03REQ";
	size_t n = 0, rl = sizeof ready_cmd - 1, bl = sizeof zmtp_req_body - 1;
	if (cap < 2 + rl + 2 + 2 + bl)
		return 0;
	out[n++] = 0x04; /* command, short */
	out[n++] = (uint8_t)rl;
	memcpy(out + n, ready_cmd, rl);
	n += rl;
	out[n++] = 0x01; /* more: the empty delimiter of the REQ envelope */
	out[n++] = 0;
	out[n++] = 0x00; /* last frame: the request */
	out[n++] = (uint8_t)bl;
	memcpy(out + n, zmtp_req_body, bl);
	return n + bl;
}

int probe_zmtp_parse(const uint8_t *b, size_t len, const char **body, size_t *bodylen,
		     char *err, size_t errcap)
{
	size_t off = 64;
	bool delim = false;
	if (len >= 1 && b[0] != 0xff) {
		snprintf(err, errcap, "peer is not ZMTP (first byte 0x%02x)", b[0]);
		return -1;
	}
	if (len < 64)
		return len >= 11 && b[9] == 0x7f && b[10] < 3 ? (snprintf(err, errcap,
				"peer speaks ZMTP %d.x; 3.0 or later needed", b[10]), -1) : 0;
	if (b[9] != 0x7f) {
		snprintf(err, errcap, "peer is not ZMTP (bad signature)");
		return -1;
	}
	if (b[10] < 3) {
		snprintf(err, errcap, "peer speaks ZMTP %d.x; 3.0 or later needed", b[10]);
		return -1;
	}
	if (memcmp(b + 12, "NULL", 5)) {
		snprintf(err, errcap, "peer wants a security mechanism other than NULL (%.20s)",
			 (const char *)b + 12);
		return -1;
	}
	for (;;) {
		uint8_t flags;
		uint64_t size;
		size_t hl;
		if (off + 2 > len)
			return 0;
		flags = b[off];
		if (flags & 0xf8) {
			snprintf(err, errcap, "bad ZMTP frame flags 0x%02x", flags);
			return -1;
		}
		if (flags & 0x02) {
			if (off + 9 > len)
				return 0;
			size = 0;
			for (int i = 1; i <= 8; i++)
				size = size << 8 | b[off + i];
			hl = 9;
		} else {
			size = b[off + 1];
			hl = 2;
		}
		if (size > 1u << 20) {
			snprintf(err, errcap, "ZMTP frame of %llu bytes: too large for a health reply",
				 (unsigned long long)size);
			return -1;
		}
		if (off + hl + size > len)
			return 0;
		const uint8_t *f = b + off + hl;
		off += hl + (size_t)size;
		if (flags & 0x04) {
			/* a command: READY is expected, ERROR says why it refused */
			if (size >= 6 && f[0] == 5 && !memcmp(f + 1, "ERROR", 5)) {
				size_t rl = size > 7 ? f[6] : 0;
				if (rl > size - 7)
					rl = size - 7;
				snprintf(err, errcap, "peer refused the handshake: %.*s", (int)rl,
					 (const char *)f + 7);
				return -1;
			}
			continue;
		}
		if (!delim) {
			if (size != 0 || !(flags & 0x01)) {
				snprintf(err, errcap, "reply is not a REP envelope (no empty delimiter)");
				return -1;
			}
			delim = true;
			continue;
		}
		*body = (const char *)f;
		*bodylen = (size_t)size;
		return 1; /* further frames of a multi-part reply are ignored */
	}
}

/* ---- plumbing ---- */

static struct probe_tab *tab(const struct ai_state *st)
{
	return st->probes;
}

static struct probe *probe_of(struct ai_state *st, struct sup_agent *a)
{
	struct probe_tab *t = tab(st);
	return t && a->idx < t->n ? &t->p[a->idx] : NULL;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof *in;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return 0;
	}
	/* A name: resolved once, at load (getaddrinfo blocks; never in the loop). */
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	if (ss->ss_family == AF_INET)
		in->sin_port = htons((uint16_t)port);
	else
		in6->sin6_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

static int net_connect(const struct sockaddr_storage *ss, socklen_t len, int *err)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	*err = 0;
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

/* A loopback connect usually completes inside connect(): then the check
 * goes on at once instead of a wakeup later (the idle target counts them). */
static bool net_connected(int fd)
{
	struct sockaddr_storage peer;
	socklen_t l = sizeof peer;
	return getpeername(fd, (struct sockaddr *)&peer, &l) == 0;
}

static void stat_record(struct probe_stat *s, bool ok, uint64_t us, const char *text)
{
	s->checks++;
	s->have_last = true;
	s->last_ok = ok;
	s->last_at_ms = ai_now_ms();
	s->last_us = us;
	s->sum_us += us;
	if (ok)
		s->streak = 0;
	else
		s->failures++;
	snprintf(s->last, sizeof s->last, "%s", text);
}

static void close_src(struct ai_state *st, struct loop_src *src, int *fd)
{
	if (*fd >= 0) {
		loop_del(&st->loop, src);
		close(*fd);
		*fd = -1;
	}
}

static void zmq_drop(struct ai_state *st, struct probe *p)
{
	struct pzmq *z = &tab(st)->z;
	if (!p->zs)
		return;
	loop_del(&st->loop, &p->zsrc); /* the fd belongs to libzmq: not closed here */
	z->close(p->zs);
	p->zs = NULL;
	p->zfd = -1;
}

static void exec_cleanup(struct ai_state *st, struct probe *p)
{
	close_src(st, &p->pidsrc, &p->pidfd);
	if (p->outfd >= 0) {
		close(p->outfd);
		p->outfd = -1;
	}
	if (p->execfd >= 0) {
		close(p->execfd);
		p->execfd = -1;
	}
	p->pid = 0;
}

/* End the check in flight without a result (the agent stopped). */
static void abort_check(struct ai_state *st, struct probe *p)
{
	p->running = false;
	close_src(st, &p->src, &p->fd);
	zmq_drop(st, p);
	if (p->pid > 0) {
		/* killed now, reaped when its exit arrives */
		kill(-p->pid, SIGKILL);
		close(p->outfd);
		p->outfd = -1;
	}
}

static uint64_t check_interval(const struct probe *p)
{
	const struct cfg_health *h = &p->a->cfg->health;
	return h->interval_ms > 0 ? (uint64_t)h->interval_ms : 30000;
}

static void schedule_next(struct ai_state *st, struct probe *p)
{
	const struct cfg_health *h = &p->a->cfg->health;
	uint64_t d;
	/* notify has no schedule: READY=1 and WATCHDOG=1 arm its deadline */
	if (!p->active || h->kind == HK_NOTIFY)
		return;
	if (p->passed) {
		d = check_interval(p);
	} else {
		p->gap_ms = probe_start_gap(p->gap_ms, h->start_interval_ms > 0
							      ? (uint64_t)h->start_interval_ms
							      : 1000);
		d = p->gap_ms;
	}
	loop_timer_arm_in(&st->loop, &p->timer, d);
}

/* A check ended: record, schedule the next, then tell supervise.c (which
 * may stop the agent and so end probing: it goes last). */
static void finish(struct ai_state *st, struct probe *p, bool ok, const char *text)
{
	struct sup_agent *a = p->a;
	const struct cfg_health *h = &a->cfg->health;
	uint64_t us = now_us() - p->t0_us;
	bool in_grace;
	p->running = false;
	loop_timer_disarm(&st->loop, &p->timer);
	close_src(st, &p->src, &p->fd);
	if (!ok)
		zmq_drop(st, p);
	in_grace = !p->passed && h->start_period_ms > 0 &&
		   ai_now_ms() - a->started_ms < (uint64_t)h->start_period_ms;
	stat_record(&p->stat, ok, us, text);
	if (!ok && !in_grace)
		p->stat.streak++;
	if (ok)
		p->passed = true;
	if (!ok)
		log_debug("probe", a->cfg->name, "check failed (%u/%lld): %s", p->stat.streak,
			  (long long)h->retries, text);
	schedule_next(st, p);
	if (ok && a->state != SUP_HEALTHY)
		sup_probe_result(st, a, true);
	else if (!ok && p->stat.streak == (unsigned)h->retries) {
		log_warn("probe", a->cfg->name, "%u checks failed in a row; last: %s", p->stat.streak,
			 text);
		sup_probe_result(st, a, false);
	}
}

static void fail_fmt(struct ai_state *st, struct probe *p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_fmt(struct ai_state *st, struct probe *p, const char *fmt, ...)
{
	char msg[PROBE_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finish(st, p, false, msg);
}

/* ---- tcp ---- */

static void on_tcp(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct probe *p = src->data;
	int err = 0;
	socklen_t l = sizeof err;
	(void)ev;
	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	if (err)
		fail_fmt(st, p, "connect %s: %s", p->target, strerror(err));
	else
		finish(st, p, true, "connected");
}

static void start_tcp(struct ai_state *st, struct probe *p)
{
	struct ai_err e = {0};
	int err;
	p->fd = net_connect(&p->addr, p->alen, &err);
	if (p->fd < 0) {
		fail_fmt(st, p, "connect %s: %s", p->target, strerror(err));
		return;
	}
	if (net_connected(p->fd)) {
		finish(st, p, true, "connected");
		return;
	}
	if (loop_add(&st->loop, &p->src, p->fd, EPOLLOUT, on_tcp, p, &e) < 0) {
		close(p->fd);
		p->fd = -1;
		fail_fmt(st, p, "epoll: %s", strerror(e.errnum));
	}
}

/* ---- zmq ---- */

static int zmq_load(struct probe_tab *t)
{
	struct pzmq *z = &t->z;
	if (t->zok)
		return 0;
	if (t->zerr[0])
		return -1;
	z->lib = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!z->lib) {
		snprintf(t->zerr, sizeof t->zerr, "zmq probe: dlopen(libzmq.so.5): %s", dlerror());
		return -1;
	}
#define SYM(f, n)                                                                          \
	do {                                                                               \
		*(void **)&z->f = dlsym(z->lib, n);                                        \
		if (!z->f) {                                                               \
			snprintf(t->zerr, sizeof t->zerr, "zmq probe: libzmq.so.5 lacks %s", n); \
			return -1;                                                         \
		}                                                                          \
	} while (0)
	SYM(ctx_new, "zmq_ctx_new");
	SYM(ctx_set, "zmq_ctx_set");
	SYM(ctx_term, "zmq_ctx_term");
	SYM(socket, "zmq_socket");
	SYM(close, "zmq_close");
	SYM(setsockopt, "zmq_setsockopt");
	SYM(getsockopt, "zmq_getsockopt");
	SYM(connect, "zmq_connect");
	SYM(send, "zmq_send");
	SYM(recv, "zmq_recv");
	SYM(errno_, "zmq_errno");
	SYM(strerror, "zmq_strerror");
#undef SYM
	z->ctx = z->ctx_new();
	if (!z->ctx) {
		snprintf(t->zerr, sizeof t->zerr, "zmq probe: zmq_ctx_new: %s", strerror(errno));
		return -1;
	}
	z->ctx_set(z->ctx, PZ_IO_THREADS, 1);
	z->ctx_set(z->ctx, PZ_BLOCKY, 0);
	t->zok = true;
	return 0;
}

static void zmq_drive(struct ai_state *st, struct probe *p)
{
	struct pzmq *z = &tab(st)->z;
	static const char req[] = "health_check";
	for (int round = 0; round < 4 && p->zs; round++) {
		int ev = 0;
		size_t l = sizeof ev;
		if (z->getsockopt(p->zs, PZ_EVENTS, &ev, &l) < 0) {
			fail_fmt(st, p, "zmq_getsockopt(ZMQ_EVENTS): %s", z->strerror(z->errno_()));
			return;
		}
		if (!p->running) {
			/* idle: a stray message (a late reply) is dropped */
			if (ev & PZ_POLLIN) {
				char junk[64];
				z->recv(p->zs, junk, sizeof junk, PZ_DONTWAIT);
				continue;
			}
			return;
		}
		if (!p->zsent && (ev & PZ_POLLOUT)) {
			if (z->send(p->zs, req, sizeof req - 1, PZ_DONTWAIT) < 0) {
				if (z->errno_() == EAGAIN)
					return;
				fail_fmt(st, p, "zmq_send: %s", z->strerror(z->errno_()));
				return;
			}
			p->zsent = true;
			continue;
		}
		if (p->zsent && (ev & PZ_POLLIN)) {
			char buf[1100], why[PROBE_TEXT];
			int n = z->recv(p->zs, buf, sizeof buf - 1, PZ_DONTWAIT);
			if (n < 0) {
				if (z->errno_() == EAGAIN)
					return;
				fail_fmt(st, p, "zmq_recv: %s", z->strerror(z->errno_()));
				return;
			}
			size_t len = (size_t)n < sizeof buf - 1 ? (size_t)n : sizeof buf - 1;
			buf[len] = 0;
			bool ok = probe_parse_reply(buf, len, why, sizeof why);
			finish(st, p, ok, why);
			return;
		}
		return;
	}
}

static void on_zmq(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	(void)ev;
	zmq_drive(st, src->data);
}

static void start_zmq(struct ai_state *st, struct probe *p)
{
	struct probe_tab *t = tab(st);
	struct pzmq *z = &t->z;
	struct ai_err e = {0};
	if (zmq_load(t) < 0) {
		finish(st, p, false, t->zerr);
		return;
	}
	p->zsent = false;
	if (!p->zs) {
		char ep[128];
		int zero = 0, one = 1, fd = -1;
		size_t l = sizeof fd;
		const struct cfg_health *h = &p->a->cfg->health;
		p->zs = z->socket(z->ctx, PZ_REQ);
		if (!p->zs) {
			fail_fmt(st, p, "zmq_socket: %s", z->strerror(z->errno_()));
			return;
		}
		z->setsockopt(p->zs, PZ_LINGER, &zero, sizeof zero);
		/* send waits for a connection, so a timeout tells "nothing
		 * listening" from "listening but silent" */
		z->setsockopt(p->zs, PZ_IMMEDIATE, &one, sizeof one);
		snprintf(ep, sizeof ep, "tcp://%s%s%s:%d", strchr(h->host ? h->host : "", ':') ? "[" : "",
			 h->host ? h->host : "127.0.0.1", strchr(h->host ? h->host : "", ':') ? "]" : "",
			 h->port);
		if (z->connect(p->zs, ep) < 0 || z->getsockopt(p->zs, PZ_FD, &fd, &l) < 0) {
			fail_fmt(st, p, "zmq_connect %s: %s", ep, z->strerror(z->errno_()));
			return;
		}
		p->zfd = fd;
		if (loop_add(&st->loop, &p->zsrc, fd, EPOLLIN, on_zmq, p, &e) < 0) {
			fail_fmt(st, p, "epoll: %s", strerror(e.errnum));
			return;
		}
	}
	zmq_drive(st, p);
}

static void on_zmtp(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct probe *p = src->data;
	char why[PROBE_TEXT], err[PROBE_TEXT];
	(void)ev;
	if (!p->zgreeted) {
		int e = 0;
		socklen_t l = sizeof e;
		uint8_t g[64];
		size_t n = probe_zmtp_greeting(g, sizeof g);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
			e = errno;
		if (e) {
			fail_fmt(st, p, "connect %s: %s", p->target, strerror(e));
			return;
		}
		/* 64 bytes into an empty socket buffer: one send does it. The
		 * rest waits for the peer's greeting: libzmq drops a connection
		 * whose first segment carries more than the greeting. */
		ssize_t w = send(p->fd, g, n, MSG_NOSIGNAL);
		if (w != (ssize_t)n) {
			fail_fmt(st, p, "send to %s: %s", p->target, w < 0 ? strerror(errno) : "short write");
			return;
		}
		p->zgreeted = true;
		p->zlen = 0;
		loop_mod(&st->loop, &p->src, EPOLLIN, NULL);
		return;
	}
	for (;;) {
		ssize_t n = recv(p->fd, p->zbuf + p->zlen, sizeof p->zbuf - p->zlen, 0);
		const char *body;
		size_t blen;
		int r;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			fail_fmt(st, p, "%s closed the connection %s", p->target,
				 p->zlen < 64 ? "during the ZMTP greeting" : "without a reply");
			return;
		}
		p->zlen += (size_t)n;
		r = probe_zmtp_parse(p->zbuf, p->zlen, &body, &blen, err, sizeof err);
		if (r >= 0 && !p->zsent && p->zlen >= 64) {
			uint8_t req[96];
			size_t rn = probe_zmtp_request(req, sizeof req);
			ssize_t w = send(p->fd, req, rn, MSG_NOSIGNAL);
			if (w != (ssize_t)rn) {
				fail_fmt(st, p, "send to %s: %s", p->target,
					 w < 0 ? strerror(errno) : "short write");
				return;
			}
			p->zsent = true;
		}
		if (r < 0) {
			fail_fmt(st, p, "%s: %s", p->target, err);
			return;
		}
		if (r > 0) {
			bool ok = probe_parse_reply(body, blen, why, sizeof why);
			finish(st, p, ok, why);
			return;
		}
		if (p->zlen == sizeof p->zbuf) {
			fail_fmt(st, p, "%s: reply larger than %zu bytes", p->target, sizeof p->zbuf);
			return;
		}
	}
}

static void start_zmtp(struct ai_state *st, struct probe *p)
{
	struct ai_err e = {0};
	int err;
	p->zsent = p->zgreeted = false;
	p->fd = net_connect(&p->addr, p->alen, &err);
	if (p->fd < 0) {
		fail_fmt(st, p, "connect %s: %s", p->target, strerror(err));
		return;
	}
	if (loop_add(&st->loop, &p->src, p->fd, EPOLLOUT, on_zmtp, p, &e) < 0) {
		close(p->fd);
		p->fd = -1;
		fail_fmt(st, p, "epoll: %s", strerror(e.errnum));
		return;
	}
	if (net_connected(p->fd))
		on_zmtp(st, &p->src, EPOLLOUT); /* greeting now, not after a wakeup */
}

/* ---- exec ---- */

static void exec_read(struct probe *p)
{
	for (int i = 0; i < 8 && p->outfd >= 0; i++) {
		char buf[512];
		ssize_t n = read(p->outfd, buf, sizeof buf);
		if (n <= 0)
			return;
		/* keep the tail: the last line says most */
		for (ssize_t k = 0; k < n; k++) {
			if (p->outlen == sizeof p->out - 1) {
				memmove(p->out, p->out + 128, p->outlen - 128);
				p->outlen -= 128;
			}
			p->out[p->outlen++] = buf[k];
		}
	}
}

static void exec_done(struct ai_state *st, struct probe *p, int status)
{
	char msg[PROBE_TEXT], line[160] = "";
	struct spawn_fail f;
	bool was_running = p->running;
	exec_read(p);
	p->out[p->outlen] = 0;
	{
		/* last non-empty line of the output */
		char *end = p->out + p->outlen;
		while (end > p->out && (end[-1] == '\n' || end[-1] == '\r'))
			end--;
		char *start = end;
		while (start > p->out && start[-1] != '\n')
			start--;
		excerpt(line, sizeof line, start, (size_t)(end - start));
	}
	if (p->execfd >= 0 && spawn_read_status(p->execfd, &f) == 0)
		snprintf(msg, sizeof msg, "cannot run %.60s: %.31s: %.60s", p->target, f.step,
			 f.errnum ? strerror(f.errnum) : f.msg);
	else if (WIFEXITED(status))
		snprintf(msg, sizeof msg, "exit %d%s%s", WEXITSTATUS(status), line[0] ? ": " : "", line);
	else
		snprintf(msg, sizeof msg, "killed by %s%s%s", ai_signal_name(WTERMSIG(status)),
			 line[0] ? ": " : "", line);
	exec_cleanup(st, p);
	if (was_running)
		finish(st, p, WIFEXITED(status) && WEXITSTATUS(status) == 0, msg);
}

static void on_exec_pidfd(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct probe *p = src->data;
	siginfo_t si = {0};
	(void)ev;
	/* ECHILD: the SIGCHLD reaper got it first; probe_on_reaped handled it */
	if (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return;
	exec_done(st, p, si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
						  : W_EXITCODE(0, si.si_status));
}

static void start_exec(struct ai_state *st, struct probe *p)
{
	const struct cfg_agent *c = p->a->cfg;
	struct ai_err e = {0};
	struct spawn_result r;
	int pfd[2];
	if (p->pid > 0) {
		fail_fmt(st, p, "the previous check (pid %d) has not ended yet", (int)p->pid);
		return;
	}
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
		fail_fmt(st, p, "pipe2: %s", strerror(errno));
		return;
	}
	struct spawn_req req = {
		.argv = c->health.exec.v,
		.envp = p->a->envp,
		.cwd = c->working_dir,
		.in_fd = -1,
		.out_fd = pfd[1],
		.err_fd = pfd[1],
		.what = c->name,
		.cgroup_fd = -1,
	};
	/* inside the agent's group: its sandbox, cgroup, user, as the agent */
	struct sbx_child sc; /* read by the child of spawn_start() */
	if ((st->sbx && sbx_sup_spawn_req(st->sbx, st->cfg, p->a->idx, &sc, &req, &e) < 0) ||
	    spawn_start(&req, &r, &e) < 0) {
		char eb[256];
		close(pfd[0]);
		close(pfd[1]);
		fail_fmt(st, p, "cannot run %.60s: %.120s", p->target, ai_err_str(&e, eb, sizeof eb));
		return;
	}
	close(pfd[1]);
	p->pid = r.pid;
	p->pidfd = r.pidfd;
	p->execfd = r.execfd;
	p->outfd = pfd[0];
	p->outlen = 0;
	if (loop_add(&st->loop, &p->pidsrc, p->pidfd, EPOLLIN, on_exec_pidfd, p, &e) < 0)
		log_error(&e); /* the SIGCHLD reaper still brings the exit */
}

bool probe_on_reaped(struct ai_state *st, pid_t pid, int status)
{
	struct probe_tab *t = tab(st);
	if (!t || pid <= 0)
		return false;
	for (int i = 0; i < t->n; i++)
		if (t->p[i].pid == pid) {
			exec_done(st, &t->p[i], status);
			return true;
		}
	return false;
}

/* ---- notify ---- */

static bool sender_is_agent(const struct sup_agent *a, pid_t pid)
{
	if (a->pid <= 0 || pid <= 0)
		return false;
	/* the agent leads its own session (spawn.c): its helpers share it */
	return pid == a->pid || getsid(pid) == a->pid;
}

static void notify_line(struct ai_state *st, struct probe *p, const char *l, size_t n)
{
	struct sup_agent *a = p->a;
	const struct cfg_health *h = &a->cfg->health;
	char text[PROBE_TEXT];
	if (n >= 8 && !strncmp(l, "STATUS=", 7)) {
		snprintf(p->stat.status, sizeof p->stat.status, "%.*s", (int)(n - 7), l + 7);
		return;
	}
	if (n == 7 && !strncmp(l, "READY=1", 7)) {
		p->ready = true;
		p->running = true; /* finish() takes the open check */
		p->t0_us = p->t0_us ? p->t0_us : now_us();
		finish(st, p, true, "READY=1");
		if (p->active && h->watchdog_ms > 0)
			loop_timer_arm_in(&st->loop, &p->timer, (uint64_t)h->watchdog_ms);
		else
			loop_timer_disarm(&st->loop, &p->timer);
		return;
	}
	if (n == 10 && !strncmp(l, "WATCHDOG=1", 10)) {
		if (p->ready && p->active && h->watchdog_ms > 0) {
			p->stat.checks++;
			p->stat.last_at_ms = ai_now_ms();
			loop_timer_arm_in(&st->loop, &p->timer, (uint64_t)h->watchdog_ms);
		}
		return;
	}
	if (n == 16 && !strncmp(l, "WATCHDOG=trigger", 16)) {
		p->running = true;
		p->stat.streak = (unsigned)h->retries - 1;
		snprintf(text, sizeof text, "agent sent WATCHDOG=trigger");
		finish(st, p, false, text);
		return;
	}
	if (n > 6 && !strncmp(l, "ERRNO=", 6)) {
		snprintf(p->stat.status, sizeof p->stat.status, "ERRNO=%.*s", (int)(n - 6), l + 6);
		return;
	}
	/* STOPPING=1, RELOADING=1, MAINPID=, EXTEND_TIMEOUT_USEC=: accepted, not acted on */
}

static void on_notify(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct probe *p = src->data;
	(void)ev;
	for (int round = 0; round < 16; round++) {
		char buf[4096];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(struct ucred))];
		} cm;
		struct iovec iov = {buf, sizeof buf - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
				    .msg_controllen = sizeof cm};
		struct ucred *cr = NULL;
		ssize_t n = recvmsg(p->nfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
				cr = (struct ucred *)CMSG_DATA(c);
			else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				/* fd store is not supported: close what was passed */
				int *fds = (int *)CMSG_DATA(c);
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t j = 0; j < k; j++)
					close(fds[j]);
			}
		if (!cr || !sender_is_agent(p->a, cr->pid)) {
			if (p->ignored++ == 0)
				log_warn("probe", p->a->cfg->name,
					 "notify message from pid %d, which is not the agent; ignored",
					 cr ? (int)cr->pid : -1);
			continue;
		}
		buf[n] = 0;
		for (char *l = buf, *e; l < buf + n; l = e + 1) {
			e = memchr(l, '\n', (size_t)(buf + n - l));
			if (!e)
				e = buf + n;
			if (e > l)
				notify_line(st, p, l, (size_t)(e - l));
			if (!p->active)
				break;
		}
	}
}

static int notify_open(struct ai_state *st, struct probe *p, struct ai_err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int one = 1;
	AI_AUTOCLOSE int fd = -1;
	size_t pl;
	probe_notify_path(st->state_dir, p->a->notify_id, getpid(), p->npath, sizeof p->npath);
	pl = strlen(p->npath);
	memcpy(sa.sun_path, p->npath, pl);
	if (p->npath[0] == '@')
		sa.sun_path[0] = 0;
	else {
		char dir[128];
		snprintf(dir, sizeof dir, "%s/notify", st->state_dir);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return ai_fail(e, "probe", "mkdir", errno, "%s", dir);
		if (unlink(p->npath) < 0 && errno != ENOENT)
			return ai_fail(e, "probe", "unlink", errno, "%s", p->npath);
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + (p->npath[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ai_fail(e, "probe", "socket", errno, "%s: notify socket", p->a->cfg->name);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
		return ai_fail(e, "probe", "setsockopt(SO_PASSCRED)", errno, "%s", p->npath);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		return ai_fail(e, "probe", "bind", errno, "%s", p->npath);
	/* agents may run as any user; the sender check is by pid, not mode */
	if (p->npath[0] == '/' && chmod(p->npath, 0666) < 0)
		return ai_fail(e, "probe", "chmod", errno, "%s", p->npath);
	if (loop_add(&st->loop, &p->nsrc, fd, EPOLLIN, on_notify, p, e) < 0)
		return -EIO;
	p->nfd = ai_take_fd(&fd);
	return 0;
}

/* ---- schedule ---- */

static void start_check(struct ai_state *st, struct probe *p)
{
	const struct cfg_health *h = &p->a->cfg->health;
	p->running = true;
	p->t0_us = now_us();
	loop_timer_arm_in(&st->loop, &p->timer, h->timeout_ms > 0 ? (uint64_t)h->timeout_ms : 10000);
	switch (h->kind) {
	case HK_TCP: start_tcp(st, p); break;
	case HK_ZMQ:
		if (tab(st)->use_libzmq)
			start_zmq(st, p);
		else
			start_zmtp(st, p);
		break;
	case HK_EXEC: start_exec(st, p); break;
	default: p->running = false; break;
	}
}

static void on_probe_timer(struct ai_state *st, struct loop_timer *t)
{
	struct probe *p = t->data;
	const struct cfg_health *h = &p->a->cfg->health;
	char d[32];
	if (!p->active)
		return;
	ai_fmt_duration(d, sizeof d, (uint64_t)(h->kind == HK_NOTIFY && p->ready ? h->watchdog_ms
										 : h->timeout_ms));
	if (h->kind == HK_NOTIFY) {
		p->running = true;
		if (!p->ready) {
			char sp[32];
			ai_fmt_duration(sp, sizeof sp, (uint64_t)(h->start_period_ms > h->timeout_ms
									 ? h->start_period_ms
									 : h->timeout_ms));
			p->stat.streak = (unsigned)h->retries - 1;
			fail_fmt(st, p, "no READY=1 on %s within %s", p->npath, sp);
		} else {
			p->stat.streak = (unsigned)h->retries - 1;
			fail_fmt(st, p, "no WATCHDOG=1 within %s", d);
		}
		return;
	}
	if (!p->running) {
		start_check(st, p);
		return;
	}
	/* the check in flight ran out of time */
	if (h->kind == HK_TCP)
		fail_fmt(st, p, "connect %s: no answer within %s", p->target, d);
	else if (h->kind == HK_ZMQ)
		fail_fmt(st, p, p->zsent ? "sent health_check to %s, no reply within %s"
					 : "no connection to %s within %s (nothing listening?)",
			 p->target, d);
	else if (h->kind == HK_EXEC) {
		if (p->pid > 0)
			kill(-p->pid, SIGKILL); /* reaped later; output kept so far */
		exec_read(p);
		p->out[p->outlen] = 0;
		fail_fmt(st, p, "%s: killed after %s", p->target, d);
	}
}

void probe_on_state(struct ai_state *st, struct sup_agent *a)
{
	struct probe *p = probe_of(st, a);
	const struct cfg_health *h = &a->cfg->health;
	bool up = a->state == SUP_STARTING || a->state == SUP_HEALTHY || a->state == SUP_UNHEALTHY;
	if (!p || h->kind == HK_NONE)
		return;
	if (up && !p->active) {
		p->active = true;
		p->passed = p->ready = false;
		p->gap_ms = 0;
		p->stat.streak = 0;
		p->t0_us = now_us();
		if (h->kind == HK_NOTIFY) {
			int64_t w = h->start_period_ms > h->timeout_ms ? h->start_period_ms : h->timeout_ms;
			loop_timer_arm_in(&st->loop, &p->timer, (uint64_t)(w > 0 ? w : 10000));
		} else {
			p->gap_ms = FIRST_GAP_MS;
			loop_timer_arm_in(&st->loop, &p->timer, FIRST_GAP_MS);
		}
	} else if (!up && p->active) {
		p->active = false;
		loop_timer_disarm(&st->loop, &p->timer);
		abort_check(st, p);
	}
}

/* ---- remote dependencies ---- */

static void remote_sched(struct ai_state *st, struct probe_remote *r)
{
	if (r->ok)
		loop_timer_arm_in(&st->loop, &r->timer, REMOTE_INTERVAL_MS);
	else {
		r->gap_ms = r->gap_ms ? r->gap_ms * 2 : 200;
		if (r->gap_ms > REMOTE_GAP_MAX_MS)
			r->gap_ms = REMOTE_GAP_MAX_MS;
		loop_timer_arm_in(&st->loop, &r->timer, r->gap_ms);
	}
}

static void remote_done(struct ai_state *st, struct probe_remote *r, bool ok, const char *text)
{
	bool was = r->ok;
	r->running = false;
	close_src(st, &r->src, &r->fd);
	stat_record(&r->stat, ok, now_us() - r->t0_us, text);
	if (!ok)
		r->stat.streak++;
	r->ok = ok;
	remote_sched(st, r);
	if (ok != was) {
		if (ok)
			log_info("probe", r->name, "remote agent is healthy (%s)", r->target);
		else
			log_warn("probe", r->name, "remote agent is not healthy: %s", text);
	}
	if (ok && !was)
		sup_deps_changed(st);
}

static void on_remote_io(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct probe_remote *r = src->data;
	char msg[PROBE_TEXT];
	if (r->reqoff < r->reqlen) {
		int err = 0;
		socklen_t l = sizeof err;
		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err) {
			snprintf(msg, sizeof msg, "%s: connect %s: %s", r->host, r->target, strerror(err));
			remote_done(st, r, false, msg);
			return;
		}
		ssize_t n = send(r->fd, r->req + r->reqoff, r->reqlen - r->reqoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			snprintf(msg, sizeof msg, "%s: send to %s: %s", r->host, r->target, strerror(errno));
			remote_done(st, r, false, msg);
			return;
		}
		r->reqoff += (size_t)n;
		if (r->reqoff == r->reqlen)
			loop_mod(&st->loop, &r->src, EPOLLIN, NULL);
		return;
	}
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = recv(r->fd, r->resp + r->resplen, sizeof r->resp - 1 - r->resplen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n > 0) {
			r->resplen += (size_t)n;
			if (r->resplen < sizeof r->resp - 1)
				continue;
		}
		break;
	}
	r->resp[r->resplen] = 0;
	int code = 0;
	if (sscanf(r->resp, "HTTP/%*d.%*d %d", &code) != 1) {
		char ex[64];
		excerpt(ex, sizeof ex, r->resp, r->resplen < 40 ? r->resplen : 40);
		snprintf(msg, sizeof msg, "%s: %s answered no HTTP: \"%s\"", r->host, r->target, ex);
		remote_done(st, r, false, msg);
		return;
	}
	const char *body = strstr(r->resp, "\r\n\r\n");
	char why[PROBE_TEXT] = "";
	body = body ? body + 4 : "";
	probe_parse_reply(body, strlen(body), why, sizeof why);
	snprintf(msg, sizeof msg, "%s: ainit at %s: HTTP %d: %s", r->host, r->target, code, why);
	remote_done(st, r, code == 200, msg);
}

static void on_remote_timer(struct ai_state *st, struct loop_timer *t)
{
	struct probe_remote *r = t->data;
	struct ai_err e = {0};
	char msg[PROBE_TEXT];
	int err;
	if (r->running) {
		snprintf(msg, sizeof msg, "%s: %s: no answer within %ds (host down?)", r->host,
			 r->target, REMOTE_TIMEOUT_MS / 1000);
		remote_done(st, r, false, msg);
		return;
	}
	r->running = true;
	r->t0_us = now_us();
	r->reqoff = r->resplen = 0;
	loop_timer_arm_in(&st->loop, &r->timer, REMOTE_TIMEOUT_MS);
	r->fd = net_connect(&r->addr, r->alen, &err);
	if (r->fd < 0) {
		snprintf(msg, sizeof msg, "%s: connect %s: %s", r->host, r->target, strerror(err));
		remote_done(st, r, false, msg);
		return;
	}
	if (loop_add(&st->loop, &r->src, r->fd, EPOLLOUT, on_remote_io, r, &e) < 0) {
		close(r->fd);
		r->fd = -1;
		remote_done(st, r, false, "epoll_ctl failed");
	}
}

static struct probe_remote *remote_find(const struct probe_tab *t, const char *name)
{
	for (int i = 0; t && i < t->nr; i++)
		if (!strcmp(t->r[i].name, name))
			return &t->r[i];
	return NULL;
}

bool probe_remote_ready(struct ai_state *st, const struct cfg_dep *d)
{
	struct probe_remote *r = remote_find(tab(st), d->name);
	return r && r->ok;
}

const char *probe_remote_reason(const struct ai_state *st, const char *name)
{
	struct probe_remote *r = remote_find(tab(st), name);
	if (!r)
		return NULL;
	if (!r->usable || r->stat.have_last)
		return r->stat.last[0] ? r->stat.last : NULL;
	return "not probed yet";
}

static void remote_add(struct ai_state *st, struct probe_tab *t, const struct cfg_dep *d)
{
	const struct ai_config *c = st->cfg;
	struct probe_remote *r;
	char host[96];
	int port = PROBE_REMOTE_PORT;
	const char *addr = NULL;
	if (d->kind != DEP_REMOTE || remote_find(t, d->name))
		return;
	r = &t->r[t->nr++];
	r->name = d->name;
	r->host = d->host;
	r->agent = d->target;
	r->fd = -1;
	for (int i = 0; i < c->app.hosts.n; i++)
		if (!strcmp(c->app.hosts.v[i].key, d->host))
			addr = c->app.hosts.v[i].value;
	if (!addr) {
		snprintf(r->stat.last, sizeof r->stat.last,
			 "host \"%s\" is not in appliance.hosts: cannot reach it", d->host);
		log_err("probe", d->name, "%s", r->stat.last);
		return;
	}
	if (probe_parse_hostport(addr, host, sizeof host, &port, PROBE_REMOTE_PORT) < 0 ||
	    resolve(host, port, &r->addr, &r->alen) < 0) {
		snprintf(r->stat.last, sizeof r->stat.last,
			 "appliance.hosts.%s: \"%s\" is not an address (ADDR or ADDR:PORT) that resolves",
			 d->host, addr);
		log_err("probe", d->name, "%s", r->stat.last);
		return;
	}
	snprintf(r->target, sizeof r->target, "%s%.80s%s:%d", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	r->reqlen = (size_t)snprintf(r->req, sizeof r->req,
				     "GET /health/%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: ainit\r\n\r\n",
				     d->target, host);
	r->usable = true;
}

/* ---- setup ---- */

int probe_init(struct ai_state *st, struct ai_err *e)
{
	const struct ai_config *c = st->cfg;
	struct probe_tab *t;
	int nremote = 0;
	if (!c)
		return 0;
	t = calloc(1, sizeof *t);
	if (!t)
		return ai_fail(e, "probe", "calloc", ENOMEM, "probe table");
	st->probes = t;
	t->n = st->nagents;
	{
		const char *z = getenv("AINIT_ZMQ_PROBE");
		t->use_libzmq = z && !strcmp(z, "libzmq");
	}
	t->p = calloc((size_t)t->n + 1, sizeof *t->p);
	for (int g = 0; g < c->ngroups; g++)
		nremote += c->groups[g].deps.n;
	for (int i = 0; i < c->nagents; i++)
		nremote += c->agents[i].deps.n;
	t->r = calloc((size_t)nremote + 1, sizeof *t->r);
	if (!t->p || !t->r)
		return ai_fail(e, "probe", "calloc", ENOMEM, "probe table");
	for (int i = 0; i < t->n; i++) {
		struct probe *p = &t->p[i];
		const struct cfg_health *h;
		p->a = &st->agents[i];
		h = &p->a->cfg->health;
		p->fd = p->zfd = p->pidfd = p->outfd = p->execfd = p->nfd = -1;
		if (h->kind == HK_NONE)
			continue;
		if (loop_timer_register(&st->loop, &p->timer, on_probe_timer, p, e) < 0)
			return -ENOMEM;
		switch (h->kind) {
		case HK_TCP:
		case HK_ZMQ: {
			const char *host = h->host ? h->host : "127.0.0.1";
			snprintf(p->target, sizeof p->target, "%s%s%s:%d", strchr(host, ':') ? "[" : "",
				 host, strchr(host, ':') ? "]" : "", h->port);
			if (h->kind == HK_ZMQ && t->use_libzmq)
				t->zwanted = true;
			else if (resolve(host, h->port, &p->addr, &p->alen) < 0)
				log_err("probe", p->a->cfg->name, "cannot resolve health.host %s", host);
			break;
		}
		case HK_EXEC: {
			size_t o = 0;
			for (int k = 0; k < h->exec.n && o < sizeof p->target - 1; k++)
				o += (size_t)snprintf(p->target + o, sizeof p->target - o, "%s%s",
						      k ? " " : "", h->exec.v[k]);
			break;
		}
		case HK_NOTIFY:
			if (notify_open(st, p, e) < 0)
				return -EIO;
			snprintf(p->target, sizeof p->target, "%s", p->npath);
			break;
		default:
			break;
		}
	}
	for (int g = 0; g < c->ngroups; g++)
		for (int k = 0; k < c->groups[g].deps.n; k++)
			remote_add(st, t, &c->groups[g].deps.v[k]);
	for (int i = 0; i < c->nagents; i++)
		for (int k = 0; k < c->agents[i].deps.n; k++)
			remote_add(st, t, &c->agents[i].deps.v[k]);
	for (int i = 0; i < t->nr; i++) {
		struct probe_remote *r = &t->r[i];
		if (loop_timer_register(&st->loop, &r->timer, on_remote_timer, r, e) < 0)
			return -ENOMEM;
		if (r->usable)
			loop_timer_arm_in(&st->loop, &r->timer, 0);
	}
	/* libzmq costs ~2 ms and 18 libraries to load: only when needed, and
	 * now, at load, rather than inside the first check */
	if (t->zwanted && zmq_load(t) < 0)
		log_err("probe", NULL, "%s; zmq health checks will fail", t->zerr);
	return 0;
}

static void tab_fini(struct ai_state *st, struct probe_tab *t)
{
	for (int i = 0; t->p && i < t->n; i++) {
		struct probe *p = &t->p[i];
		p->active = false;
		abort_check(st, p);
		exec_cleanup(st, p);
		close_src(st, &p->nsrc, &p->nfd);
		if (p->npath[0] == '/')
			unlink(p->npath);
		if (p->timer.cb)
			loop_timer_unregister(&st->loop, &p->timer);
	}
	for (int i = 0; t->r && i < t->nr; i++) {
		close_src(st, &t->r[i].src, &t->r[i].fd);
		loop_timer_unregister(&st->loop, &t->r[i].timer);
	}
}

static void tab_free(struct probe_tab *t)
{
	if (t->zok) {
		t->z.ctx_term(t->z.ctx);
		/* libzmq stays mapped: its threads are gone, unloading buys nothing */
	}
	free(t->p);
	free(t->r);
	free(t);
}

void probe_fini(struct ai_state *st)
{
	struct probe_tab *t = tab(st);
	if (!t)
		return;
	tab_fini(st, t);
	tab_free(t);
	st->probes = NULL;
}

struct probe_tab *probe_detach(struct ai_state *st)
{
	struct probe_tab *t = st->probes;
	st->probes = NULL;
	return t;
}

/* What an agent's probe keeps across a reload. */
struct probe_keep {
	bool active, passed, ready, armed, was_running;
	uint64_t gap_ms, when_ms, ignored;
	struct probe_stat stat;
};

static void keep_take(const struct probe *q, struct probe_keep *k)
{
	k->active = q->active;
	k->passed = q->passed;
	k->ready = q->ready;
	k->was_running = q->running;
	k->armed = q->timer.armed;
	k->when_ms = q->timer.when_ms;
	k->gap_ms = q->gap_ms;
	k->ignored = q->ignored;
	k->stat = q->stat;
}

static void keep_give(struct ai_state *st, struct probe *p, const struct probe_keep *k)
{
	const struct cfg_health *h = &p->a->cfg->health;
	p->stat = k->stat;
	p->passed = k->passed;
	p->ready = k->ready;
	p->ignored = k->ignored;
	p->gap_ms = k->gap_ms;
	if (!k->active || h->kind == HK_NONE)
		return;
	p->active = true;
	p->t0_us = now_us();
	/* a check that was in flight starts again now; a waiting one keeps
	 * its time (notify: its READY or watchdog deadline) */
	if (k->was_running && h->kind != HK_NOTIFY)
		loop_timer_arm_in(&st->loop, &p->timer, 0);
	else if (k->armed)
		loop_timer_arm(&st->loop, &p->timer, k->when_ms);
}

static void remotes_keep(struct probe_tab *t, const struct probe_tab *old)
{
	for (int i = 0; i < t->nr; i++) {
		const struct probe_remote *q = remote_find(old, t->r[i].name);
		if (q && t->r[i].usable && !strcmp(q->target, t->r[i].target)) {
			t->r[i].ok = q->ok;
			t->r[i].stat = q->stat;
		}
	}
}

int probe_reload(struct ai_state *st, struct probe_tab *old, const int *carry, struct ai_err *e)
{
	struct probe_keep *k = calloc((size_t)st->nagents + 1, sizeof *k);
	int r;
	if (old) {
		for (int i = 0; k && i < st->nagents; i++)
			if (carry[i] >= 0 && carry[i] < old->n)
				keep_take(&old->p[carry[i]], &k[i]);
		/* ends the old checks and frees the notify paths for the new
		 * table (its helpers find the table through st) */
		st->probes = old;
		tab_fini(st, old);
		st->probes = NULL;
	}
	r = probe_init(st, e);
	if (st->probes && k)
		for (int i = 0; i < st->nagents; i++)
			if (carry[i] >= 0)
				keep_give(st, &st->probes->p[i], &k[i]);
	if (st->probes && old)
		remotes_keep(st->probes, old);
	if (old)
		tab_free(old);
	free(k);
	if (!k && r == 0)
		return ai_fail(e, "probe", "calloc", ENOMEM, "reload: probe results start afresh");
	return r;
}

/* ---- reporting ---- */

const struct probe_stat *probe_stat_of(const struct ai_state *st, int agent_idx)
{
	const struct probe_tab *t = tab(st);
	if (!t || agent_idx < 0 || agent_idx >= t->n ||
	    t->p[agent_idx].a->cfg->health.kind == HK_NONE)
		return NULL;
	return &t->p[agent_idx].stat;
}

static void put_stat(struct jw *w, const struct probe_stat *s, uint64_t now)
{
	jw_kint(w, "checks", (long long)s->checks);
	jw_kint(w, "failures", (long long)s->failures);
	jw_kint(w, "failing_streak", s->streak);
	if (s->have_last) {
		jw_kbool(w, "last_ok", s->last_ok);
		jw_kint(w, "last_ago_ms", (long long)(now - s->last_at_ms));
		jw_kint(w, "last_latency_us", (long long)s->last_us);
		jw_kint(w, "avg_latency_us", s->checks ? (long long)(s->sum_us / s->checks) : 0);
	}
	jw_kstr(w, "last", s->last[0] ? s->last : NULL);
}

void probe_put_json(const struct ai_state *st, int agent_idx, struct jw *w)
{
	const struct probe_tab *t = tab(st);
	const struct ai_config *c = st->cfg;
	const struct cfg_agent *ca = &c->agents[agent_idx];
	const struct cfg_health *h = &ca->health;
	uint64_t now = ai_now_ms();
	jw_kstr(w, "kind", h->kind == HK_NONE ? "none" : cfg_health_kind_name(h->kind));
	if (t && h->kind != HK_NONE) {
		const struct probe *p = &t->p[agent_idx];
		jw_kstr(w, "target", p->target);
		jw_kint(w, "interval_ms", h->interval_ms);
		jw_kint(w, "timeout_ms", h->timeout_ms);
		jw_kint(w, "retries", h->retries);
		jw_kint(w, "start_period_ms", h->start_period_ms);
		jw_kint(w, "start_interval_ms", h->start_interval_ms);
		if (h->kind == HK_NOTIFY) {
			jw_kint(w, "watchdog_ms", h->watchdog_ms);
			jw_kbool(w, "ready", p->ready);
			jw_kstr(w, "status_text", p->stat.status[0] ? p->stat.status : NULL);
			jw_kint(w, "ignored_senders", (long long)p->ignored);
		}
		jw_kbool(w, "active", p->active);
		jw_kbool(w, "in_flight", p->running);
		if (p->timer.armed)
			jw_kint(w, "next_in_ms",
				p->timer.when_ms > now ? (long long)(p->timer.when_ms - now) : 0);
		put_stat(w, &p->stat, now);
	}
	/* remote dependencies of the agent and of its group */
	jw_key(w, "remote");
	jw_arr_begin(w);
	for (int l = 0; l < 2; l++) {
		const struct cfg_deps *ds = l ? &c->groups[ca->group].deps : &ca->deps;
		for (int k = 0; k < ds->n; k++) {
			const struct probe_remote *r;
			if (ds->v[k].kind != DEP_REMOTE || !(r = remote_find(t, ds->v[k].name)))
				continue;
			jw_obj_begin(w);
			jw_kstr(w, "name", r->name);
			jw_kstr(w, "target", r->target[0] ? r->target : NULL);
			jw_kbool(w, "healthy", r->ok);
			put_stat(w, &r->stat, now);
			jw_obj_end(w);
		}
	}
	jw_arr_end(w);
}
