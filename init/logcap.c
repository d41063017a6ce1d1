/* Agent log capture. See logcap.h. */
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

#include "json.h"
#include "log.h"
#include "state.h"
#include "util.h"

struct logcap_agent;

struct logcap_stream {
	int rfd, wfd;
	struct loop_src src;
	struct logcap_agent *ag;
	bool is_err;
	size_t plen;
	char part[LOGCAP_LINE_MAX];
};

struct logcap_agent {
	const char *name;
	struct logcap_stream s[2];
	struct logcap_ring ring;
	int fd;                 /* the log file, opened at the first line */
	uint64_t fsize;
	uint64_t lines, file_errors;
};

struct logcap {
	struct logcap_agent *v;
	int n;
	char *mem;              /* all rings */
	uint64_t file_max;
	char dir[200];
};

/* ---- ring ---- */

void logcap_ring_init(struct logcap_ring *r, char *buf, size_t cap)
{
	memset(r, 0, sizeof *r);
	r->buf = buf;
	r->cap = cap;
}

static size_t ring_tail(const struct logcap_ring *r)
{
	return (r->head + r->cap - r->len) % r->cap;
}

static void ring_drop_oldest(struct logcap_ring *r)
{
	size_t t = ring_tail(r), k = 0;
	while (k < r->len && r->buf[(t + k) % r->cap] != '\n')
		k++;
	r->len -= k < r->len ? k + 1 : r->len;
	r->first_seq++;
}

void logcap_ring_put(struct logcap_ring *r, const char *line, size_t n)
{
	if (r->cap < 2)
		return;
	if (n > r->cap - 1)
		n = r->cap - 1;
	while (r->len + n + 1 > r->cap)
		ring_drop_oldest(r);
	for (size_t i = 0; i < n; i++) {
		char c = line[i] == '\n' ? ' ' : line[i];
		r->buf[r->head] = c;
		r->head = (r->head + 1) % r->cap;
	}
	r->buf[r->head] = '\n';
	r->head = (r->head + 1) % r->cap;
	r->len += n + 1;
	r->next_seq++;
}

size_t logcap_ring_each(const struct logcap_ring *r, uint64_t from, size_t max, logcap_visit fn,
			void *ctx)
{
	char line[LOGCAP_RING < 4096 ? LOGCAP_RING : 4096];
	size_t pos = ring_tail(r), left = r->len, visited = 0;
	uint64_t seq = r->first_seq;
	while (left > 0 && visited < max) {
		size_t n = 0;
		while (left > 0 && r->buf[pos] != '\n') {
			if (n < sizeof line)
				line[n++] = r->buf[pos];
			pos = (pos + 1) % r->cap;
			left--;
		}
		if (left > 0) { /* the '\n' */
			pos = (pos + 1) % r->cap;
			left--;
		}
		if (seq >= from) {
			visited++;
			if (!fn(ctx, seq, line, n))
				break;
		}
		seq++;
	}
	return visited;
}

/* ---- pure helpers ---- */

