/* cgroup: one cgroup v2 directory per group under ainit's own.
 *
 * Owns: finding the cgroup2 mount and ainit's own cgroup, the base
 * directory for the groups, enabling controllers, writing limits
 * (memory.max, memory.high, cpu.max, cpu.weight, pids.max), the device
 * allow-list as a BPF_CGROUP_DEVICE program, cgroup.kill, removal.
 * Never forks. Where the host's cgroup v2 lacks a controller (hybrid hosts
 * whose controllers are held by cgroup v1) it says so once per controller
 * and runs without that limit.
 */
#ifndef AINIT_CGROUP_H
#define AINIT_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct cfg_resources;

enum { CG_MEMORY = 1, CG_CPU = 2, CG_PIDS = 4 };

struct cg_base {
	int fd;                /* O_PATH|O_DIRECTORY of the base directory, -1 none */
	char path[4096];       /* absolute path of the base directory */
	unsigned have;         /* CG_* controllers enabled for the groups */
	unsigned warned;       /* CG_* already reported missing */
	bool created;          /* we made it: cg_close_base() removes it */
};

/* One device rule: type 'c' or 'b'; major/minor -1 = any; access "rwm". */
struct cg_dev {
	char type;
	int64_t major, minor;
	const char *access;
};

/* Find cgroup2 (mount it on /sys/fs/cgroup when PID 1 and absent), make
 * NAME under ainit's own cgroup and enable what controllers exist. */
int cg_open_base(struct cg_base *b, const char *name, struct ai_err *e);
void cg_close_base(struct cg_base *b);
/* Remove the empty leftovers of ainit processes that were SIGKILLed
 * (ainit.PID, ainit-sandbox.PID beside our base whose PID is gone). */
void cg_sweep_stale(const struct cg_base *b);

/* Make (or reuse, empty) the group's directory; returns its dirfd. */
int cg_create(struct cg_base *b, const char *group, struct ai_err *e);
/* Write the limits that are set; a missing controller is logged once. */
int cg_apply_limits(struct cg_base *b, int dirfd, const char *group,
		    const struct cfg_resources *r, struct ai_err *e);
/* Attach a device program allowing exactly RULES (default deny). */
int cg_apply_devices(int dirfd, const char *group, const struct cg_dev *rules, int n,
		     struct ai_err *e);
/* The minimal set every group gets (null zero full random urandom tty
 * ptmx pts, mknod of anything). */
extern const struct cg_dev cg_dev_minimal[];
extern const int cg_dev_nminimal;

/* A leaf under the group's directory (the holder's, one per agent):
 * processes live in leaves so that one agent can be killed for sure. */
int cg_leaf(int groupfd, const char *leaf, const char *group, struct ai_err *e);

/* SIGKILL every process in the group, for sure. */
int cg_kill(int dirfd, const char *group, struct ai_err *e);
/* rmdir the group's directory (retries while the last tasks exit). */
int cg_remove(struct cg_base *b, const char *group, struct ai_err *e);

/* Pure: the BPF program for RULES into insns (struct bpf_insn[]); returns
 * the count or -E2BIG when cap is too small. Unit-tested. */
int cg_dev_prog(const struct cg_dev *rules, int n, void *insns, int cap);
/* Pure: cpu.max text for a CPU count in thousandths ("150000 100000"). */
void cg_cpu_max(int64_t cpus_milli, char *buf, unsigned n);

#endif
