/*
 * atpd.c — the daemon: `atpd --data DIR [--config FILE]`.
 *
 * Creates or opens the data directory (its lock keeps a second daemon
 * out), recovers every shard, and serves: the engine's time follows the
 * wall clock (reservations expire on time), SIGUSR1 writes a snapshot of
 * every shard. SIGTERM or SIGINT stops it: drain the rings, fsync,
 * snapshot, exit 0. A storage failure exits 1 with the engine's message.
 * One log line (stderr) per lifecycle step and per error.
 *
 * The TCP event stream (atp/stream_server.h) listens on `listen` (default
 * 127.0.0.1:7400, "none" for no listener) and runs in this thread, which is
 * the engine's router. clock = wall (default): the engine's time is the
 * wall clock; events: it follows the occurred_at of the events received
 * (replays of simulated days); frozen: it never moves (nothing expires).
 * The gRPC API (atp/grpc_server.h) listens on `grpc_listen` (default
 * 127.0.0.1:7401, "none" for none) on the same loop; grpc_* set its limits.
 * The channel stream (atp/hub.h: channel.NAME.* and channel_* settings)
 * is fed by the engine from recovery on and served by Subscribe; SIGHUP
 * reads the settings again and applies the channels. Prometheus scrapes
 * /metrics on `metrics_listen` (default 127.0.0.1:9464, "none" for none),
 * on the same loop; metrics.h says what it exposes. TLS, client
 * identities and the authorization file are security.h's (tls_*,
 * authz_file, user), reloaded on SIGHUP too.
 */
#define _GNU_SOURCE
#include "atp/deadletter.h"
#include "atp/engine.h"
#include "atp/log.h"
#include "atp/grpc_server.h"
#include "atp/hub.h"
#include "atp/loop.h"
#include "atp/metrics_server.h"
#include "atp/stream_server.h"
#include "atp/udp_server.h"
#include "atp/dpdk_port.h"
#include "atp/wire_event.h"
#include "clock.h"
#include "metrics.h"
#include "notify.h"
#include "security.h"
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal, snapshot_asked, reload_asked;
static atpd_security security;
static atp_stream_server *stream_srv;  /* NULL: no event stream listener */
static bool polling;                    /* DPDK: the loop never sleeps in the kernel */

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		snapshot_asked = 1;
	else if (sig == SIGHUP)
		reload_asked = 1;
	else
		stop_signal = sig;
}

/* What the metrics listener renders (metrics.h): filled in main, the clock's offset by serve. */
static atpd_metrics exposition;

/* log_format = logfmt: one line per message, ts, level and msg (quoted, escaped), for the journal and log shippers. */
static void logfmt_sink(int level, const char *text)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char msg[2100];
	size_t n = 0;
	for (const char *p = text; *p && n + 3 < sizeof(msg); p++) {
		if (*p == '"' || *p == '\\')
			msg[n++] = '\\';
		msg[n++] = *p == '\n' ? ' ' : *p;
	}
	msg[n] = 0;
	fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"\n", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, atp_log_level_name(level), msg);
}

/* Recovery's progress, for a supervisor. */
static void on_recovered(void *ctx, uint32_t shard, uint32_t shards, uint64_t records)
{
	(void)ctx;
	notify_send("STATUS=recovering: %u of %u shards, %" PRIu64 " WAL records replayed", shard + 1, shards, records);
}

/*
 * SIGHUP: the settings read again; the channels, the certificates and the
 * authorization file take effect (the rest is read at start only).
 */
