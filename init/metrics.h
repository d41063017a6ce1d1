/* metrics: a small HTTP/1.0 server in the loop on appliance.metrics.listen.
 *
 *   GET /metrics        Prometheus text (version 0.0.4): per agent up,
 *                       healthy, state, restarts, health-check counts and
 *                       latency; per group memory, cpu and pids from its
 *                       cgroup files when the group has a cgroup; ainit's
 *                       own wakeups and RSS.
 *   GET /health/AGENT   200 {"status":"ok",...} when AGENT is healthy, 503
 *                       with its state otherwise, 404 when unknown: what a
 *                       remote ainit's HOST:AGENT dependency asks (probe.c).
 *
 * Owns: the listening socket and MET_MAX_CLIENTS client slots with their
 * buffers, all allocated at met_init. Requests and replies are bounded; a
 * slow or silent client is dropped at MET_IDLE_MS and never blocks the
 * loop. Never forks.
 */
#ifndef AINIT_METRICS_H
#define AINIT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MET_MAX_CLIENTS 4
#define MET_MAX_REQ 2048
#define MET_IDLE_MS 5000

struct ai_state;

/* One agent's figures, gathered from the state for the text writer. */
struct met_agent {
	const char *name, *group, *state;
	bool up, healthy;
	unsigned restarts;
	bool probed;               /* has a health check */
	uint64_t checks, failures, last_us, sum_us;
};

struct met_group {
	const char *name;
	int64_t mem_bytes, pids, cpu_usec; /* -1 = unknown */
};

/* Buffer writer: overflow is remembered, nothing written past cap. */
struct met_buf {
	char *p;
	size_t cap, len;
	bool overflow;
};

/* Pure, unit-tested: the Prometheus text for these figures. */
void met_format(struct met_buf *b, const struct met_agent *a, int na, const struct met_group *g,
		int ng, uint64_t wakeups, uint64_t rss_bytes);
/* Pure: label value escaping (\\, \", \n) into out. */
void met_escape(char *out, size_t cap, const char *s);
/* Pure: "GET /path HTTP/1.x" -> path into out; false when not a GET. */
bool met_parse_request(const char *req, size_t len, char *path, size_t cap);

int met_init(struct ai_state *st, struct ai_err *e);
void met_fini(struct ai_state *st);

/* Reload: tables and reply buffers sized for st's new agents and groups
 * (replies in flight keep their bytes). */
int met_resize(struct ai_state *st, struct ai_err *e);

#endif
