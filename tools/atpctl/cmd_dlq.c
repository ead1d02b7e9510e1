/*
 * cmd_dlq.c — atpctl dlq: the dead-letter store of a data directory
 * (atp/deadletter.h), read offline and changing nothing, so also beside a
 * running atpd.
 *
 * list prints one CSV line per entry (filters: --source, --reason, --since);
 * show prints one entry whole and its event as a row of the event CSV
 * (header included), ready to be corrected. Given a data directory they
 * read its store there, changing nothing (also beside a running atpd);
 * without one they ask the running atpd (Admin/DeadLetters, page by page).
 *
 * redrive and purge ask a running atpd (Admin/Redrive, Admin/Purge over
 * gRPC): redrive IDs applies each entry's event, or with --corrected FILE
 * the event CSV's rows in their place (one per ID, in order; their source
 * and seq are not used), once, under the internal source @dlq; purge drops
 * the entries named, or those arrived before a time.
 */
#include "atpctl.h"
#include "atp/replay.h"

#include "csv_events.h"

#include "atp/deadletter.h"
#include "atp/status.h"
#include "atp/wire_api.h"
#include "atp/wire_event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char usage[] = "usage: atpctl dlq list [DIR] [--grpc HOST:PORT] [--source NAME] [--reason CODE] [--since TIME]\n"
			    "       atpctl dlq show [DIR] [--grpc HOST:PORT] ID\n"
			    "       atpctl dlq redrive [--grpc HOST:PORT] ID... [--corrected FILE.csv]\n"
			    "       atpctl dlq purge [--grpc HOST:PORT] (ID... | --before TIME) [--redriven]\n";

