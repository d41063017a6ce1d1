/* stub-agent: impersonates any legacy agent so that whole appliance configs
 * run without the original Python code. It binds its service port
 * (AGENT_PORT) and health port (HEALTH_CHECK_PORT) from the environment ainit
 * gives it and answers the legacy health protocol through libagent.
 *
 * Misbehaviour on demand, for tests (flag or environment variable):
 *   --start-delay DUR      STUB_START_DELAY      wait before binding
 *   --crash-after DUR      STUB_CRASH_AFTER      exit after DUR (with --exit-code)
 *   --exit-code N          STUB_EXIT_CODE        exit status of a crash (default 1)
 *   --ignore-sigterm       STUB_IGNORE_SIGTERM=1
 *   --health MODE          STUB_HEALTH           ok|bad|junk|silent|none
 *   --unhealthy-after DUR  STUB_UNHEALTHY_AFTER  turn health replies bad after DUR
 *   --flood                STUB_FLOOD=1          write stdout lines without pause
 *   --orphan               STUB_ORPHAN=1         fork a child that outlives the agent
 *   --notify               STUB_NOTIFY=1         sd_notify READY=1 (+WATCHDOG=1)
 *   --no-service           STUB_NO_SERVICE=1     do not bind AGENT_PORT
 *   --name NAME                                  when AINIT_AGENT is unset
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static volatile sig_atomic_t got_term;

struct opts {
	int64_t start_delay, crash_after, unhealthy_after;
	int exit_code;
	bool ignore_term, flood, orphan, notify, no_service;
	enum agent_health_mode mode;
	bool no_health;
	const char *name;
};

static bool env_true(const char *v)
{
	const char *s = getenv(v);
	return s && *s && strcmp(s, "0") && strcmp(s, "false");
}

static int64_t dur_opt(const char *what, const char *s)
{
	int64_t v = agent_parse_ms(s);
	if (v < 0) {
		fprintf(stderr, "stub-agent: bad duration for %s: \"%s\"\n", what, s);
		exit(2);
	}
	return v;
}

static void set_health(struct opts *o, const char *s)
{
	if (!strcmp(s, "ok"))
		o->mode = AH_OK;
	else if (!strcmp(s, "bad"))
		o->mode = AH_BAD;
	else if (!strcmp(s, "junk"))
		o->mode = AH_JUNK;
	else if (!strcmp(s, "silent"))
		o->mode = AH_SILENT;
	else if (!strcmp(s, "none"))
		o->no_health = true;
	else {
		fprintf(stderr, "stub-agent: --health must be ok, bad, junk, silent or none\n");
		exit(2);
	}
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	const char *s;
	memset(o, 0, sizeof *o);
	o->start_delay = o->crash_after = o->unhealthy_after = -1;
	o->exit_code = 1;
	if ((s = getenv("STUB_START_DELAY")) && *s)
		o->start_delay = dur_opt("STUB_START_DELAY", s);
	if ((s = getenv("STUB_CRASH_AFTER")) && *s)
		o->crash_after = dur_opt("STUB_CRASH_AFTER", s);
	if ((s = getenv("STUB_UNHEALTHY_AFTER")) && *s)
		o->unhealthy_after = dur_opt("STUB_UNHEALTHY_AFTER", s);
	if ((s = getenv("STUB_EXIT_CODE")) && *s)
		o->exit_code = atoi(s);
	if ((s = getenv("STUB_HEALTH")) && *s)
		set_health(o, s);
	o->ignore_term = env_true("STUB_IGNORE_SIGTERM");
	o->flood = env_true("STUB_FLOOD");
	o->orphan = env_true("STUB_ORPHAN");
	o->notify = env_true("STUB_NOTIFY");
	o->no_service = env_true("STUB_NO_SERVICE");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG                                                                   \
	do {                                                                       \
		if (!v) {                                                          \
			fprintf(stderr, "stub-agent: %s needs a value\n", a);      \
			exit(2);                                                   \
		}                                                                  \
		i++;                                                               \
	} while (0)
		if (!strcmp(a, "--start-delay")) {
			NEED_ARG;
			o->start_delay = dur_opt(a, v);
		} else if (!strcmp(a, "--crash-after")) {
			NEED_ARG;
			o->crash_after = dur_opt(a, v);
		} else if (!strcmp(a, "--unhealthy-after")) {
			NEED_ARG;
			o->unhealthy_after = dur_opt(a, v);
		} else if (!strcmp(a, "--exit-code")) {
			NEED_ARG;
			o->exit_code = atoi(v);
		} else if (!strcmp(a, "--health")) {
			NEED_ARG;
			set_health(o, v);
		} else if (!strcmp(a, "--name")) {
			NEED_ARG;
			o->name = v;
		} else if (!strcmp(a, "--ignore-sigterm"))
			o->ignore_term = true;
		else if (!strcmp(a, "--flood"))
			o->flood = true;
		else if (!strcmp(a, "--orphan"))
			o->orphan = true;
		else if (!strcmp(a, "--notify"))
			o->notify = true;
		else if (!strcmp(a, "--no-service"))
			o->no_service = true;
		else {
			/* legacy command lines pass their own arguments: ignore them */
			continue;
		}
