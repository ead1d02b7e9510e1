/*
 * live.h: which slots of a fixed table (connections, calls) are in use, as
 * a dense list, so that a pass over every one in use (a turn's service, a
 * timer's sweep) costs what is in use, not the table's size: a table of
 * 4,096 calls swept every 10 ms touched 4,096 cache lines each time, idle
 * or not.
 *
 * Guarantees: add and del are O(1); ids[0..n) holds each slot in use once,
 * in no particular order. A pass that may add or remove slots while it
 * runs iterates a copy (live_copy). The loop's thread only.
 */
#ifndef ATP_NET_LIVE_H
#define ATP_NET_LIVE_H

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_NONE UINT32_MAX

typedef struct live_set {
	uint32_t *ids;   /* the slots in use, ids[0..n) */
	uint32_t *at;    /* slot -> its index in ids, LIVE_NONE: free */
	uint32_t *copy;  /* live_copy's */
	uint32_t n, cap;
} live_set;

/* 0, or -ENOMEM. */
static inline int live_init(live_set *l, uint32_t cap)
{
	*l = (live_set){ .cap = cap };
	l->ids = malloc(cap * sizeof(uint32_t));
	l->at = malloc(cap * sizeof(uint32_t));
	l->copy = malloc(cap * sizeof(uint32_t));
	if (!l->ids || !l->at || !l->copy)
		return -ENOMEM;
	memset(l->at, 0xff, cap * sizeof(uint32_t));
	return 0;
}

static inline void live_free(live_set *l)
{
	free(l->ids);
	free(l->at);
	free(l->copy);
	*l = (live_set){ 0 };
}

static inline void live_add(live_set *l, uint32_t id)
{
	assert(id < l->cap && l->at[id] == LIVE_NONE && l->n < l->cap);
	l->at[id] = l->n;
	l->ids[l->n++] = id;
}

static inline void live_del(live_set *l, uint32_t id)
{
	assert(id < l->cap && l->at[id] < l->n && l->ids[l->at[id]] == id);
	uint32_t k = l->at[id], last = l->ids[--l->n];
	l->ids[k] = last;
	l->at[last] = k;
	l->at[id] = LIVE_NONE;
}

/* The slots in use now, for a pass that may free or take slots: valid until the next live_copy. */
static inline uint32_t live_copy(live_set *l, const uint32_t **ids)
{
	memcpy(l->copy, l->ids, l->n * sizeof(uint32_t));
	*ids = l->copy;
	return l->n;
}

#endif
