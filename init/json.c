#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

void jw_init(struct jw *w, char *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = false;
	w->need_comma = false;
	if (cap)
		buf[0] = 0;
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (w->overflow || w->len + n + 1 > w->cap) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void comma(struct jw *w)
{
	if (w->need_comma)
		put(w, ",", 1);
	w->need_comma = true;
}

void jw_raw(struct jw *w, const char *s) { put(w, s, strlen(s)); }
void jw_obj_begin(struct jw *w) { comma(w); put(w, "{", 1); w->need_comma = false; }
void jw_obj_end(struct jw *w) { put(w, "}", 1); w->need_comma = true; }
void jw_arr_begin(struct jw *w) { comma(w); put(w, "[", 1); w->need_comma = false; }
void jw_arr_end(struct jw *w) { put(w, "]", 1); w->need_comma = true; }

static void put_escaped(struct jw *w, const char *s, size_t n)
{
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c;
			put(w, esc, 2);
		} else if (c == '\n') {
			put(w, "\\n", 2);
		} else if (c == '\t') {
			put(w, "\\t", 2);
		} else if (c == '\r') {
			put(w, "\\r", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(w, esc, 6);
		} else {
			put(w, (const char *)&s[i], 1);
		}
	}
	put(w, "\"", 1);
}

void jw_key(struct jw *w, const char *k)
{
	comma(w);
	put_escaped(w, k, strlen(k));
	put(w, ":", 1);
	w->need_comma = false;
}

void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	jw_strn(w, s, strlen(s));
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	comma(w);
	put_escaped(w, s, n);
}

void jw_int(struct jw *w, long long v)
{
	char b[32];
	comma(w);
	put(w, b, (size_t)snprintf(b, sizeof b, "%lld", v));
}

void jw_uint(struct jw *w, unsigned long long v)
{
	char b[32];
	comma(w);
	put(w, b, (size_t)snprintf(b, sizeof b, "%llu", v));
}

void jw_bool(struct jw *w, bool v) { comma(w); jw_raw(w, v ? "true" : "false"); }
void jw_null(struct jw *w) { comma(w); jw_raw(w, "null"); }
void jw_kstr(struct jw *w, const char *k, const char *v) { jw_key(w, k); jw_str(w, v); }
void jw_kint(struct jw *w, const char *k, long long v) { jw_key(w, k); jw_int(w, v); }
void jw_kbool(struct jw *w, const char *k, bool v) { jw_key(w, k); jw_bool(w, v); }

/* ---- parser ---- */

struct cur {
	struct jparse *p;
	const char *s, *end, *start;
};

static int fail(struct cur *c, const char *msg)
{
	if (!c->p->err) {
		c->p->err = msg;
		c->p->err_off = (size_t)(c->s - c->start);
	}
	return -1;
}

static void ws(struct cur *c)
{
	while (c->s < c->end && (*c->s == ' ' || *c->s == '\t' || *c->s == '\n' || *c->s == '\r'))
		c->s++;
}

