/*
 * hub.c — the channel hub's input side (see atp/hub.h): the mirror of
 * every position's ATP, the SKU groups, each channel's figures, the
 * messages built from deltas and the buffers that retain them, reloads.
 */
#define _GNU_SOURCE
#include "hub_internal.h"
#include "atp/log.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define SCRATCH (16u << 10)

atp_hub_config atp_hub_config_default(void)
{
	return (atp_hub_config){
		.max_positions = 1u << 20,
		.retention_bytes = 64ull << 20,
		.retention_ms = 3600ull * 1000,
		.conflate_bytes = 16ull << 20,
		.max_subscribers = 1024,
		.heartbeat_ms = 1000,
	};
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- shards, positions, groups ---- */

static void out_of_memory(void)
{
	atp_log(ATP_LOG_ERROR, "channel hub: out of memory");
	abort();  /* the stream could no longer be exact: stop rather than go on wrong */
}

/* *p (of *cap elements of size bytes) grown to hold need, the new part zeroed by writing it. */
static void *grow(void *p, uint32_t *cap, uint64_t need, size_t size)
{
	if (need <= *cap)
		return p;
	uint64_t n = *cap ? *cap : 1024;
	while (n < need)
		n *= 2;
	uint8_t *q = realloc(p, n * size);
	if (!q)
		out_of_memory();
	memset(q + (size_t)*cap * size, 0, (n - *cap) * size);
	*cap = (uint32_t)n;
	return q;
}

hub_shard *hub_shard_of(atp_hub *h, uint32_t shard)
{
	hub_shard *sh = h->shards[shard];
	if (sh)
		return sh;
	if (!(sh = calloc(1, sizeof(*sh))) || !(sh->groups = malloc(1024 * sizeof(group_slot))))
		out_of_memory();
	memset(sh->groups, 0, 1024 * sizeof(group_slot));
	sh->group_mask = 1023;
	h->shards[shard] = sh;
	return sh;
}

/* The group index doubled (at half full), every group where its hash puts it. */
static void grow_groups(hub_shard *sh)
{
	uint64_t slots = (sh->group_mask + 1) * 2;
	group_slot *g = malloc(slots * sizeof(group_slot));
	if (!g)
		out_of_memory();
	memset(g, 0, slots * sizeof(group_slot));
	for (uint64_t i = 0; i <= sh->group_mask; i++) {
		if (!sh->groups[i].group1)
			continue;
		uint64_t j = sh->groups[i].hash & (slots - 1);
		while (g[j].group1)
			j = (j + 1) & (slots - 1);
		g[j] = sh->groups[i];
	}
	free(sh->groups);
	sh->groups = g;
	sh->group_mask = slots - 1;
}

/* The group of a SKU in the shard, made (named by position id) when new. */
static uint32_t group_of(hub_shard *sh, const char *sku, uint8_t len, uint32_t id)
{
	if (2ull * (sh->n_groups + 1) > sh->group_mask + 1)
		grow_groups(sh);
	uint64_t hash = XXH3_64bits(sku, len);
	for (uint64_t i = hash & sh->group_mask;; i = (i + 1) & sh->group_mask) {
		group_slot *g = &sh->groups[i];
		if (!g->group1) {
			*g = (group_slot){ .hash = hash, .group1 = ++sh->n_groups, .first = id };
			return g->group1 - 1;
		}
		const hub_pos *first = &sh->pos[g->first];
		if (g->hash == hash && first->sku_len == len && memcmp(first->sku, sku, len) == 0)
			return g->group1 - 1;
	}
}

static bool sees(const hub_channel *c, const hub_pos *p)
{
	return atp_channel_sees(&c->def, atp_str_of(p->sku, p->sku_len), atp_str_of(p->location, p->loc_len));
}

/* The channel's figure of group g of shard, to write. */
static int64_t *sum_at(hub_channel *c, uint32_t shard, uint32_t g)
{
	c->sums[shard] = grow(c->sums[shard], &c->sums_cap[shard], (uint64_t)g + 1, sizeof(int64_t));
	return &c->sums[shard][g];
}

/* The offset + 1 of the newest message of position pos of shard in the channel's buffer, to write. */
static uint64_t *latest_at(hub_channel *c, uint32_t shard, uint32_t pos)
{
	c->latest[shard] = grow(c->latest[shard], &c->latest_cap[shard], (uint64_t)pos + 1, sizeof(uint64_t));
	return &c->latest[shard][pos];
}

/* A position seen for the first time: its key, group and the channels that see it. */
static hub_pos *know(atp_hub *h, hub_shard *sh, const atp_engine_delta *d)
{
	assert(d->pos < h->cfg.max_positions);  /* the engine's tables are no larger */
	sh->pos = grow(sh->pos, &sh->pos_cap, (uint64_t)d->pos + 1, sizeof(hub_pos));
	hub_pos *p = &sh->pos[d->pos];
	if (p->known)
		return p;
	p->known = true;
	p->sku = d->sku;
	p->location = d->location;
	p->sku_len = d->sku_len;
	p->loc_len = d->loc_len;
	p->group = group_of(sh, d->sku, d->sku_len, d->pos);
	for (uint64_t m = h->used; m; m &= m - 1)
		if (sees(&h->ch[__builtin_ctzll(m)], p))
			p->member |= 1ull << __builtin_ctzll(m);
	if (d->pos >= sh->count)
		sh->count = d->pos + 1;
	return p;
}

/* ---- a channel's buffer ---- */

static uint64_t pad_to_end(const hub_channel *c, uint64_t off)
{
	return c->cap - off % c->cap;
}

uint64_t hub_skip_pad(const hub_channel *c, uint64_t off)
{
	while (off < c->head) {
		uint64_t rest = pad_to_end(c, off);
		if (rest < sizeof(msg_hdr)) {
			off += rest;
			continue;
		}
		const msg_hdr *m = (const msg_hdr *)(c->buf + off % c->cap);
		if (m->fb_len)
			break;
		off += m->len;
	}
	return off;
}

const msg_hdr *hub_msg_at(const hub_channel *c, uint64_t off)
{
	assert(off >= c->tail && off < c->head);
	return (const msg_hdr *)(c->buf + off % c->cap);
}

uint64_t hub_msg_next(const hub_channel *c, uint64_t off)
{
	return hub_skip_pad(c, off + hub_msg_at(c, off)->len);
}

/* Drop the oldest message: what it covered is no longer held. */
static void evict(atp_hub *h, hub_channel *c)
{
	c->tail = hub_skip_pad(c, c->tail);
	if (c->tail == c->head)
		return;
	const msg_hdr *m = hub_msg_at(c, c->tail);
	place at = { m->lsn, m->index };
	if (place_after(at, c->tail_vec[m->shard]))
		c->tail_vec[m->shard] = at;
	c->tail = hub_skip_pad(c, c->tail + m->len);
	h->stats.evicted++;
}

/* Room for a record of len bytes at head (contiguous), dropping the oldest as needed; returns its offset. */
static uint64_t make_room(atp_hub *h, hub_channel *c, uint32_t len)
{
	uint64_t rest = pad_to_end(c, c->head);
	uint64_t need = len <= rest ? len : rest + len;
	while (c->head + need - c->tail > c->cap)
		evict(h, c);
	if (len > rest) {
		if (rest >= sizeof(msg_hdr))
			*(msg_hdr *)(c->buf + c->head % c->cap) = (msg_hdr){ .len = (uint32_t)rest };
		c->head += rest;
		if (c->tail == c->head - rest)
			c->tail = c->head;
	}
	return c->head;
}

const uint8_t *hub_build(atp_hub *h, const atp_v1_delta *d, uint32_t *size, uint16_t *kind_off, uint16_t *token_off)
{
	uint32_t k, t;
	size_t n = atp_v1_encode_delta(d, h->scratch, SCRATCH, &k, &t);
	assert(n);  /* the scratch holds the largest message */
	*size = (uint32_t)n;
	*kind_off = (uint16_t)k;
	*token_off = (uint16_t)t;
	return h->scratch;
}

/* A message of channel c for position pos of shard: built once, appended to the buffer. */
static void append(atp_hub *h, hub_channel *c, const atp_engine_delta *d, const hub_pos *p, int64_t old_figure,
		   int64_t figure, int64_t sku_figure, uint64_t now_ms)
{
	static const uint8_t zeros[ATP_HUB_TOKEN_BYTES(ATP_ENGINE_SHARDS_MAX)];
	atp_v1_delta v = { .channel = atp_str_of(c->def.name, c->name_len),
			   .sku = atp_str_of(p->sku, p->sku_len), .location = atp_str_of(p->location, p->loc_len),
			   .seq = d->lsn, .version = d->version, .atp = figure, .previous_atp = old_figure,
			   .sku_atp = sku_figure, .shard = d->shard, .index = d->index, .kind = ATP_V1_DELTA_UPDATE,
			   .token = zeros, .token_len = hub_token_bytes(h) };
	/* Written where it stays, in one pass (room for the most it can take first). */
	uint32_t bound = (uint32_t)sizeof(msg_hdr) + 160 + v.channel.len + v.sku.len + v.location.len + v.token_len;
	uint64_t off = make_room(h, c, bound);
	msg_hdr *m = (msg_hdr *)(c->buf + off % c->cap);
	uint32_t kind_off, token_off;
	size_t fb_len = atp_v1_encode_delta(&v, (uint8_t *)(m + 1), bound - sizeof(msg_hdr), &kind_off, &token_off);
	assert(fb_len);  /* bound is what the encoder needs at most */
	c->cv[d->shard] = (place){ d->lsn, d->index };
	hub_token_put_places(h, c->cv, (uint8_t *)(m + 1) + token_off);  /* sealed by its first reader */
	uint32_t len = (uint32_t)((sizeof(msg_hdr) + fb_len + 7) & ~7u);
	*m = (msg_hdr){ .len = len, .fb_len = (uint32_t)fb_len, .lsn = d->lsn, .index = d->index, .pos = d->pos,
			.shard = d->shard, .kind_off = (uint16_t)kind_off, .token_off = (uint16_t)token_off,
			.at_ms = now_ms,
			.grpc = { 0, (uint8_t)(fb_len >> 24), (uint8_t)(fb_len >> 16), (uint8_t)(fb_len >> 8),
				  (uint8_t)fb_len } };
	*latest_at(c, d->shard, d->pos) = off + 1;  /* what supersedes the messages before it (conflation) */
	c->head = off + len;
	/*
	 * The buffer is far larger than the caches: start fetching the lines
	 * the next messages go to, and the headers of the oldest, which they
	 * will drop.
	 */
	for (uint64_t ahead = 1024; ahead < 1536; ahead += 64)
		__builtin_prefetch(c->buf + (c->head + ahead) % c->cap, 1);
	if (c->head - c->tail + 2048 > c->cap)
		__builtin_prefetch(c->buf + (c->tail + 1024) % c->cap);
	h->stats.messages++;
}

/* ---- deltas in ---- */

static void take_base(atp_hub *h, hub_shard *sh, const atp_engine_delta *d)
{
	hub_pos *p = know(h, sh, d);
	p->atp = d->new_atp;
	p->version = d->version;
	place at = { d->lsn, UINT32_MAX };
	sh->progress = at;
	for (uint64_t m = h->used; m; m &= m - 1) {
		uint32_t c = (uint32_t)__builtin_ctzll(m);
		hub_channel *ch = &h->ch[c];
		if (p->member >> c & 1)
			*sum_at(ch, d->shard, p->group) += atp_channel_figure(&ch->def, p->atp);
		ch->tail_vec[d->shard] = ch->cv[d->shard] = at;  /* nothing before the snapshot is held */
	}
}

static void take_change(atp_hub *h, hub_shard *sh, const atp_engine_delta *d, uint64_t now_ms)
{
	place at = { d->lsn, d->index };
	assert(place_after(at, sh->progress));  /* the engine hands a shard's deltas over in order */
	sh->progress = at;
	hub_pos *p = know(h, sh, d);
	assert(p->atp == d->old_atp);           /* chained: nothing of this position was missed */
	p->atp = d->new_atp;
	p->version = d->version;
	for (uint64_t m = p->member; m; m &= m - 1) {
		hub_channel *c = &h->ch[__builtin_ctzll(m)];
		int64_t before = atp_channel_figure(&c->def, d->old_atp), after = atp_channel_figure(&c->def, d->new_atp);
		if (before == after)
			continue;
		int64_t *sum = sum_at(c, d->shard, p->group);
		*sum += after - before;
		append(h, c, d, p, before, after, *sum, now_ms);
	}
}

/*
 * Each delta reads its position's mirror entry, and for each channel that
 * sees it the SKU's figure and the position's newest message: misses in
 * a large table. They are fetched a few deltas ahead, as the core's batch
 * pipeline fetches its slots.
 */
enum { POS_AHEAD = 8, CHANNELS_AHEAD = 4 };

static inline void prefetch_pos(const atp_hub *h, const atp_engine_delta *d)
{
	const hub_shard *sh = h->shards[d->shard];
	if (sh && d->pos < sh->pos_cap)
		__builtin_prefetch(&sh->pos[d->pos]);
}

static inline void prefetch_channels(const atp_hub *h, const atp_engine_delta *d)
{
	const hub_shard *sh = h->shards[d->shard];
	if (!sh || d->pos >= sh->pos_cap)
		return;
	const hub_pos *p = &sh->pos[d->pos];
	for (uint64_t m = p->member & h->used; m; m &= m - 1) {
		const hub_channel *c = &h->ch[__builtin_ctzll(m)];
		if (p->group < c->sums_cap[d->shard])
			__builtin_prefetch(&c->sums[d->shard][p->group], 1);
		if (d->pos < c->latest_cap[d->shard])
			__builtin_prefetch(&c->latest[d->shard][d->pos], 1);
	}
}

void atp_hub_on_delta(void *hub, const atp_engine_delta *d, size_t n)
{
	atp_hub *h = hub;
	uint64_t now_ms = mono_ms();
	for (size_t i = 0; i < n; i++) {
		if (i + 2 * POS_AHEAD < n)
			__builtin_prefetch(&d[i + 2 * POS_AHEAD]);  /* the deltas come from another core's writes */
		if (i + POS_AHEAD < n)
			prefetch_pos(h, &d[i + POS_AHEAD]);
		if (i + CHANNELS_AHEAD < n)
			prefetch_channels(h, &d[i + CHANNELS_AHEAD]);
		assert(d[i].shards >= 1 && d[i].shard < d[i].shards);
		assert(h->n_shards == 0 || h->n_shards == d[i].shards);
		h->n_shards = d[i].shards;
		hub_shard *sh = hub_shard_of(h, d[i].shard);
		if (d[i].kind == ATP_DELTA_BASE)
			take_base(h, sh, &d[i]);
		else
			take_change(h, sh, &d[i], now_ms);
	}
	h->stats.deltas += n;
}

void atp_hub_tick(atp_hub *h, uint64_t now_ms)
{
	if (!h->cfg.retention_ms)
		return;
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++) {
		hub_channel *c = &h->ch[i];
		while (c->used && (c->tail = hub_skip_pad(c, c->tail)) < c->head &&
		       hub_msg_at(c, c->tail)->at_ms + h->cfg.retention_ms < now_ms)
			evict(h, c);
	}
}

