/*
 * Snapshots: a round trip, every bit flipped (refused and located by its
 * block), the first format still loading, the fallback to an older one,
 * retention, and a state that does not restore.
 */
#define _GNU_SOURCE
#include "atp/crc32c.h"
#include "atp/snapshot.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/atp-snapshot-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
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

static atp_core *busy_core(void)
{
	atp_core *c = small_core(64, 64, 4);
	atp_result r;
	atp_event evs[] = {
		ev_of(ATP_EV_RECEIPT, 1, "A", "DC1", 100),
		ev_of(ATP_EV_RECEIPT, 2, "B", "DC2", 50),
		ev_of(ATP_EV_HOLD, 3, "A", "DC1", 5),
		ev_ref(ATP_EV_RESERVE, 4, "A", "DC1", 10, "R1"),
		ev_ref(ATP_EV_RESERVE, 5, "B", "DC2", 20, "R2"),
		ev_ref(ATP_EV_RELEASE, 6, "B", "DC2", 0, "R2"),
		ev_ref(ATP_EV_RESERVE, 7, "A", "DC1", 500, "R3"),
		ev_of(ATP_EV_SAFETY, 8, "B", "DC2", 3),
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		cr_assert_eq(atp_core_apply(c, &evs[i], &r), ATP_OK);
	atp_event ttl = ev_ref(ATP_EV_RESERVE, 9, "B", "DC2", 4, "R4");
	ttl.expires_at = 5000;
	cr_assert_eq(atp_core_apply(c, &ttl, &r), ATP_OK);
	size_t nd;
	atp_delta d[8];
	atp_core_expire(c, 1000, d, 8, &nd);
	return c;
}

static void assert_same_state(const atp_core *a, const atp_core *b)
{
	const atp_table *ta = atp_core_table(a), *tb = atp_core_table(b);
	cr_assert_eq(atp_table_count(ta), atp_table_count(tb));
	for (uint32_t i = 0; i < atp_table_count(ta); i++) {
		const atp_position *p = atp_table_get(ta, i);
		const atp_position *q = atp_core_find(b, atp_str_of(atp_table_sku(ta, i), p->sku_len),
						      atp_str_of(atp_table_location(ta, i), p->loc_len));
		cr_assert_not_null(q);
		cr_assert(p->on_hand == q->on_hand && p->held == q->held && p->reserved == q->reserved &&
			  p->safety_stock == q->safety_stock && p->version == q->version);
	}
	cr_assert_eq(atp_lines_count(atp_core_lines(a)), atp_lines_count(atp_core_lines(b)));
	cr_assert_eq(atp_lines_open_count(atp_core_lines(a)), atp_lines_open_count(atp_core_lines(b)));
	cr_assert_eq(atp_core_hwm(a, S("wms")), atp_core_hwm(b, S("wms")));
	cr_assert_eq(atp_core_now_ms(a), atp_core_now_ms(b));
}

TestSuite(snapshot, .init = make_dir, .fini = remove_dir, .description = "snapshots");

Test(snapshot, round_trip_then_same_future)
{
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512];
	uint64_t lsn;
	cr_assert_eq(atp_snapshot_write(dir, c, 9, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(atp_snapshot_prune(dir, UINT64_MAX), 0);
	cr_assert_eq(atp_snapshot_load(dir, d, &lsn, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lsn, 9);
	assert_same_state(c, d);
	/* Both go on identically: a retried reserve answers from the restored line, the TTL line expires. */
	atp_result r1, r2;
	atp_event retry = ev_ref(ATP_EV_RESERVE, 10, "A", "DC1", 10, "R1");
	cr_assert_eq(atp_core_apply(c, &retry, &r1), ATP_OK);
	cr_assert_eq(atp_core_apply(d, &retry, &r2), ATP_OK);
	cr_assert(r1.flags & ATP_RF_REPLAYED && r2.flags & ATP_RF_REPLAYED);
	atp_delta dl[8];
	size_t nd;
	cr_assert_eq(atp_core_expire(c, 6000, dl, 8, &nd), 1);
	cr_assert_eq(atp_core_expire(d, 6000, dl, 8, &nd), 1);
	assert_same_state(c, d);
	atp_core_destroy(c);
	atp_core_destroy(d);
}

Test(snapshot, every_bit_flip_is_detected)
{
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512], path[600];
	uint64_t lsn;
	cr_assert_eq(atp_snapshot_write(dir, c, 8, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 8u);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	int fd = open(path, O_RDWR);
	long located = 0;
	for (off_t b = 0; b < st.st_size; b++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t orig, x;
			cr_assert_eq(pread(fd, &orig, 1, b), 1);
			x = orig ^ (uint8_t)(1u << bit);
			cr_assert_eq(pwrite(fd, &x, 1, b), 1);
			int rc = atp_snapshot_load_file(path, d, &lsn, err, sizeof(err));
			cr_assert_eq(pwrite(fd, &orig, 1, b), 1);
			cr_assert_eq(rc, 1, "flip of byte %ld bit %d: load says %d", (long)b, bit, rc);
			cr_assert(strstr(err, path), "%s", err);
			/* Where: the block holding the byte, or the header, or the table and trailer from an offset before it. */
			unsigned long lo, hi, lo2, hi2;
			const char *at = strstr(err, " bytes "), *from = strstr(err, "offset ");
			if (at && sscanf(at, " bytes %lu-%lu or %lu-%lu", &lo, &hi, &lo2, &hi2) == 4)
				located += (lo <= (unsigned long)b && (unsigned long)b <= hi) ||
					   (lo2 <= (unsigned long)b && (unsigned long)b <= hi2);
			else if (from && sscanf(from, "offset %lu", &lo) == 1)
				located += lo <= (unsigned long)b;
			if (b % 97 == 0 && bit == 0)
				cr_log_info("flip of byte %ld: %s", (long)b, err + strlen(path) + 2);
		}
	}
	close(fd);
	cr_assert_eq(located, (long)st.st_size * 8, "%ld of %ld flips located", located, (long)st.st_size * 8);
	cr_log_info("snapshot: %ld flips, every one refused and located (the block, header, table or trailer holding it)",
		    (long)st.st_size * 8);
	cr_assert_eq(atp_snapshot_load_file(path, d, &lsn, err, sizeof(err)), 0, "%s", err);
	assert_same_state(c, d);
	atp_core_destroy(c);
	atp_core_destroy(d);
}

Test(snapshot, damage_in_a_larger_snapshot_is_located_to_its_block)
{
	/* 400 positions: several 4 KiB blocks. One bit of every byte flipped (bit = byte % 8). */
	atp_core *c = small_core(512, 64, 4), *d = small_core(512, 64, 4);
	atp_result r;
	char err[512], path[600], sku[16];
	for (uint64_t i = 1; i <= 400; i++) {
		snprintf(sku, sizeof(sku), "SKU-%05u", (unsigned)i);
		atp_event ev = ev_of(ATP_EV_RECEIPT, i, sku, "DC1", (int64_t)i);
		cr_assert_eq(atp_core_apply(c, &ev, &r), ATP_OK);
	}
	cr_assert_eq(atp_snapshot_write(dir, c, 12, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 12u);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_gt(st.st_size, 3 * 4096);
	int fd = open(path, O_RDWR);
	uint64_t lsn;
	long located = 0, blocks = 0;
	for (off_t b = 0; b < st.st_size; b++) {
		uint8_t orig, x;
		cr_assert_eq(pread(fd, &orig, 1, b), 1);
		x = orig ^ (uint8_t)(1u << (b % 8));
		cr_assert_eq(pwrite(fd, &x, 1, b), 1);
		int rc = atp_snapshot_load_file(path, d, &lsn, err, sizeof(err));
		cr_assert_eq(pwrite(fd, &orig, 1, b), 1);
		cr_assert_eq(rc, 1, "flip of byte %ld: load says %d", (long)b, rc);
		unsigned long lo, hi, lo2, hi2;
		const char *at = strstr(err, " bytes "), *from = strstr(err, "offset ");
		if (at && sscanf(at, " bytes %lu-%lu or %lu-%lu", &lo, &hi, &lo2, &hi2) == 4) {
			cr_assert(hi - lo < 4096, "%s", err);
			located += (lo <= (unsigned long)b && (unsigned long)b <= hi) ||
				   (lo2 <= (unsigned long)b && (unsigned long)b <= hi2);
			blocks++;
		} else if (from && sscanf(from, "offset %lu", &lo) == 1) {
			located += lo <= (unsigned long)b;
		}
	}
	close(fd);
	cr_assert_eq(located, (long)st.st_size, "%ld of %ld flips located", located, (long)st.st_size);
	cr_log_info("snapshot of %ld bytes: every flip refused and located, %ld of them to a 4 KiB block", (long)st.st_size,
		    blocks);
	cr_assert_eq(atp_snapshot_load_file(path, d, &lsn, err, sizeof(err)), 0, "%s", err);
	atp_core_destroy(c);
	atp_core_destroy(d);
}

Test(snapshot, a_snapshot_of_the_first_format_still_loads)
{
	/* The first format: the state and one CRC over it, no table of blocks. Made from a new one. */
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512], path[600];
	cr_assert_eq(atp_snapshot_write(dir, c, 8, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 8u);
	uint8_t buf[4096];
	int fd = open(path, O_RDWR);
	ssize_t size = read(fd, buf, sizeof(buf));
	cr_assert_gt(size, 60);
	uint32_t blocks;
	memcpy(&blocks, buf + size - 8, 4);
	size_t state = (size_t)size - 12 - blocks * 4;
	memcpy(buf, "ATPSNAP1", 8);
	uint32_t crc = atp_crc32c(0, buf, state);
	memcpy(buf + state, &crc, 4);
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(pwrite(fd, buf, state + 4, 0), (ssize_t)(state + 4));
	close(fd);
	uint64_t lsn;
	cr_assert_eq(atp_snapshot_load_file(path, d, &lsn, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lsn, 8);
	assert_same_state(c, d);
	atp_core_destroy(c);
	atp_core_destroy(d);
}

Test(snapshot, bad_checksum_falls_back_to_the_older_one)
{
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512], path[600];
	uint64_t lsn;
	cr_assert_eq(atp_snapshot_write(dir, c, 5, err, sizeof(err)), 0);
	cr_assert_eq(atp_snapshot_write(dir, c, 9, err, sizeof(err)), 0);
	cr_assert_eq(atp_snapshot_prune(dir, UINT64_MAX), 5, "the older snapshot is kept, and WAL up to it may go");
	cr_assert_eq(atp_snapshot_write(dir, c, 12, err, sizeof(err)), 0);
	cr_assert_eq(atp_snapshot_prune(dir, UINT64_MAX), 9);
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 5u);
	cr_assert_neq(access(path, F_OK), 0, "only two snapshots are kept");
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 12u);
	poke(path, 100, 0x40);
	cr_assert_eq(atp_snapshot_load(dir, d, &lsn, err, sizeof(err)), 0);
	cr_assert_eq(lsn, 9, "the newest fails its checksum: the older one is used");
	assert_same_state(c, d);
	/* Both bad: no snapshot at all (the WAL then decides whether the start is possible). */
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 9u);
	poke(path, 100, 0x40);
	atp_core *e = small_core(64, 64, 4);
	cr_assert_eq(atp_snapshot_load(dir, e, &lsn, err, sizeof(err)), 0);
	cr_assert_eq(lsn, 0);
	cr_assert_eq(atp_table_count(atp_core_table(e)), 0);
	atp_core_destroy(c);
	atp_core_destroy(d);
	atp_core_destroy(e);
}

