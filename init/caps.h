/* caps: Linux capabilities of an agent, as one 64-bit mask.
 *
 * Owns: parsing capability names ("CAP_NET_BIND_SERVICE", "net_bind_service")
 * into a mask (pure, unit-tested) and applying a mask to the calling process
 * with libcap: bounding, permitted, effective, inheritable and ambient sets
 * become exactly the mask. Never forks; caps_apply() runs only in a freshly
 * cloned agent child, after the uid change and before seccomp.
 */
#ifndef AINIT_CAPS_H
#define AINIT_CAPS_H

#include <stdint.h>

#include "err.h"

/* One name to its number; -1 when unknown. Case-insensitive, "CAP_" optional. */
int caps_from_name(const char *name);
/* "cap_net_bind_service" for 10; "cap_N" for numbers libcap does not know. */
const char *caps_name(int cap, char *buf, unsigned n);
/* Names (NULL-terminated) to a mask. "ALL" means every capability the
 * running kernel knows. Fills *e naming the first unknown name. */
int caps_parse(const char *const *names, int n, uint64_t *mask, struct ai_err *e);
/* Highest capability number the running kernel knows. */
int caps_last_cap(void);

/* In the agent child: bounding = mask (needs CAP_SETPCAP, which a root child
 * still has), then permitted = effective = inheritable = mask, then ambient =
 * mask so the set survives execve for a non-root uid. Call after setresuid()
 * with PR_SET_KEEPCAPS set. */
int caps_apply(uint64_t mask, struct ai_err *e);

#endif
