/* import: `ainit import legacy STARTUP [GROUPING...] [-o OUT]`, legacy
 * files (read by legacy.c) -> a schema-v1 config as YAML text.
 *
 * Owns: the mapping of each legacy item to schema v1, and the report of
 * every item that has no place there (a diagnostic at its legacy
 * file:line, rule "import-unmapped"). Writes only OUT (or stdout). Also the
 * small YAML writer shared with export_compose.c.
 */
#ifndef AINIT_IMPORT_H
#define AINIT_IMPORT_H

#include <stdio.h>

#include "legacy.h"

/* Write the config for startup file st (groups from the grouping files of
 * the set that describe it, else from its own groups). */
int imp_legacy(struct lg_set *s, struct lg_file *st, FILE *out, struct diag_list *d);

/* A YAML scalar: plain when that reads back as the same string, else
 * double-quoted with escapes. */
void imp_yaml_str(FILE *f, const char *s);
/* A YAML flow list of strings: [a, "b c"] */
void imp_yaml_strv(FILE *f, const char *const *v, int n);

int cmd_import(int argc, char **argv);

#endif
