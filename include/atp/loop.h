/*
 * atp/loop.h — the front end's event loop: one io_uring, in the thread
 * that is the engine's router.
 *
 * The protocols attach to it (src/net/front.h: the TCP event stream, the
 * gRPC API, the metrics listener): each gets SQEs from the one ring and
 * receives into the loop's provided buffers. A turn waits for completions
 * (or for the engine's eventfd, which its workers write when completions
 * wait), hands each completion to the protocol that owns it, collects the
 * engine's completions (durable seqs, refusals) and then lets every
 * protocol take its turn (acks, replies, timers). The loop allocates
 * nothing after its creation. One thread: the engine's router.
 */
#ifndef ATP_LOOP_H
#define ATP_LOOP_H

#include "atp/engine.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_loop atp_loop;

/*
 * Set up the ring and its receive buffers; takes over the engine's
 * completion callback. notify_fd: the eventfd the engine was opened with
 * (its cfg.notify_fd), or -1: the loop then wakes every millisecond while
 * a protocol awaits durability. NULL with err.
 */
atp_loop *atp_loop_create(atp_engine *e, int notify_fd, char *err, size_t errlen);
/* One turn, waiting up to timeout_ms for something to happen. 0, or ATP_E_IO once the engine has failed. */
int atp_loop_run(atp_loop *l, unsigned timeout_ms);
/* Free the loop; every protocol is shut down (detached) first. */
void atp_loop_destroy(atp_loop *l);

#ifdef __cplusplus
}
#endif

#endif