/* ---- channels ---- */

/* The channel's figures from the mirror, for a channel new or redefined in slot c. */
static void compute_view(atp_hub *h, uint32_t slot)
{
	hub_channel *c = &h->ch[slot];
	for (uint32_t s = 0; s < ATP_ENGINE_SHARDS_MAX; s++) {
		hub_shard *sh = h->shards[s];
		if (!sh)
			continue;
		if (c->sums[s])
			memset(c->sums[s], 0, c->sums_cap[s] * sizeof(int64_t));
		if (c->latest[s])
			memset(c->latest[s], 0, c->latest_cap[s] * sizeof(uint64_t));
		for (uint32_t id = 0; id < sh->count; id++) {
			hub_pos *p = &sh->pos[id];
			if (!p->known)
				continue;
			p->member &= ~(1ull << slot);
			if (!sees(c, p))
				continue;
			p->member |= 1ull << slot;
			*sum_at(c, s, p->group) += atp_channel_figure(&c->def, p->atp);
		}
		c->tail_vec[s] = c->cv[s] = sh->progress;
	}
}

static void release_arrays(hub_channel *c)
{
	for (uint32_t s = 0; s < ATP_ENGINE_SHARDS_MAX; s++) {
		free(c->sums[s]);
		free(c->latest[s]);
		c->sums[s] = NULL;
		c->latest[s] = NULL;
		c->sums_cap[s] = c->latest_cap[s] = 0;
	}
}

