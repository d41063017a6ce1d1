/* Config -> docker-compose. A compose container runs one process, so each
 * agent becomes a service; its group gives it the group's image, volumes,
 * resources, GPUs, network and a label, and the services of a group are
 * written together under a "# group NAME" comment. Why not one service per
 * group: a group of several agents would need a supervisor inside the
 * container, and per-agent depends_on/healthcheck is what compose can wait
 * on (docs/config.md, "Exporting"). */
#include "export_compose.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

/* ServiceRegistry -> service-registry, STTService -> stt-service */
static void service_name(const char *s, char *out, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; s[i] && j + 2 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isupper(c) && i > 0 &&
		    (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]) ||
		     (isupper((unsigned char)s[i - 1]) && islower((unsigned char)s[i + 1]))) &&
		    out[j - 1] != '-')
			out[j++] = '-';
		if (isalnum(c))
			out[j++] = (char)tolower(c);
		else if (j && out[j - 1] != '-')
			out[j++] = c == '.' ? '.' : '-';
	}
	while (j && out[j - 1] == '-')
		j--;
	if (!j)
		out[j++] = 'x';
	out[j] = 0;
}

/* compose interpolates $VAR in values: a literal $ is $$ */
static void cstr(FILE *f, const char *s)
{
	if (!strchr(s, '$')) {
		imp_yaml_str(f, s);
		return;
	}
	size_t n = strlen(s), k = 0;
	char *t = malloc(2 * n + 1);
	if (!t) {
		imp_yaml_str(f, "");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '$')
			t[k++] = '$';
		t[k++] = s[i];
	}
	t[k] = 0;
	imp_yaml_str(f, t);
	free(t);
}

static void dur(FILE *f, int64_t ms)
{
	if (ms % 1000 == 0)
		fprintf(f, "%llds", (long long)(ms / 1000));
	else
		fprintf(f, "%lldms", (long long)ms);
}

static const char *image_for(const struct ai_config *c, const struct cfg_agent *a, char *buf,
			     size_t n)
{
	const char *argv0 = a->command.n ? a->command.v[0] : "";
	const char *b = strrchr(argv0, '/');
	b = b ? b + 1 : argv0;
	if (!strcmp(b, "redis-server"))
		return "redis:7-alpine";
	if (!strcmp(b, "nats-server"))
		return "nats:2.10-alpine";
	char g[128];
	service_name(c->groups[a->group].name, g, sizeof g);
	snprintf(buf, n, "ai/%s:latest", g);
	return buf;
}

static bool has_healthcheck(const struct cfg_agent *a)
{
	return a->health.kind == HK_TCP || a->health.kind == HK_ZMQ || a->health.kind == HK_EXEC;
}

static void healthcheck(FILE *f, const struct cfg_agent *a)
{
	const struct cfg_health *h = &a->health;
	const char *host = h->host ? h->host : "127.0.0.1";
	if (!has_healthcheck(a)) {
		if (h->kind == HK_NOTIFY)
			fputs("    # health: notify (sd_notify) has no compose equivalent\n", f);
		return;
	}
	fputs("    healthcheck:\n      test: ", f);
	if (h->kind == HK_TCP) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "nc -z %s %d", host, h->port);
		fputs("[CMD-SHELL, ", f);
		cstr(f, cmd);
		fputs("]\n", f);
	} else if (h->kind == HK_ZMQ) {
		char py[1024];
		/* the legacy agents' protocol: REQ "health_check", JSON status ok|healthy */
		snprintf(py, sizeof py,
			 "import json,sys,zmq; s=zmq.Context().socket(zmq.REQ); "
			 "s.setsockopt(zmq.LINGER,0); s.setsockopt(zmq.RCVTIMEO,%lld); "
			 "s.connect('tcp://%s:%d'); s.send_string('health_check'); "
			 "r=json.loads(s.recv()); sys.exit(0 if r.get('status') in ('ok','healthy') else 1)",
			 (long long)h->timeout_ms, host, h->port);
		fputs("[CMD, python3, -c, ", f);
		cstr(f, py);
		fputs("]\n", f);
	} else {
		fputs("[CMD", f);
		for (int i = 0; i < h->exec.n; i++) {
			fputs(", ", f);
			cstr(f, h->exec.v[i]);
		}
		fputs("]\n", f);
	}
	fputs("      interval: ", f);
	dur(f, h->interval_ms);
	fputs("\n      timeout: ", f);
	dur(f, h->timeout_ms);
	fprintf(f, "\n      retries: %lld\n", (long long)h->retries);
	if (h->start_period_ms > 0) {
		fputs("      start_period: ", f);
		dur(f, h->start_period_ms);
		fputc('\n', f);
	}
}

