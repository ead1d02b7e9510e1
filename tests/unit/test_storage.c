/*
 * Storage: CRC-32C vectors, the record codec, the WAL under every damage
 * its header documents (torn tail, bad CRC in the middle, a missing
 * segment, a bad segment header) and the dead-letter store; snapshots are
 * test_snapshot.c's.
 */
#define _GNU_SOURCE
#include "atp/crc32c.h"
#include "atp/deadletter.h"
#include "atp/record.h"
#include "atp/snapshot.h"
#include "atp/wal.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/atp-storage-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(crc, .description = "CRC-32C");

Test(crc, known_vectors)
{
	cr_assert_eq(atp_crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(atp_crc32c(0, "", 0), 0);
	uint8_t zeros[32] = { 0 };
	cr_assert_eq(atp_crc32c(0, zeros, 32), 0x8a9136aau);
	/* Incremental equals one pass. */
	cr_assert_eq(atp_crc32c(atp_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	/* Eight bytes of a word: as the same bytes in memory. */
	uint64_t v = 0x0123456789abcdefull;
	cr_assert_eq(atp_crc32c_u64(atp_crc32c(0, "1", 1), v), atp_crc32c(atp_crc32c(0, "1", 1), &v, 8));
}

TestSuite(record, .description = "the record codec");

Test(record, event_round_trip)
{
	atp_event ev = ev_ref(ATP_EV_RESERVE, 42, "SKU-1", "DC1", 7, "R-9");
	ev.expires_at = 12345;
	ev.flags = ATP_EVF_PARTIAL;
	uint8_t buf[ATP_RECORD_MAX];
	size_t n = atp_record_encode_event(&ev, 777, buf);
	cr_assert_gt(n, 0);
	atp_record rec;
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.kind, ATP_REC_EVENT);
	cr_assert_eq(rec.now, 777);
	cr_assert_eq(rec.ev.seq, 42);
	cr_assert_eq(rec.ev.qty, 7);
	cr_assert_eq(rec.ev.expires_at, 12345);
	cr_assert_eq(rec.ev.flags, ATP_EVF_PARTIAL);
	cr_assert_eq(rec.ev.type, ATP_EV_RESERVE);
	cr_assert_eq(rec.ev.sku.len, 5);
	cr_assert_arr_eq(rec.ev.sku.ptr, "SKU-1", 5);
	cr_assert_arr_eq(rec.ev.ref.ptr, "R-9", 3);
	cr_assert_eq(rec.ev.to_location.len, 0);
	/* Every truncation and one extra byte are refused. */
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(atp_record_decode(buf, k, &rec), -1, "length %zu", k);
	cr_assert_eq(atp_record_decode(buf, n + 1, &rec), -1);
	buf[0] = 9;
	cr_assert_eq(atp_record_decode(buf, n, &rec), -1);
}

Test(record, an_event_key_round_trips_and_numeric_ids_keep_the_old_layout)
{
	uint8_t buf[ATP_RECORD_MAX];
	atp_record rec;
	atp_event ev = ev_of(ATP_EV_RECEIPT, 3, "SKU-1", "DC1", 5);
	/* A numeric id: the layout of every WAL written before keys (kind 1, 9 + 40 fixed bytes, the strings). */
	size_t n = atp_record_encode_event(&ev, 1, buf);
	cr_assert_eq(buf[0], ATP_REC_EVENT);
	cr_assert_eq(n, 49 + ev.source.len + 5 + 3);
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.ev.event_key.len, 0);
	cr_assert_eq(rec.ev.event_id, ev.event_id);

	ev.event_id = 0;
	ev.event_key = atp_str_of("E000118075", 10);
	size_t k = atp_record_encode_event(&ev, 1, buf);
	cr_assert_eq(k, n + 1 + 10);
	cr_assert_eq(atp_record_decode(buf, k, &rec), 0);
	cr_assert_eq(rec.kind, ATP_REC_EVENT);
	cr_assert_eq(rec.ev.event_id, 0);
	cr_assert_eq(rec.ev.event_key.len, 10);
	cr_assert_arr_eq(rec.ev.event_key.ptr, "E000118075", 10);
	cr_assert_arr_eq(rec.ev.sku.ptr, "SKU-1", 5);
	cr_assert_eq(rec.ev.seq, 3);
	cr_assert_eq(rec.ev.qty, 5);
	for (size_t i = 0; i < k; i++)
		cr_assert_eq(atp_record_decode(buf, i, &rec), -1, "length %zu", i);
	buf[9] = 0; /* a keyed record whose key is empty is not one atpd writes */
	cr_assert_eq(atp_record_decode(buf, k - 10, &rec), -1);

	char long_key[ATP_EVENT_KEY_MAX + 1];
	memset(long_key, 'k', sizeof(long_key));
	ev.event_key = atp_str_of(long_key, sizeof(long_key));
	cr_assert_eq(atp_record_encode_event(&ev, 0, buf), 0);
	ev.event_key.len = ATP_EVENT_KEY_MAX;
	cr_assert_gt(atp_record_encode_event(&ev, 0, buf), 0);
}

Test(record, tick_and_limits)
{
	uint8_t buf[ATP_RECORD_MAX];
	atp_record rec;
	size_t n = atp_record_encode_tick(99, buf);
	cr_assert_eq(atp_record_decode(buf, n, &rec), 0);
	cr_assert_eq(rec.kind, ATP_REC_TICK);
	cr_assert_eq(rec.now, 99);
	char long_sku[ATP_SKU_MAX + 2];
	memset(long_sku, 'x', sizeof(long_sku) - 1);
	long_sku[sizeof(long_sku) - 1] = 0;
	atp_event ev = ev_of(ATP_EV_RECEIPT, 1, long_sku, "DC1", 1);
	cr_assert_eq(atp_record_encode_event(&ev, 0, buf), 0);
}

/* ---- WAL ---- */

static atp_wal_config small_wal(void)
{
	/* The smallest segments, 8 KiB writes. */
	return (atp_wal_config){ .segment_bytes = 64u << 10, .buffer_bytes = 8192 };
}

typedef struct seen {
	uint64_t first, last, n, segment_ends;
	bool contiguous;
} seen;

static int count_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	seen *s = ctx;
	uint64_t v;
	if (!p) {
		s->segment_ends++;
		return 0;
	}
	cr_assert_eq(len, 8 + lsn % 50);
	memcpy(&v, p, 8);
	cr_assert_eq(v, lsn * 1000003);
	if (s->n == 0)
		s->first = lsn;
	else if (lsn != s->last + 1)
		s->contiguous = false;
	s->last = lsn;
	s->n++;
	return 0;
}

