/*
 * atp/channel.h — a sales channel's view of ATP: its definition, parsed
 * from settings, and its arithmetic.
 *
 * A channel sees the locations it names (or all of them), the SKUs that
 * start with its prefix (or all), and of each such position
 *     figure = max(0, floor(atp * share) - buffer)
 * with share in [0, 1] (kept exactly, in millionths) and buffer >= 0 units;
 * its figure for a SKU is the sum of the figures of the locations it sees.
 *
 * Settings, one per line of atpd's config (or --set):
 *     channel.NAME.locations = all | LOC[,LOC...]
 *     channel.NAME.share = 0.8
 *     channel.NAME.buffer = 2
 *     channel.NAME.sku_prefix = SKU-1
 * A channel exists once any of its settings is given; the others keep
 * their defaults (all locations, share 1, buffer 0, no prefix). NAME is
 * 1 to 48 of [A-Za-z0-9_-] (it becomes a NATS subject token).
 * Pure: no I/O, no allocation.
 */
#ifndef ATP_CHANNEL_H
#define ATP_CHANNEL_H

#include "atp/event.h"
#include "atp/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATP_CHANNELS_MAX 64          /* channels at once */
#define ATP_CHANNEL_NAME_MAX 48      /* bytes of a name */
#define ATP_CHANNEL_LOCATIONS_MAX 64 /* locations a channel names */
#define ATP_SHARE_ONE 1000000u       /* share is kept in millionths */

typedef struct atp_channel_def {
	char name[ATP_CHANNEL_NAME_MAX + 1];
	uint32_t share_ppm;              /* 0 .. ATP_SHARE_ONE */
	int64_t buffer;                  /* >= 0 */
	uint32_t n_locations;            /* 0: every location */
	char locations[ATP_CHANNEL_LOCATIONS_MAX][ATP_LOC_MAX + 1];
	char sku_prefix[ATP_SKU_MAX + 1]; /* "": every SKU */
} atp_channel_def;

typedef struct atp_channel_set {
	uint32_t n;
	atp_channel_def def[ATP_CHANNELS_MAX];
} atp_channel_set;

/*
 * Apply one setting "channel.NAME.FIELD = value" to set: 1 when key is a
 * channel setting and it was taken, 0 when key is not a channel setting
 * (the caller tries its own), -1 with err when it is one but wrong (a bad
 * name, field or value, too many channels or locations).
 */
int atp_channel_setting(atp_channel_set *set, const char *key, const char *value, char *err, size_t errlen);

/* A channel by name, or NULL. */
const atp_channel_def *atp_channel_find(const atp_channel_set *set, atp_str name);

/* Whether a position is in the channel's view. */
bool atp_channel_sees(const atp_channel_def *d, atp_str sku, atp_str location);

/* The channel's figure of a position whose ATP is atp (>= 0). */
static inline int64_t atp_channel_figure(const atp_channel_def *d, int64_t atp)
{
	__int128 shared = (__int128)atp * d->share_ppm / ATP_SHARE_ONE;
	int64_t f = (int64_t)shared - d->buffer;
	return f > 0 ? f : 0;
}

/* A hash of everything that defines the view (not of the name's storage): a changed definition hashes otherwise. */
uint64_t atp_channel_hash(const atp_channel_def *d);

/* Whether name is a valid channel name. */
bool atp_channel_name_valid(atp_str name);

#ifdef __cplusplus
}
#endif

#endif
