/* boot: what only PID 1 does. Early mounts, hostname, kernel modules
 * (libkmod), and the final sync/unmount/reboot(2). The only module that
 * calls reboot(2). Never exits: every failure is reported on the console and
 * boot goes on in degraded mode.
 */
#ifndef AINIT_BOOT_H
#define AINIT_BOOT_H

#include "config.h"

struct ai_state;

/* Mount /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run, /tmp,
 * cgroup2 at /sys/fs/cgroup; point the log sink at the console. */
void boot_early(struct ai_state *st);
/* After the config loaded: hostname, kernel modules, appliance mounts. */
void boot_apply(struct ai_state *st, const struct ai_config *cfg);
/* Everything stopped: sync, unmount, print the last line, reboot(2) as
 * st->final says. Never returns. */
void boot_final(struct ai_state *st) __attribute__((noreturn));

#endif
