/* channel.c — channel definitions: settings and arithmetic (see atp/channel.h). */
#include "atp/channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

bool atp_channel_name_valid(atp_str name)
{
	if (name.len < 1 || name.len > ATP_CHANNEL_NAME_MAX)
		return false;
	for (uint32_t i = 0; i < name.len; i++) {
		char c = name.ptr[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

const atp_channel_def *atp_channel_find(const atp_channel_set *set, atp_str name)
{
	for (uint32_t i = 0; i < set->n; i++)
		if (strlen(set->def[i].name) == name.len && memcmp(set->def[i].name, name.ptr, name.len) == 0)
			return &set->def[i];
	return NULL;
}

/* "0.8", "1", "0.125", "1.0": at most six decimals, 0 to 1. */
static int parse_share(const char *v, uint32_t *ppm)
{
	uint64_t whole = 0, frac = 0, scale = ATP_SHARE_ONE;
	const char *p = v;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((whole = whole * 10 + (uint64_t)(*p - '0')) > 1)
			return -1;
	if (*p == '.') {
		p++;
		for (int digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits == 6)
				return -1;
			scale /= 10;
			frac += (uint64_t)(*p - '0') * scale;
		}
	}
	uint64_t x = whole * ATP_SHARE_ONE + frac;
	if (*p || x > ATP_SHARE_ONE)
		return -1;
	*ppm = (uint32_t)x;
	return 0;
}

static int parse_buffer(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < 0 || x > ATP_QTY_MAX)
		return -1;
	*out = x;
	return 0;
}

static int parse_locations(atp_channel_def *d, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "all") == 0) {
		d->n_locations = 0;
		return 0;
	}
	uint32_t n = 0;
	for (const char *p = v; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (!atp_str_valid(atp_str_of(p, len), ATP_LOC_MAX)) {
			snprintf(err, errlen, "locations: '%.*s' is not a location (1 to %d bytes, no control bytes)",
				 (int)len, p, ATP_LOC_MAX);
			return -1;
		}
		if (n == ATP_CHANNEL_LOCATIONS_MAX) {
			snprintf(err, errlen, "locations: more than %d", ATP_CHANNEL_LOCATIONS_MAX);
			return -1;
		}
		memcpy(d->locations[n], p, len);
		d->locations[n++][len] = 0;
		p += len + (comma != NULL);
		if (comma && !*p) {
			snprintf(err, errlen, "locations: a trailing comma");
			return -1;
		}
	}
	if (n == 0) {
		snprintf(err, errlen, "locations: 'all' or a list of locations");
		return -1;
	}
	d->n_locations = n;
	return 0;
}

static atp_channel_def *def_of(atp_channel_set *set, atp_str name, char *err, size_t errlen)
{
	atp_channel_def *d = (atp_channel_def *)atp_channel_find(set, name);
	if (d)
		return d;
	if (set->n == ATP_CHANNELS_MAX) {
		snprintf(err, errlen, "more than %d channels", ATP_CHANNELS_MAX);
		return NULL;
	}
	d = &set->def[set->n++];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name.ptr, name.len);
	d->share_ppm = ATP_SHARE_ONE;
	return d;
}

int atp_channel_setting(atp_channel_set *set, const char *key, const char *value, char *err, size_t errlen)
{
	if (strncmp(key, "channel.", 8) != 0)
		return 0;
	const char *name = key + 8, *dot = strrchr(name, '.');
	if (!dot || !atp_channel_name_valid(atp_str_of(name, (size_t)(dot - name)))) {
		snprintf(err, errlen, "%s: expected channel.NAME.FIELD, NAME 1 to %d of A-Z a-z 0-9 _ -", key,
			 ATP_CHANNEL_NAME_MAX);
		return -1;
	}
	const char *field = dot + 1;
	if (strcmp(field, "locations") && strcmp(field, "share") && strcmp(field, "buffer") &&
	    strcmp(field, "sku_prefix")) {
		snprintf(err, errlen, "%s: unknown field '%s' (locations, share, buffer, sku_prefix)", key, field);
		return -1;
	}
	atp_channel_def *d = def_of(set, atp_str_of(name, (size_t)(dot - name)), err, errlen);
	if (!d)
		return -1;
	if (strcmp(field, "locations") == 0)
		return parse_locations(d, value, err, errlen) < 0 ? -1 : 1;
	if (strcmp(field, "share") == 0) {
		if (parse_share(value, &d->share_ppm) < 0) {
			snprintf(err, errlen, "%s: '%s' is not a share from 0 to 1 (at most 6 decimals)", key, value);
			return -1;
		}
		return 1;
	}
	if (strcmp(field, "buffer") == 0) {
		if (parse_buffer(value, &d->buffer) < 0) {
			snprintf(err, errlen, "%s: '%s' is not a number of units from 0 to %lld", key, value,
				 (long long)ATP_QTY_MAX);
			return -1;
		}
		return 1;
	}
	if (strlen(value) > ATP_SKU_MAX || !atp_str_valid(atp_str_of(value, strlen(value)), ATP_SKU_MAX)) {
		snprintf(err, errlen, "%s: a prefix of at most %d bytes without control bytes", key, ATP_SKU_MAX);
		return -1;
	}
	snprintf(d->sku_prefix, sizeof(d->sku_prefix), "%s", value);
	return 1;
}

bool atp_channel_sees(const atp_channel_def *d, atp_str sku, atp_str location)
{
	size_t plen = strlen(d->sku_prefix);
	if (plen && (sku.len < plen || memcmp(sku.ptr, d->sku_prefix, plen) != 0))
		return false;
	if (d->n_locations == 0)
		return true;
	for (uint32_t i = 0; i < d->n_locations; i++)
		if (strlen(d->locations[i]) == location.len && memcmp(d->locations[i], location.ptr, location.len) == 0)
			return true;
	return false;
}

uint64_t atp_channel_hash(const atp_channel_def *d)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, d->name, strlen(d->name) + 1);
	XXH3_64bits_update(&st, &d->share_ppm, sizeof(d->share_ppm));
	XXH3_64bits_update(&st, &d->buffer, sizeof(d->buffer));
	XXH3_64bits_update(&st, &d->n_locations, sizeof(d->n_locations));
	for (uint32_t i = 0; i < d->n_locations; i++)
		XXH3_64bits_update(&st, d->locations[i], strlen(d->locations[i]) + 1);
	XXH3_64bits_update(&st, d->sku_prefix, strlen(d->sku_prefix) + 1);
	return XXH3_64bits_digest(&st);
}
