#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

uint64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t agent_parse_ms(const char *s)
{
	char *end;
	double v;
	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		return (int64_t)v;
	if (!*end || !strcmp(end, "s"))
		return (int64_t)(v * 1000);
	if (!strcmp(end, "m"))
		return (int64_t)(v * 60000);
	return -1;
}

static int env_port(const char *var)
{
	const char *s = getenv(var);
	long v = s ? strtol(s, NULL, 10) : 0;
	return v > 0 && v < 65536 ? (int)v : 0;
}

static volatile sig_atomic_t *sig_flag;
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	(void)sig;
	if (sig_flag)
		*sig_flag = 1;
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], "x", 1) < 0) {
		/* full pipe: a wakeup is pending anyway */
	}
	errno = saved;
}

int agent_signals(struct agent *a, volatile sig_atomic_t *flag)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sig_flag = flag;
	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	a->wake_fd = sig_pipe[0];
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return 0;
}

void agent_init(struct agent *a, const char *default_name)
{
	const char *s;
	memset(a, 0, sizeof *a);
	a->wake_fd = -1;
	a->name = (s = getenv("AINIT_AGENT")) && *s ? s : default_name;
	a->group = (s = getenv("AINIT_GROUP")) && *s ? s : "";
	a->bind_ip = (s = getenv("ZMQ_BIND_IP")) && *s ? s : "0.0.0.0";
	a->port = env_port("AGENT_PORT");
	a->health_port = env_port("HEALTH_CHECK_PORT");
	a->started_ms = agent_now_ms();
	a->status = "ok";
}

