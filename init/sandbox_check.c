/* What `ainit check` can tell about a group's sandbox before anything runs:
 * capability names, seccomp profiles (found and parsed, with the profile's
 * own file:line), bridge networking without a bridge. Pure but for reading
 * the profile files; never forks. */
#include "sandbox.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "caps.h"
#include "config.h"
#include "diag.h"
#include "seccomp.h"

void sbx_check(const struct ai_config *c, struct diag_list *d)
{
	char sdir[PATH_MAX];
	const char *file = c->file ? c->file : "";
	const char *slash = strrchr(file, '/');
	snprintf(sdir, sizeof sdir, "%.*s/seccomp", slash ? (int)(slash - file) : 1,
		 slash ? file : ".");
	const char *dirs[] = {sdir, "/etc/ainit/seccomp", NULL};

	for (int gi = 0; gi < c->ngroups; gi++) {
		const struct cfg_group *g = &c->groups[gi];
		for (int i = 0; i < g->caps.n; i++)
			if (caps_from_name(g->caps.v[i]) < 0 && strcasecmp(g->caps.v[i], "ALL"))
				diag_add(d, DIAG_ERROR, g->caps.pos ? g->caps.pos[i] : g->pos,
					 "unknown-capability",
					 "group %s: unknown capability \"%s\" (names are like CAP_NET_BIND_SERVICE)",
					 g->name, g->caps.v[i]);
		if (g->seccomp && strcmp(g->seccomp, "default") && strcmp(g->seccomp, "unconfined")) {
			struct scf_policy p = {0};
			struct ai_err e = {0};
			int unconf;
			if (scf_load(&p, g->seccomp, dirs, &unconf, &e) < 0)
				diag_add(d, DIAG_ERROR, g->pos, "seccomp-profile", "group %s: %s", g->name,
					 e.msg);
			scf_policy_free(&p);
		}
		if (g->network == NET_BRIDGE && (!c->app.bridge_name || !c->app.bridge_subnet))
			diag_add(d, DIAG_ERROR, g->pos, "bridge-missing",
				 "group %s: network: bridge needs appliance.network.bridge {name, subnet}",
				 g->name);
	}
}
