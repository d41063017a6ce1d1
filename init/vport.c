/* vport: the ctl protocol over the virtio-serial port "ainit.ctl". See vport.h.
 *
 * Port states and what wakes us in each:
 *   searching     not found yet: a kernel uevent of virtio-ports (netlink),
 *                 or, when netlink is unavailable, a backing-off timer
 *   disconnected  open, no host client: read gives 0, poll gives POLLHUP at
 *                 once, so the fd is out of epoll and O_ASYNC is on: SIGIO
 *                 (signalfd) when the host connects or data arrives
 *   connected     fd in epoll (EPOLLIN, plus EPOLLOUT while a reply waits),
 *                 O_ASYNC off so each request wakes us once
 */
#include "vport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define PORTS_DIR "/sys/class/virtio-ports"
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 5000
#define VPORT_GRACE_MS 1000

static void service(struct ai_state *st);
static void on_port(struct ai_state *st, struct loop_src *src, uint32_t events);

static int read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	int err = errno;
	close(fd);
	if (r < 0)
		return -err;
	buf[r] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Find the port by name; make its device node when devtmpfs lacks it.
 * Returns 1 found (v->path set), 0 not (yet), <0 error (in *e). */
static int scan(struct ai_vport *v, struct ai_err *e)
{
	DIR *d = opendir(PORTS_DIR);
	struct dirent *de;
	int found = 0;
	if (!d)
		return errno == ENOENT ? 0 : ai_fail(e, "vport", "opendir", errno, PORTS_DIR);
	while (!found && (de = readdir(d))) {
		char p[300], name[64], dev[32];
		if (strncmp(de->d_name, "vport", 5) != 0 || strlen(de->d_name) > 40)
			continue;
		snprintf(p, sizeof p, PORTS_DIR "/%s/name", de->d_name);
		/* The name arrives from the host after the port itself: an
		 * empty or missing name means "not yet", a change uevent follows. */
		if (read_small(p, name, sizeof name) < 0 || strcmp(name, VPORT_NAME) != 0)
			continue;
		snprintf(p, sizeof p, PORTS_DIR "/%s/dev", de->d_name);
		unsigned maj, min;
		int r = read_small(p, dev, sizeof dev);
		if (r < 0) {
			ai_fail(e, "vport", "read", -r, "%s", p);
			found = r;
			break;
		}
		if (sscanf(dev, "%u:%u", &maj, &min) != 2) {
			ai_fail(e, "vport", "parse", EINVAL, "%s: \"%s\"", p, dev);
			found = -EINVAL;
			break;
		}
		snprintf(v->path, sizeof v->path, "/dev/%s", de->d_name);
		struct stat sb;
		if (stat(v->path, &sb) < 0) {
			if (errno != ENOENT || mknod(v->path, S_IFCHR | 0600, makedev(maj, min)) < 0) {
				found = ai_fail(e, "vport", "mknod", errno, "%s", v->path);
				break;
			}
		} else if (!S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(maj, min)) {
			found = ai_fail(e, "vport", "stat", ENODEV, "%s is not device %u:%u",
					v->path, maj, min);
			break;
		}
		found = 1;
	}
	closedir(d);
	return found;
}

static void set_async(struct ai_vport *v, bool on)
{
	if (v->async == on)
		return;
	int fl = fcntl(v->fd, F_GETFL);
	if (fl < 0 || fcntl(v->fd, F_SETFL, on ? fl | O_ASYNC : fl & ~O_ASYNC) < 0) {
		log_err("vport", v->path, "fcntl O_ASYNC: %s", strerror(errno));
		return;
	}
	v->async = on;
}

/* Is a host client connected? virtio_console's poll says POLLHUP exactly
 * when it is not (a socketpair whose peer left says the same). */
static bool host_here(struct ai_vport *v)
{
	struct pollfd p = {.fd = v->fd, .events = POLLIN | POLLOUT};
	if (poll(&p, 1, 0) < 0)
		return false;
	return !(p.revents & (POLLHUP | POLLERR));
}

/* A host is connected: serve the fd from epoll, without SIGIO. */
static void watch(struct ai_state *st, bool want_out)
{
	struct ai_vport *v = &st->vport;
	struct ai_err e = {0};
	uint32_t ev = EPOLLIN | (want_out ? EPOLLOUT : 0);
	if (v->in_epoll) {
		if (loop_mod(&st->loop, &v->src, ev, &e) < 0)
			log_error(&e);
		return;
	}
	if (loop_add(&st->loop, &v->src, v->fd, ev, on_port, NULL, &e) < 0) {
		log_error(&e);
		return;
	}
	v->in_epoll = true;
	set_async(v, false);
}

