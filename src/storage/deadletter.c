/* deadletter.c — the dead-letter store (see atp/deadletter.h). */
#include "atp/deadletter.h"

#include "atp/crc32c.h"
#include "atp/faultio.h"
#include "atp/limits.h"
#include "atp/log.h"
#include "atp/status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "ATPDLQ1\n"
/*
 * Payloads, by their first byte:
 *   ENTRY:   kind, id, arrival_ms, seq (u64), code (i32), source and id lengths (u8), event length (u32), the bytes;
 *   REDRIVE: kind, id, seq (u64) of the redrive source, shard (u32);
 *   UNDO:    kind, id (its redrive was refused by the shard: held again);
 *   NEXT:    kind, the next id (u64): first in a purged store, so that ids are never used twice.
 */
enum { K_ENTRY = 1, K_REDRIVE = 2, K_UNDO = 3, K_NEXT = 4 };
#define FIXED 35u
#define PAYLOAD_MAX (FIXED + ATP_SOURCE_MAX + ATP_EVENT_KEY_MAX + ATP_DLQ_EVENT_MAX)

struct atp_dlq {
	int fd;
	char path[PATH_MAX];
	bool read_only, failed;
	uint64_t end;               /* bytes of the file that hold good records */
	uint64_t next_id;
	uint32_t n, cap, max;       /* entries held, room for, and the bound on adding */
	atp_dlq_entry *e;           /* n entries, in id order; e[i] points into payload[i] */
	uint8_t **payload;
	uint8_t *pending;           /* records appended since the last sync */
	size_t pending_len, pending_cap;
};

static void put(uint8_t **p, const void *v, size_t n)
{
	memcpy(*p, v, n);
	*p += n;
}

static void take(const uint8_t **p, void *v, size_t n)
{
	memcpy(v, *p, n);
	*p += n;
}

/* An ENTRY payload into e (pointing into p); false when it is not one. */
static bool decode_entry(const uint8_t *p, uint32_t len, atp_dlq_entry *e)
{
	const uint8_t *r = p + 1;
	uint8_t sl, il;
	if (len < FIXED || p[0] != K_ENTRY)
		return false;
	*e = (atp_dlq_entry){ 0 };
	take(&r, &e->id, 8);
	take(&r, &e->arrival_ms, 8);
	take(&r, &e->seq, 8);
	take(&r, &e->code, 4);
	take(&r, &sl, 1);
	take(&r, &il, 1);
	take(&r, &e->event_len, 4);
	if (e->id == 0 || sl == 0 || sl > ATP_SOURCE_MAX || il > ATP_EVENT_KEY_MAX || e->event_len > ATP_DLQ_EVENT_MAX ||
	    FIXED + sl + il + e->event_len != len)
		return false;
	e->source = atp_str_of((const char *)r, sl);
	e->event_id = atp_str_of(il ? (const char *)r + sl : NULL, il);
	e->event = r + sl + il;
	return true;
}

