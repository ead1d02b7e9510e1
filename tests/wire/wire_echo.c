/*
 * wire_echo.c — decode a FlatBuffer with atpd's verifier and accessors and
 * build it again with atpd's builders: `wire_echo TYPE IN OUT`. The
 * compatibility test feeds it buffers made by the reference tools and reads
 * what it writes with them, so both directions are checked in one pass.
 * Exit 0, or 3 with the verifier's message when IN is refused.
 */
#include "atp/wire_api.h"
#include "atp/wire_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t in[ATP_WIRE_MESSAGE_MAX + 1] __attribute__((aligned(8)));
static uint8_t out[2 * ATP_WIRE_MESSAGE_MAX] __attribute__((aligned(8)));
static atp_event events[ATP_WIRE_BATCH_MAX];
static atp_wire_event_time times[ATP_WIRE_BATCH_MAX];
static atp_fb_ref event_refs[ATP_WIRE_BATCH_MAX];

/* ---- atp.v1: read with the accessors, build with the builders ---- */

static atp_fb_ref echo_query(atp_fb_builder *b, const uint8_t *t)
{
	atp_str loc[ATP_V1_LIST_MAX];
	uint32_t n = atp_v1_atp_query_locations_count(t);
	for (uint32_t i = 0; i < n; i++)
		loc[i] = atp_v1_atp_query_location(t, i);
	return atp_v1_build_atp_query(b, atp_v1_atp_query_sku(t), loc, n);
}

static atp_fb_ref echo_position(atp_fb_builder *b, const uint8_t *t)
{
	atp_v1_position p = {
		atp_v1_position_atp_sku(t),	     atp_v1_position_atp_location(t), atp_v1_position_atp_on_hand(t),
		atp_v1_position_atp_held(t),	     atp_v1_position_atp_reserved(t), atp_v1_position_atp_safety_stock(t),
		atp_v1_position_atp_atp(t),	     atp_v1_position_atp_version(t),
	};
	return atp_v1_build_position_atp(b, &p);
}

static atp_fb_ref echo_reply(atp_fb_builder *b, const uint8_t *t)
{
	atp_fb_ref refs[ATP_V1_LIST_MAX];
	uint32_t n = atp_v1_atp_reply_positions_count(t);
	for (uint32_t i = 0; i < n; i++)
		refs[i] = echo_position(b, atp_v1_atp_reply_positions(t, i));
	return atp_v1_build_atp_reply(b, refs, n, atp_v1_atp_reply_network_atp(t));
}

static int echo_api(const char *type, size_t len, atp_fb_builder *b, atp_fb_ref *root)
{
	static const struct {
		const char *name;
		const atp_fb_table_rule *rule;
	} types[] = {
		{ "AtpQuery", &atp_v1_atp_query_rule },		{ "PositionAtp", &atp_v1_position_atp_rule },
		{ "AtpReply", &atp_v1_atp_reply_rule },		{ "AtpBatchQuery", &atp_v1_atp_batch_query_rule },
		{ "AtpBatchReply", &atp_v1_atp_batch_reply_rule }, { "ReserveRequest", &atp_v1_reserve_request_rule },
		{ "ReserveReply", &atp_v1_reserve_reply_rule },	{ "ReleaseRequest", &atp_v1_release_request_rule },
		{ "ReleaseReply", &atp_v1_release_reply_rule },	{ "ScanRequest", &atp_v1_scan_request_rule },
		{ "SubscribeRequest", &atp_v1_subscribe_request_rule }, { "Delta", &atp_v1_delta_rule },
	};
	size_t k = 0;
	while (k < sizeof(types) / sizeof(*types) && strcmp(types[k].name, type) != 0)
		k++;
	if (k == sizeof(types) / sizeof(*types))
		return 1;
	int rc;
	const uint8_t *t = atp_v1_verify(in, len, types[k].rule, &rc);
	if (!t)
		return rc;
	atp_fb_ref refs[ATP_V1_LIST_MAX];
	uint32_t n;
	switch (k) {
	case 0:
		*root = echo_query(b, t);
		break;
	case 1:
		*root = echo_position(b, t);
		break;
	case 2:
		*root = echo_reply(b, t);
		break;
	case 3:
		n = atp_v1_atp_batch_query_queries_count(t);
		for (uint32_t i = 0; i < n; i++)
			refs[i] = echo_query(b, atp_v1_atp_batch_query_queries(t, i));
		*root = atp_v1_build_atp_batch_query(b, refs, n);
		break;
	case 4:
		n = atp_v1_atp_batch_reply_replies_count(t);
		for (uint32_t i = 0; i < n; i++)
			refs[i] = echo_reply(b, atp_v1_atp_batch_reply_replies(t, i));
		*root = atp_v1_build_atp_batch_reply(b, refs, n);
		break;
	case 5:
		n = atp_v1_reserve_request_lines_count(t);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *l = atp_v1_reserve_request_lines(t, i);
			refs[i] = atp_v1_build_reserve_line(b, atp_v1_reserve_line_sku(l), atp_v1_reserve_line_location(l),
							    atp_v1_reserve_line_qty(l));
		}
		*root = atp_v1_build_reserve_request(b, atp_v1_reserve_request_reservation_id(t), refs, n,
						     atp_v1_reserve_request_ttl_ms(t), atp_v1_reserve_request_allow_partial(t));
		break;
	case 6:
		n = atp_v1_reserve_reply_lines_count(t);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *l = atp_v1_reserve_reply_lines(t, i);
			refs[i] = atp_v1_build_line_result(b, atp_v1_line_result_sku(l), atp_v1_line_result_location(l),
							   atp_v1_line_result_requested(l), atp_v1_line_result_confirmed(l));
		}
		*root = atp_v1_build_reserve_reply(b, atp_v1_reserve_reply_reservation_id(t), refs, n,
						   atp_v1_reserve_reply_duplicate(t));
		break;
	case 7:
		*root = atp_v1_build_release_request(b, atp_v1_release_request_reservation_id(t));
		break;
	case 8:
		*root = atp_v1_build_release_reply(b, atp_v1_release_reply_released(t), atp_v1_release_reply_found(t));
		break;
	case 9:
		*root = atp_v1_build_scan_request(b, atp_v1_scan_request_after_sku(t), atp_v1_scan_request_limit(t));
		break;
	case 10: {
		uint32_t tok_len;
		const uint8_t *tok = atp_v1_subscribe_request_resume_token(t, &tok_len);
		*root = atp_v1_build_subscribe_request(b, atp_v1_subscribe_request_channel(t), tok, tok_len);
		break;
	}
	default: {
		atp_v1_delta d = { .channel = atp_v1_delta_channel(t), .sku = atp_v1_delta_sku(t),
				   .location = atp_v1_delta_location(t), .seq = atp_v1_delta_seq(t),
				   .version = atp_v1_delta_version(t), .atp = atp_v1_delta_atp(t),
				   .previous_atp = atp_v1_delta_previous_atp(t), .sku_atp = atp_v1_delta_sku_atp(t),
				   .shard = atp_v1_delta_shard(t), .index = atp_v1_delta_index(t),
				   .kind = atp_v1_delta_kind(t) };
		d.token = atp_v1_delta_token(t, &d.token_len);
		*root = atp_v1_build_delta(b, &d, NULL);
		break;
	}
	}
	return 0;
}

