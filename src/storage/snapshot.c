/* snapshot.c — writing and loading shard snapshots (see atp/snapshot.h). */
#define _GNU_SOURCE
#include "atp/snapshot.h"
#include "atp/log.h"

#include "atp/crc32c.h"
#include "atp/faultio.h"
#include "atp/status.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The file: MAGIC, the state, then a table of CRC-32Cs, one per block of
 * block_bytes of everything before it, block_bytes and the block count
 * (u32 each), and a CRC-32C of all that precedes it. The whole file's CRC
 * says whether it is intact; the blocks' say where it is not. The first
 * format (MAGIC_V1) had the state and the whole CRC only: still loaded.
 */
#define MAGIC "ATPSNAP2"
#define MAGIC_V1 "ATPSNAP1"
#define KEEP 2
#define BLOCKS_MAX 4096  /* the table's entries at most: block_bytes grows with the state (4 KiB at least) */

/* ---- writing: a buffered file writer that checksums what it writes ---- */

typedef struct writer {
	int fd;
	int err;
	uint32_t crc;
	size_t len;
	bool state_done;        /* the blocks cover the state only */
	uint32_t block_bytes, block_fill, block_crc, n_blocks;
	uint32_t blocks[BLOCKS_MAX];
	uint8_t buf[1 << 16];
} writer;

/* Account n bytes of the state to its blocks. */
static void w_blocks(writer *w, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = w->block_bytes - w->block_fill < n ? w->block_bytes - w->block_fill : n;
		w->block_crc = atp_crc32c(w->block_crc, p, k);
		w->block_fill += (uint32_t)k;
		p += k;
		n -= k;
		if (w->block_fill == w->block_bytes) {
			assert(w->n_blocks < BLOCKS_MAX);  /* block_bytes was chosen from a bound of the state's size */
			w->blocks[w->n_blocks++] = w->block_crc;
			w->block_crc = w->block_fill = 0;
		}
	}
}

/* Write out the buffer as it is. */
static void w_write(writer *w)
{
	size_t done = 0;
	while (!w->err && done < w->len) {
		ssize_t k = atp_io_write(w->fd, w->buf + done, w->len - done);
		if (k <= 0)
			w->err = k < 0 ? errno : EIO;
		else
			done += (size_t)k;
	}
	w->len = 0;
}

/* Checksum the buffer, then write it out. */
static void w_flush(writer *w)
{
	w->crc = atp_crc32c(w->crc, w->buf, w->len);
	if (!w->state_done)
		w_blocks(w, w->buf, w->len);
	w_write(w);
}

