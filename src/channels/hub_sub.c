/*
 * hub_sub.c — the subscribers of the channel hub (see atp/hub.h): where a
 * resume token puts them, what they are sent from their channel's buffer,
 * the resync through the mirror with live updates merged in, conflation,
 * heartbeats.
 *
 * A message's token is the channel's own: per shard the place of its
 * newest message (hub_channel.cv). A subscriber that holds no more than
 * that (it reads the buffer in order, live, not conflating) is sent the
 * message as it lies; the others get a copy with their own token written
 * in (put). Only a heartbeat moves a token past places the channel did not
 * see, so a subscriber keeping up stays on the first way.
 *
 * A subscriber more than conflate_bytes behind is conflating until it
 * reaches the head: it skips a message that a later one of the same
 * position supersedes, and every message it is sent meanwhile says
 * CONFLATED (the one that supersedes a skipped one is among them). Its
 * tokens say so: resumed from one, it conflates again until the head.
 *
 * A resync walks the mirror position by position (shard, then id); an
 * update from the buffer is forwarded only for a position already walked,
 * and the walk goes on only once the buffer is read up to its head: so a
 * position's SNAPSHOT always holds every update before it, and every later
 * update follows it.
 */
#include "hub_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static hub_channel *channel_named(atp_hub *h, atp_str name)
{
	for (uint32_t i = 0; i < ATP_CHANNELS_MAX; i++) {
		hub_channel *c = &h->ch[i];
		if (c->used && strlen(c->def.name) == name.len && memcmp(c->def.name, name.ptr, name.len) == 0)
			return c;
	}
	return NULL;
}

static void start_resync(atp_hub *h, atp_hub_sub *s)
{
	s->state = SUB_RESYNC_MARK;
	s->gen = s->ch->gen;
	s->cursor = s->ch->head;
	for (uint32_t i = 0; i < h->n_shards; i++)
		s->v[i] = h->shards[i]->progress;
	s->rs_shard = s->rs_pos = 0;
	s->conflating = s->canonical = false;
	h->stats.resyncs++;
}

/* Whether the buffer still holds everything after v: then v can be served from it. */
static bool servable(const atp_hub *h, const hub_channel *c, const place *v)
{
	for (uint32_t i = 0; i < h->n_shards; i++)
		if (place_after(c->tail_vec[i], v[i]) || place_after(v[i], h->shards[i]->progress))
			return false;  /* dropped already; or ahead of this server (a directory restored from a copy) */
	return true;
}

/*
 * The first message of the buffer a subscriber at v does not have: it
 * starts there, and is behind by what follows (what it has before that is
 * no reason to conflate it).
 */
static uint64_t first_needed(const hub_channel *c, const place *v)
{
	uint64_t off = c->tail;
	while ((off = hub_skip_pad(c, off)) < c->head) {
		const msg_hdr *m = hub_msg_at(c, off);
		if (place_after((place){ m->lsn, m->index }, v[m->shard]))
			break;
		off = hub_msg_next(c, off);
	}
	return off;
}

int atp_hub_subscribe(atp_hub *h, atp_str channel, const uint8_t *token, uint32_t len, atp_hub_sub **out,
		      char *why, size_t whylen)
{
	hub_channel *c = channel_named(h, channel);
	if (!c) {
		snprintf(why, whylen, "no channel named '%.*s'", (int)channel.len, channel.ptr);
		return ATP_HUB_E_CHANNEL;
	}
	if (h->n_subs == h->cfg.max_subscribers) {
		snprintf(why, whylen, "%u subscribers already (channel_max_subscribers)", h->n_subs);
		return ATP_HUB_E_LIMIT;
	}
	assert(h->n_shards > 0);  /* atp_hub_start() came first */
	atp_hub_sub *s = calloc(1, sizeof(*s));
	place *v = s ? calloc(h->n_shards, sizeof(place)) : NULL;
	if (!v) {
		free(s);
		snprintf(why, whylen, "out of memory");
		return ATP_HUB_E_NOMEM;
	}
	s->ch = c;
	s->v = v;
	uint8_t flags = 0;
	int rc = len ? hub_token_read(h, c, token, len, v, &flags, why, whylen) : 1;
	if (rc < 0) {
		free(v);
		free(s);
		return rc;
	}
	if (rc == 0 && servable(h, c, v)) {
		s->state = SUB_LIVE;
		s->gen = c->gen;
		s->cursor = first_needed(c, v);
		s->conflating = flags & TOKEN_CONFLATING;  /* what it skipped before may come after: as CONFLATED */
	} else {
		start_resync(h, s);
	}
	c->subscribers++;
	h->subs[h->n_subs++] = s;
	*out = s;
	return 0;
}

void atp_hub_unsubscribe(atp_hub *h, atp_hub_sub *s)
{
	for (uint32_t i = 0; i < h->n_subs; i++) {
		if (h->subs[i] != s)
			continue;
		h->subs[i] = h->subs[--h->n_subs];
		break;
	}
	if (s->ch)
		s->ch->subscribers--;
	free(s->v);
	free(s);
}

