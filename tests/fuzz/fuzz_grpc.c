/*
 * fuzz_grpc.c — the gRPC server's handling of what a client sends:
 * HTTP/2 frames (nghttp2's parsing and our callbacks), gRPC framing, the
 * atp.v1 and health requests, limits. The harness sends the client preface
 * and an empty SETTINGS frame, then the input, over a real loopback
 * connection to a server running in this process (one engine holding a
 * few positions, one loop, for the whole run), split in two writes at a
 * point the input's first byte chooses (that byte is not sent); then the client half-closes and
 * the loop turns until the server has closed the connection. The server
 * must never crash, leak or trip a sanitizer, and must still be serving.
 */
#define _GNU_SOURCE
#include "atp/engine.h"
#include "atp/grpc_server.h"
#include "atp/loop.h"
#include "loopback.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static atp_engine *engine;
static atp_loop *loop;
static atp_grpc_server *server;
static struct sockaddr_in addr;

static void cleanup(void)
{
	if (server)
		atp_grpc_server_shutdown(server);
	atp_loop_destroy(loop);
	if (engine)
		atp_engine_close(engine);
}

static void setup(void)
{
	char dir[] = "/tmp/atp-fuzz-grpc-XXXXXX", err[600];
	if (!mkdtemp(dir))
		abort();
	atp_engine_config ec = atp_engine_config_default();
	ec.shards = 2;
	ec.first_cpu = ec.router_cpu = -1;
	ec.core.max_positions = 4096;
	ec.core.max_lines = 4096;
	ec.wal.segment_bytes = 4u << 20;
	ec.wal.buffer_bytes = 1u << 20;
	ec.snapshot_wal_bytes = 8u << 20;
	ec.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!(engine = atp_engine_open(dir, &ec, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_grpc: %s\n", err);
		abort();
	}
	const char *skus[] = { "A", "B", "SKU-1" }, *locs[] = { "DC1", "DC2" };
	uint64_t seq = 0;
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++) {
			seq++;
			atp_event ev = { .event_id = seq, .seq = seq, .type = ATP_EV_RECEIPT, .qty = 1000000,
					 .source = atp_str_of("wms", 3), .sku = atp_str_of(skus[i], strlen(skus[i])),
					 .location = atp_str_of(locs[k], 3) };
			if (atp_engine_submit(engine, &ev, NULL) != ATP_OK)
				abort();
		}
	if (atp_engine_sync(engine) != 0)
		abort();
	if (!(loop = atp_loop_create(engine, ec.notify_fd, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_grpc: %s\n", err);
		abort();
	}
	atp_grpc_config gc = atp_grpc_config_default();
	snprintf(gc.listen, sizeof(gc.listen), "127.0.0.1:0");
	gc.max_calls = 64;
	gc.max_message = 64u << 10;
	gc.max_streams = 16;
	if (!(server = atp_grpc_server_create(loop, &gc, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_grpc: %s\n", err);
		abort();
	}
	addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atp_grpc_server_port(server)),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	atexit(cleanup);
}

static int turn(unsigned timeout_ms)
{
	return atp_loop_run(loop, timeout_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
				       "\0\0\0\x04\0\0\0\0\0";  /* the preface, then SETTINGS{} */
	if (!engine)
		setup();
	size_t cut = 0;
	if (size) {  /* the first byte chooses the split and is not sent */
		cut = data[0] % size;
		data++;
		size--;
	}
	/* bounded: the server may keep a valid connection open */
	fuzz_loopback(&addr, hello, sizeof(hello) - 1, data, size, cut, turn, 60);
	return 0;
}
