/* cli: `ainit ctl`, the control client. A fresh process per call: it links
 * nothing heavy (no libzmq) so that `ctl status` starts in about a
 * millisecond. Exit: 0 ok, 1 error, 2 usage, 3 status shows an agent that is
 * failed (or required and not healthy) or a degraded init.
 */
#ifndef AINIT_CLI_H
#define AINIT_CLI_H

#define CLI_DEFAULT_SOCKET "/run/ainit/ctl.sock"

int cmd_ctl(int argc, char **argv);

#endif
