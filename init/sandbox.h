/* sandbox: a group's sandbox and its agents' processes (runtime: native).
 *
 * A group's sandbox is one small holder process, made once by
 * sbx_prepare(): clone3() into the group's cgroup (CLONE_INTO_CGROUP) with
 * new mount, pid, ipc, uts and (unless network: host) net namespaces. It is
 * PID 1 of the group's pid namespace and reaps there; it builds the root
 * (the appliance root read-only, tmpfs /tmp /run, a minimal tmpfs /dev,
 * /proc and /sys read-only, the group's volumes, pivot_root), sets the
 * hostname to the group's name and brings up the network. Restarting an
 * agent does not rebuild any of that.
 *
 * sbx_spawn() starts one agent: clone3() into the cgroup and the holder's
 * pid namespace, join its other namespaces (setns on the holder's pidfd),
 * then in this order: rlimits, no_new_privs, uid/gid/groups from the group
 * root's /etc/passwd and /etc/group, capabilities (exactly the group's
 * list, none by default, also for root), seccomp, execve. A failure in the
 * child goes up a CLOEXEC pipe as a struct ai_err; then _exit(127).
 *
 * Supervisor use (one struct sbx_group per sandboxed group, sized at load):
 *   cg_open_base(&cg, ...) once;   sbx_prepare(&sg, cfg, gi, &opts, &e)
 *   before the group's first agent; sbx_spawn() per (re)start, then watch
 *   p.pidfd (exit) and p.execfd (readable: sbx_exec_status()); sbx_kill()
 *   to stop the group for sure; sbx_teardown() at the end.
 * Never blocks except in sbx_prepare() (until the holder reports its
 * root is built, ~1 ms) and sbx_teardown().
 */
#ifndef AINIT_SANDBOX_H
#define AINIT_SANDBOX_H

#include <limits.h>
#include <signal.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct ai_config;
struct cfg_mount;
struct cg_base;
struct gpu_plan;

struct sbx_opts {
	const char *root;         /* the group root: the appliance root; NULL = "/" */
	const char *state_dir;    /* STATE/notify; NULL = none */
	const char *volumes_dir;  /* named volumes without appliance.data_dir:
	                             see sbx_volume_source() */
	const char *const *seccomp_dirs; /* where NAME.policy is looked up (NULL-terminated) */
	struct cg_base *cg;       /* NULL: no cgroup (said once by the caller) */
	/* Extra device nodes (host paths) this group gets, e.g. the GPU nodes. */
	const char *const *extra_devices;
	/* `ainit sandbox`: sbx_prepare() returns before the holder is ready and
	 * the next sbx_spawn()'s child waits for it instead (the agent's fork
	 * overlaps the root's construction; not for network: bridge). */
	bool ready_in_child;
};

/* Where named volume m lives on the host: appliance.data_dir/NAME, else
 * volumes_dir/NAME, else state_dir/volumes/NAME, else
 * /var/lib/ainit/volumes/NAME. A bind mount's source as it is. */
const char *sbx_volume_source(const struct ai_config *c, const struct cfg_mount *m,
			      const char *volumes_dir, const char *state_dir, char *buf, size_t n);

struct sbx_group {
	const struct ai_config *cfg;
	int gi;                   /* group index */
	const char *name;
	char root[PATH_MAX];
	pid_t holder;             /* 0 = not prepared */
	int holder_pidfd;
	int cgfd;                 /* group cgroup dir, -1 without cgroup */
	struct cg_base *cg;
	int own_pidns;            /* the supervisor's pid namespace */
	int nsflags;              /* namespaces an agent joins besides pid */
	int unconfined;           /* seccomp: unconfined */
	struct sock_fprog seccomp;
	int seccomp_owned;        /* seccomp.filter is ours to free */
	uint64_t caps;
	char veth[16];
	int orphfd;               /* eventfd: orphans the holder reaped, -1 none */
	int readyfd;              /* ready_in_child: the holder's report, -1 none */
	uint64_t orphans;         /* summed by sbx_sup_orphans() */
	struct gpu_plan *gpu;     /* gpu: nodes, libraries, environment; NULL = none */
};