static void reload(atp_hub *hub, atp_grpc_server *api, int argc, char **argv)
{
	static settings fresh;
	notify_send("RELOADING=1\nSTATUS=reloading the settings");
	if (settings_load(&fresh, argc, argv, NULL) < 0) {
		atp_log(ATP_LOG_ERROR, "SIGHUP: the settings above are wrong; the channels stay as they were, and so do "
				       "the certificates and the authorization");
		notify_send("READY=1\nSTATUS=serving (the settings were not reloaded)");
		return;
	}
	security_reload(&security, &fresh, stream_srv, api);
	if (!hub) {
		if (fresh.channels.n)
			atp_log(ATP_LOG_WARN, "SIGHUP: %u channels asked for, but this atpd was started without the channel "
					"stream (channel_stream = on, or channels at start, turns it on): restart it",
				fresh.channels.n);
	} else {
		char log[2048];
		atp_hub_reload(hub, &fresh.channels, log, sizeof(log));
		atp_log(ATP_LOG_INFO, "SIGHUP: %u channels; %s", fresh.channels.n, log[0] ? log : "nothing changed");
	}
	notify_send("READY=1\nSTATUS=serving (settings reloaded)");
}

/* The longest an idle event loop sleeps: the granularity of its timeouts and heartbeats. */
#define IDLE_WAIT_MS 100

/* Admin/Snapshot (atp/grpc_server.h): as SIGUSR1, from the loop; the time of the first ask not yet served. */
static uint64_t snapshot_asked_ms;

static void ask_snapshot(void *ctx)
{
	(void)ctx;
	if (!snapshot_asked)
		snapshot_asked_ms = atpd_clock_mono_ms();
	snapshot_asked = 1;
}

static bool arrived_before(void *ctx, const atp_dlq_entry *d)
{
	return d->arrival_ms < *(const uint64_t *)ctx;
}

/* Purge the dead letters older than deadletter_retention_hours (checked once a minute). */
static void deadletters_expire(atp_dlq *q, const settings *s, uint64_t now)
{
	uint64_t cutoff = now > s->deadletter_retention_ms ? now - s->deadletter_retention_ms : 0;
	if (!q || !s->deadletter_retention_ms || !atp_dlq_count(q) || atp_dlq_at(q, 0)->arrival_ms >= cutoff)
		return;
	char err[512];
	int n = atp_dlq_sync(q);
	if (n == 0)
		n = atp_dlq_purge(q, arrived_before, &cutoff, err, sizeof(err));
	if (n < 0)
		atp_log(ATP_LOG_ERROR, "dead letters past deadletter_retention_hours not purged: %s", n == -EIO ? "a write failed" : err);
	else
		atp_log(ATP_LOG_INFO, "%d dead letters past deadletter_retention_hours purged, %u kept", n, atp_dlq_count(q));
}

