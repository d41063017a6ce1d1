#include "cfgtree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct anchor {
	const char *name;
	struct ct_node *node;
};

struct builder {
	yaml_parser_t parser;
	const char *file;
	const struct ct_opts *o;
	struct ai_arena *a;
	struct diag_list *d;
	struct anchor *anchors;
	size_t nanchors, capanchors;
	int depth;
	size_t aliases_expanded;
};

static struct cfg_pos mark_pos(const struct builder *b, yaml_mark_t m)
{
	return (struct cfg_pos){b->file, (unsigned)m.line + 1, (unsigned)m.column + 1};
}

static void oom(struct builder *b, yaml_mark_t m)
{
	diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "yaml", "out of memory while reading the file");
}

/* ${VAR} and ${VAR:-default}. An unset variable without a default is an error. */
static const char *substitute(struct builder *b, const char *s, size_t len, yaml_mark_t m)
{
	char *out;
	size_t cap = len + 1, n = 0;
	if (!memchr(s, '$', len))
		return ai_arena_strndup(b->a, s, len);
	cap = len * 2 + 64;
	char *tmp = malloc(cap);
	if (!tmp) {
		oom(b, m);
		return NULL;
	}
	for (size_t i = 0; i < len;) {
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *end = memchr(s + i, '}', len - i);
			if (!end) {
				diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "env-substitution",
					 "unterminated \"${\" in \"%.*s\"", (int)len, s);
				free(tmp);
				return NULL;
			}
			size_t vlen = (size_t)(end - (s + i + 2));
			char name[256];
			const char *def = NULL;
			size_t deflen = 0;
			const char *colon = memchr(s + i + 2, ':', vlen);
			size_t nlen = colon ? (size_t)(colon - (s + i + 2)) : vlen;
			if (colon && colon + 1 < end && colon[1] == '-') {
				def = colon + 2;
				deflen = (size_t)(end - def);
			}
			if (nlen == 0 || nlen >= sizeof name) {
				diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "env-substitution",
					 "bad variable reference in \"%.*s\"", (int)len, s);
				free(tmp);
				return NULL;
			}
			memcpy(name, s + i + 2, nlen);
			name[nlen] = 0;
			const char *val = getenv(name);
			size_t vl;
			if (val && (*val || !def))
				vl = strlen(val);
			else if (def)
				val = def, vl = deflen;
			else {
				diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "env-substitution",
					 "environment variable %s is not set and has no default "
					 "(write ${%s:-default})", name, name);
				free(tmp);
				return NULL;
			}
			if (n + vl + (len - i) + 1 > cap) {
				cap = n + vl + (len - i) + 64;
				char *t2 = realloc(tmp, cap);
				if (!t2) {
					free(tmp);
					oom(b, m);
					return NULL;
				}
				tmp = t2;
			}
			memcpy(tmp + n, val, vl);
			n += vl;
			i = (size_t)(end - s) + 1;
		} else {
			tmp[n++] = s[i++];
		}
	}
	out = ai_arena_strndup(b->a, tmp, n);
	free(tmp);
	if (!out)
		oom(b, m);
	return out;
}

static struct ct_node *new_node(struct builder *b, enum ct_kind k, yaml_mark_t m)
{
	struct ct_node *n = ai_arena_alloc(b->a, sizeof *n);
	if (!n) {
		oom(b, m);
		return NULL;
	}
	n->kind = k;
	n->pos = mark_pos(b, m);
	return n;
}

static int push_item(struct builder *b, struct ct_node ***items, size_t *n, size_t *cap,
		     struct ct_node *x, yaml_mark_t m)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct ct_node **v = ai_arena_alloc(b->a, nc * sizeof *v);
		if (!v) {
			oom(b, m);
			return -1;
		}
		if (*n)
			memcpy(v, *items, *n * sizeof *v);
		*items = v;
		*cap = nc;
	}
	(*items)[(*n)++] = x;
	return 0;
}

static int remember_anchor(struct builder *b, const yaml_char_t *anchor, struct ct_node *n,
			   yaml_mark_t m)
{
	if (!anchor)
		return 0;
	if (!b->o->allow_aliases) {
		diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "yaml",
			 "YAML anchors (&%s) are not supported in ainit configs; write the value out",
			 (const char *)anchor);
		return -1;
	}
	if (b->nanchors == b->capanchors) {
		size_t nc = b->capanchors ? b->capanchors * 2 : 8;
		struct anchor *v = realloc(b->anchors, nc * sizeof *v);
		if (!v) {
			oom(b, m);
			return -1;
		}
		b->anchors = v;
		b->capanchors = nc;
	}
	b->anchors[b->nanchors].name = ai_arena_strdup(b->a, (const char *)anchor);
	b->anchors[b->nanchors++].node = n;
	return 0;
}

static struct ct_node *parse_node(struct builder *b, yaml_event_t *ev);

static bool next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev)) {
		yaml_mark_t m = b->parser.problem_mark;
		diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "yaml", "YAML syntax: %s%s%s",
			 b->parser.problem ? b->parser.problem : "parse error",
			 b->parser.context ? " " : "",
			 b->parser.context ? b->parser.context : "");
		return false;
	}
	return true;
}

