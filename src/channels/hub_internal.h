/*
 * hub_internal.h — what the parts of the channel hub share: hub.c (the
 * mirror, channel messages and their buffers, reloads), hub_sub.c (the
 * subscribers: resume, resync, conflation, heartbeats) and hub_token.c
 * (resume tokens). One thread.
 */
#ifndef ATP_HUB_INTERNAL_H
#define ATP_HUB_INTERNAL_H

#include "atp/hub.h"
#include "atp/wire_api.h"

#include <stddef.h>
#include <stdint.h>

/* A place in a shard's part of the stream. */
typedef struct place {
	uint64_t lsn;
	uint32_t index;
} place;

static inline bool place_after(place a, place b)
{
	return a.lsn > b.lsn || (a.lsn == b.lsn && a.index > b.index);
}

/* A position as the hub mirrors it. */
typedef struct hub_pos {
	int64_t atp;
	uint64_t version;
	const char *sku, *location;  /* the engine's table's keys */
	uint8_t sku_len, loc_len;
	bool known;
	uint8_t pad;
	uint32_t group;              /* its SKU's group in the shard */
	uint64_t member;             /* bit c: channel slot c sees it */
} hub_pos;

/* The SKU -> group index of a shard (open addressing). */
typedef struct group_slot {
	uint64_t hash;
	uint32_t group1;             /* group + 1; 0: empty */
	uint32_t first;              /* a position of the group (its key names the SKU) */
} group_slot;

/*
 * The hub's arrays grow (doubling) with what the engine has, and are
 * written before they are read: a page first read maps the shared zero
 * page, and the write after it must then shoot that mapping down on every
 * CPU the process runs on (an IPI per page, dear in a VM, stalling the
 * shard workers too).
 */
typedef struct hub_shard {
	hub_pos *pos;                /* by id */
	uint32_t pos_cap;
	uint32_t count;              /* ids seen: 0 .. count-1 may be known */
	uint32_t n_groups;
	group_slot *groups;
	uint64_t group_mask;
	place progress;              /* the place of the last delta taken */
} hub_shard;

/*
 * A message in a channel's buffer: this header, then the FlatBuffer,
 * padded to 8. A header with fb_len 0 pads to the buffer's end.
 *
 * The message is stored as every subscriber reading the buffer in order
 * is sent it: kind UPDATE, and the canonical token, the channel's own
 * places after it (hub_channel.cv); its check is written by the first
 * such subscriber (sealed). The header ends with the gRPC message prefix,
 * so such a subscriber is sent grpc[] and the FlatBuffer as they lie.
 */
typedef struct msg_hdr {
	uint64_t lsn;
	uint64_t at_ms;
	uint32_t len;                /* of the whole record */
	uint32_t fb_len;
	uint32_t index;
	uint32_t pos;
	uint16_t shard;
	uint16_t kind_off;           /* in the FlatBuffer */
	uint16_t token_off;          /* of the token's bytes, in the FlatBuffer */
	uint8_t sealed;              /* the canonical token's check is written */
	uint8_t pad[4];
	uint8_t grpc[5];             /* 0, the FlatBuffer's length (big-endian): the FlatBuffer follows */
} msg_hdr;
_Static_assert(offsetof(msg_hdr, grpc) + 5 == sizeof(msg_hdr), "the gRPC prefix lies right before the FlatBuffer");

typedef struct hub_channel {
	bool used;
	uint32_t gen;                /* +1 at every (re)definition: its subscribers resync */
	atp_channel_def def;
	uint32_t name_len;
	uint64_t hash;
	uint32_t subscribers;
	uint8_t *buf;                /* the retention buffer */
	uint64_t cap;
	uint64_t head, tail;         /* offsets ever written / dropped: the buffer holds [tail, head) */
	place *tail_vec;             /* per shard: everything at or before it is no longer held */
	place *cv;                   /* per shard: the place of its newest message (the canonical token) */
	int64_t *sums[ATP_ENGINE_SHARDS_MAX];    /* per shard: the channel's figure of each SKU group */
	uint64_t *latest[ATP_ENGINE_SHARDS_MAX]; /* per shard: each position's newest message, offset + 1 (it may have been dropped) */
	uint32_t sums_cap[ATP_ENGINE_SHARDS_MAX], latest_cap[ATP_ENGINE_SHARDS_MAX];
} hub_channel;