static int add_channel(atp_hub *h, const atp_channel_def *def)
{
	uint32_t slot = 0;
	while (slot < ATP_CHANNELS_MAX && h->ch[slot].used)
		slot++;
	assert(slot < ATP_CHANNELS_MAX);  /* a channel set holds at most that many */
	hub_channel *c = &h->ch[slot];
	uint32_t gen = c->gen + 1;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->def = *def;
	c->name_len = (uint32_t)strlen(def->name);
	c->hash = atp_channel_hash(def);
	c->cap = (h->cfg.retention_bytes + 7) & ~7ull;
	/* Every page in place now: the first lap would otherwise fault every 4 KiB in the router's hot path. */
	c->buf = mmap(NULL, c->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (c->buf == MAP_FAILED)
		c->buf = NULL;
	c->tail_vec = calloc(2 * ATP_ENGINE_SHARDS_MAX, sizeof(place));  /* and cv */
	if (!c->buf || !c->tail_vec) {
		if (c->buf)
			munmap(c->buf, c->cap);
		free(c->tail_vec);
		return -1;
	}
	c->cv = c->tail_vec + ATP_ENGINE_SHARDS_MAX;
	c->head = c->tail = 0;
	c->used = true;
	h->used |= 1ull << slot;
	compute_view(h, slot);
	h->stats.channels++;
	return 0;
}

/* The subscriber's stream is over: its channel went. */
static void end_sub(atp_hub_sub *s, const char *name)
{
	s->state = SUB_ENDED;
	s->ch = NULL;
	snprintf(s->why, sizeof(s->why), "channel %s was removed", name);
}

static void remove_channel(atp_hub *h, hub_channel *c)
{
	for (uint32_t i = 0; i < h->n_subs; i++)
		if (h->subs[i]->ch == c)
			end_sub(h->subs[i], c->def.name);
	release_arrays(c);
	munmap(c->buf, c->cap);
	free(c->tail_vec);
	c->buf = NULL;
	c->tail_vec = c->cv = NULL;
	c->used = false;
	h->used &= ~(1ull << (c - h->ch));
	c->subscribers = 0;
	h->stats.channels--;
}

atp_hub *atp_hub_create(const atp_hub_config *cfg, const atp_channel_set *channels, char *err, size_t errlen)
{
	if (cfg->max_positions == 0 || cfg->retention_bytes < (64u << 10) || cfg->max_subscribers == 0) {
		snprintf(err, errlen, "channel hub: bad configuration (positions, at least 64 KiB of retention, subscribers)");
		return NULL;
	}
	atp_hub *h = calloc(1, sizeof(*h));
	if (!h)
		goto nomem;
	h->cfg = *cfg;
	h->scratch = aligned_alloc(8, SCRATCH);
	h->subs = calloc(cfg->max_subscribers, sizeof(*h->subs));
	if (!h->scratch || !h->subs)
		goto nomem;
	for (uint32_t i = 0; i < channels->n; i++)
		if (add_channel(h, &channels->def[i]) < 0)
			goto nomem;
	return h;
nomem:
	snprintf(err, errlen, "channel hub: out of memory");
	atp_hub_destroy(h);
	return NULL;
}

void atp_hub_destroy(atp_hub *h)
{
	if (!h)
		return;
	while (h->n_subs)
		atp_hub_unsubscribe(h, h->subs[0]);
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++)
		if (h->ch[i].used)
			remove_channel(h, &h->ch[i]);
	for (uint32_t s = 0; s < ATP_ENGINE_SHARDS_MAX; s++) {
		if (!h->shards[s])
			continue;
		free(h->shards[s]->pos);
		free(h->shards[s]->groups);
		free(h->shards[s]);
	}
	free(h->subs);
	free(h->scratch);
	free(h);
}