struct sbx_exec {
	const char *agent;        /* for messages; NULL = "sandbox" */
	char *const *argv;
	char *const *envp;        /* HOME, USER, LOGNAME, PATH added when absent */
	const char *user;         /* name or uid[:gid]; NULL = root */
	const char *cwd;          /* NULL = "/" */
	int stdio[3];             /* -1 = inherit */
	const sigset_t *sigmask;  /* the child's mask before exec; NULL = empty */
};

struct sbx_proc {
	pid_t pid;
	int pidfd;                /* CLOEXEC; readable when the agent exits */
	int execfd;               /* CLOEXEC, non-blocking; see sbx_exec_status() */
};

int sbx_prepare(struct sbx_group *s, const struct ai_config *cfg, int gi,
		const struct sbx_opts *o, struct ai_err *e);
/* On error no process is left and *e names the group and agent. */
int sbx_spawn(struct sbx_group *s, const struct sbx_exec *x, struct sbx_proc *p,
	      struct ai_err *e);
/* execfd readable: 0 = the command was exec'd (EOF; close the fd),
 * -EAGAIN = nothing yet, else the child's error in *e (close the fd).
 * sbx_exec_code(e) maps an error to 125/126/127. */
int sbx_exec_status(int execfd, struct ai_err *e);
int sbx_exec_code(const struct ai_err *e);
/* SIGKILL everything in the group (cgroup.kill; the holder when no cgroup). */
int sbx_kill(struct sbx_group *s, struct ai_err *e);
/* Kill the holder (which takes the pid namespace with it), reap it,
 * remove the cgroup. Safe on a group never prepared. */
void sbx_teardown(struct sbx_group *s);

/* Pure: look NAME (or "uid[:gid]") up in passwd/group text; fills uid, gid,
 * up to *ngroups supplementary groups, home. Unit-tested. */
int sbx_lookup_user(const char *passwd, const char *group, const char *name, uid_t *uid,
		    gid_t *gid, gid_t *groups, int *ngroups, char *home, size_t homelen);

/* ROOT/REL whole, malloc'd ("" when missing; NULL on ENOMEM). */
char *sbx_read_root_file(const char *root, const char *rel);

/* --- the supervisor's side (sandbox_sup.c) ----------------------------
 * `ainit run`/PID 1 keep one struct sbx_sup; each agent start goes through
 * spawn.c with the request pointed at the group's sandbox:
 *   sbx_sup_init() after the config is loaded; sbx_sup_spawn_req() before
 *   every spawn_start() (prepares the group on first use, or again when
 *   its holder died); sbx_sup_kill_group() to stop a group for sure;
 *   sbx_sup_fini() at the end. */
struct spawn_req;

#define SBX_MAX_GROUPS_PER_USER 64

struct sbx_sup {
	struct sbx_group *groups;   /* parallel to cfg->groups; holder 0 = not prepared */
	int ngroups;
	struct cg_base *cg;         /* NULL: no cgroup v2 (said once) */
	struct sbx_opts o;
	const char *dirs[3];
	char sdir[PATH_MAX];
	const char *state_dir;
	unsigned long seq;          /* unique runc container ids */
	struct sbx_ids *ids;        /* per agent: users resolved when its group is
	                               prepared, so a (re)start allocates nothing */
	int nagents;
};

struct sbx_ids {
	pid_t holder;               /* resolved for this holder; 0 = not yet */
	int rc;                     /* 0, or the lookup's error (err) */
	struct ai_err err;
	uid_t uid;
	gid_t gid, groups[SBX_MAX_GROUPS_PER_USER];
	int ngroups;
	bool bundle;                /* runtime: runc: STATE/oci/AGENT written */
	int leaffd;                 /* the agent's cgroup leaf, -1 none */
};

