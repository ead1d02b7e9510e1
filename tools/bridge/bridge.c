/*
 * bridge.c — atp-bridge: one sales channel's stream from atpd into a NATS
 * JetStream stream, in order, exactly as atpd numbers it.
 *
 *   atp-bridge --channel NAME [--grpc HOST:PORT] [--nats URL] [--stream NAME]
 *              [--window N] [--status FILE]
 *
 * Each message of the channel (an atp.v1.Delta, as atpd sent it) becomes a
 * JetStream message on atp.<channel>.<sku> (a SKU's bytes outside
 * [A-Za-z0-9_-] as ~XX), or atp.<channel>.~control for RESYNC and LIVE;
 * heartbeats are not published. Headers: Nats-Msg-Id derived from the
 * message's place (shard.seq.index; r<resync>... for a resync's), so the
 * broker's duplicate window drops a resend; Nats-Expected-Last-Msg-Id, the
 * id of the message published before it, so the stream never takes a
 * message after a gap; Atp-Token, the resume token after the message.
 *
 * Where it resumes: from the stream's own last message (its Atp-Token), at
 * the start, after its own crash, and whenever a publish fails (the broker
 * restarted, lost what it had acknowledged, timed out): it waits for what
 * is in flight, reads the stream's last message again and resubscribes to
 * atpd from its token. A broker that lost acknowledged messages (JetStream
 * syncs to disk every two minutes by default) is thereby repaired from
 * atpd's own buffer; if atpd no longer holds that place, atpd resyncs the
 * channel (RESYNC, the full view, LIVE), which consumers apply the same way.
 *
 * Bounded: at most --window (8192) publishes await their ack; beyond, it
 * stops reading from atpd, whose buffer then holds the channel (conflated,
 * then resynced: atp/hub.h). While the broker is down, libnats buffers up
 * to 8 MiB and reconnects every 100 ms (+ jitter); every outage, rewind
 * and error is a log line, and --status FILE (JSON, rewritten every
 * second) shows the broker's state, counts and the last error.
 */
#define _GNU_SOURCE
#include "channel_client.h"
#include "tls_client.h"

#include "atp/channel.h"
#include "atp/wire_api.h"

#include <nats/nats.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define RING (1u << 16)  /* publishes in flight at most (window + one read from atpd) */

typedef struct flight {
	char *token;  /* hex, malloc'ed */
	uint8_t state; /* 0 free, 1 waiting, 2 acked, 3 failed */
} flight;

typedef struct bridge {
	const char *channel;
	char stream[64], subject[96];
	natsConnection *nc;
	jsCtx *js;
	atp_channel_client *client;
	pthread_mutex_t lock;        /* the ring's states, the broker's state: libnats calls back from its threads */
	flight ring[RING];
	uint64_t head, tail;         /* ordinals: acked up to head; published up to tail */
	bool failed;                 /* some publish failed: rewind */
	char last_error[256];
	bool broker_up;
	uint64_t down_since_ms;
	char last_id[160];           /* of the last message published */
	char resync[20];             /* the current resync's id */
	uint64_t published, acked, rewinds, resyncs, skipped;
	uint32_t window;
	const char *status_path;
} bridge;

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "atp-bridge: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void error_is(bridge *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void error_is(bridge *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&b->lock);
	vsnprintf(b->last_error, sizeof(b->last_error), fmt, ap);
	pthread_mutex_unlock(&b->lock);
	va_end(ap);
}

/* ---- libnats' threads ---- */

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	bridge *b = closure;
	const char *ord = NULL;
	natsMsgHeader_Get(msg, "Atp-Ord", &ord);
	uint64_t n = ord ? strtoull(ord, NULL, 10) : UINT64_MAX;
	pthread_mutex_lock(&b->lock);
	if (n >= b->head && n < b->tail) {
		b->ring[n % RING].state = pa ? 2 : 3;
		if (!pa) {
			b->failed = true;
			snprintf(b->last_error, sizeof(b->last_error), "publish failed: %s (%d) %s",
				 natsStatus_GetText(pae->Err), (int)pae->ErrCode, pae->ErrText ? pae->ErrText : "");
		}
	}
	pthread_mutex_unlock(&b->lock);
	natsMsg_Destroy(msg);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	bridge *b = closure;
	pthread_mutex_lock(&b->lock);
	if (b->broker_up) {
		b->broker_up = false;
		b->down_since_ms = mono_ms();
	}
	pthread_mutex_unlock(&b->lock);
	say("the broker is unreachable: reconnecting (publishes wait in a bounded buffer)");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	bridge *b = closure;
	pthread_mutex_lock(&b->lock);
	uint64_t down = mono_ms() - b->down_since_ms;
	b->broker_up = true;
	pthread_mutex_unlock(&b->lock);
	say("the broker is back after %" PRIu64 " ms", down);
}

