/*
 * grpc_profile.c — GetAtpProfile: what can be promised per day over a horizon.
 *
 * For each day from today (atpd's clock) through the horizon, summed over
 * the positions asked: the ATP on hand now, and inbound(d), the units of
 * supply due by that day that no promise holds yet (atp/inbound.h). Read
 * without locks from the shard's table and inbound store, as GetAtp reads
 * positions: each position is consistent, the set is as of the read.
 */
#include "grpc_internal.h"

#include "atp/inbound.h"
#include "atp/limits.h"

#include <stdio.h>
#include <string.h>

static bool location_asked(const uint8_t *q, uint32_t n_loc, atp_str location)
{
	for (uint32_t i = 0; i < n_loc; i++)
		if (atp_str_cmp(atp_v1_atp_query_location(q, i), location) == 0)
			return true;
	return false;
}

void grpc_method_profile(atp_grpc_server *g, call *c)
{
	const uint8_t *q = grpc_method_verify(g, c, &atp_v1_atp_profile_query_rule, "atp.v1.AtpProfileQuery");
	if (!q)
		return;
	atp_str sku = atp_v1_atp_profile_query_sku(q);
	if (!atp_str_valid(sku, ATP_SKU_MAX)) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "sku: missing, too long or with control bytes");
		return;
	}
	uint32_t n_loc = atp_v1_atp_query_locations_count(q), horizon = atp_v1_atp_profile_query_horizon_days(q);
	for (uint32_t i = 0; i < n_loc; i++) {
		if (!atp_str_valid(atp_v1_atp_query_location(q, i), ATP_LOC_MAX)) {
			grpc_call_respond(g, c, G_INVALID_ARGUMENT, "locations[%u]: missing, too long or with control bytes", i);
			return;
		}
	}
	if (horizon > ATP_V1_HORIZON_MAX) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "horizon_days: at most %u", ATP_V1_HORIZON_MAX);
		return;
	}
	horizon = horizon ? horizon : ATP_V1_HORIZON_DEFAULT;

	static atp_inbound_curve curves[ATP_V1_LIST_MAX];
	size_t n = atp_engine_read_sku_inbound(g->e, sku, g->positions, curves, ATP_V1_LIST_MAX);
	if (n == 0) {
		grpc_call_respond(g, c, G_NOT_FOUND, "%.*s: no such SKU", (int)sku.len, sku.ptr);
		return;
	}
	n = n < ATP_V1_LIST_MAX ? n : ATP_V1_LIST_MAX;
	int64_t atp = 0;
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (n_loc && !location_asked(q, n_loc, g->positions[i].location))
			continue;
		const atp_position_view *v = &g->positions[i].v;
		int64_t a = v->on_hand - v->held - v->reserved - v->safety_stock;
		atp += a > 0 ? a : 0;
		curves[kept++] = curves[i];
	}
	uint32_t today = (uint32_t)(atp_engine_now_ms(g->e) / ATP_DAY_MS);
	atp_fb_builder b;
	atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
	atp_fb_ref days[ATP_V1_HORIZON_MAX];
	for (uint32_t d = 0; d < horizon; d++) {
		int64_t inbound = 0;
		for (size_t i = 0; i < kept; i++)
			inbound += atp_inbound_units(&curves[i], today + d);
		days[d] = atp_v1_build_profile_day(&b, atp_ymd_of_day(today + d), atp, inbound);
	}
	grpc_method_reply(g, c, &b, atp_v1_build_atp_profile(&b, sku, days, horizon));
}