/* Append records 1..n (payload: lsn * 1000003 padded to 8 + lsn % 50 bytes), syncing every `every`. */
static void fill(atp_wal *w, uint64_t n, uint64_t every)
{
	uint8_t p[64] = { 0 };
	for (uint64_t i = 0; i < n; i++) {
		uint64_t lsn = atp_wal_last_lsn(w) + 1, v = lsn * 1000003;
		memcpy(p, &v, 8);
		int rc;
		while ((rc = atp_wal_append(w, p, 8 + lsn % 50)) == ATP_WAL_FLUSH_FIRST)
			cr_assert_eq(atp_wal_sync(w), 0);
		cr_assert_eq(rc, 0);
		if ((i + 1) % every == 0)
			cr_assert_eq(atp_wal_sync(w), 0);
	}
	cr_assert_eq(atp_wal_sync(w), 0);
}

static atp_wal *reopen(uint64_t after, seen *s, char *err)
{
	atp_wal_config cfg = small_wal();
	*s = (seen){ .contiguous = true };
	return atp_wal_open(dir, &cfg, after, count_record, s, err, 512);
}

/* The path of the i-th segment (ascending). */
static void segment(int i, char *out, size_t n)
{
	struct dirent **names;
	int k = scandir(dir, &names, NULL, alphasort), seg = 0;
	out[0] = 0;
	for (int j = 0; j < k; j++) {
		if (strstr(names[j]->d_name, ".wal") && seg++ == i)
			snprintf(out, n, "%s/%s", dir, names[j]->d_name);
		free(names[j]);
	}
	free(names);
	cr_assert_neq(out[0], 0, "segment %d exists", i);
}

static void poke(const char *path, off_t off, uint8_t xor)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= xor;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

TestSuite(wal, .init = make_dir, .fini = remove_dir, .description = "write-ahead log");

