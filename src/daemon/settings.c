/* settings.c — atpd's settings table, the config file reader and the reference (see settings.h). */
#include "settings.h"

#include "atp/log.h"
#include "atp/wire_event.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum kind {
	K_NUM,   /* an unsigned number in [min, max], times scale into a u32 or u64 field */
	K_CPU,   /* a CPU number in [0, max], or none (-1), into an int */
	K_ENUM,  /* one of choices, its index into an int */
	K_ADDR,  /* HOST:PORT into a char array, or none: the bool at flag goes false */
	K_STR,   /* a string (a path, a list) into a char array; "" or none: unset */
};

typedef struct setting {
	const char *name;
	uint8_t kind;
	uint64_t min, max;
	uint64_t scale;             /* K_NUM: the field holds value * scale */
	const char *unit;           /* of the value written */
	size_t off, size;           /* the field in settings */
	size_t flag;                /* K_ADDR: the bool that says "not none" */
	const char *const *choices; /* K_ENUM, NULL-terminated */
	const char *help;
} setting;

#define FIELD(f) .off = offsetof(settings, f), .size = sizeof(((settings *)0)->f)
#define NUM(nm, lo, hi, sc, u, f, h) { .name = nm, .kind = K_NUM, .min = lo, .max = hi, .scale = sc, .unit = u, FIELD(f), .help = h }
#define MS(nm, hi, f, h) NUM(nm, 1, hi, 1, "ms", f, h)
#define ENUM(nm, ch, f, h) { .name = nm, .kind = K_ENUM, .choices = ch, FIELD(f), .help = h }
#define ADDR(nm, f, fl, h) { .name = nm, .kind = K_ADDR, FIELD(f), .flag = offsetof(settings, fl), .help = h }
#define STR(nm, f, h) { .name = nm, .kind = K_STR, FIELD(f), .help = h }
#define CPU(nm, f, h) { .name = nm, .kind = K_CPU, .max = 4095, FIELD(f), .help = h }
#define MIB (1ull << 20)
#define HOUR_MS 3600000ull
#define DAY_MS 86400000ull

static const char *const clocks[] = { "wall", "events", "frozen", NULL };
static const char *const stream_modes[] = { "auto", "on", "off", NULL };
static const char *const on_invalid[] = { "stop", "deadletter", NULL }; /* ATP_STREAM_STOP, ATP_STREAM_DEADLETTER */
static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const formats[] = { "text", "logfmt", NULL };
static const char *const bools[] = { "false", "true", NULL };
static const char *const tls_versions[] = { "1.2", "1.3", NULL };

