/* libagent: the legacy agents' health protocol and sd_notify, for agents
 * written in C (stub-agent, registry, gpu-probe).
 *
 * Owns: one ZMQ context, the REP socket on the health port and, where the
 * agent wants it, a REP socket on the service port. The health socket
 * answers "health_check" (or a JSON request {"action":"health_check"}) with
 * one JSON object: {"status":"ok","agent":NAME,"uptime_s":N,...}.
 * Never touches ainit: agents MAY link libzmq, ainit must not.
 *
 * The environment ainit gives every agent sets the defaults:
 *   AINIT_AGENT, AINIT_GROUP, AGENT_PORT, HEALTH_CHECK_PORT, ZMQ_BIND_IP,
 *   NOTIFY_SOCKET (only for agents with `health: {notify: true}`).
 */
#ifndef AGENT_H
#define AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How the health socket answers; the non-OK modes exist for tests. */
enum agent_health_mode {
	AH_OK,      /* {"status":"ok",...} */
	AH_BAD,     /* {"status":"error",...}: valid JSON, not healthy */
	AH_JUNK,    /* bytes that are not JSON */
	AH_SILENT,  /* receive the request, never reply */
};

struct agent {
	const char *name, *group, *bind_ip;
	int port, health_port;           /* 0 = none */
	void *zctx, *health, *service;   /* zmq context and sockets */
	uint64_t started_ms;
	enum agent_health_mode mode;
	const char *status;              /* "ok" unless the agent says otherwise */
	char extra[512];                 /* more JSON members: "\"k\":v,..." or "" */
	unsigned long health_requests;
	int wake_fd;                     /* readable = stop waiting (agent_signals) */
};

/* Fill *a from the environment; default_name when AINIT_AGENT is unset. */
void agent_init(struct agent *a, const char *default_name);
/* Bind the health REP socket (port health_port) and, when service is true,
 * a REP socket on port. Returns 0 or -1 with a message on stderr that names
 * the endpoint and the reason (a port another agent holds, ...). */
int agent_bind(struct agent *a, bool service);
/* Wait up to timeout_ms (-1 forever) for requests; answer health checks.
 * A request on the service socket is passed to on_service, whose reply (a
 * string) is sent back. Returns 0, or -1 when interrupted by a signal. */
typedef const char *(*agent_service_cb)(struct agent *a, const char *req, size_t len,
					  char *reply, size_t cap);
int agent_poll(struct agent *a, int timeout_ms, agent_service_cb on_service);
void agent_close(struct agent *a);
/* Catch SIGTERM/SIGINT: the handler sets *flag and wakes agent_poll through
 * a self-pipe, so a signal that lands just before the poll is not lost. */
int agent_signals(struct agent *a, volatile sig_atomic_t *flag);

/* The health reply for the current state, into buf; returns its length. */
size_t agent_health_reply(const struct agent *a, char *buf, size_t cap);

/* sd_notify(3): send STATE ("READY=1", "STATUS=...", "WATCHDOG=1") to
 * $NOTIFY_SOCKET. Returns 1 when sent, 0 when no socket is set, -1 on error. */
int agent_notify(const char *state);
/* Watchdog interval from $WATCHDOG_USEC in ms, 0 when not asked for. */
uint64_t agent_watchdog_ms(void);

/* Small helpers shared by the agents. */
uint64_t agent_now_ms(void);
/* "200ms", "3s", "1.5", plain number = seconds; -1 when unparseable. */
int64_t agent_parse_ms(const char *s);
/* The string value of top-level key in a flat JSON object, unescaped into
 * out; false when absent or not a string. */
bool agent_json_str(const char *json, const char *key, char *out, size_t cap);

#endif
