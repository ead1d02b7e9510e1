/*
 * The channel hub on its own, fed engine deltas by hand: channel settings
 * and arithmetic; what a subscriber is sent (the full view, then updates,
 * only changes of what its channel sees); resume tokens (exact resume, bad
 * tokens refused, old ones resynced); bounded buffers, conflation and
 * resync of a slow subscriber; reloads; and a randomized run in which
 * every subscriber's view, rebuilt from its messages alone, ends equal to
 * the channel's figures, with versions that only increase.
 */
#include "atp/hub.h"
#include "atp/wire_api.h"
#include "../tools/lib/prng.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) atp_str_of((lit), strlen(lit))

static const char *skus[] = { "A-1", "A-2", "B-1", "B-2" };
static const char *locs[] = { "DC1", "DC2", "ST1" };
static const uint8_t identity[32] = { 1, 2, 3 };

/* ---- channel settings ---- */

Test(channel, settings_make_channels_and_refuse_what_is_wrong)
{
	atp_channel_set set = { 0 };
	char err[256];
	cr_assert_eq(atp_channel_setting(&set, "listen", "x", err, sizeof(err)), 0, "not a channel setting");
	cr_assert_eq(atp_channel_setting(&set, "channel.web.share", "0.75", err, sizeof(err)), 1);
	cr_assert_eq(atp_channel_setting(&set, "channel.web.buffer", "2", err, sizeof(err)), 1);
	cr_assert_eq(atp_channel_setting(&set, "channel.web.locations", "DC1,ST1", err, sizeof(err)), 1);
	cr_assert_eq(atp_channel_setting(&set, "channel.eu-mkt.sku_prefix", "A-", err, sizeof(err)), 1);
	cr_assert_eq(set.n, 2);
	const atp_channel_def *web = atp_channel_find(&set, S("web"));
	cr_assert(web && web->share_ppm == 750000 && web->buffer == 2 && web->n_locations == 2);
	const atp_channel_def *eu = atp_channel_find(&set, S("eu-mkt"));
	cr_assert(eu && eu->share_ppm == 1000000 && eu->n_locations == 0, "defaults: share 1, every location");
	static const char *bad[][2] = {
		{ "channel.web.share", "1.5" },       { "channel.web.share", "-0.1" }, { "channel.web.share", "0.1234567" },
		{ "channel.web.share", "x" },         { "channel.web.buffer", "-1" },  { "channel.web.buffer", "1e3" },
		{ "channel.web.locations", "" },      { "channel.web.locations", "DC1,," },
		{ "channel.web.colour", "red" },      { "channel.we.b.share", "1" },   { "channel.w*b.share", "1" },
		{ "channel..share", "1" },            { "channel.web", "1" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(atp_channel_setting(&set, bad[i][0], bad[i][1], err, sizeof(err)), -1, "%s = %s", bad[i][0],
			     bad[i][1]);
	cr_assert_eq(set.n, 2, "nothing half-made by a refusal");
	for (int i = 0; i < ATP_CHANNELS_MAX - 2; i++) {
		char key[64];
		snprintf(key, sizeof(key), "channel.c%d.buffer", i);
		cr_assert_eq(atp_channel_setting(&set, key, "0", err, sizeof(err)), 1);
	}
	cr_assert_eq(atp_channel_setting(&set, "channel.one-too-many.buffer", "0", err, sizeof(err)), -1);
}

Test(channel, figures_floor_the_share_then_take_the_buffer)
{
	atp_channel_def d = { .share_ppm = 750000, .buffer = 2 };
	cr_assert_eq(atp_channel_figure(&d, 10), 5);  /* floor(7.5) - 2 */
	cr_assert_eq(atp_channel_figure(&d, 3), 0);   /* floor(2.25) - 2 = 0 */
	cr_assert_eq(atp_channel_figure(&d, 0), 0);
	d.buffer = 0;
	d.share_ppm = 1000000;
	cr_assert_eq(atp_channel_figure(&d, (int64_t)1 << 60), (int64_t)1 << 60, "no overflow at the bucket limit");
	atp_channel_def p = { .share_ppm = 1000000, .n_locations = 1, .locations = { "DC1" }, .sku_prefix = "A-" };
	cr_assert(atp_channel_sees(&p, S("A-1"), S("DC1")));
	cr_assert(!atp_channel_sees(&p, S("A-1"), S("DC2")));
	cr_assert(!atp_channel_sees(&p, S("B-1"), S("DC1")));
	cr_assert(!atp_channel_sees(&p, S("A"), S("DC1")), "shorter than the prefix");
}

/* ---- a hub fed by hand ---- */

typedef struct feed {
	atp_hub *h;
	uint32_t shards;
	uint64_t lsn[4];
	int64_t atp[4][4][3];      /* shard-local: [shard][sku][loc] */
	uint64_t version[4][4][3];
} feed;

static uint32_t shard_of(uint32_t sku)
{
	return sku % 2;
}

static uint32_t pos_of(uint32_t sku, uint32_t loc)
{
	return sku * 3 + loc;
}

/* One event's change of (sku, loc) to atp (a delta only when it changes). */
static void change(feed *f, uint32_t sku, uint32_t loc, int64_t atp)
{
	uint32_t s = shard_of(sku) % f->shards;
	int64_t old = f->atp[s][sku][loc];
	f->lsn[s]++;
	if (old == atp)
		return;
	atp_engine_delta d = { .sku = skus[sku], .location = locs[loc], .lsn = f->lsn[s], .index = 0,
			       .pos = pos_of(sku, loc), .shard = (uint16_t)s, .shards = (uint16_t)f->shards,
			       .sku_len = (uint8_t)strlen(skus[sku]), .loc_len = (uint8_t)strlen(locs[loc]),
			       .kind = ATP_DELTA_CHANGE, .old_atp = old, .new_atp = atp,
			       .version = ++f->version[s][sku][loc] };
	f->atp[s][sku][loc] = atp;
	atp_hub_on_delta(f->h, &d, 1);
}

static atp_channel_set channels_of(const char *const *settings)
{
	atp_channel_set set = { 0 };
	char err[256];
	for (; settings[0]; settings += 2)
		cr_assert_eq(atp_channel_setting(&set, settings[0], settings[1], err, sizeof(err)), 1, "%s", err);
	return set;
}

/* A hub before atp_hub_start(): as during the engine's recovery. */
static feed *feed_new_recovering(const char *const *settings, uint64_t retention, uint64_t conflate, uint32_t shards)
{
	feed *f = calloc(1, sizeof(*f));
	atp_hub_config cfg = atp_hub_config_default();
	cfg.max_positions = 64;
	cfg.retention_bytes = retention;
	cfg.conflate_bytes = conflate;
	cfg.max_subscribers = 8;
	cfg.heartbeat_ms = 1000;
	atp_channel_set set = channels_of(settings);
	char err[256];
	f->h = atp_hub_create(&cfg, &set, err, sizeof(err));
	cr_assert_not_null(f->h, "%s", err);
	f->shards = shards;
	return f;
}

static feed *feed_new(const char *const *settings, uint64_t retention, uint64_t conflate, uint32_t shards)
{
	feed *f = feed_new_recovering(settings, retention, conflate, shards);
	atp_hub_start(f->h, shards, identity);
	return f;
}

static void feed_free(feed *f)
{
	atp_hub_destroy(f->h);
	free(f);
}

/* A subscriber's messages, decoded. */
typedef struct msg {
	uint8_t kind;
	char sku[16], loc[16];
	int64_t atp, prev, sku_atp;
	uint64_t seq, version;
	uint32_t shard, index;
	uint8_t token[64];
	uint32_t token_len;
} msg;

/* Up to reads reads of at most cap bytes each (0: until nothing is left); returns how many messages. */
static size_t take(atp_hub *h, atp_hub_sub *s, size_t cap, msg *out, size_t max, uint64_t now, unsigned reads)
{
	static uint8_t buf[1 << 16];
	size_t n = 0, w;
	for (unsigned r = 0; (!reads || r < reads) && (w = atp_hub_read(h, s, buf, cap, now)) > 0; r++) {
		for (size_t at = 0; at < w;) {
			uint32_t len = (uint32_t)buf[at + 1] << 24 | (uint32_t)buf[at + 2] << 16 |
				       (uint32_t)buf[at + 3] << 8 | buf[at + 4];
			static uint8_t fb[8192] __attribute__((aligned(8)));
			memcpy(fb, buf + at + 5, len);
			int rc;
			const uint8_t *t = atp_v1_verify(fb, len, &atp_v1_delta_rule, &rc);
			cr_assert_not_null(t, "every message verifies (%d)", rc);
			cr_assert_lt(n, max);
			msg *m = &out[n++];
			*m = (msg){ .kind = atp_v1_delta_kind(t), .atp = atp_v1_delta_atp(t),
				    .prev = atp_v1_delta_previous_atp(t), .sku_atp = atp_v1_delta_sku_atp(t),
				    .seq = atp_v1_delta_seq(t), .version = atp_v1_delta_version(t),
				    .shard = atp_v1_delta_shard(t), .index = atp_v1_delta_index(t) };
			atp_str sku = atp_v1_delta_sku(t), loc = atp_v1_delta_location(t);
			snprintf(m->sku, sizeof(m->sku), "%.*s", (int)sku.len, sku.ptr ? sku.ptr : "");
			snprintf(m->loc, sizeof(m->loc), "%.*s", (int)loc.len, loc.ptr ? loc.ptr : "");
			const uint8_t *tok = atp_v1_delta_token(t, &m->token_len);
			cr_assert(m->token_len > 0 && m->token_len <= sizeof(m->token));
			memcpy(m->token, tok, m->token_len);
			at += 5 + len;
		}
	}
	return n;
}

/* Everything the subscriber has now. */
static size_t drain(atp_hub *h, atp_hub_sub *s, size_t cap, msg *out, size_t max, uint64_t now)
{
	return take(h, s, cap, out, max, now, 0);
}

static const char *const web[] = { "channel.web.share", "0.5", "channel.web.buffer", "1",
				   "channel.web.locations", "DC1,DC2", NULL };

Test(hub, a_subscriber_gets_the_full_view_then_only_changes_of_what_its_channel_sees)
{
	feed *f = feed_new(web, 1 << 20, 1 << 20, 2);
	change(f, 0, 0, 10);  /* A-1/DC1: figure 4 */
	change(f, 0, 1, 6);   /* A-1/DC2: 2 */
	change(f, 1, 2, 50);  /* A-2/ST1: the channel does not see ST1 */
	atp_hub_sub *s;
	char why[160];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0, "%s", why);
	static msg m[64];
	size_t n = drain(f->h, s, 4096, m, 64, 0);
	cr_assert_eq(n, 4, "RESYNC, two SNAPSHOTs, LIVE");
	cr_assert_eq(m[0].kind, ATP_V1_DELTA_RESYNC);
	cr_assert(m[1].kind == ATP_V1_DELTA_SNAPSHOT && strcmp(m[1].loc, "DC1") == 0 && m[1].atp == 4 &&
		  m[1].sku_atp == 6);
	cr_assert(m[2].kind == ATP_V1_DELTA_SNAPSHOT && strcmp(m[2].loc, "DC2") == 0 && m[2].atp == 2);
	cr_assert_eq(m[3].kind, ATP_V1_DELTA_LIVE);
	change(f, 1, 2, 70);  /* not seen */
	change(f, 0, 0, 11);  /* 5.5 -> 5: 4 -> 4, no change of the figure */
	change(f, 0, 0, 12);  /* 6 - 1 = 5 */
	n = drain(f->h, s, 4096, m, 64, 0);
	cr_assert_eq(n, 1, "only a change of the channel's figure is sent");
	cr_assert(m[0].kind == ATP_V1_DELTA_UPDATE && m[0].prev == 4 && m[0].atp == 5 && m[0].sku_atp == 7 &&
		  strcmp(m[0].sku, "A-1") == 0 && m[0].shard == 0 && m[0].version == 3);
	cr_assert_eq(drain(f->h, s, 4096, m, 64, 500), 0, "nothing, and no heartbeat within the second");
	n = drain(f->h, s, 4096, m, 64, 1500);
	cr_assert(n == 1 && m[0].kind == ATP_V1_DELTA_HEARTBEAT, "a heartbeat once idle for a second");
	atp_hub_unsubscribe(f->h, s);
	feed_free(f);
}

Test(hub, a_token_resumes_exactly_after_its_message)
{
	feed *f = feed_new(web, 1 << 20, 1 << 20, 2);
	atp_hub_sub *s, *r;
	char why[160];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0);
	static msg m[256], again[256];
	drain(f->h, s, 4096, m, 256, 0);
	for (int i = 1; i <= 20; i++)
		change(f, (uint32_t)i % 4, (uint32_t)i % 2, 10 * i);
	size_t n = drain(f->h, s, 4096, m, 256, 0);
	cr_assert_geq(n, 10);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), m[4].token, m[4].token_len, &r, why, sizeof(why)), 0);
	size_t k = drain(f->h, r, 4096, again, 256, 0);
	cr_assert_eq(k, n - 5, "everything after the fifth, and nothing else");
	for (size_t i = 0; i < k; i++)
		cr_assert(again[i].kind == ATP_V1_DELTA_UPDATE && again[i].seq == m[i + 5].seq &&
			  again[i].shard == m[i + 5].shard && again[i].atp == m[i + 5].atp);
	cr_assert_eq(memcmp(again[k - 1].token, m[n - 1].token, m[n - 1].token_len), 0, "the same place at the end");
	atp_hub_unsubscribe(f->h, r);
	atp_hub_unsubscribe(f->h, s);
	feed_free(f);
}

