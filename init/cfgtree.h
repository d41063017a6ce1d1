/* cfgtree: YAML text -> a tree of nodes that keep their file:line:col.
 *
 * Owns: the libyaml event loop, the limits that keep hostile input harmless
 * (depth, size, aliases), ${VAR} / ${VAR:-default} substitution in scalars.
 * Used by the schema loader (config.c) and the legacy readers (check/import).
 * Never touches the system beyond reading the file.
 */
#ifndef AINIT_CFGTREE_H
#define AINIT_CFGTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "util.h"

enum ct_kind { CT_SCALAR, CT_SEQ, CT_MAP, CT_NULL };

struct ct_node {
	enum ct_kind kind;
	struct cfg_pos pos;
	const char *value;     /* scalars: text after substitution; NULL otherwise */
	bool quoted;           /* scalar was quoted ('...' or "...") */
	struct ct_node **items; /* SEQ: items; MAP: keys at 2i, values at 2i+1 */
	size_t n;              /* SEQ: item count; MAP: pair count */
};

struct ct_opts {
	bool substitute_env;   /* expand ${VAR} / ${VAR:-default} */
	bool allow_aliases;    /* legacy files: resolve anchors/aliases by copy */
	bool allow_duplicate_keys; /* legacy readers report duplicates themselves */
};

/* Parse a whole file. The tree and its strings live in *arena. On error a
 * diagnostic is added to *d and NULL is returned. An empty document gives a
 * CT_NULL node. */
struct ct_node *ct_parse_file(const char *path, const struct ct_opts *o,
			      struct ai_arena *arena, struct diag_list *d);
/* The whole of a regular file (at most CT_MAX_FILE), NUL-terminated, in a
 * malloc'd *out; an "io" diagnostic named by path and -1 on failure. */
int ct_read_file(const char *path, char **out, size_t *len, struct diag_list *d);
struct ct_node *ct_parse_buf(const char *name, const char *buf, size_t len,
			     const struct ct_opts *o, struct ai_arena *arena,
			     struct diag_list *d);

/* MAP lookup; NULL when absent or when m is not a map. */
struct ct_node *ct_get(const struct ct_node *m, const char *key);
static inline struct ct_node *ct_key(const struct ct_node *m, size_t i) { return m->items[2 * i]; }
static inline struct ct_node *ct_val(const struct ct_node *m, size_t i) { return m->items[2 * i + 1]; }

/* Merge overlay into base (maps merge per key recursively, everything else
 * is replaced). Both live in the same arena. Returns the merged node. */
struct ct_node *ct_merge(struct ai_arena *a, struct ct_node *base, struct ct_node *overlay);

/* Levenshtein distance, for "did you mean". */
int ct_edit_distance(const char *a, const char *b);
/* Closest candidate within distance 3 (or NULL). */
const char *ct_suggest(const char *word, const char *const *cands, size_t n);

#define CT_MAX_DEPTH 64
#define CT_MAX_FILE (16u << 20)
#define CT_MAX_MAP_KEYS 10000

#endif