#undef NEED_ARG
	}
}

static void *flood(void *arg)
{
	const char *name = arg;
	unsigned long n = 0;
	for (;;)
		printf("%s: flood line %lu: the quick brown fox jumps over the lazy dog\n", name, n++);
	return NULL;
}

/* Sleep ms, returning early on SIGTERM (unless ignored). */
static void nap(int64_t ms, bool ignore_term)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		if (got_term && !ignore_term)
			return;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct agent a;
	sigset_t block, old;
	uint64_t t0, crash_at = 0, bad_at = 0, wd_ms, next_wd = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(&o, argc, argv);
	agent_init(&a, o.name ? o.name : "stub");
	if (o.name && !getenv("AINIT_AGENT"))
		a.name = o.name;
	a.mode = o.mode;
	if (o.no_health)
		a.health_port = 0;
	if (agent_signals(&a, &got_term) < 0)
		fprintf(stderr, "%s: signal pipe: %s\n", a.name, strerror(errno));
	t0 = agent_now_ms();

	printf("%s: stub-agent pid %d group %s port %d health %d\n", a.name, (int)getpid(),
	       a.group, a.port, a.health_port);
	if (o.orphan) {
		pid_t p = fork();
		if (p == 0) {
			/* the orphan: outlives its parent, holds nothing but stdout */
			for (;;)
				pause();
		}
		if (p > 0)
			printf("%s: forked child %d that will be orphaned\n", a.name, (int)p);
	}
	if (o.start_delay > 0) {
		printf("%s: start delay %lld ms\n", a.name, (long long)o.start_delay);
		nap(o.start_delay, o.ignore_term);
	}
	if (o.crash_after >= 0 && agent_now_ms() >= t0 + (uint64_t)o.crash_after) {
		/* crash-after shorter than the start delay: never listens */
		printf("%s: crashing with exit code %d before listening, as asked\n", a.name, o.exit_code);
		fflush(stdout);
		_exit(o.exit_code);
	}

	/* zmq starts I/O threads: keep SIGTERM for the main thread only */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (agent_bind(&a, !o.no_service) < 0) {
		fflush(stdout);
		return 3;
	}
	if (o.flood) {
		pthread_t th;
		if (pthread_create(&th, NULL, flood, (void *)a.name) != 0)
			fprintf(stderr, "%s: pthread_create failed\n", a.name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	printf("%s: ready\n", a.name);
	if (o.crash_after >= 0)
		crash_at = t0 + (uint64_t)o.crash_after;
	if (o.unhealthy_after >= 0)
		bad_at = t0 + (uint64_t)o.unhealthy_after;
	wd_ms = agent_watchdog_ms();
	if (o.notify || getenv("NOTIFY_SOCKET")) {
		char st[160];
		snprintf(st, sizeof st, "READY=1\nSTATUS=serving on port %d", a.port);
		if (agent_notify(st) < 0)
			fprintf(stderr, "%s: sd_notify: %s\n", a.name, strerror(errno));
		if (wd_ms)
			next_wd = agent_now_ms() + wd_ms / 2;
	}

	for (;;) {
		uint64_t now = agent_now_ms();
		int64_t timeout = -1;
		if (got_term) {
			if (!o.ignore_term) {
				printf("%s: SIGTERM, exiting\n", a.name);
				agent_close(&a);
				return 0;
			}
			printf("%s: ignoring SIGTERM\n", a.name);
			got_term = 0;
		}
		if (crash_at && now >= crash_at) {
			printf("%s: crashing with exit code %d as asked\n", a.name, o.exit_code);
			fflush(stdout);
			_exit(o.exit_code);
		}
		if (bad_at && now >= bad_at) {
			printf("%s: turning unhealthy as asked\n", a.name);
			a.mode = AH_BAD;
			bad_at = 0;
		}
		if (next_wd && now >= next_wd) {
			agent_notify("WATCHDOG=1");
			next_wd = now + wd_ms / 2;
		}
#define SOONER(t)                                                                  \
	if (t && (timeout < 0 || (int64_t)((t) - now) < timeout))                  \
		timeout = (int64_t)((t) - now);
		SOONER(crash_at)
		SOONER(bad_at)
		SOONER(next_wd)
#undef SOONER
		agent_poll(&a, (int)timeout, NULL);
	}
}
