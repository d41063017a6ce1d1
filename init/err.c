#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ai_fail(struct ai_err *e, const char *module, const char *step, int errnum,
	    const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->module = module;
		e->step = step;
		e->errnum = errnum;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return errnum > 0 ? -errnum : -EINVAL;
}

const char *ai_err_str(const struct ai_err *e, char *buf, size_t n)
{
	char eb[128] = "";
	if (e->errnum > 0)
		snprintf(eb, sizeof eb, ": %s", strerror(e->errnum));
	snprintf(buf, n, "%s: %s%s%s%s", e->module ? e->module : "ainit", e->msg,
		 e->step ? ": " : "", e->step ? e->step : "", eb);
	return buf;
}

void ai_err_clear(struct ai_err *e)
{
	memset(e, 0, sizeof *e);
}
