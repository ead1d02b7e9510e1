/* The event CSV reader: columns, quoting, numbers, and one clear message per bad row. */
#include "csv_events.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static atp_csv_reader rd;
static char err[ATP_CSV_ERR_MAX];

#define HDR "event_id,source,seq,type,sku,location,qty,ref,to_location,reason\n"

static int open_text(const char *text)
{
	return atp_csv_open(&rd, text, strlen(text), err);
}

static bool str_is(atp_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

Test(csv, reads_the_required_columns)
{
	atp_event ev;
	cr_assert_eq(open_text(HDR "7,wms,1,RECEIPT,SKU-1,DC1,10,PO-9,,\n"), 0);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert_eq(ev.event_id, 7);
	cr_assert_eq(ev.seq, 1);
	cr_assert_eq(ev.type, ATP_EV_RECEIPT);
	cr_assert_eq(ev.qty, 10);
	cr_assert(str_is(ev.source, "wms") && str_is(ev.sku, "SKU-1") && str_is(ev.location, "DC1"));
	cr_assert(str_is(ev.ref, "PO-9"));
	cr_assert_eq(ev.to_location.len, 0);
	cr_assert_eq(rd.line, 2);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 0);
}

Test(csv, columns_in_any_order_and_optional_ones)
{
	atp_event ev;
	cr_assert_eq(open_text("ttl_ms,sku,location,qty,ref,to_location,reason,event_id,source,seq,type,"
			       "occurred_at,partial\n"
			       "500,S,L,3,SO-1,,,1,oms,1,reserve,1000,true\n"),
		     0, "%s", err);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert_eq(ev.type, ATP_EV_RESERVE);
	cr_assert_eq(rd.occurred_at, 1000);
	cr_assert_eq(ev.expires_at, 1500);
	cr_assert_eq(ev.flags, ATP_EVF_PARTIAL);
}

Test(csv, header_problems_are_named)
{
	cr_assert_eq(open_text("event_id,source,seq,type,sku,location,qty,ref,to_location\n"), -1);
	cr_assert(strstr(err, "missing column 'reason'"), "%s", err);
	cr_assert_eq(open_text("event_id,source,seq,type,sku,location,qty,ref,to_location,reason,color\n"), -1);
	cr_assert(strstr(err, "unknown column 'color'"), "%s", err);
	cr_assert_eq(open_text("event_id,source,seq,type,sku,sku,location,qty,ref,to_location,reason\n"), -1);
	cr_assert(strstr(err, "twice"), "%s", err);
	cr_assert_eq(open_text(""), -1);
}

Test(csv, quoted_fields_with_commas_and_quotes)
{
	atp_event ev;
	open_text(HDR "1,wms,1,ADJUST,\"SKU,1\",\"D\"\"C\",-2,,,\"lost, \"\"found\"\"\"\n");
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert(str_is(ev.sku, "SKU,1"));
	cr_assert(str_is(ev.location, "D\"C"));
	cr_assert(str_is(ev.reason, "lost, \"found\""));
	cr_assert_eq(ev.qty, -2);
}

Test(csv, crlf_and_blank_lines)
{
	atp_event ev;
	open_text(HDR "\r\n1,wms,1,RECEIPT,S,L,1,,,\r\n\n2,wms,2,RECEIPT,S,L,2,,,\r\n");
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert(str_is(ev.reason, ""));
	cr_assert_eq(rd.line, 3);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert_eq(ev.qty, 2);
	cr_assert_eq(rd.line, 5);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 0);
}

Test(csv, a_utf8_byte_order_mark_is_skipped_with_crlf_line_ends)
{
	atp_event ev;
	cr_assert_eq(open_text("\xef\xbb\xbf" HDR "\r\n1,wms,1,RECEIPT,S,L,1,,,\r\n"), 0, "%s", err);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert(str_is(ev.sku, "S") && ev.qty == 1 && ev.event_id == 1);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 0);
	cr_assert_eq(open_text("\xef\xbb" HDR "\n"), -1, "only a whole mark is skipped");
	cr_assert(strstr(err, "unknown column"), "%s", err);
}