/* ---- publishing ---- */

static void hex_of(const uint8_t *p, uint32_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (uint32_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* A SKU as one subject token: [A-Za-z0-9_-] as they are, any other byte as ~XX. */
static void subject_token(atp_str sku, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t o = 0;
	for (uint32_t i = 0; i < sku.len; i++) {
		unsigned char c = (unsigned char)sku.ptr[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
			out[o++] = (char)c;
		} else {
			out[o++] = '~';
			out[o++] = digits[c >> 4];
			out[o++] = digits[c & 15];
		}
	}
	out[o] = 0;
}

static void publish(void *ctx, const atp_channel_msg *m)
{
	bridge *b = ctx;
	pthread_mutex_lock(&b->lock);
	bool skip = b->failed || b->tail - b->head >= RING;
	if (b->tail - b->head >= RING)
		b->failed = true;  /* not with window < RING - one read from atpd; rewind rather than lose order */
	pthread_mutex_unlock(&b->lock);
	if (m->kind == ATP_V1_DELTA_HEARTBEAT || skip)
		return;  /* after a failure what follows is published again from the rewind */
	char id[160], subject[ATP_SKU_MAX * 3 + 128];
	if (m->kind == ATP_V1_DELTA_RESYNC) {
		snprintf(b->resync, sizeof(b->resync), "%016" PRIx64, XXH3_64bits(m->token, m->token_len));
		snprintf(id, sizeof(id), "r%s", b->resync);
		b->resyncs++;
	} else if (m->kind == ATP_V1_DELTA_LIVE) {
		snprintf(id, sizeof(id), "l%s", b->resync);
	} else if (m->kind == ATP_V1_DELTA_SNAPSHOT) {
		snprintf(id, sizeof(id), "r%s.%u.%" PRIx64, b->resync, m->shard,
			 XXH3_64bits_withSeed(m->location.ptr, m->location.len, XXH3_64bits(m->sku.ptr, m->sku.len)));
	} else {
		snprintf(id, sizeof(id), "%u.%" PRIu64 ".%u", m->shard, m->seq, m->index);
	}
	if (m->sku.len) {
		char tok[ATP_SKU_MAX * 3 + 1];
		subject_token(m->sku, tok);
		snprintf(subject, sizeof(subject), "%s.%s", b->subject, tok);
	} else {
		snprintf(subject, sizeof(subject), "%s.~control", b->subject);
	}
	char *token = malloc(2 * (size_t)m->token_len + 1), ord[24];
	natsMsg *msg = NULL;
	if (!token || natsMsg_Create(&msg, subject, NULL, (const char *)m->bytes, (int)m->len) != NATS_OK) {
		free(token);
		pthread_mutex_lock(&b->lock);
		b->failed = true;
		pthread_mutex_unlock(&b->lock);
		return;
	}
	hex_of(m->token, m->token_len, token);
	uint64_t n = b->tail;
	snprintf(ord, sizeof(ord), "%" PRIu64, n);
	natsMsgHeader_Set(msg, "Atp-Token", token);
	natsMsgHeader_Set(msg, "Atp-Ord", ord);
	jsPubOptions o;
	jsPubOptions_Init(&o);
	o.MsgId = id;
	o.ExpectLastMsgId = b->last_id[0] ? b->last_id : NULL;
	o.MaxWait = 5000;
	pthread_mutex_lock(&b->lock);
	b->ring[n % RING] = (flight){ .token = token, .state = 1 };
	b->tail++;
	pthread_mutex_unlock(&b->lock);
	natsStatus s = js_PublishMsgAsync(b->js, &msg, &o);
	if (s != NATS_OK) {
		natsMsg_Destroy(msg);
		pthread_mutex_lock(&b->lock);
		b->ring[n % RING].state = 3;
		b->failed = true;
		snprintf(b->last_error, sizeof(b->last_error), "publish: %s", natsStatus_GetText(s));
		pthread_mutex_unlock(&b->lock);
		return;
	}
	snprintf(b->last_id, sizeof(b->last_id), "%s", id);
	b->published++;
}

/* Acked in order from the head: forget them. true when a publish failed (rewind). */
static bool settle(bridge *b)
{
	pthread_mutex_lock(&b->lock);
	while (b->head < b->tail && b->ring[b->head % RING].state == 2) {
		free(b->ring[b->head % RING].token);
		b->ring[b->head % RING] = (flight){ 0 };
		b->head++;
		b->acked++;
	}
	bool failed = b->failed;
	pthread_mutex_unlock(&b->lock);
	return failed;
}

/* ---- where to resume: the stream's last message ---- */

static bool stream_exists_or_made(bridge *b)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &ec);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return true;
	}
	if (ec != JSStreamNotFoundErr && s != NATS_NOT_FOUND) {
		error_is(b, "stream info: %s (%d)", natsStatus_GetText(s), (int)ec);
		return false;
	}
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	const char *subjects[1] = { NULL };
	char all[112];
	snprintf(all, sizeof(all), "%s.>", b->subject);
	subjects[0] = all;
	cfg.Name = b->stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = 120ll * 1000 * 1000 * 1000;  /* 2 minutes, in ns: the duplicate window */
	s = js_AddStream(&si, b->js, &cfg, NULL, &ec);
	if (s != NATS_OK) {
		error_is(b, "add stream %s: %s (%d)", b->stream, natsStatus_GetText(s), (int)ec);
		return false;
	}
	say("created stream %s on %s (file storage, 2 min duplicate window)", b->stream, all);
	jsStreamInfo_Destroy(si);
	return true;
}

