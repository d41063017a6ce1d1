/* registry: a small service registry agent. A REP socket on AGENT_PORT takes
 * one JSON request per message and answers one JSON reply:
 *   {"action":"register","name":N,"host":H,"port":P}  -> {"status":"ok"}
 *   {"action":"lookup","name":N}    -> {"status":"ok","name":N,"host":H,"port":P}
 *                                     or {"status":"error","error":"unknown agent N"}
 *   {"action":"unregister","name":N} -> {"status":"ok"}
 *   {"action":"list"}               -> {"status":"ok","agents":[...]}
 * The legacy names register_agent / get_agent_endpoint / list_agents (with
 * agent_id or agent_name for name) are accepted too. Health checks on
 * HEALTH_CHECK_PORT through libagent, with the entry count in the reply.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define REG_MAX 512

struct entry {
	char name[96], host[96];
	int port;
};

struct registry {
	struct entry e[REG_MAX];
	int n;
};

static struct registry reg;
static volatile sig_atomic_t got_term;

static struct entry *find(const char *name)
{
	for (int i = 0; i < reg.n; i++)
		if (!strcmp(reg.e[i].name, name))
			return &reg.e[i];
	return NULL;
}

/* The integer value of key in a flat JSON object (number or string). */
static int json_int(const char *json, const char *key)
{
	char pat[128], buf[32];
	const char *p;
	if (agent_json_str(json, key, buf, sizeof buf))
		return atoi(buf);
	snprintf(pat, sizeof pat, "\"%s\"", key);
	if (!(p = strstr(json, pat)))
		return 0;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	return atoi(p);
}

static const char *serve(struct agent *a, const char *req, size_t len, char *rep, size_t cap)
{
	char action[64], name[96], host[96];
	struct entry *e;
	(void)a;
	(void)len;
	if (!agent_json_str(req, "action", action, sizeof action)) {
		snprintf(rep, cap, "{\"status\":\"error\",\"error\":\"request is not a JSON object with \\\"action\\\"\"}");
		return rep;
	}
	if (!agent_json_str(req, "name", name, sizeof name) &&
	    !agent_json_str(req, "agent_id", name, sizeof name) &&
	    !agent_json_str(req, "agent_name", name, sizeof name))
		name[0] = 0;
	if (!strcmp(action, "register") || !strcmp(action, "register_agent")) {
		if (!name[0]) {
			snprintf(rep, cap, "{\"status\":\"error\",\"error\":\"register needs a name\"}");
			return rep;
		}
		if (!agent_json_str(req, "host", host, sizeof host))
			snprintf(host, sizeof host, "127.0.0.1");
		if (!(e = find(name))) {
			if (reg.n == REG_MAX) {
				snprintf(rep, cap, "{\"status\":\"error\",\"error\":\"registry full (%d)\"}", REG_MAX);
				return rep;
			}
			e = &reg.e[reg.n++];
			snprintf(e->name, sizeof e->name, "%s", name);
		}
		snprintf(e->host, sizeof e->host, "%s", host);
		e->port = json_int(req, "port");
		snprintf(rep, cap, "{\"status\":\"ok\"}");
	} else if (!strcmp(action, "lookup") || !strcmp(action, "get_agent_endpoint")) {
		if (!(e = find(name)))
			snprintf(rep, cap, "{\"status\":\"error\",\"error\":\"unknown agent %s\"}", name);
		else
			snprintf(rep, cap, "{\"status\":\"ok\",\"name\":\"%s\",\"host\":\"%s\",\"port\":%d}",
				 e->name, e->host, e->port);
	} else if (!strcmp(action, "unregister")) {
		if ((e = find(name)))
			*e = reg.e[--reg.n];
		snprintf(rep, cap, "{\"status\":\"ok\"}");
	} else if (!strcmp(action, "list") || !strcmp(action, "list_agents")) {
		size_t off = (size_t)snprintf(rep, cap, "{\"status\":\"ok\",\"agents\":[");
		for (int i = 0; i < reg.n && off + 120 < cap; i++)
			off += (size_t)snprintf(rep + off, cap - off, "%s\"%s\"", i ? "," : "", reg.e[i].name);
		snprintf(rep + off, cap - off, "]}");
	} else
		snprintf(rep, cap, "{\"status\":\"error\",\"error\":\"unknown action %s\"}", action);
	return rep;
}

int main(int argc, char **argv)
{
	struct agent a;
	sigset_t block, old;
	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	agent_init(&a, "ServiceRegistry");
	if (agent_signals(&a, &got_term) < 0)
		fprintf(stderr, "%s: signal pipe: %s\n", a.name, strerror(errno));
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (!a.port) {
		fprintf(stderr, "%s: registry: AGENT_PORT is not set\n", a.name);
		return 2;
	}
	if (agent_bind(&a, true) < 0)
		return 3;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	printf("%s: registry serving on port %d, health on %d\n", a.name, a.port, a.health_port);
	agent_notify("READY=1");
	while (!got_term) {
		snprintf(a.extra, sizeof a.extra, "\"entries\":%d", reg.n);
		agent_poll(&a, -1, serve);
	}
	printf("%s: SIGTERM, exiting with %d entries\n", a.name, reg.n);
	agent_close(&a);
	return 0;
}