static int serve(atp_engine *e, atp_loop *loop, atp_grpc_server *api, atp_hub *hub, atp_dlq *dlq, const settings *s,
		 int argc, char **argv)
{
	struct timespec nap = { 0, 10 * 1000000 };
	uint64_t next_tick = 0, next_ping = 0, next_expiry = 0, next_clock_check = 0;
	/* atpd's time: the wall clock at start, then the monotonic clock (clock.h); the loop's deadlines too. */
	atpd_clock clk;
	atpd_clock_start(&clk, atp_engine_now_ms(e), NULL, NULL);
	int64_t told_offset = 0;
	/* The supervisor's watchdog (notify.h), pinged from this loop: a loop stuck for its interval gets restarted. */
	uint64_t ping_ms = notify_watchdog_usec() / 2000;
	if (notify_watchdog_usec() && ping_ms == 0)
		ping_ms = 1;
	while (!stop_signal) {
		uint64_t now = atpd_clock_now(&clk);
		if (s->clock == CLOCK_WALL && now >= next_clock_check) {
			/* A step of the wall clock moves neither atpd's time nor its expiries: say so, once per new step. */
			int64_t off = atpd_clock_offset_ms(&clk);
			if (off - told_offset > 1000 || told_offset - off > 1000) {
				atp_log(ATP_LOG_WARN, "the wall clock moved %+.3f s away from atpd's time (the wall clock at start, "
					"carried by the monotonic clock): reservations keep expiring on atpd's time; "
					"a restart takes the wall clock again", off / 1e3);
				told_offset = off;
			}
			exposition.clock_offset_ms = off;
			next_clock_check = now + 1000;
		}
		if (ping_ms && atpd_clock_mono_ms() >= next_ping) {
			notify_send("WATCHDOG=1");
			next_ping = atpd_clock_mono_ms() + ping_ms;
		}
		/* The tick waits for room in the rings rather than block the event loop. */
		if (s->clock == CLOCK_WALL && now >= next_tick && atp_engine_can_take(e, atp_engine_shards(e))) {
			atp_engine_set_time(e, now);
			if (atp_engine_advance(e) < 0)
				return -1;
			next_tick = now + s->tick_ms;
		}
		security_tick(&security, atpd_clock_mono_ms());
		if (now >= next_expiry) {
			deadletters_expire(dlq, s, now);
			next_expiry = now + 60000;
		}
		if (reload_asked) {
			reload_asked = 0;
			reload(hub, api, argc, argv);
		}
		if (snapshot_asked) {
			snapshot_asked = 0;
			uint64_t asked = snapshot_asked_ms ? snapshot_asked_ms : atpd_clock_mono_ms();
			snapshot_asked_ms = 0;
			atp_log(ATP_LOG_INFO, "writing a snapshot of every shard");
			int rc = atp_engine_snapshot(e);
			if (api)
				atp_grpc_server_snapshot_done(api, rc, atpd_clock_mono_ms() - asked);
			if (rc < 0)
				return -1;
			atp_log(ATP_LOG_INFO, "snapshot written");
		}
		if (loop) {
			/* Woken by I/O and by the workers' eventfd; otherwise at the next tick, 100 ms at most. */
			uint64_t wait = IDLE_WAIT_MS;
			if (s->clock == CLOCK_WALL && next_tick > now && next_tick - now < wait)
				wait = next_tick - now;
			if (ping_ms && ping_ms < wait)
				wait = ping_ms;
			if (polling)
				wait = 0;
			if (atp_loop_run(loop, (unsigned)wait) < 0)
				return -1;
		} else {
			atp_engine_poll(e);
			nanosleep(&nap, NULL);
		}
		if (atp_engine_error(e))
			return -1;
	}
	return 0;
}

/*
 * The dead-letter store, when a policy wants it or it exists (its entries
 * can still be listed, redriven and purged): opened, and each redrive it
 * records that its shard never applied (a crash came between) undone, so
 * that a redrive happens exactly once. 0 (*out NULL: no store), or -1.
 */
static bool deadletters_wanted(const atp_stream_config *c);
static int deadletters_open(atp_engine *e, const char *data, const settings *s, atp_dlq **out, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/deadletters", data);
	*out = NULL;
	if (!deadletters_wanted(&s->stream) && access(path, F_OK) != 0)
		return 0;
	atp_dlq *q = atp_dlq_open(path, s->deadletter_max, false, err, errlen);
	if (!q)
		return -1;
	atp_str src = atp_str_of(ATP_DLQ_SOURCE, strlen(ATP_DLQ_SOURCE));
	uint32_t undone = 0;
	for (uint32_t i = 0; i < atp_dlq_count(q); i++) {
		const atp_dlq_entry *d = atp_dlq_at(q, i);
		if (d->redrive_seq && (d->redrive_shard >= atp_engine_shards(e) ||
				       atp_core_hwm(atp_engine_core(e, d->redrive_shard), src) < d->redrive_seq)) {
			atp_log(ATP_LOG_WARN, "dead letter %" PRIu64 ": its redrive (seq %" PRIu64 " of %s) never became durable; "
				"held again", d->id, d->redrive_seq, ATP_DLQ_SOURCE);
			if (atp_dlq_unmark(q, d->id) < 0) {
				snprintf(err, errlen, "%s: cannot record it", path);
				atp_dlq_close(q);
				return -1;
			}
			undone++;
		}
	}
	if (undone && atp_dlq_sync(q) < 0) {
		snprintf(err, errlen, "%s: a write failed", path);
		atp_dlq_close(q);
		return -1;
	}
	atp_log(ATP_LOG_INFO, "dead-letter store: %u entries (at most %u)", atp_dlq_count(q), atp_dlq_capacity(q));
	*out = q;
	return 0;
}

