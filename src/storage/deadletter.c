/* deadletter.c — the dead-letter store (see atp/deadletter.h). */
#include "atp/deadletter.h"

#include "atp/crc32c.h"
#include "atp/limits.h"
#include "atp/log.h"
#include "atp/status.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "ATPDLQ1\n"
/* Payload: id, arrival_ms, seq (u64), code (i32), source and id lengths (u8), event length (u32), then the bytes. */
#define FIXED 34u
#define PAYLOAD_MAX (FIXED + ATP_SOURCE_MAX + ATP_EVENT_KEY_MAX + ATP_DLQ_EVENT_MAX)

struct atp_dlq {
	int fd;
	bool read_only, failed;
	uint64_t end;               /* bytes of the file that hold good records */
	uint32_t n, cap, max;       /* entries held, room for, and the bound on adding */
	atp_dlq_entry *e;           /* n entries; e[i] points into payload[i] */
	uint8_t **payload;
	uint8_t *pending;           /* records added since the last sync */
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

/* Decode payload p (len bytes, owned by the store from now on) into entry e; false when it is not one. */
static bool decode(uint8_t *p, uint32_t len, atp_dlq_entry *e)
{
	const uint8_t *r = p;
	uint8_t sl, il;
	if (len < FIXED)
		return false;
	take(&r, &e->id, 8);
	take(&r, &e->arrival_ms, 8);
	take(&r, &e->seq, 8);
	take(&r, &e->code, 4);
	take(&r, &sl, 1);
	take(&r, &il, 1);
	take(&r, &e->event_len, 4);
	if (sl == 0 || sl > ATP_SOURCE_MAX || il > ATP_EVENT_KEY_MAX || e->event_len > ATP_DLQ_EVENT_MAX ||
	    FIXED + sl + il + e->event_len != len)
		return false;
	e->source = atp_str_of((const char *)r, sl);
	e->event_id = atp_str_of(il ? (const char *)r + sl : NULL, il);
	e->event = r + sl + il;
	return true;
}

/* Keep payload (malloc'd, len bytes) as the next entry; false (payload freed) when it is not a good one. */
static bool keep(atp_dlq *q, uint8_t *payload, uint32_t len)
{
	atp_dlq_entry e;
	if (!decode(payload, len, &e) || e.id != (q->n ? q->e[q->n - 1].id + 1 : 1)) {
		free(payload);
		return false;
	}
	if (q->n == q->cap) { /* a file may hold more than the bound (it was lowered): every entry is kept */
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		atp_dlq_entry *es = realloc(q->e, cap * sizeof(*es));
		if (es)
			q->e = es;
		uint8_t **ps = es ? realloc(q->payload, cap * sizeof(*ps)) : NULL;
		if (!ps) {
			free(payload);
			return false;
		}
		q->payload = ps;
		q->cap = cap;
	}
	q->payload[q->n] = payload;
	q->e[q->n++] = e;
	return true;
}

/* Read the file's records into q; cut a bad tail (unless read-only). 0 or -1 with err. */
static int load(atp_dlq *q, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(q->fd, &st) < 0) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size, off = 8;
	uint8_t head[8];
	if (size == 0) {
		if (q->read_only)
			return 0;
		if (pwrite(q->fd, MAGIC, 8, 0) != 8 || fdatasync(q->fd) < 0) {
			atp_errf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		q->end = 8;
		return 0;
	}
	if (size < 8 || pread(q->fd, head, 8, 0) != 8 || memcmp(head, MAGIC, 8) != 0) {
		atp_errf(err, errlen, "%s: not a dead-letter store (no magic)", path);
		return -1;
	}
	while (off + 8 <= size) {
		uint32_t hdr[2];
		if (pread(q->fd, hdr, 8, (off_t)off) != 8 || hdr[0] > PAYLOAD_MAX || off + 8 + hdr[0] > size)
			break;
		uint8_t *p = malloc(hdr[0] ? hdr[0] : 1);
		if (!p) {
			atp_errf(err, errlen, "%s: no memory", path);
			return -1;
		}
		if (pread(q->fd, p, hdr[0], (off_t)(off + 8)) != (ssize_t)hdr[0] || atp_crc32c(0, p, hdr[0]) != hdr[1]) {
			free(p);
			break;
		}
		if (!keep(q, p, hdr[0]))
			break; /* keep() freed it: not an entry (or no memory) */
		off += 8 + hdr[0];
	}
	q->end = off;
	if (off < size) {
		atp_log(ATP_LOG_WARN, "deadletter: %s: a torn or damaged record at offset %" PRIu64 "; %" PRIu64
			" bytes from there %s", path, off, size - off, q->read_only ? "not read" : "cut");
		if (!q->read_only && (ftruncate(q->fd, (off_t)off) < 0 || fdatasync(q->fd) < 0)) {
			atp_errf(err, errlen, "%s: cutting the damaged tail: %s", path, strerror(errno));
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
	q->max = max;
	q->read_only = read_only;
	q->fd = open(path, read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (q->fd < 0) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto free_store;
	}
	if (load(q, path, err, errlen) < 0)
		goto close_file;
	return q;
close_file:
	close(q->fd);
free_store:
	q->fd = -1;
	atp_dlq_close(q);
	return NULL;
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

int atp_dlq_add(atp_dlq *q, uint64_t arrival_ms, atp_str source, uint64_t seq, int32_t code, atp_str event_id,
		const uint8_t *event, uint32_t event_len, uint64_t *id)
{
	if (q->read_only)
		return -EROFS;
	if (q->failed)
		return -EIO;
	if (q->n >= q->max)
		return -ENOSPC;
	if (source.len == 0 || source.len > ATP_SOURCE_MAX || event_id.len > ATP_EVENT_KEY_MAX ||
	    event_len > ATP_DLQ_EVENT_MAX)
		return -EINVAL;
	uint32_t len = FIXED + source.len + event_id.len + event_len;
	if (q->pending_len + 8 + len > q->pending_cap) {
		size_t cap = q->pending_cap ? q->pending_cap * 2 : 64 * 1024;
		while (cap < q->pending_len + 8 + len)
			cap *= 2;
		uint8_t *bigger = realloc(q->pending, cap);
		if (!bigger)
			return -ENOMEM;
		q->pending = bigger;
		q->pending_cap = cap;
	}
	uint8_t *payload = malloc(len);
	if (!payload)
		return -ENOMEM;
	uint64_t next = q->n ? q->e[q->n - 1].id + 1 : 1;
	uint8_t sl = (uint8_t)source.len, il = (uint8_t)event_id.len, *w = payload;
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
	uint32_t hdr[2] = { len, atp_crc32c(0, payload, len) };
	memcpy(q->pending + q->pending_len, hdr, 8);
	memcpy(q->pending + q->pending_len + 8, payload, len);
	bool kept = keep(q, payload, len);
	assert(kept); /* what was just encoded decodes */
	(void)kept;
	q->pending_len += 8 + len;
	*id = next;
	return 0;
}

int atp_dlq_sync(atp_dlq *q)
{
	if (q->failed)
		return -EIO;
	if (q->pending_len == 0)
		return 0;
	ssize_t w = pwrite(q->fd, q->pending, q->pending_len, (off_t)q->end);
	int rc = w == (ssize_t)q->pending_len ? fdatasync(q->fd) : -1;
	if (rc < 0 || w != (ssize_t)q->pending_len) {
		q->failed = true; /* as with the WAL: after a failed write or fsync nothing can tell what is on disk */
		return w < 0 || rc < 0 ? -errno : -EIO;
	}
	q->end += q->pending_len;
	q->pending_len = 0;
	return 0;
}

uint32_t atp_dlq_count(const atp_dlq *q)
{
	return q->n;
}

const atp_dlq_entry *atp_dlq_at(const atp_dlq *q, uint32_t i)
{
	return i < q->n ? &q->e[i] : NULL;
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
