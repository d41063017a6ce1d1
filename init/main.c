#include <stdio.h>
#include <string.h>
#include "check.h"
#include "gpu.h"
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "gpu"))
		return cmd_gpu(argc - 1, argv + 1);
	return 0;
}