struct atp_hub {
	atp_hub_config cfg;
	hub_shard *shards[ATP_ENGINE_SHARDS_MAX];
	uint32_t n_shards;           /* atp_hub_start(); until then 0 */
	uint8_t identity[32];
	uint64_t dir_tag, check_seed;
	hub_channel ch[ATP_CHANNELS_MAX];
	uint64_t used;               /* bit c: ch[c] is a channel */
	atp_hub_sub **subs;
	uint32_t n_subs;
	uint8_t *scratch;            /* builder memory for one message */
	atp_hub_stats stats;
};

enum sub_state { SUB_RESYNC_MARK, SUB_RESYNC, SUB_LIVE, SUB_ENDED };

struct atp_hub_sub {
	hub_channel *ch;
	uint32_t gen;                /* the channel's gen it follows */
	uint8_t state;               /* enum sub_state */
	uint64_t cursor;             /* the next offset of the buffer to look at */
	place *v;                    /* per shard: the place up to which it has everything */
	uint32_t rs_shard, rs_pos;   /* a resync's progress through the mirror */
	uint64_t last_sent_ms;
	bool conflating;             /* fell behind, not yet back at the head */
	bool canonical;              /* v is the canonical token of the message before cursor */
	char why[160];
};

/* hub.c */
hub_shard *hub_shard_of(atp_hub *h, uint32_t shard);
/* Whether a later message of the same position follows the one at off in c's buffer. */
static inline bool hub_superseded(const hub_channel *c, uint64_t off, uint32_t shard, uint32_t pos)
{
	return pos < c->latest_cap[shard] && c->latest[shard][pos] > off + 1;
}

/* The channel's figure of group g of shard (0 when never set). */
static inline int64_t hub_sum(const hub_channel *c, uint32_t shard, uint32_t g)
{
	return g < c->sums_cap[shard] ? c->sums[shard][g] : 0;
}
const msg_hdr *hub_msg_at(const hub_channel *c, uint64_t off);
/* Past the padding at off, if any: the offset of the record there (or head). */
uint64_t hub_skip_pad(const hub_channel *c, uint64_t off);
/* The next record's offset after the one at off. */
uint64_t hub_msg_next(const hub_channel *c, uint64_t off);
/* Build a message (its token a placeholder of the right size) into the hub's scratch: its bytes and size, and where its kind and token lie. */
const uint8_t *hub_build(atp_hub *h, const atp_v1_delta *d, uint32_t *size,
			 uint16_t *kind_off, uint16_t *token_off);

/* hub_token.c */
uint32_t hub_token_bytes(const atp_hub *h);
enum { TOKEN_INCOMPLETE = 1, TOKEN_CONFLATING = 2 };
/* The token of v (flags: TOKEN_*) for channel c into out (hub_token_bytes). */
void hub_token_write(const atp_hub *h, const hub_channel *c, const place *v, uint8_t flags, uint8_t *out);
/*
 * hub_token_write() in two steps: the places, then the rest and the check
 * (the directory's tag is known only from atp_hub_start(), after the
 * recovery's messages were written).
 */
void hub_token_put_places(const atp_hub *h, const place *v, uint8_t *out);
void hub_token_seal(const atp_hub *h, const hub_channel *c, uint8_t flags, uint8_t *out);
/* Whether token t (written here) holds every place of v: v[i] at or before its place i. */
bool hub_token_covers(const atp_hub *h, const uint8_t *t, const place *v);
/* The places of token t (written here) into v. */
void hub_token_places(const atp_hub *h, const uint8_t *t, place *v);
/*
 * 0 with v and flags filled, 1 when it must be resynced (another
 * definition, an incomplete view), or ATP_HUB_E_* with why.
 */
int hub_token_read(const atp_hub *h, const hub_channel *c, const uint8_t *t, uint32_t len, place *v,
		   uint8_t *flags, char *why, size_t whylen);

#endif