bool atp_hub_ended(const atp_hub_sub *s, const char **why)
{
	if (why)
		*why = s->why;
	return s->state == SUB_ENDED;
}

/* ---- writing messages ---- */

/* Room for a message of fb_len bytes, as gRPC frames it? */
static bool fits(size_t w, size_t cap, uint32_t fb_len)
{
	return w + 5 + fb_len <= cap;
}

/* fb (fb_len bytes) framed at out + w, with kind and the subscriber's token written in. */
static void put(atp_hub *h, atp_hub_sub *s, const uint8_t *fb, uint32_t fb_len, uint16_t kind_off, uint16_t token_off,
		uint8_t kind, uint8_t *out, size_t *w, uint64_t now_ms)
{
	uint8_t *p = out + *w;
	p[0] = 0;
	p[1] = (uint8_t)(fb_len >> 24);
	p[2] = (uint8_t)(fb_len >> 16);
	p[3] = (uint8_t)(fb_len >> 8);
	p[4] = (uint8_t)fb_len;
	memcpy(p + 5, fb, fb_len);
	p[5 + kind_off] = kind;
	uint8_t flags = (s->state == SUB_LIVE ? 0 : TOKEN_INCOMPLETE) | (s->conflating ? TOKEN_CONFLATING : 0);
	hub_token_write(h, s->ch, s->v, flags, p + 5 + token_off);
	*w += 5 + fb_len;
	s->last_sent_ms = now_ms;
	h->stats.sent++;
}

/* A message with no position (RESYNC, LIVE, HEARTBEAT), or a SNAPSHOT of p; false when it does not fit. */
static bool put_built(atp_hub *h, atp_hub_sub *s, uint8_t kind, const hub_pos *p, uint32_t shard, uint8_t *out,
		      size_t cap, size_t *w, uint64_t now_ms)
{
	static const uint8_t zeros[ATP_HUB_TOKEN_BYTES(ATP_ENGINE_SHARDS_MAX)];
	const hub_channel *c = s->ch;
	atp_v1_delta d = { .channel = atp_str_of(c->def.name, strlen(c->def.name)), .kind = kind, .token = zeros,
			   .token_len = hub_token_bytes(h) };
	if (p) {
		d.sku = atp_str_of(p->sku, p->sku_len);
		d.location = atp_str_of(p->location, p->loc_len);
		d.atp = atp_channel_figure(&c->def, p->atp);
		d.version = p->version;
		d.shard = shard;
		d.sku_atp = hub_sum(c, shard, p->group);
	}
	uint32_t fb_len;
	uint16_t kind_off, token_off;
	const uint8_t *fb = hub_build(h, &d, &fb_len, &kind_off, &token_off);
	if (!fits(*w, cap, fb_len))
		return false;
	put(h, s, fb, fb_len, kind_off, token_off, kind, out, w, now_ms);
	return true;
}

/*
 * Whether the message at m, as it lies in the buffer, is what s is sent:
 * its canonical token holds every place of s. True from the message after
 * one it was sent so, as long as it reads on in order.
 */
static bool canonical(const atp_hub *h, const atp_hub_sub *s, const msg_hdr *m)
{
	return s->canonical || hub_token_covers(h, (const uint8_t *)(m + 1) + m->token_off, s->v);
}

/* m as it lies (sealing its token first if no one has yet); s's places become the token's. */
static void put_canonical(atp_hub *h, atp_hub_sub *s, msg_hdr *m, uint8_t *out, size_t *w, uint64_t now_ms)
{
	uint8_t *token = (uint8_t *)(m + 1) + m->token_off;
	if (!m->sealed) {
		hub_token_seal(h, s->ch, 0, token);
		m->sealed = 1;
	}
	memcpy(out + *w, m->grpc, 5 + m->fb_len);
	*w += 5 + m->fb_len;
	if (s->canonical)
		s->v[m->shard] = (place){ m->lsn, m->index };
	else
		hub_token_places(h, token, s->v);
	s->canonical = true;
	s->last_sent_ms = now_ms;
	h->stats.sent++;
}

/* ---- reading ---- */

static bool walked(const atp_hub_sub *s, uint32_t shard, uint32_t pos)
{
	return shard < s->rs_shard || (shard == s->rs_shard && pos < s->rs_pos);
}

/*
 * The buffer from the cursor up to its head: what the subscriber is sent
 * of it (everything after its places; while resyncing, only the positions
 * walked; while far behind, not what a later message supersedes). false
 * when out is full first.
 */