/* No host: out of epoll (it would report HUP forever), wait for SIGIO,
 * which the driver raises when a host connects or sends. */
static void unwatch(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	if (v->in_epoll) {
		loop_del(&st->loop, &v->src);
		v->in_epoll = false;
	}
	set_async(v, true);
}

static void drop(struct ai_vport *v)
{
	if (v->outlen > v->outoff)
		v->dropped++;
	v->inlen = v->outlen = v->outoff = 0;
	v->skipping = false;
}

/* The host is gone: what we hold belonged to a client that left, and must
 * never reach the next one. Except just after data came in: the driver
 * handles the host's "connected" message in a workqueue but data in the
 * interrupt, so a fresh client's request can arrive while the port still
 * reads as hung up. Hold such state for VPORT_GRACE_MS (SIGIO comes with
 * the "connected" message); the stale timer drops it after that. Returns
 * true when held. */
static bool hold_or_drop(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	uint64_t until = v->last_rx_ms + VPORT_GRACE_MS;
	if ((v->inlen || v->outlen) && ai_now_ms() < until && v->stale.slot >= 0) {
		loop_timer_arm(&st->loop, &v->stale, until);
		return true;
	}
	drop(v);
	return false;
}

static void on_stale(struct ai_state *st, struct loop_timer *t)
{
	(void)t;
	if (st->vport.fd < 0)
		return;
	if (!host_here(&st->vport))
		drop(&st->vport);
	else
		/* The host connected but its SIGIO came before we listened for
		 * it: without this, the held reply (and every read behind it)
		 * would wait forever. */
		service(st);
}

