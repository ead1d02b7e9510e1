/*
 * loop.c — the front end's event loop (atp/loop.h) and what it shares with
 * the protocols that ride it (front.h): the ring, its SQEs, the provided
 * receive buffers, the engine's eventfd, the dispatch of completions, and
 * a listening socket made for any of them.
 *
 * An operation's user_data carries its code in bits 56..63: the loop's
 * own below OP_EXT, each protocol's in the FRONT_EXT_OPS codes from the
 * base front_attach() gave it; the rest of the bits are the protocol's.
 */
#define _GNU_SOURCE
#include "front.h"
#include "atp/log.h"
#include "atp/loop.h"
#include "atp/status.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_COUNT 256u   /* provided buffers (a power of two) */
#define BUF_GROUP 7
#define OP_NOTIFY 1u     /* the loop's own: a read of the engine's eventfd */
#define BUSY_WINDOW_MS 10u
#define BUSY_PER_S 10000u /* frames a second that make the loop busy: far above a warehouse's peak */

struct atp_loop {
	atp_engine *e;
	struct io_uring ring;
	int notify_fd;
	bool notify_armed;
	uint64_t notify_value;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint32_t bufs_returned;       /* added to the buffer ring since the last advance */
	uint64_t now_ms;
	/*
	 * Busy: from a window in which the engine took frames at BUSY_PER_S or
	 * more (or the current one so far) until the rate, averaged over the
	 * windows (halving), falls under half of that. Not by one window's
	 * rate alone: a sender's batches can fall between windows, and what a
	 * busy loop does besides ingest (a fan-out) slows the rate it would
	 * then be judged by.
	 */
	uint64_t window_ms, window_frames;  /* the current window's start, and the engine's frames then */
	uint64_t rate;                      /* frames a second, the windows' average */
	bool busy;
	unsigned wake_within_ms;      /* the next wait's bound a protocol asked for (front_wake_within); 0: none */
	front_ext ext[FRONT_EXT_MAX]; /* ctx NULL: a free slot */
	/* The engine's completion callbacks of the attached, packed: a completion per event goes through them. */
	const front_ext *done[FRONT_EXT_MAX], *refused[FRONT_EXT_MAX];
	uint32_t n_done, n_refused;
	int failed;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- what front.h shares ---- */

/* The packed lists of completion callbacks, after an attach or a detach. */
static void pack_callbacks(atp_loop *l)
{
	l->n_done = l->n_refused = 0;
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++) {
		if (l->ext[i].on_done)
			l->done[l->n_done++] = &l->ext[i];
		if (l->ext[i].on_refused)
			l->refused[l->n_refused++] = &l->ext[i];
	}
}

int front_attach(atp_loop *l, const front_ext *ext)
{
	if (!ext->ctx)
		return -1;
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++)
		if (!l->ext[i].ctx) {
			l->ext[i] = *ext;
			pack_callbacks(l);
			return (int)(OP_EXT + i * FRONT_EXT_OPS);
		}
	return -1;
}

void front_detach(atp_loop *l, const void *ctx)
{
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++)
		if (l->ext[i].ctx == ctx)
			l->ext[i] = (front_ext){ 0 };
	pack_callbacks(l);
}

/*
 * Hand the queued SQEs to the kernel. On a failure (the kernel out of
 * memory, or the completion queue overflowing: -EAGAIN, -EBUSY) they stay
 * queued, and the next turn's submit_and_wait takes them; it is logged.
 */
void front_submit(atp_loop *l)
{
	int rc;
	do
		rc = io_uring_submit(&l->ring);
	while (rc == -EINTR);
	if (rc < 0)
		atp_log(ATP_LOG_WARN, "io_uring_submit: %s; the loop submits again at its next turn", strerror(-rc));
}

struct io_uring_sqe *front_sqe(atp_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	for (unsigned tries = 0; !sqe && tries < 100; tries++) {
		if (io_uring_sq_ready(&l->ring))
			front_submit(l);
		if (!(sqe = io_uring_get_sqe(&l->ring)))
			usleep(1000);  /* the kernel is short of memory: give it a moment */
	}
	if (!sqe) {
		/* A queue that stays full for 100 ms of retries: no operation of this loop can be trusted to run. */
		atp_log(ATP_LOG_ERROR, "io_uring: the submission queue stays full; aborting");
		abort();
	}
	return sqe;
}

