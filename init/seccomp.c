#include "seccomp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp_default.h"
#include "util.h"

#define MAX_INCLUDE_DEPTH 8

const char *scf_default_text(void)
{
	return scf_default_policy;
}

void scf_policy_free(struct scf_policy *p)
{
	free(p->rules);
	p->rules = NULL;
	p->n = p->cap = 0;
}

static char *skip_ws(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static void rtrim(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
}

static int errno_from_name(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);
	if (end != s && !*end)
		return v > 0 && v < 4096 ? (int)v : -1;
	for (int i = 1; i < 4096; i++) {
		const char *n = strerrorname_np(i);
		if (n && !strcmp(n, s))
			return i;
	}
	return -1;
}

/* "allow", "errno EPERM", "kill", "log", "trap" -> SCMP_ACT_*. */
static int parse_action(char *s, uint32_t *act)
{
	s = skip_ws(s);
	rtrim(s);
	if (!strcmp(s, "allow"))
		*act = SCMP_ACT_ALLOW;
	else if (!strcmp(s, "kill"))
		*act = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(s, "log"))
		*act = SCMP_ACT_LOG;
	else if (!strcmp(s, "trap"))
		*act = SCMP_ACT_TRAP;
	else if (!strncmp(s, "errno", 5) && (s[5] == ' ' || s[5] == '\t')) {
		int v = errno_from_name(skip_ws(s + 5));
		if (v < 0)
			return -1;
		*act = SCMP_ACT_ERRNO((uint32_t)v);
	} else
		return -1;
	return 0;
}

static int parse_u64(const char *s, uint64_t *v, const char **end)
{
	char *e;
	errno = 0;
	unsigned long long x = strtoull(s, &e, 0);
	if (e == s || errno)
		return -1;
	*v = x;
	*end = e;
	return 0;
}

/* "arg0 & 0x7e020000 == 0 && arg1 != 3" */
static int parse_conds(char *s, struct scf_rule *r, const char **why)
{
	const char *p = s;
	r->ncond = 0;
	for (;;) {
		struct scf_cond c = {0};
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "arg", 3) || p[3] < '0' || p[3] > '5') {
			*why = "expected argN (N = 0..5)";
			return -1;
		}
		c.arg = (unsigned)(p[3] - '0');
		p += 4;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '&' && p[1] != '&') {
			p++;
			while (*p == ' ')
				p++;
			if (parse_u64(p, &c.mask, &p) < 0) {
				*why = "bad mask";
				return -1;
			}
			while (*p == ' ')
				p++;
			if (strncmp(p, "==", 2)) {
				*why = "a mask must be compared with ==";
				return -1;
			}
			p += 2;
			c.op = SCF_MASKED_EQ;
		} else if (!strncmp(p, "==", 2))
			c.op = SCF_EQ, p += 2;
		else if (!strncmp(p, "!=", 2))
			c.op = SCF_NE, p += 2;
		else if (!strncmp(p, "<=", 2))
			c.op = SCF_LE, p += 2;
		else if (!strncmp(p, ">=", 2))
			c.op = SCF_GE, p += 2;
		else if (*p == '<')
			c.op = SCF_LT, p++;
		else if (*p == '>')
			c.op = SCF_GT, p++;
		else {
			*why = "expected one of == != < <= > >= or & MASK ==";
			return -1;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (parse_u64(p, &c.value, &p) < 0) {
			*why = "bad value";
			return -1;
		}
		if (r->ncond == SCF_MAX_COND) {
			*why = "too many conditions";
			return -1;
		}
		r->cond[r->ncond++] = c;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return 0;
		if (strncmp(p, "&&", 2)) {
			*why = "expected && between conditions";
			return -1;
		}
		p += 2;
	}
}

static int add_rule(struct scf_policy *p, const struct scf_rule *r)
{
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 256;
		struct scf_rule *v = realloc(p->rules, (size_t)cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		p->rules = v;
		p->cap = cap;
	}
	p->rules[p->n++] = *r;
	return 0;
}

