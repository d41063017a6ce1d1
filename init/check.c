#include "check.h"
#include "gpu.h"

#include <stdio.h>
#include <string.h>

void chk_config(const struct ai_config *c, struct diag_list *d)
{
	(void)c;
	(void)d;
}

int cmd_check(int argc, char **argv)
{
	int rc = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: ainit check FILE...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct diag_list d = {0};
		const char *f[] = {argv[i]};
		struct ai_config *c = cfg_load(f, 1, &d);
		if (c)
			chk_config(c, &d);
		if (c)
			chk_gpu(c, &d); /* the host's GPUs: gpu.c */
		diag_sort(&d);
		diag_print(&d, stderr);
		if (d.errors)
			rc = rc ? rc : 1;
		for (int j = 0; j < d.n; j++)
			if (d.v[j].rule && !strcmp(d.v[j].rule, "io"))
				rc = 2;
		diag_free(&d);
		cfg_free(c);
	}
	return rc;
}