static void day_part(feed *f, int from, int to)
{
	for (int i = from; i < to; i++)
		change(f, (uint32_t)i % 4, (uint32_t)(i / 4) % 3, (i * 7) % 23);
}

Test(hub, after_a_restart_the_messages_regenerated_by_recovery_resume_and_carry_tokens_that_resume)
{
	feed *f = feed_new(web, 1 << 20, 1 << 20, 2);
	atp_hub_sub *s;
	char why[160];
	static msg m[256], again[256];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0);
	day_part(f, 0, 40);
	size_t n = drain(f->h, s, 4096, m, 256, 0);
	uint8_t tok[64];
	uint32_t tok_len = m[n - 1].token_len;
	memcpy(tok, m[n - 1].token, tok_len);
	day_part(f, 40, 100);
	n = drain(f->h, s, 4096, m, 256, 0);
	cr_assert_geq(n, 10);
	atp_hub_unsubscribe(f->h, s);
	feed_free(f);

	/* The restart: the WAL's deltas again, before the hub knows its directory; then a resume. */
	f = feed_new_recovering(web, 1 << 20, 1 << 20, 2);
	day_part(f, 0, 100);
	atp_hub_start(f->h, 2, identity);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), tok, tok_len, &s, why, sizeof(why)), 0, "%s", why);
	size_t k = drain(f->h, s, 4096, again, 256, 0);
	cr_assert_eq(k, n, "what came after the token, again");
	for (size_t i = 0; i < k; i++)
		cr_assert(again[i].kind == ATP_V1_DELTA_UPDATE && again[i].seq == m[i].seq &&
			  again[i].atp == m[i].atp && again[i].token_len == m[i].token_len);
	atp_hub_unsubscribe(f->h, s);
	for (size_t i = 0; i < k; i++) {
		cr_assert_eq(atp_hub_subscribe(f->h, S("web"), again[i].token, again[i].token_len, &s, why, sizeof(why)),
			     0, "message %zu's token resumes: %s", i, why);
		cr_assert_eq(drain(f->h, s, 4096, m + 128, 128, 0), k - 1 - i, "exactly what follows message %zu", i);
		atp_hub_unsubscribe(f->h, s);
	}
	feed_free(f);
}

