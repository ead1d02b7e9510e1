/*
 * notify.h — systemd's service notification protocol (sd_notify(3)),
 * spoken directly: one datagram of "KEY=VALUE" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace).
 * Without $NOTIFY_SOCKET every call does nothing, so atpd runs the same
 * under systemd (Type=notify), under another supervisor, or by hand.
 * Never blocks: a message the socket cannot take now is dropped.
 */
#ifndef ATPD_NOTIFY_H
#define ATPD_NOTIFY_H

#include <stdint.h>

/* Read the environment: the socket, and the watchdog's interval when it is meant for this process. */
void notify_init(void);
/* Send one message ("READY=1", "STATUS=...", several lines with \n); printf-like. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* $WATCHDOG_USEC when $WATCHDOG_PID is unset or this process: ping at least every half of it; 0: no watchdog. */
uint64_t notify_watchdog_usec(void);

#endif
