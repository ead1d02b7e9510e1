/* positions_csv.c — writing the positions CSV (see positions_csv.h). */
#define _GNU_SOURCE
#include "positions_csv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int by_key(const void *a, const void *b, void *arg)
{
	const atp_table *t = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(atp_table_sku(t, x), atp_table_sku(t, y));
	return c ? c : strcmp(atp_table_location(t, x), atp_table_location(t, y));
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
	const atp_table *t = atp_core_table(c);
	uint32_t n = atp_table_count(t);
	uint32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		ids[i] = i;
	qsort_r(ids, n, sizeof(*ids), by_key, (void *)t);

	fputs("sku,location,on_hand,held,reserved,safety_stock,atp\n", out);
	for (uint32_t i = 0; i < n; i++) {
		const atp_position *p = atp_table_get(t, ids[i]);
		put_field(atp_table_sku(t, ids[i]), out);
		fputc(',', out);
		put_field(atp_table_location(t, ids[i]), out);
		fprintf(out, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "\n", p->on_hand,
			p->held, p->reserved, p->safety_stock, atp_position_atp(p));
	}
	free(ids);
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
