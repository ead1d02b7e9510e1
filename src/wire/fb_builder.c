/*
 * fb_builder.c — building FlatBuffers back to front (see atp/fb.h).
 *
 * The layout follows the reference builder: data grows from the end of the
 * caller's buffer toward its start, every offset is counted from the end
 * while building, each element is aligned to its size relative to the end,
 * and atp_fb_finish() pads the whole so that the start is aligned too.
 */
#include "atp/fb.h"

#include <assert.h>

#define VOFFSET(id) (4u + 2u * (id))

void atp_fb_builder_init(atp_fb_builder *b, void *buf, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)cap;
	b->minalign = 1;
}

static inline uint8_t *at(const atp_fb_builder *b, uint32_t off)
{
	return b->buf + b->cap - off;
}

/* Room for n more bytes; on overflow every later write is skipped. */
static inline bool reserve(atp_fb_builder *b, uint32_t n)
{
	if (b->overflow || n > b->cap - b->size) {
		b->overflow = true;
		return false;
	}
	return true;
}

static void zeros(atp_fb_builder *b, uint32_t n)
{
	if (!reserve(b, n))
		return;
	b->size += n;
	memset(at(b, b->size), 0, n);
}

static void push_bytes(atp_fb_builder *b, const void *p, uint32_t n)
{
	if (!reserve(b, n))
		return;
	b->size += n;
	if (n)
		memcpy(at(b, b->size), p, n);
}

static inline uint32_t padding(uint32_t size, uint32_t align)
{
	return (~size + 1) & (align - 1);
}

static void align_to(atp_fb_builder *b, uint32_t align)
{
	if (align > b->minalign)
		b->minalign = align;
	zeros(b, padding(b->size, align));
}

/* Pad so that after len more bytes the size is a multiple of align. */
static void prealign(atp_fb_builder *b, uint32_t len, uint32_t align)
{
	if (align > b->minalign)
		b->minalign = align;
	zeros(b, padding(b->size + len, align));
}

static uint32_t push_u32(atp_fb_builder *b, uint32_t v)
{
	align_to(b, 4);
	push_bytes(b, &v, 4);
	return b->size;
}

/* The value stored at the next aligned u32 to reach ref: the distance from there. */
static uint32_t refer_to(atp_fb_builder *b, atp_fb_ref ref)
{
	align_to(b, 4);
	assert(b->overflow || (ref && ref <= b->size));
	return b->size - ref + 4;
}

atp_fb_ref atp_fb_create_string(atp_fb_builder *b, const char *s, size_t len)
{
	assert(!b->in_table);
	if (len > UINT32_MAX / 4) {
		b->overflow = true;
		return 0;
	}
	prealign(b, (uint32_t)len + 1, 4);
	zeros(b, 1);
	push_bytes(b, s, (uint32_t)len);
	return push_u32(b, (uint32_t)len);
}

atp_fb_ref atp_fb_create_vector(atp_fb_builder *b, const void *elems, uint32_t n, uint32_t elem_size,
				uint32_t align)
{
	assert(!b->in_table);
	uint64_t bytes = (uint64_t)n * elem_size;
	if (bytes > UINT32_MAX / 4) {
		b->overflow = true;
		return 0;
	}
	prealign(b, (uint32_t)bytes, 4);
	prealign(b, (uint32_t)bytes, align);
	push_bytes(b, elems, (uint32_t)bytes);
	return push_u32(b, n);
}

atp_fb_ref atp_fb_create_offset_vector(atp_fb_builder *b, const atp_fb_ref *refs, uint32_t n)
{
	assert(!b->in_table);
	if (n > UINT32_MAX / 16) {
		b->overflow = true;
		return 0;
	}
	prealign(b, n * 4, 4);
	for (uint32_t i = n; i > 0; i--)
		push_u32(b, refer_to(b, refs[i - 1]));
	return push_u32(b, n);
}

void atp_fb_start_table(atp_fb_builder *b)
{
	assert(!b->in_table);
	/*
	 * Start every table at an 8-byte boundary: then the padding before its
	 * widest field never varies, tables of one shape get byte-identical
	 * vtables, and the vtable cache shares them.
	 */
	align_to(b, 8);
	b->in_table = true;
	b->table_start = b->size;
	b->nfields = 0;
}

