/* err: the one error object carried up from where a call fails.
 *
 * Owns: struct ai_err and its formatting. Never allocates: the message is a
 * fixed buffer, so error paths work when memory is gone (PID 1 must not die
 * because it could not describe a failure).
 *
 * Shape of a printed error:  module: subject: step: message: strerror(errnum)
 */
#ifndef AINIT_ERR_H
#define AINIT_ERR_H

#include <stddef.h>

struct ai_err {
	const char *module;  /* "sandbox", "config", ... (static string) */
	const char *step;    /* the call or stage that failed (static string) */
	int errnum;          /* errno, 0 when not a system error */
	char msg[256];       /* subject and detail, already formatted */
};

/* Fill *e (if non-NULL) and return -errnum (or -EINVAL when errnum is 0). */
int ai_fail(struct ai_err *e, const char *module, const char *step, int errnum,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "module: msg: step: strerror" into buf; returns buf. */
const char *ai_err_str(const struct ai_err *e, char *buf, size_t n);

void ai_err_clear(struct ai_err *e);

#endif