uint16_t front_buf_group(void)
{
	return BUF_GROUP;
}

const uint8_t *front_buf(const atp_loop *l, uint16_t bid)
{
	return l->bufs + (size_t)bid * FRONT_BUF_SIZE;
}

void front_give_back(atp_loop *l, uint16_t bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * FRONT_BUF_SIZE, FRONT_BUF_SIZE, bid,
			      io_uring_buf_ring_mask(BUF_COUNT), (int)l->bufs_returned++);
}

bool front_busy(const atp_loop *l)
{
	return l->busy || (atp_engine_frames(l->e) - l->window_frames) * 1000 >= (uint64_t)BUSY_PER_S * BUSY_WINDOW_MS;
}

void front_wake_within(atp_loop *l, unsigned ms)
{
	if (!l->wake_within_ms || ms < l->wake_within_ms)
		l->wake_within_ms = ms;
}

uint64_t front_now_ms(const atp_loop *l)
{
	return l->now_ms;
}

atp_engine *front_engine(const atp_loop *l)
{
	return l->e;
}

int front_listen(const char *spec, uint16_t *port, char *err, size_t errlen)
{
	return front_bind(spec, SOCK_STREAM, port, err, errlen);
}

int front_bind(const char *spec, int type, uint16_t *port, char *err, size_t errlen)
{
	char host[128];
	snprintf(host, sizeof(host), "%s", spec);
	char *colon = strrchr(host, ':');
	if (!colon) {
		atp_errf(err, errlen, "listen: '%s' is not HOST:PORT", spec);
		return -1;
	}
	*colon = 0;
	const char *service = colon + 1, *name = host;
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = 0;
		name = host + 1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = type, .ai_flags = AI_PASSIVE }, *ai;
	int rc = getaddrinfo(name[0] ? name : NULL, service, &hints, &ai);
	if (rc) {
		atp_errf(err, errlen, "listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, type | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || (type == SOCK_STREAM && listen(fd, 4096) < 0)) {
		atp_errf(err, errlen, "listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* ---- the loop ---- */

static void arm_notify(atp_loop *l)
{
	struct io_uring_sqe *sqe = front_sqe(l);
	io_uring_prep_read(sqe, l->notify_fd, &l->notify_value, sizeof(l->notify_value), 0);
	sqe->user_data = (uint64_t)OP_NOTIFY << 56;
	l->notify_armed = true;
}

/* The engine's completions: an internal source's ('@') to on_done, another source's refusal to on_refused. */
static void on_engine_done(void *ctx, const atp_engine_done *d)
{
	atp_loop *l = ctx;
	if (d->source[0] == '@') {
		for (uint32_t i = 0; i < l->n_done; i++)
			l->done[i]->on_done(l->done[i]->ctx, d);
	} else if (d->status < 0) {
		for (uint32_t i = 0; i < l->n_refused; i++)
			l->refused[i]->on_refused(l->refused[i]->ctx, d);
	}
}

static void handle_cqe(atp_loop *l, const struct io_uring_cqe *cqe)
{
	unsigned op = (unsigned)(cqe->user_data >> 56);
	if (op == OP_NOTIFY) {
		l->notify_armed = false;
	} else if (op >= OP_EXT) {
		unsigned i = (op - OP_EXT) / FRONT_EXT_OPS;
		if (i < FRONT_EXT_MAX && l->ext[i].on_cqe)
			l->ext[i].on_cqe(l->ext[i].ctx, cqe);
	}
	/* else: a cancel's own completion, nothing to do */
}

int atp_loop_run(atp_loop *l, unsigned timeout_ms)
{
	if (l->failed)
		return l->failed;
	if (l->notify_fd >= 0 && !l->notify_armed)
		arm_notify(l);
	bool waiting = false;
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++)
		waiting |= l->ext[i].waiting && l->ext[i].waiting(l->ext[i].ctx);
	if (l->notify_fd < 0 && waiting && timeout_ms > 1)
		timeout_ms = 1;
	if (l->wake_within_ms && timeout_ms > l->wake_within_ms)
		timeout_ms = l->wake_within_ms;
	l->wake_within_ms = 0;
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000 };
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
		atp_log(ATP_LOG_ERROR, "io_uring wait: %s", strerror(-rc));
	l->now_ms = mono_ms();
	if (l->now_ms - l->window_ms >= BUSY_WINDOW_MS) {
		uint64_t frames = atp_engine_frames(l->e);
		uint64_t per_s = (frames - l->window_frames) * 1000 / (l->now_ms - l->window_ms);
		uint64_t windows = (l->now_ms - l->window_ms) / BUSY_WINDOW_MS;  /* a long wait counts as that many */
		l->rate = windows < 32 ? (l->rate >> windows) + per_s - (per_s >> windows) : per_s;
		l->busy = per_s >= BUSY_PER_S || (l->busy && l->rate >= BUSY_PER_S / 2);
		l->window_ms = l->now_ms;
		l->window_frames = frames;
	}
	unsigned head, n = 0;
	io_uring_for_each_cqe(&l->ring, head, cqe) {
		handle_cqe(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
	if (l->bufs_returned) {
		io_uring_buf_ring_advance(l->br, (int)l->bufs_returned);
		l->bufs_returned = 0;
	}
	atp_engine_poll(l->e);
	if (atp_engine_error(l->e))
		return l->failed = ATP_E_IO;
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++)
		if (l->ext[i].after_turn)
			l->ext[i].after_turn(l->ext[i].ctx);
	return 0;  /* what this turn queued goes out with the next turn's submit-and-wait */
}

/* ---- set-up and tear-down ---- */

static int setup_ring(atp_loop *l, uint32_t entries)
{
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN,
				     .cq_entries = entries * 4 };
	int rc = io_uring_queue_init_params(entries, &l->ring, &p);
	if (rc == -EINVAL) {  /* kernels before 6.1 */
		p = (struct io_uring_params){ .flags = IORING_SETUP_CQSIZE, .cq_entries = entries * 4 };
		rc = io_uring_queue_init_params(entries, &l->ring, &p);
	}
	return rc;
}

static int setup_buffers(atp_loop *l)
{
	size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
	void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	l->br = mem;
	io_uring_buf_ring_init(l->br);
	struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)l->br, .ring_entries = BUF_COUNT,
					.bgid = BUF_GROUP };
	int rc = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (rc < 0)
		return rc;
	if (!(l->bufs = malloc((size_t)BUF_COUNT * FRONT_BUF_SIZE)))
		return -ENOMEM;
	for (uint32_t i = 0; i < BUF_COUNT; i++)
		front_give_back(l, (uint16_t)i);
	io_uring_buf_ring_advance(l->br, (int)l->bufs_returned);
	l->bufs_returned = 0;
	return 0;
}

