/* seccomp: system call filters for agents.
 *
 * Owns: the policy text format (parse, pure and unit-tested), the built-in
 * `default` profile (an allow-list modelled on the OCI/Docker default;
 * everything else fails with EPERM), compiling a policy to classic BPF with
 * libseccomp once, before any fork, and loading the compiled program in an
 * agent child (one seccomp(2) call, no allocation). Never forks.
 *
 * Policy text, one rule a line ('#' starts a comment):
 *   read                          allow read(2)
 *   ?cachestat                    allow, if this libseccomp knows the name
 *   clone: arg0 & 0x7e020000 == 0 allow only when every condition holds
 *   personality: arg0 == 8        (several lines for one call = any of them)
 *   clone3: errno ENOSYS          other actions: allow, errno NAME|N, kill, log, trap
 *   @default errno EPERM          action for every call not listed
 *   @include base.policy          relative to the including file
 * Conditions: argN OP VALUE, OP one of == != < <= > >=, or argN & MASK == VALUE;
 * several joined by &&. An unknown system call name is an error at file:line.
 * The profile name `unconfined` means no filter at all.
 */
#ifndef AINIT_SECCOMP_H
#define AINIT_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SCF_MAX_COND 6

enum scf_op { SCF_EQ, SCF_NE, SCF_LT, SCF_LE, SCF_GT, SCF_GE, SCF_MASKED_EQ };

struct scf_cond {
	unsigned arg;
	enum scf_op op;
	uint64_t mask, value;
};

struct scf_rule {
	int nr;            /* native syscall number (libseccomp's, may be < 0) */
	uint32_t action;   /* SCMP_ACT_* */
	int ncond;
	struct scf_cond cond[SCF_MAX_COND];
	unsigned line;
};

struct scf_policy {
	uint32_t def_action;
	struct scf_rule *rules;
	int n, cap;
};

/* Parse policy TEXT (named FILE in messages; includes resolve against the
 * directory of FILE) into *p, appending rules. 0 or -errno with *e set to
 * "FILE:LINE: ...". */
int scf_parse(struct scf_policy *p, const char *file, const char *text, struct ai_err *e);
void scf_policy_free(struct scf_policy *p);
/* The built-in default profile's text. */
const char *scf_default_text(void);

/* Find profile NAME: "default" (built in), "unconfined" (returns 0 with
 * *unconfined set), a path containing '/', or NAME.policy in each of DIRS
 * (NULL-terminated). Parses it into *p. */
int scf_load(struct scf_policy *p, const char *name, const char *const *dirs,
	     int *unconfined, struct ai_err *e);

/* The program for profile NAME, ready for scf_apply(): for "default" the
 * one compiled at build time (init/gen/scf_gen.c) when linked in, else
 * scf_load() + scf_compile(). *owned: the caller frees prog->filter.
 * *unconfined: no filter at all. */
int scf_prog(const char *name, const char *const *dirs, struct sock_fprog *prog, int *owned,
	     int *unconfined, struct ai_err *e);

/* For the OCI bundle: a rule's syscall name (NULL when not on this
 * architecture) and an action's OCI name ("SCMP_ACT_ERRNO", *errno_ret). */
const char *scf_syscall_name(int nr, char *buf, size_t n);
const char *scf_action_oci(uint32_t action, int *errno_ret);

/* Compile to a BPF program (malloc'd filter in *prog). */
int scf_compile(const struct scf_policy *p, struct sock_fprog *prog, struct ai_err *e);
/* In the agent child, after no_new_privs: install the program. */
int scf_apply(const struct sock_fprog *prog, struct ai_err *e);

#endif