static void w_put(writer *w, const void *p, size_t n)
{
	if (w->len + n > sizeof(w->buf))
		w_flush(w);
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void w_u8(writer *w, uint8_t v)
{
	w_put(w, &v, 1);
}

static void w_u64(writer *w, uint64_t v)
{
	w_put(w, &v, 8);
}

/* Line id, with the closing time of a closed one (0 for an open line). */
static void w_line(writer *w, const atp_lines *l, uint32_t id, uint64_t closed_at)
{
	const atp_line *ln = atp_lines_get(l, id);
	w_u8(w, ln->ref_len);
	w_put(w, atp_lines_ref(l, id), ln->ref_len);
	w_put(w, &ln->pos, 4);
	w_u8(w, (uint8_t)(ln->state | (ln->releasable ? 0x80 : 0)));  /* the top bit: releasable */
	w_u64(w, (uint64_t)ln->requested);
	w_u64(w, (uint64_t)ln->confirmed);
	w_u64(w, (uint64_t)ln->remaining);
	w_u64(w, atp_lines_expires_at(l, id));
	w_u64(w, closed_at);
}

static void w_u32(writer *w, uint32_t v)
{
	w_put(w, &v, 4);
}

/*
 * Inbound supply (atp/inbound.h), after the closed lines; a snapshot that
 * ends before it holds none. The entries' count, then each: position,
 * pool, supplies (ref, expected, ETA), promises in the order they were
 * made (the line's ref, requested, releasable; qty, date, need-by).
 */
static void write_inbound(writer *w, const atp_core *c)
{
	const atp_inbound *ib = atp_core_inbound(c);
	const atp_lines *l = atp_core_lines(c);
	uint32_t n_entries, n_promises, n_pos = atp_table_count(atp_core_table(c));
	atp_inbound_used(ib, &n_entries, &n_promises);
	w_u32(w, n_entries);
	for (uint32_t pos = 0, seen = 0; seen < n_entries && pos < n_pos; pos++) {
		atp_inbound_view v;
		if (!atp_inbound_get(ib, pos, &v))
			continue;
		seen++;
		w_u32(w, pos);
		w_u64(w, (uint64_t)v.pool);
		w_u32(w, v.n_supplies);
		for (uint32_t i = 0; i < v.n_supplies; i++) {
			atp_str ref;
			int64_t expected;
			uint32_t eta;
			atp_inbound_supply_at(ib, pos, i, &ref, &expected, &eta);
			w_u8(w, (uint8_t)ref.len);
			w_put(w, ref.ptr, ref.len);
			w_u64(w, (uint64_t)expected);
			w_u32(w, eta);
		}
		w_u32(w, v.n_promises);
		atp_promise_view p;
		for (uint32_t cur = 0; atp_inbound_promise_next(ib, pos, &cur, &p);) {
			const atp_line *ln = atp_lines_get(l, p.line);
			w_u8(w, ln->ref_len);
			w_put(w, atp_lines_ref(l, p.line), ln->ref_len);
			w_u64(w, (uint64_t)ln->requested);
			w_u8(w, ln->releasable);
			w_u64(w, (uint64_t)p.qty);
			w_u32(w, p.date);
			w_u32(w, p.need_by);
		}
	}
}

static void write_state(writer *w, const atp_core *c, uint64_t lsn)
{
	const atp_sources *src = atp_core_sources(c);
	const atp_table *t = atp_core_table(c);
	const atp_lines *l = atp_core_lines(c);
	uint32_t n_src = atp_sources_count(src), n_pos = atp_table_count(t);
	uint32_t n_open = atp_lines_open_count(l), n_closed = atp_lines_closed_count(l);

	/* Blocks of 4 KiB, or larger where the state could outgrow the table (every length at its maximum). */
	uint32_t n_inbound, n_promises;
	atp_inbound_used(atp_core_inbound(c), &n_inbound, &n_promises);
	uint64_t bound = 64 + (uint64_t)n_src * 264 + (uint64_t)n_pos * 552 + ((uint64_t)n_open + n_closed) * 301 +
			 (uint64_t)n_inbound * 800 + (uint64_t)n_promises * 96;
	for (w->block_bytes = 4096; bound / w->block_bytes >= BLOCKS_MAX; w->block_bytes *= 2)
		;
	w_put(w, MAGIC, 8);
	w_u64(w, lsn);
	w_u64(w, atp_core_now_ms(c));
	w_put(w, &n_src, 4);
	w_put(w, &n_pos, 4);
	w_put(w, &n_open, 4);
	w_put(w, &n_closed, 4);
	for (uint32_t i = 0; i < n_src; i++) {
		const atp_source *s = atp_sources_get(src, i);
		w_u8(w, s->name_len);
		w_put(w, s->name, s->name_len);
		w_u64(w, s->hwm);
	}
	for (uint32_t i = 0; i < n_pos; i++) {
		const atp_position *p = atp_table_get(t, i);
		w_u8(w, p->sku_len);
		w_u8(w, p->loc_len);
		w_put(w, atp_table_sku(t, i), p->sku_len);
		w_put(w, atp_table_location(t, i), p->loc_len);
		w_u64(w, (uint64_t)p->on_hand);
		w_u64(w, (uint64_t)p->held);
		w_u64(w, (uint64_t)p->reserved);
		w_u64(w, (uint64_t)p->safety_stock);
		w_u64(w, p->version);
	}
	for (uint32_t id = 0, seen = 0; seen < n_open && id < atp_lines_capacity(l); id++) {
		if (atp_lines_get(l, id)->state == ATP_LINE_OPEN) {
			w_line(w, l, id, 0);
			seen++;
		}
	}
	for (uint32_t i = 0; i < n_closed; i++)
		w_line(w, l, atp_lines_closed_id(l, i), atp_lines_closed_at(l, i));
	write_inbound(w, c);
	w_flush(w);
	w->state_done = true;
	if (w->block_fill) {
		assert(w->n_blocks < BLOCKS_MAX);
		w->blocks[w->n_blocks++] = w->block_crc;
	}
	w_put(w, w->blocks, (size_t)w->n_blocks * 4);
	w_put(w, &w->block_bytes, 4);
	w_put(w, &w->n_blocks, 4);
	w_flush(w); /* the checksum covers everything before it */
	memcpy(w->buf, &w->crc, 4);
	w->len = 4;
	w_write(w);
}

/* The LSN of a snapshot's file name (snap-<20 digits>.snap), or false. */
static bool snapshot_name(const char *name, uint64_t *lsn)
{
	char tail[8];
	return strlen(name) == 30 && sscanf(name, "snap-%20" SCNu64 "%6s", lsn, tail) == 2 && strcmp(tail, ".snap") == 0;
}

/* The LSNs of the newest max snapshots in dir, ascending; count in *n. 0 or -errno. */
static int list_snapshots(const char *dir, uint64_t *lsns, size_t max, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *e;
	*n = 0;
	while ((e = readdir(d))) {
		uint64_t lsn;
		if (!snapshot_name(e->d_name, &lsn))
			continue;
		if (*n == max) {
			if (lsn <= lsns[0])
				continue;
			memmove(lsns, lsns + 1, (max - 1) * sizeof(*lsns));
			(*n)--;
		}
		size_t i = (*n)++;
		for (; i > 0 && lsns[i - 1] > lsn; i--)
			lsns[i] = lsns[i - 1];
		lsns[i] = lsn;
	}
	closedir(d);
	return 0;
}

int atp_snapshot_write(const char *dir, const atp_core *c, uint64_t lsn, char *err, size_t errlen)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/snap-%020" PRIu64 ".tmp", dir, lsn);
	snprintf(path, sizeof(path), "%s/snap-%020" PRIu64 ".snap", dir, lsn);
	writer w = { .fd = atp_io_create(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) };
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = w.fd < 0 || dfd < 0 ? errno : 0;
	if (!rc) {
		write_state(&w, c, lsn);
		rc = w.err;
	}
	if (!rc && atp_io_fsync(w.fd) < 0)
		rc = errno;
	if (w.fd >= 0 && close(w.fd) < 0 && !rc)
		rc = errno;
	if (!rc && atp_io_rename(tmp, path) < 0)
		rc = errno;
	if (!rc && atp_io_fsync(dfd) < 0)
		rc = errno;
	if (dfd >= 0)
		close(dfd);
	if (rc) {
		unlink(tmp);
		atp_errf(err, errlen, "%s: snapshot of lsn %" PRIu64 " failed: %s", dir, lsn, strerror(rc));
	}
	return -rc;
}

