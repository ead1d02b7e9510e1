/* fb_verify.c — proving an untrusted FlatBuffer safe to read (see atp/fb.h). */
#include "atp/fb.h"

#include <stdio.h>

static const char *const messages[] = {
	[-ATP_FB_E_TOO_SMALL - 100] = "buffer shorter than its root offset",
	[-ATP_FB_E_TOO_LARGE - 100] = "buffer longer than the message limit",
	[-ATP_FB_E_OFFSET - 100] = "offset points outside the buffer",
	[-ATP_FB_E_ALIGN - 100] = "misaligned table, vector, string or scalar",
	[-ATP_FB_E_VTABLE - 100] = "vtable out of bounds, too short or odd-sized",
	[-ATP_FB_E_FIELD - 100] = "field outside its table",
	[-ATP_FB_E_STRING - 100] = "string runs past the buffer or lacks its NUL",
	[-ATP_FB_E_VECTOR - 100] = "vector runs past the buffer",
	[-ATP_FB_E_DEPTH - 100] = "tables nested deeper than the limit",
	[-ATP_FB_E_TABLES - 100] = "more tables than the limit",
	[-ATP_FB_E_STRING_LEN - 100] = "string longer than its field allows",
	[-ATP_FB_E_VECTOR_LEN - 100] = "vector longer than its field allows",
	[-ATP_FB_E_REQUIRED - 100] = "required field missing",
};

const char *atp_fb_error_message(int err)
{
	if (err == ATP_FB_OK)
		return "ok";
	if (err > ATP_FB_E_TOO_SMALL || err < ATP_FB_E_LAST)
		return "unknown verifier error";
	return messages[-err - 100];
}

static inline uint64_t pos_of(const atp_fb_verifier *v, const uint8_t *p)
{
	return (uint64_t)(p - v->buf);
}

/* [pos, pos + n) inside the buffer. */
static inline bool in_buffer(const atp_fb_verifier *v, uint64_t pos, uint64_t n)
{
	return pos <= v->len && n <= v->len - pos;
}

int atp_fb_verify_begin(atp_fb_verifier *v, const void *buf, size_t len, size_t max_len, uint32_t max_depth,
			uint32_t max_tables, const uint8_t **root)
{
	if (len > max_len || len > UINT32_MAX / 2)
		return ATP_FB_E_TOO_LARGE;
	if (len < 8)
		return ATP_FB_E_TOO_SMALL;
	*v = (atp_fb_verifier){ .buf = buf, .len = (uint32_t)len, .max_depth = max_depth, .max_tables = max_tables };
	uint64_t at = atp_fb_read_u32(v->buf);
	if (!in_buffer(v, at, 4))
		return ATP_FB_E_OFFSET;
	if (at % 4)
		return ATP_FB_E_ALIGN;
	*root = v->buf + at;
	return ATP_FB_OK;
}

/* The vtable of a table already entered. */
static inline const uint8_t *vtable_of(const uint8_t *t)
{
	return t - (int32_t)atp_fb_read_u32(t);
}

int atp_fb_verify_table_enter(atp_fb_verifier *v, const uint8_t *t)
{
	if (++v->depth > v->max_depth)
		return ATP_FB_E_DEPTH;
	if (++v->tables > v->max_tables)
		return ATP_FB_E_TABLES;
	uint64_t pos = pos_of(v, t);
	if (!in_buffer(v, pos, 4))
		return ATP_FB_E_OFFSET;
	if (pos % 4)
		return ATP_FB_E_ALIGN;
	int64_t vt = (int64_t)pos - (int32_t)atp_fb_read_u32(t);
	if (vt < 0 || !in_buffer(v, (uint64_t)vt, 4) || vt % 2)
		return ATP_FB_E_VTABLE;
	const uint8_t *p = v->buf + vt;
	uint16_t vt_size = atp_fb_read_u16(p), object_size = atp_fb_read_u16(p + 2);
	if (vt_size < 4 || vt_size % 2 || !in_buffer(v, (uint64_t)vt, vt_size))
		return ATP_FB_E_VTABLE;
	if (object_size < 4 || !in_buffer(v, pos, object_size))
		return ATP_FB_E_FIELD;
	return ATP_FB_OK;
}