static int read_text(const char *path, char **out, struct ai_err *e, const char *from,
		     unsigned line)
{
	AI_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (from)
			return ai_fail(e, "seccomp", "open", errno, "%s:%u: cannot include %s",
				       from, line, path);
		return ai_fail(e, "seccomp", "open", errno, "profile %s", path);
	}
	if (sb.st_size > (1 << 20))
		return ai_fail(e, "seccomp", "read", EFBIG, "profile %s", path);
	char *buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		return ai_fail(e, "seccomp", "malloc", ENOMEM, "profile %s", path);
	size_t n = 0;
	while (n < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*out = buf;
	return 0;
}

static int parse_depth(struct scf_policy *p, const char *file, const char *text, int depth,
		       struct ai_err *e)
{
	unsigned line = 0;
	const char *s = text;
	char buf[512];

	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		line++;
		if (len >= sizeof buf)
			return ai_fail(e, "seccomp", "parse", EINVAL, "%s:%u: line too long", file,
				       line);
		memcpy(buf, s, len);
		buf[len] = 0;
		s += len + (nl ? 1 : 0);

		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		rtrim(buf);
		char *l = skip_ws(buf);
		if (!*l)
			continue;

		if (*l == '@') {
			if (!strncmp(l, "@default", 8) && isspace((unsigned char)l[8])) {
				if (parse_action(l + 8, &p->def_action) < 0)
					return ai_fail(e, "seccomp", "parse", EINVAL,
						       "%s:%u: bad action \"%s\" (allow, errno NAME, kill, log, trap)",
						       file, line, skip_ws(l + 8));
			} else if (!strncmp(l, "@include", 8) && isspace((unsigned char)l[8])) {
				char path[PATH_MAX];
				const char *inc = skip_ws(l + 8);
				const char *slash = strrchr(file, '/');
				AI_AUTOFREE char *t = NULL;
				if (depth >= MAX_INCLUDE_DEPTH)
					return ai_fail(e, "seccomp", "parse", ELOOP,
						       "%s:%u: includes nested too deep", file, line);
				if (inc[0] == '/' || !slash)
					snprintf(path, sizeof path, "%s", inc);
				else
					snprintf(path, sizeof path, "%.*s/%s", (int)(slash - file), file,
						 inc);
				int r = read_text(path, &t, e, file, line);
				if (r < 0)
					return r;
				r = parse_depth(p, path, t, depth + 1, e);
				if (r < 0)
					return r;
			} else
				return ai_fail(e, "seccomp", "parse", EINVAL,
					       "%s:%u: unknown directive \"%s\" (@default, @include)",
					       file, line, l);
			continue;
		}

		struct scf_rule r = {.action = SCMP_ACT_ALLOW, .line = line};
		bool optional = *l == '?';
		if (optional)
			l++;
		char *colon = strchr(l, ':');
		if (colon)
			*colon = 0;
		rtrim(l);
		for (char *q = l; *q; q++)
			if (!isalnum((unsigned char)*q) && *q != '_')
				return ai_fail(e, "seccomp", "parse", EINVAL,
					       "%s:%u: bad system call name \"%s\"", file, line, l);
		r.nr = seccomp_syscall_resolve_name(l);
		if (r.nr == __NR_SCMP_ERROR) {
			if (optional)
				continue;
			return ai_fail(e, "seccomp", "parse", EINVAL,
				       "%s:%u: unknown system call \"%s\"", file, line, l);
		}
		if (colon) {
			char *rest = skip_ws(colon + 1);
			const char *why = NULL;
			if (!strncmp(rest, "arg", 3)) {
				if (parse_conds(rest, &r, &why) < 0)
					return ai_fail(e, "seccomp", "parse", EINVAL,
						       "%s:%u: %s: %s", file, line, l, why);
			} else if (parse_action(rest, &r.action) < 0)
				return ai_fail(e, "seccomp", "parse", EINVAL,
					       "%s:%u: %s: bad action \"%s\" (allow, errno NAME, kill, log, trap, or argN conditions)",
					       file, line, l, rest);
		}
		if (add_rule(p, &r) < 0)
			return ai_fail(e, "seccomp", "parse", ENOMEM, "%s", file);
	}
	return 0;
}