static const setting table[] = {
	/* the engine */
	NUM("shards", 1, ATP_ENGINE_SHARDS_MAX, 1, "", engine.shards,
	    "shards of a new data directory (an existing one keeps its own)"),
	NUM("workers", 1, ATP_ENGINE_WORKERS_MAX, 1, "", engine.workers, "worker threads, at most one per shard"),
	CPU("first_cpu", engine.first_cpu, "the first worker's CPU, the next ones follow; `none`: not pinned"),
	CPU("router_cpu", engine.router_cpu, "the router's (the event loop's) CPU; `none`: not pinned"),
	NUM("router_commit_gap_ms", 0, 1000, 1000000, "ms", engine.router_commit_gap_ns,
	    "a few events for a worker idle this long are applied and made durable by the router itself: a trickle "
	    "wakes no thread (the router's loop waits for that fdatasync); 0: never"),
	NUM("segment_mb", 1, 4096, MIB, "MiB", engine.wal.segment_bytes, "WAL segment size"),
	NUM("snapshot_mb", 0, 1u << 20, MIB, "MiB", engine.snapshot_wal_bytes,
	    "a shard snapshots once its WAL grew this much; 0: only on command (SIGUSR1, `atpctl snapshot`)"),
	NUM("wal_retention_hours", 0, 8760, HOUR_MS, "h", engine.wal_retention_ms,
	   "keep WAL and snapshots so that any moment this far back can be replayed (`atpctl replay`, `atpctl "
	   "history`); 0: only what recovery needs"),
	NUM("max_positions", 1, 1u << 25, 1, "", engine.core.max_positions, "positions per shard"),
	NUM("max_lines", 1, 1u << 30, 1, "", engine.core.max_lines, "reservation lines per shard"),
	NUM("max_sources", 1, 1u << 16, 1, "", engine.core.max_sources, "event sources per shard"),
	NUM("max_inbound_positions", 1, 1u << 24, 1, "", engine.core.max_inbound,
	    "positions with inbound supply (purchase orders, transfers) at once, per shard"),
	NUM("max_promises", 1, 1u << 26, 1, "", engine.core.max_promises,
	    "reservation lines promised against inbound supply at once, per shard"),
	ENUM("clock", clocks, clock,
	     "the engine's time: `wall` (reservations expire on time: the wall clock at start, then the monotonic clock, "
	     "so a step of the wall clock while atpd runs moves no expiry; a warning and `atpd_clock_offset_seconds` "
	     "tell it, a restart takes the wall clock again, never going back past the time recovered), `events` (the "
	     "events' occurred_at: replays of simulated days), `frozen` (nothing expires)"),
	MS("tick_ms", HOUR_MS, tick_ms, "under `clock = wall`, due reservations expire this often"),
	ENUM("allow_plaintext", bools, allow_plaintext,
	     "`true`: without `tls_cert`, the event stream and gRPC may listen on an address other than loopback in "
	     "plaintext (anyone who reaches the port may send and reserve); `false`: such a listener refuses the start"),
	/* security */
	STR("tls_cert", tls.cert, "PEM certificate chain: the event stream and gRPC speak TLS (reloaded on SIGHUP)"),
	STR("tls_key", tls.key, "PEM private key of `tls_cert`"),
	STR("tls_client_ca", tls.client_ca,
	    "PEM CAs of client certificates: clients are asked for one, and a call or Hello without one that verifies "
	    "(or a bearer token) is refused UNAUTHENTICATED"),
	ENUM("tls_min_version", tls_versions, tls.min_version, "the oldest TLS version accepted"),
	STR("tls_ciphers", tls.ciphers, "TLS 1.2 cipher list (OpenSSL syntax); none: OpenSSL's default"),
	STR("tls_ciphersuites", tls.ciphersuites, "TLS 1.3 suites, e.g. TLS_AES_256_GCM_SHA384; none: OpenSSL's default"),
	STR("tls_groups", tls.groups, "key exchange groups, e.g. X25519:P-256; none: OpenSSL's default"),
	STR("authz_file", authz_file,
	    "who may do what (see \"Security\"): every client must authenticate, and is refused what the file does "
	    "not grant (reloaded on SIGHUP)"),
	STR("user", user, "started as root: become this user (and its group) before opening anything; none: stay"),
	/* the TCP event stream */
	ADDR("listen", stream.listen, listen,
	     "the TCP event stream's HOST:PORT (port 0: any free one, logged); `none`: no listener"),
	NUM("max_connections", 1, 1u << 20, 1, "", stream.max_connections, "event stream connections"),
	NUM("max_frame", 1, ATP_WIRE_MESSAGE_MAX, 1, "bytes", stream.max_frame, "one frame of the event stream"),
	NUM("max_batch", 1, ATP_WIRE_BATCH_MAX, 1, "events", stream.max_batch, "events of one EventBatch"),
	NUM("max_unacked_mb", 1, 1024, MIB, "MiB", stream.max_unacked,
	    "bytes received on a connection and not yet acknowledged; beyond, it is not read"),
	MS("frame_timeout_ms", HOUR_MS, stream.frame_timeout_ms, "a frame begun must be whole within this"),
	MS("idle_ms", DAY_MS, stream.idle_ms, "an event stream connection silent this long is closed"),
	MS("ack_timeout_ms", HOUR_MS, stream.ack_timeout_ms, "a connection not reading its Acks this long is closed"),
	ENUM("on_invalid", on_invalid, stream.on_invalid,
	     "a malformed event: `stop` its source (refused, seq not consumed) or `deadletter` (stored, seq consumed, the "
	     "feed goes on); per source: `source.NAME.on_invalid`"),
	NUM("deadletter_max", 1, 1u << 20, 1, "entries", deadletter_max,
	    "the dead-letter store's bound; when full a dead-letter source stops as under `stop`"),
	NUM("deadletter_retention_hours", 0, 87600, HOUR_MS, "h", deadletter_retention_ms,
	    "dead letters older than this are purged (checked once a minute, logged); 0: kept until purged by hand"),
	/* the event stream over UDP */
	ADDR("udp_listen", udp.listen, udp_on,
	     "the event stream over UDP (see \"The event stream over UDP\"): HOST:PORT; `none`: no socket"),
	NUM("udp_max_datagram", 64, 65000, 1, "bytes", udp.max_datagram,
	    "one datagram (1472: an IPv4 datagram within a 1500-byte MTU, never fragmented)"),
	NUM("udp_max_peers", 1, 1u << 20, 1, "", udp.max_peers, "UDP senders (address and port) remembered at once"),
	STR("udp_sources", udp.sources,
	    "comma-separated shell patterns of the sources that may send over UDP (never an `@` source); none: no "
	    "source"),
	STR("dpdk_eal", dpdk.eal,
	    "the UDP event stream from a NIC queue through DPDK: EAL arguments (e.g. `-l 0 --in-memory "
	    "--vdev=net_af_packet0,iface=eth1`); none: no DPDK (see \"The event stream over UDP\")"),
	STR("dpdk_ip", dpdk.ip, "the IPv4 address atpd answers ARP and UDP to on the DPDK port"),
	NUM("dpdk_udp_port", 1, 65535, 1, "", dpdk.udp_port, "the UDP port of the event stream on the DPDK port"),
	NUM("dpdk_mbufs", 511, 1u << 22, 1, "mbufs", dpdk.mbufs, "the DPDK packet buffer pool"),
	NUM("dpdk_port", 0, 1023, 1, "", dpdk.port_id, "the DPDK port (ethdev) polled"),
	NUM("dpdk_queues", 1, 16, 1, "", dpdk.queues,
	    "receive queues of the port, polled in turn (RSS spreads senders over them where the NIC hashes UDP)"),
	/* the gRPC API */
	ADDR("grpc_listen", grpc.listen, grpc_on, "the gRPC API's HOST:PORT; `none`: no listener"),
	NUM("grpc_max_connections", 1, 1u << 20, 1, "", grpc.max_connections, "gRPC connections"),
	NUM("grpc_max_streams", 1, 1u << 16, 1, "", grpc.max_streams, "concurrent streams per connection"),
	NUM("grpc_max_calls", 1, 1u << 20, 1, "", grpc.max_calls,
	    "calls in flight, every connection; beyond: RESOURCE_EXHAUSTED"),
	NUM("grpc_max_message", 1, 4u << 20, 1, "bytes", grpc.max_message, "one request message"),
	NUM("grpc_max_header_list", 1, 1u << 20, 1, "bytes", grpc.max_header_list, "one request's header list"),
	NUM("grpc_max_reserve_lines", 1, 4096, 1, "", grpc.max_reserve_lines, "lines of one Reserve"),
	NUM("grpc_max_scans", 1, 1024, 1, "", grpc.max_scans, "Scans streaming at once"),
	MS("grpc_idle_ms", DAY_MS, grpc.idle_ms, "a gRPC connection without a frame or a call this long is closed"),
	MS("grpc_send_timeout_ms", HOUR_MS, grpc.send_timeout_ms, "a peer not taking its replies this long is reset"),
	/* the channel stream */
	ENUM("channel_stream", stream_modes, channel_stream,
	     "`auto`: on when channels are configured at start; `on`: also without, so that SIGHUP can add the first; "
	     "`off`"),
	NUM("channel_retention_mb", 1, 1u << 16, MIB, "MiB", hub.retention_bytes, "a channel's stream kept for resumes"),
	NUM("channel_retention_s", 0, 30u * 86400, 1000, "s", hub.retention_ms,
	    "the same, by age; 0: by size only"),
	NUM("channel_conflate_mb", 1, 1u << 16, MIB, "MiB", hub.conflate_bytes,
	    "a subscriber this far behind gets one delta per position instead of every one"),
	NUM("channel_max_subscribers", 1, 1u << 16, 1, "", hub.max_subscribers, "subscribers, every channel"),
	MS("channel_heartbeat_ms", HOUR_MS, hub.heartbeat_ms, "a quiet subscriber gets a heartbeat this often"),
	NUM("channel_busy_mb_s", 0, 1u << 16, MIB, "MiB/s", grpc.fanout_busy_bytes_s,
	    "while ingest is heavy (10,000 events or calls a second or more), all subscribers together are sent at "
	    "most this much a second (the rest waits, conflated); 0: no limit"),
	/* metrics and logs */
	ADDR("metrics_listen", metrics_listen, metrics_on, "Prometheus's `GET /metrics`; `none`: no listener"),
	NUM("metrics_max_kb", 1, 1u << 20, 1024, "KiB", metrics_max_bytes, "the largest exposition (one buffer per scraper)"),
	ENUM("log_level", levels, log_level, "the least severe level logged"),
	ENUM("log_format", formats, log_format,
	     "`text`: `atpd: message` lines; `logfmt`: `ts=... level=... msg=\"...\"` (what deploy/ uses)"),
};