static int echo(const char *type, size_t len, atp_fb_builder *b, atp_fb_ref *root)
{
	int api = echo_api(type, len, b, root);
	if (api <= 0)
		return api;
	if (strcmp(type, "EventBatch") == 0) {
		int n = atp_wire_decode_event_batch(in, len, events, times, ATP_WIRE_BATCH_MAX);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			event_refs[i] = atp_wire_build_event(b, &events[i], times[i]);
		*root = atp_wire_build_event_batch(b, event_refs, (uint32_t)n);
		return 0;
	}
	if (strcmp(type, "Ack") == 0) {
		atp_wire_ack a;
		static atp_wire_refusal r[ATP_WIRE_REFUSED_MAX];
		int rc = atp_wire_decode_ack(in, len, &a);
		if (rc)
			return rc;
		for (uint32_t i = 0; i < a.n_refused; i++)
			r[i] = atp_wire_ack_refusal(&a, i);
		a.refused = r;
		*root = atp_wire_build_ack(b, &a);
		return 0;
	}
	if (strcmp(type, "Hello") == 0) {
		atp_str source;
		int rc = atp_wire_decode_hello(in, len, &source);
		if (!rc)
			*root = atp_wire_build_hello(b, source);
		return rc;
	}
	if (strcmp(type, "Welcome") == 0) {
		atp_wire_welcome w;
		int rc = atp_wire_decode_welcome(in, len, &w);
		if (!rc)
			*root = atp_wire_build_welcome(b, &w);
		return rc;
	}
	fprintf(stderr, "wire_echo: unknown type %s\n", type);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: wire_echo TYPE IN OUT\n");
		return 2;
	}
	FILE *f = fopen(argv[2], "rb");
	if (!f) {
		perror(argv[2]);
		return 2;
	}
	size_t len = fread(in, 1, sizeof(in), f);
	fclose(f);

	atp_fb_builder b;
	atp_fb_ref root = 0;
	atp_fb_builder_init(&b, out, sizeof(out));
	int rc = echo(argv[1], len, &b, &root);
	if (rc) {
		fprintf(stderr, "wire_echo: %s refused: %s\n", argv[1], atp_fb_error_message(rc));
		return 3;
	}
	size_t size;
	const uint8_t *buf = atp_fb_finish(&b, root, NULL, &size);
	if (!buf) {
		fprintf(stderr, "wire_echo: output does not fit\n");
		return 2;
	}
	f = fopen(argv[3], "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0) {
		perror(argv[3]);
		return 2;
	}
	return 0;
}
