#include "logcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "state.h"
#include "util.h"

void logcap_ring_put(char *ring, size_t cap, size_t *head, size_t *used, const char *s, size_t n)
{
	if (n > cap) { /* only the tail of a huge write survives */
		s += n - cap;
		n = cap;
	}
	size_t first = cap - *head < n ? cap - *head : n;
	memcpy(ring + *head, s, first);
	memcpy(ring, s + first, n - first);
	*head = (*head + n) % cap;
	*used = *used + n > cap ? cap : *used + n;
}

size_t logcap_ring_tail(const char *ring, size_t cap, size_t head, size_t used, unsigned n,
			char *out, size_t outcap)
{
	/* Walk back from the end over n newlines (the last byte is a newline
	 * when the ring holds whole lines). */
	size_t start = used, seen = 0;
	if (!used || !n)
		return 0;
	for (size_t back = 1; back <= used; back++) {
		size_t i = (head + cap - back) % cap;
		if (ring[i] == '\n' && back > 1 && ++seen == n) {
			start = back - 1;
			break;
		}
	}
	/* A ring that wrapped may start mid-line: skip to the first newline. */
	if (start == used && used == cap) {
		size_t first = (head + cap - used) % cap, k = 0;
		while (k < used && ring[(first + k) % cap] != '\n')
			k++;
		/* ...unless that newline ends the only line: then show its tail */
		if (k + 1 < used)
			start = used - (k + 1);
	}
	if (start > outcap)
		start = outcap;
	for (size_t k = 0; k < start; k++)
		out[k] = ring[(head + cap - start + k) % cap];
	return start;
}

size_t logcap_ring_want(size_t cap, size_t used, size_t n, size_t max)
{
	while (cap < max && used + n > cap)
		cap = cap * 2 < max ? cap * 2 : max;
	return cap;
}

void logcap_ring_copy(const char *ring, size_t cap, size_t head, size_t used, char *out)
{
	size_t oldest = (head + cap - used) % cap;
	size_t first = cap - oldest < used ? cap - oldest : used;
	memcpy(out, ring + oldest, first);
	memcpy(out + first, ring, used - first);
}

/* Make room for n more bytes where the ring may still grow. The bytes keep
 * their order, the oldest at 0. Without memory the ring keeps its size and
 * old lines roll off sooner: logs are never worth failing for. */
static void ring_grow(struct logcap *l, size_t n, const char *name)
{
	size_t want = logcap_ring_want(l->cap, l->used, n, LOGCAP_RING);
	char *r;
	if (want == l->cap)
		return;
	if (!(r = malloc(want))) {
		log_debug("logcap", name, "ring stays at %zu bytes: %s", l->cap, strerror(ENOMEM));
		return;
	}
	logcap_ring_copy(l->ring, l->cap, l->head, l->used, r);
	free(l->ring);
	l->ring = r;
	l->cap = want;
	l->head = l->used; /* used <= the old cap < want */
}

static void rotate(struct logcap *l, const char *name)
{
	char from[300], to[300];
	for (int i = LOGCAP_KEEP - 1; i >= 1; i--) {
		snprintf(from, sizeof from, "%s.%d", l->path, i);
		snprintf(to, sizeof to, "%s.%d", l->path, i + 1);
		if (rename(from, to) < 0 && errno != ENOENT)
			log_warn("logcap", name, "rename %s: %s", from, strerror(errno));
	}
	snprintf(to, sizeof to, "%s.1", l->path);
	if (rename(l->path, to) < 0 && errno != ENOENT)
		log_warn("logcap", name, "rename %s: %s", l->path, strerror(errno));
	close(l->filefd);
	l->filefd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (l->filefd < 0)
		log_warn("logcap", name, "open %s: %s", l->path, strerror(errno));
	l->file_bytes = 0;
}

static void put_line(struct ai_state *st, struct sup_agent *a, char tag, const char *s, size_t n)
{
	struct logcap *l = a->log;
	char line[LOGCAP_LINE + 64];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int h = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, tag);
	if (n > sizeof line - (size_t)h - 1)
		n = sizeof line - (size_t)h - 1;
	memcpy(line + h, s, n);
	n += (size_t)h;
	line[n++] = '\n';
	ring_grow(l, n, a->cfg->name);
	logcap_ring_put(l->ring, l->cap, &l->head, &l->used, line, n);
	l->lines++;
	if (l->filefd >= 0) {
		if (l->file_bytes + n > l->file_max)
			rotate(l, a->cfg->name);
		if (l->filefd >= 0) {
			ssize_t w = write(l->filefd, line, n);
			if (w > 0)
				l->file_bytes += (uint64_t)w;
			else
				l->dropped++;
		}
	}
	ctl_log_line(st, a, line, n);
}

static void on_readable(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct sup_agent *a = src->data;
	struct logcap *l = a->log;
	struct logcap_stream *s = src == &l->out.src ? &l->out : &l->err;
	char tag = s->is_err ? 'E' : 'O';
	char buf[LOGCAP_LINE];
	(void)ev;
	/* Bounded work per wakeup: a flood waits in its pipe for the next round. */
	for (int round = 0; round < 16; round++) {
		if (s->partial)
			memcpy(buf, s->part, s->partial);
		ssize_t n = read(s->rfd, buf + s->partial, sizeof buf - s->partial);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* EAGAIN; EOF cannot happen: we hold the write end */
		size_t have = s->partial + (size_t)n, start = 0;
		for (size_t i = 0; i < have; i++)
			if (buf[i] == '\n') {
				put_line(st, a, tag, buf + start, i - start);
				start = i + 1;
			}
		if (start == 0 && have == sizeof buf) { /* overlong: split it */
			put_line(st, a, tag, buf, have);
			start = have;
		}
		s->partial = have - start;
		if (s->partial && !s->part && !(s->part = malloc(LOGCAP_LINE))) {
			put_line(st, a, tag, buf + start, s->partial); /* split, not lost */
			s->partial = 0;
		}
		if (s->partial)
			memcpy(s->part, buf + start, s->partial);
	}
}