Test(hub, bad_tokens_unknown_channels_and_too_many_subscribers_are_refused)
{
	feed *f = feed_new(web, 1 << 20, 1 << 20, 2);
	atp_hub_sub *s;
	char why[160];
	static msg m[16];
	cr_assert_eq(atp_hub_subscribe(f->h, S("nope"), NULL, 0, &s, why, sizeof(why)), ATP_HUB_E_CHANNEL);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), (const uint8_t *)"garbage", 7, &s, why, sizeof(why)),
		     ATP_HUB_E_TOKEN);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0);
	drain(f->h, s, 4096, m, 16, 0);
	uint8_t tok[64];
	uint32_t len = m[0].token_len;
	memcpy(tok, m[0].token, len);
	for (uint32_t bit = 0; bit < len * 8; bit++) {
		tok[bit / 8] ^= (uint8_t)(1u << bit % 8);
		atp_hub_sub *x;
		int rc = atp_hub_subscribe(f->h, S("web"), tok, len, &x, why, sizeof(why));
		cr_assert(rc == ATP_HUB_E_TOKEN || rc == ATP_HUB_E_OTHER_DIR, "bit %u flipped: refused (%d)", bit, rc);
		tok[bit / 8] ^= (uint8_t)(1u << bit % 8);
	}
	/* The same token from another directory's hub. */
	feed *g = feed_new(web, 1 << 20, 1 << 20, 2);
	uint8_t other[32] = { 9 };
	atp_hub_start(g->h, 2, other);
	atp_hub_sub *x;
	cr_assert_eq(atp_hub_subscribe(g->h, S("web"), tok, len, &x, why, sizeof(why)), ATP_HUB_E_OTHER_DIR);
	cr_assert(strstr(why, "another data directory"));
	feed_free(g);
	atp_hub_sub *more[8];
	for (int i = 0; i < 7; i++)
		cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &more[i], why, sizeof(why)), 0);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &x, why, sizeof(why)), ATP_HUB_E_LIMIT);
	atp_hub_stats st;
	atp_hub_stats_get(f->h, &st);
	cr_assert_eq(st.subscribers, 8);
	feed_free(f);  /* frees its subscribers too */
}

