/* logcap: every agent's stdout and stderr.
 *
 * One pipe per stream per agent, made at load and kept across restarts (the
 * write ends are handed to each spawn). The loop reads them non-blocking,
 * at most LOGCAP_READ_MAX bytes per stream per wakeup, so a chatty agent
 * costs CPU but never blocks the supervisor or starves another agent.
 * Lines get a UTC time stamp and the stream, go into the agent's in-memory
 * ring (LOGCAP_RING bytes, sized at load, oldest lines dropped) and to
 * DIR/AGENT.log, where DIR is the `logs` volume (data_dir/logs) or
 * STATE_DIR/logs. A file past its share of the budget is rotated
 * (AGENT.log -> AGENT.log.1 ... .LOGCAP_KEEP); the share is
 * LOGCAP_BUDGET / agents / (LOGCAP_KEEP + 1), clamped to [64 KiB, 4 MiB],
 * so all files together stay under the global budget.
 *
 * Never allocates after logcap_init; never blocks on a pipe.
 */
#ifndef AINIT_LOGCAP_H
#define AINIT_LOGCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LOGCAP_RING (16 * 1024)
#define LOGCAP_LINE_MAX 2048
#define LOGCAP_READ_MAX (64 * 1024)
#define LOGCAP_KEEP 3
#define LOGCAP_BUDGET (256ull * 1024 * 1024)

struct ai_state;
struct jw;

/* The ring: whole lines, '\n'-terminated; oldest dropped to make room. */
struct logcap_ring {
	char *buf;
	size_t cap, head, len;   /* bytes [head-len, head) mod cap are valid */
	uint64_t first_seq;      /* sequence number of the oldest line kept */
	uint64_t next_seq;       /* sequence number the next line gets */
};

void logcap_ring_init(struct logcap_ring *r, char *buf, size_t cap);
/* Append one line (without '\n'; it is added). Longer than cap-1: cut. */
void logcap_ring_put(struct logcap_ring *r, const char *line, size_t n);
/* Visit lines with seq >= from (oldest first), at most max of them;
 * returns how many were visited. */
typedef bool (*logcap_visit)(void *ctx, uint64_t seq, const char *line, size_t n);
size_t logcap_ring_each(const struct logcap_ring *r, uint64_t from, size_t max,
			logcap_visit fn, void *ctx);

/* "DIR/AGENT.log" for n = 0, "DIR/AGENT.log.N" otherwise. Pure. */
int logcap_file_name(char *buf, size_t cap, const char *dir, const char *agent, int n);
/* Per-file size limit for nagents under budget. Pure. */
uint64_t logcap_file_max(uint64_t budget, int nagents);
/* "2026-11-25T16:05:01.123Z" for a CLOCK_REALTIME time in ms. Pure. */
void logcap_stamp(char *buf, size_t cap, uint64_t realtime_ms);

int logcap_init(struct ai_state *st, struct ai_err *e);
void logcap_fini(struct ai_state *st);
/* The write ends for agent idx's next spawn; false when not captured. */
bool logcap_fds(struct ai_state *st, int idx, int *out_fd, int *err_fd);
/* ctl logs: the last n lines, or (from >= 0) the lines from seq `from` on;
 * the reply's "next" is the `from` of the following request (-f). */
void logcap_put_json(struct ai_state *st, int idx, long long n, long long from, struct jw *w);

#endif
