/*
 * atp/fb.h — a small FlatBuffers runtime: building, verifying, reading.
 *
 * Byte-compatible with the reference implementation (flatc 2.x): tables
 * with vtables, strings, vectors of scalars, structs and tables, 32-bit
 * offsets, little-endian. The builder writes back to front into memory the
 * caller provides and never allocates; running out of room is reported
 * once, by atp_fb_finish(). The verifier proves a buffer safe to read before
 * any accessor touches it: every offset, vtable, string and vector in bounds
 * and aligned, strings NUL-terminated, with limits on depth and tables.
 * Schema-specific builders, verifiers and accessors sit on top (wire_*.h).
 */
#ifndef ATP_FB_H
#define ATP_FB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "atp/fb.h reads FlatBuffers in place and assumes a little-endian host"
#endif

/* An offset into the buffer being built, counted from its end (0 = none). */
typedef uint32_t atp_fb_ref;

#define ATP_FB_FIELDS_MAX 32   /* fields per table this runtime builds */
#define ATP_FB_VTABLE_CACHE 16 /* distinct vtables remembered for dedup */

typedef struct atp_fb_builder {
	uint8_t *buf;       /* the caller's memory; data grows down from buf + cap */
	uint32_t cap;
	uint32_t size;      /* bytes written at the end of buf */
	uint32_t minalign;  /* the largest alignment any element needed */
	bool overflow;      /* a write did not fit: the result is unusable */
	bool in_table;
	uint32_t table_start;                  /* size when the table began */
	uint16_t nfields;                      /* fields of the open table, by id + 1 */
	atp_fb_ref field_at[ATP_FB_FIELDS_MAX];/* where each field was written (0 = absent) */
	uint32_t vtables[ATP_FB_VTABLE_CACHE]; /* sizes at which vtables were written */
	uint32_t n_vtables;
} atp_fb_builder;

void atp_fb_builder_init(atp_fb_builder *b, void *buf, size_t cap);

atp_fb_ref atp_fb_create_string(atp_fb_builder *b, const char *s, size_t len);
/* A string, or no string (ref 0: the field stays absent) when len is 0. */
static inline atp_fb_ref atp_fb_create_string_or_none(atp_fb_builder *b, const char *s, size_t len)
{
	return len ? atp_fb_create_string(b, s, len) : 0;
}
/* A vector of n elements of elem_size bytes each (scalars or structs), aligned to align. */
atp_fb_ref atp_fb_create_vector(atp_fb_builder *b, const void *elems, uint32_t n, uint32_t elem_size,
				uint32_t align);
/* A vector of n offsets (strings or tables). */
atp_fb_ref atp_fb_create_offset_vector(atp_fb_builder *b, const atp_fb_ref *refs, uint32_t n);

/* Tables: start, add fields (any order), end. Scalars equal to their default are left out. */
void atp_fb_start_table(atp_fb_builder *b);
void atp_fb_add_u8(atp_fb_builder *b, unsigned id, uint8_t v, uint8_t dflt);
void atp_fb_add_u32(atp_fb_builder *b, unsigned id, uint32_t v, uint32_t dflt);
void atp_fb_add_u64(atp_fb_builder *b, unsigned id, uint64_t v, uint64_t dflt);
void atp_fb_add_i64(atp_fb_builder *b, unsigned id, int64_t v, int64_t dflt);
void atp_fb_add_offset(atp_fb_builder *b, unsigned id, atp_fb_ref ref);  /* ref 0: absent */
atp_fb_ref atp_fb_end_table(atp_fb_builder *b);

/*
 * Finish with root; identifier (4 bytes) may be NULL. Returns the finished
 * buffer (inside the caller's memory) and its size, or NULL when anything
 * did not fit.
 */
const uint8_t *atp_fb_finish(atp_fb_builder *b, atp_fb_ref root, const char *identifier, size_t *size);

/* ---- reading (only after verification) ---- */