Test(csv, a_bad_row_is_reported_and_the_next_one_read)
{
	atp_event ev;
	open_text(HDR "1,wms,1,RECEIPT,S,L,ten,,,\n"
		      "2,wms,2,TELEPORT,S,L,1,,,\n"
		      "3,wms,3,RECEIPT,S,L,-4,,,\n"
		      "4,wms,4,RECEIPT,S,L,1,,\n"
		      "5,wms,99999999999999999999,RECEIPT,S,L,1,,,\n"
		      "6,wms,6,RESERVE,S,L,1,,,\n"
		      "7,wms,7,RECEIPT,S,L,1,,,\"open\n"
		      "8,wms,8,RECEIPT,S,L,1,,,\n");
	const char *want[] = { "qty: not a valid number: 'ten'", "unknown event type 'TELEPORT'",
			       "ATP_E_QTY", "9 fields, the header has 10", "seq: not a valid number",
			       "ATP_E_REF", "unterminated quote" };
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(atp_csv_next(&rd, &ev, err), -1, "row %d", i + 2);
		cr_assert(strstr(err, want[i]), "row %d: '%s' lacks '%s'", i + 2, err, want[i]);
		cr_assert_eq(rd.line, (uint64_t)i + 2);
	}
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1);
	cr_assert_eq(ev.event_id, 8);
}

Test(csv, numbers_are_strict)
{
	atp_event ev;
	const char *rows[] = {
		HDR "1,wms,1,RECEIPT,S,L,+1,,,\n",  HDR "1,wms,1,RECEIPT,S,L, 1,,,\n",
		HDR "1,wms,1,RECEIPT,S,L,1.0,,,\n", HDR "1,wms,1,ADJUST,S,L,--1,,,R\n",
		HDR "1,wms,1,RECEIPT,S,L,9223372036854775808,,,\n",
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		open_text(rows[i]);
		cr_assert_eq(atp_csv_next(&rd, &ev, err), -1, "row %zu accepted", i);
		cr_assert(strstr(err, "not a valid number"), "%s", err);
	}
	open_text(HDR "18446744073709551615,wms,1,ADJUST,S,L,-1000000000000,,,R\n");
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s", err);
	cr_assert_eq(ev.event_id, UINT64_MAX);
	cr_assert_eq(ev.qty, -1000000000000LL);
}

Test(csv, event_ids_that_are_not_numbers_are_kept_as_keys)
{
	atp_event ev;
	static const struct {
		const char *id;
		uint64_t number;  /* 0: a key */
	} ok[] = {
		{ "42", 42 },
		{ "E000118075", 0 },
		{ "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", 0 },
		{ "00042", 0 },  /* leading zeros are the sender's: kept as written */
		{ "-1", 0 },
		{ "18446744073709551616", 0 },  /* beyond u64 */
		{ "\"a,b\"", 0 },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 0 },  /* 64 bytes */
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		char text[256];
		snprintf(text, sizeof(text), HDR "%s,wms,1,RECEIPT,S,L,1,,,\n", ok[i].id);
		open_text(text);
		cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "%s: %s", ok[i].id, err);
		cr_assert_eq(ev.event_id, ok[i].number, "%s", ok[i].id);
		const char *want = ok[i].id[0] == '"' ? "a,b" : ok[i].id;
		cr_assert(ok[i].number ? ev.event_key.len == 0 : str_is(ev.event_key, want), "%s", ok[i].id);
	}
	const char *bad[] = { "0", "", "01234567890123456789012345678901234567890123456789012345678901234" /* 65 */,
			      "\"a\tb\"" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char text[256];
		snprintf(text, sizeof(text), HDR "%s,wms,1,RECEIPT,S,L,1,,,\n", bad[i]);
		open_text(text);
		cr_assert_eq(atp_csv_next(&rd, &ev, err), -1, "'%s' accepted", bad[i]);
		cr_assert(strstr(err, "ATP_E_EVENT_ID"), "%s", err);
	}
}

Test(csv, over_long_rows_and_fields)
{
	static char text[2 * ATP_CSV_ROW_MAX];
	atp_event ev;
	int n = snprintf(text, sizeof(text), HDR "1,wms,1,RECEIPT,");
	memset(text + n, 'S', ATP_CSV_ROW_MAX);
	strcpy(text + n + ATP_CSV_ROW_MAX, ",L,1,,,\n2,wms,1,RECEIPT,S,L,1,,,\n");
	open_text(text);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), -1);
	cr_assert(strstr(err, "row longer than"), "%s", err);
	cr_assert_eq(atp_csv_next(&rd, &ev, err), 1, "the reader resynchronises at the next line");

	open_text(HDR "1,wms,1,RECEIPT,SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS,L,1,,,\n");
	cr_assert_eq(atp_csv_next(&rd, &ev, err), -1);
	cr_assert(strstr(err, "ATP_E_SKU"), "%s", err);
	open_text(HDR "1,wms,1,RECEIPT,S,L,1,,,,,,,,,,,,,,,\n");
	cr_assert_eq(atp_csv_next(&rd, &ev, err), -1);
	cr_assert(strstr(err, "more than 16 fields"), "%s", err);
}
