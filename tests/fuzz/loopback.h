/*
 * loopback.h — feeding a fuzz input to a server of this process over a real
 * loopback connection: connect, send a fixed prefix (may be empty), then the
 * input in two writes split at `cut` with a few loop turns between them,
 * half-close, and turn the loop (at most max_turns times) until the server
 * has closed the connection. `turn` runs one loop turn; it must return 0.
 */
#ifndef ATP_FUZZ_LOOPBACK_H
#define ATP_FUZZ_LOOPBACK_H

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void fuzz_loopback(const struct sockaddr_in *addr, const void *prefix, size_t prefix_len,
				 const uint8_t *data, size_t size, size_t cut, int (*turn)(unsigned timeout_ms),
				 int max_turns)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		abort();
	if ((prefix_len && send(fd, prefix, prefix_len, MSG_NOSIGNAL) < 0) ||
	    (send(fd, data, cut, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE && errno != ECONNRESET))
		abort();
	for (int k = 0; k < 3; k++)
		if (turn(0) != 0)
			abort();
	if (send(fd, data + cut, size - cut, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
	    errno != ECONNRESET && errno != EAGAIN)
		abort();
	shutdown(fd, SHUT_WR);
	char sink[4096];
	for (int k = 0; k < max_turns; k++) {
		if (turn(1) != 0)
			abort();
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			break;
	}
	close(fd);
}

#endif