static inline uint32_t atp_fb_read_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint16_t atp_fb_read_u16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* The vtable entry of field id of table t: the field's offset in t, 0 when absent. */
static inline uint16_t atp_fb_field(const uint8_t *t, unsigned id)
{
	const uint8_t *vt = t - (int32_t)atp_fb_read_u32(t);
	uint16_t vt_size = atp_fb_read_u16(vt);
	unsigned at = 4 + 2 * id;
	return at + 2 <= vt_size ? atp_fb_read_u16(vt + at) : 0;
}

static inline const uint8_t *atp_fb_deref(const uint8_t *p)
{
	return p + atp_fb_read_u32(p);
}

/* The root table of a verified buffer. */
static inline const uint8_t *atp_fb_root(const uint8_t *buf)
{
	return atp_fb_deref(buf);
}

/* Typed reads of a verified table's fields, with the schema's default (0) when absent. */
static inline uint64_t atp_fb_get_u64(const uint8_t *t, unsigned id)
{
	uint16_t off = atp_fb_field(t, id);
	uint64_t v = 0;
	if (off)
		memcpy(&v, t + off, 8);
	return v;
}

static inline int64_t atp_fb_get_i64(const uint8_t *t, unsigned id)
{
	return (int64_t)atp_fb_get_u64(t, id);
}

static inline uint32_t atp_fb_get_u32(const uint8_t *t, unsigned id)
{
	uint16_t off = atp_fb_field(t, id);
	return off ? atp_fb_read_u32(t + off) : 0;
}

static inline uint8_t atp_fb_get_u8(const uint8_t *t, unsigned id)
{
	uint16_t off = atp_fb_field(t, id);
	return off ? t[off] : 0;
}

/* A string field: pointer to its bytes (NUL-terminated) and length; {NULL, 0} when absent. */
static inline const char *atp_fb_get_string(const uint8_t *t, unsigned id, uint32_t *len)
{
	uint16_t off = atp_fb_field(t, id);
	*len = 0;
	if (!off)
		return NULL;
	const uint8_t *s = atp_fb_deref(t + off);
	*len = atp_fb_read_u32(s);
	return (const char *)s + 4;
}

/* A vector field: its first element and length; NULL and 0 when absent. */
static inline const uint8_t *atp_fb_get_vector(const uint8_t *t, unsigned id, uint32_t *n)
{
	uint16_t off = atp_fb_field(t, id);
	*n = 0;
	if (!off)
		return NULL;
	const uint8_t *v = atp_fb_deref(t + off);
	*n = atp_fb_read_u32(v);
	return v + 4;
}

/* The i-th table of a vector of tables. */
static inline const uint8_t *atp_fb_vector_table(const uint8_t *elems, uint32_t i)
{
	return atp_fb_deref(elems + 4 * (size_t)i);
}

/* The i-th string of a vector of strings. */
static inline const char *atp_fb_vector_string(const uint8_t *elems, uint32_t i, uint32_t *len)
{
	const uint8_t *s = atp_fb_deref(elems + 4 * (size_t)i);
	*len = atp_fb_read_u32(s);
	return (const char *)s + 4;
}

/* ---- verifying ---- */

enum atp_fb_error {
	ATP_FB_OK = 0,
	ATP_FB_E_TOO_SMALL = -100,   /* shorter than a root offset and a table */
	ATP_FB_E_TOO_LARGE = -101,   /* longer than the limit for this message */
	ATP_FB_E_OFFSET = -102,      /* an offset points outside the buffer */
	ATP_FB_E_ALIGN = -103,       /* a table, vector, string or scalar is misaligned */
	ATP_FB_E_VTABLE = -104,      /* a vtable is out of bounds, too short or odd-sized */
	ATP_FB_E_FIELD = -105,       /* a field lies outside its table */
	ATP_FB_E_STRING = -106,      /* a string runs past the end or lacks its NUL */
	ATP_FB_E_VECTOR = -107,      /* a vector's elements run past the end */
	ATP_FB_E_DEPTH = -108,       /* nesting deeper than the limit */
	ATP_FB_E_TABLES = -109,      /* more tables than the limit */
	ATP_FB_E_STRING_LEN = -110,  /* a string longer than its field allows */
	ATP_FB_E_VECTOR_LEN = -111,  /* a vector longer than its field allows */
	ATP_FB_E_REQUIRED = -112,    /* a required field is absent */
	ATP_FB_E_LAST = -112,
};