/* Write what is pending. Returns true when nothing is left. */
static bool flush(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	while (v->outoff < v->outlen) {
		ssize_t w = write(v->fd, v->out + v->outoff, v->outlen - v->outoff);
		if (w > 0) {
			v->outoff += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return false; /* queue full, or no host: the caller decides */
		log_warn("vport", v->path, "write: %s; reply dropped", w < 0 ? strerror(errno) : "0 bytes");
		v->dropped++;
		break;
	}
	v->outlen = v->outoff = 0;
	return true;
}

/* Handle complete lines while no reply is pending (one reply in flight
 * keeps the buffer bounded; the rest waits in the port's queue). */
static void process(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	while (v->outlen == 0) {
		char *nl = memchr(v->in, '\n', v->inlen);
		if (!nl) {
			if (v->inlen < CTL_MAX_REQ)
				return;
			/* A line longer than the bound: answer once, skip to its end. */
			v->inlen = 0;
			if (!v->skipping) {
				v->skipping = true;
				int n = snprintf(v->out, CTL_MAX_REPLY,
						 "{\"v\":%d,\"error\":\"request longer than %d bytes\"}\n",
						 CTL_VERSION, CTL_MAX_REQ);
				v->outlen = (size_t)n;
				flush(st);
			}
			continue;
		}
		size_t len = (size_t)(nl - v->in);
		if (v->skipping) {
			v->skipping = false;
		} else {
			v->in[len] = '\0';
			v->outlen = ctl_handle_line(st, v->in, len, true, v->out, CTL_MAX_REPLY);
			if (v->outlen > CTL_MAX_REPLY)
				v->outlen = CTL_MAX_REPLY;
			v->requests++;
			flush(st);
		}
		v->inlen -= len + 1;
		memmove(v->in, nl + 1, v->inlen);
	}
}

static void on_port(struct ai_state *st, struct loop_src *src, uint32_t events)
{
	(void)src;
	(void)events;
	service(st);
}

/* Move everything as far as it goes, and take the port's state from what
 * the calls say: data or EAGAIN on read = a host is connected; read 0 = no
 * host and nothing queued. Reads stop while a reply waits. */
static void service(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	for (;;) {
		if (v->outlen > 0) {
			if (flush(st)) {
				process(st);
				continue;
			}
			if (host_here(v)) { /* queue full: wait for room */
				watch(st, true);
				return;
			}
			unwatch(st);
			if (hold_or_drop(st))
				return;
			continue;
		}
		ssize_t n = read(v->fd, v->in + v->inlen, CTL_MAX_REQ - v->inlen);
		if (n > 0) {
			v->inlen += (size_t)n;
			v->last_rx_ms = ai_now_ms();
			process(st);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			watch(st, false);
			return;
		}
		if (n < 0)
			log_err("vport", v->path, "read: %s", strerror(errno));
		/* A host that came in before O_ASYNC was on raised no SIGIO we
		 * could see: after switching to SIGIO, read once more. */
		bool was_watching = v->in_epoll || !v->async;
		unwatch(st);
		if (was_watching && n == 0)
			continue;
		hold_or_drop(st);
		return;
	}
}

static void on_sigio(struct ai_state *st, struct loop_src *src, uint32_t events)
{
	struct signalfd_siginfo si;
	(void)events;
	while (read(src->fd, &si, sizeof si) == (ssize_t)sizeof si)
		;
	if (st->vport.fd >= 0)
		service(st);
}

static void reset(struct ai_vport *v)
{
	memset(v, 0, sizeof *v);
	v->fd = v->uevfd = v->sigfd = -1;
	v->retry.slot = -1;
	v->stale.slot = -1;
}

static int buffers(struct ai_state *st, struct ai_err *e)
{
	struct ai_vport *v = &st->vport;
	if (!v->in)
		v->in = malloc(CTL_MAX_REQ + 1);
	if (!v->out)
		v->out = malloc(CTL_MAX_REPLY);
	if (!v->in || !v->out)
		return ai_fail(e, "vport", "malloc", ENOMEM, "buffers");
	return 0;
}

int vport_attach(struct ai_state *st, int fd_, const char *name, struct ai_err *e)
{
	struct ai_vport *v = &st->vport;
	AI_AUTOCLOSE int fd = fd_;
	sigset_t set;
	if (!v->in)
		reset(v); /* zeroed: never set up by vport_open() */
	if (buffers(st, e) < 0)
		return -ENOMEM;
	snprintf(v->path, sizeof v->path, "%s", name);
	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	/* SIGIO is ours alone: blocked here and read from our own signalfd, so
	 * the supervisor's signalfd never sees it. Children get an empty mask
	 * from spawn. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return ai_fail(e, "vport", "sigprocmask", errno, "SIGIO");
	AI_AUTOCLOSE int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		return ai_fail(e, "vport", "signalfd", errno, "SIGIO");
	/* SIGIO goes to us; O_ASYNC itself is switched on at the first hangup. */
	if (fcntl(fd, F_SETOWN, getpid()) < 0)
		return ai_fail(e, "vport", "fcntl F_SETOWN", errno, "%s", v->path);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return ai_fail(e, "vport", "fcntl O_NONBLOCK", errno, "%s", v->path);
	int r = loop_add(&st->loop, &v->sigsrc, sfd, EPOLLIN, on_sigio, NULL, e);
	if (r < 0)
		return r;
	if (v->stale.slot < 0) {
		r = loop_timer_register(&st->loop, &v->stale, on_stale, NULL, e);
		if (r < 0) {
			loop_del(&st->loop, &v->sigsrc);
			return r;
		}
	}
	/* Start in epoll, not by reading here: requests queued before boot
	 * must be served from the loop, once the supervisor is set up, not
	 * from inside vport_open(). The first round sees data or the hangup. */
	r = loop_add(&st->loop, &v->src, fd, EPOLLIN, on_port, NULL, e);
	if (r < 0) {
		loop_del(&st->loop, &v->sigsrc);
		return r;
	}
	v->in_epoll = true;
	v->sigfd = ai_take_fd(&sfd);
	v->fd = ai_take_fd(&fd);
	return 0;
}

static int open_port(struct ai_state *st, struct ai_err *e)
{
	struct ai_vport *v = &st->vport;
	int fd = open(v->path, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return ai_fail(e, "vport", "open", errno, "%s", v->path);
	char path[sizeof v->path];
	memcpy(path, v->path, sizeof path);
	int r = vport_attach(st, fd, path, e);
	if (r == 0)
		log_info("vport", v->path, "control channel %s open", VPORT_NAME);
	return r;
}

static void found(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	struct ai_err e = {0};
	if (v->uevfd >= 0) {
		loop_del(&st->loop, &v->uevsrc);
		close(v->uevfd);
		v->uevfd = -1;
	}
	if (open_port(st, &e) < 0)
		log_error(&e);
}

static void on_uevent(struct ai_state *st, struct loop_src *src, uint32_t events)
{
	char buf[4096];
	bool ours = false;
	(void)events;
	for (;;) {
		ssize_t n = recv(src->fd, buf, sizeof buf - 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != ENOBUFS)
				log_warn("vport", "uevent", "recv: %s", strerror(errno));
			/* ENOBUFS: events lost; rescan to be sure */
			if (errno == ENOBUFS)
				ours = true;
			if (errno != ENOBUFS)
				break;
			continue;
		}
		buf[n] = '\0';
		/* "ACTION@DEVPATH\0KEY=VALUE\0..."; the header is enough. */
		if (strstr(buf, "/virtio-ports/"))
			ours = true;
	}
	if (!ours)
		return;
	struct ai_err e = {0};
	int r = scan(&st->vport, &e);
	if (r < 0)
		log_error(&e);
	else if (r > 0)
		found(st);
}

static void on_retry(struct ai_state *st, struct loop_timer *t)
{
	struct ai_vport *v = &st->vport;
	struct ai_err e = {0};
	int r = scan(v, &e);
	if (r < 0)
		log_error(&e);
	if (r > 0) {
		found(st);
		return;
	}
	v->retry_ms = v->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : v->retry_ms * 2;
	loop_timer_arm_in(&st->loop, t, v->retry_ms);
}

static int uevent_open(struct ai_state *st, struct ai_err *e)
{
	struct ai_vport *v = &st->vport;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	AI_AUTOCLOSE int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				     NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return ai_fail(e, "vport", "socket", errno, "netlink uevent");
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return ai_fail(e, "vport", "bind", errno, "netlink uevent");
	int r = loop_add(&st->loop, &v->uevsrc, fd, EPOLLIN, on_uevent, NULL, e);
	if (r < 0)
		return r;
	v->uevfd = ai_take_fd(&fd);
	return 0;
}

int vport_open(struct ai_state *st, struct ai_err *e)
{
	struct ai_vport *v = &st->vport;
	reset(v);
	if (buffers(st, e) < 0) {
		vport_close(st);
		return -ENOMEM;
	}
	/* Listen before scanning, so that a port appearing in between is seen. */
	struct ai_err ue = {0};
	bool have_uevents = uevent_open(st, &ue) == 0;
	int r = scan(v, e);
	if (r < 0) {
		vport_close(st);
		return r;
	}
	if (r > 0) {
		found(st);
		return 0;
	}
	if (have_uevents) {
		log_info("vport", NULL, "waiting for virtio-serial port %s", VPORT_NAME);
		return 0;
	}
	log_warn("vport", NULL, "%s; looking for port %s on a timer instead",
		 ue.msg, VPORT_NAME);
	r = loop_timer_register(&st->loop, &v->retry, on_retry, NULL, e);
	if (r < 0) {
		vport_close(st);
		return r;
	}
	v->retry_ms = RETRY_MIN_MS;
	loop_timer_arm_in(&st->loop, &v->retry, v->retry_ms);
	return 0;
}

void vport_close(struct ai_state *st)
{
	struct ai_vport *v = &st->vport;
	if (v->in_epoll)
		loop_del(&st->loop, &v->src);
	v->in_epoll = false;
	if (v->uevfd >= 0) {
		loop_del(&st->loop, &v->uevsrc);
		close(v->uevfd);
	}
	if (v->sigfd >= 0) {
		loop_del(&st->loop, &v->sigsrc);
		close(v->sigfd);
	}
	if (v->fd >= 0)
		close(v->fd);
	if (v->retry.slot >= 0)
		loop_timer_unregister(&st->loop, &v->retry);
	if (v->stale.slot >= 0)
		loop_timer_unregister(&st->loop, &v->stale);
	v->fd = v->uevfd = v->sigfd = -1;
	free(v->in);
	free(v->out);
	v->in = v->out = NULL;
}

void vport_drain(struct ai_state *st, int timeout_ms)
{
	struct ai_vport *v = &st->vport;
	uint64_t deadline = ai_now_ms() + (uint64_t)timeout_ms;
	sigset_t io;
	if (v->fd < 0 || v->outlen == 0)
		return;
	sigemptyset(&io);
	sigaddset(&io, SIGIO);
	set_async(v, true);
	while (v->outoff < v->outlen) {
		uint64_t now = ai_now_ms();
		if (now >= deadline)
			break;
		ssize_t w = write(v->fd, v->out + v->outoff, v->outlen - v->outoff);
		if (w > 0) {
			v->outoff += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			break;
		uint64_t left = deadline - now;
		if (host_here(v)) {
			struct pollfd p = {.fd = v->fd, .events = POLLOUT};
			poll(&p, 1, (int)left);
		} else {
			struct timespec ts = {.tv_sec = (time_t)(left / 1000),
					      .tv_nsec = (long)(left % 1000) * 1000000L};
			sigtimedwait(&io, NULL, &ts); /* the host connecting */
		}
	}
	if (v->outoff < v->outlen)
		v->dropped++;
	v->outlen = v->outoff = 0;
}
