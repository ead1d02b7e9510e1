/* wal.c — segments, recovery and buffered appends of a shard's WAL (see atp/wal.h). */
#define _GNU_SOURCE
#include "atp/wal.h"
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

#define SEG_HEADER 64
#define REC_HEADER 16
#define MAGIC "ATPWAL3"
#define MAGIC_V2 "ATPWAL2"  /* no write-start flag: an older build's */
#define MAGIC_V1 "ATPWAL1"  /* CRC of (LSN, payload), no flag: the first build's */
#define WRITE_START (1ull << 63)  /* in a record's LSN field: the first record of a write */

/* A segment's format: what its magic says. */
enum { FMT_NONE, FMT_V1, FMT_V2, FMT_V3 };

typedef struct seg_header {
	char magic[8];
	uint64_t first_lsn;
	uint64_t bytes;
	uint32_t crc;  /* of the fields above */
	uint8_t pad[SEG_HEADER - 28];
} seg_header;
_Static_assert(sizeof(seg_header) == SEG_HEADER, "segment header is 64 bytes");

struct atp_wal {
	int dirfd;
	atp_wal_config cfg;
	char dir[PATH_MAX - 32];
	int fd;               /* the current segment */
	uint64_t seg_bytes;   /* its size */
	uint64_t *firsts;     /* first LSN of every segment, ascending; the current one last */
	uint32_t n_segs, cap_segs;
	uint64_t last_lsn;
	uint8_t *buf[2];
	uint32_t cur;         /* buf[cur] takes appends */
	uint32_t pend_len;
	uint64_t pend_off;    /* file offset of buf[cur][0] */
	uint32_t flight_len;
	bool in_flight;
	int failed;           /* -errno once a write or fsync failed */
};

atp_wal_config atp_wal_config_default(void)
{
	return (atp_wal_config){ .segment_bytes = 64u << 20, .buffer_bytes = 16u << 20 };
}

static uint32_t rec_size(size_t len)
{
	return (uint32_t)((REC_HEADER + len + 7) & ~(size_t)7);
}

static void seg_path(const atp_wal *w, uint64_t first, char *out, size_t n)
{
	snprintf(out, n, "%s/%020" PRIu64 ".wal", w->dir, first);
}

static uint32_t header_crc(const seg_header *h)
{
	return atp_crc32c(0, h, offsetof(seg_header, crc));
}

