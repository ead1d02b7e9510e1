/*
 * core.c — applying events to the table (see atp/core.h).
 *
 * Every event is applied in two phases so that a refusal leaves nothing
 * behind: plan works on copies of the buckets of the positions it touches
 * (zero for a position that does not exist yet) and checks every limit;
 * commit, which cannot fail, interns the positions, writes the buckets back,
 * updates the reservation line and the source's high-water mark, and emits
 * deltas. The day's two big types, RESERVE and PICK, nearly always come
 * from a known source, next in its sequence, for a known position: they
 * take a shorter way that checks all of that first and then writes once
 * (reserve_fast, pick_fast), and leave every other case to the two phases.
 * atp_core_apply_batch() runs events through a prefetch pipeline
 * so that each event's table and line misses overlap earlier events' work;
 * the pass that checks and hashes them first fetches the events themselves
 * ahead.
 */
#include "atp/core.h"

#include "atp/bytes.h"
#include "atp/limits.h"
#include "core_state.h"
#include "strcheck.h"

#include <assert.h>
#include <string.h>

/* The buckets of a position: what an event plans on. */
typedef struct buckets {
	int64_t on_hand;
	int64_t held;
	int64_t reserved;
	int64_t safety_stock;
} buckets;

/* A position being changed: its id (ATP_POS_NONE if new), buckets before and after. */
typedef struct work {
	uint64_t hash;
	uint32_t id;
	atp_str location;
	buckets before;
	buckets after;
} work;

/* What the plan decided for the reservation line, carried to the commit. */
typedef struct line_plan {
	uint64_t hash;
	uint32_t id;       /* the existing line, or ATP_LINE_NONE */
	uint32_t where;    /* when absent: its slot (atp_lines_find_where), or ATP_LINE_NONE */
	bool create;       /* RESERVE: a new line */
	bool unpromise;    /* RELEASE of a line promised against supply */
	uint32_t promise;  /* RESERVE: the new line is promised against supply for this day */
	int64_t take;      /* units leaving the line (pick, release) */
} line_plan;

/* The hashes of an event's keys. */
typedef atp_event_hash event_hash;

/* The per-event steps, inlined whatever the compiler's estimate of their size. */
#define HOT static inline __attribute__((always_inline))
/* A refusal, a new key or source, a TRANSFER, an exception: the rare ways, laid out off the straight path. */
#define RARE(x) __builtin_expect(!!(x), 0)

/* Types whose ref names a reservation line. */
#define LINE_TYPES (1u << ATP_EV_RESERVE | 1u << ATP_EV_PICK | 1u << ATP_EV_RELEASE)

/* Whether an event of type that passed atp_event_validate_shape() names a reservation line. */
static inline bool names_line(const atp_event *ev, unsigned type)
{
	return (ev->ref.len != 0) & (LINE_TYPES >> type & 1);
}

/* The hashes of an event that passed atp_event_validate_shape(). */
HOT event_hash hash_valid(const atp_event *ev)
{
	event_hash h;
	h.sku = atp_sku_hash(ev->sku);
	h.pos = atp_position_hash(h.sku, ev->location);
	h.line = names_line(ev, ev->type) ? atp_line_hash(ev->ref, h.pos) : 0;
	return h;
}

/* Whether a string can be read: absent, or at most max bytes at a pointer. */
static inline bool readable(atp_str s, uint32_t max)
{
	return s.len <= max && (s.ptr || !s.len);
}

void atp_core_hash_event(const atp_event *ev, atp_event_hash *h)
{
	/* Any event: strings that cannot be read hash to zero (validation refuses them). */
	if (ev->type < ATP_EV_TYPE_COUNT && readable(ev->sku, ATP_SKU_MAX) && readable(ev->location, ATP_LOC_MAX) &&
	    readable(ev->ref, ATP_REF_MAX))
		*h = hash_valid(ev);
	else
		*h = (event_hash){ 0, 0, 0 };
}

static void work_load(const atp_core *c, work *w, uint64_t pos_hash, atp_str sku, atp_str loc)
{
	w->location = loc;
	w->hash = pos_hash;
	w->id = atp_table_find(c->table, pos_hash, sku, loc);
	if (w->id != ATP_POS_NONE) {
		const atp_position *p = atp_table_get(c->table, w->id);
		w->before = (buckets){ p->on_hand, p->held, p->reserved, p->safety_stock };
	} else {
		w->before = (buckets){ 0, 0, 0, 0 };
	}
	w->after = w->before;
}

static inline int64_t buckets_atp(const buckets *b)
{
	int64_t v = b->on_hand - b->held - b->reserved - b->safety_stock;
	return v > 0 ? v : 0;
}

