/* vport: the ctl line protocol over a port that hangs up like a
 * virtio-serial port with no host (read 0). One end of a socketpair stands
 * in for the port; the real loop and ctl_handle_line serve it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ctl.h"
#include "loop.h"
#include "state.h"
#include "util.h"
#include "vport.h"

static struct ai_state st;
static int host = -1;          /* the "host" end */
static struct loop_timer guard;
static bool guard_fired;

static void on_guard(struct ai_state *s, struct loop_timer *t)
{
	(void)s;
	(void)t;
	guard_fired = true;
}

static int setup(void **state)
{
	(void)state;
	struct ai_err e = {0};
	int sv[2];
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE); /* as the supervisor: EPIPE, not death */
	sigprocmask(SIG_BLOCK, &pipe, NULL);
	memset(&st, 0, sizeof st);
	st.sigfd = -1;
	st.ctl.lfd = -1;
	st.console_fd = -1;
	snprintf(st.degraded, sizeof st.degraded, "unit test");
	assert_int_equal(loop_init(&st.loop, 8, &e), 0);
	assert_int_equal(loop_timer_register(&st.loop, &guard, on_guard, NULL, &e), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	host = sv[1];
	struct timeval tv = {.tv_sec = 5};
	setsockopt(host, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(vport_attach(&st, sv[0], "test-port", &e), 0);
	assert_true(st.vport.in_epoll);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vport_close(&st);
	loop_timer_unregister(&st.loop, &guard);
	loop_fini(&st.loop);
	if (host >= 0)
		close(host);
	host = -1;
	return 0;
}

/* Run loop rounds until `lines` reply lines have arrived at the host, with
 * a guard timer so that a bug fails the test instead of hanging it. */
static size_t serve_and_read(char *buf, size_t cap, int lines)
{
	size_t len = 0;
	guard_fired = false;
	loop_timer_arm_in(&st.loop, &guard, 3000);
	for (;;) {
		int have = 0;
		for (size_t i = 0; i < len; i++)
			have += buf[i] == '\n';
		if (have >= lines)
			break;
		ssize_t n = recv(host, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		assert_false(guard_fired);
		assert_int_equal(loop_run_once(&st, &st.loop), 0);
	}
	loop_timer_disarm(&st.loop, &guard);
	buf[len] = '\0';
	return len;
}

static void send_all(const char *s, size_t n)
{
	if (n == 0)
		n = strlen(s);
	while (n) {
		ssize_t w = write(host, s, n);
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

static void test_request_reply(void **state)
{
	(void)state;
	char buf[8192];
	send_all("{\"cmd\":\"status\"}\n", 0);
	serve_and_read(buf, sizeof buf, 1);
	assert_non_null(strstr(buf, "\"degraded\":\"unit test\""));
	assert_non_null(strstr(buf, "\"ok\":true"));
	assert_int_equal(st.vport.requests, 1);
}

static void test_split_and_pipelined(void **state)
{
	(void)state;
	char buf[8192];
	send_all("{\"cmd\":\"pi", 0);
	/* half a line: nothing to answer yet */
	loop_run_once(&st, &st.loop);
	assert_int_equal(recv(host, buf, sizeof buf, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	send_all("ng\"}\n{\"cmd\":\"ping\"}\n{\"cmd\":\"nonsense\"}\n", 0);
	serve_and_read(buf, sizeof buf, 3);
	char *second = strchr(buf, '\n') + 1;
	char *third = strchr(second, '\n') + 1;
	assert_null(memmem(buf, (size_t)(third - buf), "error", 5)); /* two pings ok */
	assert_non_null(strstr(third, "\"error\""));
	assert_int_equal(st.vport.requests, 3);
}

static void test_oversized_line(void **state)
{
	(void)state;
	static char big[CTL_MAX_REQ + 4000];
	char buf[8192];
	memset(big, 'x', sizeof big);
	send_all(big, sizeof big);
	send_all("\n{\"cmd\":\"ping\"}\n", 0);
	serve_and_read(buf, sizeof buf, 2);
	char *second = strchr(buf, '\n') + 1;
	assert_non_null(strstr(buf, "longer than"));
	assert_true(strstr(buf, "longer than") < second);
	assert_null(strstr(second, "error"));
	assert_non_null(strstr(second, "\"ok\":true"));
	/* exactly two replies: the tail of the long line got none */
	assert_int_equal(strlen(strchr(second, '\n')), 1);
}

static void test_hangup_leaves_epoll_without_spinning(void **state)
{
	(void)state;
	send_all("{\"cmd\":\"ping\"}\n", 0);
	close(host); /* the client leaves before its answer */
	host = -1;
	guard_fired = false;
	loop_timer_arm_in(&st.loop, &guard, 3000);
	loop_run_once(&st, &st.loop);
	assert_int_equal(st.vport.requests, 1);
	assert_int_equal(st.vport.dropped, 1); /* the answer went nowhere */
	assert_false(st.vport.in_epoll);       /* HUP would wake us forever */
	assert_true(fcntl(st.vport.fd, F_GETFL) & O_ASYNC);
	/* Idle now: the next wakeups are the guard timer and at most one
	 * SIGIO from the hangup itself, never a busy loop. */
	loop_timer_arm_in(&st.loop, &guard, 200);
	uint64_t w0 = st.loop.wakeups;
	while (!guard_fired)
		assert_int_equal(loop_run_once(&st, &st.loop), 0);
	assert_true(st.loop.wakeups - w0 <= 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_and_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_leaves_epoll_without_spinning, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
