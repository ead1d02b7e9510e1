/* faultio.c — storage I/O wrappers and the fault plan tests inject through them (see atp/faultio.h). */
#define _GNU_SOURCE
#include "atp/faultio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ACT_NONE, ACT_CRASH, ACT_FAIL, ACT_SHORT };

static const char *const op_names[ATP_IO_OPS] = { "write", "fsync", "open", "rename", "fallocate" };

static struct {
	pthread_once_t once;
	bool armed;
	int action, op, err;
	unsigned long long nth;
	long long bytes;  /* -1: half */
	const char *count_path;
	_Atomic unsigned long long calls[ATP_IO_OPS];
} plan = { .once = PTHREAD_ONCE_INIT };

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
	fprintf(stderr, "atpd: ATP_FAULT=%s: expected crash|fail|short:OP:N[:ARG]\n", spec);
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
		    : strcmp(act, "short") == 0 ? ACT_SHORT : ACT_NONE;
	plan.op = -1;
	for (int i = 0; i < ATP_IO_OPS; i++)
		if (strcmp(op, op_names[i]) == 0)
			plan.op = i;
	char *end;
	plan.bytes = strcmp(arg, "half") == 0 ? -1 : strtoll(arg, &end, 10);
	if (plan.action == ACT_NONE || plan.op < 0 || (plan.action == ACT_FAIL && !(plan.err = errno_of(arg))) ||
	    (plan.action == ACT_SHORT && (plan.op != ATP_IO_WRITE || plan.bytes < 0)))
		bad_plan(spec);
}

bool atp_fault_armed(void)
{
	pthread_once(&plan.once, load_plan);
	return plan.armed;
}

ssize_t atp_fault_at(atp_io_op op, int fd, const void *buf, size_t len, off_t off)
{
	if (!atp_fault_armed())
		return (ssize_t)len;
	unsigned long long n = atomic_fetch_add(&plan.calls[op], 1) + 1;
	if (plan.action == ACT_NONE || (int)op != plan.op || n != plan.nth)
		return (ssize_t)len;
	size_t part = plan.bytes < 0 ? len / 2 : (size_t)plan.bytes < len ? (size_t)plan.bytes : len;
	switch (plan.action) {
	case ACT_CRASH:
		if (op == ATP_IO_WRITE && part > 0 && (off < 0 ? write(fd, buf, part) : pwrite(fd, buf, part, off)) < 0)
			perror("atpd: fault plan: the torn write");
		fprintf(stderr, "atpd: fault plan: crash at %s %llu\n", op_names[op], n);
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
static int plain(atp_io_op op)
{
	ssize_t n = atp_fault_at(op, -1, NULL, 0, 0);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return 0;
}

int atp_io_fsync(int fd)
{
	return plain(ATP_IO_FSYNC) < 0 ? -1 : fsync(fd);
}

int atp_io_fdatasync(int fd)
{
	return plain(ATP_IO_FSYNC) < 0 ? -1 : fdatasync(fd);
}

int atp_io_create(const char *path, int flags, mode_t mode)
{
	return plain(ATP_IO_OPEN) < 0 ? -1 : open(path, flags, mode);
}

int atp_io_rename(const char *from, const char *to)
{
	return plain(ATP_IO_RENAME) < 0 ? -1 : rename(from, to);
}

int atp_io_fallocate(int fd, off_t off, off_t len)
{
	return plain(ATP_IO_FALLOCATE) < 0 ? errno : posix_fallocate(fd, off, len);
}