static bool in_bounds(const buckets *p)
{
	return p->on_hand >= -ATP_BUCKET_MAX && p->on_hand <= ATP_BUCKET_MAX && p->held >= 0 &&
	       p->held <= ATP_BUCKET_MAX && p->reserved >= 0 && p->reserved <= ATP_BUCKET_MAX &&
	       p->safety_stock >= 0 && p->safety_stock <= ATP_BUCKET_MAX;
}

/*
 * Whether buckets that were in bounds before an event of type are still.
 * The day's two big types check only what they can move out of bounds:
 * a RESERVE adds to reserved at most the ATP, so that reserved stays at
 * most on_hand (and held and safety_stock are untouched); a PICK only
 * lowers on_hand and reserved, so only their lower bounds are checked.
 */
HOT bool still_in_bounds(unsigned type, const buckets *p)
{
	switch (type) {
	case ATP_EV_RESERVE:
		return true;
	case ATP_EV_PICK:
		return p->on_hand >= -ATP_BUCKET_MAX && p->reserved >= 0;
	default:
		return in_bounds(p);
	}
}

static bool changed(const work *w)
{
	return w->before.on_hand != w->after.on_hand || w->before.held != w->after.held ||
	       w->before.reserved != w->after.reserved ||
	       w->before.safety_stock != w->after.safety_stock;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* What a new RESERVE confirms from atp: all of its qty, or (partial allowed) what atp covers, or nothing. */
HOT int64_t confirm_from(int64_t atp, const atp_event *ev)
{
	if (RARE(ev->flags & ATP_EVF_DENY))
		return 0;
	return atp >= ev->qty ? ev->qty : (ev->flags & ATP_EVF_PARTIAL) ? atp : 0;
}

/* ATP_RF_PARTIAL when a RESERVE of qty confirmed neither all nor nothing. */
HOT uint32_t partial_flag(int64_t confirmed, int64_t qty)
{
	return confirmed > 0 && confirmed < qty ? ATP_RF_PARTIAL : 0;
}

/* The exceptions a changed position's buckets show: on_hand gone (further) below zero, more reserved than free. */
HOT uint32_t stock_flags(int64_t on_hand_before, int64_t on_hand, int64_t held, int64_t reserved)
{
	return (on_hand < 0 && on_hand < on_hand_before ? ATP_RF_NEGATIVE : 0) |
	       (reserved > on_hand - held ? ATP_RF_SHORT : 0);
}

/* Decide the effect of ev on w (and to for TRANSFER); no state is written. */
HOT int plan(const atp_core *c, const atp_event *ev, unsigned type, work *w, work *to, line_plan *lp, atp_result *r)
{
	buckets *p = &w->after;
	const atp_line *ln = lp->id == ATP_LINE_NONE ? NULL : atp_lines_get(c->lines, lp->id);

	switch (type) {
	case ATP_EV_RECEIPT:
		p->on_hand += ev->qty;
		break;
	case ATP_EV_PICK:
		if (ln && ln->state == ATP_LINE_OPEN) {
			lp->take = min64(ev->qty, ln->remaining);
			p->reserved -= lp->take;
			r->moved = lp->take;
		}
		p->on_hand -= ev->qty;
		break;
	case ATP_EV_ADJUST:
		p->on_hand += ev->qty;
		break;
	case ATP_EV_COUNT:
		r->variance = ev->qty - p->on_hand;
		p->on_hand = ev->qty;
		break;
	case ATP_EV_HOLD: {
		int64_t free_units = p->on_hand - p->held;
		r->moved = min64(ev->qty, free_units > 0 ? free_units : 0);
		p->held += r->moved;
		break;
	}
	case ATP_EV_UNHOLD:
		r->moved = min64(ev->qty, p->held);
		p->held -= r->moved;
		break;
	case ATP_EV_TRANSFER:
		p->on_hand -= ev->qty;
		to->after.on_hand += ev->qty;
		if (!in_bounds(&to->after))
			return ATP_E_OVERFLOW;
		break;
	case ATP_EV_SAFETY:
		p->safety_stock = ev->qty;
		break;
	case ATP_EV_RESERVE: {
		r->requested = ev->qty;
		if (RARE(ln != NULL)) { /* a retry */
			r->confirmed = ln->confirmed;
			r->flags |= ATP_RF_REPLAYED | (ln->requested != ev->qty ? ATP_RF_MISMATCH : 0);
			if (ln->state == ATP_LINE_PROMISED) {
				r->promised_date = atp_inbound_promised_date(c->inbound, ln->pos, lp->id);
				r->flags |= ATP_RF_PROMISED;
			}
			r->flags |= ln->state == ATP_LINE_WITHDRAWN ? ATP_RF_WITHDRAWN : 0;
			break;
		}
		if (RARE(atp_lines_count(c->lines) == atp_lines_capacity(c->lines)))
			return ATP_E_LINES_FULL;
		int64_t atp = buckets_atp(p);
		r->confirmed = confirm_from(atp, ev);
		if (RARE(ev->date) && r->confirmed == 0 && !(ev->flags & ATP_EVF_DENY) && w->id != ATP_POS_NONE &&
		    (lp->promise = atp_inbound_can_promise(c->inbound, w->id, ev->qty, ev->date))) {
			if (!atp_inbound_promise_room(c->inbound))
				return ATP_E_SUPPLY_FULL;
			r->confirmed = ev->qty;
			r->promised_date = lp->promise;
			r->flags |= ATP_RF_PROMISED;
			lp->create = true;
			break;
		}
		r->flags |= partial_flag(r->confirmed, ev->qty);
		p->reserved += r->confirmed;
		lp->create = true;
		break;
	}
	case ATP_EV_RELEASE:
		if (ln && ln->state == ATP_LINE_OPEN) {
			lp->take = ln->remaining;
			p->reserved -= lp->take;
			r->moved = lp->take;
		}
		lp->unpromise = ln && ln->state == ATP_LINE_PROMISED;
		break;
	case ATP_EV_SUPPLY:
		if (ev->qty && atp_inbound_supply_room(c->inbound, w->id != ATP_POS_NONE ? w->id : atp_table_count(c->table),
						       ev->ref) != ATP_OK)
			return ATP_E_SUPPLY_FULL;
		break;
	default:
		return ATP_E_TYPE;
	}
	if ((type == ATP_EV_PICK || type == ATP_EV_RELEASE) && ev->ref.len &&
	    !(ln && (ln->state == ATP_LINE_OPEN || lp->unpromise)))
		r->flags |= ATP_RF_NO_LINE;
	if ((type == ATP_EV_HOLD || type == ATP_EV_UNHOLD) && r->moved < ev->qty)
		r->flags |= ATP_RF_CLAMPED;
	return RARE(!still_in_bounds(type, p)) ? ATP_E_OVERFLOW : ATP_OK;
}

/* A delta for position id when its ATP went from old_atp to new_atp (nothing when it did not). */
HOT void emit_change(atp_core *c, uint32_t id, int64_t old_atp, int64_t new_atp, uint32_t source, uint64_t seq,
			atp_result *r)
{
	if (old_atp == new_atp)
		return;
	c->stats.deltas++;
	if (c->no_deltas)
		return;
	const atp_position *p = atp_table_get(c->table, id);
	assert(r->n_deltas < sizeof(r->deltas) / sizeof(r->deltas[0]));  /* an event changes at most two positions */
	atp_delta *d = &r->deltas[r->n_deltas++];
	*d = (atp_delta){
		.sku = atp_str_of(atp_table_sku(c->table, id), p->sku_len),
		.location = atp_str_of(atp_table_location(c->table, id), p->loc_len),
		.old_atp = old_atp,
		.new_atp = new_atp,
		.version = p->version,
		.seq = seq,
		.pos = id,
		.source = source,
	};
}

void core_emit_change(atp_core *c, uint32_t id, int64_t old_atp, int64_t new_atp, uint32_t source, uint64_t seq,
		      atp_result *r)
{
	emit_change(c, id, old_atp, new_atp, source, seq, r);
}

HOT void emit_delta(atp_core *c, const work *w, uint32_t source, uint64_t seq, atp_result *r)
{
	emit_change(c, w->id, buckets_atp(&w->before), buckets_atp(&w->after), source, seq, r);
}

void atp_core_set_deltas(atp_core *c, bool on)
{
	c->no_deltas = !on;
}

HOT void store_buckets(atp_core *c, const work *w)
{
	atp_position_store(atp_table_at(c->table, w->id), w->after.on_hand, w->after.held, w->after.reserved,
			   w->after.safety_stock);
}

/* Write a planned position back; cannot fail (capacity was checked). */
HOT void commit_position(atp_core *c, work *w, atp_str sku)
{
	if (RARE(w->id == ATP_POS_NONE)) {
		w->id = atp_table_intern(c->table, w->hash, sku, w->location);
		assert(w->id != ATP_POS_NONE);
	}
	if (changed(w))
		store_buckets(c, w);
}

/* The line of a RESERVE (its key absent, at slot where), open with what was confirmed, or closed unfilled. */
HOT void create_line(atp_core *c, const atp_event *ev, uint32_t where, uint64_t hash, uint32_t pos, int64_t confirmed)
{
	uint32_t id = atp_lines_add_where(c->lines, where, hash, ev->ref, pos);
	assert(id != ATP_LINE_NONE);
	atp_line *ln = atp_lines_at(c->lines, id);
	ln->requested = ev->qty;
	ln->confirmed = confirmed;
	ln->remaining = confirmed;
	ln->releasable = (ev->flags & ATP_EVF_RELEASABLE) != 0;
	if (confirmed > 0)
		atp_lines_open(c->lines, id, ev->expires_at);
	else
		atp_lines_close(c->lines, id, ATP_LINE_UNFILLED, c->now);
}

/* take units (at most its remaining) leave open line id, which closes in state when none remain. */
HOT void take_from_line(atp_core *c, uint32_t id, int64_t take, enum atp_line_state state)
{
	atp_line *ln = atp_lines_at(c->lines, id);
	ln->remaining -= take;
	assert(ln->remaining >= 0);
	if (ln->remaining == 0)
		atp_lines_close(c->lines, id, state, c->now);
}

/* A change of the position's reserved that a replan made (core_inbound.c), written back. */
static void take_reserved(atp_core *c, work *w, int64_t reserved)
{
	if (reserved) {
		w->after.reserved += reserved;
		store_buckets(c, w);
	}
}

HOT void commit_line(atp_core *c, const atp_event *ev, unsigned type, work *w, const line_plan *lp,
			atp_result *r)
{
	if (RARE(lp->promise | lp->unpromise) || RARE(type == ATP_EV_SUPPLY) ||
	    RARE(type == ATP_EV_RECEIPT && ev->ref.len)) {
		core_line_slot slot = { .id = lp->id, .where = lp->where, .hash = lp->hash, .promise = lp->promise };
		take_reserved(c, w, core_commit_inbound(c, ev, type, w->id, &slot, r));
		return;
	}
	if (lp->create) {
		create_line(c, ev, lp->where, lp->hash, w->id, r->confirmed);
		return;
	}
	if (lp->take)
		take_from_line(c, lp->id, lp->take, type == ATP_EV_PICK ? ATP_LINE_CONSUMED : ATP_LINE_RELEASED);
}

HOT void count_applied(atp_core *c, unsigned type, const atp_result *r)
{
	atp_core_stats *s = &c->stats;
	s->applied[type]++;
	if (RARE(r->flags & ATP_RF_NEGATIVE))
		s->negative_events++;
	if (RARE(r->flags & ATP_RF_SHORT))
		s->short_events++;
	switch (type) {
	case ATP_EV_RESERVE:
		if (r->flags & ATP_RF_REPLAYED) {
			s->reserve_replayed++;
			break;
		}
		s->reserve_units_requested += (uint64_t)r->requested;
		s->reserve_units_confirmed += (uint64_t)r->confirmed;
		if (r->confirmed == r->requested)
			s->reserve_full++;
		else if (r->confirmed > 0)
			s->reserve_partial++;
		else
			s->reserve_unfilled++;
		break;
	case ATP_EV_PICK:
		s->units_consumed += (uint64_t)r->moved;
		break;
	case ATP_EV_RELEASE:
		s->units_released += (uint64_t)r->moved;
		break;
	case ATP_EV_COUNT:
		s->count_variance_abs += (uint64_t)(r->variance < 0 ? -r->variance : r->variance);
		break;
	default:
		break;
	}
}

/*
 * Flags that describe the state a change left behind. A RESERVE leaves
 * none: it adds to reserved at most the ATP, and changes nothing else.
 */
HOT uint32_t exception_flags(unsigned type, const work *w)
{
	if (type == ATP_EV_RESERVE || !changed(w))
		return 0;
	return stock_flags(w->before.on_hand, w->after.on_hand, w->after.held, w->after.reserved);
}

static int refuse(atp_core *c, atp_result *r, int status)
{
	r->status = status;
	if (status == ATP_DUPLICATE)
		c->stats.duplicates++;
	else if (status == ATP_E_GAP)
		c->stats.gaps++;
	else
		c->stats.refused++;
	return status;
}

HOT bool is_source(const known_source *k, atp_str name)
{
	const atp_source *s = k->entry;
	return s && s->name_len == name.len && atp_bytes_equal(s->name, name.ptr, name.len);
}

/*
 * The id of a known source, or ATP_SOURCE_NONE. Events come from one or
 * two sources at a time, so two recent ones are checked before the table
 * is hashed. They keep their places (a miss replaces them in turn): with
 * two sources interleaved, each check then answers the same for every
 * event of a kind, which the branch predictor learns.
 */
HOT known_source source_of(atp_core *c, atp_str name)
{
	known_source *recent = c->recent_sources;
	if (is_source(&recent[0], name))
		return recent[0];
	if (is_source(&recent[1], name))
		return recent[1];
	known_source k = { atp_sources_find(c->sources, name), NULL };
	if (k.id != ATP_SOURCE_NONE) {
		k.entry = atp_sources_at(c->sources, k.id);
		recent[c->recent_victim] = k;
		c->recent_victim ^= 1;
	}
	return k;
}

/* The bytes of a position key not yet interned: 0, ATP_E_SKU or loc_error. */
static int new_key_check(atp_str sku, atp_str loc, int loc_error)
{
	if (!atp_str_valid(sku, ATP_SKU_MAX))
		return ATP_E_SKU;
	return atp_str_valid(loc, ATP_LOC_MAX) ? ATP_OK : loc_error;
}

/* Whether ev's seq may be applied now: 0, ATP_DUPLICATE, ATP_E_GAP or ATP_E_SOURCES_FULL. */
HOT int check_seq(const atp_core *c, const atp_event *ev, known_source src, atp_result *r)
{
	uint64_t hwm = src.entry ? src.entry->hwm : 0;
	r->expected_seq = hwm + 1;
	if (ev->seq <= hwm)
		return ATP_DUPLICATE;
	if (ev->seq > hwm + 1 && !c->sparse_seq)
		return ATP_E_GAP;
	if (!src.entry && atp_sources_count(c->sources) == atp_sources_capacity(c->sources))
		return ATP_E_SOURCES_FULL;
	return 0;
}

/* Advance src's hwm to ev's seq, adding the source when it is new; its id. */
HOT uint32_t advance_source(atp_core *c, const atp_event *ev, known_source src, atp_result *r)
{
	if (RARE(!src.entry)) {
		src.id = atp_sources_intern(c->sources, ev->source);
		src.entry = atp_sources_at(c->sources, src.id);
	}
	src.entry->hwm = ev->seq;
	r->expected_seq = ev->seq + 1;
	return src.id;
}

/*
 * A RELEASE of a whole reservation: its open lines, at most
 * ATP_RELEASE_ALL_LINES of them (each changes one position, so their
 * deltas fit the result); ATP_RF_MORE when open lines remain.
 */
static int release_all(atp_core *c, const atp_event *ev, known_source src, atp_result *r)
{
	int rc = check_seq(c, ev, src, r);
	if (rc)
		return refuse(c, r, rc);
	if (!atp_str_valid(ev->ref, ATP_REF_MAX))
		return refuse(c, r, ATP_E_REF);
	uint32_t src_id = advance_source(c, ev, src, r);
	uint32_t id = atp_lines_first_open(c->lines, ev->ref);
	if (id == ATP_LINE_NONE)
		r->flags |= ATP_RF_NO_LINE;
	for (int k = 0; id != ATP_LINE_NONE && k < ATP_RELEASE_ALL_LINES; k++) {
		uint32_t next = atp_lines_next_open(c->lines, id);
		atp_line *ln = atp_lines_at(c->lines, id);
		const atp_position *p = atp_table_get(c->table, ln->pos);
		work w = { .id = ln->pos, .before = { p->on_hand, p->held, p->reserved, p->safety_stock } };
		w.after = w.before;
		if (RARE(ln->state == ATP_LINE_PROMISED)) {
			take_reserved(c, &w, core_release_promised(c, w.id, id, r));
			emit_delta(c, &w, src_id, ev->seq, r);
			id = next;
			continue;
		}
		w.after.reserved -= ln->remaining;
		r->moved += ln->remaining;
		ln->remaining = 0;
		store_buckets(c, &w);
		atp_lines_close(c->lines, id, ATP_LINE_RELEASED, c->now);
		emit_delta(c, &w, src_id, ev->seq, r);
		id = next;
	}
	if (id != ATP_LINE_NONE)
		r->flags |= ATP_RF_MORE;
	count_applied(c, ev->type, r);
	return r->status = ATP_OK;
}

/*
 * shape: atp_event_validate_shape(ev), or ATP_OK for an event that passed
 * atp_event_validate() (whose checks include these) where it came from;
 * h: its hashes when shape is ATP_OK.
 */
HOT int apply_as(atp_core *c, const atp_event *ev, unsigned type, event_hash h, int shape, atp_result *r)
{
	memset(r, 0, offsetof(atp_result, deltas));

	int rc = shape;
	if (RARE(rc))
		return refuse(c, r, rc);

	/* Keys seen for the first time get their bytes checked before anything else. */
	known_source src = source_of(c, ev->source);
	if (RARE(!src.entry) && !atp_str_valid(ev->source, ATP_SOURCE_MAX))
		return refuse(c, r, ATP_E_SOURCE);
	if (RARE(type == ATP_EV_RELEASE && atp_event_releases_all(ev)))
		return release_all(c, ev, src, r);
	work w, to;
	bool transfer = type == ATP_EV_TRANSFER;
	work_load(c, &w, h.pos, ev->sku, ev->location);
	if (RARE(w.id == ATP_POS_NONE)) {
		if (type == ATP_EV_RESERVE && (ev->flags & ATP_EVF_KNOWN))
			return refuse(c, r, ATP_E_NO_POSITION);
		if ((rc = new_key_check(ev->sku, ev->location, ATP_E_LOCATION)))
			return refuse(c, r, rc);
	}
	if (RARE(transfer)) {
		work_load(c, &to, atp_position_hash(h.sku, ev->to_location), ev->sku, ev->to_location);
		if (to.id == ATP_POS_NONE && (rc = new_key_check(ev->sku, ev->to_location, ATP_E_TO_LOCATION)))
			return refuse(c, r, rc);
	}
	line_plan lp = { .id = ATP_LINE_NONE, .where = ATP_LINE_NONE, .hash = h.line };
	if (w.id != ATP_POS_NONE && names_line(ev, type))
		lp.id = atp_lines_find_where(c->lines, h.line, ev->ref, w.id, &lp.where);
	if (lp.id == ATP_LINE_NONE && ev->ref.len && RARE(!atp_str_check(ev->ref, ATP_REF_MAX)))
		return refuse(c, r, ATP_E_REF);

	if (RARE(rc = check_seq(c, ev, src, r)))
		return refuse(c, r, rc);
	bool create_w = w.id == ATP_POS_NONE && type != ATP_EV_RELEASE;
	uint32_t needed = create_w + (transfer && to.id == ATP_POS_NONE);
	if (RARE(atp_table_count(c->table) + needed > atp_table_capacity(c->table)))
		return refuse(c, r, ATP_E_POSITIONS_FULL);

	rc = plan(c, ev, type, &w, &to, &lp, r);
	if (RARE(rc))
		return refuse(c, r, rc);

	/* Commit: nothing below can fail. */
	uint32_t src_id = advance_source(c, ev, src, r);
	if (create_w || w.id != ATP_POS_NONE) {
		commit_position(c, &w, ev->sku);
		commit_line(c, ev, type, &w, &lp, r);
		r->flags |= exception_flags(type, &w);
		emit_delta(c, &w, src_id, ev->seq, r);
	}
	if (transfer) {
		commit_position(c, &to, ev->sku);
		emit_delta(c, &to, src_id, ev->seq, r);
	}
	count_applied(c, type, r);
	return r->status = ATP_OK;
}

/*
 * The day's two big types the way they nearly always come: from a known
 * source, next in its sequence, for a position that exists. Each effect
 * is computed once, on the position itself, without the general way's
 * plan on copies of four buckets. Anything else (a new source or
 * position, a duplicate or a gap, a retried RESERVE, a ref whose bytes
 * are bad, a full store, a bucket near its bound) returns false before
 * anything is written, and the event goes the general way (apply_as),
 * which decides it: the two ways answer alike for every event they both
 * take.
 */

/* The known source of ev, when ev is next in its sequence; else entry NULL. */
HOT known_source next_in_source(atp_core *c, const atp_event *ev)
{
	known_source src = source_of(c, ev->source);
	if (src.entry) {
		uint64_t hwm = src.entry->hwm;
		if (RARE(ev->seq <= hwm || (ev->seq != hwm + 1 && !c->sparse_seq)))
			src.entry = NULL;
	}
	return src;
}

/* The result of an applied event, but for its deltas. */
HOT void result_applied(atp_result *r, const atp_event *ev, uint32_t flags, int64_t confirmed, int64_t moved)
{
	r->status = ATP_OK;
	r->flags = flags;
	r->expected_seq = ev->seq + 1;
	r->requested = ev->type == ATP_EV_RESERVE ? ev->qty : 0;
	r->confirmed = confirmed;
	r->moved = moved;
	r->variance = 0;
	r->promised_date = 0;
	r->n_late = r->n_withdrawn = 0;
	r->n_deltas = 0;
}

HOT bool reserve_fast(atp_core *c, const atp_event *ev, event_hash h, atp_result *r)
{
	known_source src = next_in_source(c, ev);
	if (RARE(!src.entry) || RARE(ev->date))
		return false;
	uint32_t id = atp_table_find(c->table, h.pos, ev->sku, ev->location), where;
	if (RARE(id == ATP_POS_NONE) ||
	    RARE(atp_lines_find_where(c->lines, h.line, ev->ref, id, &where) != ATP_LINE_NONE) ||
	    RARE(!atp_str_check(ev->ref, ATP_REF_MAX)) ||
	    RARE(atp_lines_count(c->lines) == atp_lines_capacity(c->lines)))
		return false;
	atp_position *p = atp_table_at(c->table, id);
	int64_t atp = atp_position_atp(p), q = ev->qty;
	int64_t confirmed = confirm_from(atp, ev);
	result_applied(r, ev, partial_flag(confirmed, q), confirmed, 0);
	src.entry->hwm = ev->seq;
	if (confirmed > 0)
		atp_position_store(p, p->on_hand, p->held, p->reserved + confirmed, p->safety_stock);
	create_line(c, ev, where, h.line, id, confirmed);
	emit_change(c, id, atp, atp - confirmed, src.id, ev->seq, r);
	count_applied(c, ATP_EV_RESERVE, r);
	return true;
}

HOT bool pick_fast(atp_core *c, const atp_event *ev, event_hash h, atp_result *r)
{
	known_source src = next_in_source(c, ev);
	if (RARE(!src.entry))
		return false;
	uint32_t id = atp_table_find(c->table, h.pos, ev->sku, ev->location);
	if (RARE(id == ATP_POS_NONE))
		return false;
	uint32_t line = ATP_LINE_NONE;
	int64_t take = 0;
	if (ev->ref.len) {
		line = atp_lines_find(c->lines, h.line, ev->ref, id);
		const atp_line *ln = line == ATP_LINE_NONE ? NULL : atp_lines_get(c->lines, line);
		if (ln && ln->state == ATP_LINE_OPEN)
			take = min64(ev->qty, ln->remaining);
		else if (RARE(!ln && !atp_str_check(ev->ref, ATP_REF_MAX)))
			return false;
		else
			line = ATP_LINE_NONE;
	}
	atp_position *p = atp_table_at(c->table, id);
	int64_t on_hand = p->on_hand - ev->qty, reserved = p->reserved - take, held = p->held;
	if (RARE(on_hand < -ATP_BUCKET_MAX || reserved < 0))
		return false;
	uint32_t flags = (ev->ref.len && line == ATP_LINE_NONE ? ATP_RF_NO_LINE : 0) |
			 stock_flags(p->on_hand, on_hand, held, reserved);
	result_applied(r, ev, flags, 0, take);
	src.entry->hwm = ev->seq;
	int64_t old_atp = atp_position_atp(p);
	atp_position_store(p, on_hand, held, reserved, p->safety_stock);
	if (take)
		take_from_line(c, line, take, ATP_LINE_CONSUMED);
	emit_change(c, id, old_atp, atp_position_atp(p), src.id, ev->seq, r);
	count_applied(c, ATP_EV_PICK, r);
	return true;
}

/* The rare types, out of line: the two big types' code stays small and together. */
static __attribute__((noinline)) int apply_other(atp_core *c, const atp_event *ev, event_hash h, int shape,
						 atp_result *r)
{
	return apply_as(c, ev, ev->type, h, shape, r);
}

/*
 * One branch on the type, then code made for it: every later branch of an
 * event of the day's two big types sits where only that type runs, so the
 * branch predictor learns each on its own instead of guessing the next
 * event's type again at every one of them. The rare types share one copy.
 * Inlined into the batch loop too, which saves a call per event (723 -> 713
 * instructions per event).
 */
HOT int apply_hashed(atp_core *c, const atp_event *ev, event_hash h, int shape, atp_result *r)
{
	switch (ev->type) {
	case ATP_EV_RESERVE:
		if (RARE(shape) || !reserve_fast(c, ev, h, r))
			return apply_as(c, ev, ATP_EV_RESERVE, h, shape, r);
		return ATP_OK;
	case ATP_EV_PICK:
		if (RARE(shape) || !pick_fast(c, ev, h, r))
			return apply_as(c, ev, ATP_EV_PICK, h, shape, r);
		return ATP_OK;
	default:
		return apply_other(c, ev, h, shape, r);
	}
}

int atp_core_apply(atp_core *c, const atp_event *ev, atp_result *r)
{
	int shape = atp_event_validate_shape(ev);
	return apply_hashed(c, ev, shape ? (event_hash){ 0, 0, 0 } : hash_valid(ev), shape, r);
}

/*
 * The batch pipeline. Events go through three stages, DEPTH events apart:
 * start fetching the table and line slots their hashes probe first; look
 * at those slots and start fetching the positions, keys and lines they
 * name; apply (at now[i] first, when now is given). Each event's misses
 * are then in flight while the events before it are applied.
 */
enum { DEPTH = 8 };

/* Without branches on the event (a branch here would guess its type): an event without a line fetches slot 0. */
static inline void prefetch_slots(const atp_core *c, const event_hash *h)
{
	atp_table_prefetch(c->table, h->pos);
	atp_lines_prefetch(c->lines, h->line);
}

static inline void prefetch_entries(const atp_core *c, const event_hash *h)
{
	atp_table_prefetch_entry(c->table, h->pos);
	atp_lines_prefetch_entry(c->lines, h->line);
}

/* shape[i] as apply_hashed() takes it; NULL: every event was validated. */
static void apply_run(atp_core *c, const atp_event *ev, const event_hash *h, const int *shape, const uint64_t *now,
		      size_t n, size_t base, atp_result *r)
{
	for (size_t i = 0; i < n && i < 2 * DEPTH; i++)
		prefetch_slots(c, &h[i]);
	for (size_t i = 0; i < n && i < DEPTH; i++)
		prefetch_entries(c, &h[i]);
	for (size_t i = 0; i < n; i++) {
		if (i + 2 * DEPTH < n)
			prefetch_slots(c, &h[i + 2 * DEPTH]);
		if (i + DEPTH < n)
			prefetch_entries(c, &h[i + DEPTH]);
		if (now && RARE(now[i] > c->now))
			core_expire_until(c, now[i], base + i);
		apply_hashed(c, &ev[i], h[i], shape ? shape[i] : ATP_OK, &r[i]);
	}
}

/*
 * How far ahead of the check-and-hash pass the events are fetched: their
 * structs (an atp_event spans up to four cache lines), then, once a
 * struct is likely in, the key bytes it points at. The pass is the first
 * to read each event; reading a large batch from memory one demand miss
 * after another cost a tenth to a fifth of the apply's time, although the
 * reads go in order.
 */
enum { STRUCT_AHEAD = 16, KEYS_AHEAD = 8 };

static inline void prefetch_event(const atp_event *ev)
{
	const char *p = (const char *)ev;
	_Static_assert(sizeof(atp_event) + 64 - _Alignof(atp_event) <= 4 * 64, "an event spans at most four lines");
	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
	__builtin_prefetch(p + sizeof(atp_event) - 1);
}

/* Any pointer is harmless here, NULL (an absent ref) or a bad event's: a prefetch never faults. */
static inline void prefetch_keys(const atp_event *ev)
{
	__builtin_prefetch(ev->source.ptr);
	__builtin_prefetch(ev->sku.ptr);
	__builtin_prefetch(ev->location.ptr);
	__builtin_prefetch(ev->ref.ptr);
}

/*
 * Without given hashes, a chunk of events is checked and hashed first,
 * then run. Both depend on the events' bytes alone, so doing them ahead
 * never changes what is applied.
 */
static void apply_pipeline(atp_core *c, const atp_event *ev, const event_hash *given, const uint64_t *now, size_t n,
			   atp_result *r)
{
	if (given) {
		apply_run(c, ev, given, NULL, now, n, 0, r);
		return;
	}
	enum { CHUNK = 256 };
	event_hash h[CHUNK];
	int shape[CHUNK];
	for (size_t at = 0; at < n; at += CHUNK) {
		size_t m = n - at < CHUNK ? n - at : CHUNK;
		for (size_t i = 0; i < m; i++) {
			if (at + i + STRUCT_AHEAD < n)
				prefetch_event(&ev[at + i + STRUCT_AHEAD]);
			if (at + i + KEYS_AHEAD < n)
				prefetch_keys(&ev[at + i + KEYS_AHEAD]);
			shape[i] = atp_event_validate_shape(&ev[at + i]);
			h[i] = shape[i] ? (event_hash){ 0, 0, 0 } : hash_valid(&ev[at + i]);
		}
		apply_run(c, ev + at, h, shape, now ? now + at : NULL, m, at, r + at);
	}
}

void atp_core_apply_batch(atp_core *c, const atp_event *ev, size_t n, atp_result *r)
{
	apply_pipeline(c, ev, NULL, NULL, n, r);
}

void atp_core_apply_batch_at(atp_core *c, const atp_event *ev, const uint64_t *now, size_t n, atp_result *r)
{
	apply_pipeline(c, ev, NULL, now, n, r);
}

void atp_core_apply_batch_hashed_at(atp_core *c, const atp_event *ev, const atp_event_hash *h, const uint64_t *now,
				    size_t n, atp_result *r)
{
	apply_pipeline(c, ev, h, now, n, r);
}
