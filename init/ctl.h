/* ctl: the control socket's server side and its wire format.
 *
 * Wire: one JSON object per line each way. Request: {"cmd":"status", ...}.
 * Reply: {"v":CTL_VERSION,"ok":true,...} or {"v":..,"error":"..."}.
 * Peers are identified by SO_PEERCRED: anyone who can connect may read; only
 * uid 0 (or the admin group) may change state. A request line is bounded by
 * CTL_MAX_REQ; longer, malformed or unknown requests get an error reply and
 * never harm the supervisor. Client slots and buffers are sized at start;
 * nothing is allocated per request.
 *
 * Version history: 1 = status, start, stop, restart, poweroff, reboot, ping;
 *   then, additively (old clients unaffected): health, logs (with follow:
 *   further {"log": LINE} objects until the client leaves), events (then
 *   {"event": {t_ms, agent, group, from, to, pid, reason, waiting_for}} per
 *   state change until the client leaves), reload (admin; the diff it
 *   applied: added, removed, restarted with the key that changed, unchanged,
 *   needs_reboot; or an error with the new config's "diagnostics").
 */
#ifndef AINIT_CTL_H
#define AINIT_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "loop.h"

#define CTL_VERSION 1
#define CTL_MAX_REQ 16384
#define CTL_MAX_REPLY (256 * 1024)
#define CTL_MAX_CLIENTS 16
#define CTL_IDLE_MS 30000

struct ai_state;

struct ctl_client {
	struct loop_src src;
	struct loop_timer idle;  /* a client that never finishes a line is dropped */
	int fd;
	bool admin;
	bool skipping;           /* discarding the rest of an oversized line */
	size_t inlen;
	char *in;                /* CTL_MAX_REQ + 1 */
	char *out;               /* CTL_MAX_REPLY */
	size_t outlen, outoff;
	int follow;              /* agent index whose log lines are pushed, -1 */
	bool events;             /* state changes are pushed ({"event": ...}) */
	unsigned long follow_dropped; /* lines not sent: the client read too slowly */
};

struct ctl_server {
	int lfd;
	struct loop_src lsrc;
	gid_t admin_gid;         /* (gid_t)-1 = only root */
	struct ctl_client *clients;
	char *scratch;           /* CTL_MAX_REPLY / 2: text gathered for a reply */
	char path[108];
};

int ctl_open(struct ai_state *st, const char *path, const char *admin_group,
	     struct ai_err *e);
void ctl_close(struct ai_state *st);

/* Handle one request line; write one reply line (with '\n') into out and
 * return its length. `admin` says whether the peer may change state. Used by
 * the socket server and by any other transport (the virtio-serial port). */
size_t ctl_handle_line(struct ai_state *st, const char *line, size_t len,
		       bool admin, char *out, size_t cap);

struct sup_agent;
/* A new log line of an agent: pushed to the clients that follow it. */
void ctl_log_line(struct ai_state *st, const struct sup_agent *a, const char *line, size_t n);
/* Reload: followers of old agent j follow new_of_old[j]; the followers of
 * an agent that is gone are let go (their stream ends). */
void ctl_follow_remap(struct ai_state *st, const int *new_of_old, int nold);
/* An agent changed state (enum sup_state values): pushed to `events` clients. */
void ctl_agent_event(struct ai_state *st, const struct sup_agent *a, int from, int to);

#endif
