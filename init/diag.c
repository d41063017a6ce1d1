#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

void diag_add(struct diag_list *d, enum diag_sev sev, struct cfg_pos pos,
	      const char *rule, const char *fmt, ...)
{
	va_list ap;
	if (d->n == d->cap) {
		int cap = d->cap ? d->cap * 2 : 32;
		struct diag *v = realloc(d->v, (size_t)cap * sizeof *v);
		if (!v) {
			d->oom = true;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	struct diag *x = &d->v[d->n];
	memset(x, 0, sizeof *x);
	x->sev = sev;
	x->pos = pos;
	x->rule = rule;
	va_start(ap, fmt);
	x->msg = vfmt(fmt, ap);
	va_end(ap);
	if (!x->msg) {
		d->oom = true;
		return;
	}
	d->n++;
	if (sev == DIAG_ERROR)
		d->errors++;
	else if (sev == DIAG_WARNING)
		d->warnings++;
}

void diag_note(struct diag_list *d, struct cfg_pos pos, const char *fmt, ...)
{
	va_list ap;
	if (!d->n)
		return;
	struct diag *x = &d->v[d->n - 1];
	free(x->note);
	x->note_pos = pos;
	va_start(ap, fmt);
	x->note = vfmt(fmt, ap);
	va_end(ap);
}

static int pos_cmp(const struct cfg_pos *a, const struct cfg_pos *b)
{
	int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");
	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

/* Stable merge sort: a hostile file can produce hundreds of thousands of
 * diagnostics, where insertion sort would take minutes. Falls back to
 * insertion sort (still stable) when the scratch array cannot be had. */
void diag_sort(struct diag_list *d)
{
	struct diag *tmp = d->n > 1 ? malloc((size_t)d->n * sizeof *tmp) : NULL;
	if (!tmp) {
		for (int i = 1; i < d->n; i++) {
			struct diag t = d->v[i];
			int j = i - 1;
			while (j >= 0 && pos_cmp(&d->v[j].pos, &t.pos) > 0) {
				d->v[j + 1] = d->v[j];
				j--;
			}
			d->v[j + 1] = t;
		}
		return;
	}
	for (int w = 1; w < d->n; w *= 2) {
		for (int lo = 0; lo < d->n; lo += 2 * w) {
			int mid = lo + w < d->n ? lo + w : d->n;
			int hi = lo + 2 * w < d->n ? lo + 2 * w : d->n;
			int i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = pos_cmp(&d->v[j].pos, &d->v[i].pos) < 0 ? d->v[j++] : d->v[i++];
			while (i < mid)
				tmp[k++] = d->v[i++];
			while (j < hi)
				tmp[k++] = d->v[j++];
		}
		memcpy(d->v, tmp, (size_t)d->n * sizeof *tmp);
	}
	free(tmp);
}

static void print_pos(FILE *f, const struct cfg_pos *p)
{
	if (p->line)
		fprintf(f, "%s:%u:%u: ", p->file ? p->file : "<input>", p->line, p->col);
	else
		fprintf(f, "%s: ", p->file ? p->file : "<input>");
}

void diag_print(const struct diag_list *d, FILE *f)
{
	static const char *const sev[] = {"error", "warning", "note"};
	for (int i = 0; i < d->n; i++) {
		const struct diag *x = &d->v[i];
		print_pos(f, &x->pos);
		fprintf(f, "%s: %s", sev[x->sev], x->msg);
		if (x->rule)
			fprintf(f, " [%s]", x->rule);
		fputc('\n', f);
		if (x->note) {
			print_pos(f, &x->note_pos);
			fprintf(f, "note: %s\n", x->note);
		}
	}
	if (d->oom)
		fprintf(f, "ainit: out of memory: some diagnostics were dropped\n");
}

void diag_free(struct diag_list *d)
{
	for (int i = 0; i < d->n; i++) {
		free(d->v[i].msg);
		free(d->v[i].note);
	}
	free(d->v);
	memset(d, 0, sizeof *d);
}
