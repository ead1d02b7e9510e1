/* notify.c — sd_notify's protocol without libsystemd (notify.h). */
#define _GNU_SOURCE
#include "notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int sock = -1;
static struct sockaddr_un addr;
static socklen_t addr_len;
static uint64_t watchdog_usec;

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path && (path[0] == '/' || path[0] == '@') && strlen(path) < sizeof(addr.sun_path)) {
		addr.sun_family = AF_UNIX;
		memcpy(addr.sun_path, path, strlen(path));
		if (path[0] == '@')
			addr.sun_path[0] = 0;  /* the abstract namespace */
		addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
		sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (usec && (!pid || strtoll(pid, NULL, 10) == (long long)getpid()))
		watchdog_usec = strtoull(usec, NULL, 10);
}

void notify_send(const char *fmt, ...)
{
	if (sock < 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* The supervisor's socket is its business: a failure here changes nothing in atpd. */
	(void)!sendto(sock, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, addr_len);
}

uint64_t notify_watchdog_usec(void)
{
	return watchdog_usec;
}