/* The consumer's side: a view per (sku, loc) from messages alone, checked as it goes. */
typedef struct view {
	int64_t atp[4][3];
	uint64_t version[4][3];
	bool live;
	size_t updates, conflated, resyncs;
} view;

static int index_of(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	cr_assert_fail("unknown key %s", s);
	return -1;
}

static void view_apply(view *v, const msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (m[i].kind == ATP_V1_DELTA_RESYNC) {
			memset(v->atp, 0, sizeof(v->atp));
			memset(v->version, 0, sizeof(v->version));
			v->live = false;
			v->resyncs++;
			continue;
		}
		if (m[i].kind == ATP_V1_DELTA_LIVE) {
			v->live = true;
			continue;
		}
		if (m[i].kind == ATP_V1_DELTA_HEARTBEAT)
			continue;
		int s = index_of(skus, 4, m[i].sku), l = index_of(locs, 3, m[i].loc);
		cr_assert_gt(m[i].version, v->version[s][l], "%s/%s: versions only increase", m[i].sku, m[i].loc);
		if (m[i].kind == ATP_V1_DELTA_UPDATE)
			cr_assert_eq(m[i].prev, v->atp[s][l], "%s/%s: an update follows what the consumer holds", m[i].sku,
				     m[i].loc);
		v->conflated += m[i].kind == ATP_V1_DELTA_CONFLATED;
		v->updates++;
		v->atp[s][l] = m[i].atp;
		v->version[s][l] = m[i].version;
	}
}

