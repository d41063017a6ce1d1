/* logcap: each agent's stdout and stderr. One pipe per stream per agent,
 * made once at start: the read end sits in the loop (non-blocking, bounded
 * work per wakeup), the write end is given to every run of the agent. Lines
 * are time-stamped into a per-agent ring buffer (`ctl logs` reads it) and
 * appended to <state-dir>/logs/<agent>.log, rotated by size under a global
 * budget. A chatty agent fills its own pipe and waits; it never blocks the
 * supervisor or another agent.
 *
 * Memory follows use, since ~100 mostly quiet agents are the normal case:
 * the ring starts at LOGCAP_RING_MIN and doubles up to LOGCAP_RING as lines
 * arrive, and a stream holds a line buffer only while a line is unfinished
 * (reads go through a buffer on the stack).
 */
#ifndef AINIT_LOGCAP_H
#define AINIT_LOGCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"

#define LOGCAP_RING (16 * 1024)       /* per agent, in memory, at most */
#define LOGCAP_RING_MIN 512           /* what a ring starts with */
#define LOGCAP_LINE 4096              /* longer lines are split */
#define LOGCAP_BUDGET (256ull << 20)  /* all log files together */
#define LOGCAP_KEEP 3                 /* rotated files per agent */
#define LOGCAP_FILE_MAX (8ull << 20)  /* per file, before the budget's share */

struct ai_state;
struct sup_agent;

struct logcap_stream {
	struct loop_src src;
	int rfd, wfd;
	size_t partial;          /* bytes of an unfinished line in part */
	char *part;              /* LOGCAP_LINE bytes, made at the first unfinished line */
	bool is_err;
};

struct logcap {
	struct logcap_stream out, err;
	char *ring;              /* cap bytes of text lines */
	size_t cap;              /* LOGCAP_RING_MIN, doubled with use up to LOGCAP_RING */
	size_t head, used;       /* write position, bytes used */
	int filefd;
	uint64_t file_bytes, file_max;
	uint64_t lines, dropped;
	char path[256];
};

/* Make the pipes, ring and file of every agent; registers the read ends. */
int logcap_init(struct ai_state *st, struct ai_err *e);
void logcap_fini(struct ai_state *st);
/* Reload (reload.c): capture for every agent that has none yet (agents a
 * reload added); an agent's capture re-pointed at its new table entry;
 * one agent's capture closed (it was removed). */
int logcap_attach(struct ai_state *st, struct ai_err *e);
void logcap_rebind(struct sup_agent *a);
void logcap_agent_close(struct ai_state *st, struct sup_agent *a);
/* The write ends an agent's stdout/stderr get (-1 when unavailable). */
int logcap_out_fd(const struct sup_agent *a);
int logcap_err_fd(const struct sup_agent *a);
/* Append a line ainit itself says about the agent ("started", "exited"). */
void logcap_note(struct ai_state *st, struct sup_agent *a, const char *text);
/* Copy the last n lines (oldest first) into out; returns bytes written. */
size_t logcap_tail(const struct sup_agent *a, unsigned n, char *out, size_t cap);
/* Pure, for tests: keep the last `cap` bytes of text in a ring. */
void logcap_ring_put(char *ring, size_t cap, size_t *head, size_t *used, const char *s, size_t n);
size_t logcap_ring_tail(const char *ring, size_t cap, size_t head, size_t used, unsigned n,
			char *out, size_t outcap);
/* Pure, for tests: the ring's capacity for n more bytes (cap doubled until
 * used + n fits, at most max); the current cap when it already fits. */
size_t logcap_ring_want(size_t cap, size_t used, size_t n, size_t max);
/* Pure, for tests: the ring's used bytes, oldest first, into out. */
void logcap_ring_copy(const char *ring, size_t cap, size_t head, size_t used, char *out);

#endif