/* Whether any source may have dead letters: the default policy, or one source's. */
static bool deadletters_wanted(const atp_stream_config *c)
{
	bool any = c->on_invalid == ATP_STREAM_DEADLETTER;
	for (uint32_t i = 0; i < c->n_policies; i++)
		any |= c->policies[i].on_invalid == ATP_STREAM_DEADLETTER;
	return any;
}

int main(int argc, char **argv)
{
	static settings s;
	const char *data = NULL;
	char err[600];
	if (settings_load(&s, argc, argv, &data) < 0)
		return 2;
	if (s.help) {
		settings_print_reference(stdout);
		return 0;
	}
	atp_log_setup(s.log_format == 1 ? logfmt_sink : NULL, s.log_level);
	if (s.check_only) {  /* the certificates, keys and authorization file too */
		if (security_open(&security, &s, err, sizeof(err)) < 0) {
			atp_log(ATP_LOG_ERROR, "%s", err);
			return 1;
		}
		security_close(&security);
		atp_log(ATP_LOG_INFO, "the settings are valid");
		return 0;
	}
	if (!data) {
		fprintf(stderr, "usage: atpd --data DIR [--config FILE] [--set KEY=VALUE]...\n"
				"       atpd --check-config FILE [--set KEY=VALUE]...\n       atpd --help-settings\n");
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (security_drop_privileges(&s, err, sizeof(err)) < 0) {
		atp_log(ATP_LOG_ERROR, "cannot start: %s", err);
		return 1;
	}
	struct stat dst;
	if (stat(data, &dst) == 0 && (dst.st_mode & S_IWOTH)) {
		atp_log(ATP_LOG_ERROR, "cannot start: the data directory %s is world-writable: anyone on this machine could "
			"change the WAL (chmod o-w %s)", data, data);
		return 1;
	}
	atp_log(ATP_LOG_INFO, "starting on %s", data);
	if (security_open(&security, &s, err, sizeof(err)) < 0) {
		atp_log(ATP_LOG_ERROR, "cannot start: %s", err);
		return 1;
	}
	notify_init();
	notify_send("STATUS=recovering %s", data);
	bool dpdk_on = s.dpdk.eal[0] != 0;
	bool any_listener = s.listen || s.grpc_on || s.metrics_on || s.udp_on || dpdk_on;
	int efd = any_listener ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
	s.engine.notify_fd = efd;
	/*
	 * The channel stream (when asked for, or with channels at start):
	 * created first, so that recovery's deltas rebuild its buffers.
	 * Without it the engine keeps no deltas at all.
	 */
	atp_hub *hub = NULL;
	bool stream = s.channel_stream == STREAM_ON || (s.channel_stream == STREAM_AUTO && s.channels.n > 0);
	if (stream && !(hub = atp_hub_create(&s.hub, &s.channels, err, sizeof(err)))) {
		atp_log(ATP_LOG_ERROR, "cannot start: %s", err);
		return 1;
	}
	s.engine.on_delta = hub ? atp_hub_on_delta : NULL;
	s.engine.on_recovered = on_recovered;
	s.engine.delta_ctx = hub;
	atp_engine *e = atp_engine_open(data, &s.engine, err, sizeof(err));
	if (!e) {
		atp_log(ATP_LOG_ERROR, "cannot start: %s", err);
		atp_hub_destroy(hub);
		return 1;
	}
	if (hub) {
		uint8_t identity[32];
		atp_engine_identity(e, identity);
		atp_hub_start(hub, atp_engine_shards(e), identity);
		atp_log(ATP_LOG_INFO, "channel stream on: %u channels", s.channels.n);
	}
	atp_dlq *dlq = NULL;
	if (deadletters_open(e, data, &s, &dlq, err, sizeof(err)) < 0) {
		atp_log(ATP_LOG_ERROR, "cannot start: the dead-letter store: %s", err);
		atp_engine_close(e);
		atp_hub_destroy(hub);
		return 1;
	}
	s.grpc.dlq = dlq;
	s.grpc.data_dir = data;
	s.grpc.core = s.engine.core;
	s.grpc.hub = hub;
	s.grpc.ask_snapshot = ask_snapshot;
	atp_loop *loop = NULL;
	atp_stream_server *srv = NULL;
	atp_grpc_server *api = NULL;
	atp_metrics_server *metrics = NULL;
	atp_udp_server *udp = NULL;
	atp_dpdk *dpdk = NULL;
	if (!s.udp_on)
		snprintf(s.udp.listen, sizeof(s.udp.listen), "none");  /* DPDK's datagrams only */
	exposition = (atpd_metrics){ .e = e, .hub = hub, .dlq = dlq, .start_unix_ms = atpd_clock_wall_ms(),
				     .security = &security };
	s.stream.event_clock = s.clock == CLOCK_EVENTS;
	const char *failed = NULL;
	if (any_listener && !(loop = atp_loop_create(e, efd, err, sizeof(err))))
		failed = "the event loop";
	else if (s.listen && !(srv = exposition.srv = atp_stream_server_create(loop, &s.stream, err, sizeof(err))))
		failed = "listen";
	else if (s.grpc_on && !(api = exposition.api = atp_grpc_server_create(loop, &s.grpc, err, sizeof(err))))
		failed = "grpc_listen";
	else if ((s.udp_on || dpdk_on) && !(udp = exposition.udp = atp_udp_server_create(loop, &s.udp, err, sizeof(err))))
		failed = "udp_listen";
	else if (dpdk_on && !(dpdk = exposition.dpdk = atp_dpdk_create(loop, udp, &s.dpdk, err, sizeof(err))))
		failed = "dpdk_eal";
	else if (s.metrics_on && !(metrics = exposition.server = atp_metrics_server_create(
					   loop, s.metrics_listen, s.metrics_max_bytes, atpd_metrics_render, &exposition, err,
					   sizeof(err))))
		failed = "metrics_listen";
	if (!failed && srv && dlq && deadletters_wanted(&s.stream))
		atp_stream_server_set_deadletters(srv, dlq);
	stream_srv = srv;
	if (!failed)
		security_apply(&security, srv, api);
	if (failed) {
		atp_log(ATP_LOG_ERROR, "cannot start: %s: %s", failed, err);
		if (api)
			atp_grpc_server_shutdown(api);
		if (srv)
			atp_stream_server_shutdown(srv);
		atp_dpdk_destroy(dpdk);
		atp_udp_server_destroy(udp);
		atp_loop_destroy(loop);
		atp_dlq_close(dlq);
		atp_engine_close(e);
		return 1;
	}
	if (srv)
		atp_log(ATP_LOG_INFO, "event stream listening on %s (port %u)", s.stream.listen, atp_stream_server_port(srv));
	if (api)
		atp_log(ATP_LOG_INFO, "grpc listening on %s (port %u)", s.grpc.listen, atp_grpc_server_port(api));
	if (udp && s.udp_on)
		atp_log(ATP_LOG_INFO, "udp event stream on %s (port %u)", s.udp.listen, atp_udp_server_port(udp));
	polling = dpdk != NULL;
	if (metrics)
		atp_log(ATP_LOG_INFO, "metrics listening on %s (port %u)", s.metrics_listen, atp_metrics_server_port(metrics));
	atp_log(ATP_LOG_INFO, "serving");
	atp_engine_stats opened;
	atp_engine_stats_get(e, &opened);
	notify_send("READY=1\nSTATUS=serving: %u shards, %" PRIu64 " WAL records replayed in %.3f s", atp_engine_shards(e),
		    opened.recovered_records, opened.recovery_seconds);
	int rc = serve(e, loop, api, hub, dlq, &s, argc, argv);
	if (rc < 0) {
		atp_log(ATP_LOG_ERROR, "stopping after a storage failure: %s", atp_engine_error(e));
		notify_send("STOPPING=1\nSTATUS=stopped after a storage failure: %s", atp_engine_error(e));
		atp_engine_abandon(e);
		return 1;
	}
	atp_log(ATP_LOG_INFO, "%s: closing connections, draining, syncing, writing the final snapshot",
		strsignal(stop_signal));
	notify_send("STOPPING=1\nSTATUS=draining: closing connections, syncing, writing the final snapshot");
	if (metrics)
		atp_metrics_server_shutdown(metrics);
	if (dpdk) {
		atp_dpdk_stats ds;
		atp_dpdk_stats_get(dpdk, &ds);
		atp_log(ATP_LOG_INFO, "dpdk: %" PRIu64 " frames in, %" PRIu64 " out, %" PRIu64 " datagrams, %" PRIu64
			" ARP answered; %.0f cycles per datagram (%.2f us at %.2f GHz)", ds.rx, ds.tx, ds.datagrams, ds.arp_answered,
			ds.datagrams ? (double)ds.busy_cycles / ds.datagrams : 0.0,
			ds.datagrams && ds.tsc_hz ? (double)ds.busy_cycles / ds.datagrams / ds.tsc_hz * 1e6 : 0.0, ds.tsc_hz / 1e9);
		atp_dpdk_destroy(dpdk);
	}
	if (udp) {
		atp_udp_stats us;
		atp_udp_server_stats(udp, &us);
		atp_log(ATP_LOG_INFO, "udp: %" PRIu64 " datagrams, %" PRIu64 " batches, %" PRIu64 " events, %" PRIu64 " acks",
			us.datagrams, us.batches, us.events, us.acks);
		atp_udp_server_destroy(udp);
	}
	if (srv) {
		atp_stream_stats st;
		atp_stream_server_stats(srv, &st);
		atp_log(ATP_LOG_INFO, "event stream: %" PRIu64 " connections (%" PRIu64 " refused at the limit), %" PRIu64
			" frames, %" PRIu64 " events, %" PRIu64 " bytes in, %" PRIu64 " acks",
			st.accepted, st.refused_connections, st.frames, st.events, st.bytes_in, st.acks);
	}
	if (api) {
		atp_grpc_stats gs;
		atp_grpc_server_stats(api, &gs);
		atp_log(ATP_LOG_INFO, "grpc: %" PRIu64 " connections (%" PRIu64 " refused), %" PRIu64 " calls, %" PRIu64
			" errors, %" PRIu64 " reserve lines",
			gs.connections, gs.refused_connections, gs.calls, gs.errors, gs.reserve_lines);
		atp_grpc_server_shutdown(api);
	}
	if (srv && atp_stream_server_shutdown(srv) < 0) {
		atp_log(ATP_LOG_ERROR, "stopping after a storage failure: %s", atp_engine_error(e));
		atp_engine_abandon(e);
		return 1;
	}
	atp_loop_destroy(loop);
	security_close(&security);
	atp_dlq_close(dlq);
	int closed = atp_engine_close(e);
	if (hub) {
		atp_hub_stats hs;
		atp_hub_stats_get(hub, &hs);
		atp_log(ATP_LOG_INFO, "channels: %" PRIu64 " deltas, %" PRIu64 " messages, %" PRIu64 " sent, %" PRIu64
			" conflated, %" PRIu64 " resyncs",
			hs.deltas, hs.messages, hs.sent, hs.conflated, hs.resyncs);
		atp_hub_destroy(hub);
	}
	if (closed != 0) {
		atp_log(ATP_LOG_ERROR, "the final snapshot failed");
		return 1;
	}
	if (efd >= 0)
		close(efd);
	atp_log(ATP_LOG_INFO, "stopped cleanly");
	return 0;
}
