/* probe: health checks, every one non-blocking inside the one loop.
 *
 *   tcp     non-blocking connect to host:port; healthy when it connects
 *   zmq     a ZMTP 3.0 REQ exchange spoken directly on a non-blocking TCP
 *           socket (greetings, NULL READY, [""]["health_check"]); healthy
 *           when the JSON reply's "status" is "ok" or "healthy". One
 *           connection per check, so no REQ state survives a failure.
 *           With AINIT_ZMQ_PROBE=libzmq in ainit's environment the same
 *           exchange goes through libzmq instead, dlopen'd at load (never
 *           linked, DESIGN §11a) and driven through ZMQ_FD in epoll; its
 *           socket stays connected between passing checks and is made
 *           anew after a failure. Why native is the default:
 *           docs/architecture.md (RSS, threads, start-up cost).
 *   exec    the command, spawned like the agent (same env, cwd, session);
 *           healthy on exit 0, killed at the timeout
 *   notify  sd_notify on a per-agent datagram socket (NOTIFY_SOCKET) with
 *           SO_PASSCRED: READY=1 passes, STATUS= is kept, WATCHDOG=1 must
 *           come within health.watchdog; senders other than the agent's
 *           process or its session are ignored
 * Remote dependencies HOST:AGENT ask the remote ainit's metrics listener
 * (GET /health/AGENT at appliance.hosts' address, port 9400 unless given
 * as ADDR:PORT) until it answers 200, then keep checking at the interval.
 *
 * Schedule: while an agent is starting, checks run 50 ms after start and
 * then at doubling gaps up to health.start_interval; failures inside
 * start_period do not count. Once healthy, one check per interval. After
 * `retries` failures in a row supervise.c hears "fail"; passes are reported
 * while the agent is not healthy. An idle appliance wakes only for these.
 *
 * Owns: probe state (sized at probe_init, nothing allocated afterwards but
 * libzmq's own sockets), the notify sockets. Never blocks, never waits for
 * a child; exec probes are reaped through probe_on_reaped or their pidfd.
 */
#ifndef AINIT_PROBE_H
#define AINIT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct ai_state;
struct sup_agent;
struct cfg_dep;
struct jw;

#define PROBE_REMOTE_PORT 9400
#define PROBE_TEXT 200

/* What ctl health and metrics show for one agent or remote target. */
struct probe_stat {
	uint64_t checks, failures;
	unsigned streak;          /* failures in a row */
	bool have_last, last_ok;
	uint64_t last_at_ms;      /* CLOCK_MONOTONIC ms of the last result */
	uint64_t last_us;         /* latency of the last check */
	uint64_t sum_us;          /* sum over all checks, for an average */
	char last[PROBE_TEXT];    /* reply, output or reason */
	char status[96];          /* notify: last STATUS= */
};

int probe_init(struct ai_state *st, struct ai_err *e);
void probe_fini(struct ai_state *st);

/* supervise.c calls this on every state change of an agent. */
void probe_on_state(struct ai_state *st, struct sup_agent *a);
/* Is remote dependency d healthy (as last probed)? */
bool probe_remote_ready(struct ai_state *st, const struct cfg_dep *d);
/* A reaped child that may be an exec probe; true when it was. */
bool probe_on_reaped(struct ai_state *st, pid_t pid, int status);
/* NOTIFY_SOCKET for agent idx: under the state dir when absolute and
 * short enough, else an abstract name. Pure. */
void probe_notify_path(const char *state_dir, int idx, pid_t self, char *buf, size_t n);

/* Reload (reload.c): take the probe table away from st (still working,
 * nothing closed), then build the table of st's new agents and end the old
 * one: agent i with carry[i] >= 0 keeps that old agent's results, schedule,
 * readiness and notify socket path (its check in flight is restarted);
 * remote dependencies keep their last result by name. */
struct probe_tab *probe_detach(struct ai_state *st);
int probe_reload(struct ai_state *st, struct probe_tab *old, const int *carry,
		 struct ai_err *e);

const struct probe_stat *probe_stat_of(const struct ai_state *st, int agent_idx);
/* For ctl health: the agent's probe (kind, target, schedule, results) and
 * its remote dependencies, as JSON members. */
void probe_put_json(const struct ai_state *st, int agent_idx, struct jw *w);
/* Reason text of remote dependency `name`, or NULL. */
const char *probe_remote_reason(const struct ai_state *st, const char *name);

/* Pure, unit-tested: is a legacy health reply healthy? why gets a short
 * explanation either way. */
bool probe_parse_reply(const char *buf, size_t len, char *why, size_t cap);
/* Pure, unit-tested: the bytes a ZMTP 3.0 REQ client sends: its 64-byte
 * greeting, then (after the peer's) READY and the health_check request;
 * 0 when cap is too small. */
size_t probe_zmtp_greeting(uint8_t *out, size_t cap);
size_t probe_zmtp_request(uint8_t *out, size_t cap);
/* Parse what a REP peer sent so far: 1 = reply body found (*body points
 * into b), 0 = need more bytes, -1 = protocol error explained in err. */
int probe_zmtp_parse(const uint8_t *b, size_t len, const char **body, size_t *bodylen,
		     char *err, size_t errcap);
/* Parse "ADDR", "ADDR:PORT", "[V6]:PORT"; 0 or -EINVAL. */
int probe_parse_hostport(const char *s, char *host, size_t hcap, int *port, int dflt);
/* Gap before the next check while starting: 50 ms doubling to cap. */
uint64_t probe_start_gap(uint64_t prev, uint64_t cap);

#endif