void logcap_note(struct ai_state *st, struct sup_agent *a, const char *text)
{
	if (a->log)
		put_line(st, a, '-', text, strlen(text));
}

static int open_stream(struct ai_state *st, struct sup_agent *a, struct logcap_stream *s,
		       bool is_err, struct ai_err *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return ai_fail(e, "logcap", "pipe2", errno, "agent %s", a->cfg->name);
	s->rfd = p[0];
	s->wfd = p[1];
	s->is_err = is_err;
	/* The agent's end blocks: a chatty agent waits for us, it does not lose
	 * lines (journald does the same). */
	if (fcntl(s->wfd, F_SETFL, 0) < 0)
		return ai_fail(e, "logcap", "fcntl", errno, "agent %s", a->cfg->name);
	return loop_add(&st->loop, &s->src, s->rfd, EPOLLIN, on_readable, a, e);
}

static uint64_t file_share(const struct ai_state *st)
{
	uint64_t share = st->nagents ? LOGCAP_BUDGET / ((uint64_t)st->nagents * (LOGCAP_KEEP + 1))
				     : LOGCAP_FILE_MAX;
	return share < LOGCAP_FILE_MAX ? share : LOGCAP_FILE_MAX;
}

/* The pipes, ring and (when dir is set) file of one agent. */
static int agent_open(struct ai_state *st, struct sup_agent *a, const char *dir, struct ai_err *e)
{
	struct logcap *l = calloc(1, sizeof *l);
	if (!l || !(l->ring = malloc(LOGCAP_RING_MIN))) {
		free(l);
		return ai_fail(e, "logcap", "malloc", ENOMEM, "agent %s", a->cfg->name);
	}
	a->log = l;
	l->cap = LOGCAP_RING_MIN;
	l->out.rfd = l->out.wfd = l->err.rfd = l->err.wfd = l->filefd = -1;
	l->file_max = file_share(st);
	if (open_stream(st, a, &l->out, false, e) < 0 || open_stream(st, a, &l->err, true, e) < 0)
		return -EIO;
	if (!dir)
		return 0;
	snprintf(l->path, sizeof l->path, "%.200s/%.50s.log", dir, a->cfg->name);
	l->filefd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (l->filefd < 0)
		log_warn("logcap", a->cfg->name, "open %s: %s", l->path, strerror(errno));
	else {
		struct stat sb;
		if (fstat(l->filefd, &sb) == 0)
			l->file_bytes = (uint64_t)sb.st_size;
	}
	return 0;
}

static int open_missing(struct ai_state *st, struct ai_err *e)
{
	char dir[256];
	bool files = true;
	snprintf(dir, sizeof dir, "%s/logs", st->state_dir);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		log_warn("logcap", dir, "mkdir: %s; agent logs stay in memory only", strerror(errno));
		files = false;
	}
	for (int i = 0; i < st->nagents; i++)
		if (!st->agents[i].log && agent_open(st, &st->agents[i], files ? dir : NULL, e) < 0)
			return -EIO;
	return 0;
}

int logcap_init(struct ai_state *st, struct ai_err *e)
{
	return open_missing(st, e);
}

int logcap_attach(struct ai_state *st, struct ai_err *e)
{
	uint64_t share = file_share(st);
	for (int i = 0; i < st->nagents; i++)
		if (st->agents[i].log)
			st->agents[i].log->file_max = share;
	return open_missing(st, e);
}

void logcap_rebind(struct sup_agent *a)
{
	/* epoll holds &stream.src (inside the logcap, which does not move);
	 * only the agent it reports to changes */
	if (a->log) {
		a->log->out.src.data = a;
		a->log->err.src.data = a;
	}
}

static void close_stream(struct ai_state *st, struct logcap_stream *s)
{
	if (s->rfd >= 0) {
		loop_del(&st->loop, &s->src);
		close(s->rfd);
	}
	if (s->wfd >= 0)
		close(s->wfd);
	s->rfd = s->wfd = -1;
	free(s->part);
	s->part = NULL;
	s->partial = 0;
}

void logcap_agent_close(struct ai_state *st, struct sup_agent *a)
{
	struct logcap *l = a->log;
	if (!l)
		return;
	close_stream(st, &l->out);
	close_stream(st, &l->err);
	if (l->filefd >= 0)
		close(l->filefd);
	free(l->ring);
	free(l);
	a->log = NULL;
}

void logcap_fini(struct ai_state *st)
{
	for (int i = 0; i < st->nagents; i++)
		logcap_agent_close(st, &st->agents[i]);
}

int logcap_out_fd(const struct sup_agent *a)
{
	return a->log ? a->log->out.wfd : -1;
}

int logcap_err_fd(const struct sup_agent *a)
{
	return a->log ? a->log->err.wfd : -1;
}

size_t logcap_tail(const struct sup_agent *a, unsigned n, char *out, size_t cap)
{
	const struct logcap *l = a->log;
	if (!l)
		return 0;
	return logcap_ring_tail(l->ring, l->cap, l->head, l->used, n, out, cap);
}