/* Set a snapshot's mtime to ms since the epoch. */
static void snapshot_at(unsigned lsn, uint64_t ms)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, lsn);
	struct timespec t[2] = { { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 },
				 { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 } };
	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

static bool snapshot_exists(unsigned lsn)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, lsn);
	return access(path, F_OK) == 0;
}

Test(snapshot, a_retention_keeps_what_replaying_its_moments_needs)
{
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512];
	const uint64_t hour = 3600000, t0 = 1700000000000ull;
	for (unsigned k = 1; k <= 5; k++) {
		cr_assert_eq(atp_snapshot_write(dir, c, 10 * k, err, sizeof(err)), 0, "%s", err);
		snapshot_at(10 * k, t0 + k * hour); /* lsn 10 at t0 + 1 h, ..., lsn 50 at t0 + 5 h */
	}
	cr_assert_eq(atp_snapshot_prune(dir, t0), 0, "none is old enough: every one stays, and all the WAL");
	cr_assert(snapshot_exists(10));
	cr_assert_eq(atp_snapshot_prune(dir, t0 + 2 * hour + 1), 20, "t0 + 2 h replays from lsn 20: WAL up to it may go");
	cr_assert(!snapshot_exists(10) && snapshot_exists(20) && snapshot_exists(30));
	cr_assert_eq(atp_snapshot_prune(dir, t0 + 4 * hour), 40);
	cr_assert(!snapshot_exists(30) && snapshot_exists(40));
	cr_assert_eq(atp_snapshot_prune(dir, t0 + 9 * hour), 40, "the two newest stay whatever the retention");
	cr_assert(snapshot_exists(40) && snapshot_exists(50));
	uint64_t lsn;
	char path[600];
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 40u);
	cr_assert_eq(atp_snapshot_load_file(path, d, &lsn, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lsn, 40);
	assert_same_state(c, d);
	atp_snapshot_info si;
	cr_assert_eq(atp_snapshot_check(path, &si, err, sizeof(err)), 0);
	cr_assert_eq(si.now_ms, atp_core_now_ms(c));
	atp_core_destroy(c);
	atp_core_destroy(d);
}