void atp_hub_start(atp_hub *h, uint32_t shards, const uint8_t identity[32])
{
	assert(h->n_shards == 0 || h->n_shards == shards);  /* recovery's deltas named the same count */
	h->n_shards = shards;
	for (uint32_t s = 0; s < shards; s++)
		hub_shard_of(h, s);
	memcpy(h->identity, identity, 32);
	h->dir_tag = XXH3_64bits(identity, 32);
	h->check_seed = XXH3_64bits_withSeed(identity, 32, 0x6174706468756221ull);
}

/* Subscribers of a redefined channel start again from its new view. */
static void redefine(atp_hub *h, hub_channel *c, const atp_channel_def *def)
{
	c->def = *def;
	c->hash = atp_channel_hash(def);
	c->gen++;
	c->tail = c->head;
	compute_view(h, (uint32_t)(c - h->ch));
}

void atp_hub_reload(atp_hub *h, const atp_channel_set *channels, char *log, size_t loglen)
{
	size_t at = 0;
	if (log && loglen)
		log[0] = 0;
#define LOG(...)                                                                   \
	do {                                                                       \
		if (log && at < loglen)                                            \
			at += (size_t)snprintf(log + at, loglen - at, __VA_ARGS__); \
	} while (0)
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++) {
		hub_channel *c = &h->ch[i];
		if (!c->used)
			continue;
		const atp_channel_def *d = atp_channel_find(channels, atp_str_of(c->def.name, strlen(c->def.name)));
		if (!d) {
			LOG("channel %s removed (%u subscribers ended); ", c->def.name, c->subscribers);
			remove_channel(h, c);
		} else if (atp_channel_hash(d) != c->hash) {
			LOG("channel %s redefined (%u subscribers resync); ", c->def.name, c->subscribers);
			redefine(h, c, d);
		}
	}
	for (uint32_t i = 0; i < channels->n; i++) {
		const atp_channel_def *d = &channels->def[i];
		bool have = false;
		for (uint32_t k = 0; k < ATP_CHANNELS_MAX && !have; k++)
			have = h->ch[k].used && strcmp(h->ch[k].def.name, d->name) == 0;
		if (have)
			continue;
		if (add_channel(h, d) < 0)
			LOG("channel %s: out of memory, not added; ", d->name);
		else
			LOG("channel %s added; ", d->name);
	}
