/* log: ainit's own messages, one line per event, shaped like errors:
 *   ainit[pid]: LEVEL module: subject: message
 * The sink is the only mutable global besides the state struct: stderr for
 * `ainit run`, the console (and /dev/kmsg when it opens) for PID 1. Writes
 * never block the loop: the sink fd is non-blocking and a line that does not
 * fit is dropped and counted.
 */
#ifndef AINIT_LOG_H
#define AINIT_LOG_H

#include <stdint.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct ai_err;

void log_set_fd(int fd);          /* default 2 */
void log_set_level(enum log_level lvl);
void log_set_prefix(const char *prefix); /* default "ainit" */
uint64_t log_dropped(void);

void log_msg(enum log_level lvl, const char *module, const char *subject,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_error(const struct ai_err *e); /* prints an ai_err once, at the edge */

#define log_err(m, s, ...) log_msg(LOG_ERR, m, s, __VA_ARGS__)
#define log_warn(m, s, ...) log_msg(LOG_WARN, m, s, __VA_ARGS__)
#define log_info(m, s, ...) log_msg(LOG_INFO, m, s, __VA_ARGS__)
#define log_debug(m, s, ...) log_msg(LOG_DEBUG, m, s, __VA_ARGS__)

#endif