static int new_node(struct cur *c, enum jv_kind k)
{
	if (c->p->n >= c->p->cap)
		return fail(c, "request too complex");
	struct jv *v = &c->p->pool[c->p->n];
	memset(v, 0, sizeof *v);
	v->kind = k;
	v->first_child = v->next = -1;
	return c->p->n++;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
	if (cp < 0x80)
		o[(*n)++] = (char)cp;
	else if (cp < 0x800) {
		o[(*n)++] = (char)(0xc0 | (cp >> 6));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		o[(*n)++] = (char)(0xe0 | (cp >> 12));
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		o[(*n)++] = (char)(0xf0 | (cp >> 18));
		o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = s[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static const char *parse_string(struct cur *c, size_t *lenp)
{
	struct jparse *p = c->p;
	c->s++; /* opening quote */
	/* worst case every input byte becomes one output byte (+NUL) */
	if (p->slen + (size_t)(c->end - c->s) + 1 > p->scap) {
		fail(c, "string storage exhausted");
		return NULL;
	}
	char *o = p->sbuf + p->slen;
	size_t n = 0;
	while (c->s < c->end && *c->s != '"') {
		unsigned char ch = (unsigned char)*c->s;
		if (ch < 0x20) {
			fail(c, "control character in string");
			return NULL;
		}
		if (ch != '\\') {
			o[n++] = (char)ch;
			c->s++;
			continue;
		}
		if (++c->s >= c->end)
			break;
		switch (*c->s) {
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case '/': o[n++] = '/'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (c->end - c->s < 5 || hex4(c->s + 1, &cp) < 0) {
				fail(c, "bad \\u escape");
				return NULL;
			}
			c->s += 4;
			if (cp == 0) {
				fail(c, "NUL in string");
				return NULL;
			}
			/* \uXXXX encodes to at most 3 bytes, and consumed 6 */
			put_utf8(o, &n, cp);
			break;
		}
		default:
			fail(c, "bad escape in string");
			return NULL;
		}
		c->s++;
	}
	if (c->s >= c->end) {
		fail(c, "unterminated string");
		return NULL;
	}
	c->s++;
	o[n] = 0;
	p->slen += n + 1;
	*lenp = n;
	return o;
}

static int parse_value(struct cur *c, int depth);

static int parse_container(struct cur *c, int depth, bool obj)
{
	int self = new_node(c, obj ? JV_OBJ : JV_ARR), last = -1;
	if (self < 0)
		return -1;
	if (depth > JSON_MAX_DEPTH)
		return fail(c, "nested too deeply");
	c->s++;
	ws(c);
	if (c->s < c->end && *c->s == (obj ? '}' : ']')) {
		c->s++;
		return self;
	}
	for (;;) {
		const char *key = NULL;
		size_t kl;
		ws(c);
		if (obj) {
			if (c->s >= c->end || *c->s != '"')
				return fail(c, "expected a string key");
			if (!(key = parse_string(c, &kl)))
				return -1;
			ws(c);
			if (c->s >= c->end || *c->s != ':')
				return fail(c, "expected ':'");
			c->s++;
		}
		int v = parse_value(c, depth + 1);
		if (v < 0)
			return -1;
		c->p->pool[v].key = key;
		if (last < 0)
			c->p->pool[self].first_child = v;
		else
			c->p->pool[last].next = v;
		last = v;
		ws(c);
		if (c->s >= c->end)
			return fail(c, "unexpected end");
		if (*c->s == ',') {
			c->s++;
			continue;
		}
		if (*c->s == (obj ? '}' : ']')) {
			c->s++;
			return self;
		}
		return fail(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int parse_value(struct cur *c, int depth)
{
	ws(c);
	if (c->s >= c->end)
		return fail(c, "unexpected end");
	switch (*c->s) {
	case '{':
		return parse_container(c, depth, true);
	case '[':
		return parse_container(c, depth, false);
	case '"': {
		int v = new_node(c, JV_STR);
		if (v < 0)
			return -1;
		const char *s = parse_string(c, &c->p->pool[v].len);
		if (!s)
			return -1;
		c->p->pool[v].str = s;
		return v;
	}
	case 't':
	case 'f':
	case 'n': {
		static const char *const words[] = {"true", "false", "null"};
		for (int i = 0; i < 3; i++) {
			size_t l = strlen(words[i]);
			if ((size_t)(c->end - c->s) >= l && !memcmp(c->s, words[i], l)) {
				int v = new_node(c, i == 2 ? JV_NULL : JV_BOOL);
				if (v < 0)
					return -1;
				c->p->pool[v].b = i == 0;
				c->s += l;
				return v;
			}
		}
		return fail(c, "unknown literal");
	}
	default: {
		char num[64];
		size_t n = 0;
		while (c->s + n < c->end && n < sizeof num - 1 &&
		       strchr("+-0123456789.eE", c->s[n]))
			n++;
		if (!n || n == sizeof num - 1)
			return fail(c, "unexpected character");
		memcpy(num, c->s, n);
		num[n] = 0;
		char *e;
		double d = strtod(num, &e);
		if (*e)
			return fail(c, "bad number");
		int v = new_node(c, JV_NUM);
		if (v < 0)
			return -1;
		c->p->pool[v].num = d;
		c->s += n;
		return v;
	}
	}
}

int json_parse(struct jparse *p, const char *text, size_t len)
{
	struct cur c = {p, text, text + len, text};
	p->n = 0;
	p->slen = 0;
	p->err = NULL;
	int root = parse_value(&c, 0);
	if (root < 0)
		return -1;
	ws(&c);
	if (c.s != c.end)
		return fail(&c, "trailing characters");
	return root;
}

int json_get(const struct jparse *p, int obj, const char *key)
{
	if (obj < 0 || p->pool[obj].kind != JV_OBJ)
		return -1;
	for (int i = p->pool[obj].first_child; i >= 0; i = p->pool[i].next)
		if (p->pool[i].key && !strcmp(p->pool[i].key, key))
			return i;
	return -1;
}

const char *json_get_str(const struct jparse *p, int obj, const char *key)
{
	int i = json_get(p, obj, key);
	return i >= 0 && p->pool[i].kind == JV_STR ? p->pool[i].str : NULL;
}
