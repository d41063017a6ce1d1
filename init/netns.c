#include "netns.h"

#include <arpa/inet.h>
#include <net/if.h> /* before the linux/ headers */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int netns_lo_up(struct ai_err *e)
{
	struct ifreq ifr;
	AI_AUTOCLOSE int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ai_fail(e, "netns", "socket", errno, "lo");
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return ai_fail(e, "netns", "SIOCGIFFLAGS", errno, "lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return ai_fail(e, "netns", "SIOCSIFFLAGS", errno, "lo up");
	return 0;
}

int netns_subnet_addr(const char *subnet, int index, struct netns_addr *out)
{
	char buf[64];
	struct in_addr a;
	const char *slash = strchr(subnet, '/');
	if (!slash || (size_t)(slash - subnet) >= sizeof buf)
		return -EINVAL;
	snprintf(buf, sizeof buf, "%.*s", (int)(slash - subnet), subnet);
	char *end;
	long p = strtol(slash + 1, &end, 10);
	if (*end || p < 1 || p > 30 || inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	uint32_t net = ntohl(a.s_addr) & (p == 32 ? ~0u : ~((1u << (32 - p)) - 1));
	uint64_t hosts = (1ull << (32 - p)) - 2; /* minus network and broadcast */
	if (index < 0 || (uint64_t)index + 2 > hosts)
		return -ERANGE;
	out->prefix = (int)p;
	out->gw = htonl(net + 1);
	out->addr = htonl(net + 2 + (uint32_t)index);
	return 0;
}

/* --- rtnetlink ------------------------------------------------------- */

struct nlreq {
	struct nlmsghdr h;
	char buf[1024];
};

static struct rtattr *nla_put(struct nlmsghdr *h, int type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	rta->rta_type = (unsigned short)type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
	return rta;
}

static void nla_end(struct nlmsghdr *h, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)nest);
}

static int nl_open(struct ai_err *e)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return ai_fail(e, "netns", "socket(NETLINK_ROUTE)", errno, "rtnetlink");
	return s;
}

/* Send one request with NLM_F_ACK and read the ack. */
static int nl_talk(int s, struct nlmsghdr *h, const char *what, struct ai_err *e)
{
	char buf[4096];
	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = 1; /* one request in flight at a time */
	if (send(s, h, h->nlmsg_len, 0) < 0)
		return ai_fail(e, "netns", "send(rtnetlink)", errno, "%s", what);
	for (;;) {
		ssize_t n = recv(s, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ai_fail(e, "netns", "recv(rtnetlink)", errno, "%s", what);
		for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, (unsigned)n);
		     m = NLMSG_NEXT(m, n)) {
			if (m->nlmsg_seq != h->nlmsg_seq)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *er = NLMSG_DATA(m);
				if (er->error)
					return ai_fail(e, "netns", "rtnetlink", -er->error, "%s", what);
				return 0;
			}
		}
	}
}

static int link_set(int s, int ifindex, unsigned flags, int master, const char *what,
		    struct ai_err *e)
{
	struct nlreq r;
	memset(&r, 0, sizeof r);
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags;
	ifi->ifi_change = IFF_UP;
	if (master > 0)
		nla_put(&r.h, IFLA_MASTER, &master, sizeof master);
	return nl_talk(s, &r.h, what, e);
}

static int addr_add(int s, int ifindex, uint32_t addr, int prefix, const char *what,
		    struct ai_err *e)
{
	struct nlreq r;
	memset(&r, 0, sizeof r);
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_NEWADDR;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	struct ifaddrmsg *ifa = NLMSG_DATA(&r.h);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = (unsigned)ifindex;
	nla_put(&r.h, IFA_LOCAL, &addr, 4);
	nla_put(&r.h, IFA_ADDRESS, &addr, 4);
	return nl_talk(s, &r.h, what, e);
}

