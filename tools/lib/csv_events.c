/* csv_events.c — reading the event CSV (see csv_events.h). */
#include "csv_events.h"

#include "atp/inbound.h"
#include "atp/status.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char atp_csv_header[] =
	"event_id,source,seq,type,sku,location,qty,ref,to_location,reason,occurred_at,ttl_ms,partial,date";

static const char *const col_names[COL_COUNT] = {
	"event_id", "source", "seq", "type", "sku", "location", "qty", "ref",
	"to_location", "reason", "occurred_at", "ttl_ms", "partial", "date",
};
#define REQUIRED_COLS (COL_REASON + 1)

typedef struct field {
	const char *ptr;
	uint32_t len;
} field;

/* The end of the line starting at off (index of '\n' or len) */
static size_t line_end(const atp_csv_reader *r, size_t off)
{
	const char *nl = memchr(r->buf + off, '\n', r->len - off);
	return nl ? (size_t)(nl - r->buf) : r->len;
}

/*
 * Split [p, end) into fields. Quoted fields are unescaped into the scratch.
 * Returns the field count, or -1 with err set.
 */
static int split(atp_csv_reader *r, const char *p, const char *end, field *f, char *err)
{
	int n = 0;
	char *scratch = r->scratch;

	if (end > p && end[-1] == '\r')
		end--;
	for (;;) {
		if (n == ATP_CSV_COLS_MAX) {
			snprintf(err, ATP_CSV_ERR_MAX, "more than %d fields", ATP_CSV_COLS_MAX);
			return -1;
		}
		if (p < end && *p == '"') {
			char *start = scratch;
			for (p++;; p++) {
				if (p == end) {
					snprintf(err, ATP_CSV_ERR_MAX, "field %d: unterminated quote", n + 1);
					return -1;
				}
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"')
						p++;
					else
						break;
				}
				*scratch++ = *p;
			}
			p++; /* the closing quote */
			if (p < end && *p != ',') {
				snprintf(err, ATP_CSV_ERR_MAX, "field %d: text after closing quote", n + 1);
				return -1;
			}
			f[n++] = (field){ start, (uint32_t)(scratch - start) };
		} else {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *stop = comma ? comma : end;
			if (memchr(p, '"', (size_t)(stop - p))) {
				snprintf(err, ATP_CSV_ERR_MAX, "field %d: quote inside an unquoted field", n + 1);
				return -1;
			}
			f[n++] = (field){ p, (uint32_t)(stop - p) };
			p = stop;
		}
		if (p == end)
			return n;
		p++; /* the comma */
	}
}

int atp_csv_open(atp_csv_reader *r, const char *buf, size_t len, char err[ATP_CSV_ERR_MAX])
{
	field f[ATP_CSV_COLS_MAX];

	memset(r, 0, offsetof(atp_csv_reader, scratch));
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		buf += 3;  /* a UTF-8 byte-order mark (Excel, many Windows exports): not part of the header */
		len -= 3;
	}
	r->buf = buf;
	r->len = len;
	r->line = 1;
	size_t end = line_end(r, 0);
	if (end > ATP_CSV_ROW_MAX) {
		snprintf(err, ATP_CSV_ERR_MAX, "header longer than %d bytes", ATP_CSV_ROW_MAX);
		return -1;
	}
	int n = split(r, buf, buf + end, f, err);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		int c = 0;
		while (c < COL_COUNT && !(strlen(col_names[c]) == f[i].len &&
					  memcmp(col_names[c], f[i].ptr, f[i].len) == 0))
			c++;
		if (c == COL_COUNT) {
			snprintf(err, ATP_CSV_ERR_MAX, "header: unknown column '%.*s'", (int)f[i].len, f[i].ptr);
			return -1;
		}
		if (r->has_col[c]) {
			snprintf(err, ATP_CSV_ERR_MAX, "header: column '%s' twice", col_names[c]);
			return -1;
		}
		r->has_col[c] = true;
		r->col_of[i] = (int8_t)c;
	}
	for (int c = 0; c < REQUIRED_COLS; c++) {
		if (!r->has_col[c]) {
			snprintf(err, ATP_CSV_ERR_MAX, "header: missing column '%s'", col_names[c]);
			return -1;
		}
	}
	r->n_cols = (uint32_t)n;
	r->off = end < len ? end + 1 : len;
	return 0;
}