#undef LOG
}

void atp_hub_stats_get(const atp_hub *h, atp_hub_stats *out)
{
	*out = h->stats;
	out->buffer_bytes = 0;
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++)
		if (h->ch[i].used)
			out->buffer_bytes += h->ch[i].head - h->ch[i].tail;
	out->subscribers = h->n_subs;
}

size_t atp_hub_channel_stats_get(const atp_hub *h, atp_hub_channel_stats *out, size_t max)
{
	uint64_t now = mono_ms();
	size_t n = 0;
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++) {
		const hub_channel *c = &h->ch[i];
		if (!c->used)
			continue;
		if (n < max) {
			atp_hub_channel_stats *o = &out[n];
			*o = (atp_hub_channel_stats){ .name = c->def.name, .subscribers = c->subscribers,
						      .written_bytes = c->head, .buffer_bytes = c->head - c->tail };
			uint64_t slowest = c->head;
			for (uint32_t k = 0; k < h->n_subs; k++) {
				const atp_hub_sub *s = h->subs[k];
				if (s->ch == c && s->state == SUB_LIVE && s->cursor < slowest)
					slowest = s->cursor;
			}
			slowest = hub_skip_pad(c, slowest < c->tail ? c->tail : slowest);
			o->lag_bytes = c->head - slowest;
			if (slowest < c->head) {
				uint64_t at = hub_msg_at(c, slowest)->at_ms;
				o->lag_ms = now > at ? now - at : 0;
			}
		}
		n++;
	}
	return n;
}

bool atp_hub_figure(const atp_hub *h, atp_str channel, uint32_t shard, atp_str sku, atp_str location,
		    int64_t *figure, int64_t *sku_figure)
{
	*figure = *sku_figure = 0;
	const hub_shard *sh = shard < ATP_ENGINE_SHARDS_MAX ? h->shards[shard] : NULL;
	for (uint32_t i = 0; sh && i < ATP_CHANNELS_MAX; i++) {
		const hub_channel *c = &h->ch[i];
		if (!c->used || strlen(c->def.name) != channel.len || memcmp(c->def.name, channel.ptr, channel.len))
			continue;
		for (uint32_t id = 0; id < sh->count; id++) {
			const hub_pos *p = &sh->pos[id];
			if (p->known && p->sku_len == sku.len && memcmp(p->sku, sku.ptr, sku.len) == 0 &&
			    p->loc_len == location.len && memcmp(p->location, location.ptr, location.len) == 0) {
				if (p->member >> i & 1) {
					*figure = atp_channel_figure(&c->def, p->atp);
					*sku_figure = hub_sum(c, shard, p->group);
				}
				return true;
			}
		}
	}
	return false;
}
