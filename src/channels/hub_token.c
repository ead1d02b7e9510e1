/*
 * hub_token.c — resume tokens of the channel stream.
 *
 * Little-endian: u8 version (1), u8 flags (1: the view was incomplete, a
 * resync in progress; 2: the subscriber was conflating, so updates it
 * skipped may still be superseded by ones after the token), u16 shards, u32 the channel definition's hash (low
 * half), u64 the data directory's tag (XXH3 of its identity); per shard
 * u64 lsn and u32 index, the place up to which the subscriber has
 * everything; then u64 a check: XXH3 of all that, seeded from the
 * identity. The check tells damage and tokens of another directory; it is
 * not a cryptographic signature (authorization is the listener's job).
 */
#include "hub_internal.h"

#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

enum { VERSION = 1 };

uint32_t hub_token_bytes(const atp_hub *h)
{
	return ATP_HUB_TOKEN_BYTES(h->n_shards);
}

void hub_token_put_places(const atp_hub *h, const place *v, uint8_t *out)
{
	uint8_t *p = out + 16;
	for (uint32_t s = 0; s < h->n_shards; s++, p += 12) {
		memcpy(p, &v[s].lsn, 8);
		memcpy(p + 8, &v[s].index, 4);
	}
}

void hub_token_seal(const atp_hub *h, const hub_channel *c, uint8_t flags, uint8_t *out)
{
	uint16_t n = (uint16_t)h->n_shards;
	uint32_t hash = (uint32_t)c->hash;
	out[0] = VERSION;
	out[1] = flags;
	memcpy(out + 2, &n, 2);
	memcpy(out + 4, &hash, 4);
	memcpy(out + 8, &h->dir_tag, 8);
	size_t len = hub_token_bytes(h) - 8;
	uint64_t check = XXH3_64bits_withSeed(out, len, h->check_seed);
	memcpy(out + len, &check, 8);
}

void hub_token_write(const atp_hub *h, const hub_channel *c, const place *v, uint8_t flags, uint8_t *out)
{
	hub_token_put_places(h, v, out);
	hub_token_seal(h, c, flags, out);
}

static place place_in(const uint8_t *t, uint32_t s)
{
	place p;
	memcpy(&p.lsn, t + 16 + 12 * s, 8);
	memcpy(&p.index, t + 16 + 12 * s + 8, 4);
	return p;
}

bool hub_token_covers(const atp_hub *h, const uint8_t *t, const place *v)
{
	for (uint32_t s = 0; s < h->n_shards; s++)
		if (place_after(v[s], place_in(t, s)))
			return false;
	return true;
}

void hub_token_places(const atp_hub *h, const uint8_t *t, place *v)
{
	for (uint32_t s = 0; s < h->n_shards; s++)
		v[s] = place_in(t, s);
}

int hub_token_read(const atp_hub *h, const hub_channel *c, const uint8_t *t, uint32_t len, place *v,
		   uint8_t *flags, char *why, size_t whylen)
{
	uint16_t n;
	uint32_t hash;
	uint64_t tag, check;
	if (len < 24 || t[0] != VERSION) {
		snprintf(why, whylen, "resume_token: not a token of this server (%u bytes)", len);
		return ATP_HUB_E_TOKEN;
	}
	memcpy(&n, t + 2, 2);
	memcpy(&hash, t + 4, 4);
	memcpy(&tag, t + 8, 8);
	if (tag != h->dir_tag) {
		snprintf(why, whylen, "resume_token: from another data directory (or another atpd)");
		return ATP_HUB_E_OTHER_DIR;
	}
	if (len != ATP_HUB_TOKEN_BYTES(n) || n != h->n_shards) {
		snprintf(why, whylen, "resume_token: %u bytes for %u shards: damaged", len, n);
		return ATP_HUB_E_TOKEN;
	}
	memcpy(&check, t + len - 8, 8);
	if (check != XXH3_64bits_withSeed(t, len - 8, h->check_seed)) {
		snprintf(why, whylen, "resume_token: its check fails: damaged or forged");
		return ATP_HUB_E_TOKEN;
	}
	hub_token_places(h, t, v);
	*flags = t[1];
	if (t[1] & 1 || hash != (uint32_t)c->hash)
		return 1;  /* an unfinished view, or of another definition of the channel */
	return 0;
}
