/*
 * grpc_history.c — Admin/History: atpctl history's CSV computed by atpd
 * from its own data directory (atp/history.h), so that an operator needs
 * no shell on the box.
 *
 * The replay reads WAL segments and snapshots and may take seconds, so it
 * runs in a thread of its own, never in the loop: one History at a time
 * (another gets RESOURCE_EXHAUSTED), its rows written to memory, and the
 * loop answers the call once the thread is done (after_turn looks, at
 * least every loop turn). The thread touches only its job and the files;
 * a call gone meanwhile (deadline, cancel) is simply not answered. The
 * reply is cut at a row's end when it would pass the message limit.
 */
#define _GNU_SOURCE /* memrchr, open_memstream */
#include "grpc_internal.h"

#include "atp/history.h"
#include "atp/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct grpc_history_job {
	pthread_t thread;
	atomic_bool done;
	uint32_t call, gen;
	atp_history_query q;
	char sku[ATP_SKU_MAX + 1], location[ATP_LOC_MAX + 1];
	char *csv;
	size_t len;
	int rc;
	char err[1024];
};

static void *run(void *arg)
{
	grpc_history_job *j = arg;
	FILE *out = open_memstream(&j->csv, &j->len);
	atp_history_info info;
	if (!out) {
		j->rc = -1;
		snprintf(j->err, sizeof(j->err), "no memory");
	} else {
		j->rc = atp_history_write(&j->q, out, &info, j->err, sizeof(j->err));
		fclose(out); /* csv and len final */
	}
	atomic_store(&j->done, true);
	return NULL;
}

void grpc_method_history(atp_grpc_server *g, call *c)
{
	const uint8_t *r = grpc_method_verify(g, c, &atp_v1_history_request_rule, "atp.v1.HistoryRequest");
	if (!r)
		return;
	atp_str sku = atp_v1_history_request_sku(r), loc = atp_v1_history_request_location(r);
	if (!atp_str_valid(sku, ATP_SKU_MAX) || (loc.len && !atp_str_valid(loc, ATP_LOC_MAX))) {
		grpc_call_respond(g, c, G_INVALID_ARGUMENT, "%s: missing, too long or with control bytes",
				  atp_str_valid(sku, ATP_SKU_MAX) ? "location" : "sku");
		return;
	}
	if (!g->cfg.data_dir) {
		grpc_call_respond(g, c, G_FAILED_PRECONDITION, "this server knows no data directory");
		return;
	}
	if (g->history) {
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "one History at a time: another is running");
		return;
	}
	grpc_history_job *j = calloc(1, sizeof(*j));
	if (!j) {
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memcpy(j->sku, sku.ptr, sku.len);
	if (loc.len)
		memcpy(j->location, loc.ptr, loc.len);
	j->q = (atp_history_query){ .dir = g->cfg.data_dir, .shards = atp_engine_shards(g->e), .core = g->cfg.core,
				    .sku = atp_str_of(j->sku, sku.len), .location = atp_str_of(j->location, loc.len),
				    .since_ms = atp_v1_history_request_since_ms(r) };
	j->call = grpc_call_index(g, c);
	j->gen = c->gen;
	if (pthread_create(&j->thread, NULL, run, j) != 0) {
		free(j);
		grpc_call_respond(g, c, G_RESOURCE_EXHAUSTED, "no thread for it");
		return;
	}
	g->history = j;
	c->state = CALL_WAIT;
	g->waiting++;
}

/* Answer the History call once its thread is done (or, with wait, after waiting for it: shutdown). */
void grpc_history_poll(atp_grpc_server *g, bool wait)
{
	grpc_history_job *j = g->history;
	if (!j || (!wait && !atomic_load(&j->done)))
		return;
	pthread_join(j->thread, NULL);
	g->history = NULL;
	call *c = &g->calls[j->call];
	if (c->gen == j->gen && c->state == CALL_WAIT && c->method == M_HISTORY) {
		if (j->rc < 0) {
			grpc_call_respond(g, c, G_FAILED_PRECONDITION, "%s", j->err);
		} else {
			size_t room = ATP_V1_MESSAGE_MAX - 1024, len = j->len;
			bool cut = len > room;
			while (cut && len > room) {
				const char *nl = memrchr(j->csv, '\n', len - 1);
				len = nl ? (size_t)(nl - j->csv) + 1 : 0;
			}
			atp_fb_builder b;
			atp_fb_builder_init(&b, g->scratch, SCRATCH_BYTES);
			grpc_method_reply(g, c, &b, atp_v1_build_history_reply(&b, (const uint8_t *)j->csv, (uint32_t)len, cut));
		}
	}
	free(j->csv);
	free(j);
}