/* The field at byte off of s. */
#define AT(s, off) ((char *)(s) + (off))

static int parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static void store_u(void *p, size_t size, uint64_t v)
{
	assert(size == 4 || size == 8);  /* the table's fields are u32 or u64 */
	if (size == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
	} else {
		memcpy(p, &v, 8);
	}
}

static uint64_t load_u(const void *p, size_t size)
{
	uint32_t x;
	uint64_t y;
	if (size == 4) {
		memcpy(&x, p, 4);
		return x;
	}
	memcpy(&y, p, 8);
	return y;
}

/* source.NAME.on_invalid = stop|deadletter: 0, or -1 with why in err. */
static int source_setting(atp_stream_config *c, const char *key, const char *v, char *err, size_t errlen)
{
	const char *name = key + 7, *dot = strrchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : 0;
	if (!dot || strcmp(dot, ".on_invalid") != 0 || len == 0 || len > ATP_SOURCE_MAX || name[0] == '@') {
		snprintf(err, errlen, "%s: expected source.NAME.on_invalid (NAME a source of 1 to %d bytes)", key,
			 ATP_SOURCE_MAX);
		return -1;
	}
	int policy = strcmp(v, "stop") == 0 ? ATP_STREAM_STOP : strcmp(v, "deadletter") == 0 ? ATP_STREAM_DEADLETTER : -1;
	if (policy < 0) {
		snprintf(err, errlen, "%s: '%s' is not stop or deadletter", key, v);
		return -1;
	}
	uint32_t i = 0;
	while (i < c->n_policies && !(strlen(c->policies[i].source) == len && memcmp(c->policies[i].source, name, len) == 0))
		i++;
	if (i == sizeof(c->policies) / sizeof(c->policies[0])) {
		snprintf(err, errlen, "%s: more than %u sources with a policy of their own", key, i);
		return -1;
	}
	snprintf(c->policies[i].source, sizeof(c->policies[i].source), "%.*s", (int)len, name);
	c->policies[i].on_invalid = policy;
	c->n_policies += i == c->n_policies;
	return 0;
}

