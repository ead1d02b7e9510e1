/*
 * atp/limits.h — the hard limits of atpd's data model.
 *
 * Every string and quantity that enters the core is checked against these
 * bounds before anything is applied, so that no arithmetic on a bucket can
 * overflow and no key can outgrow its storage.
 */
#ifndef ATP_LIMITS_H
#define ATP_LIMITS_H

#define ATP_SKU_MAX 64      /* bytes of a SKU */
#define ATP_LOC_MAX 32      /* bytes of a location */
#define ATP_SOURCE_MAX 64   /* bytes of a source name */
#define ATP_REF_MAX 64      /* bytes of a reservation id / order reference */
#define ATP_REASON_MAX 32   /* bytes of an ADJUST reason code */
#define ATP_EVENT_KEY_MAX 64 /* bytes of an event id that is not a number (E000118075, a GUID) */

/* The last day a date may name (9999-12-31, in days since 1970-01-01). */
#define ATP_DAY_LAST 2932896u
/* |qty| of one event. */
#define ATP_QTY_MAX 1000000000000LL
/*
 * |bucket| of a position. Four buckets of this size still fit in an int64
 * when ATP is computed, so atp arithmetic can never overflow.
 */
#define ATP_BUCKET_MAX (1LL << 60)

#endif