uint64_t atp_snapshot_prune(const char *dir, uint64_t keep_since_ms)
{
	uint64_t keep[KEEP];
	size_t n;
	if (list_snapshots(dir, keep, KEEP, &n) < 0 || n < KEEP)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	/* The newest snapshot written by keep_since_ms: every moment since can be replayed from it. */
	uint64_t bound = 0, lsn;
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d)))
		if (snapshot_name(e->d_name, &lsn) && lsn > bound && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    (uint64_t)st.st_mtim.tv_sec * 1000 + (uint64_t)st.st_mtim.tv_nsec / 1000000 <= keep_since_ms)
			bound = lsn;
	if (bound > keep[0])
		bound = keep[0];
	rewinddir(d);
	while (bound && (e = readdir(d)))
		if (snapshot_name(e->d_name, &lsn) && lsn < bound && unlinkat(dirfd(d), e->d_name, 0) < 0)
			atp_log(ATP_LOG_WARN, "snapshot: cannot delete %s/%s: %s", dir, e->d_name, strerror(errno));
	closedir(d);
	return bound;
}

/* ---- loading ---- */

typedef struct reader {
	const uint8_t *p, *end;
	bool bad;
} reader;

static const void *r_take(reader *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const void *q = r->p;
	r->p += n;
	return q;
}

