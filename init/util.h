/* util: pure helpers with no side effects on the system beyond memory:
 * cleanup attributes, clocks, duration and size parsing, a bump arena.
 * Never forks, never logs.
 */
#ifndef AINIT_UTIL_H
#define AINIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void ai_closep(int *fd);
void ai_freep(void *p);
#define AI_AUTOCLOSE __attribute__((cleanup(ai_closep)))
#define AI_AUTOFREE __attribute__((cleanup(ai_freep)))

/* Hand an AI_AUTOCLOSE fd out of its scope. */
static inline int ai_take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define AI_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t ai_now_ms(void);

/* "200ms", "30s", "5m", "1h", "1d", "1.5s", bare number = seconds.
 * Returns 0 or -EINVAL / -ERANGE. */
int ai_parse_duration_ms(const char *s, int64_t *out);
/* "512MiB", "2GiB", "1G", "100k", bare number = bytes; "max" = -1. */
int ai_parse_size(const char *s, int64_t *out);
/* Non-empty and only 0-9. */
bool ai_all_digits(const char *s);
/* Decimal integer in [lo, hi]; 0 or -EINVAL / -ERANGE. */
int ai_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* "SIGTERM", "TERM", "15" -> 15; -EINVAL when unknown. */
int ai_parse_signal(const char *s);
const char *ai_signal_name(int sig);

/* Format a duration for humans: "1.2s", "3m04s", "2h01m". */
void ai_fmt_duration(char *buf, size_t n, uint64_t ms);

/* Arena: all of a config's memory, freed at once. */
struct ai_arena {
	struct ai_arena_blk *head;
};
void *ai_arena_alloc(struct ai_arena *a, size_t n); /* zeroed; NULL on ENOMEM */
char *ai_arena_strdup(struct ai_arena *a, const char *s);
char *ai_arena_strndup(struct ai_arena *a, const char *s, size_t n);
void ai_arena_free(struct ai_arena *a);

/* Write all of buf (retrying EINTR/short writes) to a blocking fd. */
int ai_write_all(int fd, const void *buf, size_t n);

#endif