/* One key = value; 0, or -1 with why in err. */
static int apply(settings *s, const char *key, const char *v, char *err, size_t errlen)
{
	err[0] = 0;
	int ch = atp_channel_setting(&s->channels, key, v, err, errlen);
	if (ch)
		return ch < 0 ? -1 : 0;
	if (strncmp(key, "source.", 7) == 0)
		return source_setting(&s->stream, key, v, err, errlen);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const setting *t = &table[i];
		if (strcmp(key, t->name) != 0)
			continue;
		void *p = AT(s, t->off);
		uint64_t x;
		switch (t->kind) {
		case K_NUM:
			if (parse_u64(v, t->min, t->max, &x) < 0)
				break;
			assert(t->size == 8 || x * t->scale <= UINT32_MAX);  /* the table's bounds fit its fields */
			store_u(p, t->size, x * t->scale);
			return 0;
		case K_CPU:
			assert(t->size == sizeof(int));
			if (strcmp(v, "none") != 0 && parse_u64(v, 0, t->max, &x) < 0)
				break;
			*(int *)p = strcmp(v, "none") == 0 ? -1 : (int)x;
			return 0;
		case K_ENUM:
			for (int k = 0; t->choices[k]; k++)
				if (strcmp(v, t->choices[k]) == 0) {
					*(int *)p = k;
					return 0;
				}
			break;
		case K_STR:
			if (strlen(v) >= t->size)
				break;
			snprintf(p, t->size, "%s", strcmp(v, "none") == 0 ? "" : v);
			return 0;
		case K_ADDR:
			if (strlen(v) >= t->size)
				break;
			*(bool *)AT(s, t->flag) = strcmp(v, "none") != 0;
			snprintf(p, t->size, "%s", v);
			return 0;
		}
		if (t->kind == K_ENUM)
			snprintf(err, errlen, "%s: '%s' is not one of the choices (see atpd --help-settings)", key, v);
		else if (t->kind == K_ADDR || t->kind == K_STR)
			snprintf(err, errlen, "%s: longer than %zu bytes", key, t->size - 1);
		else
			snprintf(err, errlen, "%s: '%s' is not a number in [%" PRIu64 ", %" PRIu64 "]%s", key, v, t->min, t->max,
				 t->kind == K_CPU ? " or none" : "");
		return -1;
	}
	snprintf(err, errlen, "unknown setting '%s' (atpd --help-settings lists them)", key);
	return -1;
}