void atp_fb_verify_table_leave(atp_fb_verifier *v)
{
	v->depth--;
}

/* The position of field id of t, checked to hold size bytes inside t and aligned to align; 0 if absent. */
static int field_pos(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t size, uint32_t align,
		     uint64_t *pos)
{
	uint16_t off = atp_fb_field(t, id);
	*pos = 0;
	if (!off)
		return ATP_FB_OK;
	uint16_t object_size = atp_fb_read_u16(vtable_of(t) + 2);
	if ((uint32_t)off + size > object_size)
		return ATP_FB_E_FIELD;
	*pos = pos_of(v, t) + off;
	return *pos % align ? ATP_FB_E_ALIGN : ATP_FB_OK;
}

int atp_fb_verify_scalar(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t size)
{
	uint64_t pos;
	return field_pos(v, t, id, size, size, &pos);
}

/* The target of the uoffset at pos: in the buffer with room for a u32, aligned to 4. */
static int follow(const atp_fb_verifier *v, uint64_t pos, uint64_t *target)
{
	if (!in_buffer(v, pos, 4))
		return ATP_FB_E_OFFSET;
	*target = pos + atp_fb_read_u32(v->buf + pos);
	if (!in_buffer(v, *target, 4))
		return ATP_FB_E_OFFSET;
	return *target % 4 ? ATP_FB_E_ALIGN : ATP_FB_OK;
}

static int check_string(const atp_fb_verifier *v, uint64_t at, uint32_t max_len)
{
	uint32_t n = atp_fb_read_u32(v->buf + at);
	if (!in_buffer(v, at + 4, (uint64_t)n + 1) || v->buf[at + 4 + n] != 0)
		return ATP_FB_E_STRING;
	return n > max_len ? ATP_FB_E_STRING_LEN : ATP_FB_OK;
}

int atp_fb_verify_string(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t max_len, bool required)
{
	uint64_t pos, at;
	int rc = field_pos(v, t, id, 4, 4, &pos);
	if (rc)
		return rc;
	if (!pos)
		return required ? ATP_FB_E_REQUIRED : ATP_FB_OK;
	if ((rc = follow(v, pos, &at)))
		return rc;
	return check_string(v, at, max_len);
}

int atp_fb_verify_vector(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t elem_size,
			 uint32_t elem_align, uint32_t max_n, const uint8_t **elems, uint32_t *n)
{
	uint64_t pos, at;
	*elems = NULL;
	*n = 0;
	int rc = field_pos(v, t, id, 4, 4, &pos);
	if (rc || !pos)
		return rc;
	if ((rc = follow(v, pos, &at)))
		return rc;
	uint32_t count = atp_fb_read_u32(v->buf + at);
	if ((at + 4) % elem_align)
		return ATP_FB_E_ALIGN;
	if (count > max_n)
		return ATP_FB_E_VECTOR_LEN;
	if (!in_buffer(v, at + 4, (uint64_t)count * elem_size))
		return ATP_FB_E_VECTOR;
	*elems = v->buf + at + 4;
	*n = count;
	return ATP_FB_OK;
}

int atp_fb_verify_offset_to_table(const atp_fb_verifier *v, const uint8_t *p, const uint8_t **table)
{
	uint64_t at;
	int rc = follow(v, pos_of(v, p), &at);
	*table = rc ? NULL : v->buf + at;
	return rc;
}

int atp_fb_verify_offset_to_string(const atp_fb_verifier *v, const uint8_t *p, uint32_t max_len)
{
	uint64_t at;
	int rc = follow(v, pos_of(v, p), &at);
	return rc ? rc : check_string(v, at, max_len);
}