/* The stream's last message: its token and id (none when the stream is empty). false when the broker did not answer. */
static bool last_in_stream(bridge *b, uint8_t *token, uint32_t *len, char *id, size_t idlen)
{
	*len = 0;
	id[0] = 0;
	if (!stream_exists_or_made(b))
		return false;
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &ec);
	if (s != NATS_OK) {
		error_is(b, "stream info: %s (%d)", natsStatus_GetText(s), (int)ec);
		return false;
	}
	uint64_t last = si->State.LastSeq, msgs = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	if (msgs == 0)
		return true;
	natsMsg *m = NULL;
	if ((s = js_GetMsg(&m, b->js, b->stream, last, NULL, &ec)) != NATS_OK) {
		error_is(b, "get message %" PRIu64 ": %s (%d)", last, natsStatus_GetText(s), (int)ec);
		return false;
	}
	const char *hex = NULL, *mid = NULL;
	natsMsgHeader_Get(m, "Atp-Token", &hex);
	natsMsgHeader_Get(m, "Nats-Msg-Id", &mid);
	for (size_t i = 0; hex && hex[i] && hex[i + 1] && *len < ATP_V1_TOKEN_MAX; i += 2) {
		unsigned v;
		if (sscanf(hex + i, "%2x", &v) != 1)
			break;
		token[(*len)++] = (uint8_t)v;
	}
	snprintf(id, idlen, "%s", mid ? mid : "");
	natsMsg_Destroy(m);
	return true;
}

/*
 * Start again from what the stream holds: wait out what is in flight,
 * read the stream's last message (retrying, with backoff and jitter, while
 * the broker does not answer), resubscribe to atpd from its token.
 */
static void rewind_to_stream(bridge *b, const char *why)
{
	jsPubOptions o;
	jsPubOptions_Init(&o);
	o.MaxWait = 15000;
	js_PublishAsyncComplete(b->js, &o);
	pthread_mutex_lock(&b->lock);
	for (uint64_t n = b->head; n < b->tail; n++) {
		free(b->ring[n % RING].token);
		b->ring[n % RING] = (flight){ 0 };
	}
	b->head = b->tail = 0;
	b->failed = false;
	pthread_mutex_unlock(&b->lock);
	uint8_t token[ATP_V1_TOKEN_MAX];
	uint32_t len;
	char id[160];
	uint64_t backoff = 100, seed = mono_ms();
	while (!stopping && !last_in_stream(b, token, &len, id, sizeof(id))) {
		seed = seed * 6364136223846793005ull + 1;
		uint64_t wait = backoff / 2 + (seed >> 33) % (backoff + 1);
		say("the broker does not answer (%s); trying again in %" PRIu64 " ms", b->last_error, wait);
		struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000 };
		nanosleep(&ts, NULL);
		if ((backoff *= 2) > 5000)
			backoff = 5000;
	}
	snprintf(b->last_id, sizeof(b->last_id), "%s", id);
	atp_channel_client_restart(b->client, token, len);
	b->rewinds++;
	say("%s: resuming from the stream's last message (%s)", why, id[0] ? id : "none: the stream is empty");
}

/* ---- status ---- */

