/* json: the ctl wire format's JSON. A writer into a caller's fixed buffer
 * (overflow is remembered, never written past) and a parser into a
 * caller-provided node pool (no allocation), bounded in depth and size.
 * Pure: no I/O.
 */
#ifndef AINIT_JSON_H
#define AINIT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jw {
	char *buf;
	size_t cap, len;
	bool overflow;
	bool need_comma;
};

void jw_init(struct jw *w, char *buf, size_t cap);
void jw_raw(struct jw *w, const char *s);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);        /* NULL -> null */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, long long v);
void jw_uint(struct jw *w, unsigned long long v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* key + value helpers */
void jw_kstr(struct jw *w, const char *k, const char *v);
void jw_kint(struct jw *w, const char *k, long long v);
void jw_kbool(struct jw *w, const char *k, bool v);

enum jv_kind { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_kind kind;
	bool b;
	double num;
	const char *str;   /* NUL-terminated, unescaped into the parser's buffer */
	size_t len;
	int first_child;   /* index into the pool, -1 none */
	int next;          /* next sibling, -1 none */
	const char *key;   /* when a member of an object */
};

struct jparse {
	struct jv *pool;
	int cap, n;
	char *sbuf;        /* string storage, at least as long as the input */
	size_t scap, slen;
	const char *err;   /* static message on failure */
	size_t err_off;
};

/* Parse text[0..len) as one JSON value. Returns the root index or -1. */
int json_parse(struct jparse *p, const char *text, size_t len);
/* Object member by key; -1 when absent. */
int json_get(const struct jparse *p, int obj, const char *key);
const char *json_get_str(const struct jparse *p, int obj, const char *key);

#endif
