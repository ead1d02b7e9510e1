/* onhand_csv.c — the stock file of a count (see onhand_csv.h). */
#include "onhand_csv.h"

#include "atp/limits.h"

#include <stdio.h>
#include <string.h>

/* The fields of a line in place (a field may be quoted whole); their count, or max + 1 when there are more. */
static int split(char *line, char **f, int max)
{
	int n = 0;
	for (char *p = line;;) {
		if (n == max)
			return max + 1;
		char *end = strchr(p, ',');
		if (end)
			*end = 0;
		size_t len = strlen(p);
		if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
			p[len - 1] = 0;
			p++;
		}
		f[n++] = p;
		if (!end)
			return n;
		p = end + 1;
	}
}

static int column(char **f, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(f[i], name) == 0)
			return i;
	return -1;
}

int onhand_csv_header(char *line, onhand_cols *cols)
{
	char *f[ONHAND_FIELDS_MAX];
	if (memcmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3; /* a UTF-8 byte-order mark: not part of the header */
	cols->width = split(line, f, ONHAND_FIELDS_MAX);
	if (cols->width > ONHAND_FIELDS_MAX)
		return -1;
	cols->sku = column(f, cols->width, "sku");
	cols->location = column(f, cols->width, "location");
	cols->on_hand = column(f, cols->width, "on_hand");
	return cols->sku < 0 || cols->location < 0 || cols->on_hand < 0 ? -1 : 0;
}

/* A whole number in 0..ATP_QTY_MAX, digits only. */
static bool parse_qty(const char *s, int64_t *out)
{
	int64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (ATP_QTY_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

const char *onhand_csv_row(char *line, const onhand_cols *cols, onhand_row *row, char *why, size_t n)
{
	char *f[ONHAND_FIELDS_MAX];
	int fields = split(line, f, ONHAND_FIELDS_MAX);
	if (fields != cols->width) {
		snprintf(why, n, "%d fields, the header has %d", fields, cols->width);
		return why;
	}
	row->sku = atp_str_of(f[cols->sku], strlen(f[cols->sku]));
	row->location = atp_str_of(f[cols->location], strlen(f[cols->location]));
	if (!atp_str_valid(row->sku, ATP_SKU_MAX))
		return "sku: empty, longer than 64 bytes, or with a control byte";
	if (!atp_str_valid(row->location, ATP_LOC_MAX))
		return "location: empty, longer than 32 bytes, or with a control byte";
	if (!parse_qty(f[cols->on_hand], &row->on_hand))
		return "on_hand: not a whole number in 0..10^12";
	return NULL;
}
