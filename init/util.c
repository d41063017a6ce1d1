#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void ai_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

void ai_freep(void *p)
{
	free(*(void **)p);
}

uint64_t ai_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Parse a non-negative decimal with optional fraction; *end after it. */
static int parse_decimal(const char *s, double *v, const char **end)
{
	const char *p = s;
	double x = 0;
	int digits = 0;
	while (isdigit((unsigned char)*p)) {
		x = x * 10 + (*p - '0');
		p++, digits++;
		if (x > 1e18)
			return -ERANGE;
	}
	if (*p == '.') {
		double f = 0.1;
		p++;
		while (isdigit((unsigned char)*p)) {
			x += (*p - '0') * f;
			f /= 10;
			p++, digits++;
		}
	}
	if (!digits)
		return -EINVAL;
	*v = x;
	*end = p;
	return 0;
}

int ai_parse_duration_ms(const char *s, int64_t *out)
{
	static const struct { const char *u; double ms; } units[] = {
		{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
		{"", 1000},
	};
	double total = 0;
	const char *p = s;
	if (!s || !*s)
		return -EINVAL;
	/* Allow compound forms like "1m30s". */
	while (*p) {
		double v;
		const char *e;
		int r = parse_decimal(p, &v, &e);
		size_t i, ul = 0;
		if (r < 0)
			return r;
		while (isalpha((unsigned char)e[ul]))
			ul++;
		for (i = 0; i < AI_ARRAY_SIZE(units); i++)
			if (strlen(units[i].u) == ul && strncmp(units[i].u, e, ul) == 0)
				break;
		if (i == AI_ARRAY_SIZE(units))
			return -EINVAL;
		if (ul == 0 && p != s)
			return -EINVAL; /* "1m30" is ambiguous */
		total += v * units[i].ms;
		if (total > 9.2e15)
			return -ERANGE;
		p = e + ul;
	}
	*out = (int64_t)(total + 0.5);
	return 0;
}

int ai_parse_size(const char *s, int64_t *out)
{
	static const struct { const char *u; double mul; } units[] = {
		{"", 1}, {"b", 1}, {"k", 1024}, {"kb", 1e3}, {"kib", 1024},
		{"m", 1048576}, {"mb", 1e6}, {"mib", 1048576},
		{"g", 1073741824}, {"gb", 1e9}, {"gib", 1073741824},
		{"t", 1099511627776.0}, {"tb", 1e12}, {"tib", 1099511627776.0},
	};
	double v;
	const char *e;
	int r;
	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "max") == 0) {
		*out = -1;
		return 0;
	}
	r = parse_decimal(s, &v, &e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < AI_ARRAY_SIZE(units); i++)
		if (strcasecmp(units[i].u, e) == 0) {
			double b = v * units[i].mul;
			if (b > 9.2e18)
				return -ERANGE;
			*out = (int64_t)b;
			return 0;
		}
	return -EINVAL;
}

bool ai_all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int ai_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;
	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end || end == s)
		return -EINVAL;
	if (errno == ERANGE || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

static const struct { const char *name; int sig; } sigtab[] = {
	{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"PWR", SIGPWR},
	{"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
	{"WINCH", SIGWINCH},
};

int ai_parse_signal(const char *s)
{
	int64_t n;
	if (!s)
		return -EINVAL;
	if (ai_parse_int(s, 1, 64, &n) == 0)
		return (int)n;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < AI_ARRAY_SIZE(sigtab); i++)
		if (strcasecmp(s, sigtab[i].name) == 0)
			return sigtab[i].sig;
	return -EINVAL;
}

const char *ai_signal_name(int sig)
{
	static const char *const names[] = {
		[SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT",
		[SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGUSR2] = "SIGUSR2",
		[SIGTERM] = "SIGTERM", [SIGPWR] = "SIGPWR", [SIGABRT] = "SIGABRT",
		[SIGSEGV] = "SIGSEGV", [SIGBUS] = "SIGBUS", [SIGILL] = "SIGILL",
		[SIGFPE] = "SIGFPE", [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",
		[SIGSYS] = "SIGSYS", [SIGTRAP] = "SIGTRAP",
	};
	if (sig > 0 && sig < (int)AI_ARRAY_SIZE(names) && names[sig])
		return names[sig];
	return "signal";
}

void ai_fmt_duration(char *buf, size_t n, uint64_t ms)
{
	uint64_t s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, n, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, n, "%llu.%llus", (unsigned long long)s,
			 (unsigned long long)(ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, n, "%llum%02llus", (unsigned long long)s / 60,
			 (unsigned long long)s % 60);
	else if (s < 86400)
		snprintf(buf, n, "%lluh%02llum", (unsigned long long)s / 3600,
			 (unsigned long long)(s % 3600) / 60);
	else
		snprintf(buf, n, "%llud%02lluh", (unsigned long long)s / 86400,
			 (unsigned long long)(s % 86400) / 3600);
}

struct ai_arena_blk {
	struct ai_arena_blk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void *ai_arena_alloc(struct ai_arena *a, size_t n)
{
	struct ai_arena_blk *b = a->head;
	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		b = calloc(1, sizeof *b + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

char *ai_arena_strndup(struct ai_arena *a, const char *s, size_t n)
{
	char *p = ai_arena_alloc(a, n + 1);
	if (p)
		memcpy(p, s, n);
	return p;
}

char *ai_arena_strdup(struct ai_arena *a, const char *s)
{
	return s ? ai_arena_strndup(a, s, strlen(s)) : NULL;
}

void ai_arena_free(struct ai_arena *a)
{
	struct ai_arena_blk *b = a->head, *n;
	for (; b; b = n) {
		n = b->next;
		free(b);
	}
	a->head = NULL;
}

int ai_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