Test(wal, appends_survive_reopen_across_segments)
{
	char err[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	fill(w, 5000, 97);
	cr_assert_gt(atp_wal_segments(w), 2, "the test spans several segments");
	atp_wal_close(w);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(s.n, 5000);
	cr_assert(s.contiguous);
	cr_assert_eq(atp_wal_last_lsn(w), 5000);
	cr_assert_eq(s.segment_ends, atp_wal_segments(w), "every segment's end is told before it is unmapped");
	/* Replay from a snapshot's LSN hands over only the later records. */
	atp_wal_close(w);
	w = reopen(4000, &s, err);
	cr_assert_eq(s.n, 1000);
	cr_assert_eq(s.first, 4001);
	/* Appending continues the LSNs. */
	fill(w, 10, 10);
	cr_assert_eq(atp_wal_last_lsn(w), 5010);
	atp_wal_close(w);
}

Test(wal, torn_tail_is_cut_and_appending_continues)
{
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 300, 300);
	int segs = (int)atp_wal_segments(w);
	atp_wal_close(w);
	segment(segs - 1, path, sizeof(path));
	/* Damage the last record's payload: the record is torn. */
	struct stat st;
	stat(path, &st);
	w = reopen(0, &s, err);
	uint64_t last = s.last;
	atp_wal_close(w);
	/* Find the last record by reopening after damaging bytes near the end of data. */
	int fd = open(path, O_RDONLY);
	uint8_t *m = malloc((size_t)st.st_size);
	cr_assert_eq(pread(fd, m, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	off_t end = st.st_size;
	while (end > 0 && m[end - 1] == 0)
		end--;
	free(m);
	poke(path, end - 1, 0xff);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "a torn tail does not refuse the start: %s", err);
	cr_assert_eq(s.last, last - 1, "the torn record is cut");
	fill(w, 5, 5);
	cr_assert_eq(atp_wal_last_lsn(w), last + 4);
	atp_wal_close(w);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(s.last, last + 4);
	cr_assert(s.contiguous);
	atp_wal_close(w);
}

Test(wal, bad_crc_in_the_middle_refuses_the_start)
{
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 3000, 50);
	uint32_t segs = atp_wal_segments(w);
	atp_wal_close(w);
	/* A record in an older segment. */
	segment(0, path, sizeof(path));
	poke(path, 64 + 20, 0x01);
	w = reopen(0, &s, err);
	cr_assert_null(w);
	cr_assert(strstr(err, path) && strstr(err, "offset 64"), "the message names file and offset: %s", err);
	poke(path, 64 + 20, 0x01);
	/* A record early in the last segment, with far more than one write after it. */
	segment((int)segs - 1, path, sizeof(path));
	poke(path, 64 + 20, 0x01);
	w = reopen(0, &s, err);
	cr_assert_null(w, "valid records after a bad one are not a torn tail");
	cr_assert(strstr(err, "valid records after it"), "%s", err);
}

Test(wal, records_a_snapshot_covers_are_walked_not_checked)
{
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 200, 50);
	atp_wal_close(w);
	/* A payload byte of record 1, which a snapshot of lsn 100 covers: never applied, so no refusal. */
	segment(0, path, sizeof(path));
	poke(path, 64 + 20, 0x01);
	w = reopen(100, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert(s.n == 100 && s.first == 101 && s.last == 200 && s.contiguous, "replayed %lu from %lu to %lu",
		  (unsigned long)s.n, (unsigned long)s.first, (unsigned long)s.last);
	atp_wal_close(w);
	/* Without the snapshot the same record is damage again. */
	w = reopen(0, &s, err);
	cr_assert_null(w);
	cr_assert(strstr(err, "offset 64"), "%s", err);
}

/*
 * Rewrite the segment at path in an older format, without write-start
 * flags: 1 (magic ATPWAL1, each record's CRC over (LSN, payload)) or 2
 * (ATPWAL2, CRC over (payload, LSN)).
 */
static void to_format(const char *path, int format)
{
	int fd = open(path, O_RDWR);
	struct stat st;
	cr_assert(fd >= 0 && fstat(fd, &st) == 0);
	uint8_t *m = malloc((size_t)st.st_size);
	cr_assert_eq(pread(fd, m, (size_t)st.st_size, 0), st.st_size);
	memcpy(m, format == 1 ? "ATPWAL1" : "ATPWAL2", 8);
	uint32_t crc = atp_crc32c(0, m, 24);  /* magic, first LSN, size */
	memcpy(m + 24, &crc, 4);
	for (size_t off = 64;;) {
		uint32_t len;
		uint64_t lsn;
		memcpy(&len, m + off, 4);
		if (len == 0)
			break;
		memcpy(&lsn, m + off + 8, 8);
		lsn &= ~(1ull << 63);
		memcpy(m + off + 8, &lsn, 8);
		crc = format == 1 ? atp_crc32c(0, m + off + 8, 8 + len) : atp_crc32c_u64(atp_crc32c(0, m + off + 16, len), lsn);
		memcpy(m + off + 4, &crc, 4);
		off += (16 + len + 7) & ~(size_t)7;
	}
	cr_assert_eq(pwrite(fd, m, (size_t)st.st_size, 0), st.st_size);
	free(m);
	close(fd);
}

