/*
 * atp/hub.h — the channel hub: durable deltas in, one ordered, resumable
 * stream per sales channel out.
 *
 * The hub takes the engine's deltas (atp_engine_config.on_delta: only once
 * durable, in per-shard order) and keeps a mirror of every position's ATP,
 * so each channel's figures (atp/channel.h) are computed from the deltas
 * alone. A delta that changes a channel's figure of a position becomes one
 * message of that channel (an atp.v1.Delta, fbs/delta.fbs), built once and
 * kept in the channel's retention buffer (bounded in bytes and age), from
 * which every subscriber of the channel reads at its own pace. A
 * subscriber reading the buffer in order is sent each message as it lies
 * there, token included (a copy, nothing built per subscriber).
 *
 * The stream is partitioned by shard: a message's place is (shard, lsn,
 * index), and a subscriber's resume token holds, per shard, the place up to
 * which it has everything (plus the directory, the channel's definition and
 * a check). Guarantees:
 *   - per position (so per SKU) messages arrive in the order the engine
 *     applied the events, each with the position's version, which only
 *     increases;
 *   - deterministic: the engine regenerates every delta after a snapshot
 *     with the same place and values, so a resumed subscriber is sent
 *     nothing twice and misses nothing;
 *   - a subscriber resuming from a token the buffer no longer covers (or
 *     without a token, or after its channel was redefined) gets a RESYNC,
 *     the channel's full view (SNAPSHOT messages, live updates merged in
 *     without ever sending an older value after a newer one), then LIVE;
 *   - a slow subscriber never holds anything up: while it is more than
 *     conflate_bytes behind, updates that a later one of the same position
 *     supersedes are skipped (CONFLATED); once the buffer has dropped what
 *     it has not read, it is resynced. Memory is the buffers (bounded) and
 *     a few bytes per subscriber and per position.
 * Single-threaded: everything runs in the thread of the engine's router
 * (the front end's loop), which is where on_delta is called.
 */
#ifndef ATP_HUB_H
#define ATP_HUB_H

#include "atp/channel.h"
#include "atp/engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atp_hub_config {
	uint32_t max_positions;     /* per shard: the engine's core.max_positions */
	uint64_t retention_bytes;   /* per channel */
	uint64_t retention_ms;      /* messages older than this are dropped too; 0: by bytes only */
	uint64_t conflate_bytes;    /* a subscriber further behind than this is conflated */
	uint32_t max_subscribers;   /* all channels */
	uint32_t heartbeat_ms;      /* an idle subscriber gets a HEARTBEAT this often */
} atp_hub_config;

/* 1M positions, 64 MiB and 1 h per channel, conflate past 16 MiB, 1024 subscribers, 1 s heartbeats. */
atp_hub_config atp_hub_config_default(void);

typedef struct atp_hub atp_hub;

/* NULL with err (a bad config, out of memory). The channels are copied. */
atp_hub *atp_hub_create(const atp_hub_config *cfg, const atp_channel_set *channels, char *err, size_t errlen);
void atp_hub_destroy(atp_hub *h);

/* The engine's on_delta (ctx: the hub). */
void atp_hub_on_delta(void *hub, const atp_engine_delta *d, size_t n);

/* Once the engine is open: its shard count and identity (tokens are made and checked from here on). */
void atp_hub_start(atp_hub *h, uint32_t shards, const uint8_t identity[32]);

/*
 * A new set of channels (SIGHUP): a channel kept unchanged keeps its
 * stream and subscribers; a redefined one drops its buffer and resyncs its
 * subscribers; a removed one ends its subscribers (ATP_HUB_ENDED); a new
 * one starts empty. Writes a line per change into log (may be NULL).
 */
void atp_hub_reload(atp_hub *h, const atp_channel_set *channels, char *log, size_t loglen);

/* ---- subscribers ---- */

typedef struct atp_hub_sub atp_hub_sub;

enum atp_hub_error {
	ATP_HUB_E_CHANNEL = -1,   /* no such channel */
	ATP_HUB_E_LIMIT = -2,     /* max_subscribers reached */
	ATP_HUB_E_TOKEN = -3,     /* a damaged or forged token */
	ATP_HUB_E_OTHER_DIR = -4, /* a token of another data directory */
	ATP_HUB_E_NOMEM = -5,
};

/*
 * Subscribe to channel from token (len 0: none, the full view first).
 * 0 with *out, or an ATP_HUB_E_* with why. A token the hub can no longer
 * serve from its buffer (too old, another definition of the channel, a
 * resync that was not finished) is not an error: the subscriber starts
 * with a RESYNC.
 */
int atp_hub_subscribe(atp_hub *h, atp_str channel, const uint8_t *token, uint32_t len, atp_hub_sub **out,
		      char *why, size_t whylen);
void atp_hub_unsubscribe(atp_hub *h, atp_hub_sub *s);

/*
 * The subscriber's next messages into out (at most cap bytes), each
 * prefixed as gRPC frames a message (a 0 byte and a big-endian u32
 * length): whole messages only. Returns the bytes written; 0 when there
 * is nothing to send now (or the subscriber ended).
 */
size_t atp_hub_read(atp_hub *h, atp_hub_sub *s, uint8_t *out, size_t cap, uint64_t now_ms);
/* Whether atp_hub_read() would write something now (or the subscriber ended). */
bool atp_hub_ready(const atp_hub *h, const atp_hub_sub *s, uint64_t now_ms);
/* Whether the subscriber's stream is over (its channel removed): why says so. */
bool atp_hub_ended(const atp_hub_sub *s, const char **why);

/* Drop messages past the age limit (call now and then). */
void atp_hub_tick(atp_hub *h, uint64_t now_ms);

typedef struct atp_hub_stats {
	uint64_t deltas;          /* engine deltas taken (BASE included) */
	uint64_t messages;        /* channel messages built */
	uint64_t evicted;         /* dropped from buffers by size or age */
	uint64_t sent;            /* messages written for subscribers (all kinds) */
	uint64_t conflated;       /* updates skipped for slow subscribers */
	uint64_t resyncs;
	uint64_t buffer_bytes;    /* held by all channels' buffers */
	uint32_t channels, subscribers;
} atp_hub_stats;

void atp_hub_stats_get(const atp_hub *h, atp_hub_stats *out);

typedef struct atp_hub_channel_stats {
	const char *name;         /* the hub's copy: valid until the next reload */
	uint32_t subscribers;
	uint64_t written_bytes;   /* messages ever written to its buffer */
	uint64_t buffer_bytes;    /* held now */
	uint64_t lag_bytes;       /* of its slowest live subscriber: written and not yet read (0: none behind) */
	uint64_t lag_ms;          /* and the age of the oldest message it has not read */
} atp_hub_channel_stats;

/* Per channel, in slot order: fills up to max, returns how many there are. */
size_t atp_hub_channel_stats_get(const atp_hub *h, atp_hub_channel_stats *out, size_t max);

/* For tests and tools: a channel's figure of a position and of its SKU as the hub holds them (0 when unknown). */
bool atp_hub_figure(const atp_hub *h, atp_str channel, uint32_t shard, atp_str sku, atp_str location,
		    int64_t *figure, int64_t *sku_figure);

/* Resume tokens are 24 + 12 x shards bytes. */
#define ATP_HUB_TOKEN_BYTES(shards) (24u + 12u * (shards))

#ifdef __cplusplus
}
#endif

#endif
