/*
 * atp/faultio.h — the storage I/O calls of atpd, with faults injectable by
 * tests.
 *
 * Every call that makes data durable (the WAL's group writes and segment
 * creation, snapshots, the sources and meta files, the dead-letter store)
 * goes through these wrappers, which behave exactly as the system calls
 * they name unless the environment holds a plan when the process first
 * calls one:
 *
 *   ATP_FAULT=crash:OP:N[:BYTES|half]  the Nth OP dies by SIGKILL; a write
 *                                      first writes BYTES of its data
 *                                      (0 by default; half: half of it)
 *   ATP_FAULT=fail:OP:N:ERRNO          the Nth OP fails with ERRNO (a name:
 *                                      EIO, ENOSPC, EDQUOT, EROFS) and,
 *                                      for a write, writes nothing
 *   ATP_FAULT=short:write:N:BYTES      the Nth write writes BYTES and says so
 *   ATP_FAULT=power:OP:N               the power goes before the Nth write
 *                                      or fsync: each 4 KiB page of every
 *                                      write no completed fsync covers is
 *                                      lost or kept (a draw repeatable from
 *                                      N), then SIGKILL
 *
 * OP is write, fsync (fsync and fdatasync), open (of a file created for
 * writing), rename or fallocate; N counts that OP's calls from 1 across the
 * whole process. ATP_FAULT_COUNT=PATH appends "op count" lines to PATH at
 * exit, so that a test learns how many boundaries a run has. Without
 * ATP_FAULT each wrapper costs one predictable branch.
 *
 * The io_uring group commit cannot pass through a wrapper: its submitter
 * asks atp_fault_at() before it prepares a write or an fsync, applies the
 * answer to what it submits and to the result it reaps, and says when an
 * fsync completed (atp_fault_synced).
 */
#ifndef ATP_FAULTIO_H
#define ATP_FAULTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum atp_io_op { ATP_IO_WRITE, ATP_IO_FSYNC, ATP_IO_OPEN, ATP_IO_RENAME, ATP_IO_FALLOCATE, ATP_IO_OPS } atp_io_op;

/* Whether a plan is in force (read from the environment on the first call). */
bool atp_fault_armed(void);

/*
 * Count one call of op that is about to write len bytes of buf to fd at off
 * (off < 0: at the file position; len and buf: 0 and NULL for other ops).
 * For an fsync submitted before its write is made (io_uring), off = 1: a
 * power cut there then waits for atp_fault_written(fd).
 * Returns len to go ahead as asked, a smaller count to write only that many
 * (short), or -errno to fail without doing it. Under a crash plan for this
 * call it writes what the plan says and SIGKILLs the process.
 */
ssize_t atp_fault_at(atp_io_op op, int fd, const void *buf, size_t len, off_t off);

/* An fsync of fd completed: under a power plan, the writes before it are safe from the cut. */
void atp_fault_synced(int fd);
/* A write to fd submitted through io_uring completed (a power cut may be waiting for it). */
void atp_fault_written(int fd);

/*
 * The deterministic simulator's disk (tests/sim), in place of a plan: every
 * call asks decide (as atp_fault_at answers: len, fewer bytes, or -errno;
 * fd -1 for calls without one), and what each write overwrote is kept
 * until an fsync of its file completes. atp_fault_lose() then undoes the
 * unsynced writes of fd's file (fd < 0: of every file: the power goes),
 * each 4 KiB page when draw(ctx) is odd, and returns the pages undone.
 */
typedef ssize_t (*atp_fault_decide_fn)(void *ctx, atp_io_op op, int fd, size_t len);
void atp_fault_simulate(atp_fault_decide_fn decide, void *ctx);
size_t atp_fault_lose(int fd, uint64_t (*draw)(void *ctx), void *ctx);

/* The system calls, through the plan. 0 / a count, or -1 with errno (fallocate: 0 or an errno, as posix_fallocate). */
ssize_t atp_io_write(int fd, const void *buf, size_t len);
ssize_t atp_io_pwrite(int fd, const void *buf, size_t len, off_t off);
int atp_io_fsync(int fd);
int atp_io_fdatasync(int fd);
int atp_io_create(const char *path, int flags, mode_t mode); /* open() with O_CREAT in flags */
int atp_io_rename(const char *from, const char *to);
int atp_io_fallocate(int fd, off_t off, off_t len);

#ifdef __cplusplus
}
#endif

#endif
