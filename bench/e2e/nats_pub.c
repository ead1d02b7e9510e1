/*
 * nats_pub.c — bench_nats_pub: a bare libnats JetStream publisher, the
 * yardstick for atp-bridge (bench/e2e/channels.sh): N messages of SIZE
 * bytes to SUBJECT (a stream must take it), asynchronously, each with a
 * Nats-Msg-Id as the bridge sends, at most WINDOW awaiting their ack;
 * prints messages/s from the first publish to the last ack.
 * Usage: bench_nats_pub URL SUBJECT N SIZE [WINDOW]
 */
#include <nats/nats.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bench_nats_pub URL SUBJECT N SIZE [WINDOW]\n");
		return 2;
	}
	const char *url = argv[1], *subject = argv[2];
	long n = atol(argv[3]), size = atol(argv[4]), window = argc > 5 ? atol(argv[5]) : 8192;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions o;
	jsOptions_Init(&o);
	o.PublishAsync.MaxPending = window;
	natsStatus s = natsConnection_ConnectTo(&nc, url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, &o);
	if (s != NATS_OK) {
		fprintf(stderr, "bench_nats_pub: %s\n", natsStatus_GetText(s));
		return 1;
	}
	char *payload = calloc(1, (size_t)size);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "b.%ld", i);
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MsgId = id;
		if ((s = js_PublishAsync(js, subject, payload, (int)size, &po)) != NATS_OK) {
			fprintf(stderr, "bench_nats_pub: publish %ld: %s\n", i, natsStatus_GetText(s));
			return 1;
		}
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	s = js_PublishAsyncComplete(js, &po);
	double t = now_s() - t0;
	printf("bare libnats: %ld messages of %ld bytes in %.3f s: %.0f messages/s%s\n", n, size, t, (double)n / t,
	       s == NATS_OK ? "" : " (not all acknowledged)");
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	free(payload);
	return s == NATS_OK ? 0 : 1;
}