static bool parse_u64(field f, uint64_t *out)
{
	uint64_t v = 0;
	if (f.len == 0 || f.len > 20)
		return false;
	for (uint32_t i = 0; i < f.len; i++) {
		unsigned d = (unsigned char)f.ptr[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool parse_i64(field f, int64_t *out)
{
	bool neg = f.len > 0 && f.ptr[0] == '-';
	uint64_t mag;
	if (neg) {
		f.ptr++;
		f.len--;
	}
	if (!parse_u64(f, &mag) || mag > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? -(int64_t)mag : (int64_t)mag;
	return true;
}

static bool word_in(field f, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == f.len && (f.len == 0 || strncasecmp(words[i], f.ptr, f.len) == 0))
			return true;
	return false;
}

static bool parse_bool(field f, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes" };
	static const char *const no[] = { "0", "false", "no", "" };
	*out = word_in(f, yes, sizeof(yes) / sizeof(*yes));
	return *out || word_in(f, no, sizeof(no) / sizeof(*no));
}

const char *atp_csv_date(uint32_t day, char out[ATP_CSV_DATE_MAX])
{
	out[0] = 0;
	if (day && day <= ATP_DAY_LAST) {
		uint32_t ymd = atp_ymd_of_day(day);
		snprintf(out, ATP_CSV_DATE_MAX, "%04u-%02u-%02u", ymd / 10000 % 10000, ymd / 100 % 100, ymd % 100);
	}
	return out;
}

/* A day from YYYY-MM-DD (or YYYYMMDD); 0 when it is not a date. */
static uint32_t parse_date(field f)
{
	uint32_t ymd = 0, digits = 0;
	for (uint32_t i = 0; i < f.len; i++) {
		char ch = f.ptr[i];
		if (ch == '-' && f.len == 10 && (i == 4 || i == 7))
			continue;
		if (ch < '0' || ch > '9')
			return 0;
		ymd = ymd * 10 + (uint32_t)(ch - '0');
		digits++;
	}
	return digits == 8 ? atp_day_of_ymd(ymd) : 0;
}

static int bad_number(char *err, enum csv_col c, field f)
{
	snprintf(err, ATP_CSV_ERR_MAX, "%s: not a valid number: '%.*s'", col_names[c],
		 (int)(f.len > 40 ? 40 : f.len), f.ptr);
	return -1;
}

/* Fill ev from the row's fields; -1 with err set on the first bad field. */
static int to_event(atp_csv_reader *r, const field *f, atp_event *ev, char *err)
{
	field col[COL_COUNT] = { { 0 } };
	uint64_t ttl = 0;
	bool partial = false;

	for (uint32_t i = 0; i < r->n_cols; i++)
		col[r->col_of[i]] = f[i];
	memset(ev, 0, sizeof(*ev));
	/*
	 * A number in canonical decimal is a numeric id; anything else
	 * (E000118075, a GUID, 007) is a key. "0" and "" are neither, and
	 * validation refuses them (ATP_E_EVENT_ID).
	 */
	field id = col[COL_EVENT_ID];
	bool numeric = id.len == 1 || (id.len > 1 && id.ptr[0] != '0');
	if (!numeric || !parse_u64(id, &ev->event_id)) {
		ev->event_id = 0;
		ev->event_key = atp_str_of(id.ptr, id.len);
	}
	if (!parse_u64(col[COL_SEQ], &ev->seq))
		return bad_number(err, COL_SEQ, col[COL_SEQ]);
	ev->type = (uint8_t)atp_event_type_parse(col[COL_TYPE].ptr, col[COL_TYPE].len);
	if (ev->type == ATP_EV_NONE) {
		snprintf(err, ATP_CSV_ERR_MAX, "type: unknown event type '%.*s'",
			 (int)(col[COL_TYPE].len > 40 ? 40 : col[COL_TYPE].len), col[COL_TYPE].ptr);
		return -1;
	}
	if (col[COL_QTY].len && !parse_i64(col[COL_QTY], &ev->qty))
		return bad_number(err, COL_QTY, col[COL_QTY]);
	r->occurred_at = 0;
	if (col[COL_OCCURRED_AT].len && !parse_u64(col[COL_OCCURRED_AT], &r->occurred_at))
		return bad_number(err, COL_OCCURRED_AT, col[COL_OCCURRED_AT]);
	if (col[COL_TTL_MS].len && !parse_u64(col[COL_TTL_MS], &ttl))
		return bad_number(err, COL_TTL_MS, col[COL_TTL_MS]);
	if (!parse_bool(col[COL_PARTIAL], &partial)) {
		snprintf(err, ATP_CSV_ERR_MAX, "partial: expected 1/0/true/false");
		return -1;
	}
	if (ttl && UINT64_MAX - ttl < r->occurred_at) {
		snprintf(err, ATP_CSV_ERR_MAX, "ttl_ms: occurred_at + ttl_ms overflows");
		return -1;
	}
	ev->date = 0;
	if (col[COL_DATE].len && !(ev->date = parse_date(col[COL_DATE]))) {
		snprintf(err, ATP_CSV_ERR_MAX, "date: expected YYYY-MM-DD: '%.*s'",
			 (int)(col[COL_DATE].len > 40 ? 40 : col[COL_DATE].len), col[COL_DATE].ptr);
		return -1;
	}
	ev->source = atp_str_of(col[COL_SOURCE].ptr, col[COL_SOURCE].len);
	ev->sku = atp_str_of(col[COL_SKU].ptr, col[COL_SKU].len);
	ev->location = atp_str_of(col[COL_LOCATION].ptr, col[COL_LOCATION].len);
	ev->ref = atp_str_of(col[COL_REF].ptr, col[COL_REF].len);
	ev->to_location = atp_str_of(col[COL_TO_LOCATION].ptr, col[COL_TO_LOCATION].len);
	ev->reason = atp_str_of(col[COL_REASON].ptr, col[COL_REASON].len);
	ev->expires_at = ttl ? r->occurred_at + ttl : 0;
	ev->flags = partial ? ATP_EVF_PARTIAL : 0;

	int rc = atp_event_validate(ev);
	if (rc) {
		snprintf(err, ATP_CSV_ERR_MAX, "%s (%s)", atp_status_message(rc), atp_status_name(rc));
		return -1;
	}
	return 0;
}

int atp_csv_next(atp_csv_reader *r, atp_event *ev, char err[ATP_CSV_ERR_MAX])
{
	field f[ATP_CSV_COLS_MAX];

	for (;;) {
		if (r->off >= r->len)
			return 0;
		size_t start = r->off, end = line_end(r, start);
		r->off = end < r->len ? end + 1 : r->len;
		r->line++;
		if (end - start > ATP_CSV_ROW_MAX) {
			snprintf(err, ATP_CSV_ERR_MAX, "row longer than %d bytes", ATP_CSV_ROW_MAX);
			return -1;
		}
		if (end == start || (end - start == 1 && r->buf[start] == '\r'))
			continue;
		int n = split(r, r->buf + start, r->buf + end, f, err);
		if (n < 0)
			return -1;
		if ((uint32_t)n != r->n_cols) {
			snprintf(err, ATP_CSV_ERR_MAX, "%d fields, the header has %u", n, r->n_cols);
			return -1;
		}
		return to_event(r, f, ev, err) == 0 ? 1 : -1;
	}
}
