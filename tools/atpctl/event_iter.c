/*
 * event_iter.c — the events of an input file, CSV or binary (event_file.h),
 * one at a time, each validated, with its occurred_at and a position that
 * names it in messages (FILE:LINE, or FILE@frame offset #index).
 */
#include "import.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int iter_open(event_iter *it, const input *in, bool check)
{
	*it = (event_iter){ .in = in, .binary = atp_evb_is(in->buf, in->len), .check = check };
	if (it->binary) {
		it->evb = malloc(sizeof(*it->evb));
		if (!it->evb)
			return -1;
		atp_evb_open(it->evb, in->buf, in->len);
		return 0;
	}
	it->csv = malloc(sizeof(*it->csv));
	if (!it->csv)
		return -1;
	if (atp_csv_open(it->csv, in->buf, in->len, it->err) < 0) {
		fprintf(stderr, "%s:1: %s\n", in->path, it->err);
		return -1;
	}
	return 0;
}

void iter_close(event_iter *it)
{
	free(it->csv);
	free(it->evb);
}

int iter_next(event_iter *it, atp_event *ev)
{
	if (!it->binary) {
		int rc = atp_csv_next(it->csv, ev, it->err);
		it->occurred_at = it->csv->occurred_at;
		return rc;
	}
	if (it->i == it->n) {
		int n = atp_evb_next(it->evb);
		if (n <= 0) {
			it->i = UINT32_MAX;
			snprintf(it->err, sizeof(it->err), "bad frame (%d)", n);
			if (n < 0)
				it->broken = true;
			return n < 0 ? -1 : 0;
		}
		it->i = 0;
		it->n = (uint32_t)n;
	}
	uint32_t i = it->i++;
	*ev = it->evb->ev[i];
	it->occurred_at = it->evb->t[i].occurred_at;
	if (!it->check)
		return 1;
	int rc = atp_event_validate(ev);
	if (rc) {
		snprintf(it->err, sizeof(it->err), "%s (%s)", atp_status_message(rc), atp_status_name(rc));
		return -1;
	}
	return 1;
}

const char *iter_where(event_iter *it)
{
	if (!it->binary)
		snprintf(it->where, sizeof(it->where), "%s:%" PRIu64, it->in->path, it->csv->line);
	else if (it->i == UINT32_MAX)
		snprintf(it->where, sizeof(it->where), "%s@%zu", it->in->path, it->evb->frame_off);
	else
		snprintf(it->where, sizeof(it->where), "%s@%zu#%u", it->in->path, it->evb->frame_off, it->i - 1);
	return it->where;
}