/* Put field name (element index when >= 0) in front of the path of the fault found below it. */
static void blame(atp_fb_verifier *v, const char *name, int64_t index)
{
	if (!v->where || !v->where_len || !name)
		return;
	char below[128], me[96];
	snprintf(below, sizeof(below), "%s", v->where);
	if (index >= 0)
		snprintf(me, sizeof(me), "%s[%lld]", name, (long long)index);
	else
		snprintf(me, sizeof(me), "%s", name);
	snprintf(v->where, v->where_len, "%s%s%s", me, below[0] ? "." : "", below);
}

int atp_fb_verify_by_rule(atp_fb_verifier *v, const uint8_t *t, const atp_fb_table_rule *rule)
{
	int rc = atp_fb_verify_table_enter(v, t);
	for (uint32_t i = 0; !rc && i < rule->n_fields; i++) {
		const atp_fb_field_rule *f = &rule->fields[i];
		const uint8_t *elems, *sub;
		uint32_t n, k = 0;
		switch (f->kind) {
		case ATP_FB_SCALAR:
			rc = atp_fb_verify_scalar(v, t, f->id, f->size);
			break;
		case ATP_FB_STRING:
			rc = atp_fb_verify_string(v, t, f->id, f->max, f->required);
			break;
		case ATP_FB_STRINGS:
			rc = atp_fb_verify_vector(v, t, f->id, 4, 4, f->max, &elems, &n);
			for (; !rc && k < n; k++)
				rc = atp_fb_verify_offset_to_string(v, elems + 4 * k, f->size);
			break;
		case ATP_FB_TABLE:
			rc = atp_fb_verify_scalar(v, t, f->id, 4);
			if (!rc && atp_fb_field(t, f->id)) {
				rc = atp_fb_verify_offset_to_table(v, t + atp_fb_field(t, f->id), &sub);
				if (!rc)
					rc = atp_fb_verify_by_rule(v, sub, f->sub);
			} else if (!rc && f->required) {
				rc = ATP_FB_E_REQUIRED;
			}
			break;
		case ATP_FB_TABLES:
			rc = atp_fb_verify_vector(v, t, f->id, 4, 4, f->max, &elems, &n);
			for (; !rc && k < n; k++) {
				rc = atp_fb_verify_offset_to_table(v, elems + 4 * k, &sub);
				if (!rc)
					rc = atp_fb_verify_by_rule(v, sub, f->sub);
			}
			break;
		case ATP_FB_STRUCTS:
			rc = atp_fb_verify_vector(v, t, f->id, f->size, f->align, f->max, &elems, &n);
			break;
		}
		if (!rc && f->required && f->kind != ATP_FB_STRING && f->kind != ATP_FB_TABLE && !atp_fb_field(t, f->id))
			rc = ATP_FB_E_REQUIRED;
		if (rc)  /* a failing element leaves the loop one past it */
			blame(v, f->name, (f->kind == ATP_FB_STRINGS || f->kind == ATP_FB_TABLES) && k ? (int64_t)k - 1 : -1);
	}
	atp_fb_verify_table_leave(v);
	return rc;
}

const uint8_t *atp_fb_verify_message(const void *buf, size_t len, size_t max_len, uint32_t max_tables,
				     const atp_fb_table_rule *rule, int *rc)
{
	return atp_fb_verify_message_at(buf, len, max_len, max_tables, rule, rc, NULL, 0);
}

const uint8_t *atp_fb_verify_message_at(const void *buf, size_t len, size_t max_len, uint32_t max_tables,
					const atp_fb_table_rule *rule, int *rc, char *where, size_t where_len)
{
	atp_fb_verifier v;
	const uint8_t *root;
	if (where && where_len)
		where[0] = 0;
	/* Schemas described by rules nest a few levels; 8 leaves room and stops abuse. */
	*rc = atp_fb_verify_begin(&v, buf, len, max_len, 8, max_tables, &root);
	v.where = where;
	v.where_len = where_len;
	if (!*rc)
		*rc = atp_fb_verify_by_rule(&v, root, rule);
	return *rc ? NULL : root;
}
