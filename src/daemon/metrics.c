/*
 * metrics.c — atpd's Prometheus exposition (metrics.h): the figures the
 * modules keep (atp_engine_stats, atp_stream_stats, atp_grpc_stats,
 * atp_hub_stats), written as metric families, each with its HELP and TYPE.
 * Histograms come from the modules' power-of-two buckets, cumulated.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include "atp/auth.h"
#include "atp/status.h"
#include "atp/udp_server.h"
#include "atp/dpdk_port.h"
#include "security.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TAIL_ROOM 96  /* kept for the last line that says the buffer was too small */

typedef struct out {
	char *p;
	size_t len, cap;
	bool full;
} out;

/* Append one line (or lines) whole, or nothing and mark the output full. */
static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
	if (o->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

static void family(out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void one(out *o, const char *name, const char *type, const char *help, uint64_t v)
{
	family(o, name, type, help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

static void one_f(out *o, const char *name, const char *type, const char *help, double v)
{
	family(o, name, type, help);
	put(o, "%s %.6f\n", name, v);
}

/* A label value with \, " and newlines escaped, as the format wants. */
static const char *esc(const char *s, char *buf, size_t cap)
{
	size_t n = 0;
	for (; *s && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[n++] = '\\';
			buf[n++] = *s == '\n' ? 'n' : *s;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = 0;
	return buf;
}

/*
 * A histogram from n power-of-two buckets: counts[i] holds what was below
 * 2^(i+1) units (and at least 2^i, or anything for i = 0), so at most
 * 2^(i+1) - less units (less: 1 for whole numbers, else 0); le is that
 * x scale. Buckets first .. last are printed (the ones below fold into
 * first, the ones above only into +Inf), then _sum and _count.
 */
static void hist(out *o, const char *name, const char *labels, const uint64_t *counts, int n, int first, int last,
		 double scale, int less, double sum)
{
	uint64_t cum = 0;
	for (int i = 0; i < n; i++) {
		cum += counts[i];
		if (i >= first && i <= last)
			put(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, *labels ? "," : "",
			    (double)((2ull << i) - (uint64_t)less) * scale, cum);
	}
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, *labels ? "," : "", cum);
	put(o, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", sum);
	put(o, "%s_count%s%s%s %" PRIu64 "\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", cum);
}

static uint64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void engine_metrics(out *o, const atpd_metrics *m, const atp_engine_stats *st)
{
	const atp_core_stats *c = &st->core;
	family(o, "atpd_events_applied_total", "counter", "Events applied by the shards, by type (recovery's replay included).");
	for (unsigned t = 1; t < ATP_EV_TYPE_COUNT; t++) {
		char type[16];
		const char *n = atp_event_type_name(t);
		size_t k = 0;
		for (; n[k] && k + 1 < sizeof(type); k++)
			type[k] = (char)tolower((unsigned char)n[k]);
		type[k] = 0;
		put(o, "atpd_events_applied_total{type=\"%s\"} %" PRIu64 "\n", type, c->applied[t]);
	}
	one(o, "atpd_events_duplicate_total", "counter", "Events at or below their source's high-water mark: acknowledged, skipped.",
	    st->duplicates + c->duplicates);
	one(o, "atpd_events_gap_total", "counter", "Events refused for a gap in their source's seqs: the sender resends from the expected one.",
	    st->gaps + c->gaps);
	one(o, "atpd_events_refused_total", "counter", "Events refused by a shard for any other reason (capacity, bounds, a Reserve of no position); their seq is consumed.", c->refused);
	one(o, "atpd_negative_on_hand_events_total", "counter", "Events that left a position's on_hand below zero (a floor exception).", c->negative_events);
	one(o, "atpd_short_reservation_events_total", "counter", "Events that left reservations short of stock (a floor exception).", c->short_events);
	family(o, "atpd_reserve_lines_total", "counter", "Reservation lines, by result.");
	put(o, "atpd_reserve_lines_total{result=\"full\"} %" PRIu64 "\n", c->reserve_full);
	put(o, "atpd_reserve_lines_total{result=\"partial\"} %" PRIu64 "\n", c->reserve_partial);
	put(o, "atpd_reserve_lines_total{result=\"unfilled\"} %" PRIu64 "\n", c->reserve_unfilled);
	put(o, "atpd_reserve_lines_total{result=\"replayed\"} %" PRIu64 "\n", c->reserve_replayed);
	family(o, "atpd_promises_total", "counter",
	       "Reservation lines promised against inbound supply, and what became of them (late and withdrawn: exceptions).");
	put(o, "atpd_promises_total{event=\"made\"} %" PRIu64 "\n", c->promises_made);
	put(o, "atpd_promises_total{event=\"opened\"} %" PRIu64 "\n", c->promises_opened);
	put(o, "atpd_promises_total{event=\"late\"} %" PRIu64 "\n", c->promises_late);
	put(o, "atpd_promises_total{event=\"withdrawn\"} %" PRIu64 "\n", c->promises_withdrawn);
	one(o, "atpd_reserve_units_requested_total", "counter", "Units asked for by reservation lines.", c->reserve_units_requested);
	one(o, "atpd_reserve_units_confirmed_total", "counter", "Units confirmed to reservation lines.", c->reserve_units_confirmed);
	one(o, "atpd_reserved_units_consumed_total", "counter", "Reserved units consumed by picks.", c->units_consumed);
	one(o, "atpd_reserved_units_released_total", "counter", "Reserved units released.", c->units_released);
	one(o, "atpd_reserved_units_expired_total", "counter", "Reserved units expired.", c->units_expired);
	one(o, "atpd_reservation_lines_expired_total", "counter", "Reservation lines expired.", c->lines_expired);
	one(o, "atpd_reservation_lines_open", "gauge", "Reservation lines open now.", st->lines_open);
	one(o, "atpd_reservation_lines_used", "gauge", "Reservation lines held: open, and closed ones remembered for replays.", st->lines_used);
	one(o, "atpd_reservation_lines_capacity", "gauge", "Reservation lines the shards can hold (max_lines x shards).", st->lines_capacity);
	uint64_t positions = 0;
	for (uint32_t i = 0; i < atp_engine_shards(m->e); i++)
		positions += atp_engine_positions(m->e, i);
	one(o, "atpd_positions", "gauge", "Positions (SKU x location) known.", positions);
	one(o, "atpd_positions_capacity", "gauge", "Positions the shards can hold (max_positions x shards).", st->positions_capacity);
	one(o, "atpd_engine_events_total", "counter", "Events made durable and completed by the workers.", st->events);
	one(o, "atpd_wal_records_total", "counter", "WAL records appended.", st->wal_records);
	one(o, "atpd_wal_bytes_total", "counter", "WAL bytes appended.", st->wal_bytes);
	one(o, "atpd_wal_segments", "gauge", "WAL segment files held.", st->wal_segments);
	family(o, "atpd_group_commit_events", "histogram", "Events per group commit (one write + fdatasync).");
	hist(o, "atpd_group_commit_events", "", st->group_hist, 20, 0, 19, 1, 1, (double)st->events);
	family(o, "atpd_fsync_seconds", "histogram", "Group commit latency: the write and fdatasync of one group.");
	hist(o, "atpd_fsync_seconds", "", st->fsync_ns_hist, 40, 12, 35, 1e-9, 0, (double)st->fsync_ns_sum / 1e9);
	one(o, "atpd_snapshots_total", "counter", "Shard snapshots written since start.", st->snapshots);
	if (st->snapshot_unix_ms)
		one_f(o, "atpd_snapshot_age_seconds", "gauge", "Since the newest snapshot written since start.",
		      (double)(unix_ms() - st->snapshot_unix_ms) / 1e3);
	one_f(o, "atpd_snapshot_stall_seconds_max", "gauge", "The longest a worker stalled to fork a snapshot.",
	      (double)st->snapshot_ns_max / 1e9);
	one(o, "atpd_router_waits_total", "counter", "Times the router found a worker's ring full and waited.", st->router_waits);
	one(o, "atpd_router_commits_total", "counter",
	    "Group commits the router made itself for an idle worker (router_commit_gap_ms).", st->router_commits);
	one(o, "atpd_ring_bytes", "gauge", "Bytes in the workers' rings, not yet taken.", st->ring_bytes);
	one(o, "atpd_ring_capacity_bytes", "gauge", "The workers' rings' capacity.", st->ring_capacity);
	one_f(o, "atpd_recovery_seconds", "gauge", "How long opening the data directory took.", st->recovery_seconds);
	one(o, "atpd_recovered_records", "gauge", "WAL records replayed when it opened.", st->recovered_records);
	family(o, "atpd_source_durable_seq", "gauge", "Per source: every seq up to it is durable (or refused); a sender resumes after it.");
	char name[2 * 64 + 8];
	uint64_t seq, seen;
	for (uint32_t i = 0; i < atp_engine_source_count(m->e); i++) {
		const char *s = atp_engine_source_at(m->e, i, &seq, &seen);
		put(o, "atpd_source_durable_seq{source=\"%s\"} %" PRIu64 "\n", esc(s, name, sizeof(name)), seq);
	}
	family(o, "atpd_source_last_event_seconds", "gauge",
	       "Per source that sent since start: the engine's time (unix seconds under clock = wall) of its last event.");
	for (uint32_t i = 0; i < atp_engine_source_count(m->e); i++) {
		const char *s = atp_engine_source_at(m->e, i, &seq, &seen);
		if (seen)
			put(o, "atpd_source_last_event_seconds{source=\"%s\"} %.3f\n", esc(s, name, sizeof(name)),
			    (double)seen / 1e3);
	}
}

static void stream_metrics(out *o, const atp_stream_server *srv)
{
	atp_stream_stats s;
	atp_stream_server_stats(srv, &s);
	one(o, "atpd_stream_connections", "gauge", "Event stream connections open.", s.open);
	one(o, "atpd_stream_connections_total", "counter", "Event stream connections accepted.", s.accepted);
	one(o, "atpd_stream_connections_refused_total", "counter", "Event stream connections refused at max_connections.", s.refused_connections);
	one(o, "atpd_stream_frames_total", "counter", "Event stream frames received.", s.frames);
	one(o, "atpd_stream_events_total", "counter", "Events received on the event stream.", s.events);
	one(o, "atpd_stream_received_bytes_total", "counter", "Bytes received on the event stream.", s.bytes_in);
	one(o, "atpd_stream_acks_total", "counter", "Acks sent on the event stream.", s.acks);
	one(o, "atpd_deadletters_total", "counter", "Malformed events stored as dead letters (their seq consumed, the feed going on).",
	    s.deadlettered);
	one(o, "atpd_deadletters_refused_total", "counter",
	    "Malformed events of a dead-letter source refused after all (the store full or failed): the source stopped.",
	    s.deadletter_full);
	family(o, "atpd_stream_events_refused_total", "counter", "Events of the event stream refused, by status code.");
	for (int code = 1; code <= -ATP_E_LAST; code++)
		if (s.refused[code])
			put(o, "atpd_stream_events_refused_total{code=\"%s\"} %" PRIu64 "\n", atp_status_name(-code), s.refused[code]);
}

static void grpc_metrics(out *o, const atp_grpc_server *api)
{
	static atp_grpc_stats g;  /* 3 KiB: the loop's thread only */
	atp_grpc_server_stats(api, &g);
	one(o, "atpd_grpc_connections", "gauge", "gRPC connections open.", g.open);
	one(o, "atpd_grpc_connections_total", "counter", "gRPC connections accepted.", g.connections);
	one(o, "atpd_grpc_connections_refused_total", "counter", "gRPC connections refused at grpc_max_connections.", g.refused_connections);
	one(o, "atpd_grpc_reserve_lines_total", "counter", "Reservation lines asked for through Reserve.", g.reserve_lines);
	one_f(o, "atpd_grpc_subscribe_held_seconds_total", "counter",
	      "Time (in 1 ms steps) in which the fan-out's allowance under heavy ingest ran out (channel_busy_mb_s).",
	      (double)g.fanout_held / 1e3);
	family(o, "atpd_grpc_replies_total", "counter", "gRPC calls answered, by method and status code.");
	for (unsigned mi = 0; mi < ATP_GRPC_METHODS; mi++)
		for (unsigned code = 0; code < ATP_GRPC_STATUSES; code++)
			if (g.replies[mi][code])
				put(o, "atpd_grpc_replies_total{method=\"%s\",code=\"%u\"} %" PRIu64 "\n",
				    atp_grpc_method_name(mi), code, g.replies[mi][code]);
	family(o, "atpd_grpc_latency_seconds", "histogram", "From a call's first header to its reply (for Subscribe, its stream's start).");
	for (unsigned mi = 1; mi < ATP_GRPC_METHODS; mi++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "method=\"%s\"", atp_grpc_method_name(mi));
		/* Bucket b counts replies under 2^b us: shift by one to the le = 2^(i+1) of hist(). */
		uint64_t shifted[ATP_GRPC_LATENCY_BUCKETS];
		shifted[0] = g.latency[mi][0] + g.latency[mi][1];
		for (unsigned b = 1; b + 1 < ATP_GRPC_LATENCY_BUCKETS; b++)
			shifted[b] = g.latency[mi][b + 1];
		shifted[ATP_GRPC_LATENCY_BUCKETS - 1] = 0;
		hist(o, "atpd_grpc_latency_seconds", labels, shifted, ATP_GRPC_LATENCY_BUCKETS, 3,
		     ATP_GRPC_LATENCY_BUCKETS - 3, 1e-6, 0, (double)g.latency_ns_sum[mi] / 1e9);
	}
}

static void hub_metrics(out *o, const atp_hub *hub)
{
	atp_hub_stats h;
	atp_hub_stats_get(hub, &h);
	one(o, "atpd_channel_deltas_total", "counter", "Engine deltas taken by the channel stream.", h.deltas);
	one(o, "atpd_channel_messages_total", "counter", "Channel messages built (a channel's figure changed).", h.messages);
	one(o, "atpd_channel_sent_total", "counter", "Messages written for subscribers, all kinds.", h.sent);
	one(o, "atpd_channel_conflated_total", "counter", "Updates skipped for slow subscribers (a newer one replaced them).", h.conflated);
	one(o, "atpd_channel_resyncs_total", "counter", "Subscribers resynchronised from the current figures.", h.resyncs);
	one(o, "atpd_channel_evicted_total", "counter", "Messages dropped from channel buffers by size or age.", h.evicted);
	one(o, "atpd_subscribers", "gauge", "Subscribers of all channels now.", h.subscribers);
	static atp_hub_channel_stats ch[ATP_CHANNELS_MAX];
	size_t n = atp_hub_channel_stats_get(hub, ch, ATP_CHANNELS_MAX);
	char name[2 * ATP_CHANNEL_NAME_MAX + 8];
	static const struct {
		const char *metric, *type, *help;
	} per[] = {
		{ "atpd_channel_subscribers", "gauge", "Subscribers of the channel." },
		{ "atpd_channel_written_bytes_total", "counter", "Bytes of messages written to the channel's buffer." },
		{ "atpd_channel_buffer_bytes", "gauge", "Bytes the channel's buffer holds." },
		{ "atpd_channel_lag_bytes", "gauge", "Bytes its slowest subscriber has yet to read." },
		{ "atpd_channel_lag_seconds", "gauge", "Age of the oldest message its slowest subscriber has yet to read." },
	};
	for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
		family(o, per[k].metric, per[k].type, per[k].help);
		for (size_t i = 0; i < n && i < ATP_CHANNELS_MAX; i++) {
			const atp_hub_channel_stats *c = &ch[i];
			uint64_t v[] = { c->subscribers, c->written_bytes, c->buffer_bytes, c->lag_bytes };
			esc(c->name, name, sizeof(name));
			if (k < 4)
				put(o, "%s{channel=\"%s\"} %" PRIu64 "\n", per[k].metric, name, v[k]);
			else
				put(o, "%s{channel=\"%s\"} %.3f\n", per[k].metric, name, (double)c->lag_ms / 1e3);
		}
	}
}

static void udp_metrics(out *o, const atp_udp_server *udp)
{
	atp_udp_stats u;
	atp_udp_server_stats(udp, &u);
	one(o, "atpd_udp_datagrams_total", "counter", "UDP datagrams received.", u.datagrams);
	one(o, "atpd_udp_events_total", "counter", "Events of the UDP batches taken (duplicates included).", u.events);
	one(o, "atpd_udp_acks_total", "counter", "Acks sent over UDP.", u.acks);
	one(o, "atpd_udp_peers", "gauge", "UDP senders remembered (address and port).", u.peers);
	family(o, "atpd_udp_dropped_total", "counter", "UDP datagrams dropped, by reason.");
	for (int r = 0; r < ATP_UDP_BAD_REASONS; r++)
		put(o, "atpd_udp_dropped_total{reason=\"%s\"} %" PRIu64 "\n", atp_udp_drop_name(r), u.dropped[r]);
}

static void dpdk_metrics(out *o, const atp_dpdk *d)
{
	atp_dpdk_stats st;
	atp_dpdk_stats_get(d, &st);
	one(o, "atpd_dpdk_rx_frames_total", "counter", "Ethernet frames taken off the DPDK port.", st.rx);
	one(o, "atpd_dpdk_tx_frames_total", "counter", "Ethernet frames sent on the DPDK port (answers, ARP).", st.tx);
	one(o, "atpd_dpdk_datagrams_total", "counter", "UDP datagrams of the event stream from the DPDK port.", st.datagrams);
	one(o, "atpd_dpdk_arp_answered_total", "counter", "ARP requests for dpdk_ip answered.", st.arp_answered);
	family(o, "atpd_dpdk_dropped_total", "counter", "Frames off the DPDK port dropped, by reason.");
	put(o, "atpd_dpdk_dropped_total{reason=\"not_ours\"} %" PRIu64 "\n", st.dropped_not_ours);
	put(o, "atpd_dpdk_dropped_total{reason=\"malformed\"} %" PRIu64 "\n", st.dropped_malformed);
	put(o, "atpd_dpdk_dropped_total{reason=\"tx_full\"} %" PRIu64 "\n", st.tx_full);
}

static void security_metrics(out *o, const atpd_security *sec)
{
	atp_auth_stats r = atp_auth_refusals();
	family(o, "atpd_auth_refusals_total", "counter",
	       "Calls and Hellos refused: unauthenticated (no or bad credentials) or denied (not granted by authz_file).");
	put(o, "atpd_auth_refusals_total{reason=\"unauthenticated\"} %" PRIu64 "\n", r.unauthenticated);
	put(o, "atpd_auth_refusals_total{reason=\"denied\"} %" PRIu64 "\n", r.denied);
	int64_t not_after = sec ? security_not_after(sec) : 0;
	if (!not_after)
		return;
	one(o, "atpd_tls_cert_not_after_seconds", "gauge", "When the server certificate (tls_cert) expires, Unix seconds.",
	    (uint64_t)not_after);
	one(o, "atpd_tls_cert_expiring", "gauge", "1 when the server certificate expires within 14 days (or has expired).",
	    not_after - (int64_t)time(NULL) < SECURITY_EXPIRY_WARN_S);
}

size_t atpd_metrics_render(void *ctx, char *buf, size_t cap)
{
	const atpd_metrics *m = ctx;
	if (cap < TAIL_ROOM * 2)
		return 0;
	out o = { .p = buf, .cap = cap - TAIL_ROOM };
	static atp_engine_stats st;  /* 1 KiB: the loop's thread only */
	atp_engine_stats_get(m->e, &st);
	one_f(&o, "atpd_start_time_seconds", "gauge", "When atpd started, in seconds since the epoch.", (double)m->start_unix_ms / 1e3);
	one_f(&o, "atpd_clock_offset_seconds", "gauge",
	      "The wall clock minus atpd's time (the wall clock at start, carried by the monotonic clock): a step of the wall clock since start.",
	      (double)m->clock_offset_ms / 1e3);
	engine_metrics(&o, m, &st);
	if (m->srv)
		stream_metrics(&o, m->srv);
	if (m->dlq) {
		one(&o, "atpd_deadletter_entries", "gauge", "Entries in the dead-letter store.", atp_dlq_count(m->dlq));
		one(&o, "atpd_deadletter_capacity", "gauge", "Entries the dead-letter store may hold (deadletter_max).",
		    atp_dlq_capacity(m->dlq));
	}
	if (m->api)
		grpc_metrics(&o, m->api);
	if (m->hub)
		hub_metrics(&o, m->hub);
	security_metrics(&o, m->security);
	if (m->udp)
		udp_metrics(&o, m->udp);
	if (m->dpdk)
		dpdk_metrics(&o, m->dpdk);
	if (m->server)
		one(&o, "atpd_metrics_scrapes_total", "counter", "Scrapes answered before this one.", atp_metrics_server_scrapes(m->server));
	if (o.full) {
		o.cap = cap;
		put(&o, "# cut short: the exposition is larger than metrics_max_kb\n");
	}
	return o.len;
}
