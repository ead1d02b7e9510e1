/* event_file.c — the binary event file (see event_file.h). */
#include "event_file.h"
#include "atp/wire_frame.h"

#include <stdlib.h>
#include <string.h>

int atp_evb_writer_open(atp_evb_writer *w, FILE *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->cap = ATP_EVB_BATCH * 1024;
	w->mem = malloc(w->cap);
	if (!w->mem)
		return -1;
	atp_fb_builder_init(&w->b, w->mem, w->cap);
	return fwrite(ATP_EVB_MAGIC, 8, 1, out) == 1 ? 0 : -1;
}

static int flush_frame(atp_evb_writer *w)
{
	if (!w->n)
		return 0;
	size_t size;
	const uint8_t *p = atp_fb_finish(&w->b, atp_wire_build_event_batch(&w->b, w->refs, w->n), NULL, &size);
	uint32_t len = (uint32_t)size;
	int rc = p && fwrite(&len, 4, 1, w->out) == 1 && fwrite(p, size, 1, w->out) == 1 ? 0 : -1;
	atp_fb_builder_init(&w->b, w->mem, w->cap);
	w->n = 0;
	w->frames++;
	return rc;
}

int atp_evb_write(atp_evb_writer *w, const atp_event *ev, atp_wire_event_time t)
{
	w->refs[w->n++] = atp_wire_build_event(&w->b, ev, t);
	return w->n == ATP_EVB_BATCH ? flush_frame(w) : 0;
}

int atp_evb_writer_close(atp_evb_writer *w)
{
	int rc = flush_frame(w);
	free(w->mem);
	w->mem = NULL;
	return rc;
}

bool atp_evb_is(const void *buf, size_t len)
{
	return len >= 8 && memcmp(buf, ATP_EVB_MAGIC, 8) == 0;
}

void atp_evb_open(atp_evb_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->off = 8;
	r->frame_off = 8;
}

int atp_evb_next(atp_evb_reader *r)
{
	if (r->off == r->len)
		return 0;
	uint32_t n;
	r->frame_off = r->off;
	int64_t whole = atp_frame_split(r->buf + r->off, r->len - r->off, ATP_WIRE_MESSAGE_MAX, &n);
	if (whole <= 0)
		return -1;  /* a damaged length, or a file cut short */
	int k = atp_wire_decode_event_batch(r->buf + r->off + ATP_FRAME_HEADER, n, r->ev, r->t, ATP_WIRE_BATCH_MAX);
	if (k >= 0)
		r->off += (size_t)whole;
	return k;
}