Test(snapshot, a_line_of_a_position_it_does_not_hold_is_refused)
{
	atp_core *c = busy_core(), *d = small_core(64, 64, 4);
	char err[512], path[600];
	uint64_t lsn;
	cr_assert_eq(atp_snapshot_write(dir, c, 9, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/snap-%020u.snap", dir, 9u);
	/* Line R1 (its ref length, its ref, then its position id) now names position 1000; the checksum is made good. */
	int fd = open(path, O_RDWR);
	uint8_t buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	cr_assert(n > 44 && n < (ssize_t)sizeof(buf));
	uint8_t *at = memmem(buf, (size_t)n, "\x02R1", 3);
	cr_assert_not_null(at);
	uint32_t pos = 1000, crc;
	memcpy(at + 3, &pos, 4);
	crc = atp_crc32c(0, buf, (size_t)n - 4);
	memcpy(buf + n - 4, &crc, 4);
	cr_assert_eq(pwrite(fd, buf, (size_t)n, 0), n);
	close(fd);
	cr_assert_eq(atp_snapshot_load(dir, d, &lsn, err, sizeof(err)), -1);
	cr_assert(strstr(err, "does not restore"), "%s", err);
	atp_core_destroy(c);
	atp_core_destroy(d);
}

/* ---- the dead-letter store ---- */