static int read_config(const char *path, settings *s)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		atp_log(ATP_LOG_ERROR, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[768], err[256];
	for (unsigned n = 1; fgets(line, sizeof(line), f); n++) {
		char key[64], value[640];
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		/* the value: the rest of the line, trimmed (EAL arguments have spaces) */
		int got = sscanf(line, " %63[A-Za-z0-9_.-] = %639[^\n]", key, value);
		for (size_t e = got == 2 ? strlen(value) : 0; e && strchr(" \t\r", value[e - 1]);)
			value[--e] = 0;
		if (got != 2 || !value[0]) {
			if (strspn(line, " \t\r\n") == strlen(line))
				continue;
			atp_log(ATP_LOG_ERROR, "%s:%u: expected 'key = value'", path, n);
			fclose(f);
			return -1;
		}
		if (apply(s, key, value, err, sizeof(err)) < 0) {
			atp_log(ATP_LOG_ERROR, "%s:%u: %s", path, n, err);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static void defaults(settings *s)
{
	*s = (settings){ .engine = atp_engine_config_default(), .stream = atp_stream_config_default(), .listen = true,
			 .udp = atp_udp_config_default(), .dpdk = atp_dpdk_config_default(),
			 .grpc = atp_grpc_config_default(), .grpc_on = true, .tick_ms = 1000,
			 .hub = atp_hub_config_default(), .metrics_listen = "127.0.0.1:9464", .metrics_on = true,
			 .metrics_max_bytes = 1u << 20, .log_level = ATP_LOG_INFO, .deadletter_max = 10000,
			 .tls = { .min_version = 1 } };
}

/* Whether HOST:PORT's host is loopback: 127.0.0.0/8, [::1] or localhost (a name that may resolve elsewhere is not). */
static bool loopback(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	char host[64];
	if (n >= sizeof(host))
		return false;
	snprintf(host, sizeof(host), "%.*s", (int)n, addr);
	unsigned a, b, c, d;
	char tail;
	return strcmp(host, "[::1]") == 0 || strcmp(host, "localhost") == 0 ||
	       (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256);
}

int settings_load(settings *s, int argc, char **argv, const char **data)
{
	defaults(s);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			if (data)
				*data = argv[i + 1];
			i++;
		} else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--check-config") == 0) && i + 1 < argc) {
			s->check_only |= strcmp(argv[i], "--check-config") == 0;
			if (read_config(argv[++i], s) < 0)
				return -1;
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			char key[64], err[256];
			const char *v = strchr(argv[++i], '=');
			if (!v || v - argv[i] >= (long)sizeof(key)) {
				atp_log(ATP_LOG_ERROR, "--set wants KEY=VALUE, got '%s'", argv[i]);
				return -1;
			}
			snprintf(key, sizeof(key), "%.*s", (int)(v - argv[i]), argv[i]);
			if (apply(s, key, v + 1, err, sizeof(err)) < 0) {
				atp_log(ATP_LOG_ERROR, "--set %s: %s", argv[i], err);
				return -1;
			}
		} else if (strcmp(argv[i], "--help-settings") == 0) {
			s->help = true;
		} else {
			fprintf(stderr, "usage: atpd --data DIR [--config FILE] [--set KEY=VALUE]...\n"
					"       atpd --check-config FILE [--set KEY=VALUE]...\n"
					"       atpd --help-settings\n");
			return -1;
		}
	}
	if (s->dpdk.eal[0] && (!atp_dpdk_available() || !s->dpdk.ip[0])) {
		atp_log(ATP_LOG_ERROR, "dpdk_eal: %s", !atp_dpdk_available()
				? "this atpd was built without DPDK (install libdpdk-dev, then meson setup -Ddpdk=enabled)"
				: "dpdk_ip is needed too: the IPv4 address atpd answers to on the port");
		return -1;
	}
	if (!s->tls.cert[0] != !s->tls.key[0] || (s->tls.client_ca[0] && !s->tls.cert[0])) {
		atp_log(ATP_LOG_ERROR, "%s", s->tls.client_ca[0] && !s->tls.cert[0] ? "tls_client_ca wants tls_cert and tls_key"
										  : "tls_cert and tls_key go together");
		return -1;
	}
	const char *open_to = !s->allow_plaintext && s->udp_on && !loopback(s->udp.listen) ? "udp_listen"
			    : s->tls.cert[0] ? NULL
			    : !s->allow_plaintext && s->listen && !loopback(s->stream.listen) ? "listen"
			    : !s->allow_plaintext && s->grpc_on && !loopback(s->grpc.listen) ? "grpc_listen" : NULL;
	if (open_to) {
		atp_log(ATP_LOG_ERROR, "%s = %s is not a loopback address and atpd speaks plaintext on it: anyone who reaches "
			"it could send events and reserve; refusing to start (allow_plaintext = true accepts it)", open_to,
			strcmp(open_to, "listen") == 0 ? s->stream.listen : strcmp(open_to, "udp_listen") == 0 ? s->udp.listen
														: s->grpc.listen);
		return -1;
	}
	if (s->engine.wal.buffer_bytes > s->engine.wal.segment_bytes / 4)
		s->engine.wal.buffer_bytes = (uint32_t)(s->engine.wal.segment_bytes / 4);
	s->hub.max_positions = s->engine.core.max_positions;
	return 0;
}

