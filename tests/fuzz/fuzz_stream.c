/*
 * fuzz_stream.c — the TCP stream server's handling of what a client sends:
 * framing, the Hello, EventBatches, limits. The input goes over a real
 * loopback connection to a server running in this process (one engine and
 * one server for the whole run), split in two writes at a point the input's
 * first byte chooses; then the client half-closes and the server turns
 * until it has closed the connection. The server must never crash, leak or
 * trip a sanitizer, and must still be serving afterwards.
 */
#define _GNU_SOURCE
#include "atp/engine.h"
#include "atp/loop.h"
#include "atp/stream_server.h"
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
static atp_stream_server *server;
static struct sockaddr_in addr;

static void cleanup(void)
{
	if (server)
		atp_stream_server_shutdown(server);
	atp_loop_destroy(loop);
	if (engine)
		atp_engine_close(engine);
}

static void setup(void)
{
	char dir[] = "/tmp/atp-fuzz-stream-XXXXXX", err[600];
	if (!mkdtemp(dir))
		abort();
	atp_engine_config ec = atp_engine_config_default();
	ec.first_cpu = ec.router_cpu = -1;
	ec.core.max_positions = 4096;
	ec.core.max_lines = 4096;
	ec.wal.segment_bytes = 4u << 20;
	ec.wal.buffer_bytes = 1u << 20;
	ec.snapshot_wal_bytes = 8u << 20;
	ec.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!(engine = atp_engine_open(dir, &ec, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_stream: %s\n", err);
		abort();
	}
	atp_stream_config sc = atp_stream_config_default();
	snprintf(sc.listen, sizeof(sc.listen), "127.0.0.1:0");
	sc.max_frame = 16u << 10;
	sc.max_batch = 64;
	sc.max_unacked = 64u << 10;
	sc.frame_timeout_ms = 20;  /* a truncated input is cut off after a few turns */
	if (!(loop = atp_loop_create(engine, ec.notify_fd, err, sizeof(err))) ||
	    !(server = atp_stream_server_create(loop, &sc, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_stream: %s\n", err);
		abort();
	}
	addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atp_stream_server_port(server)),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	atexit(cleanup);
}

static int turn(unsigned timeout_ms)
{
	return atp_loop_run(loop, timeout_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!engine)
		setup();
	fuzz_loopback(&addr, NULL, 0, data, size, size ? data[0] % (size + 1) : 0, turn, 400);
	return 0;
}