int scf_parse(struct scf_policy *p, const char *file, const char *text, struct ai_err *e)
{
	if (!p->n && !p->cap)
		p->def_action = SCMP_ACT_ERRNO(EPERM);
	return parse_depth(p, file, text, 0, e);
}

int scf_load(struct scf_policy *p, const char *name, const char *const *dirs,
	     int *unconfined, struct ai_err *e)
{
	char path[PATH_MAX];
	AI_AUTOFREE char *t = NULL;
	*unconfined = 0;
	if (!strcmp(name, "unconfined")) {
		*unconfined = 1;
		return 0;
	}
	if (!strcmp(name, "default"))
		return scf_parse(p, "<default>", scf_default_policy, e);
	if (strchr(name, '/')) {
		int r = read_text(name, &t, e, NULL, 0);
		return r < 0 ? r : scf_parse(p, name, t, e);
	}
	for (int i = 0; dirs && dirs[i]; i++) {
		snprintf(path, sizeof path, "%s/%s.policy", dirs[i], name);
		if (access(path, R_OK) == 0) {
			int r = read_text(path, &t, e, NULL, 0);
			return r < 0 ? r : scf_parse(p, path, t, e);
		}
	}
	char where[512] = "";
	size_t n = 0;
	for (int i = 0; dirs && dirs[i] && n < sizeof where; i++)
		n += (size_t)snprintf(where + n, sizeof where - n, "%s%s", i ? ", " : "", dirs[i]);
	return ai_fail(e, "seccomp", "load", ENOENT,
		       "unknown seccomp profile \"%s\" (built in: default, unconfined; looked for %s.policy in %s)",
		       name, name, n ? where : "no directory");
}

static enum scmp_compare scmp_op(enum scf_op op)
{
	switch (op) {
	case SCF_EQ: return SCMP_CMP_EQ;
	case SCF_NE: return SCMP_CMP_NE;
	case SCF_LT: return SCMP_CMP_LT;
	case SCF_LE: return SCMP_CMP_LE;
	case SCF_GT: return SCMP_CMP_GT;
	case SCF_GE: return SCMP_CMP_GE;
	case SCF_MASKED_EQ: return SCMP_CMP_MASKED_EQ;
	}
	return SCMP_CMP_EQ;
}