/* What the agent child needs, kept by the caller across spawn_start(). */
#define SBX_MAX_ENV 256
struct sbx_child {
	struct sbx_group *s;
	const char *agent;
	uid_t uid;
	gid_t gid, groups[SBX_MAX_GROUPS_PER_USER];
	int ngroups;
	char bundle[PATH_MAX];      /* runtime: runc */
	char id[128];
	char *argv[6];
	bool bind_root;
	/* gpu: the agent's environment plus its group's GPU variables (the
	 * caller's envp when the group has none) */
	char *envp[SBX_MAX_ENV + 4];
	char gpu_env[3][192];
};

/* volumes_dir: where named volumes live without appliance.data_dir (PID 1:
 * /var/lib/ainit/volumes, on the data disk; NULL: STATE/volumes). */
int sbx_sup_init(struct sbx_sup *x, const struct ai_config *cfg, const char *config_path,
		 const char *state_dir, const char *volumes_dir, struct ai_err *e);
void sbx_sup_fini(struct sbx_sup *x);
/* Point REQ (argv, envp already set for agent AI) at its group's sandbox:
 * cgroup_fd, sandbox (pid namespace), child_setup/child_data = C. */
int sbx_sup_spawn_req(struct sbx_sup *x, const struct ai_config *cfg, int ai,
		      struct sbx_child *c, struct spawn_req *req, struct ai_err *e);
/* The agent's ids from the group root's /etc/passwd and /etc/group. */
int sbx_resolve_user(const struct sbx_group *s, const char *agent, const char *user, uid_t *uid,
		     gid_t *gid, gid_t *groups, int *ngroups, char *home, size_t homelen,
		     struct ai_err *e);
int sbx_sup_kill_group(struct sbx_sup *x, int gi, struct ai_err *e);
/* Reload: follow config nc. prepare allocates the new tables (ENOMEM:
 * nothing changes); commit, which cannot fail, moves a group of the same
 * name over unless rebuild[its new index], tears the others (gone, rebuilt)
 * down (none of their agents may run) so that a rebuilt or new group is
 * prepared at its first start, and moves agent ids along new_of_old (old
 * agent -> new, -1 gone); an agent's user is looked up again at its next
 * start. discard frees what prepare made when no commit follows. */
struct sbx_remap {
	struct sbx_group *groups;
	struct sbx_ids *ids;
	bool *taken;
};
int sbx_sup_remap_prepare(const struct sbx_sup *x, const struct ai_config *nc,
			  struct sbx_remap *m, struct ai_err *e);
void sbx_sup_remap_commit(struct sbx_sup *x, const struct ai_config *old,
			  const struct ai_config *nc, const int *new_of_old, const bool *rebuild,
			  struct sbx_remap *m);
void sbx_sup_remap_discard(struct sbx_remap *m);
/* SIGKILL everything in agent AI's cgroup leaf: the agent and whatever it
 * left behind (cgroup.kill), for the stop timeout. */
int sbx_sup_kill_agent(struct sbx_sup *x, int ai, struct ai_err *e);
/* Orphans reaped inside the groups by their holders, so far (for status:
 * inside a sandbox orphans land on the holder, not on ainit). */
uint64_t sbx_sup_orphans(struct sbx_sup *x);
/* spawn.c: the child_setup hook (in the child, after its fds are set),
 * and the pid namespace the child is born in (around clone3). */
int sbx_child_setup(void *c, struct ai_err *e);
int sbx_pidns_enter(const struct sbx_group *s, struct ai_err *e);
void sbx_pidns_leave(const struct sbx_group *s);

/* `ainit check`: capability names, seccomp profiles (their own file:line
 * errors), bridge networking without a bridge (sandbox_check.c). */
struct diag_list;
void sbx_check(const struct ai_config *c, struct diag_list *d);

/* `ainit sandbox --config FILE GROUP -- CMD [ARGS...]` */
int cmd_sandbox(int argc, char **argv);

#endif