int netns_veth_create(const char *br, const struct netns_addr *a, const char *hostname,
		      pid_t pid, struct ai_err *e)
{
	AI_AUTOCLOSE int s = nl_open(e);
	struct nlreq r;
	struct rtattr *li, *data, *peer;
	char what[96];
	int r0;
	if (s < 0)
		return s;

	int bri = (int)if_nametoindex(br);
	if (!bri) {
		memset(&r, 0, sizeof r);
		r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
		r.h.nlmsg_type = RTM_NEWLINK;
		r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
		nla_put(&r.h, IFLA_IFNAME, br, strlen(br) + 1);
		li = nla_put(&r.h, IFLA_LINKINFO, NULL, 0);
		nla_put(&r.h, IFLA_INFO_KIND, "bridge", 6);
		nla_end(&r.h, li);
		snprintf(what, sizeof what, "create bridge %s", br);
		if ((r0 = nl_talk(s, &r.h, what, e)) < 0 && r0 != -EEXIST)
			return r0;
		bri = (int)if_nametoindex(br);
		if (!bri)
			return ai_fail(e, "netns", "if_nametoindex", errno, "bridge %s", br);
		snprintf(what, sizeof what, "address of bridge %s", br);
		if ((r0 = addr_add(s, bri, a->gw, a->prefix, what, e)) < 0)
			return r0;
	}
	snprintf(what, sizeof what, "bridge %s up", br);
	if ((r0 = link_set(s, bri, IFF_UP, 0, what, e)) < 0)
		return r0;

	memset(&r, 0, sizeof r);
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	nla_put(&r.h, IFLA_IFNAME, hostname, strlen(hostname) + 1);
	li = nla_put(&r.h, IFLA_LINKINFO, NULL, 0);
	nla_put(&r.h, IFLA_INFO_KIND, "veth", 4);
	data = nla_put(&r.h, IFLA_INFO_DATA, NULL, 0);
	peer = nla_put(&r.h, VETH_INFO_PEER, NULL, 0);
	r.h.nlmsg_len += (unsigned)NLMSG_ALIGN(sizeof(struct ifinfomsg)); /* peer's ifinfomsg */
	nla_put(&r.h, IFLA_IFNAME, "eth0", 5);
	uint32_t p = (uint32_t)pid;
	nla_put(&r.h, IFLA_NET_NS_PID, &p, 4);
	nla_end(&r.h, peer);
	nla_end(&r.h, data);
	nla_end(&r.h, li);
	snprintf(what, sizeof what, "create veth %s", hostname);
	if ((r0 = nl_talk(s, &r.h, what, e)) < 0)
		return r0;
	int hi = (int)if_nametoindex(hostname);
	if (!hi)
		return ai_fail(e, "netns", "if_nametoindex", errno, "veth %s", hostname);
	snprintf(what, sizeof what, "enslave %s to %s", hostname, br);
	return link_set(s, hi, IFF_UP, bri, what, e);
}

int netns_iface_config(const char *ifname, const struct netns_addr *a, struct ai_err *e)
{
	AI_AUTOCLOSE int s = nl_open(e);
	struct nlreq r;
	int r0;
	char what[64];
	if (s < 0)
		return s;
	int ix = (int)if_nametoindex(ifname);
	if (!ix)
		return ai_fail(e, "netns", "if_nametoindex", errno, "%s", ifname);
	snprintf(what, sizeof what, "address of %s", ifname);
	if ((r0 = addr_add(s, ix, a->addr, a->prefix, what, e)) < 0)
		return r0;
	snprintf(what, sizeof what, "%s up", ifname);
	if ((r0 = link_set(s, ix, IFF_UP, 0, what, e)) < 0)
		return r0;
	if (!a->gw)
		return 0;
	memset(&r, 0, sizeof r);
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	r.h.nlmsg_type = RTM_NEWROUTE;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
	struct rtmsg *rt = NLMSG_DATA(&r.h);
	rt->rtm_family = AF_INET;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	nla_put(&r.h, RTA_GATEWAY, &a->gw, 4);
	nla_put(&r.h, RTA_OIF, &ix, 4);
	snprintf(what, sizeof what, "default route via %s", ifname);
	return nl_talk(s, &r.h, what, e);
}

int netns_eth0_config(const struct netns_addr *a, struct ai_err *e)
{
	return netns_iface_config("eth0", a, e);
}