static void depends(FILE *f, const struct ai_config *c, const struct cfg_agent *a)
{
	bool any = false;
	const struct cfg_deps *lists[2] = {&c->groups[a->group].deps, &a->deps};
	for (int l = 0; l < 2; l++)
		for (int k = 0; k < lists[l]->n; k++) {
			const struct cfg_dep *x = &lists[l]->v[k];
			int lo, hi;
			if (x->kind == DEP_REMOTE || x->index < 0) {
				fprintf(f, "    # depends on %s on another machine: not expressible here\n",
					x->name);
				continue;
			}
			if (x->kind == DEP_AGENT)
				lo = x->index, hi = x->index + 1;
			else
				lo = c->groups[x->index].first_agent,
				hi = lo + c->groups[x->index].nagents;
			for (int t = lo; t < hi; t++) {
				char sn[128];
				if (&c->agents[t] == a)
					continue;
				if (!any)
					fputs("    depends_on:\n", f);
				any = true;
				service_name(c->agents[t].name, sn, sizeof sn);
				fprintf(f, "      %s: {condition: %s}\n", sn,
					has_healthcheck(&c->agents[t]) ? "service_healthy"
								       : "service_started");
			}
		}
}

static void group_settings(FILE *f, const struct cfg_group *g, bool *bridge)
{
	if (g->network == NET_HOST)
		fputs("    network_mode: host\n", f);
	else if (g->network == NET_NONE)
		fputs("    network_mode: none\n", f);
	else {
		fputs("    networks: [ainit]\n", f);
		*bridge = true;
	}
	if (g->nmounts) {
		fputs("    volumes:\n", f);
		for (int i = 0; i < g->nmounts; i++) {
			char buf[1024];
			snprintf(buf, sizeof buf, "%s:%s%s", g->mounts[i].source, g->mounts[i].target,
				 g->mounts[i].ro ? ":ro" : "");
			fputs("      - ", f);
			cstr(f, buf);
			fputc('\n', f);
		}
	}
	if (g->read_only_root)
		fputs("    read_only: true\n    tmpfs: [/tmp, /run]\n", f);
	if (g->devices.n) {
		fputs("    devices: ", f);
		imp_yaml_strv(f, g->devices.v, g->devices.n);
		fputc('\n', f);
	}
	if (g->caps.n) {
		fputs("    cap_drop: [ALL]\n    cap_add: ", f);
		imp_yaml_strv(f, g->caps.v, g->caps.n);
		fputc('\n', f);
	}
	const struct cfg_resources *r = &g->res;
	bool lim = r->memory_max > 0 || r->cpus_milli > 0, gpu = g->gpu.mode != GPU_NONE;
	if (r->pids > 0)
		fprintf(f, "    pids_limit: %lld\n", (long long)r->pids);
	if (!lim && !gpu)
		return;
	fputs("    deploy:\n      resources:\n", f);
	if (lim) {
		fputs("        limits:\n", f);
		if (r->memory_max > 0)
			fprintf(f, "          memory: %lld\n", (long long)r->memory_max);
		if (r->cpus_milli > 0)
			fprintf(f, "          cpus: \"%lld.%03lld\"\n", (long long)(r->cpus_milli / 1000),
				(long long)(r->cpus_milli % 1000));
	}
	if (gpu) {
		fputs("        reservations:\n          devices:\n            - driver: nvidia\n", f);
		if (g->gpu.mode == GPU_ALL)
			fputs("              count: all\n", f);
		else if (g->gpu.mode == GPU_COUNT)
			fprintf(f, "              count: %d\n", g->gpu.count);
		else {
			fputs("              device_ids: [", f);
			for (int i = 0; i < g->gpu.nindex; i++)
				fprintf(f, "%s\"%d\"", i ? ", " : "", g->gpu.index[i]);
			fputs("]\n", f);
		}
		fputs("              capabilities: [gpu]\n", f);
	}
}