/* An n-byte little-endian unsigned integer (the host's order; see meson.build); 0 past the end. */
static uint64_t r_uint(reader *r, size_t n)
{
	uint64_t v = 0;
	const void *q = r_take(r, n);
	if (q)
		memcpy(&v, q, n);
	return v;
}

static uint64_t r_u64(reader *r)
{
	return r_uint(r, 8);
}

static uint32_t r_u32(reader *r)
{
	return (uint32_t)r_uint(r, 4);
}

static uint8_t r_u8(reader *r)
{
	return (uint8_t)r_uint(r, 1);
}

static atp_str r_str(reader *r, uint8_t len)
{
	const char *q = r_take(r, len);
	return atp_str_of(q ? q : "", q ? len : 0);
}

/* The inbound section (write_inbound), when the state goes on after the lines. */
static int restore_inbound(reader *r, atp_core *c)
{
	if (r->p == r->end)
		return ATP_OK;
	uint32_t n = r_u32(r);
	int rc = ATP_OK;
	for (uint32_t e = 0; e < n && !rc && !r->bad; e++) {
		uint32_t pos = r_u32(r);
		int64_t pool = (int64_t)r_u64(r);
		rc = r->bad ? ATP_E_INVAL : atp_core_restore_inbound(c, pos, pool);
		uint32_t n_supplies = r_u32(r);
		for (uint32_t i = 0; i < n_supplies && !rc && !r->bad; i++) {
			atp_str ref = r_str(r, r_u8(r));
			int64_t expected = (int64_t)r_u64(r);
			uint32_t eta = r_u32(r);
			rc = r->bad ? ATP_E_INVAL : atp_core_restore_supply(c, pos, ref, expected, eta);
		}
		uint32_t n_promises = rc ? 0 : r_u32(r);
		for (uint32_t i = 0; i < n_promises && !rc && !r->bad; i++) {
			atp_str ref = r_str(r, r_u8(r));
			int64_t requested = (int64_t)r_u64(r);
			bool releasable = r_u8(r) != 0;
			atp_promise_view p = { 0 };
			p.qty = (int64_t)r_u64(r);
			p.date = r_u32(r);
			p.need_by = r_u32(r);
			rc = r->bad ? ATP_E_INVAL : atp_core_restore_promise(c, pos, ref, requested, releasable, &p);
		}
	}
	return rc;
}