Test(wal, segments_of_older_formats_are_read_and_appends_go_to_a_new_one)
{
	for (int format = 1; format <= 2; format++) {
		char err[512], path[512];
		seen s;
		remove_dir();
		make_dir();
		atp_wal *w = reopen(0, &s, err);
		fill(w, 100, 10);
		cr_assert_eq(atp_wal_segments(w), 1);
		atp_wal_close(w);
		segment(0, path, sizeof(path));
		to_format(path, format);
		w = reopen(0, &s, err);
		cr_assert_not_null(w, "format %d: %s", format, err);
		cr_assert(s.n == 100 && s.contiguous);
		fill(w, 10, 10);
		cr_assert_eq(atp_wal_segments(w), 2, "an older format is never appended to");
		atp_wal_close(w);
		w = reopen(0, &s, err);
		cr_assert_not_null(w, "%s", err);
		cr_assert(s.n == 110 && s.last == 110 && s.contiguous);
		atp_wal_close(w);
		/* Its records' CRCs are checked its format's way: damage is still found. */
		poke(path, 64 + 20, 0x01);
		cr_assert_null(reopen(0, &s, err));
	}
}

/* The offset of the record with this lsn in the segment at path (-1: none). */
static off_t record_at(const char *path, uint64_t want)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	cr_assert(fd >= 0 && fstat(fd, &st) == 0);
	uint8_t *m = malloc((size_t)st.st_size);
	cr_assert_eq(pread(fd, m, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	off_t found = -1;
	for (size_t off = 64; off + 16 <= (size_t)st.st_size;) {
		uint32_t len;
		uint64_t lsn;
		memcpy(&len, m + off, 4);
		memcpy(&lsn, m + off + 8, 8);
		if (len == 0)
			break;
		if ((lsn & ~(1ull << 63)) == want)
			found = (off_t)off;
		off += (16 + len + 7) & ~(size_t)7;
	}
	free(m);
	return found;
}

Test(wal, damage_in_an_earlier_write_near_the_end_is_refused_not_cut)
{
	/* Writes of 10 records each, all far smaller than a buffer: the last writes are all within one buffer of the end. */
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 100, 10);
	cr_assert_eq(atp_wal_segments(w), 1);
	atp_wal_close(w);
	segment(0, path, sizeof(path));
	/* Record 85 is in the write of 81..90, which the write of 91..100 followed: it was durable, so this is rot. */
	off_t off = record_at(path, 85);
	cr_assert_geq(off, 64);
	poke(path, off + 20, 0x04);
	w = reopen(0, &s, err);
	cr_assert_null(w, "damage before a later write is not a torn tail");
	cr_assert(strstr(err, path) && strstr(err, "the start of a later write"), "%s", err);
	poke(path, off + 20, 0x04);
	/* Record 93, in the last write (91..100) with valid records after it: a torn last write, cut from 93 on. */
	off = record_at(path, 93);
	poke(path, off + 20, 0x04);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "a torn last write is cut: %s", err);
	cr_assert(s.last == 92 && s.contiguous, "recovered up to %lu", (unsigned long)s.last);
	fill(w, 3, 3);
	atp_wal_close(w);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert(s.last == 95 && s.n == 95 && s.contiguous);
	atp_wal_close(w);
	/* The first record of the last write damaged: the whole write is cut, nothing before it. */
	remove_dir();
	make_dir();
	w = reopen(0, &s, err);
	fill(w, 100, 10);
	atp_wal_close(w);
	segment(0, path, sizeof(path));
	poke(path, record_at(path, 91) + 20, 0x04);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(s.last, 90);
	atp_wal_close(w);
}

