/* boot: what only PID 1 does. Early mounts, hostname, kernel modules
 * (libkmod), and the final sync/unmount/reboot(2). The only module that
 * calls reboot(2). Never exits: every failure is reported on the console and
 * boot goes on in degraded mode.
 */
#ifndef AINIT_BOOT_H
#define AINIT_BOOT_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

struct ai_state;

/* What the kernel command line says about the root file system: root=
 * (PARTLABEL=NAME, LABEL=NAME or /dev/NAME), rootfstype=, ro/rw (last one
 * wins; read-only by default) and rootwait=SECONDS (how long to wait for the
 * device; default BOOT_ROOT_WAIT_S, never unbounded). */
#define BOOT_ROOT_WAIT_S 30
#define BOOT_ROOT_WAIT_MAX_S 3600
struct boot_root {
	char what[256];  /* "" when there is no root= */
	char fstype[32]; /* "" = try erofs, squashfs, ext4 */
	bool rw;
	unsigned wait_s;
};
/* 1: root= given and usable; 0: no root=; -EINVAL: a root= (or rootwait=,
 * rootfstype=) this init cannot use (UUID=, PARTUUID=, a device number, too
 * long, ...); r->what then holds it as given, for the error message. */
int boot_parse_root(const char *cmdline, struct boot_root *r);

/* The first stage loads modules without libkmod: from modules.dep (DEP, its
 * text), what to insert for module NAME ('-' and '_' alike), in load order:
 * its dependencies (the farthest first), then itself; paths relative to
 * /lib/modules/RELEASE, pointing into DEP. Returns how many, 0 when NAME is
 * not there, -E2BIG when MAX (or BOOT_MODDEP_MAX dependencies) is too few. */
#define BOOT_MODDEP_MAX 64
struct boot_modpath {
	const char *p;
	size_t len;
};
int boot_moddep_plan(const char *dep, const char *name, struct boot_modpath *out, int max);

/* Mount /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run, /tmp,
 * cgroup2 at /sys/fs/cgroup (each only when not mounted yet); point the log
 * sink at the console.
 *
 * First, when the kernel command line names a root= and / is still an
 * initramfs with /etc/initrd-release (image/disk's small one): the first
 * stage. Load the initramfs's modules
 * (/etc/modules-load.d and the rootfstype), wait (bounded) for the device,
 * mount it read-only at /sysroot, move /proc, /sys and /dev there, free the
 * initramfs, chroot and execve /sbin/init, which boots from there. When that
 * fails, st->degraded says why and boot goes on in the initramfs (ctl only);
 * when only the execve fails, this process boots from the new root. */
void boot_early(struct ai_state *st);
/* After the config loaded: hostname, kernel modules, appliance mounts. */
void boot_apply(struct ai_state *st, const struct ai_config *cfg);
/* Everything stopped: sync, unmount, print the last line, reboot(2) as
 * st->final says. Never returns. */
void boot_final(struct ai_state *st) __attribute__((noreturn));

#endif