int logcap_file_name(char *buf, size_t cap, const char *dir, const char *agent, int n)
{
	int w = n ? snprintf(buf, cap, "%s/%s.log.%d", dir, agent, n)
		  : snprintf(buf, cap, "%s/%s.log", dir, agent);
	return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

uint64_t logcap_file_max(uint64_t budget, int nagents)
{
	uint64_t m = budget / (uint64_t)(nagents > 0 ? nagents : 1) / (LOGCAP_KEEP + 1);
	if (m < 64 * 1024)
		m = 64 * 1024;
	if (m > 4 * 1024 * 1024)
		m = 4 * 1024 * 1024;
	return m;
}

void logcap_stamp(char *buf, size_t cap, uint64_t ms)
{
	struct tm tm;
	time_t s = (time_t)(ms / 1000);
	gmtime_r(&s, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- files ---- */

static void file_rotate(struct logcap *lc, struct logcap_agent *ag)
{
	char from[320], to[320];
	if (ag->fd >= 0) {
		close(ag->fd);
		ag->fd = -1;
	}
	for (int i = LOGCAP_KEEP; i > 0; i--) {
		if (logcap_file_name(from, sizeof from, lc->dir, ag->name, i - 1) < 0 ||
		    logcap_file_name(to, sizeof to, lc->dir, ag->name, i) < 0)
			return;
		if (rename(from, to) < 0 && errno != ENOENT && ag->file_errors++ == 0)
			log_warn("logcap", ag->name, "rename %s: %s", from, strerror(errno));
	}
	ag->fsize = 0;
}

static void file_write(struct logcap *lc, struct logcap_agent *ag, const char *line, size_t n)
{
	char path[320];
	if (!lc->dir[0])
		return;
	if (ag->fd >= 0 && ag->fsize + n > lc->file_max)
		file_rotate(lc, ag);
	if (ag->fd < 0) {
		struct stat sb;
		if (logcap_file_name(path, sizeof path, lc->dir, ag->name, 0) < 0)
			return;
		ag->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
		if (ag->fd < 0) {
			if (ag->file_errors++ == 0)
				log_warn("logcap", ag->name, "open %s: %s; keeping logs in memory only",
					 path, strerror(errno));
			return;
		}
		ag->fsize = fstat(ag->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		if (ag->fsize + n > lc->file_max) {
			file_rotate(lc, ag);
			file_write(lc, ag, line, n);
			return;
		}
	}
	/* A regular file: the page cache takes it without blocking the loop
	 * for long; a full disk loses lines, never the supervisor. */
	ssize_t w = write(ag->fd, line, n);
	if (w < 0) {
		if (ag->file_errors++ == 0)
			log_warn("logcap", ag->name, "write to its log file: %s", strerror(errno));
		return;
	}
	ag->fsize += (uint64_t)w;
}

/* ---- capture ---- */

static void emit(struct logcap *lc, struct logcap_stream *s, const char *stamp, const char *text,
		 size_t n)
{
	struct logcap_agent *ag = s->ag;
	char line[LOGCAP_LINE_MAX + 64];
	int h = snprintf(line, sizeof line, "%s %s ", stamp, s->is_err ? "err" : "out");
	if (h < 0)
		return;
	if (n > sizeof line - (size_t)h - 1)
		n = sizeof line - (size_t)h - 1;
	memcpy(line + h, text, n);
	logcap_ring_put(&ag->ring, line, (size_t)h + n);
	line[(size_t)h + n] = '\n';
	file_write(lc, ag, line, (size_t)h + n + 1);
	ag->lines++;
}

static void on_pipe(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct logcap_stream *s = src->data;
	struct logcap *lc = st->logs;
	char buf[16384], stamp[32];
	size_t total = 0;
	struct timespec ts;
	(void)ev;
	clock_gettime(CLOCK_REALTIME, &ts);
	logcap_stamp(stamp, sizeof stamp, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	/* Bounded work per wakeup: the rest waits for the next round, after
	 * every other ready fd had its turn. */
	while (total < LOGCAP_READ_MAX) {
		ssize_t n = read(s->rfd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN; EOF cannot happen while we hold the write end */
		total += (size_t)n;
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (c == '\n' || s->plen == sizeof s->part) {
				emit(lc, s, stamp, s->part, s->plen);
				s->plen = 0;
				if (c == '\n')
					continue;
			}
			s->part[s->plen++] = c;
		}
	}
}

int logcap_init(struct ai_state *st, struct ai_err *e)
{
	struct logcap *lc;
	const struct ai_config *c = st->cfg;
	bool have_logs_volume = false;
	if (!c || st->nagents == 0)
		return 0;
	lc = calloc(1, sizeof *lc);
	if (!lc)
		return ai_fail(e, "logcap", "calloc", ENOMEM, "log capture");
	st->logs = lc;
	lc->n = st->nagents;
	lc->v = calloc((size_t)lc->n, sizeof *lc->v);
	lc->mem = malloc((size_t)lc->n * LOGCAP_RING);
	if (!lc->v || !lc->mem)
		return ai_fail(e, "logcap", "malloc", ENOMEM, "log rings for %d agents", lc->n);
	lc->file_max = logcap_file_max(LOGCAP_BUDGET, lc->n);
	for (int i = 0; i < c->nvolumes; i++)
		if (!strcmp(c->volumes[i].name, "logs"))
			have_logs_volume = true;
	if (have_logs_volume && c->app.data_dir)
		snprintf(lc->dir, sizeof lc->dir, "%s/logs", c->app.data_dir);
	else if (st->state_dir)
		snprintf(lc->dir, sizeof lc->dir, "%s/logs", st->state_dir);
	if (lc->dir[0] && mkdir(lc->dir, 0750) < 0 && errno != EEXIST) {
		log_warn("logcap", lc->dir, "mkdir: %s; keeping logs in memory only", strerror(errno));
		lc->dir[0] = 0;
	}
	for (int i = 0; i < lc->n; i++) {
		struct logcap_agent *ag = &lc->v[i];
		ag->name = c->agents[i].name;
		ag->fd = -1;
		logcap_ring_init(&ag->ring, lc->mem + (size_t)i * LOGCAP_RING, LOGCAP_RING);
		for (int k = 0; k < 2; k++) {
			struct logcap_stream *s = &ag->s[k];
			int p[2];
			s->rfd = s->wfd = -1;
			s->ag = ag;
			s->is_err = k == 1;
			if (pipe2(p, O_CLOEXEC) < 0)
				return ai_fail(e, "logcap", "pipe2", errno, "agent %s", ag->name);
			s->rfd = p[0];
			s->wfd = p[1];
			/* only our end is non-blocking: the agent's writes block
			 * when it outpaces us, as they would on a terminal */
			if (fcntl(s->rfd, F_SETFL, O_NONBLOCK) < 0)
				return ai_fail(e, "logcap", "fcntl(O_NONBLOCK)", errno, "agent %s", ag->name);
			if (loop_add(&st->loop, &s->src, s->rfd, EPOLLIN, on_pipe, s, e) < 0)
				return -EIO;
		}
	}
	return 0;
}

void logcap_fini(struct ai_state *st)
{
	struct logcap *lc = st->logs;
	if (!lc)
		return;
	for (int i = 0; lc->v && i < lc->n; i++) {
		struct logcap_agent *ag = &lc->v[i];
		for (int k = 0; k < 2; k++) {
			struct logcap_stream *s = &ag->s[k];
			if (s->rfd >= 0) {
				/* what is still in the pipe goes to the file */
				if (s->src.added)
					on_pipe(st, &s->src, EPOLLIN);
				loop_del(&st->loop, &s->src);
				close(s->rfd);
			}
			if (s->wfd >= 0)
				close(s->wfd);
		}
		if (ag->fd >= 0)
			close(ag->fd);
	}
	free(lc->v);
	free(lc->mem);
	free(lc);
	st->logs = NULL;
}

bool logcap_fds(struct ai_state *st, int idx, int *out_fd, int *err_fd)
{
	struct logcap *lc = st->logs;
	if (!lc || idx < 0 || idx >= lc->n || lc->v[idx].s[0].wfd < 0 || lc->v[idx].s[1].wfd < 0)
		return false;
	*out_fd = lc->v[idx].s[0].wfd;
	*err_fd = lc->v[idx].s[1].wfd;
	return true;
}

struct put_ctx {
	struct jw *w;
	uint64_t next;
	size_t budget;
};

static bool put_line(void *ctx, uint64_t seq, const char *line, size_t n)
{
	struct put_ctx *c = ctx;
	if (c->w->len + n + 64 > c->budget)
		return false; /* the rest comes with the next request */
	jw_strn(c->w, line, n);
	c->next = seq + 1;
	return true;
}

void logcap_put_json(struct ai_state *st, int idx, long long n, long long from_seq, struct jw *w)
{
	struct logcap *lc = st->logs;
	const struct logcap_ring *r;
	struct put_ctx c = {.w = w, .budget = w->cap > 4096 ? w->cap - 4096 : w->cap / 2};
	uint64_t from;
	jw_kbool(w, "ok", true);
	if (!lc || idx < 0 || idx >= lc->n) {
		jw_key(w, "lines");
		jw_arr_begin(w);
		jw_arr_end(w);
		jw_kint(w, "next", 0);
		return;
	}
	r = &lc->v[idx].ring;
	if (from_seq >= 0)
		from = (uint64_t)from_seq;
	else
		from = n >= 0 && (uint64_t)n < r->next_seq ? r->next_seq - (uint64_t)n : 0;
	/* lines that scrolled out of the ring before the client saw them */
	jw_kint(w, "missed", from_seq >= 0 && from < r->first_seq ? (long long)(r->first_seq - from) : 0);
	if (from < r->first_seq)
		from = r->first_seq;
	if (from > r->next_seq)
		from = r->next_seq;
	c.next = from;
	jw_key(w, "lines");
	jw_arr_begin(w);
	logcap_ring_each(r, from, (size_t)-1, put_line, &c);
	jw_arr_end(w);
	/* the cursor for -f: ask "from" this next time */
	jw_kint(w, "next", (long long)c.next);
	jw_kint(w, "total", (long long)lc->v[idx].lines);
	jw_kstr(w, "dir", lc->dir[0] ? lc->dir : NULL);
}
