/* netns: a group's network.
 *
 *   none    a new network namespace with only lo, up
 *   host    the appliance's namespace (no new namespace)
 *   bridge  a new namespace with lo and eth0, one end of a veth pair whose
 *           other end is enslaved to appliance.network.bridge (made, with
 *           the subnet's first address, when missing); eth0 gets address
 *           2 + group index in the subnet and a default route via the bridge
 *
 * Owns: rtnetlink messages (no `ip` binary). The host-side half runs in the
 * supervisor, the namespace-side half in the group's holder process (it is
 * already inside the namespace). Never forks.
 */
#ifndef AINIT_NETNS_H
#define AINIT_NETNS_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct netns_addr {
	uint32_t addr, gw; /* network byte order */
	int prefix;
};

/* In the namespace: bring lo up. */
int netns_lo_up(struct ai_err *e);

/* Pure: address INDEX (0 = first group) of SUBNET "10.89.0.0/24": gateway
 * .1, group address .(2+INDEX). -ERANGE when the subnet is too small. */
int netns_subnet_addr(const char *subnet, int index, struct netns_addr *out);

/* Host side: make sure bridge BR exists and is up with the gateway address,
 * then create veth HOSTNAME <-> eth0 with eth0 moved into PID's namespace,
 * HOSTNAME enslaved to BR and up. */
int netns_veth_create(const char *br, const struct netns_addr *a, const char *hostname,
		      pid_t pid, struct ai_err *e);
/* Namespace side: eth0 up with the address, default route via the gateway. */
int netns_eth0_config(const struct netns_addr *a, struct ai_err *e);
/* Any interface: address, up, and a default route when a->gw is not 0
 * (boot.c, for appliance.network.interfaces). */
int netns_iface_config(const char *ifname, const struct netns_addr *a, struct ai_err *e);

#endif
