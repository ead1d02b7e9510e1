/* positions_csv.c — writing the positions CSV (see positions_csv.h). */
#include "positions_csv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A position of one of the cores. */
typedef struct ref {
	const atp_table *t;
	uint32_t id;
} ref;

static int by_key(const void *a, const void *b)
{
	const ref *x = a, *y = b;
	int c = strcmp(atp_table_sku(x->t, x->id), atp_table_sku(y->t, y->id));
	return c ? c : strcmp(atp_table_location(x->t, x->id), atp_table_location(y->t, y->id));
}

/* A field as CSV: quoted when it holds a comma or a quote. */
static void put_field(const char *s, FILE *out)
{
	if (!strpbrk(s, ",\"")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

int atp_positions_csv_write(const atp_core *c, FILE *out)
{
	return atp_positions_csv_write_cores(&c, 1, out);
}

int atp_positions_csv_write_cores(const atp_core *const *cores, uint32_t n_cores, FILE *out)
{
	size_t n = 0;
	for (uint32_t k = 0; k < n_cores; k++)
		n += atp_table_count(atp_core_table(cores[k]));
	ref *refs = malloc((n ? n : 1) * sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	n = 0;
	for (uint32_t k = 0; k < n_cores; k++) {
		const atp_table *t = atp_core_table(cores[k]);
		for (uint32_t i = 0; i < atp_table_count(t); i++)
			refs[n++] = (ref){ t, i };
	}
	qsort(refs, n, sizeof(*refs), by_key);

	fputs("sku,location,on_hand,held,reserved,safety_stock,atp\n", out);
	for (size_t i = 0; i < n; i++) {
		const atp_position *p = atp_table_get(refs[i].t, refs[i].id);
		put_field(atp_table_sku(refs[i].t, refs[i].id), out);
		fputc(',', out);
		put_field(atp_table_location(refs[i].t, refs[i].id), out);
		fprintf(out, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "\n", p->on_hand,
			p->held, p->reserved, p->safety_stock, atp_position_atp(p));
	}
	free(refs);
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