/* Checks what a scan hands over against what fill() appended: contiguous from 1, every byte as written. */
static int check_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t len)
{
	seen *s = ctx;
	uint64_t v;
	if (!p)
		return 0;
	memcpy(&v, p, 8);
	if (len != 8 + lsn % 50 || v != lsn * 1000003 || lsn != s->last + 1)
		s->contiguous = false;
	for (size_t i = 8; i < len; i++)
		s->contiguous = s->contiguous && p[i] == 0;
	s->last = lsn;
	s->n++;
	return 0;
}

Test(wal, every_bit_flip_is_detected_and_nothing_wrong_is_handed_over)
{
	/* 200 records in 20 writes of 10, in one segment. */
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 200, 10);
	atp_wal_close(w);
	segment(0, path, sizeof(path));
	off_t last_write = record_at(path, 191), end = record_at(path, 200) + 16 + ((8 + 200 % 50 + 7) & ~7);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	int fd = open(path, O_RDWR);
	uint32_t flips = 0, refused = 0, cut = 0;
	/* Every bit of the header and the records and of the next 64 bytes; one bit of every 29th byte after. */
	for (off_t b = 0; b < st.st_size; b += b < end + 64 ? 1 : 29) {
		for (int bit = 0; bit < (b < end + 64 ? 8 : 1); bit++) {
			uint8_t orig, x;
			cr_assert_eq(pread(fd, &orig, 1, b), 1);
			x = orig ^ (uint8_t)(1u << ((bit + b) % 8));
			cr_assert_eq(pwrite(fd, &x, 1, b), 1);
			atp_wal_scan_info info;
			s = (seen){ .contiguous = true };
			int rc = atp_wal_scan(dir, 0, check_record, &s, &info, err, sizeof(err));
			cr_assert_eq(pwrite(fd, &orig, 1, b), 1);
			flips++;
			cr_assert(s.contiguous, "flip of byte %ld bit %d: a record handed over is not as written", (long)b, bit);
			if (rc < 0) {
				refused++;
				cr_assert(strstr(err, path) && strstr(err, "offset"), "flip at %ld: %s", (long)b, err);
				continue;
			}
			cut++;
			cr_assert(info.cut[0] && strstr(info.cut, path) && strstr(info.cut, "offset"),
				  "flip of byte %ld bit %d went unnoticed (%lu records)", (long)b, bit, (unsigned long)s.n);
			cr_assert(s.n == 200 || b >= last_write, "flip of byte %ld (the last write starts at %ld) cut "
				  "acknowledged records: only %lu kept", (long)b, (long)last_write, (unsigned long)s.n);
		}
	}
	close(fd);
	cr_assert_gt(refused, 1000);
	cr_assert_gt(cut, 1000);
	cr_log_info("wal: %u flips: %u refused, %u cut as a torn tail", flips, refused, cut);
	/* The file as it was: all 200 records. */
	w = reopen(0, &s, err);
	cr_assert(w && s.n == 200);
	atp_wal_close(w);
}