void atp_loop_destroy(atp_loop *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < FRONT_EXT_MAX; i++)
		assert(!l->ext[i].ctx);  /* every protocol shut down first: none may hold the ring */
	if (l->e)
		atp_engine_set_on_done(l->e, NULL, NULL);
	if (l->ring.ring_fd >= 0)
		io_uring_queue_exit(&l->ring);
	if (l->br)
		munmap(l->br, BUF_COUNT * sizeof(struct io_uring_buf));
	free(l->bufs);
	free(l);
}

atp_loop *atp_loop_create(atp_engine *e, int notify_fd, char *err, size_t errlen)
{
	atp_loop *l = calloc(1, sizeof(*l));
	if (!l) {
		atp_errf(err, errlen, "out of memory");
		return NULL;
	}
	l->notify_fd = notify_fd;
	l->ring.ring_fd = -1;
	int rc = setup_ring(l, 1024);
	if (rc < 0) {
		l->ring.ring_fd = -1;
		atp_errf(err, errlen, "io_uring: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = setup_buffers(l)) < 0) {
		atp_errf(err, errlen, "io_uring provided buffers: %s", strerror(-rc));
		goto fail;
	}
	l->e = e;
	atp_engine_set_on_done(e, on_engine_done, l);
	l->now_ms = mono_ms();
	if (notify_fd >= 0)
		arm_notify(l);
	front_submit(l);
	return l;
fail:
	atp_loop_destroy(l);
	return NULL;
}
