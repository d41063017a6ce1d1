/* run: the supervisor's life, for `ainit run` (a subreaper on an ordinary
 * host) and for PID 1. Signals arrive through a signalfd; every child and
 * orphan is reaped (waitpid to 0/ECHILD) on each SIGCHLD. PID 1 never
 * leaves this module except through boot_final().
 */
#ifndef AINIT_RUN_H
#define AINIT_RUN_H

int cmd_run(int argc, char **argv);
/* PID-1 entry: boot, load /etc/ainit/appliance.yaml, supervise. No return. */
int run_pid1(int argc, char **argv);

#endif