static void assert_view_is_hub(const feed *f, const view *v)
{
	cr_assert(v->live, "the view is complete");
	for (uint32_t s = 0; s < 4; s++)
		for (uint32_t l = 0; l < 3; l++) {
			int64_t fig, sku_fig;
			atp_hub_figure(f->h, S("web"), shard_of(s) % f->shards, atp_str_of(skus[s], strlen(skus[s])),
				       atp_str_of(locs[l], strlen(locs[l])), &fig, &sku_fig);
			cr_assert_eq(v->atp[s][l], fig, "%s/%s", skus[s], locs[l]);
		}
}

Test(hub, a_slow_subscriber_is_conflated_then_resynced_and_ends_equal)
{
	feed *f = feed_new(web, 64 << 10, 8 << 10, 2);
	atp_hub_sub *fast, *slow;
	char why[160];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &fast, why, sizeof(why)), 0);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &slow, why, sizeof(why)), 0);
	static msg m[4096];
	view vf = { 0 }, vs = { 0 };
	view_apply(&vf, m, drain(f->h, fast, 4096, m, 4096, 0));
	view_apply(&vs, m, drain(f->h, slow, 4096, m, 4096, 0));
	atp_prng g;
	atp_prng_seed(&g, 3);
	/* Far behind but still held: conflated. */
	for (int i = 0; i < 200; i++) {
		change(f, (uint32_t)atp_prng_below(&g, 4), (uint32_t)atp_prng_below(&g, 2),
		       (int64_t)atp_prng_below(&g, 100));
		view_apply(&vf, m, drain(f->h, fast, 4096, m, 4096, 0));
	}
	view_apply(&vs, m, drain(f->h, slow, 4096, m, 4096, 0));
	cr_assert_gt(vs.conflated, 0, "updates a later one supersedes were skipped");
	cr_assert_lt(vs.updates, vf.updates, "the slow one got fewer");
	cr_assert_eq(vs.resyncs, 1, "no resync yet: the buffer still held its place");
	assert_view_is_hub(f, &vf);
	assert_view_is_hub(f, &vs);
	/* Past what the buffer holds: resynced. */
	for (int i = 0; i < 3000; i++) {
		change(f, (uint32_t)atp_prng_below(&g, 4), (uint32_t)atp_prng_below(&g, 2),
		       (int64_t)atp_prng_below(&g, 100));
		view_apply(&vf, m, drain(f->h, fast, 4096, m, 4096, 0));
	}
	view_apply(&vs, m, drain(f->h, slow, 4096, m, 4096, 0));
	cr_assert_eq(vs.resyncs, 2, "the slow one was resynced");
	cr_assert_eq(vf.resyncs, 1, "the fast one never was");
	assert_view_is_hub(f, &vf);
	assert_view_is_hub(f, &vs);
	atp_hub_stats st;
	atp_hub_stats_get(f->h, &st);
	cr_assert_leq(st.buffer_bytes, 64 << 10, "memory stays bounded");
	cr_assert_gt(st.evicted, 0);
	feed_free(f);
}

