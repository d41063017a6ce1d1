#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ainit ctl [--socket PATH] [--json] COMMAND [ARGS]\n"
		   "commands:\n"
		   "  status              agents, states, pids, uptimes, restarts\n"
		   "  start|stop|restart AGENT|GROUP\n"
		   "  poweroff | reboot   orderly stop of everything (PID 1: then power off/reboot;\n"
		   "                      `ainit run`: then exit)\n"
		   "  logs AGENT [-n N] [-f]  the agent's last N lines (default 100); -f follows\n"
		   "  health AGENT        last health checks: result, output, latency, schedule\n"
		   "  events              follow state changes as they happen (--json: raw)\n"
		   "  reload              re-read the config; restart only what changed\n"
		   "  ping\n"
		   "socket: --socket, $AINIT_SOCKET, or " CLI_DEFAULT_SOCKET "\n");
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 15};
	int fd;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "ainit ctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ainit ctl: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "ainit ctl: cannot connect to %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* A guest behind a virtio-serial port may still be booting: bounded wait. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		fprintf(stderr, "ainit ctl: setsockopt(SO_RCVTIMEO): %s\n", strerror(errno));
	return fd;
}

/* Send one request line, read one reply line into a malloc'd buffer. With
 * keep, the connection stays open in *keep (for logs -f). */
static char *roundtrip(const char *path, const char *req, size_t *len, int *keep)
{
	AI_AUTOCLOSE int fd = ctl_connect(path);
	size_t cap = CTL_MAX_REPLY + 1, n = 0;
	char *buf;
	if (fd < 0)
		return NULL;
	if (ai_write_all(fd, req, strlen(req)) < 0) {
		fprintf(stderr, "ainit ctl: write to %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(cap);
	if (!buf) {
		fprintf(stderr, "ainit ctl: out of memory\n");
		return NULL;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "ainit ctl: no reply from %s: %s\n", path,
				errno == EAGAIN ? "timed out" : strerror(errno));
			free(buf);
			return NULL;
		}
		if (r == 0) {
			fprintf(stderr, "ainit ctl: %s closed the connection without a reply\n", path);
			free(buf);
			return NULL;
		}
		n += (size_t)r;
		char *nl = memchr(buf, '\n', n);
		if (nl) {
			*nl = 0;
			*len = (size_t)(nl - buf);
			if (keep)
				*keep = ai_take_fd(&fd);
			return buf;
		}
		if (n == cap - 1) {
			fprintf(stderr, "ainit ctl: reply too long\n");
			free(buf);
			return NULL;
		}
	}
}

static long long num(const struct jparse *p, int obj, const char *k)
{
	int i = json_get(p, obj, k);
	return i >= 0 && p->pool[i].kind == JV_NUM ? (long long)p->pool[i].num : 0;
}

static bool flag(const struct jparse *p, int obj, const char *k)
{
	int i = json_get(p, obj, k);
	return i >= 0 && p->pool[i].kind == JV_BOOL && p->pool[i].b;
}

static const char *str(const struct jparse *p, int obj, const char *k)
{
	const char *s = json_get_str(p, obj, k);
	return s ? s : "";
}

/* The names in array member k, comma-separated, on one line. */
static int print_names(const struct jparse *p, int root, const char *k, const char *label)
{
	int arr = json_get(p, root, k), n = 0;
	if (arr < 0 || p->pool[arr].kind != JV_ARR)
		return 0;
	for (int i = p->pool[arr].first_child; i >= 0; i = p->pool[i].next) {
		if (!n++)
			printf("%-10s ", label);
		if (p->pool[i].kind == JV_OBJ)
			printf("%s%s (%s)", n > 1 ? ", " : "", str(p, i, "name"), str(p, i, "changed"));
		else
			printf("%s%s", n > 1 ? ", " : "", p->pool[i].str ? p->pool[i].str : "");
	}
	if (n)
		printf("\n");
	return n;
}

static void print_reload(const struct jparse *p, int root)
{
	int n = print_names(p, root, "added", "added");
	n += print_names(p, root, "removed", "removed");
	n += print_names(p, root, "restarted", "restarted");
	print_names(p, root, "rebuilt_groups", "sandbox");
	printf("%-10s %lld agent(s)\n", "unchanged", num(p, root, "unchanged"));
	if (!n)
		printf("nothing to restart\n");
	if (print_names(p, root, "needs_reboot", "NOT APPLIED (needs reboot):"))
		printf("%-10s the running system keeps the old values of these keys\n", "");
	if (json_get_str(p, root, "diagnostics"))
		fputs(str(p, root, "diagnostics"), stderr);
}

