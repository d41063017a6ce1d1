/* export_compose: `ainit export compose CONFIG [-o OUT]`, a docker-compose
 * file for developer laptops from the same schema-v1 config.
 *
 * Owns: the mapping config -> compose (one service per agent, labelled and
 * ordered by group, the group's settings applied to each of its agents;
 * depends_on with condition: service_healthy). Writes only OUT (or stdout).
 * `ainit export` dispatches its formats here; other formats (oci) may add
 * themselves to cmd_export().
 */
#ifndef AINIT_EXPORT_COMPOSE_H
#define AINIT_EXPORT_COMPOSE_H

#include <stdio.h>

#include "config.h"

/* Write c as a compose file to out. 0 or -errno. */
int exp_compose(const struct ai_config *c, FILE *out);

/* `ainit export FORMAT ...` */
/* `ainit export compose ...` (argv[1] is "compose"); main.c dispatches. */
int cmd_export_compose(int argc, char **argv);

#endif