typedef struct atp_fb_verifier {
	const uint8_t *buf;
	uint32_t len;
	uint32_t depth;
	uint32_t max_depth;
	uint32_t tables;
	uint32_t max_tables;
	char *where;         /* optional: on failure, the path of the field at fault ("lines[3].qty") */
	size_t where_len;
} atp_fb_verifier;

const char *atp_fb_error_message(int err);

/* Start verifying buf[0..len): size limit, alignment, root offset. *root gets the root table. */
int atp_fb_verify_begin(atp_fb_verifier *v, const void *buf, size_t len, size_t max_len, uint32_t max_depth,
			uint32_t max_tables, const uint8_t **root);
/* The table at t: its soffset, its vtable, and that every field lies inside it. Enter one level. */
int atp_fb_verify_table_enter(atp_fb_verifier *v, const uint8_t *t);
void atp_fb_verify_table_leave(atp_fb_verifier *v);
/* A scalar field of size bytes (aligned to size), if present. */
int atp_fb_verify_scalar(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t size);
/* A string field at most max_len bytes long, if present (required: must be present). */
int atp_fb_verify_string(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t max_len, bool required);
/*
 * A vector field of at most max_n elements of elem_size bytes, aligned to
 * elem_align, if present. *elems and *n describe it (NULL, 0 when absent).
 */
int atp_fb_verify_vector(const atp_fb_verifier *v, const uint8_t *t, unsigned id, uint32_t elem_size,
			 uint32_t elem_align, uint32_t max_n, const uint8_t **elems, uint32_t *n);
/* The table an offset at p points to (a table field, or an element of a vector of tables). */
int atp_fb_verify_offset_to_table(const atp_fb_verifier *v, const uint8_t *p, const uint8_t **table);
/* A string an offset at p points to (an element of a vector of strings). */
int atp_fb_verify_offset_to_string(const atp_fb_verifier *v, const uint8_t *p, uint32_t max_len);

/*
 * Verifying a table from a description of its fields, for schemas whose
 * tables are plain (scalars, strings, vectors of strings or of tables,
 * nested tables). A field the description does not name is a newer
 * writer's: it is skipped, as FlatBuffers evolution requires.
 */
enum atp_fb_kind {
	ATP_FB_SCALAR,      /* size bytes */
	ATP_FB_STRING,      /* at most max bytes */
	ATP_FB_STRINGS,     /* vector of at most max strings of at most size bytes */
	ATP_FB_TABLE,       /* a nested table: sub */
	ATP_FB_TABLES,      /* vector of at most max tables: sub */
	ATP_FB_STRUCTS,     /* vector of at most max structs of size bytes, aligned to align */
};

typedef struct atp_fb_table_rule atp_fb_table_rule;

typedef struct atp_fb_field_rule {
	uint8_t id;
	uint8_t kind;       /* enum atp_fb_kind */
	uint8_t required;
	uint8_t align;
	uint32_t size;
	uint32_t max;
	const atp_fb_table_rule *sub;
	const char *name;   /* optional: names the field in atp_fb_verifier.where */
} atp_fb_field_rule;

struct atp_fb_table_rule {
	const atp_fb_field_rule *fields;
	uint32_t n_fields;
};

/* Verify the table at t, and everything below it, by rule. */
int atp_fb_verify_by_rule(atp_fb_verifier *v, const uint8_t *t, const atp_fb_table_rule *rule);
/*
 * Verify a whole message by rule: size limit, root, every table. Returns
 * the root table, or NULL with *rc set.
 */
const uint8_t *atp_fb_verify_message(const void *buf, size_t len, size_t max_len, uint32_t max_tables,
				     const atp_fb_table_rule *rule, int *rc);
/* The same, writing the path of the field at fault into where (empty when no named field is). */
const uint8_t *atp_fb_verify_message_at(const void *buf, size_t len, size_t max_len, uint32_t max_tables,
					const atp_fb_table_rule *rule, int *rc, char *where, size_t where_len);

#ifdef __cplusplus
}
#endif

#endif