/* s as a CSV field: quoted when it holds a comma, a quote or a control byte; control bytes as \xNN. */
static void field(atp_str s)
{
	bool plain = true;
	for (uint32_t i = 0; i < s.len; i++)
		plain &= s.ptr[i] != ',' && s.ptr[i] != '"' && (unsigned char)s.ptr[i] >= 0x20 && s.ptr[i] != 0x7f;
	if (plain) {
		fwrite(s.ptr, 1, s.len, stdout);
		return;
	}
	putchar('"');
	for (uint32_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.ptr[i];
		if (ch == '"')
			fputs("\"\"", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* The event of an entry (verified again: the store's bytes are trusted only as far as their CRC). */
static bool event_of(const atp_dlq_entry *d, atp_event *ev, atp_wire_event_time *t)
{
	return atp_wire_decode_event_batch(d->event, d->event_len, ev, t, 1) == 1;
}

static void list_line(const atp_dlq_entry *d)
{
	char when[40];
	atp_event ev;
	atp_wire_event_time t;
	atp_format_time_ms(d->arrival_ms, when, sizeof(when));
	printf("%" PRIu64 ",%s,", d->id, when);
	field(d->source);
	printf(",%" PRIu64 ",", d->seq);
	field(d->event_id);
	printf(",%s", atp_status_name(d->code));
	if (event_of(d, &ev, &t)) {
		const char *type = atp_event_type_name(ev.type);
		printf(",%s,", type ? type : "?");
		field(ev.sku);
		putchar(',');
		field(ev.location);
		printf(",%" PRId64 "\n", ev.qty);
	} else {
		puts(",?,,,");
	}
}

static void show(const atp_dlq_entry *d)
{
	char when[40];
	atp_event ev;
	atp_wire_event_time t;
	atp_format_time_ms(d->arrival_ms, when, sizeof(when));
	printf("dead letter %" PRIu64 ", arrived %s\nsource ", d->id, when);
	field(d->source);
	printf(", seq %" PRIu64 ", event id ", d->seq);
	field(d->event_id);
	printf("\nrefused: %s: %s\n", atp_status_name(d->code), atp_status_message(d->code));
	if (!event_of(d, &ev, &t)) {
		printf("the event's %u bytes do not verify as an EventBatch\n", d->event_len);
		return;
	}
	const char *type = atp_event_type_name(ev.type);
	printf("the event as the event CSV:\n%s\n", "event_id,source,seq,type,sku,location,qty,ref,to_location,reason,"
						"occurred_at,ttl_ms,partial,date");
	if (ev.event_key.len)
		field(ev.event_key);
	else
		printf("%" PRIu64, ev.event_id);
	putchar(',');
	field(ev.source.len ? ev.source : d->source);
	printf(",%" PRIu64 ",", ev.seq);
	if (type)
		fputs(type, stdout);
	else
		printf("%u", ev.type);
	const atp_str s[5] = { ev.sku, ev.location, { 0 }, ev.ref, ev.to_location };
	for (int i = 0; i < 5; i++) {
		putchar(',');
		if (i == 2)
			printf("%" PRId64, ev.qty);
		else
			field(s[i]);
	}
	putchar(',');
	field(ev.reason);
	char date[ATP_CSV_DATE_MAX];
	printf(",%" PRIu64 ",%" PRIu64 ",%d,%s\n", t.occurred_at, t.ttl_ms, (ev.flags & ATP_EVF_PARTIAL) ? 1 : 0,
	       atp_csv_date(ev.date, date));
}

/* A status by name: "ATP_E_QTY" or "QTY" (any case); 1 when none is (ATP_OK and ATP_DUPLICATE are not refusals). */
static int code_named(const char *name)
{
	for (int c = -1; c >= ATP_E_LAST; c--) {
		const char *full = atp_status_name(c);
		if (strcasecmp(name, full) == 0 || strcasecmp(name, full + 6) == 0)
			return c;
	}
	return 1;
}

static uint8_t mem[8u << 20] __attribute__((aligned(8)));

/* The event CSV at path as one EventBatch into out (*len), want rows; -1 after a message. */
static int corrected_batch(const char *path, uint32_t want, uint8_t *out, size_t cap, uint32_t *len)
{
	static char text[1u << 20];
	static atp_csv_reader rd;
	static atp_fb_ref refs[ATP_V1_LIST_MAX];
	char err[ATP_CSV_ERR_MAX];
	FILE *f = fopen(path, "r");
	size_t n_text = f ? fread(text, 1, sizeof(text), f) : 0;
	if (!f || ferror(f) || n_text == sizeof(text)) {
		fprintf(stderr, "atpctl dlq: %s: %s\n", path, f ? "unreadable, or over 1 MiB" : strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	if (atp_csv_open(&rd, text, n_text, err) < 0) {
		fprintf(stderr, "%s:1: %s\n", path, err);
		return -1;
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	atp_event ev;
	uint32_t n = 0;
	int rc;
	while ((rc = atp_csv_next(&rd, &ev, err)) != 0) {
		if (rc < 0) {
			fprintf(stderr, "%s:%" PRIu64 ": %s\n", path, rd.line, err);
			return -1;
		}
		if (n == want) {
			n++;
			break;
		}
		refs[n++] = atp_wire_build_event(&b, &ev, (atp_wire_event_time){ rd.occurred_at, 0 });
	}
	size_t size = 0;
	const uint8_t *p = n == want ? atp_fb_finish(&b, atp_wire_build_event_batch(&b, refs, n), NULL, &size) : NULL;
	if (!p || size > cap) {
		fprintf(stderr, "atpctl dlq: %s: %s rows for %u ids (one per id, in order)\n", path, n > want ? "more" : "fewer",
			want);
		return -1;
	}
	memcpy(out, p, size);
	*len = (uint32_t)size;
	return 0;
}

/* IDs from argv[i..]: their count (at most max), or -1 after a message. */
static int ids_of(int argc, char **argv, int *i, uint64_t *ids, uint32_t max)
{
	int n = 0;
	for (; *i < argc && argv[*i][0] != '-'; (*i)++) {
		if ((uint32_t)n == max) {
			fprintf(stderr, "atpctl dlq: more than %u ids\n", max);
			return -1;
		}
		ids[n++] = opt_u64("ID", argv[*i], 1, UINT64_MAX);
	}
	return n;
}

static int redrive(const char *target, int argc, char **argv)
{
	static uint64_t ids[ATP_V1_LIST_MAX];
	static uint8_t fix[4u << 20] __attribute__((aligned(8)));
	const char *corrected = NULL;
	uint32_t n = 0, fix_len = 0;
	for (int i = 2; i < argc;) {
		if (strcmp(argv[i], "--corrected") == 0 && i + 1 < argc) {
			corrected = argv[i + 1];
			i += 2;
			continue;
		}
		int k = argv[i][0] == '-' ? -1 : ids_of(argc, argv, &i, ids + n, ATP_V1_LIST_MAX - n);
		if (k < 0) {
			fputs(usage, stderr);
			return 2;
		}
		n += (uint32_t)k;
	}
	if (!n) {
		fputs(usage, stderr);
		return 2;
	}
	if (corrected && corrected_batch(corrected, n, fix, sizeof(fix), &fix_len) < 0)
		return 1;
	atp_fb_builder b;
	size_t len;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_redrive_request(&b, ids, n, corrected ? fix : NULL, fix_len), NULL,
					 &len);
	const uint8_t *r;
	uint8_t *reply = q ? grpc_unary(target, "/atp.v1.Admin/Redrive", q, len, &atp_v1_redrive_reply_rule, &r) : NULL;
	if (!reply)
		return 1;
	uint32_t m, done = 0;
	const atp_v1_redrive_result *res = atp_v1_redrive_reply_results(r, &m);
	puts("id,result");
	for (uint32_t i = 0; i < m; i++) {
		const char *what = res[i].code == 0 ? "redriven" : res[i].code == ATP_DUPLICATE ? "redriven before"
						   : res[i].code == ATP_E_INVAL ? "no such entry" : atp_status_name(res[i].code);
		printf("%" PRIu64 ",%s\n", res[i].id, what);
		done += res[i].code == 0 || res[i].code == ATP_DUPLICATE;
	}
	free(reply);
	fprintf(stderr, "atpctl dlq: %u of %u redriven (now or before)\n", done, m);
	return done == m ? 0 : 1;
}

static int purge(const char *target, int argc, char **argv)
{
	static uint64_t ids[ATP_V1_LIST_MAX];
	uint64_t before = 0;
	bool redriven = false;
	uint32_t n = 0;
	for (int i = 2; i < argc;) {
		if (strcmp(argv[i], "--before") == 0 && i + 1 < argc) {
			if (!atp_parse_time_ms(argv[i + 1], &before)) {
				fprintf(stderr, "atpctl dlq: --before %s: not a time (2026-12-06T14:02:00Z or ms)\n", argv[i + 1]);
				return 2;
			}
			i += 2;
		} else if (strcmp(argv[i], "--redriven") == 0) {
			redriven = true;
			i++;
		} else {
			int k = argv[i][0] == '-' ? -1 : ids_of(argc, argv, &i, ids + n, ATP_V1_LIST_MAX - n);
			if (k < 0) {
				fputs(usage, stderr);
				return 2;
			}
			n += (uint32_t)k;
		}
	}
	if (!n && !before) {
		fputs(usage, stderr);
		return 2;
	}
	atp_fb_builder b;
	size_t len;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_purge_request(&b, n ? ids : NULL, n, before, redriven), NULL, &len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Admin/Purge", q, len, &atp_v1_purge_reply_rule, &r);
	if (!reply)
		return 1;
	printf("purged %u dead letters, %u kept\n", atp_v1_purge_reply_purged(r), atp_v1_purge_reply_kept(r));
	free(reply);
	return 0;
}

typedef struct selection {
	bool listing;
	const char *source;
	int reason;              /* 1: any */
	uint64_t since, id;      /* id: show's */
	uint32_t shown, total;
} selection;

static void take(selection *sel, const atp_dlq_entry *d)
{
	if (!sel->listing) {
		if (d->id == sel->id) {
			show(d);
			sel->shown++;
		}
		return;
	}
	if ((sel->source && (strlen(sel->source) != d->source.len || memcmp(sel->source, d->source.ptr, d->source.len))) ||
	    (sel->reason != 1 && d->code != sel->reason) || d->arrival_ms < sel->since)
		return;
	list_line(d);
	sel->shown++;
}

/* The store of a data directory, read here. */
static int from_dir(const char *dir, selection *sel)
{
	char path[PATH_MAX], err[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/deadletters", dir);
	atp_dlq *q = atp_dlq_open(path, 0, true, err, sizeof(err));
	if (!q) {
		fprintf(stderr, "atpctl dlq: %s (no dead letters were ever stored here?)\n", err);
		return -1;
	}
	for (uint32_t i = 0; i < atp_dlq_count(q); i++)
		take(sel, atp_dlq_at(q, i));
	sel->total = atp_dlq_count(q);
	atp_dlq_close(q);
	return 0;
}

/* A running atpd's store, a page at a time (Admin/DeadLetters). */
static int from_atpd(const char *target, selection *sel)
{
	atp_v1_dead_letters_query want = { .after_id = sel->listing ? 0 : sel->id - 1, .limit = sel->listing ? 0 : 1,
					   .since_ms = sel->since, .code = sel->reason == 1 ? 0 : sel->reason,
					   .source = sel->source ? atp_str_of(sel->source, strlen(sel->source)) : (atp_str){ 0 } };
	for (bool more = true; more;) {
		atp_fb_builder b;
		size_t len;
		const uint8_t *r;
		atp_fb_builder_init(&b, mem, sizeof(mem));
		const uint8_t *q = atp_fb_finish(&b, atp_v1_build_dead_letters_request(&b, &want), NULL, &len);
		uint8_t *reply = grpc_unary(target, "/atp.v1.Admin/DeadLetters", q, len, &atp_v1_dead_letters_reply_rule, &r);
		if (!reply)
			return -1;
		uint32_t n = atp_v1_dead_letters_reply_entries_count(r);
		for (uint32_t i = 0; i < n; i++) {
			atp_v1_dead_letter d = atp_v1_dead_letter_of(atp_v1_dead_letters_reply_entries(r, i));
			atp_dlq_entry e = { .id = d.id, .arrival_ms = d.arrival_ms, .seq = d.seq, .code = d.code, .source = d.source,
					    .event_id = d.event_id, .event = d.event, .event_len = d.event_len,
					    .redrive_seq = d.redrive_seq };
			take(sel, &e);
			want.after_id = d.id;
		}
		sel->total += n;
		more = sel->listing && n && atp_v1_dead_letters_reply_more(r);
		free(reply);
	}
	return 0;
}

int cmd_dlq(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	if (argc >= 2 && strcmp(argv[1], "redrive") == 0)
		return redrive(target, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "purge") == 0)
		return purge(target, argc, argv);
	if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "show") != 0)) {
		fputs(usage, stderr);
		return 2;
	}
	selection sel = { .listing = strcmp(argv[1], "list") == 0, .reason = 1 };
	const char *pos[2] = { 0 };
	int n_pos = 0;
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (sel.listing && strcmp(o, "--source") == 0 && v) {
			sel.source = argv[++i];
		} else if (sel.listing && strcmp(o, "--reason") == 0 && v) {
			if ((sel.reason = code_named(argv[++i])) == 1) {
				fprintf(stderr, "atpctl dlq: --reason %s: not a status (ATP_E_QTY, QTY, ...)\n", v);
				return 2;
			}
		} else if (sel.listing && strcmp(o, "--since") == 0 && v) {
			if (!atp_parse_time_ms(argv[++i], &sel.since)) {
				fprintf(stderr, "atpctl dlq: --since %s: not a time (2026-12-06T14:02:00Z or ms)\n", v);
				return 2;
			}
		} else if (o[0] != '-' && n_pos < 2) {
			pos[n_pos++] = o;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	/* list [DIR], show [DIR] ID: without DIR, the running atpd's store. */
	const char *dir = n_pos == (sel.listing ? 1 : 2) ? pos[0] : NULL;
	if (n_pos > (sel.listing ? 1 : 2) || (!sel.listing && n_pos == 0)) {
		fputs(usage, stderr);
		return 2;
	}
	if (!sel.listing)
		sel.id = opt_u64("ID", pos[n_pos - 1], 1, UINT64_MAX);
	if (sel.listing)
		puts("id,arrived,source,seq,event_id,reason,type,sku,location,qty");
	if ((dir ? from_dir(dir, &sel) : from_atpd(target, &sel)) < 0)
		return 1;
	if (sel.listing)
		fprintf(stderr, "atpctl dlq: %u entries%s\n", sel.shown, dir ? "" : " (from atpd)");
	else if (!sel.shown)
		fprintf(stderr, "atpctl dlq: no entry %" PRIu64 "\n", sel.id);
	return sel.listing || sel.shown ? 0 : 1;
}
