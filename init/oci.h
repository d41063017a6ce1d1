/* oci: the runc backend. The same group config, written as an OCI runtime
 * bundle (config.json) that `runc run` (or crun) executes with the same
 * namespaces, read-only root, /dev, capabilities, seccomp profile, users,
 * volumes, cgroup limits and device rules as a native group.
 *
 * Owns: `ainit export oci CONFIG GROUP -o DIR` and the JSON. Never forks
 * (the runc process itself is started by the caller like any agent).
 */
#ifndef AINIT_OCI_H
#define AINIT_OCI_H

#include <stddef.h>

#include "err.h"

struct ai_config;

struct oci_opts {
	const char *root;                 /* the appliance root; NULL = "/" */
	const char *state_dir;            /* named volumes without data_dir... */
	const char *volumes_dir;          /* ...see sbx_volume_source() */
	const char *const *seccomp_dirs;
	char *const *argv;                /* process.args; NULL = the group's first agent */
	char *const *envp;                /* process.env; NULL = the group's environment */
	const char *user;                 /* NULL = the group's user */
	const char *cgroups_path;         /* linux.cgroupsPath; NULL = none */
};

/* config.json for group GI into buf (NUL-terminated). Returns its length. */
int oci_config(const struct ai_config *c, int gi, const struct oci_opts *o, char *buf,
	       size_t cap, struct ai_err *e);
/* DIR/config.json (DIR made when missing). */
int oci_export(const struct ai_config *c, int gi, const struct oci_opts *o, const char *dir,
	       struct ai_err *e);

/* `ainit export oci CONFIG GROUP -o DIR [--root DIR]` */
int cmd_export_oci(int argc, char **argv);

#endif
