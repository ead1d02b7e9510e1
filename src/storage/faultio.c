/* faultio.c — storage I/O wrappers and the fault plan tests inject through them (see atp/faultio.h). */
#define _GNU_SOURCE
#include "atp/faultio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { ACT_NONE, ACT_CRASH, ACT_FAIL, ACT_SHORT, ACT_POWER };

/*
 * Under a power plan or the simulator: what each write since its file's
 * last completed fsync overwrote, to be undone page by page. The file is
 * known by its inode and reached through a descriptor of our own, so that
 * closing, renaming or reusing the writer's descriptor changes nothing.
 */
typedef struct unsynced {
	int fd;  /* a dup of the writer's */
	dev_t dev;
	ino_t ino;
	off_t off;
	size_t len;
	uint8_t *before;  /* len bytes: the file's content there before the write (zeros past its end) */
} unsynced;

static const char *const op_names[ATP_IO_OPS] = { "write", "fsync", "open", "rename", "fallocate" };

static struct {
	pthread_once_t once;
	bool armed;
	int action, op, err;
	unsigned long long nth;
	long long bytes;  /* -1: half */
	const char *count_path;
	_Atomic unsigned long long calls[ATP_IO_OPS];
	_Atomic int cut_fd;    /* a power plan's fsync was reached before its write was made: cut once it is */
	pthread_mutex_t lock;  /* the unsynced writes */
	unsynced *pending;
	size_t n_pending, cap_pending;
	atp_fault_decide_fn decide;  /* the simulator's, in place of a plan */
	void *decide_ctx;
} plan = { .once = PTHREAD_ONCE_INIT, .cut_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static int errno_of(const char *name)
{
	static const struct { const char *name; int err; } known[] = {
		{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT }, { "EROFS", EROFS },
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i].name) == 0)
			return known[i].err;
	return 0;
}

static void write_counts(void)
{
	FILE *f = fopen(plan.count_path, "a");
	if (!f)
		return;
	for (int i = 0; i < ATP_IO_OPS; i++)
		fprintf(f, "%s %llu\n", op_names[i], (unsigned long long)atomic_load(&plan.calls[i]));
	fclose(f);
}

/* A plan that does not parse is a test's mistake: say so and stop rather than run without it. */
static void bad_plan(const char *spec)
{
	fprintf(stderr, "atpd: ATP_FAULT=%s: expected crash|fail|short|power:OP:N[:ARG]\n", spec);
	exit(2);
}

static void load_plan(void)
{
	plan.count_path = getenv("ATP_FAULT_COUNT");
	if (plan.count_path)
		atexit(write_counts);
	const char *spec = getenv("ATP_FAULT");
	plan.armed = plan.count_path || spec;
	if (!spec)
		return;
	char act[16], op[16], arg[16] = "";
	if (sscanf(spec, "%15[a-z]:%15[a-z]:%llu:%15s", act, op, &plan.nth, arg) < 3 || plan.nth == 0)
		bad_plan(spec);
	plan.action = strcmp(act, "crash") == 0 ? ACT_CRASH : strcmp(act, "fail") == 0 ? ACT_FAIL
		    : strcmp(act, "short") == 0 ? ACT_SHORT : strcmp(act, "power") == 0 ? ACT_POWER : ACT_NONE;
	plan.op = -1;
	for (int i = 0; i < ATP_IO_OPS; i++)
		if (strcmp(op, op_names[i]) == 0)
			plan.op = i;
	char *end;
	plan.bytes = strcmp(arg, "half") == 0 ? -1 : strtoll(arg, &end, 10);
	if (plan.action == ACT_NONE || plan.op < 0 || (plan.action == ACT_FAIL && !(plan.err = errno_of(arg))) ||
	    (plan.action == ACT_SHORT && (plan.op != ATP_IO_WRITE || plan.bytes < 0)) ||
	    (plan.action == ACT_POWER && plan.op != ATP_IO_WRITE && plan.op != ATP_IO_FSYNC))
		bad_plan(spec);
}