Test(hub, an_old_token_gets_a_resync_and_the_view)
{
	feed *f = feed_new(web, 64 << 10, 1 << 20, 2);
	atp_hub_sub *s;
	char why[160];
	static msg m[4096];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0);
	size_t n = drain(f->h, s, 4096, m, 4096, 0);
	uint8_t tok[64];
	memcpy(tok, m[n - 1].token, m[n - 1].token_len);
	atp_hub_unsubscribe(f->h, s);
	for (int i = 0; i < 3000; i++)
		change(f, (uint32_t)i % 4, (uint32_t)i % 2, i % 97);
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), tok, m[n - 1].token_len, &s, why, sizeof(why)), 0);
	view v = { 0 };
	n = drain(f->h, s, 4096, m, 4096, 0);
	cr_assert_eq(m[0].kind, ATP_V1_DELTA_RESYNC, "older than the buffer: resync, not an error");
	view_apply(&v, m, n);
	assert_view_is_hub(f, &v);
	feed_free(f);
}

Test(hub, reloads_add_redefine_and_remove_channels)
{
	feed *f = feed_new(web, 1 << 20, 1 << 20, 2);
	change(f, 0, 0, 10);
	atp_hub_sub *s, *t;
	char why[160], log[512];
	static msg m[64];
	cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s, why, sizeof(why)), 0);
	drain(f->h, s, 4096, m, 64, 0);
	static const char *const two[] = { "channel.web.share", "0.5", "channel.web.buffer", "1",
					   "channel.web.locations", "DC1,DC2", "channel.all.buffer", "0", NULL };
	atp_channel_set set = channels_of(two);
	atp_hub_reload(f->h, &set, log, sizeof(log));
	cr_assert(strstr(log, "channel all added"), "%s", log);
	cr_assert_eq(drain(f->h, s, 4096, m, 64, 0), 0, "an unchanged channel goes on as it was");
	cr_assert_eq(atp_hub_subscribe(f->h, S("all"), NULL, 0, &t, why, sizeof(why)), 0);
	size_t n = drain(f->h, t, 4096, m, 64, 0);
	cr_assert(n == 3 && m[1].atp == 10, "a new channel's view holds what happened before it was added");
	static const char *const redefined[] = { "channel.web.share", "1", "channel.all.buffer", "0", NULL };
	set = channels_of(redefined);
	atp_hub_reload(f->h, &set, log, sizeof(log));
	cr_assert(strstr(log, "channel web redefined"), "%s", log);
	n = drain(f->h, s, 4096, m, 64, 0);
	cr_assert(n == 3 && m[0].kind == ATP_V1_DELTA_RESYNC && m[1].atp == 10, "its subscribers resync to the new view");
	static const char *const one[] = { "channel.all.buffer", "0", NULL };
	set = channels_of(one);
	atp_hub_reload(f->h, &set, log, sizeof(log));
	const char *end;
	cr_assert(atp_hub_ended(s, &end) && strstr(end, "web was removed"));
	cr_assert(!atp_hub_ended(t, NULL));
	cr_assert_eq(drain(f->h, s, 4096, m, 64, 0), 0);
	feed_free(f);
}