static void print_probe_stat(const struct jparse *p, int o, const char *indent)
{
	int lo = json_get(p, o, "last_ok");
	printf("%schecks %lld, failures %lld, failing now %lld in a row\n", indent,
	       num(p, o, "checks"), num(p, o, "failures"), num(p, o, "failing_streak"));
	if (lo >= 0) {
		char ago[32];
		ai_fmt_duration(ago, sizeof ago, (uint64_t)num(p, o, "last_ago_ms"));
		printf("%slast: %s %s ago, %.3f ms (average %.3f ms): %s\n", indent,
		       flag(p, o, "last_ok") ? "pass" : "FAIL", ago, num(p, o, "last_latency_us") / 1000.0,
		       num(p, o, "avg_latency_us") / 1000.0, str(p, o, "last"));
	} else if (json_get_str(p, o, "last"))
		printf("%s%s\n", indent, str(p, o, "last"));
}

static void print_health(const struct jparse *p, int root)
{
	int pr = json_get(p, root, "probe"), rem;
	const char *kind = str(p, pr, "kind");
	printf("%s: %s, health %s\n", str(p, root, "name"), str(p, root, "state"),
	       str(p, root, "health"));
	if (json_get_str(p, root, "reason"))
		printf("  reason: %s\n", str(p, root, "reason"));
	if (!strcmp(kind, "none"))
		printf("  check: none (healthy once running)\n");
	else {
		char iv[32], to[32], sp[32], si[32];
		ai_fmt_duration(iv, sizeof iv, (uint64_t)num(p, pr, "interval_ms"));
		ai_fmt_duration(to, sizeof to, (uint64_t)num(p, pr, "timeout_ms"));
		ai_fmt_duration(sp, sizeof sp, (uint64_t)num(p, pr, "start_period_ms"));
		ai_fmt_duration(si, sizeof si, (uint64_t)num(p, pr, "start_interval_ms"));
		printf("  check: %s %s; every %s, timeout %s, %lld retries, start period %s "
		       "(probing up to every %s while starting)\n",
		       kind, str(p, pr, "target"), iv, to, num(p, pr, "retries"), sp, si);
		if (!strcmp(kind, "notify")) {
			char wd[32];
			ai_fmt_duration(wd, sizeof wd, (uint64_t)num(p, pr, "watchdog_ms"));
			printf("  notify: %s, watchdog %s, STATUS=%s\n",
			       flag(p, pr, "ready") ? "READY=1 received" : "no READY=1 yet",
			       num(p, pr, "watchdog_ms") ? wd : "off", str(p, pr, "status_text"));
		}
		print_probe_stat(p, pr, "  ");
		if (json_get(p, pr, "next_in_ms") >= 0) {
			char nx[32];
			ai_fmt_duration(nx, sizeof nx, (uint64_t)num(p, pr, "next_in_ms"));
			printf("  next: %s in %s\n", flag(p, pr, "in_flight") ? "deadline" : "check", nx);
		}
	}
	rem = json_get(p, pr, "remote");
	for (int i = rem >= 0 ? p->pool[rem].first_child : -1; i >= 0; i = p->pool[i].next) {
		printf("  remote dependency %s (%s): %s\n", str(p, i, "name"), str(p, i, "target"),
		       flag(p, i, "healthy") ? "healthy" : "NOT healthy");
		print_probe_stat(p, i, "    ");
	}
}