static struct ct_node *parse_collection(struct builder *b, yaml_event_t *start, bool map)
{
	yaml_mark_t m = start->start_mark;
	struct ct_node *n = new_node(b, map ? CT_MAP : CT_SEQ, m);
	size_t cap = 0, count = 0;
	const yaml_char_t *anchor = map ? start->data.mapping_start.anchor
					: start->data.sequence_start.anchor;
	if (!n)
		return NULL;
	if (++b->depth > CT_MAX_DEPTH) {
		diag_add(b->d, DIAG_ERROR, n->pos, "yaml", "nesting deeper than %d levels",
			 CT_MAX_DEPTH);
		return NULL;
	}
	if (remember_anchor(b, anchor, n, m) < 0)
		return NULL;
	for (;;) {
		yaml_event_t ev;
		if (!next_event(b, &ev))
			return NULL;
		if (ev.type == (map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&ev);
			break;
		}
		struct ct_node *item = parse_node(b, &ev);
		yaml_mark_t im = ev.start_mark;
		yaml_event_delete(&ev);
		if (!item)
			return NULL;
		if (map && count % 2 == 0) {
			if (item->kind != CT_SCALAR) {
				diag_add(b->d, DIAG_ERROR, item->pos, "yaml",
					 "mapping keys must be plain strings");
				return NULL;
			}
			if (strcmp(item->value, "<<") == 0 && !item->quoted && !b->o->allow_aliases) {
				diag_add(b->d, DIAG_ERROR, item->pos, "yaml",
					 "YAML merge keys (<<) are not supported; write the keys out");
				return NULL;
			}
			/* the duplicate check below is quadratic: bound it */
			if (count / 2 >= CT_MAX_MAP_KEYS) {
				diag_add(b->d, DIAG_ERROR, item->pos, "limit",
					 "more than %d keys in one mapping", CT_MAX_MAP_KEYS);
				return NULL;
			}
			if (!b->o->allow_duplicate_keys)
				for (size_t i = 0; i < count; i += 2)
					if (strcmp(n->items[i]->value, item->value) == 0) {
						diag_add(b->d, DIAG_ERROR, item->pos, "duplicate-key",
							 "duplicate key \"%s\"", item->value);
						diag_note(b->d, n->items[i]->pos, "first defined here");
						return NULL;
					}
		}
		if (push_item(b, &n->items, &count, &cap, item, im) < 0)
			return NULL;
	}
	n->n = map ? count / 2 : count;
	b->depth--;
	return n;
}

/* Explicit tags (!!binary, !custom) would change what a value means in ways
 * the schema does not describe: refuse them rather than guess. */
static bool refuse_tag(struct builder *b, const yaml_char_t *tag, yaml_mark_t m)
{
	if (!tag)
		return false;
	diag_add(b->d, DIAG_ERROR, mark_pos(b, m), "yaml",
		 "YAML tags (%s) are not supported; write a plain value", (const char *)tag);
	return true;
}

static struct ct_node *parse_node(struct builder *b, yaml_event_t *ev)
{
	if ((ev->type == YAML_SCALAR_EVENT && refuse_tag(b, ev->data.scalar.tag, ev->start_mark)) ||
	    (ev->type == YAML_SEQUENCE_START_EVENT &&
	     refuse_tag(b, ev->data.sequence_start.tag, ev->start_mark)) ||
	    (ev->type == YAML_MAPPING_START_EVENT &&
	     refuse_tag(b, ev->data.mapping_start.tag, ev->start_mark)))
		return NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *v = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;
		bool quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
			      ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
		bool is_null = !quoted && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			       (len == 0 || (len == 1 && v[0] == '~') ||
				(len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) ||
					      !memcmp(v, "NULL", 4))));
		struct ct_node *n = new_node(b, is_null ? CT_NULL : CT_SCALAR, ev->start_mark);
		if (!n)
			return NULL;
		if (memchr(v, '\0', len)) {
			diag_add(b->d, DIAG_ERROR, n->pos, "yaml", "NUL byte inside a value");
			return NULL;
		}
		n->quoted = quoted;
		if (!is_null) {
			n->value = b->o->substitute_env ? substitute(b, v, len, ev->start_mark)
							: ai_arena_strndup(b->a, v, len);
			if (!n->value)
				return NULL;
		}
		if (remember_anchor(b, ev->data.scalar.anchor, n, ev->start_mark) < 0)
			return NULL;
		return n;
	}
	case YAML_SEQUENCE_START_EVENT:
		return parse_collection(b, ev, false);
	case YAML_MAPPING_START_EVENT:
		return parse_collection(b, ev, true);
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		if (!b->o->allow_aliases) {
			diag_add(b->d, DIAG_ERROR, mark_pos(b, ev->start_mark), "yaml",
				 "YAML aliases (*%s) are not supported in ainit configs", name);
			return NULL;
		}
		/* Shared, not copied: the tree is read-only, so sharing is safe and
		 * "billion laughs" costs nothing. */
		for (size_t i = b->nanchors; i-- > 0;)
			if (strcmp(b->anchors[i].name, name) == 0)
				return b->anchors[i].node;
		diag_add(b->d, DIAG_ERROR, mark_pos(b, ev->start_mark), "yaml",
			 "unknown alias *%s", name);
		return NULL;
	}
	default:
		diag_add(b->d, DIAG_ERROR, mark_pos(b, ev->start_mark), "yaml",
			 "unexpected YAML event");
		return NULL;
	}
}