/*
 * Random changes on two shards; subscribers that read in random bites,
 * stop for a while, and now and then leave and resume from their last
 * token: each ends with the hub's figures, every version increasing, every
 * update chained.
 */
Test(hub, randomized_subscribers_always_end_with_the_channels_figures)
{
	size_t resyncs = 0, conflated = 0;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		/* Half the seeds conflate early, half only resync. */
		feed *f = feed_new(web, 64 << 10, seed % 4 < 2 ? 16 << 10 : 1 << 20, 1 + (uint32_t)(seed % 2));
		atp_prng g;
		atp_prng_seed(&g, seed);
		enum { SUBS = 4 };
		atp_hub_sub *s[SUBS];
		view v[SUBS] = { 0 };
		uint8_t tok[SUBS][64];
		uint32_t tok_len[SUBS] = { 0 };
		char why[160];
		static msg m[8192];
		for (int i = 0; i < SUBS; i++)
			cr_assert_eq(atp_hub_subscribe(f->h, S("web"), NULL, 0, &s[i], why, sizeof(why)), 0);
		for (int step = 0; step < 3000; step++) {
			change(f, (uint32_t)atp_prng_below(&g, 4), (uint32_t)atp_prng_below(&g, 3),
			       (int64_t)atp_prng_below(&g, 40));
			int i = (int)atp_prng_below(&g, SUBS * 8);
			if (i >= SUBS)
				continue;
			if (atp_prng_below(&g, 20) == 0 && tok_len[i]) {  /* leave and come back */
				atp_hub_unsubscribe(f->h, s[i]);
				cr_assert_eq(atp_hub_subscribe(f->h, S("web"), tok[i], tok_len[i], &s[i], why, sizeof(why)), 0,
					     "%s", why);
			}
			/* A few bites at a time: a resync's walk goes on between changes. */
			size_t n = take(f->h, s[i], 150 + atp_prng_below(&g, 600), m, 8192, (uint64_t)step,
					1 + (unsigned)atp_prng_below(&g, 2));
			view_apply(&v[i], m, n);
			if (n) {
				tok_len[i] = m[n - 1].token_len;
				memcpy(tok[i], m[n - 1].token, tok_len[i]);
			}
		}
		for (int i = 0; i < SUBS; i++) {
			view_apply(&v[i], m, drain(f->h, s[i], 4096, m, 8192, 1u << 20));
			assert_view_is_hub(f, &v[i]);
			resyncs += v[i].resyncs - 1;
			conflated += v[i].conflated;
		}
		feed_free(f);
	}
	cr_assert_gt(resyncs, 20, "subscribers fell out of the buffer and were resynced (%zu)", resyncs);
	cr_assert_gt(conflated, 100, "and were conflated (%zu)", conflated);
}