int scf_compile(const struct scf_policy *p, struct sock_fprog *prog, struct ai_err *e)
{
	scmp_filter_ctx ctx = seccomp_init(p->def_action);
	AI_AUTOCLOSE int fd = -1;
	struct stat sb;
	int r;

	if (!ctx)
		return ai_fail(e, "seccomp", "seccomp_init", ENOMEM, "filter");
	/* ainit sets no_new_privs itself, in its place in the order. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	/* A binary tree over syscall numbers: O(log n) per call, not O(n). */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (int i = 0; i < p->n; i++) {
		const struct scf_rule *ru = &p->rules[i];
		struct scmp_arg_cmp c[SCF_MAX_COND];
		if (ru->action == p->def_action)
			continue;
		for (int j = 0; j < ru->ncond; j++) {
			c[j].arg = ru->cond[j].arg;
			c[j].op = scmp_op(ru->cond[j].op);
			c[j].datum_a = ru->cond[j].op == SCF_MASKED_EQ ? ru->cond[j].mask
								       : ru->cond[j].value;
			c[j].datum_b = ru->cond[j].op == SCF_MASKED_EQ ? ru->cond[j].value : 0;
		}
		r = seccomp_rule_add_array(ctx, ru->action, ru->nr, (unsigned)ru->ncond, c);
		if (r < 0 && r != -EDOM) { /* EDOM: not on this architecture */
			char *nm = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, ru->nr);
			ai_fail(e, "seccomp", "seccomp_rule_add", -r, "line %u: %s", ru->line,
				nm ? nm : "?");
			free(nm);
			seccomp_release(ctx);
			return -ENOMEM == r ? r : -EINVAL;
		}
	}
	fd = memfd_create("ainit-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		seccomp_release(ctx);
		return ai_fail(e, "seccomp", "memfd_create", errno, "filter");
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0)
		return ai_fail(e, "seccomp", "seccomp_export_bpf", -r, "filter");
	if (fstat(fd, &sb) < 0)
		return ai_fail(e, "seccomp", "fstat", errno, "filter");
	size_t n = (size_t)sb.st_size;
	if (n == 0 || n % sizeof(struct sock_filter) || n / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return ai_fail(e, "seccomp", "seccomp_export_bpf", E2BIG, "filter of %zu bytes", n);
	struct sock_filter *f = malloc(n);
	if (!f)
		return ai_fail(e, "seccomp", "malloc", ENOMEM, "filter");
	if (pread(fd, f, n, 0) != (ssize_t)n) {
		free(f);
		return ai_fail(e, "seccomp", "pread", errno ? errno : EIO, "filter");
	}
	prog->filter = f;
	prog->len = (unsigned short)(n / sizeof *f);
	return 0;
}

const char *scf_syscall_name(int nr, char *buf, size_t n)
{
	char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	if (!s)
		return NULL;
	snprintf(buf, n, "%s", s);
	free(s);
	return buf;
}

const char *scf_action_oci(uint32_t action, int *errno_ret)
{
	*errno_ret = -1;
	if (action == SCMP_ACT_ALLOW)
		return "SCMP_ACT_ALLOW";
	if (action == SCMP_ACT_KILL_PROCESS)
		return "SCMP_ACT_KILL_PROCESS";
	if (action == SCMP_ACT_LOG)
		return "SCMP_ACT_LOG";
	if (action == SCMP_ACT_TRAP)
		return "SCMP_ACT_TRAP";
	if ((action & 0xffff0000u) == SCMP_ACT_ERRNO(0)) {
		*errno_ret = (int)(action & 0xffffu);
		return "SCMP_ACT_ERRNO";
	}
	return "SCMP_ACT_KILL_PROCESS";
}

/* Linked in from build/gen/scf_default.c by ainit's link; absent (NULL)
 * in unit tests, which then compile at run time. */
extern const unsigned short scf_default_bpf_len __attribute__((weak));
extern const struct sock_filter scf_default_bpf[] __attribute__((weak));

int scf_prog(const char *name, const char *const *dirs, struct sock_fprog *prog, int *owned,
	     int *unconfined, struct ai_err *e)
{
	struct scf_policy p = {0};
	int r;
	*owned = 0;
	prog->filter = NULL;
	prog->len = 0;
	if (!strcmp(name, "default") && &scf_default_bpf_len && scf_default_bpf) {
		*unconfined = 0;
		prog->filter = (struct sock_filter *)scf_default_bpf;
		prog->len = scf_default_bpf_len;
		return 0;
	}
	if ((r = scf_load(&p, name, dirs, unconfined, e)) < 0 || *unconfined) {
		scf_policy_free(&p);
		return r;
	}
	r = scf_compile(&p, prog, e);
	scf_policy_free(&p);
	if (r == 0)
		*owned = 1;
	return r;
}

int scf_apply(const struct sock_fprog *prog, struct ai_err *e)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		return ai_fail(e, "seccomp", "seccomp(SET_MODE_FILTER)", errno,
			       "filter of %u instructions", prog->len);
	return 0;
}