static void write_status(bridge *b)
{
	if (!b->status_path)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->status_path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	pthread_mutex_lock(&b->lock);
	fprintf(f,
		"{\"channel\": \"%s\", \"stream\": \"%s\", \"broker\": \"%s\", \"broker_down_ms\": %" PRIu64
		", \"atpd\": \"%s\", \"published\": %" PRIu64 ", \"acked\": %" PRIu64 ", \"in_flight\": %" PRIu64
		", \"rewinds\": %" PRIu64 ", \"resyncs\": %" PRIu64 ", \"last_error\": \"",
		b->channel, b->stream, b->broker_up ? "up" : "down", b->broker_up ? 0 : mono_ms() - b->down_since_ms,
		atp_channel_client_up(b->client) ? "up" : "down", b->published, b->acked, b->tail - b->head, b->rewinds,
		b->resyncs);
	for (const char *p = b->last_error; *p; p++)
		fputc(*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '\'' : *p, f);
	fputs("\"}\n", f);
	pthread_mutex_unlock(&b->lock);
	if (fclose(f) == 0)
		rename(tmp, b->status_path);
}

static int usage(void)
{
	fprintf(stderr, "usage: atp-bridge --channel NAME [--grpc HOST:PORT] [--nats URL] [--stream NAME]\n"
			"                  [--window N] [--status FILE]\n");
	return 2;
}

static int connect_broker(bridge *b, const char *url)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(o, 100, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 8 << 20);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&b->nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		say("cannot connect to %s: %s", url, natsStatus_GetText(s));
		return -1;
	}
	b->broker_up = s == NATS_OK;
	if (!b->broker_up)
		say("%s does not answer yet: connecting in the background", url);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = RING;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = b;
	jo.Wait = 5000;
	if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK) {
		say("JetStream: %s", natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	tls_client_args(&argc, argv);
	static bridge b;
	const char *grpc_target = "127.0.0.1:7401", *url = "nats://127.0.0.1:4222", *stream = NULL;
	b.window = 8192;
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		if (strcmp(argv[i], "--channel") == 0)
			b.channel = v;
		else if (strcmp(argv[i], "--grpc") == 0)
			grpc_target = v;
		else if (strcmp(argv[i], "--nats") == 0)
			url = v;
		else if (strcmp(argv[i], "--stream") == 0)
			stream = v;
		else if (strcmp(argv[i], "--window") == 0)
			b.window = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--status") == 0)
			b.status_path = v;
		else
			return usage();
	}
	if (!b.channel || !atp_channel_name_valid(atp_str_of(b.channel, strlen(b.channel))) || b.window < 1 ||
	    b.window > RING / 2)
		return usage();
	snprintf(b.stream, sizeof(b.stream), "%s", stream ? stream : "");
	if (!stream)
		snprintf(b.stream, sizeof(b.stream), "ATP_%s", b.channel);
	snprintf(b.subject, sizeof(b.subject), "atp.%s", b.channel);
	pthread_mutex_init(&b.lock, NULL);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_IGN);
	if (connect_broker(&b, url) < 0)
		return 1;
	b.client = atp_channel_client_new(grpc_target, b.channel, NULL, 0, publish, &b);
	if (!b.client)
		return 1;
	rewind_to_stream(&b, "starting");
	uint64_t status_at = 0;
	int rc = 0;
	while (!stopping) {
		if (settle(&b)) {
			say("%s", b.last_error);
			rewind_to_stream(&b, "after a failed publish");
			continue;
		}
		if (b.tail - b.head < b.window) {
			if (atp_channel_client_pump(b.client, 100) == 1) {
				const char *why;
				atp_channel_client_status(b.client, &why);
				say("the channel's stream ended: %s", why);
				rc = 1;
				break;
			}
		} else {
			struct timespec ts = { 0, 2000000 };
			nanosleep(&ts, NULL);  /* the window is full: atpd waits (and conflates) meanwhile */
		}
		if (mono_ms() - status_at >= 1000) {
			write_status(&b);
			status_at = mono_ms();
		}
	}
	jsPubOptions o;
	jsPubOptions_Init(&o);
	o.MaxWait = 5000;
	js_PublishAsyncComplete(b.js, &o);
	settle(&b);
	write_status(&b);
	say("stopping: %" PRIu64 " published, %" PRIu64 " acknowledged, %" PRIu64 " rewinds, %" PRIu64 " resyncs",
	    b.published, b.acked, b.rewinds, b.resyncs);
	atp_channel_client_free(b.client);
	/* Publishes the broker never acknowledged (it went away as we stopped): the next start resends them from atpd. */
	natsMsgList pending;
	if (js_PublishAsyncGetPendingList(&pending, b.js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	jsCtx_Destroy(b.js);
	natsConnection_Destroy(b.nc);
	nats_Close();
	return rc;
}