static void *bind_rep(struct agent *a, int port, const char *what)
{
	char ep[128];
	int zero = 0;
	void *s = zmq_socket(a->zctx, ZMQ_REP);
	if (!s) {
		fprintf(stderr, "%s: zmq_socket (%s): %s\n", a->name, what, zmq_strerror(zmq_errno()));
		return NULL;
	}
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
	snprintf(ep, sizeof ep, "tcp://%s:%d", a->bind_ip, port);
	if (zmq_bind(s, ep) < 0) {
		fprintf(stderr, "%s: bind %s port %s: %s\n", a->name, what, ep,
			zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
}

int agent_bind(struct agent *a, bool service)
{
	if (!a->zctx && !(a->zctx = zmq_ctx_new())) {
		fprintf(stderr, "%s: zmq_ctx_new: %s\n", a->name, zmq_strerror(zmq_errno()));
		return -1;
	}
	if (a->health_port && !(a->health = bind_rep(a, a->health_port, "health")))
		return -1;
	if (service && a->port && !(a->service = bind_rep(a, a->port, "service")))
		return -1;
	return 0;
}

void agent_close(struct agent *a)
{
	if (a->health)
		zmq_close(a->health);
	if (a->service)
		zmq_close(a->service);
	if (a->zctx)
		zmq_ctx_term(a->zctx);
	a->health = a->service = a->zctx = NULL;
}

size_t agent_health_reply(const struct agent *a, char *buf, size_t cap)
{
	int n;
	uint64_t up = (agent_now_ms() - a->started_ms) / 1000;
	switch (a->mode) {
	case AH_JUNK:
		n = snprintf(buf, cap, "\x01not json {{{ status=ok");
		break;
	case AH_BAD:
		n = snprintf(buf, cap, "{\"status\":\"error\",\"agent\":\"%s\",\"error\":\"stub says unhealthy\"}",
			     a->name);
		break;
	default:
		n = snprintf(buf, cap,
			     "{\"status\":\"%s\",\"agent\":\"%s\",\"group\":\"%s\",\"port\":%d,"
			     "\"uptime_s\":%llu,\"pid\":%d%s%s}",
			     a->status, a->name, a->group, a->port, (unsigned long long)up,
			     (int)getpid(), a->extra[0] ? "," : "", a->extra);
	}
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static int recv_msg(void *s, char *buf, size_t cap, size_t *len)
{
	int n = zmq_recv(s, buf, cap - 1, ZMQ_DONTWAIT);
	if (n < 0)
		return -1;
	/* zmq_recv truncates and returns the full size */
	*len = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
	buf[*len] = 0;
	return 0;
}

int agent_poll(struct agent *a, int timeout_ms, agent_service_cb on_service)
{
	zmq_pollitem_t items[3];
	int n = 0, hi = -1, si = -1, wi = -1;
	char req[4096], rep[4096];
	size_t len;
	if (a->health)
		items[hi = n++] = (zmq_pollitem_t){.socket = a->health, .events = ZMQ_POLLIN};
	if (a->service)
		items[si = n++] = (zmq_pollitem_t){.socket = a->service, .events = ZMQ_POLLIN};
	if (a->wake_fd >= 0)
		items[wi = n++] = (zmq_pollitem_t){.fd = a->wake_fd, .events = ZMQ_POLLIN};
	if (zmq_poll(items, n, timeout_ms) < 0)
		return zmq_errno() == EINTR ? -1 : 0;
	if (wi >= 0 && (items[wi].revents & ZMQ_POLLIN)) {
		char junk[16];
		while (read(a->wake_fd, junk, sizeof junk) > 0)
			;
		return -1;
	}
	if (hi >= 0 && (items[hi].revents & ZMQ_POLLIN) && !recv_msg(a->health, req, sizeof req, &len)) {
		a->health_requests++;
		if (a->mode != AH_SILENT) {
			size_t m = agent_health_reply(a, rep, sizeof rep);
			zmq_send(a->health, rep, m, 0);
		}
	}
	if (si >= 0 && (items[si].revents & ZMQ_POLLIN) && !recv_msg(a->service, req, sizeof req, &len)) {
		const char *r = on_service ? on_service(a, req, len, rep, sizeof rep) : NULL;
		if (!r) {
			snprintf(rep, sizeof rep, "{\"status\":\"ok\",\"agent\":\"%s\",\"echo\":%zu}",
				 a->name, len);
			r = rep;
		}
		zmq_send(a->service, r, strlen(r), 0);
	}
	return 0;
}

int agent_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t salen;
	size_t plen;
	int fd;
	ssize_t w;
	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace, as systemd allows */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	close(fd);
	return w < 0 ? -1 : 1;
}

uint64_t agent_watchdog_ms(void)
{
	const char *s = getenv("WATCHDOG_USEC");
	unsigned long long v = s ? strtoull(s, NULL, 10) : 0;
	return v / 1000;
}

/* A minimal reader for flat JSON objects: enough for requests and replies
 * the agents exchange; nested values are skipped, not interpreted. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Parse a string at p ('"'); unescaped into out (may be NULL). */
static const char *read_str(const char *p, char *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		char c = *p++;
		if (c == '\\') {
			c = *p++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				for (int i = 0; i < 4; i++)
					if (!*p++)
						return NULL;
				c = '?';
				break;
			case 0: return NULL;
			default: break;
			}
		}
		if (out && n + 1 < cap)
			out[n] = c;
		n++;
	}
	if (*p != '"')
		return NULL;
	if (out && cap)
		out[n < cap ? n : cap - 1] = 0;
	if (outlen)
		*outlen = n;
	return p + 1;
}

static const char *skip_value(const char *p)
{
	int depth = 0;
	for (;;) {
		if (*p == '"') {
			if (!(p = read_str(p, NULL, 0, NULL)))
				return NULL;
			continue;
		}
		if (!*p)
			return NULL;
		if (depth == 0 && (*p == ',' || *p == '}' || *p == ']'))
			return p;
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	}
}

bool agent_json_str(const char *json, const char *key, char *out, size_t cap)
{
	char k[128];
	const char *p = skip_ws(json);
	if (*p++ != '{')
		return false;
	for (;;) {
		p = skip_ws(p);
		if (*p == '}')
			return false;
		if (!(p = read_str(p, k, sizeof k, NULL)))
			return false;
		p = skip_ws(p);
		if (*p++ != ':')
			return false;
		p = skip_ws(p);
		if (!strcmp(k, key))
			return *p == '"' && read_str(p, out, cap, NULL) != NULL;
		if (!(p = skip_value(p)))
			return false;
		p = skip_ws(p);
		if (*p == ',')
			p++;
		else
			return false;
	}
}