/* Restore a snapshot whose checksum held: ATP_OK or the first ATP_E_*. */
static int restore(reader *r, atp_core *c, uint64_t *lsn)
{
	r_take(r, 8);
	*lsn = r_u64(r);
	uint64_t now = r_u64(r);
	uint32_t n_src = r_u32(r), n_pos = r_u32(r), n_open = r_u32(r), n_closed = r_u32(r);
	int rc = ATP_OK;
	for (uint32_t i = 0; i < n_src && !rc && !r->bad; i++) {
		atp_str name = r_str(r, r_u8(r));
		rc = atp_core_restore_source(c, name, r_u64(r));
	}
	for (uint32_t i = 0; i < n_pos && !rc && !r->bad; i++) {
		uint8_t sl = r_u8(r), ll = r_u8(r);
		atp_str sku = r_str(r, sl), loc = r_str(r, ll);
		atp_position v = { 0 };
		v.on_hand = (int64_t)r_u64(r);
		v.held = (int64_t)r_u64(r);
		v.reserved = (int64_t)r_u64(r);
		v.safety_stock = (int64_t)r_u64(r);
		v.version = r_u64(r);
		rc = atp_core_restore_position(c, sku, loc, &v);
	}
	for (uint64_t i = 0; i < (uint64_t)n_open + n_closed && !rc && !r->bad; i++) {
		atp_str ref = r_str(r, r_u8(r));
		uint32_t pos = r_u32(r);
		atp_line_values v = { 0 };
		v.state = r_u8(r);
		v.releasable = v.state >> 7;
		v.state &= 0x7f;
		v.requested = (int64_t)r_u64(r);
		v.confirmed = (int64_t)r_u64(r);
		v.remaining = (int64_t)r_u64(r);
		v.expires_at = r_u64(r);
		v.closed_at = r_u64(r);
		if (r->bad)
			return ATP_E_INVAL;
		rc = atp_core_restore_line(c, ref, pos, &v);
	}
	if (!rc && !r->bad)
		rc = restore_inbound(r, c);
	atp_core_restore_now(c, now);
	return rc ? rc : r->bad ? ATP_E_INVAL : ATP_OK;
}

/*
 * Where a snapshot whose whole checksum fails is damaged, written to why:
 * the first block whose checksum fails, or its table or trailer.
 */
static void locate(const uint8_t *m, size_t size, char *why, size_t n)
{
	if (memcmp(m, MAGIC_V1, 8) == 0) {
		snprintf(why, n, "its checksum fails (a snapshot of the first format cannot say where)");
		return;
	}
	if (memcmp(m, MAGIC, 8) != 0) {
		snprintf(why, n, "damaged at offset 0: not a snapshot's header");
		return;
	}
	uint32_t block_bytes, blocks;
	memcpy(&block_bytes, m + size - 12, 4);
	memcpy(&blocks, m + size - 8, 4);
	size_t trailer = 12 + (size_t)blocks * 4, state = size - trailer;
	if (block_bytes < 4096 || (block_bytes & (block_bytes - 1)) || blocks > BLOCKS_MAX || trailer > size ||
	    (state + block_bytes - 1) / block_bytes != blocks) {
		snprintf(why, n, "damaged in its trailer (from offset %zu), or cut short", size - 12);
		return;
	}
	for (uint32_t b = 0; b < blocks; b++) {
		size_t off = (size_t)b * block_bytes, len = state - off < block_bytes ? state - off : block_bytes;
		uint32_t want;
		memcpy(&want, m + state + (size_t)b * 4, 4);
		if (atp_crc32c(0, m + off, len) != want) {
			size_t entry = state + (size_t)b * 4;
			snprintf(why, n, "damaged at bytes %zu-%zu or %zu-%zu (a block, or its entry in the table, whose checksum fails)",
				 off, off + len - 1, entry, entry + 3);
			return;
		}
	}
	snprintf(why, n, "damaged in its table of block checksums or its trailer (from offset %zu)", state);
}

