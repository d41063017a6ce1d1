#include "caps.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

int caps_from_name(const char *name)
{
	char buf[64];
	cap_value_t v;
	size_t n = 0;
	if (!name || !*name)
		return -1;
	if (strncasecmp(name, "cap_", 4))
		n = (size_t)snprintf(buf, sizeof buf, "cap_");
	for (const char *p = name; *p && n + 1 < sizeof buf; p++)
		buf[n++] = (char)tolower((unsigned char)*p);
	buf[n] = 0;
	/* libcap also accepts bare numbers; a config must name capabilities. */
	if (isdigit((unsigned char)buf[4]))
		return -1;
	if (cap_from_name(buf, &v) < 0 || v < 0 || v > 63)
		return -1;
	return (int)v;
}

const char *caps_name(int cap, char *buf, unsigned n)
{
	char *s = cap_to_name((cap_value_t)cap);
	snprintf(buf, n, "%s", s ? s : "?");
	cap_free(s);
	return buf;
}

int caps_last_cap(void)
{
	static const int fallback = CAP_LAST_CAP;
	char b[16] = "";
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fallback;
	ssize_t r = read(fd, b, sizeof b - 1);
	close(fd);
	if (r <= 0)
		return fallback;
	int v = atoi(b);
	return v > 0 && v < 64 ? v : fallback;
}

int caps_parse(const char *const *names, int n, uint64_t *mask, struct ai_err *e)
{
	uint64_t m = 0;
	for (int i = 0; i < n; i++) {
		if (!strcasecmp(names[i], "ALL") || !strcasecmp(names[i], "CAP_ALL")) {
			int last = caps_last_cap();
			m |= last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
			continue;
		}
		int c = caps_from_name(names[i]);
		if (c < 0)
			return ai_fail(e, "caps", "parse", EINVAL,
				       "unknown capability \"%s\" (names are like CAP_NET_BIND_SERVICE)",
				       names[i]);
		m |= 1ULL << c;
	}
	*mask = m;
	return 0;
}

int caps_apply(uint64_t mask, struct ai_err *e)
{
	int last = caps_last_cap();
	cap_value_t setpcap = CAP_SETPCAP;
	cap_t c;

	/* Bounding first: dropping from it needs CAP_SETPCAP in the effective
	 * set, which a uid change just cleared (KEEPCAPS kept it permitted). */
	c = cap_get_proc();
	if (!c)
		return ai_fail(e, "caps", "cap_get_proc", errno, "capabilities");
	if (cap_set_flag(c, CAP_EFFECTIVE, 1, &setpcap, CAP_SET) < 0 || cap_set_proc(c) < 0) {
		int err = errno;
		cap_free(c);
		return ai_fail(e, "caps", "cap_set_proc", err, "raise CAP_SETPCAP to drop the bounding set");
	}
	cap_free(c);
	for (int i = 0; i <= last; i++) {
		if (mask & (1ULL << i))
			continue;
		if (cap_drop_bound((cap_value_t)i) < 0 && errno != EINVAL)
			return ai_fail(e, "caps", "cap_drop_bound", errno, "capability %d", i);
	}

	c = cap_init();
	if (!c)
		return ai_fail(e, "caps", "cap_init", errno, "capabilities");
	for (int i = 0; i <= last; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		cap_value_t v = i;
		if (cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_SET) < 0 ||
		    cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 ||
		    cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0) {
			cap_free(c);
			return ai_fail(e, "caps", "cap_set_flag", errno, "capability %d", i);
		}
	}
	if (cap_set_proc(c) < 0) {
		int err = errno;
		cap_free(c);
		return ai_fail(e, "caps", "cap_set_proc", err, "set permitted/effective/inheritable");
	}
	cap_free(c);

	/* Ambient: what a non-root uid keeps across execve. Must be permitted
	 * and inheritable already, hence last. */
	if (cap_reset_ambient() < 0 && errno != EINVAL)
		return ai_fail(e, "caps", "cap_reset_ambient", errno, "ambient set");
	for (int i = 0; i <= last; i++)
		if ((mask & (1ULL << i)) && cap_set_ambient((cap_value_t)i, CAP_SET) < 0)
			return ai_fail(e, "caps", "cap_set_ambient", errno, "capability %d", i);
	return 0;
}