static bool from_buffer(atp_hub *h, atp_hub_sub *s, uint8_t *out, size_t cap, size_t *w, uint64_t now_ms)
{
	const hub_channel *c = s->ch;
	while ((s->cursor = hub_skip_pad(c, s->cursor)) < c->head) {
		const msg_hdr *m = hub_msg_at(c, s->cursor);
		place at = { m->lsn, m->index };
		bool send;
		if (s->state == SUB_LIVE && c->head - s->cursor > h->cfg.conflate_bytes)
			s->conflating = true;  /* until it reaches the head: what it skips, it gets later, conflated */
		if (!place_after(at, s->v[m->shard]))
			send = false;  /* it has it (a resumed token) */
		else if (s->state != SUB_LIVE)
			send = walked(s, m->shard, m->pos);
		else if (s->conflating && hub_superseded(c, s->cursor, m->shard, m->pos))
			send = false, h->stats.conflated++;
		else
			send = true;
		if (send && !fits(*w, cap, m->fb_len))
			return false;
		if (send && s->state == SUB_LIVE && !s->conflating && canonical(h, s, m)) {
			put_canonical(h, s, (msg_hdr *)m, out, w, now_ms);
		} else {
			s->canonical = false;
			if (place_after(at, s->v[m->shard]))
				s->v[m->shard] = at;
			if (send)
				put(h, s, (const uint8_t *)(m + 1), m->fb_len, m->kind_off, m->token_off,
				    s->conflating ? ATP_V1_DELTA_CONFLATED : ATP_V1_DELTA_UPDATE, out, w, now_ms);
		}
		s->cursor = hub_msg_next(c, s->cursor);
	}
	s->conflating = false;
	return true;
}

/* The walk through the mirror: SNAPSHOT of every position the channel sees with a figure. false when out is full. */
static bool walk(atp_hub *h, atp_hub_sub *s, uint8_t *out, size_t cap, size_t *w, uint64_t now_ms)
{
	uint32_t slot = (uint32_t)(s->ch - h->ch);
	while (s->rs_shard < h->n_shards) {
		const hub_shard *sh = h->shards[s->rs_shard];
		if (s->rs_pos >= sh->count) {
			s->rs_shard++;
			s->rs_pos = 0;
			continue;
		}
		const hub_pos *p = &sh->pos[s->rs_pos];
		if (p->known && (p->member >> slot & 1) && atp_channel_figure(&s->ch->def, p->atp) &&
		    !put_built(h, s, ATP_V1_DELTA_SNAPSHOT, p, s->rs_shard, out, cap, w, now_ms))
			return false;
		s->rs_pos++;
	}
	return true;
}

/* Caught up: whatever the hub took since is nothing for this channel (its next token says so). */
static void caught_up(atp_hub *h, atp_hub_sub *s)
{
	for (uint32_t i = 0; i < h->n_shards; i++)
		if (place_after(h->shards[i]->progress, s->v[i])) {
			s->v[i] = h->shards[i]->progress;
			s->canonical = false;
		}
}

static bool must_resync(const atp_hub_sub *s)
{
	return s->state != SUB_RESYNC_MARK &&
	       (s->gen != s->ch->gen || s->cursor < s->ch->tail);
}

size_t atp_hub_read(atp_hub *h, atp_hub_sub *s, uint8_t *out, size_t cap, uint64_t now_ms)
{
	size_t w = 0;
	if (s->state == SUB_ENDED)
		return 0;
	if (must_resync(s))
		start_resync(h, s);  /* its channel was redefined, or the buffer dropped what it had not read */
	if (s->state == SUB_RESYNC_MARK) {
		if (!put_built(h, s, ATP_V1_DELTA_RESYNC, NULL, 0, out, cap, &w, now_ms))
			return w;
		s->state = SUB_RESYNC;
	}
	if (!from_buffer(h, s, out, cap, &w, now_ms))
		return w;
	if (s->state == SUB_RESYNC) {
		if (!walk(h, s, out, cap, &w, now_ms))
			return w;
		s->state = SUB_LIVE;  /* the LIVE message carries the first complete token */
		caught_up(h, s);
		if (!put_built(h, s, ATP_V1_DELTA_LIVE, NULL, 0, out, cap, &w, now_ms))
			s->state = SUB_RESYNC;  /* not sent: say it next time */
		return w;
	}
	/*
	 * A heartbeat's token moves past what the channel did not see; the
	 * messages' tokens say only what it saw, so that a subscriber reading
	 * on in order is sent them as they lie (put_canonical).
	 */
	if (!w && now_ms - s->last_sent_ms >= h->cfg.heartbeat_ms) {
		caught_up(h, s);
		put_built(h, s, ATP_V1_DELTA_HEARTBEAT, NULL, 0, out, cap, &w, now_ms);
	}
	return w;
}

bool atp_hub_ready(const atp_hub *h, const atp_hub_sub *s, uint64_t now_ms)
{
	if (s->state != SUB_LIVE)
		return true;  /* ended, or a resync to go on with */
	if (s->gen != s->ch->gen || s->cursor < s->ch->tail || s->cursor < s->ch->head)
		return true;
	return now_ms - s->last_sent_ms >= h->cfg.heartbeat_ms;
}