static void track_field(atp_fb_builder *b, unsigned id)
{
	assert(b->in_table && id < ATP_FB_FIELDS_MAX);
	b->field_at[id] = b->size;
	if (id + 1 > b->nfields) {
		for (unsigned i = b->nfields; i < id; i++)
			b->field_at[i] = 0;
		b->nfields = (uint16_t)(id + 1);
	}
}

static void add_scalar(atp_fb_builder *b, unsigned id, const void *v, uint32_t size)
{
	align_to(b, size);
	push_bytes(b, v, size);
	track_field(b, id);
}

void atp_fb_add_u8(atp_fb_builder *b, unsigned id, uint8_t v, uint8_t dflt)
{
	if (v != dflt)
		add_scalar(b, id, &v, 1);
}

void atp_fb_add_u32(atp_fb_builder *b, unsigned id, uint32_t v, uint32_t dflt)
{
	if (v != dflt)
		add_scalar(b, id, &v, 4);
}

void atp_fb_add_u64(atp_fb_builder *b, unsigned id, uint64_t v, uint64_t dflt)
{
	if (v != dflt)
		add_scalar(b, id, &v, 8);
}

void atp_fb_add_i64(atp_fb_builder *b, unsigned id, int64_t v, int64_t dflt)
{
	if (v != dflt)
		add_scalar(b, id, &v, 8);
}

void atp_fb_add_offset(atp_fb_builder *b, unsigned id, atp_fb_ref ref)
{
	if (!ref)
		return;
	uint32_t rel = refer_to(b, ref);
	push_bytes(b, &rel, 4);
	track_field(b, id);
}

/* The size at which an identical vtable was already written, or 0. */
static uint32_t find_vtable(const atp_fb_builder *b, const uint8_t *vt, uint16_t vt_size)
{
	for (uint32_t i = 0; i < b->n_vtables; i++) {
		const uint8_t *other = at(b, b->vtables[i]);
		if (atp_fb_read_u16(other) == vt_size && memcmp(other, vt, vt_size) == 0)
			return b->vtables[i];
	}
	return 0;
}

atp_fb_ref atp_fb_end_table(atp_fb_builder *b)
{
	assert(b->in_table);
	b->in_table = false;
	int32_t zero = 0;
	align_to(b, 4);
	push_bytes(b, &zero, 4);
	uint32_t table = b->size;
	/* The vtable: its size, the table's size, then each field's offset in the table. */
	uint16_t vt_size = (uint16_t)VOFFSET(b->nfields);
	if (table - b->table_start > UINT16_MAX)
		b->overflow = true; /* a table's inline part must fit a voffset */
	uint16_t object_size = (uint16_t)(table - b->table_start);
	zeros(b, vt_size);
	if (b->overflow)
		return 0;
	uint8_t *vt = at(b, b->size);
	memcpy(vt, &vt_size, 2);
	memcpy(vt + 2, &object_size, 2);
	for (unsigned id = 0; id < b->nfields; id++) {
		uint16_t off = b->field_at[id] ? (uint16_t)(table - b->field_at[id]) : 0;
		memcpy(vt + VOFFSET(id), &off, 2);
	}
	uint32_t vt_at = find_vtable(b, vt, vt_size);
	if (vt_at) {
		b->size = table; /* drop the copy */
	} else {
		vt_at = b->size;
		if (b->n_vtables < ATP_FB_VTABLE_CACHE)
			b->vtables[b->n_vtables++] = vt_at;
	}
	int32_t soffset = (int32_t)vt_at - (int32_t)table;
	memcpy(at(b, table), &soffset, 4);
	return table;
}

const uint8_t *atp_fb_finish(atp_fb_builder *b, atp_fb_ref root, const char *identifier, size_t *size)
{
	assert(!b->in_table);
	prealign(b, 4 + (identifier ? 4 : 0), b->minalign);
	if (identifier)
		push_bytes(b, identifier, 4);
	push_u32(b, refer_to(b, root));
	if (b->overflow)
		return NULL;
	*size = b->size;
	return at(b, b->size);
}