static int push_first(atp_wal *w, uint64_t first)
{
	if (w->n_segs == w->cap_segs) {
		uint32_t cap = w->cap_segs ? 2 * w->cap_segs : 16;
		uint64_t *f = realloc(w->firsts, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		w->firsts = f;
		w->cap_segs = cap;
	}
	w->firsts[w->n_segs++] = first;
	return 0;
}

/* A new, preallocated, durable segment whose first record will be lsn first; it becomes current. */
static int new_segment(atp_wal *w, uint64_t first)
{
	char path[PATH_MAX];
	seg_path(w, first, path, sizeof(path));
	int fd = atp_io_create(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	seg_header h = { .first_lsn = first, .bytes = w->cfg.segment_bytes };
	memcpy(h.magic, MAGIC, 8);
	h.crc = header_crc(&h);
	int rc = atp_io_fallocate(fd, 0, (off_t)w->cfg.segment_bytes);
	if (rc == 0 && atp_io_pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		rc = errno ? errno : EIO;
	if (rc == 0 && atp_io_fdatasync(fd) < 0)
		rc = errno;
	if (rc == 0 && atp_io_fsync(w->dirfd) < 0)
		rc = errno;
	if (rc == 0)
		rc = -push_first(w, first);
	if (rc != 0) {
		close(fd);
		unlink(path);
		return -rc;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->seg_bytes = w->cfg.segment_bytes;
	w->pend_off = SEG_HEADER;
	return 0;
}

/*
 * The record at off if it is whole and its CRC holds (checked as its
 * format's): its length, else 0. *lsn is its LSN, *start whether it is the
 * first record of a write (always false before the third format).
 */
static uint32_t valid_record(const uint8_t *m, uint64_t size, uint64_t off, int fmt, uint64_t *lsn, bool *start)
{
	if (off + REC_HEADER > size)
		return 0;
	uint32_t len, crc;
	memcpy(&len, m + off, 4);
	memcpy(&crc, m + off + 4, 4);
	if (len == 0 || len > ATP_WAL_PAYLOAD_MAX || off + rec_size(len) > size)
		return 0;
	memcpy(lsn, m + off + 8, 8);
	uint32_t want = fmt == FMT_V1 ? atp_crc32c(0, m + off + 8, 8 + (size_t)len)
				      : atp_crc32c_u64(atp_crc32c(0, m + off + REC_HEADER, len), *lsn);
	if (want != crc || (fmt != FMT_V3 && (*lsn & WRITE_START)))
		return 0;
	for (uint64_t i = off + REC_HEADER + len; i < off + rec_size(len); i++)
		if (m[i])
			return 0; /* the padding is zeros: no byte of a segment goes unchecked */
	*start = (*lsn & WRITE_START) != 0;
	*lsn &= ~WRITE_START;
	return len;
}

/*
 * The record at off if a snapshot covers it (its lsn is the next one and
 * at most after) and it fits: its length, else 0. Its CRC is not checked:
 * it is never applied, and the chain of lsns still proves the framing.
 */
static uint32_t covered_record(const uint8_t *m, uint64_t size, uint64_t off, uint64_t last, uint64_t after)
{
	uint32_t len;
	uint64_t lsn;
	if (last >= after || off + REC_HEADER > size)
		return 0;
	memcpy(&len, m + off, 4);
	memcpy(&lsn, m + off + 8, 8);
	lsn &= ~WRITE_START;
	if (lsn != last + 1 || len == 0 || len > ATP_WAL_PAYLOAD_MAX || off + rec_size(len) > size)
		return 0;
	return len;
}

/* Zero [off, size) of fd and make it durable. */
static int zero_tail(int fd, uint64_t off, uint64_t size)
{
	static const uint8_t zeros[65536];
	while (off < size) {
		size_t n = size - off < sizeof(zeros) ? (size_t)(size - off) : sizeof(zeros);
		ssize_t k = atp_io_pwrite(fd, zeros, n, (off_t)off);
		if (k <= 0)
			return -(k < 0 ? errno : EIO);
		off += (uint64_t)k;
	}
	return atp_io_fdatasync(fd) < 0 ? -errno : 0;
}

typedef struct scan {
	atp_wal_replay_fn fn;
	void *ctx;
	uint64_t after;
	char *err;
	size_t errlen;
	atp_wal_scan_info *readonly; /* atp_wal_scan(): change nothing, say here what recovery would cut */
	uint64_t cut_lsn;            /* the highest valid record's lsn inside a torn tail (0: none) */
	uint64_t upto;               /* records after it are cut off (atp_wal_open_upto) */
	bool cutting;                /* the segment just replayed holds the first of them */
} scan;

/* Whether the 64 bytes at p are all zero. */
static bool all_zero(const uint8_t *p)
{
	uint64_t w[8], any = 0;
	memcpy(w, p, sizeof(w));
	for (int i = 0; i < 8; i++)
		any |= w[i];
	return any == 0;
}

/* The offset of the first non-zero byte of m in [from, size), or size. */
static uint64_t first_nonzero(const uint8_t *m, uint64_t from, uint64_t size)
{
	while (from < size && (from % 64 || from + 64 > size))
		if (m[from++])
			return from - 1;
	while (from + 64 <= size && all_zero(m + from))
		from += 64;
	while (from < size && !m[from])
		from++;
	return from;
}

/*
 * Replay one segment. Returns 0 with *tail the offset after its last good
 * record, or -1 with a message. A bad record is a torn tail only when this
 * is the last segment and it lies in the last write: a write starts only
 * once the one before it is durable, so the valid records after the bad
 * one must all be of its own write (none flags the start of a write, in
 * the third format) and within one write's size (buffer_bytes) of it.
 * Anything else is damage to acknowledged records, and refused.
 */
static int replay_segment(atp_wal *w, const char *path, const uint8_t *m, uint64_t size, bool last, int fmt,
			  scan *s, uint64_t *tail)
{
	uint64_t off = SEG_HEADER;
	for (;;) {
		uint32_t len;
		if (off + 4 > size)
			break;
		memcpy(&len, m + off, 4);
		if (len == 0)
			break; /* end of data */
		uint64_t lsn = 0;
		bool start;
		uint32_t ok = covered_record(m, size, off, w->last_lsn, s->after);
		if (ok)
			lsn = w->last_lsn + 1;
		else if (!(ok = valid_record(m, size, off, fmt, &lsn, &start)) || lsn != w->last_lsn + 1)
			break;
		if (lsn > s->upto) {
			s->cutting = true;
			break;
		}
		if (lsn > s->after && s->fn && s->fn(s->ctx, lsn, m + off + REC_HEADER, ok) != 0) {
			atp_errf(s->err, s->errlen, "%s: record at offset %" PRIu64 " (lsn %" PRIu64 ") cannot be applied", path,
			    off, lsn);
			return -1;
		}
		w->last_lsn = lsn;
		off += rec_size(ok);
	}
	*tail = off;
	if (s->fn && s->fn(s->ctx, w->last_lsn, NULL, 0) != 0) {
		atp_errf(s->err, s->errlen, "%s: the records before offset %" PRIu64 " cannot be applied", path, off);
		return -1;
	}
	/* Anything valid after the end of data? (Not asked where the caller cuts.) */
	for (uint64_t p = off + 8; !s->cutting && p + REC_HEADER <= size; p += 8) {
		/* A record starts with a non-zero length: the preallocated zeros are skipped a cache line at a time. */
		while (p % 64 == 0 && p + 64 + REC_HEADER <= size && all_zero(m + p))
			p += 64;
		uint64_t lsn;
		bool start;
		if (!valid_record(m, size, p, fmt, &lsn, &start) || lsn <= w->last_lsn)
			continue;
		if (last && !start && p - off < w->cfg.buffer_bytes) {
			if (lsn > s->cut_lsn)
				s->cut_lsn = lsn;
			continue; /* within the last write: part of the torn tail */
		}
		atp_errf(s->err, s->errlen, "%s: bad record at offset %" PRIu64 " with valid records after it (lsn %" PRIu64
			    " at offset %" PRIu64 "%s); refusing to start",
		    path, off, lsn, p, start ? ", the start of a later write" : "");
		return -1;
	}
	uint64_t junk = last || s->cutting ? size : first_nonzero(m, off, size);
	if (junk < size) {
		atp_errf(s->err, s->errlen, "%s: %s at offset %" PRIu64 " of a segment that is not the last; refusing to start",
		    path, junk == off ? "bad record" : "damage after the end of data", junk);
		return -1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int list_segments(atp_wal *w, char *err, size_t errlen)
{
	DIR *d = opendir(w->dir);
	if (!d) {
		atp_errf(err, errlen, "%s: %s", w->dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t first;
		char tail[8];
		if (strlen(e->d_name) == 24 && sscanf(e->d_name, "%20" SCNu64 "%7s", &first, tail) == 2 &&
		    strcmp(tail, ".wal") == 0 && push_first(w, first) < 0) {
			closedir(d);
			atp_errf(err, errlen, "out of memory");
			return -1;
		}
	}
	closedir(d);
	if (w->n_segs)
		qsort(w->firsts, w->n_segs, sizeof(uint64_t), cmp_u64);
	return 0;
}

/*
 * The caller's cut (atp_wal_open_upto): segment i holds the first record
 * after upto at tail. Zero from there, delete every later segment, and
 * make both durable; segment i is then the current one.
 */
static int cut_after(atp_wal *w, scan *s, uint32_t i, int fd, const char *path, uint64_t tail, uint64_t size, int fmt)
{
	atp_log(ATP_LOG_WARN, "wal: %s: records after lsn %" PRIu64 " cut at offset %" PRIu64 " (an incomplete whole order)",
		path, s->upto, tail);
	int rc = zero_tail(fd, tail, size);
	for (uint32_t k = i + 1; rc == 0 && k < w->n_segs; k++) {
		char later[PATH_MAX];
		seg_path(w, w->firsts[k], later, sizeof(later));
		if (unlink(later) < 0)
			rc = -errno;
	}
	if (rc == 0 && atp_io_fsync(w->dirfd) < 0)
		rc = -errno;
	if (rc < 0) {
		atp_errf(s->err, s->errlen, "%s: cannot cut after lsn %" PRIu64 ": %s", path, s->upto, strerror(-rc));
		close(fd);
		return -1;
	}
	w->n_segs = i + 1;
	w->fd = fd;
	w->seg_bytes = fmt == FMT_V3 ? size : tail;
	w->pend_off = tail;
	return 0;
}

/* Recover every segment in order; leaves the last one open as current. */
static int recover(atp_wal *w, scan *s)
{
	w->last_lsn = 0;
	for (uint32_t i = 0; i < w->n_segs; i++) {
		char path[PATH_MAX];
		bool last = i + 1 == w->n_segs;
		seg_path(w, w->firsts[i], path, sizeof(path));
		int fd = open(path, (s->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			atp_errf(s->err, s->errlen, "%s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		uint64_t size = (uint64_t)st.st_size;
		const uint8_t *m = size >= SEG_HEADER ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
		seg_header h;
		if (m != MAP_FAILED)
			memcpy(&h, m, sizeof(h));
		int fmt = m == MAP_FAILED		      ? FMT_NONE
			  : memcmp(h.magic, MAGIC, 8) == 0    ? FMT_V3
			  : memcmp(h.magic, MAGIC_V2, 8) == 0 ? FMT_V2
			  : memcmp(h.magic, MAGIC_V1, 8) == 0 ? FMT_V1
							      : FMT_NONE;
		if (fmt == FMT_NONE || h.crc != header_crc(&h) || first_nonzero(h.pad, 0, sizeof(h.pad)) < sizeof(h.pad) ||
		    h.first_lsn != w->firsts[i] || h.bytes != size) {
			/* Records are appended only once a segment's creation is durable: with any, the header is damage. */
			bool held = m != MAP_FAILED && first_nonzero(m, SEG_HEADER, size) < size;
			if (m != MAP_FAILED)
				munmap((void *)m, size);
			close(fd);
			if (!last || held) {
				atp_errf(s->err, s->errlen, "%s: bad segment header (offset 0)%s; refusing to start", path,
				    held ? " of a segment that holds data" : "");
				return -1;
			}
			/* Creation was cut short: the segment never held a record. */
			if (s->readonly) {
				snprintf(s->readonly->cut, sizeof(s->readonly->cut), "%s: incomplete segment (recovery removes it)",
					 path);
			} else {
				atp_log(ATP_LOG_WARN, "wal: %s: incomplete segment removed", path);
				unlink(path);
			}
			w->n_segs--;
			break;
		}
		/* A segment must start right after the previous one, unless a snapshot covers the hole. */
		uint64_t want = w->last_lsn + 1;
		bool covered = h.first_lsn > want && (h.first_lsn <= s->after + 1 || (s->readonly && i == 0));
		if (h.first_lsn != want && !covered) {
			atp_errf(s->err, s->errlen, "%s: missing segment: lsn %" PRIu64 " to %" PRIu64 " are absent; refusing to start",
			    path, want, h.first_lsn - 1);
			munmap((void *)m, size);
			close(fd);
			return -1;
		}
		if (h.first_lsn > want)
			w->last_lsn = h.first_lsn - 1;
		if (i == 0 && s->readonly)
			s->readonly->first_lsn = h.first_lsn;
		uint64_t tail;
		int rc = replay_segment(w, path, m, size, last, fmt, s, &tail);
		if (rc == 0 && s->cutting && !s->readonly) {
			munmap((void *)m, size);
			return cut_after(w, s, i, fd, path, tail, size, fmt);
		}
		uint64_t junk = rc == 0 && last ? first_nonzero(m, tail, size) : size;
		bool torn = junk < size;
		munmap((void *)m, size);
		char held[160] = "";
		if (s->cut_lsn)
			snprintf(held, sizeof(held), "; valid records up to lsn %" PRIu64 " follow it within one write "
				 "(a torn last write, or damage: they are lost with it)", s->cut_lsn);
		char at[64] = "";
		if (junk > tail)
			snprintf(at, sizeof(at), " (first non-zero byte at %" PRIu64 ")", junk);
		if (rc == 0 && torn && s->readonly) {
			snprintf(s->readonly->cut, sizeof(s->readonly->cut), "%s: torn tail at offset %" PRIu64 "%s (recovery cuts it)%s",
				 path, tail, at, held);
		} else if (rc == 0 && torn) {
			atp_log(ATP_LOG_WARN, "wal: %s: torn tail at offset %" PRIu64 "%s cut (%" PRIu64 " bytes zeroed)%s", path,
				tail, at, size - tail, held);
			rc = zero_tail(fd, tail, size);
			if (rc < 0)
				atp_errf(s->err, s->errlen, "%s: cannot cut the torn tail: %s", path, strerror(-rc));
		}
		/*
		 * What was replayed may still be only in the page cache (a process
		 * killed between its write and its fdatasync): make it durable
		 * before anything is built on it, such as a resend answered as a
		 * duplicate, or a group that has nothing new to write.
		 */
		if (rc == 0 && !s->readonly && tail > SEG_HEADER && atp_io_fdatasync(fd) < 0) {
			atp_errf(s->err, s->errlen, "%s: cannot make the replayed records durable: %s", path, strerror(errno));
			rc = -1;
		}
		if (rc < 0 || !last || s->readonly) {
			close(fd);
			if (rc < 0)
				return -1;
			continue;
		}
		w->fd = fd;
		w->seg_bytes = fmt == FMT_V3 ? size : tail;  /* appends never mix formats: the first one starts a new segment */
		w->pend_off = tail;
	}
	return 0;
}

atp_wal *atp_wal_open(const char *dir, const atp_wal_config *cfg, uint64_t after, atp_wal_replay_fn fn, void *ctx,
		      char *err, size_t errlen)
{
	return atp_wal_open_upto(dir, cfg, after, UINT64_MAX, fn, ctx, err, errlen);
}

atp_wal *atp_wal_open_upto(const char *dir, const atp_wal_config *cfg, uint64_t after, uint64_t upto,
			   atp_wal_replay_fn fn, void *ctx, char *err, size_t errlen)
{
	if (cfg->segment_bytes < (64u << 10) || cfg->segment_bytes % 4096 ||
	    cfg->buffer_bytes < rec_size(ATP_WAL_PAYLOAD_MAX) || cfg->buffer_bytes > cfg->segment_bytes - SEG_HEADER) {
		atp_errf(err, errlen, "bad WAL configuration");
		return NULL;
	}
	atp_wal *w = calloc(1, sizeof(*w));
	if (!w) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	w->fd = -1;
	w->cfg = *cfg;
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		atp_errf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->buf[0] = aligned_alloc(4096, cfg->buffer_bytes);
	w->buf[1] = aligned_alloc(4096, cfg->buffer_bytes);
	if (w->dirfd < 0 || !w->buf[0] || !w->buf[1]) {
		atp_errf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	scan s = { fn, ctx, after, err, errlen, NULL, 0, upto, false };
	if (list_segments(w, err, errlen) < 0 || recover(w, &s) < 0)
		goto fail;
	if (w->last_lsn < after || w->fd < 0) {
		/* No segment, or a snapshot beyond the last record: start a segment at after + 1. */
		if (w->last_lsn < after)
			w->last_lsn = after;
		int rc = new_segment(w, w->last_lsn + 1);
		if (rc < 0) {
			atp_errf(err, errlen, "%s: cannot create a segment: %s", dir, strerror(-rc));
			goto fail;
		}
	}
	return w;
fail:
	atp_wal_close(w);
	return NULL;
}

int atp_wal_scan(const char *dir, uint64_t after, atp_wal_replay_fn fn, void *ctx, atp_wal_scan_info *info, char *err,
		 size_t errlen)
{
	*info = (atp_wal_scan_info){ 0 };
	atp_wal *w = calloc(1, sizeof(*w));
	if (!w) {
		atp_errf(err, errlen, "out of memory");
		return -1;
	}
	w->fd = w->dirfd = -1;
	w->cfg = atp_wal_config_default();
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	scan s = { fn, ctx, after, err, errlen, info, 0, UINT64_MAX, false };
	int rc = list_segments(w, err, errlen) < 0 || recover(w, &s) < 0 ? -1 : 0;
	info->segments = w->n_segs;
	info->last_lsn = w->last_lsn;
	atp_wal_close(w);
	return rc;
}

void atp_wal_close(atp_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd > 0)
		close(w->dirfd);
	free(w->buf[0]);
	free(w->buf[1]);
	free(w->firsts);
	free(w);
}

uint64_t atp_wal_last_lsn(const atp_wal *w)
{
	return w->last_lsn;
}

int atp_wal_append(atp_wal *w, const void *payload, size_t len)
{
	return atp_wal_append_crc(w, payload, len, len <= ATP_WAL_PAYLOAD_MAX ? atp_crc32c(0, payload, len) : 0);
}

int atp_wal_append_crc(atp_wal *w, const void *payload, size_t len, uint32_t payload_crc)
{
	if (w->failed)
		return w->failed;
	if (len == 0 || len > ATP_WAL_PAYLOAD_MAX)
		return -EINVAL;
	uint32_t n = rec_size(len);
	if (w->pend_off + w->pend_len + n > w->seg_bytes) {
		if (w->pend_len || w->in_flight)
			return ATP_WAL_FLUSH_FIRST;
		int rc = new_segment(w, w->last_lsn + 1);
		if (rc < 0)
			return w->failed = rc;
	}
	if (w->pend_len + n > w->cfg.buffer_bytes)
		return ATP_WAL_FLUSH_FIRST;
	uint8_t *p = w->buf[w->cur] + w->pend_len;
	uint32_t len32 = (uint32_t)len;
	uint64_t lsn = w->last_lsn + 1;
	/* Framing, as recovery reads it back: 8-aligned records inside the segment, LSNs from its first on. */
	assert(w->pend_len % 8 == 0 && w->pend_off % 8 == 0 && w->pend_off + w->pend_len + n <= w->seg_bytes);
	assert(w->n_segs && lsn >= w->firsts[w->n_segs - 1]);
	/* The first record of a buffer is the first of a write: flagged, under the CRC, for recovery's torn-tail rule. */
	uint64_t field = w->pend_len == 0 ? lsn | WRITE_START : lsn;
	memcpy(p, &len32, 4);
	memcpy(p + 8, &field, 8);
	memcpy(p + REC_HEADER, payload, len);
	memset(p + REC_HEADER + len, 0, n - REC_HEADER - len);
	uint32_t crc = atp_crc32c_u64(payload_crc, field);
	memcpy(p + 4, &crc, 4);
	w->pend_len += n;
	w->last_lsn = lsn;
	return 0;
}

bool atp_wal_fits(const atp_wal *w, const size_t *lens, size_t n)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += rec_size(lens[i]);
	if (w->pend_len + bytes > w->cfg.buffer_bytes)
		return false;
	return w->pend_off + w->pend_len + bytes <= w->seg_bytes || (!w->pend_len && !w->in_flight);
}

uint32_t atp_wal_pending(const atp_wal *w)
{
	return w->pend_len;
}

bool atp_wal_in_flight(const atp_wal *w)
{
	return w->in_flight;
}

bool atp_wal_flush_begin(atp_wal *w, atp_wal_write *out)
{
	if (w->in_flight || w->pend_len == 0 || w->failed)
		return false;
	assert(w->pend_off >= SEG_HEADER && w->pend_off + w->pend_len <= w->seg_bytes);
	*out = (atp_wal_write){ .fd = w->fd, .offset = w->pend_off, .buf = w->buf[w->cur], .len = w->pend_len };
	w->in_flight = true;
	w->flight_len = w->pend_len;
	w->pend_off += w->pend_len;
	w->pend_len = 0;
	w->cur ^= 1;
	return true;
}

int atp_wal_flush_end(atp_wal *w, int write_res, int fsync_res)
{
	w->in_flight = false;
	if (write_res < 0)
		return w->failed = write_res;
	if ((uint32_t)write_res != w->flight_len)
		return w->failed = -EIO;
	if (fsync_res < 0)
		return w->failed = fsync_res;
	return 0;
}

int atp_wal_sync(atp_wal *w)
{
	atp_wal_write wr;
	if (w->in_flight)
		return -EBUSY;
	if (!atp_wal_flush_begin(w, &wr))
		return w->failed;
	uint32_t done = 0;
	while (done < wr.len) {
		ssize_t k = atp_io_pwrite(wr.fd, wr.buf + done, wr.len - done, (off_t)(wr.offset + done));
		if (k <= 0)
			return atp_wal_flush_end(w, k < 0 ? -errno : -EIO, 0);
		done += (uint32_t)k;
	}
	return atp_wal_flush_end(w, (int)done, atp_io_fdatasync(wr.fd) < 0 ? -errno : 0);
}

int atp_wal_trim(atp_wal *w, uint64_t lsn)
{
	uint32_t k = 0;
	while (k + 1 < w->n_segs && w->firsts[k + 1] <= lsn + 1) {
		char path[PATH_MAX];
		seg_path(w, w->firsts[k], path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			break;
		k++;
	}
	if (k) {
		memmove(w->firsts, w->firsts + k, (w->n_segs - k) * sizeof(uint64_t));
		w->n_segs -= k;
		/* The unlinks need not be durable (a segment found again is trimmed again), but say so when it fails. */
		if (fsync(w->dirfd) < 0)
			atp_log(ATP_LOG_WARN, "wal: %s: fsync of the directory after a trim: %s", w->dir, strerror(errno));
	}
	return (int)k;
}

uint32_t atp_wal_segments(const atp_wal *w)
{
	return w->n_segs;
}
