/* loop: the one event loop. epoll over fds registered by the modules, and
 * one timerfd armed at the earliest deadline of the registered timers.
 *
 * Owns: the epoll fd, the timerfd, the timer table (sized at start, no
 * allocation in the loop). Never blocks anywhere but epoll_wait; an idle
 * loop with no armed timer sleeps forever.
 */
#ifndef AINIT_LOOP_H
#define AINIT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct ai_state;
struct loop_src;
struct loop_timer;

typedef void (*loop_fd_cb)(struct ai_state *st, struct loop_src *src, uint32_t events);
typedef void (*loop_timer_cb)(struct ai_state *st, struct loop_timer *t);

/* Embed in the owner's struct; the owner recovers itself with container_of
 * or the data pointer. */
struct loop_src {
	int fd;
	loop_fd_cb cb;
	void *data;
	bool added;
};

struct loop_timer {
	uint64_t when_ms;   /* CLOCK_MONOTONIC ms; valid when armed */
	bool armed;
	loop_timer_cb cb;
	void *data;
	int slot;           /* index in the loop's table, -1 when not registered */
};

struct ai_loop {
	int epfd, tfd;
	struct loop_src tsrc;
	struct loop_timer **timers; /* registered timers */
	int ntimers, cap;
	uint64_t armed_for;         /* what the timerfd is set to, 0 = disarmed */
	uint64_t wakeups;           /* counted for the idle target */
};

int loop_init(struct ai_loop *l, int max_timers, struct ai_err *e);
void loop_fini(struct ai_loop *l);

int loop_add(struct ai_loop *l, struct loop_src *s, int fd, uint32_t events,
	     loop_fd_cb cb, void *data, struct ai_err *e);
int loop_mod(struct ai_loop *l, struct loop_src *s, uint32_t events, struct ai_err *e);
/* Removes from epoll; does not close the fd. Safe on a src never added. */
void loop_del(struct ai_loop *l, struct loop_src *s);

/* Register a timer once (at setup); arm/disarm any number of times. */
int loop_timer_register(struct ai_loop *l, struct loop_timer *t, loop_timer_cb cb,
			void *data, struct ai_err *e);
void loop_timer_unregister(struct ai_loop *l, struct loop_timer *t);
void loop_timer_arm(struct ai_loop *l, struct loop_timer *t, uint64_t when_ms);
void loop_timer_arm_in(struct ai_loop *l, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_disarm(struct ai_loop *l, struct loop_timer *t);

/* One round: wait, dispatch fds, fire due timers. Returns 0 or -errno of a
 * failed epoll_wait (EINTR is not a failure). */
int loop_run_once(struct ai_state *st, struct ai_loop *l);

#endif