int exp_compose(const struct ai_config *c, FILE *f)
{
	bool bridge = false;
	char name[128];
	static const char *const restart[] = {"\"no\"", "on-failure", "always", "unless-stopped"};
	service_name(c->app.hostname ? c->app.hostname : "ainit", name, sizeof name);
	fprintf(f, "# Generated by `ainit export compose` from %s.\n"
		   "# One service per agent; the services of a group share its image, volumes\n"
		   "# and limits and carry the label ai.ainit.group.\n"
		   "name: %s\nservices:\n",
		c->file, name);
	if (!c->nagents)
		fputs("  {}\n", f);
	for (int g = 0; g < c->ngroups; g++) {
		const struct cfg_group *gr = &c->groups[g];
		fprintf(f, "  # group %s\n", gr->name);
		for (int k = 0; k < gr->nagents; k++) {
			const struct cfg_agent *a = &c->agents[gr->first_agent + k];
			char sn[128], img[160];
			service_name(a->name, sn, sizeof sn);
			fprintf(f, "  %s:\n    image: %s\n", sn, image_for(c, a, img, sizeof img));
			fputs("    command: [", f);
			for (int i = 0; i < a->command.n; i++) {
				if (i)
					fputs(", ", f);
				cstr(f, a->command.v[i]);
			}
			fputs("]\n", f);
			if (a->working_dir) {
				fputs("    working_dir: ", f);
				cstr(f, a->working_dir);
				fputc('\n', f);
			}
			if (a->user) {
				fputs("    user: ", f);
				cstr(f, a->user);
				fputc('\n', f);
			}
			fputs("    labels: {ai.ainit.group: ", f);
			cstr(f, gr->name);
			fputs(", ai.ainit.agent: ", f);
			cstr(f, a->name);
			fputs("}\n    environment:\n", f);
			fputs("      AINIT_AGENT: ", f);
			cstr(f, a->name);
			fputs("\n      AINIT_GROUP: ", f);
			cstr(f, gr->name);
			fputc('\n', f);
			if (a->port)
				fprintf(f, "      AGENT_PORT: \"%d\"\n", a->port);
			if (a->health_port)
				fprintf(f, "      HEALTH_CHECK_PORT: \"%d\"\n", a->health_port);
			for (int i = 0; i < a->env.n; i++) {
				fputs("      ", f);
				imp_yaml_str(f, a->env.v[i].key);
				fputs(": ", f);
				cstr(f, a->env.v[i].value);
				fputc('\n', f);
			}
			if (gr->network != NET_HOST && (a->port || a->health_port)) {
				fputs("    ports:", f);
				if (a->port)
					fprintf(f, " [\"%d:%d\"", a->port, a->port);
				if (a->health_port)
					fprintf(f, "%s\"%d:%d\"", a->port ? ", " : " [", a->health_port,
						a->health_port);
				fputs("]\n", f);
			}
			group_settings(f, gr, &bridge);
			depends(f, c, a);
			healthcheck(f, a);
			fprintf(f, "    restart: %s\n",
				a->restart.policy >= 0 && a->restart.policy < 4 ? restart[a->restart.policy]
										 : "on-failure");
			fprintf(f, "    stop_signal: %s\n    stop_grace_period: ",
				ai_signal_name(a->stop.signal));
			dur(f, a->stop.timeout_ms);
			fputc('\n', f);
		}
	}
	if (bridge)
		fputs("networks:\n  ainit:\n    driver: bridge\n", f);
	if (c->nvolumes) {
		fputs("volumes:\n", f);
		for (int i = 0; i < c->nvolumes; i++) {
			fputs("  ", f);
			imp_yaml_str(f, c->volumes[i].name);
			fputs(": {}\n", f);
		}
	}
	return ferror(f) ? -EIO : 0;
}

int cmd_export_compose(int argc, char **argv)
{
	const char *cfgf = NULL, *out = NULL;
	struct diag_list d = {0};
	struct ai_config *c;
	FILE *f = stdout;
	int rc = 0;
	if (argc < 2 || strcmp(argv[1], "compose")) {
		fprintf(stderr, "usage: ainit export compose CONFIG [-o OUT]\n"
				"       ainit export oci CONFIG GROUP -o DIR [--root DIR]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] == '-' || cfgf) {
			fprintf(stderr, "usage: ainit export compose CONFIG [-o OUT]\n");
			return 2;
		} else
			cfgf = argv[i];
	}
	if (!cfgf) {
		fprintf(stderr, "usage: ainit export compose CONFIG [-o OUT]\n");
		return 2;
	}
	c = cfg_load(&cfgf, 1, &d);
	if (!c) {
		diag_sort(&d);
		diag_print(&d, stderr);
		for (int i = 0; i < d.n; i++)
			if (d.v[i].rule && !strcmp(d.v[i].rule, "io"))
				rc = 2;
		diag_free(&d);
		return rc ? rc : 1;
	}
	if (out && !(f = fopen(out, "we"))) {
		fprintf(stderr, "ainit: export: %s: open: %s\n", out, strerror(errno));
		rc = 2;
	}
	if (!rc && exp_compose(c, f) < 0)
		rc = 2;
	if (f != stdout && f && fclose(f) != 0) {
		fprintf(stderr, "ainit: export: %s: write: %s\n", out, strerror(errno));
		rc = 2;
	} else if (f == stdout && fflush(f) != 0)
		rc = 2;
	diag_free(&d);
	cfg_free(c);
	return rc;
}
