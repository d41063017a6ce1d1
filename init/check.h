/* check: `ainit check FILE...`, the static rules over a loaded config (and
 * the legacy files). Pure: reads files, never touches the system.
 */
#ifndef AINIT_CHECK_H
#define AINIT_CHECK_H

#include "config.h"

/* Whole-config rules (ports, cycles, users, ...). Adds to *d. */
void chk_config(const struct ai_config *c, struct diag_list *d);

/* `ainit check`: exit 0 clean, 1 errors, 2 unreadable file / usage. */
int cmd_check(int argc, char **argv);

#endif
