/*
 * mirror.c — atp-mirror: a marketplace's copy of one sales channel, built
 * from the JetStream stream atp-bridge fills, and checked as it is built.
 *
 *   atp-mirror --channel NAME [--nats URL] [--stream NAME] [--idle-ms N]
 *              [--out POSITIONS.csv] [--skus SKUS.csv]
 *
 * It reads the stream from its first message (an ordered consumer) and
 * keeps a table of (sku, location) -> figure and of sku -> the channel's
 * figure for the SKU: RESYNC empties it, SNAPSHOT and UPDATE/CONFLATED set
 * an entry (a figure of 0 removes it), LIVE says the view is whole. Each
 * message is checked: a place (shard, seq, index) at or before one already
 * taken is a duplicate and skipped; an UPDATE must follow the figure held
 * (previous_atp); a position's version must increase (both counted as
 * errors). Once the view is whole and nothing came for --idle-ms (2000),
 * it writes the table (sorted; sku,location,atp and sku,sku_atp) and a
 * summary line, and exits 0 when no check failed, else 1.
 */
#define _GNU_SOURCE
#include "atp/channel.h"
#include "atp/wire_api.h"

#include <nats/nats.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct entry {
	char *key;          /* "sku\0location" (a SKU's entry: "sku") */
	uint32_t key_len;
	int64_t value;
	uint64_t version;
	bool used;
} entry;

typedef struct table {
	entry *e;
	uint64_t cap, n;
} table;

static entry *find(table *t, const char *key, uint32_t len, bool make)
{
	if (make && (t->n + 1) * 2 > t->cap) {
		table bigger = { calloc(t->cap ? t->cap * 2 : 1024, sizeof(entry)), t->cap ? t->cap * 2 : 1024, 0 };
		if (!bigger.e) {
			fprintf(stderr, "atp-mirror: out of memory\n");
			exit(1);
		}
		for (uint64_t i = 0; i < t->cap; i++)
			if (t->e[i].key) {
				uint64_t j = XXH3_64bits(t->e[i].key, t->e[i].key_len) & (bigger.cap - 1);
				while (bigger.e[j].key)
					j = (j + 1) & (bigger.cap - 1);
				bigger.e[j] = t->e[i];
				bigger.n++;
			}
		free(t->e);
		*t = bigger;
	}
	if (!t->cap)
		return NULL;
	for (uint64_t j = XXH3_64bits(key, len) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
		entry *x = &t->e[j];
		if (!x->key) {
			if (!make)
				return NULL;
			x->key = malloc(len);
			memcpy(x->key, key, len);
			x->key_len = len;
			t->n++;
			return x;
		}
		if (x->key_len == len && memcmp(x->key, key, len) == 0)
			return x;
	}
}

static void clear(table *t)
{
	for (uint64_t i = 0; i < t->cap; i++)
		t->e[i].used = false, t->e[i].value = 0, t->e[i].version = 0;
}

typedef struct mirror {
	table pos, sku;
	uint64_t place_lsn[1024];
	int64_t place_index[1024];
	bool live;
	uint64_t messages, duplicates, chain_errors, version_errors, resyncs, conflated;
} mirror;

static void take(mirror *m, const uint8_t *t)
{
	uint8_t kind = atp_v1_delta_kind(t);
	m->messages++;
	if (kind == ATP_V1_DELTA_RESYNC) {
		clear(&m->pos);
		clear(&m->sku);
		m->live = false;
		m->resyncs++;
		return;
	}
	if (kind == ATP_V1_DELTA_LIVE) {
		m->live = true;
		return;
	}
	if (kind != ATP_V1_DELTA_UPDATE && kind != ATP_V1_DELTA_CONFLATED && kind != ATP_V1_DELTA_SNAPSHOT)
		return;
	uint32_t shard = atp_v1_delta_shard(t) % 1024;
	if (kind != ATP_V1_DELTA_SNAPSHOT) {
		uint64_t lsn = atp_v1_delta_seq(t);
		int64_t index = atp_v1_delta_index(t);
		if (lsn < m->place_lsn[shard] || (lsn == m->place_lsn[shard] && index <= m->place_index[shard])) {
			m->duplicates++;
			return;
		}
		m->place_lsn[shard] = lsn;
		m->place_index[shard] = index;
		m->conflated += kind == ATP_V1_DELTA_CONFLATED;
	}
	atp_str sku = atp_v1_delta_sku(t), loc = atp_v1_delta_location(t);
	char key[ATP_SKU_MAX + ATP_LOC_MAX + 2];
	memcpy(key, sku.ptr, sku.len);
	key[sku.len] = 0;
	memcpy(key + sku.len + 1, loc.ptr, loc.len);
	entry *p = find(&m->pos, key, sku.len + 1 + loc.len, true);
	uint64_t version = atp_v1_delta_version(t);
	if (p->version && version <= p->version)
		m->version_errors++;
	if (kind == ATP_V1_DELTA_UPDATE && atp_v1_delta_previous_atp(t) != p->value)
		m->chain_errors++;
	p->value = atp_v1_delta_atp(t);
	p->version = version;
	p->used = p->value != 0;
	entry *s = find(&m->sku, key, sku.len, true);
	s->value = atp_v1_delta_sku_atp(t);
	s->used = s->value != 0;
}