struct ct_node *ct_parse_buf(const char *name, const char *buf, size_t len,
			     const struct ct_opts *o, struct ai_arena *arena,
			     struct diag_list *d)
{
	static const struct ct_opts defaults = {0};
	struct builder b = {.file = name, .o = o ? o : &defaults, .a = arena, .d = d};
	struct ct_node *root = NULL;
	yaml_event_t ev;
	bool done = false;

	if (!yaml_parser_initialize(&b.parser)) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){name, 0, 0}, "yaml",
			 "cannot initialise the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!next_event(&b, &ev))
			goto out_fail;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (root) {
				diag_add(d, DIAG_ERROR, mark_pos(&b, ev.start_mark), "yaml",
					 "more than one YAML document in the file");
				yaml_event_delete(&ev);
				goto out_fail;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			root = parse_node(&b, &ev);
			if (!root) {
				yaml_event_delete(&ev);
				goto out_fail;
			}
		}
		yaml_event_delete(&ev);
	}
	if (!root) {
		root = new_node(&b, CT_NULL, (yaml_mark_t){0, 0, 0});
		if (root)
			root->pos.line = 1, root->pos.col = 1;
	}
	yaml_parser_delete(&b.parser);
	free(b.anchors);
	return root;
out_fail:
	yaml_parser_delete(&b.parser);
	free(b.anchors);
	return NULL;
}

int ct_read_file(const char *path, char **out, size_t *len, struct diag_list *d)
{
	AI_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *buf;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){path, 0, 0}, "io",
			 "cannot read: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)CT_MAX_FILE) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){path, 0, 0}, "io",
			 S_ISREG(sb.st_mode) ? "file larger than 16 MiB" : "not a regular file");
		return -1;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		diag_add(d, DIAG_ERROR, (struct cfg_pos){path, 0, 0}, "io", "out of memory");
		return -1;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_add(d, DIAG_ERROR, (struct cfg_pos){path, 0, 0}, "io",
				 "cannot read: %s", strerror(errno));
			free(buf);
			return -1;
		}
		if (r == 0)
			break; /* the file shrank: parse what is there */
		got += (size_t)r;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

struct ct_node *ct_parse_file(const char *path, const struct ct_opts *o,
			      struct ai_arena *arena, struct diag_list *d)
{
	char *buf;
	size_t len;
	struct ct_node *root;
	/* Diagnostics outlive the arena (a failed load frees it before they
	 * are printed): name them by the caller's path, which lives longer. */
	if (ct_read_file(path, &buf, &len, d) < 0)
		return NULL;
	root = ct_parse_buf(path, buf, len, o, arena, d);
	free(buf);
	return root;
}

struct ct_node *ct_get(const struct ct_node *m, const char *key)
{
	if (!m || m->kind != CT_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(ct_key(m, i)->value, key) == 0)
			return ct_val(m, i);
	return NULL;
}

struct ct_node *ct_merge(struct ai_arena *a, struct ct_node *base, struct ct_node *over)
{
	if (!base || base->kind != CT_MAP || !over || over->kind != CT_MAP)
		return over ? over : base;
	struct ct_node *n = ai_arena_alloc(a, sizeof *n);
	if (!n)
		return NULL;
	*n = *base;
	n->items = ai_arena_alloc(a, 2 * (base->n + over->n) * sizeof *n->items + 1);
	if (!n->items)
		return NULL;
	memcpy(n->items, base->items, 2 * base->n * sizeof *n->items);
	n->n = base->n;
	for (size_t i = 0; i < over->n; i++) {
		size_t j;
		for (j = 0; j < n->n; j++)
			if (strcmp(ct_key(n, j)->value, ct_key(over, i)->value) == 0)
				break;
		if (j < n->n) {
			struct ct_node *m = ct_merge(a, ct_val(n, j), ct_val(over, i));
			if (!m)
				return NULL;
			n->items[2 * j + 1] = m;
		} else {
			n->items[2 * n->n] = ct_key(over, i);
			n->items[2 * n->n + 1] = ct_val(over, i);
			n->n++;
		}
	}
	return n;
}

int ct_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int cost = (a[i - 1] | 32) == (b[j - 1] | 32) ? 0 : 1;
			int v = prev + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			prev = cur;
		}
	}
	return row[lb];
}

const char *ct_suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	int bd = 4;
	for (size_t i = 0; i < n; i++) {
		int dd = ct_edit_distance(word, cands[i]);
		if (dd < bd)
			bd = dd, best = cands[i];
	}
	return best;
}