Test(wal, missing_segment_refuses_the_start)
{
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 5000, 100);
	atp_wal_close(w);
	segment(1, path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	w = reopen(0, &s, err);
	cr_assert_null(w);
	cr_assert(strstr(err, "missing segment"), "%s", err);
	/* The first segment gone, and no snapshot covering it: refused too. */
	segment(0, path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	w = reopen(0, &s, err);
	cr_assert_null(w);
	cr_assert(strstr(err, "missing segment"), "%s", err);
}

Test(wal, trim_deletes_covered_segments_only)
{
	char err[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 5000, 100);
	uint32_t segs = atp_wal_segments(w);
	cr_assert_eq(atp_wal_trim(w, 0), 0);
	int k = atp_wal_trim(w, 2500);
	cr_assert_gt(k, 0);
	cr_assert_lt(k, (int)segs);
	atp_wal_close(w);
	/* Replay from 2500 still works; from 0 the start is refused (records before are gone). */
	w = reopen(2500, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(s.first, 2501);
	cr_assert_eq(s.last, 5000);
	atp_wal_close(w);
	w = reopen(0, &s, err);
	cr_assert_null(w);
}

Test(wal, incomplete_last_segment_is_removed)
{
	char err[512], path[512];
	seen s;
	atp_wal *w = reopen(0, &s, err);
	fill(w, 100, 100);
	atp_wal_close(w);
	/* A crash while creating the next segment: a file without a valid header. */
	snprintf(path, sizeof(path), "%s/%020u.wal", dir, 101u);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	cr_assert_eq(ftruncate(fd, 65536), 0);
	close(fd);
	w = reopen(0, &s, err);
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(s.last, 100);
	fill(w, 1, 1);
	atp_wal_close(w);
	w = reopen(0, &s, err);
	cr_assert_eq(s.last, 101);
	atp_wal_close(w);
}

/* ---- snapshots ---- */

TestSuite(deadletter, .init = make_dir, .fini = remove_dir, .description = "the dead-letter store");

static atp_dlq *dlq_at(uint32_t max, bool read_only)
{
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/deadletters", dir);
	atp_dlq *q = atp_dlq_open(path, max, read_only, err, sizeof(err));
	cr_assert_not_null(q, "%s", err);
	return q;
}

static void dlq_put(atp_dlq *q, uint64_t seq, int code)
{
	uint64_t id;
	uint8_t event[40];
	memset(event, (int)seq, sizeof(event));
	cr_assert_eq(atp_dlq_add(q, 1000 + seq, atp_str_of("wms", 3), seq, code, atp_str_of("E1", 2), event,
				 sizeof(event), &id), 0);
}

Test(deadletter, entries_survive_a_reopen_once_synced)
{
	atp_dlq *q = dlq_at(8, false);
	dlq_put(q, 5, ATP_E_QTY);
	dlq_put(q, 9, ATP_E_SKU);
	cr_assert_eq(atp_dlq_sync(q), 0);
	dlq_put(q, 12, ATP_E_TYPE); /* never synced: a crash loses it, and its seq was never consumed */
	atp_dlq_close(q);
	q = dlq_at(8, false);
	cr_assert_eq(atp_dlq_count(q), 2);
	const atp_dlq_entry *e = atp_dlq_at(q, 1);
	cr_assert(e->id == 2 && e->seq == 9 && e->code == ATP_E_SKU && e->arrival_ms == 1009 && e->event_len == 40);
	cr_assert(e->source.len == 3 && memcmp(e->source.ptr, "wms", 3) == 0);
	cr_assert(e->event_id.len == 2 && memcmp(e->event_id.ptr, "E1", 2) == 0 && e->event[39] == 9);
	cr_assert_eq(atp_dlq_find(q, atp_str_of("wms", 3), 9), e);
	cr_assert_null(atp_dlq_find(q, atp_str_of("wms", 3), 12));
	cr_assert_null(atp_dlq_find(q, atp_str_of("erp", 3), 9));
	dlq_put(q, 13, ATP_E_REF);
	cr_assert_eq(atp_dlq_at(q, 2)->id, 3, "ids go on after a reopen");
	atp_dlq_close(q);
}

Test(deadletter, a_torn_tail_is_cut_and_read_only_changes_nothing)
{
	atp_dlq *q = dlq_at(8, false);
	dlq_put(q, 1, ATP_E_QTY);
	dlq_put(q, 2, ATP_E_QTY);
	cr_assert_eq(atp_dlq_sync(q), 0);
	atp_dlq_close(q);
	char path[128];
	snprintf(path, sizeof(path), "%s/deadletters", dir);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(truncate(path, st.st_size - 5), 0); /* the second record torn */
	q = dlq_at(8, true);
	cr_assert_eq(atp_dlq_count(q), 1);
	uint64_t id;
	cr_assert_eq(atp_dlq_add(q, 0, atp_str_of("wms", 3), 3, ATP_E_QTY, atp_str_of("", 0), NULL, 0, &id), -EROFS);
	atp_dlq_close(q);
	struct stat st2;
	cr_assert(stat(path, &st2) == 0 && st2.st_size == st.st_size - 5, "read-only: nothing cut");
	q = dlq_at(8, false);
	cr_assert_eq(atp_dlq_count(q), 1);
	dlq_put(q, 2, ATP_E_QTY);
	cr_assert_eq(atp_dlq_sync(q), 0);
	atp_dlq_close(q);
	q = dlq_at(8, false);
	cr_assert_eq(atp_dlq_count(q), 2, "the torn record was cut, the next append is whole");
	atp_dlq_close(q);
	poke(path, 20, 0x01); /* a CRC fails in the first record: the store ends before it */
	q = dlq_at(8, false);
	cr_assert_eq(atp_dlq_count(q), 0);
	atp_dlq_close(q);
}

Test(deadletter, the_bound_refuses_more_but_never_drops_what_is_held)
{
	atp_dlq *q = dlq_at(2, false);
	dlq_put(q, 1, ATP_E_QTY);
	dlq_put(q, 2, ATP_E_QTY);
	uint64_t id;
	cr_assert_eq(atp_dlq_add(q, 0, atp_str_of("wms", 3), 3, ATP_E_QTY, atp_str_of("", 0), NULL, 0, &id), -ENOSPC);
	cr_assert_eq(atp_dlq_sync(q), 0);
	atp_dlq_close(q);
	q = dlq_at(1, false); /* the bound lowered below what the file holds */
	cr_assert_eq(atp_dlq_count(q), 2);
	cr_assert_eq(atp_dlq_add(q, 0, atp_str_of("wms", 3), 3, ATP_E_QTY, atp_str_of("", 0), NULL, 0, &id), -ENOSPC);
	cr_assert_eq(atp_dlq_add(q, 0, atp_str_of("", 0), 3, ATP_E_QTY, atp_str_of("", 0), NULL, 0, &id), -ENOSPC);
	atp_dlq_close(q);
	q = dlq_at(9, false);
	cr_assert_eq(atp_dlq_add(q, 0, atp_str_of("", 0), 3, ATP_E_QTY, atp_str_of("", 0), NULL, 0, &id), -EINVAL);
	atp_dlq_close(q);
}

static bool drop_even(void *ctx, const atp_dlq_entry *e)
{
	(void)ctx;
	return e->id % 2 == 0;
}

static bool drop_all(void *ctx, const atp_dlq_entry *e)
{
	(void)ctx;
	(void)e;
	return true;
}

Test(deadletter, redrive_marks_and_purges_survive_a_reopen)
{
	atp_dlq *q = dlq_at(8, false);
	for (uint64_t s = 1; s <= 4; s++)
		dlq_put(q, s, ATP_E_QTY);
	cr_assert_eq(atp_dlq_mark_redrive(q, 2, 70, 1), 0);
	cr_assert_eq(atp_dlq_mark_redrive(q, 3, 71, 0), 0);
	cr_assert_eq(atp_dlq_mark_redrive(q, 9, 72, 0), -ENOENT);
	cr_assert_eq(atp_dlq_sync(q), 0);
	cr_assert_eq(atp_dlq_unmark(q, 3), 0); /* its shard never applied it */
	cr_assert_eq(atp_dlq_sync(q), 0);
	atp_dlq_close(q);
	q = dlq_at(8, false);
	cr_assert(atp_dlq_get(q, 2)->redrive_seq == 70 && atp_dlq_get(q, 2)->redrive_shard == 1);
	cr_assert_eq(atp_dlq_get(q, 3)->redrive_seq, 0);
	char err[256];
	dlq_put(q, 5, ATP_E_QTY);
	cr_assert_eq(atp_dlq_purge(q, NULL, NULL, err, sizeof(err)), -EBUSY, "pending entries are synced first");
	cr_assert_eq(atp_dlq_sync(q), 0);
	cr_assert_eq(atp_dlq_purge(q, drop_even, NULL, err, sizeof(err)), 2, "%s", err);
	cr_assert_eq(atp_dlq_count(q), 3);
	atp_dlq_close(q);
	q = dlq_at(8, false);
	cr_assert_eq(atp_dlq_count(q), 3);
	cr_assert(atp_dlq_get(q, 1) && !atp_dlq_get(q, 2) && atp_dlq_get(q, 3) && !atp_dlq_get(q, 4) && atp_dlq_get(q, 5));
	dlq_put(q, 6, ATP_E_QTY);
	cr_assert_eq(atp_dlq_at(q, 3)->id, 6, "ids are not reused after a purge");
	cr_assert_eq(atp_dlq_purge(q, NULL, NULL, err, sizeof(err)), -EBUSY);
	cr_assert_eq(atp_dlq_sync(q), 0);
	cr_assert_eq(atp_dlq_purge(q, drop_all, NULL, err, sizeof(err)), 4);
	dlq_put(q, 7, ATP_E_QTY);
	cr_assert_eq(atp_dlq_sync(q), 0);
	atp_dlq_close(q);
	q = dlq_at(8, false);
	cr_assert(atp_dlq_count(q) == 1 && atp_dlq_at(q, 0)->id == 7, "a purged store still knows the next id");
	atp_dlq_close(q);
}