/* Print the table when `print`; return the exit status either way. */
static int print_status(const struct jparse *p, int root, bool print)
{
	int agents = json_get(p, root, "agents");
	int rc = 0;
	const char *deg = json_get_str(p, root, "degraded");
	if (deg) { /* no configuration runs: nothing the appliance is for works */
		rc = 3;
		if (print)
			printf("DEGRADED: %s\n", deg);
	}
	if (print)
		printf("%-20s %-28s %-9s %-9s %7s %8s %8s  %-11s %s\n", "GROUP", "AGENT", "STATE", "HEALTH",
	       "PID", "UPTIME", "RESTARTS", "PORTS", "NOTE");
	for (int i = agents >= 0 ? p->pool[agents].first_child : -1; i >= 0; i = p->pool[i].next) {
		char up[32] = "-", ports[32] = "-", note[300] = "", pids[24] = "-";
		const char *state = str(p, i, "state"), *health = str(p, i, "health");
		long long pid = num(p, i, "pid"), port = num(p, i, "port"), hp = num(p, i, "health_port");
		if (pid > 0) {
			ai_fmt_duration(up, sizeof up, (uint64_t)num(p, i, "uptime_ms"));
			snprintf(pids, sizeof pids, "%lld", pid);
		}
		if (port && hp)
			snprintf(ports, sizeof ports, "%lld/%lld", port, hp);
		else if (port)
			snprintf(ports, sizeof ports, "%lld", port);
		if (!strcmp(state, "waiting") && json_get_str(p, i, "waiting_for"))
			snprintf(note, sizeof note, "waiting for %s%s%.200s", str(p, i, "waiting_for"),
				 json_get_str(p, i, "waiting_reason") ? ": " : "",
				 str(p, i, "waiting_reason"));
		else if ((!strcmp(state, "starting") || !strcmp(state, "unhealthy")) &&
			 json_get_str(p, i, "probe"))
			snprintf(note, sizeof note, "last check: %.250s", str(p, i, "probe"));
		else if (!strcmp(state, "backoff")) {
			char d[32];
			ai_fmt_duration(d, sizeof d, (uint64_t)num(p, i, "next_delay_ms"));
			snprintf(note, sizeof note, "restart in %s; last: %s", d, str(p, i, "reason"));
		} else if (json_get_str(p, i, "reason") && strcmp(state, "healthy"))
			snprintf(note, sizeof note, "%s", str(p, i, "reason"));
		else if (json_get_str(p, i, "dep_down"))
			snprintf(note, sizeof note, "dependency %.200s is not healthy",
				 str(p, i, "dep_down"));
		if (print)
			printf("%-20s %-28s %-9s %-9s %7s %8s %8lld  %-11s %s\n", str(p, i, "group"),
			       str(p, i, "name"), state, health, pids, up, num(p, i, "restarts"),
			       ports, note);
		if (!strcmp(state, "failed") ||
		    (flag(p, i, "required") && strcmp(state, "healthy") && strcmp(state, "starting")))
			rc = 3;
	}
	return rc;
}

/* One pushed object: a log line, or a state change. */
static void print_pushed(const struct jparse *p, int root, const char *raw, bool json)
{
	const char *line = json_get_str(p, root, "log");
	int ev = json_get(p, root, "event");
	if (json) {
		printf("%s\n", raw);
	} else if (line) {
		printf("%s\n", line);
	} else if (ev >= 0) {
		long long t = num(p, ev, "t_ms"), pid = num(p, ev, "pid");
		const char *why = json_get_str(p, ev, "reason"), *wf = json_get_str(p, ev, "waiting_for");
		printf("%+9.3fs %-20s %-28s %-9s -> %-9s", (double)t / 1000.0, str(p, ev, "group"),
		       str(p, ev, "agent"), str(p, ev, "from"), str(p, ev, "to"));
		if (pid > 0)
			printf(" pid %lld", pid);
		if (wf)
			printf(" (waiting for %s)", wf);
		else if (why && strcmp(str(p, ev, "to"), "healthy") && strcmp(str(p, ev, "to"), "starting"))
			printf(" (%s)", why);
		printf("\n");
	}
}

/* logs -f, events: print each pushed object until the server goes away. */
static int follow_stream(int fd, bool json)
{
	struct timeval tv = {0};
	static char buf[CTL_MAX_REPLY];
	size_t n = 0;
	struct jv pool[64];
	/* no receive timeout while following */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		return 1;
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? 1 : 0;
		n += (size_t)r;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', (size_t)(buf + n - start)))) {
			char sb[CTL_MAX_REQ];
			struct jparse p = {.pool = pool, .cap = 64, .sbuf = sb, .scap = sizeof sb};
			*nl = 0;
			int root = json_parse(&p, start, (size_t)(nl - start));
			if (root >= 0)
				print_pushed(&p, root, start, json);
			start = nl + 1;
		}
		fflush(stdout);
		n = (size_t)(buf + n - start);
		memmove(buf, start, n);
		if (n == sizeof buf - 1)
			n = 0; /* an absurd line: drop it */
	}
}