static atp_dlq_entry *by_id(const atp_dlq *q, uint64_t id)
{
	uint32_t lo = 0, hi = q->n; /* ids increase with the index */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (q->e[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->n && q->e[lo].id == id ? &q->e[lo] : NULL;
}

/* Keep an ENTRY payload (malloc'd) as the newest entry: 0, or -EINVAL (payload freed) or -ENOMEM. */
static int keep(atp_dlq *q, uint8_t *payload, uint32_t len)
{
	atp_dlq_entry e;
	if (!decode_entry(payload, len, &e) || (q->n && e.id <= q->e[q->n - 1].id)) {
		free(payload);
		return -EINVAL;
	}
	if (q->n == q->cap) { /* a file may hold more than the bound (it was lowered): every entry is kept */
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		atp_dlq_entry *es = realloc(q->e, cap * sizeof(*es));
		if (es)
			q->e = es;
		uint8_t **ps = es ? realloc(q->payload, cap * sizeof(*ps)) : NULL;
		if (!ps) {
			free(payload);
			return -ENOMEM;
		}
		q->payload = ps;
		q->cap = cap;
	}
	q->payload[q->n] = payload;
	q->e[q->n++] = e;
	if (e.id >= q->next_id)
		q->next_id = e.id + 1;
	return 0;
}

/* Apply a payload read from the file (malloc'd; kept or freed here): 0, -EINVAL (not a record) or -ENOMEM. */
static int apply(atp_dlq *q, uint8_t *p, uint32_t len)
{
	if (len && p[0] == K_ENTRY)
		return keep(q, p, len);
	const uint8_t *r = p + 1;
	uint64_t id = 0, seq = 0;
	uint32_t shard = 0;
	uint8_t kind = len ? p[0] : 0;
	int rc = -EINVAL;
	if ((kind == K_REDRIVE && len == 21) || (kind == K_UNDO && len == 9) || (kind == K_NEXT && len == 9)) {
		take(&r, &id, 8);
		rc = 0;
	}
	if (kind == K_REDRIVE && rc == 0) {
		take(&r, &seq, 8);
		take(&r, &shard, 4);
	}
	free(p);
	if (rc)
		return rc;
	if (kind == K_NEXT) {
		if (id < q->next_id)
			return -EINVAL;
		q->next_id = id; /* first in a purged store: ids below it were used */
		return 0;
	}
	atp_dlq_entry *e = by_id(q, id);
	if (!e || (kind == K_REDRIVE && seq == 0))
		return -EINVAL;
	e->redrive_seq = kind == K_REDRIVE ? seq : 0;
	e->redrive_shard = kind == K_REDRIVE ? shard : 0;
	return 0;
}

/* Read the file's records into q; cut a bad tail (unless read-only). 0 or -1 with err. */
static int load(atp_dlq *q, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(q->fd, &st) < 0) {
		atp_errf(err, errlen, "%s: %s", q->path, strerror(errno));
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size, off = 8;
	uint8_t head[8];
	if (size == 0) {
		if (q->read_only)
			return 0;
		if (atp_io_pwrite(q->fd, MAGIC, 8, 0) != 8 || atp_io_fdatasync(q->fd) < 0) {
			atp_errf(err, errlen, "%s: %s", q->path, strerror(errno));
			return -1;
		}
		q->end = 8;
		return 0;
	}
	if (size < 8 || pread(q->fd, head, 8, 0) != 8 || memcmp(head, MAGIC, 8) != 0) {
		atp_errf(err, errlen, "%s: not a dead-letter store (no magic)", q->path);
		return -1;
	}
	while (off + 8 <= size) {
		uint32_t hdr[2];
		if (pread(q->fd, hdr, 8, (off_t)off) != 8 || hdr[0] == 0 || hdr[0] > PAYLOAD_MAX || off + 8 + hdr[0] > size)
			break;
		uint8_t *p = malloc(hdr[0]);
		if (!p) {
			atp_errf(err, errlen, "%s: no memory", q->path);
			return -1;
		}
		if (pread(q->fd, p, hdr[0], (off_t)(off + 8)) != (ssize_t)hdr[0] || atp_crc32c(0, p, hdr[0]) != hdr[1]) {
			free(p);
			break;
		}
		int rc = apply(q, p, hdr[0]);
		if (rc == -ENOMEM) {
			atp_errf(err, errlen, "%s: no memory", q->path);
			return -1;
		}
		if (rc)
			break;
		off += 8 + hdr[0];
	}
	q->end = off;
	if (off < size) {
		atp_log(ATP_LOG_WARN, "deadletter: %s: a torn or damaged record at offset %" PRIu64 "; %" PRIu64
			" bytes from there %s", q->path, off, size - off, q->read_only ? "not read" : "cut");
		if (!q->read_only && (ftruncate(q->fd, (off_t)off) < 0 || atp_io_fdatasync(q->fd) < 0)) {
			atp_errf(err, errlen, "%s: cutting the damaged tail: %s", q->path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

atp_dlq *atp_dlq_open(const char *path, uint32_t max, bool read_only, char *err, size_t errlen)
{
	atp_dlq *q = calloc(1, sizeof(*q));
	if (!q) {
		atp_errf(err, errlen, "%s: no memory", path);
		return NULL;
	}
	snprintf(q->path, sizeof(q->path), "%s", path);
	q->max = max;
	q->read_only = read_only;
	q->next_id = 1;
	q->fd = open(path, read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (q->fd < 0) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		atp_dlq_close(q);
		return NULL;
	}
	if (load(q, err, errlen) < 0) {
		atp_dlq_close(q);
		return NULL;
	}
	return q;
}

void atp_dlq_close(atp_dlq *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	for (uint32_t i = 0; i < q->n; i++)
		free(q->payload[i]);
	free(q->payload);
	free(q->e);
	free(q->pending);
	free(q);
}

/* Room for len more pending bytes: 0 or -ENOMEM. */
static int reserve(atp_dlq *q, size_t len)
{
	if (q->pending_len + len <= q->pending_cap)
		return 0;
	size_t cap = q->pending_cap ? q->pending_cap * 2 : 64 * 1024;
	while (cap < q->pending_len + len)
		cap *= 2;
	uint8_t *bigger = realloc(q->pending, cap);
	if (!bigger)
		return -ENOMEM;
	q->pending = bigger;
	q->pending_cap = cap;
	return 0;
}

/* Append a record (payload of len bytes) to the pending ones; room was reserved. */
static void append(atp_dlq *q, const uint8_t *payload, uint32_t len)
{
	uint32_t hdr[2] = { len, atp_crc32c(0, payload, len) };
	memcpy(q->pending + q->pending_len, hdr, 8);
	memcpy(q->pending + q->pending_len + 8, payload, len);
	q->pending_len += 8 + len;
}

static int writable(const atp_dlq *q)
{
	return q->read_only ? -EROFS : q->failed ? -EIO : 0;
}

int atp_dlq_add(atp_dlq *q, uint64_t arrival_ms, atp_str source, uint64_t seq, int32_t code, atp_str event_id,
		const uint8_t *event, uint32_t event_len, uint64_t *id)
{
	int rc = writable(q);
	if (rc)
		return rc;
	if (q->n >= q->max)
		return -ENOSPC;
	if (source.len == 0 || source.len > ATP_SOURCE_MAX || event_id.len > ATP_EVENT_KEY_MAX ||
	    event_len > ATP_DLQ_EVENT_MAX)
		return -EINVAL;
	uint32_t len = FIXED + source.len + event_id.len + event_len;
	uint8_t *payload = malloc(len);
	if (!payload || reserve(q, 8 + len) < 0) {
		free(payload);
		return -ENOMEM;
	}
	uint64_t next = q->next_id;
	uint8_t kind = K_ENTRY, sl = (uint8_t)source.len, il = (uint8_t)event_id.len, *w = payload;
	put(&w, &kind, 1);
	put(&w, &next, 8);
	put(&w, &arrival_ms, 8);
	put(&w, &seq, 8);
	put(&w, &code, 4);
	put(&w, &sl, 1);
	put(&w, &il, 1);
	put(&w, &event_len, 4);
	put(&w, source.ptr, sl);
	if (il)
		put(&w, event_id.ptr, il);
	if (event_len)
		put(&w, event, event_len);
	append(q, payload, len);
	rc = keep(q, payload, len);
	assert(rc == 0 || rc == -ENOMEM); /* what was just encoded decodes */
	if (rc) {
		q->pending_len -= 8 + len;
		return rc;
	}
	*id = next;
	return 0;
}

int atp_dlq_mark_redrive(atp_dlq *q, uint64_t id, uint64_t seq, uint32_t shard)
{
	int rc = writable(q);
	atp_dlq_entry *e = by_id(q, id);
	if (rc)
		return rc;
	if (!e || seq == 0)
		return !e ? -ENOENT : -EINVAL;
	if (reserve(q, 8 + 21) < 0)
		return -ENOMEM;
	uint8_t p[21], *w = p, kind = K_REDRIVE;
	put(&w, &kind, 1);
	put(&w, &id, 8);
	put(&w, &seq, 8);
	put(&w, &shard, 4);
	append(q, p, sizeof(p));
	e->redrive_seq = seq;
	e->redrive_shard = shard;
	return 0;
}

int atp_dlq_unmark(atp_dlq *q, uint64_t id)
{
	int rc = writable(q);
	atp_dlq_entry *e = by_id(q, id);
	if (rc)
		return rc;
	if (!e)
		return -ENOENT;
	if (reserve(q, 8 + 9) < 0)
		return -ENOMEM;
	uint8_t p[9], kind = K_UNDO;
	p[0] = kind;
	memcpy(p + 1, &id, 8);
	append(q, p, sizeof(p));
	e->redrive_seq = 0;
	e->redrive_shard = 0;
	return 0;
}

int atp_dlq_sync(atp_dlq *q)
{
	int rc = writable(q);
	if (rc || q->pending_len == 0)
		return rc;
	ssize_t w = atp_io_pwrite(q->fd, q->pending, q->pending_len, (off_t)q->end);
	int sync_rc = w == (ssize_t)q->pending_len ? atp_io_fdatasync(q->fd) : -1;
	if (w != (ssize_t)q->pending_len || sync_rc < 0) {
		int why = w < 0 || sync_rc < 0 ? errno : EIO;
		q->failed = true; /* as with the WAL: after a failed write or fsync nothing can tell what is on disk */
		return -why;
	}
	q->end += q->pending_len;
	q->pending_len = 0;
	return 0;
}

/* Write one record to fd at *off: 0 or -errno. */
static int write_record(int fd, uint64_t *off, const uint8_t *payload, uint32_t len)
{
	uint32_t hdr[2] = { len, atp_crc32c(0, payload, len) };
	if (atp_io_pwrite(fd, hdr, 8, (off_t)*off) != 8 || atp_io_pwrite(fd, payload, len, (off_t)(*off + 8)) != (ssize_t)len)
		return errno ? -errno : -EIO;
	*off += 8 + len;
	return 0;
}

int atp_dlq_purge(atp_dlq *q, bool (*drop)(void *ctx, const atp_dlq_entry *e), void *ctx, char *err, size_t errlen)
{
	int rc = writable(q);
	if (rc == 0 && q->pending_len)
		rc = -EBUSY; /* sync first */
	if (rc) {
		atp_errf(err, errlen, "%s: %s", q->path, strerror(-rc));
		return rc;
	}
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", q->path);
	int fd = atp_io_create(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		rc = -errno;
		atp_errf(err, errlen, "%s: %s", tmp, strerror(errno));
		return rc;
	}
	bool *gone = calloc(q->n ? q->n : 1, sizeof(bool));
	if (!gone) {
		close(fd);
		unlink(tmp);
		atp_errf(err, errlen, "%s: no memory", q->path);
		return -ENOMEM;
	}
	/* The kept entries, each with its redrive mark, after the next id. */
	uint64_t off = 8;
	uint8_t next[9] = { K_NEXT };
	memcpy(next + 1, &q->next_id, 8);
	rc = atp_io_pwrite(fd, MAGIC, 8, 0) == 8 ? write_record(fd, &off, next, 9) : -EIO;
	uint32_t kept = 0, dropped = 0;
	for (uint32_t i = 0; i < q->n && rc == 0; i++) {
		const atp_dlq_entry *e = &q->e[i];
		if ((gone[i] = drop(ctx, e))) {
			dropped++;
			continue;
		}
		uint32_t len = FIXED + e->source.len + e->event_id.len + e->event_len;
		rc = write_record(fd, &off, q->payload[i], len);
		if (rc == 0 && e->redrive_seq) {
			uint8_t p[21], *w = p, kind = K_REDRIVE;
			put(&w, &kind, 1);
			put(&w, &e->id, 8);
			put(&w, &e->redrive_seq, 8);
			put(&w, &e->redrive_shard, 4);
			rc = write_record(fd, &off, p, sizeof(p));
		}
		kept++;
	}
	if (rc == 0 && (atp_io_fdatasync(fd) < 0 || atp_io_rename(tmp, q->path) < 0))
		rc = -errno;
	if (rc == 0) { /* the directory holds the new name durably */
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", q->path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || atp_io_fsync(dfd) < 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (rc) {
		atp_errf(err, errlen, "%s: purging: %s", q->path, strerror(-rc));
		free(gone);
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(q->fd);
	q->fd = fd;
	q->end = off;
	uint32_t j = 0;
	for (uint32_t i = 0; i < q->n; i++) {
		if (gone[i]) {
			free(q->payload[i]);
			continue;
		}
		q->e[j] = q->e[i];
		q->payload[j++] = q->payload[i];
	}
	assert(j == kept);
	q->n = j;
	free(gone);
	return (int)dropped;
}

uint32_t atp_dlq_count(const atp_dlq *q)
{
	return q->n;
}

const atp_dlq_entry *atp_dlq_at(const atp_dlq *q, uint32_t i)
{
	return i < q->n ? &q->e[i] : NULL;
}

const atp_dlq_entry *atp_dlq_get(const atp_dlq *q, uint64_t id)
{
	return by_id(q, id);
}

uint32_t atp_dlq_capacity(const atp_dlq *q)
{
	return q->max;
}

const atp_dlq_entry *atp_dlq_find(const atp_dlq *q, atp_str source, uint64_t seq)
{
	for (uint32_t i = q->n; i-- > 0;)
		if (q->e[i].seq == seq && q->e[i].source.len == source.len &&
		    memcmp(q->e[i].source.ptr, source.ptr, source.len) == 0)
			return &q->e[i];
	return NULL;
}
