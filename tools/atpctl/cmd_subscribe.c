/*
 * cmd_subscribe.c — atpctl subscribe: a sales channel's stream as CSV.
 *
 *   kind,shard,seq,index,sku,location,atp,previous_atp,sku_atp,version
 *
 * one line per message (RESYNC, LIVE and HEARTBEAT lines have no
 * position). --token-file keeps the resume token: read at the start,
 * written (atomically, after stdout is flushed) at most every 200 ms and
 * at the end, so a restarted subscribe goes on where the file says; the
 * lines printed after the last write may come again (their shard, seq and
 * index tell them apart). When atpd goes away it resubscribes with backoff.
 * Exit status: 0 when --count or --seconds is reached, 1 when the stream
 * ends for good (an unknown or removed channel, a bad token), 2 usage.
 */
#define _GNU_SOURCE
#include "atpctl.h"
#include "channel_client.h"

#include "atp/wire_api.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kinds[] = { "UPDATE", "SNAPSHOT", "RESYNC", "LIVE", "HEARTBEAT", "CONFLATED" };

typedef struct sub_state {
	uint64_t printed, data;  /* lines; of them, with a position */
	bool heartbeats;
} sub_state;

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void print(void *ctx, const atp_channel_msg *m)
{
	sub_state *s = ctx;
	if (m->kind == ATP_V1_DELTA_HEARTBEAT && !s->heartbeats)
		return;
	const char *kind = m->kind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[m->kind] : "?";
	printf("%s,%" PRIu32 ",%" PRIu64 ",%" PRIu32 ",%.*s,%.*s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 "\n",
	       kind, m->shard, m->seq, m->index, (int)m->sku.len, m->sku.ptr ? m->sku.ptr : "", (int)m->location.len,
	       m->location.ptr ? m->location.ptr : "", m->atp, m->previous_atp, m->sku_atp, m->version);
	s->printed++;
	s->data += m->kind == ATP_V1_DELTA_UPDATE || m->kind == ATP_V1_DELTA_SNAPSHOT || m->kind == ATP_V1_DELTA_CONFLATED;
}

static int read_token(const char *path, uint8_t *tok, uint32_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char hex[2 * ATP_V1_TOKEN_MAX + 2];
	size_t n = fread(hex, 1, sizeof(hex) - 1, f);
	fclose(f);
	while (n && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
		n--;
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned b;
		if (sscanf(hex + i, "%2x", &b) != 1)
			return -1;
		tok[(*len)++] = (uint8_t)b;
	}
	return 0;
}

static int write_token(const char *path, const uint8_t *tok, uint32_t len)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	for (uint32_t i = 0; i < len; i++)
		fprintf(f, "%02x", tok[i]);
	fputc('\n', f);
	if (fflush(f) || fclose(f) || rename(tmp, path))
		return -1;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: atpctl subscribe [--grpc HOST:PORT] CHANNEL [--from HEX | --token-file FILE]\n"
			"       [--count N] [--seconds S] [--heartbeats]\n");
	return 2;
}

int cmd_subscribe(int argc, char **argv)
{
	const char *target = getenv("ATP_GRPC") ? getenv("ATP_GRPC") : "127.0.0.1:7401", *channel = NULL,
		   *from = NULL, *token_file = NULL;
	uint64_t count = 0, seconds = 0;
	sub_state st = { 0 };
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--grpc") == 0 && v)
			target = argv[++i];
		else if (strcmp(argv[i], "--from") == 0 && v)
			from = argv[++i];
		else if (strcmp(argv[i], "--token-file") == 0 && v)
			token_file = argv[++i];
		else if (strcmp(argv[i], "--count") == 0 && v)
			count = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && v)
			seconds = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--heartbeats") == 0)
			st.heartbeats = true;
		else if (argv[i][0] != '-' && !channel)
			channel = argv[i];
		else
			return usage();
	}
	if (!channel || (from && token_file))
		return usage();
	uint8_t tok[ATP_V1_TOKEN_MAX];
	uint32_t len = 0;
	if (from) {
		for (size_t i = 0; from[i] && from[i + 1] && len < sizeof(tok); i += 2) {
			unsigned b;
			if (sscanf(from + i, "%2x", &b) != 1)
				return usage();
			tok[len++] = (uint8_t)b;
		}
	} else if (token_file && read_token(token_file, tok, &len) < 0) {
		fprintf(stderr, "atpctl: %s: not a token (hex)\n", token_file);
		return 1;
	}
	atp_channel_client *c = atp_channel_client_new(target, channel, tok, len, print, &st);
	if (!c)
		return 1;
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_IGN);
	puts("kind,shard,seq,index,sku,location,atp,previous_atp,sku_atp,version");
	uint64_t until = seconds ? mono_ms() + seconds * 1000 : UINT64_MAX, saved = 0;
	int rc = 0;
	while (!stopping && mono_ms() < until && (!count || st.data < count)) {
		if (atp_channel_client_pump(c, 100) == 1) {
			const char *why;
			fprintf(stderr, "atpctl: subscribe %s: %s\n", channel, (atp_channel_client_status(c, &why), why));
			rc = 1;
			break;
		}
		if (token_file && mono_ms() - saved >= 200) {
			fflush(stdout);
			const uint8_t *t = atp_channel_client_token(c, &len);
			if (len && write_token(token_file, t, len) < 0)
				fprintf(stderr, "atpctl: %s: %s\n", token_file, strerror(errno));
			saved = mono_ms();
		}
	}
	fflush(stdout);
	if (token_file) {
		const uint8_t *t = atp_channel_client_token(c, &len);
		if (len && write_token(token_file, t, len) < 0)
			fprintf(stderr, "atpctl: %s: %s\n", token_file, strerror(errno));
	}
	fprintf(stderr, "atpctl: %" PRIu64 " messages of %s (%" PRIu64 " with a position), %u subscriptions\n", st.printed,
		channel, st.data, atp_channel_client_connects(c));
	atp_channel_client_free(c);
	return rc;
}
