/* ainit: one binary, several roles (DESIGN §1). PID 1 when the kernel starts
 * it; otherwise the first argument names the command. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "export_compose.h"
#include "gpu.h"
#include "import.h"
#include "oci.h"
#include "run.h"
#include "sandbox.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ainit COMMAND [ARGS]\n"
		   "  run --config FILE [--state-dir DIR]   supervise (subreaper)\n"
		   "  check FILE...                          validate configs\n"
		   "  import legacy STARTUP [GROUPING...] [-o OUT]  convert legacy YAML\n"
		   "  export compose CONFIG [-o OUT]         docker-compose for laptops\n"
		   "  export oci CONFIG GROUP -o DIR         OCI bundle (runc backend)\n"
		   "  ctl [--socket PATH] CMD [ARGS]         talk to a running ainit\n"
		   "  gpu [--json]                           the GPUs this host offers groups\n"
		   "  sandbox [--config FILE] GROUP -- CMD   run CMD in GROUP's sandbox\n"
		   "as PID 1 (the kernel's init), ainit boots the appliance from "
		   "/etc/ainit/appliance.yaml\n");
}

/* export compose lives with the config code, export oci with the sandbox:
 * dispatch here so neither links the other. */
static int cmd_export(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "oci"))
		return cmd_export_oci(argc - 1, argv + 1);
	return cmd_export_compose(argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{"run", cmd_run},
	{"check", cmd_check},
	{"import", cmd_import},
	{"export", cmd_export},  /* below: compose or oci */
	{"ctl", cmd_ctl},
	{"gpu", cmd_gpu},
	{"sandbox", cmd_sandbox},
};

int main(int argc, char **argv)
{
	if (getpid() == 1)
		return run_pid1(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "ainit: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
