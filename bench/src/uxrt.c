/* bench: one request line over a UNIX socket, read one reply line.
 *   uxrt serve PATH   echo server (the anchor's peer)
 *   uxrt PATH LINE    one round trip, like `ainit ctl` minus its work */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[65536];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (!strcmp(argv[1], "serve")) {
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[2]);
		unlink(argv[2]);
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0)
			return 1;
		for (;;) {
			int c = accept(fd, NULL, NULL);
			ssize_t n = read(c, buf, sizeof buf);
			if (n > 0 && write(c, buf, (size_t)n) < 0)
				return 1;
			close(c);
		}
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return 1;
	size_t l = strlen(argv[2]);
	memcpy(buf, argv[2], l);
	buf[l++] = '\n';
	if (write(fd, buf, l) < 0)
		return 1;
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof buf - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (buf[got - 1] == '\n')
			break;
	}
	return got ? 0 : 1;
}
