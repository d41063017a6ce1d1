/* diag: compiler-style diagnostics, "file:line:col: error: message [rule]",
 * each optionally followed by a "note:" pointing at the other end of a
 * conflict. Owns the list; allocation only at load/check time.
 */
#ifndef AINIT_DIAG_H
#define AINIT_DIAG_H

#include <stdbool.h>
#include <stdio.h>

struct cfg_pos {
	const char *file; /* owned by whoever loaded the file; lives as long as the list */
	unsigned line, col; /* 1-based; line 0 = unknown position */
};

enum diag_sev { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag {
	enum diag_sev sev;
	struct cfg_pos pos;
	char *msg;
	const char *rule; /* static rule id, e.g. "port-collision"; may be NULL */
	struct cfg_pos note_pos;
	char *note;       /* NULL when none */
};

struct diag_list {
	struct diag *v;
	int n, cap;
	int errors, warnings;
	bool oom; /* an allocation failed: some diagnostics were dropped */
};

void diag_add(struct diag_list *d, enum diag_sev sev, struct cfg_pos pos,
	      const char *rule, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Attach a note to the last diagnostic added. */
void diag_note(struct diag_list *d, struct cfg_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Stable order: by file, line, col (insertion order among equals). */
void diag_sort(struct diag_list *d);
void diag_print(const struct diag_list *d, FILE *f);
void diag_free(struct diag_list *d);

#endif