static int cmp_entries(const void *a, const void *b)
{
	const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
	uint32_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (int)x->key_len - (int)y->key_len;
}

static int write_table(const table *t, const char *path, bool positions)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	entry **v = malloc((t->n + 1) * sizeof(*v));
	uint64_t n = 0;
	for (uint64_t i = 0; i < t->cap; i++)
		if (t->e[i].key && t->e[i].used)
			v[n++] = &t->e[i];
	qsort(v, n, sizeof(*v), cmp_entries);
	fputs(positions ? "sku,location,atp\n" : "sku,sku_atp\n", f);
	for (uint64_t i = 0; i < n; i++) {
		if (positions)
			fprintf(f, "%s,%.*s,%" PRId64 "\n", v[i]->key, (int)(v[i]->key_len - strlen(v[i]->key) - 1),
				v[i]->key + strlen(v[i]->key) + 1, v[i]->value);
		else
			fprintf(f, "%.*s,%" PRId64 "\n", (int)v[i]->key_len, v[i]->key, v[i]->value);
	}
	free(v);
	return fclose(f);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	const char *channel = NULL, *url = "nats://127.0.0.1:4222", *stream = NULL, *out = NULL, *skus = NULL;
	uint64_t idle_ms = 2000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--channel") == 0)
			channel = argv[i + 1];
		else if (strcmp(argv[i], "--nats") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--stream") == 0)
			stream = argv[i + 1];
		else if (strcmp(argv[i], "--idle-ms") == 0)
			idle_ms = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else if (strcmp(argv[i], "--skus") == 0)
			skus = argv[i + 1];
		else
			channel = NULL, i = argc;
	}
	if (!channel || argc % 2 == 0) {
		fprintf(stderr, "usage: atp-mirror --channel NAME [--nats URL] [--stream NAME] [--idle-ms N]\n"
				"                  [--out POSITIONS.csv] [--skus SKUS.csv]\n");
		return 2;
	}
	char stream_name[64], subject[96];
	snprintf(stream_name, sizeof(stream_name), "%s", stream ? stream : "");
	if (!stream)
		snprintf(stream_name, sizeof(stream_name), "ATP_%s", channel);
	snprintf(subject, sizeof(subject), "atp.%s.>", channel);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream_name;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverAll;
	jsErrCode ec = 0;
	natsStatus s = natsConnection_ConnectTo(&nc, url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_SubscribeSync(&sub, js, subject, NULL, &so, &ec);
	if (s != NATS_OK) {
		fprintf(stderr, "atp-mirror: %s: %s (%d)\n", url, natsStatus_GetText(s), (int)ec);
		return 1;
	}
	static mirror m;
	uint64_t last = mono_ms();
	for (;;) {
		natsMsg *msg = NULL;
		s = natsSubscription_NextMsg(&msg, sub, 200);
		if (s == NATS_TIMEOUT) {
			if (m.live && mono_ms() - last >= idle_ms)
				break;
			continue;
		}
		if (s != NATS_OK) {
			fprintf(stderr, "atp-mirror: %s\n", natsStatus_GetText(s));
			return 1;
		}
		last = mono_ms();
		int rc;
		static uint8_t buf[ATP_V1_MESSAGE_MAX] __attribute__((aligned(8)));
		int len = natsMsg_GetDataLength(msg);
		memcpy(buf, natsMsg_GetData(msg), (size_t)len);
		const uint8_t *t = atp_v1_verify(buf, (size_t)len, &atp_v1_delta_rule, &rc);
		if (t)
			take(&m, t);
		else
			m.version_errors++;
		natsMsg_Destroy(msg);
	}
	uint64_t positions = 0;
	for (uint64_t i = 0; i < m.pos.cap; i++)
		positions += m.pos.e[i].key && m.pos.e[i].used;
	fprintf(stderr,
		"atp-mirror: %s: %" PRIu64 " messages, %" PRIu64 " positions, %" PRIu64 " resyncs, %" PRIu64
		" conflated, %" PRIu64 " duplicates skipped, %" PRIu64 " chain errors, %" PRIu64 " version errors\n",
		channel, m.messages, positions, m.resyncs, m.conflated, m.duplicates, m.chain_errors, m.version_errors);
	if ((out && write_table(&m.pos, out, true)) || (skus && write_table(&m.sku, skus, false))) {
		fprintf(stderr, "atp-mirror: cannot write the table\n");
		return 1;
	}
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return m.chain_errors || m.version_errors ? 1 : 0;
}
