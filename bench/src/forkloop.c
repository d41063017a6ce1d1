/* bench anchor: the bare restart loop, fork + exec STAMP FILE, waitpid, again. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			execl(argv[2], argv[2], argv[3], (char *)NULL);
			_exit(127);
		}
		waitpid(p, NULL, 0);
	}
	return 0;
}