int cmd_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *path = getenv("AINIT_SOCKET");
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!path)
		path = CLI_DEFAULT_SOCKET;
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *verb = argv[optind++];
	const char *target = NULL;
	long lines = -1;
	bool follow = false;
	for (; optind < argc; optind++) {
		if (!strcmp(argv[optind], "--json"))
			json = true;
		else if (!strcmp(argv[optind], "-f") || !strcmp(argv[optind], "--follow"))
			follow = true;
		else if (!strcmp(argv[optind], "-n") && optind + 1 < argc) {
			char *end;
			lines = strtol(argv[++optind], &end, 10);
			if (*end || lines < 0 || lines > 100000) {
				fprintf(stderr, "ainit ctl: -n wants a number of lines (0..100000)\n");
				return 2;
			}
		}
		else if (!target)
			target = argv[optind];
		else {
			fprintf(stderr, "ainit ctl: unexpected argument \"%s\"\n", argv[optind]);
			return 2;
		}
	}
	if ((!strcmp(verb, "start") || !strcmp(verb, "stop") || !strcmp(verb, "restart") ||
	     !strcmp(verb, "logs") || !strcmp(verb, "health")) &&
	    !target) {
		fprintf(stderr, "ainit ctl %s: name an agent or a group\n", verb);
		return 2;
	}

	char req[1024];
	struct jw w;
	jw_init(&w, req, sizeof req - 2);
	jw_obj_begin(&w);
	jw_kstr(&w, "cmd", verb);
	if (target)
		jw_kstr(&w, "target", target);
	if (lines >= 0)
		jw_kint(&w, "n", lines);
	if (follow)
		jw_kbool(&w, "follow", true);
	jw_obj_end(&w);
	if (w.overflow) {
		fprintf(stderr, "ainit ctl: arguments too long\n");
		return 2;
	}
	req[w.len++] = '\n';
	req[w.len] = 0;

	size_t len;
	AI_AUTOCLOSE int keep = -1;
	bool stream = follow || !strcmp(verb, "events");
	AI_AUTOFREE char *reply = roundtrip(path, req, &len, stream ? &keep : NULL);
	if (!reply)
		return 1;
	struct jparse p = {.cap = 1 << 16, .scap = len + 1};
	AI_AUTOFREE struct jv *pool = p.pool = malloc(sizeof(struct jv) * (size_t)p.cap);
	AI_AUTOFREE char *sbuf = p.sbuf = malloc(p.scap);
	if (!pool || !sbuf) {
		fprintf(stderr, "ainit ctl: out of memory\n");
		return 1;
	}
	int root = json_parse(&p, reply, len);
	if (root < 0) {
		fprintf(stderr, "ainit ctl: malformed reply: %s\n", p.err);
		return 1;
	}
	const char *err = json_get_str(&p, root, "error");
	if (err) {
		if (json)
			printf("%s\n", reply);
		fprintf(stderr, "ainit ctl %s: %s\n", verb, err);
		if (!json && json_get_str(&p, root, "diagnostics")) /* reload: the new config's */
			fputs(str(&p, root, "diagnostics"), stderr);
		return 1;
	}
	if (!strcmp(verb, "reload") && !json) {
		print_reload(&p, root);
		return 0;
	}
	if (!strcmp(verb, "status")) {
		if (json)
			printf("%s\n", reply);
		return print_status(&p, root, !json);
	}
	if (!strcmp(verb, "logs") && !json) {
		fputs(str(&p, root, "text"), stdout);
		fflush(stdout);
		if (keep >= 0)
			return follow_stream(keep, false);
		return 0;
	}
	if (!strcmp(verb, "events")) {
		if (json)
			printf("%s\n", reply);
		else
			printf("%10s %-20s %-28s %-9s    %-9s\n", "TIME", "GROUP", "AGENT", "FROM", "TO");
		fflush(stdout); /* a reader waits for this line before it acts */
		return keep >= 0 ? follow_stream(keep, json) : 1;
	}
	if (!strcmp(verb, "health") && !json) {
		print_health(&p, root);
		return 0;
	}
	if (json)
		printf("%s\n", reply);
	return 0;
}
