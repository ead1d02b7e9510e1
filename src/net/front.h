/*
 * front.h — the front end's loop (atp/loop.h, loop.c) as a protocol that
 * rides it sees it.
 *
 * The protocols (the TCP event stream, the gRPC server, the metrics
 * listener) attach as extensions: each gets SQEs from the loop's ring and
 * the shared provided receive buffers; its completions (the FRONT_EXT_OPS
 * operation codes it owns) come back to its on_cqe; the engine's
 * completions of internal sources (names starting with '@') go to every
 * on_done, the refusals of the other sources to every on_refused (their
 * successes, one per event, go nowhere: durability is read from the
 * engine); after_turn runs once per turn, after the engine's completions
 * were collected. Everything runs in the loop's thread.
 */
#ifndef ATP_NET_FRONT_H
#define ATP_NET_FRONT_H

#include "atp/engine.h"
#include "atp/loop.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#define OP_EXT 32u              /* operation codes (bits 56..63 of user_data) from here on are the extensions' */
#define FRONT_EXT_OPS 16u       /* codes per extension: the i-th attached owns OP_EXT + 16 i .. + 15 */
#define FRONT_EXT_MAX 6u
#define FRONT_BUF_SIZE (64u << 10)

typedef struct front_ext {
	void *ctx;
	void (*on_cqe)(void *ctx, const struct io_uring_cqe *cqe);
	void (*on_done)(void *ctx, const atp_engine_done *d);         /* an internal source's completion */
	void (*on_refused)(void *ctx, const atp_engine_done *d);      /* any other source's, when refused (status < 0) */
	void (*after_turn)(void *ctx);
	bool (*waiting)(void *ctx);  /* something awaits durability (the loop then wakes at least every ms without an eventfd) */
} front_ext;

/* Attach an extension: the first of the operation codes it owns, or -1 when FRONT_EXT_MAX are attached. */
int front_attach(atp_loop *l, const front_ext *ext);
/* Detach the extension of this ctx: nothing more reaches it. */
void front_detach(atp_loop *l, const void *ctx);
/* An SQE of the loop's ring (submitting first if the queue is full; aborts if it stays full); never NULL. */
struct io_uring_sqe *front_sqe(atp_loop *l);
/* Submit what is queued now (before a close(), say). */
void front_submit(atp_loop *l);
/* The provided buffer group for multishot receives, a buffer's bytes, and giving one back. */
uint16_t front_buf_group(void);
const uint8_t *front_buf(const atp_loop *l, uint16_t bid);
void front_give_back(atp_loop *l, uint16_t bid);
/*
 * Whether ingest is heavy: the engine took frames (events, calls) at
 * 10,000 a second or more over a 10 ms window (or the current one so far),
 * and its rate averaged over the windows since (halving each window) has
 * stayed above 5,000 a second. What can wait (a channel's fan-out) yields
 * then.
 */
bool front_busy(const atp_loop *l);
/* The loop's next wait lasts at most ms (a protocol's own timer: something it held back). */
void front_wake_within(atp_loop *l, unsigned ms);
/* The loop's monotonic time of this turn, in ms. */
uint64_t front_now_ms(const atp_loop *l);
atp_engine *front_engine(const atp_loop *l);
/* Listen on "HOST:PORT" (port 0: any free one): the socket, or -1 with err. */
int front_listen(const char *spec, uint16_t *port, char *err, size_t errlen);
/* The same for a socket of type (SOCK_STREAM: listening; SOCK_DGRAM: bound). */
int front_bind(const char *spec, int type, uint16_t *port, char *err, size_t errlen);

#endif
