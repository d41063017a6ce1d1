/* run: the supervisor's life, for `ainit run` (a subreaper on an ordinary
 * host) and for PID 1. Signals arrive through a signalfd; every child and
 * orphan is reaped (waitpid to 0/ECHILD) on each SIGCHLD. PID 1 never
 * leaves this module except through boot_final().
 */
#ifndef AINIT_RUN_H
#define AINIT_RUN_H

struct ai_state;
struct ai_config;
struct diag_list;

#define RUN_MAX_FILES 17 /* `ainit run`: 16 --config; PID 1: appliance.yaml + 8 */

int cmd_run(int argc, char **argv);
/* PID-1 entry: boot, load /etc/ainit/appliance.yaml, supervise. No return. */
int run_pid1(int argc, char **argv);

/* The config files this supervisor reads, in merge order: `ainit run`'s
 * --config files, or for PID 1 /etc/ainit/appliance.yaml and the *.yaml of
 * /etc/ainit/appliance.d as they are now. Returns how many (>= 1). */
int run_config_files(const struct ai_state *st, char (*buf)[256], const char **files);
/* Load, merge and check them as at start: NULL when d has errors. */
struct ai_config *run_load_config(const char *const *files, int n, struct diag_list *d);

#endif
