/* gpu: NVIDIA GPUs for the groups that ask for them (`gpu:` on a group).
 *
 * Owns: reading what the driver registered (majors in /proc/devices, GPUs in
 * /proc/driver/nvidia/gpus/<bus>/information, device-file params), making the
 * device nodes at boot as nvidia-modprobe does, finding the driver's
 * user-space libraries, and the per-group plan: which nodes the group's /dev
 * and device-cgroup program get, which libraries are bind-mounted read-only,
 * which environment is set. gpu_plan() and chk_gpu_host() are pure.
 * Never forks, never loads modules (boot.c does, via libkmod), never mounts
 * (sandbox.c applies the plan). All paths are parameters so tests can point
 * them at a stand-in tree.
 *
 * GPU indexes in the config are nvidia-smi's: PCI bus order. The node of a
 * GPU is /dev/nvidia<minor>, its minor from the driver's information file.
 */
#ifndef AINIT_GPU_H
#define AINIT_GPU_H

#include <stdbool.h>

#include "config.h"
#include "diag.h"
#include "err.h"

#define GPU_MAJOR 195 /* fixed by the driver: GPUs, nvidiactl (255), modeset (254) */
#define GPU_MAX 32
#define GPU_MAX_NODES (GPU_MAX + 4)
#define GPU_MAX_LIBS 64
#define GPU_PATH 256

struct gpu_paths {
	char proc[GPU_PATH]; /* "/proc" */
	char dev[GPU_PATH];  /* "/dev" */
	char root[GPU_PATH]; /* "" (= /): prefix of the library directories */
};
/* /proc, /dev, / -- or, for tests, $AINIT_GPU_ROOT/{proc,dev,} when set. */
void gpu_paths_default(struct gpu_paths *p);

struct gpu_majors { int nvidia, uvm, caps; }; /* -1 = not registered */
/* Text of /proc/devices -> majors. Pure. */
void gpu_parse_proc_devices(const char *text, struct gpu_majors *m);

struct gpu_dev {
	int minor;          /* /dev/nvidia<minor> */
	char bus[32];       /* "0000:01:00.0"; "" when only the node was seen */
	char model[96];
	bool node_ok;       /* <dev>/nvidia<minor> is char 195:<minor> */
};

struct gpu_host {
	bool driver;        /* the nvidia major is registered */
	struct gpu_majors maj;
	struct gpu_dev gpus[GPU_MAX]; /* in index (PCI bus) order */
	int ngpus;
	bool ctl_ok, uvm_ok, uvm_tools_ok, modeset_ok; /* nodes present and right */
	char dev[GPU_PATH]; /* the host's device directory the nodes are in */
	char libs[GPU_MAX_LIBS][GPU_PATH]; /* driver libraries: the files, full host paths */
	int nlibs;
	bool have_libcuda, have_libnvml;
};

/* Read what the driver registered and what is on the root. A host without
 * the driver is not an error (h->driver = false); an unreadable
 * /proc/devices is. */
int gpu_discover(const struct gpu_paths *p, struct gpu_host *h, struct ai_err *e);

struct gpu_node {
	char name[48];      /* under /dev: "nvidia0", "nvidiactl", "nvidia-uvm" */
	char source[GPU_PATH + 48]; /* the host's node: <dev>/<name> */
	char type;          /* 'c' */
	int major, minor;
};

struct gpu_env { const char *key; char value[128]; };

struct gpu_plan {
	int ngpus, gpus[GPU_MAX];  /* host indexes given to the group */
	struct gpu_node nodes[GPU_MAX_NODES]; /* exactly what /dev and the BPF program allow */
	int nnodes;
	char dev[GPU_PATH];        /* host device directory: source of the nodes */
	char libs[GPU_MAX_LIBS][GPU_PATH]; /* bind read-only onto the same path in the group */
	int nlibs;
	struct gpu_env env[3];     /* CUDA_/NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES */
	int nenv;
};

/* What group `group` asking `want` gets on host h. mode none: an empty plan.
 * Errors (no driver, UVM not loaded, index absent, count too big, nodes
 * missing, libcuda absent) name the group. Pure. */
int gpu_plan(const struct cfg_gpu *want, const struct gpu_host *h, const char *group,
	     struct gpu_plan *p, struct ai_err *e);

/* For sandbox.c: discover this host (gpu_paths_default) and plan group g.
 * *out = NULL for a group without gpu:, else a heap plan (free()). Errors
 * name the group; other groups are unaffected. */
int gpu_plan_group(const struct cfg_group *g, struct gpu_plan **out, struct ai_err *e);

/* Boot (PID 1): create <dev>/nvidiactl, nvidia<minor> for each GPU,
 * nvidia-modeset, nvidia-uvm(-tools), nvidia-caps/nvidia-cap<N> with the
 * majors from /proc/devices and mode/owner from the driver's params.
 * Nodes that exist and are right are left alone. Returns the number of
 * nodes made or checked, -errno on the first failure (after trying all). */
int gpu_make_nodes(const struct gpu_paths *p, struct ai_err *e);

/* Does any group of c ask for GPUs? (boot: make the nodes only then) */
bool gpu_config_wants(const struct ai_config *c);

/* `ainit check`: a warning, naming the group, for every group that asks for
 * GPUs host h does not have. chk_gpu() discovers the host it runs on. */
void chk_gpu_host(const struct ai_config *c, const struct gpu_host *h, struct diag_list *d);
void chk_gpu(const struct ai_config *c, struct diag_list *d);

/* `ainit gpu [--json]`: what this host offers groups; `ainit gpu plan CONFIG
 * [GROUP...]`: what each group gets, as JSON; `ainit gpu mknod`: the boot
 * step by hand, on a host where nothing made the nodes. */
int cmd_gpu(int argc, char **argv);

#endif