void settings_print_reference(FILE *f)
{
	static settings d;
	defaults(&d);
	fputs("| setting | default | values | what it sets |\n|---|---|---|---|\n", f);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const setting *t = &table[i];
		const void *p = AT(&d, t->off);
		char dflt[160], range[160];
		switch (t->kind) {
		case K_NUM:
			snprintf(dflt, sizeof(dflt), "%" PRIu64, load_u(p, t->size) / t->scale);
			snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64 "%s%s", t->min, t->max, t->unit[0] ? " " : "", t->unit);
			break;
		case K_CPU:
			snprintf(dflt, sizeof(dflt), *(const int *)p < 0 ? "none" : "%d", *(const int *)p);
			snprintf(range, sizeof(range), "0..%" PRIu64 ", none", t->max);
			break;
		case K_ENUM:
			snprintf(dflt, sizeof(dflt), "%s", t->choices[*(const int *)p]);
			range[0] = 0;
			for (int k = 0; t->choices[k]; k++)
				snprintf(range + strlen(range), sizeof(range) - strlen(range), "%s%s", k ? ", " : "", t->choices[k]);
			break;
		case K_STR:
			snprintf(dflt, sizeof(dflt), "%s", *(const char *)p ? (const char *)p : "none");
			snprintf(range, sizeof(range), "text, none");
			break;
		default:
			snprintf(dflt, sizeof(dflt), "%s", (const char *)p);
			snprintf(range, sizeof(range), "HOST:PORT, none");
			break;
		}
		fprintf(f, "| `%s` | %s | %s | %s |\n", t->name, dflt, range, t->help);
	}
	fputs("| `channel.NAME.*` | | | a sales channel (see \"The channel stream\") |\n", f);
	fputs("| `source.NAME.on_invalid` | | stop, deadletter | `on_invalid` for one source (see \"Dead letters\") |\n", f);
}
