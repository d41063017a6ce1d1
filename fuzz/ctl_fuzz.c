/* libFuzzer harness for the control protocol: any bytes from a client, cut
 * into lines as the socket server cuts them, answered by ctl_handle_line()
 * on a supervisor with a loaded config (agents not started) and on a
 * degraded one. Every reply must be one JSON object line that our own
 * parser reads back; a crash, a sanitizer report or a hang is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "state.h"

static const char config[] =
	"version: 1\n"
	"groups:\n"
	"  g:\n"
	"    agents:\n"
	"      a: {command: [sleep, \"1\"], port: 7200, health_port: 8200, health: {zmq: 8200}}\n"
	"      b: {command: [sleep, \"1\"], depends_on: [a, {name: g, restart: true}]}\n"
	"  h:\n"
	"    depends_on: [g, \"pc2:x\"]\n"
	"    agents: {c: {command: [\"true\"], health: {tcp: 9}}}\n";

static struct ai_state loaded, degraded;
static char *out, *sbuf;
static struct jv *pool;

static void setup(void)
{
	struct diag_list d = {0};
	struct ai_err e = {0};
	char path[64];
	int fd = memfd_create("cfg", 0);
	if (fd < 0 || write(fd, config, sizeof config - 1) != (ssize_t)(sizeof config - 1))
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	const char *f = path;
	loaded.cfg = cfg_load(&f, 1, &d);
	if (!loaded.cfg || loop_init(&loaded.loop, 64, &e) < 0 || sup_init(&loaded, &e) < 0)
		abort();
	diag_free(&d);
	snprintf(degraded.degraded, sizeof degraded.degraded, "fuzz");
	out = malloc(CTL_MAX_REPLY);
	sbuf = malloc(CTL_MAX_REPLY);
	pool = malloc(sizeof *pool * 65536);
	if (!out || !sbuf || !pool)
		abort();
}

static void answer(struct ai_state *st, const char *line, size_t len, bool admin)
{
	size_t n = ctl_handle_line(st, line, len, admin, out, CTL_MAX_REPLY);
	struct jparse p = {.pool = pool, .cap = 65536, .sbuf = sbuf, .scap = CTL_MAX_REPLY};
	if (n == 0 || n > CTL_MAX_REPLY || out[n - 1] != '\n' || memchr(out, '\n', n - 1))
		abort(); /* not exactly one line */
	if (json_parse(&p, out, n - 1) < 0)
		abort(); /* not JSON */
	st->phase = PHASE_RUN; /* a poweroff must not end the next input's run */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *s = (const char *)data;
	if (!ready) {
		setup();
		ready = 1;
	}
	for (size_t start = 0, i = 0; i <= size; i++) {
		if (i < size && s[i] != '\n')
			continue;
		/* read-only commands with a config; anything on the degraded one */
		answer(&loaded, s + start, i - start, false);
		answer(&degraded, s + start, i - start, true);
		start = i + 1;
	}
	return 0;
}
