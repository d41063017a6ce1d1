/* bench helper: append CLOCK_MONOTONIC ns to FILE, then exit 1 (a crash). */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct timespec ts;
	char b[32];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(b, sizeof b, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	int fd = open(argc > 1 ? argv[1] : "/dev/null", O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0 && write(fd, b, (size_t)n) < 0)
		return 2;
	return 1;
}
