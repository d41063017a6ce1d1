/* libFuzzer harness for the config loader and the checker: any bytes as a
 * config file. Each input goes the way `ainit check` sends a file: the legacy
 * reader and its checks, or the schema-v1 loader, chk_config(), the
 * importer and the compose exporter. A crash, a sanitizer report, a leak or
 * a hang is a finding; diagnostics are the expected outcome. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "export_compose.h"
#include "import.h"
#include "legacy.h"

static void drain(void (*emit)(void *, FILE *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	emit(arg, f);
	fclose(f);
	free(buf);
}

struct imp_arg {
	struct lg_set *s;
	struct lg_file *st;
	struct diag_list *d;
};

static void do_import(void *p, FILE *f)
{
	struct imp_arg *a = p;
	imp_legacy(a->s, a->st, f, a->d);
}

static void do_export(void *p, FILE *f)
{
	exp_compose(p, f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag_list d = {0};
	struct lg_set *s = lg_set_new();
	char path[64];
	int k;

	if (!s)
		return 0;
	k = lg_add_buf(s, "fuzz.yaml", (const char *)data, size, &d);
	if (k > LG_V1) {
		lg_check(s, NULL, &d);
		struct imp_arg a = {s, lg_get(s, 0), &d};
		if (k == LG_STARTUP)
			drain(do_import, &a);
	} else if (k == LG_V1) {
		/* the loader reads files: hand it this input as one */
		int fd = memfd_create("fuzz", MFD_CLOEXEC);
		if (fd >= 0 && write(fd, data, size) == (ssize_t)size) {
			snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
			const char *f = path;
			struct ai_config *c = cfg_load(&f, 1, &d);
			if (c) {
				const struct ai_config *cs[] = {c, c};
				chk_config(c, &d);
				chk_configs(cs, 2, &d);
				drain(do_export, c);
			}
			cfg_free(c);
		}
		if (fd >= 0)
			close(fd);
	}
	diag_sort(&d);
	if (getenv("FUZZ_PRINT"))
		diag_print(&d, stderr);
	diag_free(&d);
	lg_set_free(s);
	return 0;
}
