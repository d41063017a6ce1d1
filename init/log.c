#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

/* The log sink: the one mutable global besides struct ai_state. */
static struct {
	int fd;
	enum log_level level;
	const char *prefix;
	uint64_t dropped;
} sink = {2, LOG_INFO, "ainit", 0};

void log_set_fd(int fd) { sink.fd = fd; }
void log_set_level(enum log_level lvl) { sink.level = lvl; }
void log_set_prefix(const char *prefix) { sink.prefix = prefix; }
uint64_t log_dropped(void) { return sink.dropped; }

static void emit(const char *line, size_t n)
{
	ssize_t w;
	do
		w = write(sink.fd, line, n);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)n)
		sink.dropped++;
}

void log_msg(enum log_level lvl, const char *module, const char *subject,
	     const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char line[1024];
	int n, saved = errno;
	va_list ap;
	if (lvl > sink.level)
		return;
	n = snprintf(line, sizeof line, "%s[%d]: %s: %s: %s%s", sink.prefix, (int)getpid(),
		     names[lvl], module, subject ? subject : "", subject ? ": " : "");
	if (n < 0 || n >= (int)sizeof line)
		n = 0;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	emit(line, (size_t)n);
	errno = saved;
}

void log_error(const struct ai_err *e)
{
	char buf[512];
	log_msg(LOG_ERR, e->module ? e->module : "ainit", NULL, "%s",
		ai_err_str(e, buf, sizeof buf) + strlen(e->module ? e->module : "ainit") + 2);
}
