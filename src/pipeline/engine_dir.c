/* engine_dir.c — the engine's data directory: its lock, meta, identity and sources files (see engine_router.h). */
#define _GNU_SOURCE
#include "engine_router.h"
#include "atp/log.h"
#include "atp/faultio.h"
#include "atp/status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META "atpd data 1\nshards %u\n"

int atp_engine_dir_shards(const char *dir, uint32_t *shards, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/meta", dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	unsigned n = 0;
	int ok = fscanf(f, META, &n) == 1 && n >= 1 && n <= ATP_ENGINE_SHARDS_MAX;
	fclose(f);
	if (!ok) {
		atp_errf(err, errlen, "%s: not an atpd data directory file", path);
		return -1;
	}
	*shards = n;
	return 0;
}

void atp_engine_shard_dir(const char *dir, uint32_t index, char *out, size_t n)
{
	snprintf(out, n, "%s/shard-%03u", dir, index);
}

/* The shard count of dir: read from dir/meta, or written there for a new directory. */
int pipe_dir_shards(const char *dir, uint32_t want, uint32_t *shards, char *err, size_t errlen)
{
	int rc = atp_engine_dir_shards(dir, shards, err, errlen);
	if (rc == 0 && *shards != want)
		atp_log(ATP_LOG_INFO, "%s has %u shards (fixed at creation); using them", dir, *shards);
	if (rc <= 0)
		return rc;
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/meta", dir);
	snprintf(tmp, sizeof(tmp), "%s/meta.tmp", dir);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, META, want) < 0 || fflush(f) || atp_io_fsync(fileno(f)) ||
	    fclose(f) || atp_io_rename(tmp, path)) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*shards = want;
	return 0;
}

/* The directory's identity: read from dir/identity, or drawn at random and written there (atomically). */
int pipe_dir_identity(const char *dir, uint8_t id[32], char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], hex[65] = { 0 };
	snprintf(path, sizeof(path), "%s/identity", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		bool ok = fread(hex, 1, 64, f) == 64;
		fclose(f);
		for (int i = 0; ok && i < 32; i++) {
			unsigned b;
			ok = sscanf(hex + 2 * i, "%2x", &b) == 1;
			id[i] = (uint8_t)b;
		}
		if (!ok)
			atp_errf(err, errlen, "%s: not 64 hex digits", path);
		return ok ? 0 : -1;
	}
	if (getentropy(id, 32) < 0) {
		atp_errf(err, errlen, "getentropy: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	snprintf(tmp, sizeof(tmp), "%s/identity.tmp", dir);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", hex) < 0 || fflush(f) || atp_io_fsync(fileno(f)) || fclose(f) || atp_io_rename(tmp, path)) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Data directories this process holds: POSIX locks do not exclude the
 * process itself, so a second engine on one directory is refused here.
 */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	dev_t dev;
	ino_t ino;
} held[64];

/* take: record st as held (false if it already is, or the list is full); else forget it. */
static bool hold(const struct stat *st, bool take)
{
	size_t n = sizeof(held) / sizeof(held[0]), free_slot = n;
	bool ok = true;
	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < n; i++) {
		if (held[i].dev == st->st_dev && held[i].ino == st->st_ino) {
			if (take)
				ok = false;
			else
				held[i] = (struct held){ 0, 0 };
			goto out;
		}
		if (free_slot == n && held[i].dev == 0 && held[i].ino == 0)
			free_slot = i;
	}
	if (take && free_slot < n)
		held[free_slot] = (struct held){ st->st_dev, st->st_ino };
	ok = !take || free_slot < n;
out:
	pthread_mutex_unlock(&held_lock);
	return ok;
}

/*
 * A POSIX record lock on DIR/LOCK: it belongs to this process, so a
 * snapshot child forked from it does not hold it, and it goes when the
 * process dies, however it dies.
 */
int pipe_dir_lock(atp_engine *e, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	snprintf(path, sizeof(path), "%s/LOCK", e->dir);
	e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (e->lock_fd < 0 || fstat(e->lock_fd, &e->lock_st) < 0) {
		atp_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!hold(&e->lock_st, true)) {
		atp_errf(err, errlen, "%s: another atpd holds this data directory (this process)", path);
		close(e->lock_fd);
		e->lock_fd = -1;
		return -1;
	}
	if (fcntl(e->lock_fd, F_SETLK, &fl) < 0) {
		atp_errf(err, errlen, "%s: %s", path,
		    errno == EACCES || errno == EAGAIN ? "another atpd holds this data directory" : strerror(errno));
		hold(&e->lock_st, false);
		close(e->lock_fd);
		e->lock_fd = -1;
		return -1;
	}
	return 0;
}

/* The router's durable seq per source, written atomically: "seq name" per line. */
int pipe_dir_write_sources(atp_engine *e)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/sources", e->dir);
	snprintf(tmp, sizeof(tmp), "%s/sources.tmp", e->dir);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	for (uint32_t i = 0; i < atp_sources_count(e->sources); i++)
		fprintf(f, "%" PRIu64 " %s\n", e->rs[i].durable, atp_sources_get(e->sources, i)->name);
	int rc = fflush(f) || atp_io_fsync(fileno(f)) ? -errno : 0;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && atp_io_rename(tmp, path) < 0)
		rc = -errno;
	e->sources_dirty = false;
	e->sources_written_ns = pipe_router_ns(e);
	return rc;
}

int pipe_dir_read_sources(atp_engine *e, char *err, size_t errlen)
{
	char path[PATH_MAX], line[256];
	snprintf(path, sizeof(path), "%s/sources", e->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/* "SEQ NAME\n": the name is the rest of the line (it may hold spaces, never a control byte). */
		char *end, *nl = strchr(line, '\n');
		uint64_t seq = strtoull(line, &end, 10);
		atp_str name = atp_str_of(end + 1, nl && end < nl ? (size_t)(nl - end - 1) : 0);
		uint32_t id;
		if (end == line || *end != ' ' || !nl || !atp_str_valid(name, ATP_SOURCE_MAX) ||
		    atp_sources_find(e->sources, name) != ATP_SOURCE_NONE ||
		    (id = atp_sources_intern(e->sources, name)) == ATP_SOURCE_NONE) {
			atp_errf(err, errlen, "%s: bad line: %s", path, line);
			fclose(f);
			return -1;
		}
		atp_sources_at(e->sources, id)->hwm = seq;
		e->rs[id].durable = seq;
	}
	fclose(f);
	return 0;
}

void pipe_dir_unlock(atp_engine *e)
{
	if (e->lock_fd < 0)
		return;
	hold(&e->lock_st, false);
	close(e->lock_fd);
	e->lock_fd = -1;
}
