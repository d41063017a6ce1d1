#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util.h"

static void rearm(struct ai_loop *l);

static void on_timerfd(struct ai_state *st, struct loop_src *src, uint32_t ev)
{
	struct ai_loop *l = src->data;
	uint64_t n;
	(void)ev;
	/* Drain; EAGAIN just means a spurious wakeup. */
	while (read(l->tfd, &n, sizeof n) < 0 && errno == EINTR)
		;
	l->armed_for = 0;
	uint64_t now = ai_now_ms();
	/* Fire due timers. A callback may arm/disarm any timer, so rescan. */
	for (int i = 0; i < l->ntimers; i++) {
		struct loop_timer *t = l->timers[i];
		if (t && t->armed && t->when_ms <= now) {
			t->armed = false;
			t->cb(st, t);
		}
	}
	rearm(l);
}

int loop_init(struct ai_loop *l, int max_timers, struct ai_err *e)
{
	memset(l, 0, sizeof *l);
	l->epfd = l->tfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return ai_fail(e, "loop", "epoll_create1", errno, "event loop");
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->tfd < 0)
		return ai_fail(e, "loop", "timerfd_create", errno, "event loop");
	l->cap = max_timers > 0 ? max_timers : 16;
	l->timers = calloc((size_t)l->cap, sizeof *l->timers);
	if (!l->timers)
		return ai_fail(e, "loop", "calloc", ENOMEM, "timer table");
	return loop_add(l, &l->tsrc, l->tfd, EPOLLIN, on_timerfd, l, e);
}

void loop_fini(struct ai_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	free(l->timers);
	l->epfd = l->tfd = -1;
	l->timers = NULL;
}

int loop_add(struct ai_loop *l, struct loop_src *s, int fd, uint32_t events, loop_fd_cb cb,
	     void *data, struct ai_err *e)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};
	s->fd = fd;
	s->cb = cb;
	s->data = data;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return ai_fail(e, "loop", "epoll_ctl(ADD)", errno, "fd %d", fd);
	s->added = true;
	return 0;
}

int loop_mod(struct ai_loop *l, struct loop_src *s, uint32_t events, struct ai_err *e)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		return ai_fail(e, "loop", "epoll_ctl(MOD)", errno, "fd %d", s->fd);
	return 0;
}

void loop_del(struct ai_loop *l, struct loop_src *s)
{
	if (!s->added)
		return;
	/* Failure here means the fd is already closed: nothing to undo. */
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->added = false;
}

int loop_timer_register(struct ai_loop *l, struct loop_timer *t, loop_timer_cb cb, void *data,
			struct ai_err *e)
{
	int slot = -1;
	for (int i = 0; i < l->ntimers; i++)
		if (!l->timers[i]) {
			slot = i;
			break;
		}
	if (slot < 0) {
		if (l->ntimers == l->cap) {
			/* Only at setup: grow the table. */
			int cap = l->cap * 2;
			struct loop_timer **v = realloc(l->timers, (size_t)cap * sizeof *v);
			if (!v)
				return ai_fail(e, "loop", "realloc", ENOMEM, "timer table");
			memset(v + l->cap, 0, (size_t)(cap - l->cap) * sizeof *v);
			l->timers = v;
			l->cap = cap;
		}
		slot = l->ntimers++;
	}
	t->cb = cb;
	t->data = data;
	t->armed = false;
	t->slot = slot;
	l->timers[slot] = t;
	return 0;
}

void loop_timer_unregister(struct ai_loop *l, struct loop_timer *t)
{
	if (t->slot >= 0 && t->slot < l->ntimers && l->timers[t->slot] == t)
		l->timers[t->slot] = NULL;
	t->slot = -1;
	t->armed = false;
}

static void rearm(struct ai_loop *l)
{
	uint64_t earliest = 0;
	for (int i = 0; i < l->ntimers; i++) {
		struct loop_timer *t = l->timers[i];
		if (t && t->armed && (!earliest || t->when_ms < earliest))
			earliest = t->when_ms;
	}
	if (earliest == l->armed_for)
		return;
	struct itimerspec its = {0};
	if (earliest) {
		/* absolute time; a deadline already past fires at once */
		uint64_t w = earliest ? earliest : 1;
		its.it_value.tv_sec = (time_t)(w / 1000);
		its.it_value.tv_nsec = (long)(w % 1000) * 1000000L;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	/* Cannot fail with valid arguments; if it did, the next wakeup rearms. */
	if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		l->armed_for = earliest;
}

void loop_timer_arm(struct ai_loop *l, struct loop_timer *t, uint64_t when_ms)
{
	t->when_ms = when_ms ? when_ms : 1;
	t->armed = true;
	rearm(l);
}

void loop_timer_arm_in(struct ai_loop *l, struct loop_timer *t, uint64_t delay_ms)
{
	loop_timer_arm(l, t, ai_now_ms() + delay_ms);
}

void loop_timer_disarm(struct ai_loop *l, struct loop_timer *t)
{
	if (!t->armed)
		return;
	t->armed = false;
	rearm(l);
}

int loop_run_once(struct ai_state *st, struct ai_loop *l)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, (int)AI_ARRAY_SIZE(evs), -1);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->wakeups++;
	for (int i = 0; i < n; i++) {
		struct loop_src *s = evs[i].data.ptr;
		if (s && s->added && s->cb) /* deleted by an earlier callback of this round */
			s->cb(st, s, evs[i].events);
	}
	return 0;
}
