/* spawn: start one process for the supervisor, without blocking it.
 *
 * clone3(CLONE_PIDFD) gives the pid and a pidfd at once. The child resets
 * every signal disposition and the mask, makes its own session, sets up its
 * fds and exec's; a failure before exec is written as a struct spawn_fail
 * up a CLOEXEC pipe that the loop watches (EOF = exec succeeded), then the
 * child _exit(127). Never waits for the child.
 */
#ifndef AINIT_SPAWN_H
#define AINIT_SPAWN_H

#include <sys/types.h>

#include "config.h"
#include "err.h"

struct sbx_group;

struct spawn_req {
	const char *const *argv;
	char *const *envp;
	const char *cwd;       /* NULL = / */
	int in_fd, out_fd, err_fd; /* -1 = /dev/null */
	const char *what;      /* agent name, for messages */
	/* Optional: runs in the child after fds are set, before exec (the
	 * sandbox's per-agent setup). Returns 0 or fills *e and returns <0. */
	int (*child_setup)(void *data, struct ai_err *e);
	void *child_data;
	int cgroup_fd;         /* >= 0: clone3(CLONE_INTO_CGROUP) */
	const struct cfg_rlimits *rlimits; /* NULL: inherit ainit's */
	/* Non-NULL: the child is born in this group sandbox's pid namespace
	 * (sandbox.h; child_setup joins the rest). */
	const struct sbx_group *sandbox;
};

struct spawn_result {
	pid_t pid;
	int pidfd;
	int execfd;  /* read end: EOF = exec ok, sizeof(struct spawn_fail) = failed */
};

struct spawn_fail {
	int errnum;
	char step[32];
	char msg[192];
};

int spawn_start(const struct spawn_req *r, struct spawn_result *out, struct ai_err *e);

/* setrlimit() for every limit the config sets (soft = hard), first of the
 * per-agent steps: later steps (dropping privileges) can only lower them. */
int spawn_rlimits(const struct cfg_rlimits *rl, struct ai_err *e);

/* execvp without its fallback of running a non-executable file with
 * /bin/sh: returns only on failure, errno set (ENOENT: not found anywhere
 * on PATH; EACCES/ENOEXEC: not executable). PATH comes from envp. */
void spawn_exec(const char *const *argv, char *const *envp);

/* Read the exec-status pipe after it became readable. Returns 1 when exec
 * succeeded (EOF), 0 when *f was filled with the child's failure, -EAGAIN
 * when nothing is there yet. */
int spawn_read_status(int execfd, struct spawn_fail *f);

#endif
