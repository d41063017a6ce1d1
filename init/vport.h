/* vport: the control channel of an appliance in a VM. A virtio-serial port
 * named "ainit.ctl" carries the same line protocol as the ctl socket (one
 * JSON request per line, one reply line), served by ctl_handle_line() with
 * admin rights: whoever can reach the host end of the port owns the VM.
 *
 * Waits without polling: the port appears asynchronously after
 * virtio_console loads, so vport listens for kernel uevents of the
 * virtio-ports subsystem (a netlink socket; no udev needed) and rescans
 * /sys/class/virtio-ports on each. With no host client connected the port
 * reads as hung up (POLLHUP, read 0) at once; vport then takes it out of
 * epoll and waits for SIGIO (O_ASYNC), which virtio_console raises when the
 * host connects or sends data. An idle port makes no wakeups.
 *
 * Replies are written non-blocking; what the host does not take because its
 * client left is dropped, never delivered later to another client. One
 * exception, for a driver quirk: a request whose client seems gone within
 * VPORT_GRACE_MS of its arrival is held that long (see hold_or_drop).
 * Buffers are allocated once, in vport_open(). Never blocks, never forks
 * (but vport_drain(), for the very end).
 */
#ifndef AINIT_VPORT_H
#define AINIT_VPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"

#define VPORT_NAME "ainit.ctl"

struct ai_vport {
	int fd;                  /* the port, -1 until found */
	int uevfd;               /* netlink uevent socket while searching, else -1 */
	int sigfd;               /* signalfd for SIGIO, -1 until the port opens */
	struct loop_src src, uevsrc, sigsrc;
	struct loop_timer retry; /* fallback when uevents are not available */
	struct loop_timer stale; /* drops what a vanished client left */
	unsigned retry_ms;
	uint64_t last_rx_ms;     /* when data last came in */
	bool in_epoll;           /* port fd registered (host connected) */
	bool async;              /* O_ASYNC on: waiting for SIGIO */
	bool skipping;           /* discarding an oversized request line */
	size_t inlen, outlen, outoff;
	char *in;                /* CTL_MAX_REQ + 1 */
	char *out;               /* CTL_MAX_REPLY */
	char path[64];           /* /dev/vportNpM */
	unsigned long requests, dropped;
};

/* Start looking for the port and serve it once found. Safe to call in
 * degraded mode (no config). Returns 0, or -errno when it cannot even start
 * looking (reported in *e; the init goes on without the channel). */
int vport_open(struct ai_state *st, struct ai_err *e);
void vport_close(struct ai_state *st);

/* Serve an open fd as the channel (vport_open() does this once it found the
 * port; tests pass one end of a socketpair, which hangs up the same way).
 * Takes the fd, also on failure; NAME is for messages. st->vport must be
 * zeroed or set up by vport_open(). */
int vport_attach(struct ai_state *st, int fd, const char *name, struct ai_err *e);

/* Last words: boot.c, before reboot(2). Wait up to timeout_ms for the host
 * to take a reply still pending (the answer to `poweroff` itself). */
void vport_drain(struct ai_state *st, int timeout_ms);

#endif