/* Whether writes are remembered until their fsync: under a power plan or the simulator. */
static bool tracking(void)
{
	return plan.action == ACT_POWER || plan.decide;
}

/* A test's own mistake (no memory, a descriptor it cannot read): say so and stop rather than model it wrong. */
static void cannot_track(const char *what)
{
	fprintf(stderr, "atpd: fault plan: cannot keep an unsynced write: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Remember what a write about to happen overwrites. */
static void remember(int fd, size_t len, off_t off)
{
	struct stat st;
	if (off < 0 && (off = lseek(fd, 0, SEEK_CUR)) < 0)
		cannot_track("lseek");
	if (fstat(fd, &st) < 0)
		cannot_track("fstat");
	uint8_t *before = calloc(1, len ? len : 1);
	int own = dup(fd);
	if (!before || own < 0)
		cannot_track("memory or a descriptor");
	/* Read what is there through a descriptor that can read (the writer's may be write-only). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int rd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd < 0 || pread(rd, before, len, off) < 0)
		cannot_track(path);
	close(rd);
	pthread_mutex_lock(&plan.lock);
	if (plan.n_pending == plan.cap_pending) {
		size_t cap = plan.cap_pending ? 2 * plan.cap_pending : 64;
		unsynced *p = realloc(plan.pending, cap * sizeof(*p));
		if (!p)
			cannot_track("memory");
		plan.pending = p;
		plan.cap_pending = cap;
	}
	plan.pending[plan.n_pending++] = (unsynced){ own, st.st_dev, st.st_ino, off, len, before };
	pthread_mutex_unlock(&plan.lock);
}

/*
 * Undo the unsynced writes of fd's file (fd < 0: of every file), newest
 * first, each 4 KiB page with probability 1/2 as draw says, as a disk
 * cache may persist any subset of them; then forget them. Pages lost.
 */
static size_t lose(int fd, uint64_t (*draw)(void *), void *ctx, size_t *pages)
{
	struct stat st = { 0 };
	if (fd >= 0 && fstat(fd, &st) < 0)
		return 0;
	pthread_mutex_lock(&plan.lock);
	size_t lost = 0, k = 0;
	for (size_t i = plan.n_pending; i-- > 0;) {
		unsynced *u = &plan.pending[i];
		if (fd >= 0 && (u->dev != st.st_dev || u->ino != st.st_ino))
			continue;
		for (off_t p = u->off & ~(off_t)4095; p < u->off + (off_t)u->len; p += 4096) {
			off_t a = p > u->off ? p : u->off, b = p + 4096 < u->off + (off_t)u->len ? p + 4096 : u->off + (off_t)u->len;
			++*pages;
			if (draw && draw(ctx) & 1 && pwrite(u->fd, u->before + (a - u->off), (size_t)(b - a), a) == b - a)
				lost++;
		}
		close(u->fd);
		free(u->before);
		u->fd = -1;
	}
	for (size_t i = 0; i < plan.n_pending; i++)
		if (plan.pending[i].fd >= 0)
			plan.pending[k++] = plan.pending[i];
	plan.n_pending = k;
	pthread_mutex_unlock(&plan.lock);
	return lost;
}

void atp_fault_synced(int fd)
{
	size_t pages = 0;
	if (atp_fault_armed() && tracking())
		lose(fd, NULL, NULL, &pages);
}

static uint64_t xorshift(void *ctx)
{
	uint64_t *x = ctx;
	*x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
	return *x;
}

/* The power goes under a plan: the draw is repeatable from the plan's N. */
static void power_cut(unsigned long long n)
{
	uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
	size_t pages = 0, lost = lose(-1, xorshift, &x, &pages);
	fprintf(stderr, "atpd: fault plan: power cut at %s %llu: %zu of %zu unsynced pages lost\n", op_names[plan.op], n, lost,
		pages);
}

void atp_fault_simulate(atp_fault_decide_fn decide, void *ctx)
{
	atp_fault_armed();
	plan.decide = decide;
	plan.decide_ctx = ctx;
}

size_t atp_fault_lose(int fd, uint64_t (*draw)(void *ctx), void *ctx)
{
	size_t pages = 0;
	return lose(fd, draw, ctx, &pages);
}

static void power_cut(unsigned long long n);

void atp_fault_written(int fd)
{
	if (atp_fault_armed() && plan.action == ACT_POWER && fd >= 0 && atomic_load(&plan.cut_fd) == fd) {
		power_cut(plan.nth);
		kill(getpid(), SIGKILL);
		abort();
	}
}

bool atp_fault_armed(void)
{
	pthread_once(&plan.once, load_plan);
	return plan.armed || plan.decide;
}

ssize_t atp_fault_at(atp_io_op op, int fd, const void *buf, size_t len, off_t off)
{
	if (!atp_fault_armed())
		return (ssize_t)len;
	unsigned long long n = atomic_fetch_add(&plan.calls[op], 1) + 1;
	if (plan.decide) {
		ssize_t r = plan.decide(plan.decide_ctx, op, fd, len);
		if (op == ATP_IO_WRITE && r > 0)
			remember(fd, (size_t)r, off);
		return r;
	}
	(void)buf;
	if (plan.action == ACT_POWER && op == ATP_IO_WRITE && !(plan.op == ATP_IO_WRITE && n >= plan.nth))
		remember(fd, len, off);
	if (plan.action == ACT_NONE || (int)op != plan.op || n != plan.nth)
		return (ssize_t)len;
	if (plan.action == ACT_POWER && op == ATP_IO_FSYNC && off == 1) {
		atomic_store(&plan.cut_fd, fd); /* its write is still to come: the cut waits for it (atp_fault_written) */
		return 0;
	}
	size_t part = plan.bytes < 0 ? len / 2 : (size_t)plan.bytes < len ? (size_t)plan.bytes : len;
	switch (plan.action) {
	case ACT_CRASH:
		if (op == ATP_IO_WRITE && part > 0 && (off < 0 ? write(fd, buf, part) : pwrite(fd, buf, part, off)) < 0)
			perror("atpd: fault plan: the torn write");
		fprintf(stderr, "atpd: fault plan: crash at %s %llu\n", op_names[op], n);
		kill(getpid(), SIGKILL);
		abort();
	case ACT_POWER:
		power_cut(n);
		kill(getpid(), SIGKILL);
		abort();
	case ACT_SHORT:
		return (ssize_t)part;
	default:
		return -plan.err;
	}
}

ssize_t atp_io_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = atp_fault_at(ATP_IO_WRITE, fd, buf, len, off);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return pwrite(fd, buf, (size_t)n, off);
}

ssize_t atp_io_write(int fd, const void *buf, size_t len)
{
	ssize_t n = atp_fault_at(ATP_IO_WRITE, fd, buf, len, -1);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return write(fd, buf, (size_t)n);
}

/* Count a call of op without data; 0 to go ahead, or -1 with errno set. */
static int plain(atp_io_op op, int fd)
{
	ssize_t n = atp_fault_at(op, fd, NULL, 0, 0);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return 0;
}

int atp_io_fsync(int fd)
{
	if (plain(ATP_IO_FSYNC, fd) < 0 || fsync(fd) < 0)
		return -1;
	atp_fault_synced(fd);
	return 0;
}

int atp_io_fdatasync(int fd)
{
	if (plain(ATP_IO_FSYNC, fd) < 0 || fdatasync(fd) < 0)
		return -1;
	atp_fault_synced(fd);
	return 0;
}

int atp_io_create(const char *path, int flags, mode_t mode)
{
	return plain(ATP_IO_OPEN, -1) < 0 ? -1 : open(path, flags, mode);
}

int atp_io_rename(const char *from, const char *to)
{
	return plain(ATP_IO_RENAME, -1) < 0 ? -1 : rename(from, to);
}

int atp_io_fallocate(int fd, off_t off, off_t len)
{
	return plain(ATP_IO_FALLOCATE, fd) < 0 ? errno : posix_fallocate(fd, off, len);
}
