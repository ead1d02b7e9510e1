/*
 * fuzz_api.c — libFuzzer targets for the root types of fbs/atp.fbs and
 * fbs/delta.fbs, one per build (-DFUZZ_API=0..23, the order of rules[]).
 * Oracle: whatever the verifier accepts can be read whole, field by field
 * through the accessors, with the sanitizers watching every byte.
 */
#include "atp/wire_api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const atp_fb_table_rule *const rules[] = {
	&atp_v1_atp_query_rule,	      &atp_v1_position_atp_rule,    &atp_v1_atp_reply_rule,
	&atp_v1_atp_batch_query_rule, &atp_v1_atp_batch_reply_rule, &atp_v1_reserve_request_rule,
	&atp_v1_reserve_reply_rule,   &atp_v1_release_request_rule, &atp_v1_release_reply_rule,
	&atp_v1_scan_request_rule,    &atp_v1_subscribe_request_rule, &atp_v1_delta_rule,
	&atp_v1_snapshot_request_rule, &atp_v1_snapshot_reply_rule, &atp_v1_redrive_request_rule,
	&atp_v1_redrive_reply_rule,   &atp_v1_purge_request_rule,   &atp_v1_purge_reply_rule,
	&atp_v1_dead_letters_request_rule, &atp_v1_dead_letters_reply_rule, &atp_v1_history_request_rule,
	&atp_v1_history_reply_rule,   &atp_v1_atp_profile_query_rule, &atp_v1_atp_profile_rule,
};

static volatile uint64_t sink;

/* Read every field the rule names, bytes of strings included. */
static void walk(const uint8_t *t, const atp_fb_table_rule *rule)
{
	for (uint32_t i = 0; i < rule->n_fields; i++) {
		const atp_fb_field_rule *f = &rule->fields[i];
		uint32_t n, len;
		const uint8_t *elems;
		const char *s;
		switch (f->kind) {
		case ATP_FB_SCALAR:
			sink += f->size == 8 ? atp_fb_get_u64(t, f->id) : f->size == 4 ? atp_fb_get_u32(t, f->id)
										: atp_fb_get_u8(t, f->id);
			break;
		case ATP_FB_STRING:
			s = atp_fb_get_string(t, f->id, &len);
			for (uint32_t k = 0; s && k <= len; k++) /* the NUL too */
				sink += (unsigned char)s[k];
			break;
		case ATP_FB_STRINGS:
			elems = atp_fb_get_vector(t, f->id, &n);
			for (uint32_t k = 0; k < n; k++) {
				s = atp_fb_vector_string(elems, k, &len);
				sink += len ? (unsigned char)s[len - 1] : 0;
			}
			break;
		case ATP_FB_STRUCTS:
			elems = atp_fb_get_vector(t, f->id, &n);
			for (uint64_t k = 0; elems && k < (uint64_t)n * f->size; k++)
				sink += elems[k];
			break;
		case ATP_FB_TABLES:
			elems = atp_fb_get_vector(t, f->id, &n);
			for (uint32_t k = 0; k < n; k++)
				walk(atp_fb_vector_table(elems, k), f->sub);
			break;
		default:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size + 1); /* at an odd address: alignment is the verifier's job */
	if (!copy)
		return 0;
	memcpy(copy + 1, data, size);
	int rc;
	const uint8_t *root = atp_v1_verify(copy + 1, size, rules[FUZZ_API], &rc);
	if (root)
		walk(root, rules[FUZZ_API]);
	free(copy);
	return 0;
}
