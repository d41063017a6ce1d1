#include <stdio.h>
#include <string.h>
#include "check.h"
#include "sandbox.h"
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "sandbox"))
		return cmd_sandbox(argc - 1, argv + 1);
	return 0;
}