/* 1 when path is a whole snapshot with a good checksum, mapped into *m, its state ending at *end; 0 with why. */
static int map_valid(const char *path, const uint8_t **m, size_t *size, const uint8_t **end, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 44) {
		snprintf(why, n, "%s", fd < 0 ? strerror(errno) : "not a whole snapshot: too short");
		if (fd >= 0)
			close(fd);
		return 0;
	}
	*size = (size_t)st.st_size;
	*m = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (*m == MAP_FAILED) {
		snprintf(why, n, "%s", strerror(errno));
		return 0;
	}
	uint32_t crc, blocks;
	memcpy(&crc, *m + *size - 4, 4);
	memcpy(&blocks, *m + *size - 8, 4);
	if (atp_crc32c(0, *m, *size - 4) == crc) {
		if (memcmp(*m, MAGIC_V1, 8) == 0) {
			*end = *m + *size - 4;
			return 1;
		}
		if (memcmp(*m, MAGIC, 8) == 0 && blocks <= BLOCKS_MAX && 12 + (size_t)blocks * 4 <= *size - 44) {
			*end = *m + *size - 12 - (size_t)blocks * 4;
			return 1;
		}
	}
	locate(*m, *size, why, n);
	munmap((void *)*m, *size);
	return 0;
}

/*
 * The snapshot file at path mapped (*m, *size, its state ending at *end)
 * with the LSN its name carries: 0; -1 when the name is not a snapshot's,
 * 1 when the file is not whole or fails its checksum (err says where).
 */
static int map_file(const char *path, const uint8_t **m, size_t *size, const uint8_t **end, uint64_t *named, char *err,
		    size_t errlen)
{
	const char *base = strrchr(path, '/');
	if (!snapshot_name(base ? base + 1 : path, named)) {
		atp_errf(err, errlen, "%s: not a snapshot's name (snap-<LSN>.snap)", path);
		return -1;
	}
	char why[160];
	if (!map_valid(path, m, size, end, why, sizeof(why))) {
		atp_errf(err, errlen, "%s: %s", path, why);
		return 1;
	}
	return 0;
}

int atp_snapshot_load_file(const char *path, atp_core *c, uint64_t *lsn, char *err, size_t errlen)
{
	const uint8_t *m, *end;
	size_t size;
	uint64_t named;
	int mapped = map_file(path, &m, &size, &end, &named, err, errlen);
	if (mapped)
		return mapped;
	reader r = { m, end, false };
	int rc = restore(&r, c, lsn);
	munmap((void *)m, size);
	if (rc != ATP_OK || *lsn != named) {
		atp_errf(err, errlen, "%s: checksum holds but the state does not restore (%s)", path, atp_status_name(rc));
		return -1;
	}
	return 0;
}

int atp_snapshot_load(const char *dir, atp_core *c, uint64_t *lsn, char *err, size_t errlen)
{
	uint64_t lsns[8];
	size_t n;
	*lsn = 0;
	int rc = list_snapshots(dir, lsns, 8, &n);
	if (rc == -ENOENT)
		return 0; /* no directory yet: no snapshot */
	if (rc < 0) {
		atp_errf(err, errlen, "%s: %s", dir, strerror(-rc));
		return -1;
	}
	while (n-- > 0) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/snap-%020" PRIu64 ".snap", dir, lsns[n]);
		rc = atp_snapshot_load_file(path, c, lsn, err, errlen);
		if (rc <= 0)
			return rc;
		atp_log(ATP_LOG_WARN, "snapshot: %s; trying an older one", err);
		*lsn = 0;
	}
	return 0;
}

int atp_snapshot_check(const char *path, atp_snapshot_info *info, char *err, size_t errlen)
{
	const uint8_t *m, *end;
	size_t size;
	uint64_t named;
	if (map_file(path, &m, &size, &end, &named, err, errlen))
		return -1;
	reader r = { m + 8, end, false };
	info->bytes = size;
	info->lsn = r_u64(&r);
	info->now_ms = r_u64(&r);
	info->sources = r_u32(&r);
	info->positions = r_u32(&r);
	info->open_lines = r_u32(&r);
	info->closed_lines = r_u32(&r);
	munmap((void *)m, size);
	if (r.bad || info->lsn != named) {
		atp_errf(err, errlen, "%s: its checksum holds but it is of lsn %" PRIu64, path, info->lsn);
		return -1;
	}
	return 0;
}
