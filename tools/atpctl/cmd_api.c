/*
 * cmd_api.c — atpctl atp / reserve / release / export: the gRPC API of a
 * running atpd (atp/grpc_server.h), through tools/lib/grpc_client.
 * Exit status: 0 OK, 1 a gRPC error (printed as CODE: message), 2 usage.
 */
#include "atpctl.h"
#include "csv_events.h"
#include "grpc_client.h"

#include "atp/inbound.h"
#include "atp/limits.h"
#include "atp/wire_api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_GRPC "127.0.0.1:7401"
#define TIMEOUT_MS 10000

static uint8_t mem[1u << 20] __attribute__((aligned(8)));

const char *grpc_target(int *argc, char **argv)
{
	const char *t = getenv("ATP_GRPC") ? getenv("ATP_GRPC") : DEFAULT_GRPC;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--grpc") == 0 && i + 1 < *argc) {
			t = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof(char *));
			*argc -= 2;
			break;
		}
	}
	return t;
}

static atp_grpc_client *connect_to(const char *target)
{
	char err[256];
	atp_grpc_client *c = atp_grpc_client_connect(target, err, sizeof(err));
	if (!c)
		fprintf(stderr, "atpctl: %s\n", err);
	return c;
}

uint8_t *grpc_unary(const char *target, const char *path, const uint8_t *msg, size_t len,
		     const atp_fb_table_rule *rule, const uint8_t **root)
{
	atp_grpc_client *c = connect_to(target);
	if (!c)
		return NULL;
	uint8_t *reply;
	uint32_t reply_len;
	char message[256];
	int st = atp_grpc_client_unary(c, path, msg, (uint32_t)len, TIMEOUT_MS, &reply, &reply_len, message,
				       sizeof(message));
	atp_grpc_client_close(c);
	if (st != 0) {
		fprintf(stderr, "atpctl: %s: %s\n", atp_grpc_status_name(st), message);
		free(reply);
		return NULL;
	}
	int rc;
	if (!reply || !(*root = atp_v1_verify(reply, reply_len, rule, &rc))) {
		fprintf(stderr, "atpctl: the reply is not valid: %s\n", reply ? atp_fb_error_message(rc) : "none");
		free(reply);
		return NULL;
	}
	return reply;
}

static void print_position(const uint8_t *p)
{
	atp_str sku = atp_v1_position_atp_sku(p), loc = atp_v1_position_atp_location(p);
	printf("%.*s,%.*s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "\n", (int)sku.len, sku.ptr,
	       (int)loc.len, loc.ptr, atp_v1_position_atp_on_hand(p), atp_v1_position_atp_held(p),
	       atp_v1_position_atp_reserved(p), atp_v1_position_atp_safety_stock(p), atp_v1_position_atp_atp(p));
}

static const char *header = "sku,location,on_hand,held,reserved,safety_stock,atp\n";

int cmd_atp(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	if (argc < 2 || argc - 2 > (int)ATP_V1_LIST_MAX) {
		fprintf(stderr, "usage: atpctl atp [--grpc HOST:PORT] SKU [LOCATION...]\n");
		return 2;
	}
	atp_str locs[ATP_V1_LIST_MAX];
	for (int i = 2; i < argc; i++)
		locs[i - 2] = atp_str_of(argv[i], strlen(argv[i]));
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *q = atp_fb_finish(
		&b, atp_v1_build_atp_query(&b, atp_str_of(argv[1], strlen(argv[1])), locs, (uint32_t)(argc - 2)), NULL, &len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Atp/GetAtp", q, len, &atp_v1_atp_reply_rule, &r);
	if (!reply)
		return 1;
	fputs(header, stdout);
	for (uint32_t i = 0; i < atp_v1_atp_reply_positions_count(r); i++)
		print_position(atp_v1_atp_reply_positions(r, i));
	printf("network_atp,%" PRId64 "\n", atp_v1_atp_reply_network_atp(r));
	free(reply);
	return 0;
}

/* YYYY-MM-DD (or YYYYMMDD) as YYYYMMDD; exits 2 when it is not a date. */
static uint32_t opt_date(const char *name, const char *s)
{
	unsigned y, m, d;
	char tail;
	uint32_t ymd = 0;
	if (sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) == 3)
		ymd = y * 10000 + m * 100 + d;
	else if (strlen(s) == 8 && sscanf(s, "%8u%c", &ymd, &tail) != 1)
		ymd = 0;
	if (!atp_day_of_ymd(ymd)) {
		fprintf(stderr, "atpctl: %s %s: expected a date, YYYY-MM-DD\n", name, s);
		exit(2);
	}
	return ymd;
}

static void print_ymd(uint32_t ymd)
{
	char date[ATP_CSV_DATE_MAX];
	fputs(atp_csv_date(atp_day_of_ymd(ymd), date), stdout);
}

int cmd_profile(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	uint32_t horizon = 0;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--horizon") == 0 && i + 1 < argc)
			horizon = (uint32_t)opt_u64("--horizon", argv[++i], 1, ATP_V1_HORIZON_MAX);
		else
			break;
	}
	if (i >= argc || argc - i - 1 > (int)ATP_V1_LIST_MAX) {
		fprintf(stderr, "usage: atpctl profile [--grpc HOST:PORT] [--horizon DAYS] SKU [LOCATION...]\n");
		return 2;
	}
	atp_str locs[ATP_V1_LIST_MAX];
	for (int k = i + 1; k < argc; k++)
		locs[k - i - 1] = atp_str_of(argv[k], strlen(argv[k]));
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_atp_profile_query(&b, atp_str_of(argv[i], strlen(argv[i])), locs,
									(uint32_t)(argc - i - 1), horizon),
					 NULL, &len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Atp/GetAtpProfile", q, len, &atp_v1_atp_profile_rule, &r);
	if (!reply)
		return 1;
	printf("date,atp,inbound,available\n");
	for (uint32_t k = 0; k < atp_v1_atp_profile_days_count(r); k++) {
		const uint8_t *d = atp_v1_atp_profile_days(r, k);
		print_ymd(atp_v1_profile_day_date(d));
		printf(",%" PRId64 ",%" PRId64 ",%" PRId64 "\n", atp_v1_profile_day_atp(d), atp_v1_profile_day_inbound(d),
		       atp_v1_profile_day_available(d));
	}
	free(reply);
	return 0;
}

int cmd_reserve(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	uint64_t ttl = 0;
	uint32_t need_by = 0;
	uint8_t policy = ATP_V1_PER_LINE;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--ttl-ms") == 0 && i + 1 < argc)
			ttl = opt_u64("--ttl-ms", argv[++i], 0, UINT64_MAX);
		else if (strcmp(argv[i], "--partial") == 0)
			policy = ATP_V1_PARTIAL;
		else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
			policy = opt_policy(argv[++i]);
		else if (strcmp(argv[i], "--need-by") == 0 && i + 1 < argc)
			need_by = opt_date("--need-by", argv[++i]);
		else
			break;
	}
	int rest = argc - i;
	if (rest < 4 || (rest - 1) % 3 != 0 || (rest - 1) / 3 > (int)ATP_V1_LIST_MAX) {
		fprintf(stderr, "usage: atpctl reserve [--grpc HOST:PORT] [--ttl-ms N] [--partial] [--need-by YYYY-MM-DD]\n"
				"         [--policy per-line|all-or-nothing|partial] ID SKU LOCATION QTY [SKU LOCATION QTY]...\n");
		return 2;
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	static atp_fb_ref lines[ATP_V1_LIST_MAX];
	uint32_t n = 0;
	for (int k = i + 1; k < argc; k += 3)
		lines[n++] = atp_v1_build_reserve_line_by(&b, atp_str_of(argv[k], strlen(argv[k])),
							  atp_str_of(argv[k + 1], strlen(argv[k + 1])),
							  (int64_t)opt_u64("QTY", argv[k + 2], 1, ATP_QTY_MAX), need_by);
	size_t len;
	const uint8_t *q = atp_fb_finish(
		&b, atp_v1_build_reserve_request_policy(&b, atp_str_of(argv[i], strlen(argv[i])), lines, n, ttl, policy), NULL,
		&len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Atp/Reserve", q, len, &atp_v1_reserve_reply_rule, &r);
	if (!reply)
		return 1;
	printf("sku,location,requested,confirmed,promised_date,withdrawn\n");
	for (uint32_t k = 0; k < atp_v1_reserve_reply_lines_count(r); k++) {
		const uint8_t *l = atp_v1_reserve_reply_lines(r, k);
		atp_str sku = atp_v1_line_result_sku(l), loc = atp_v1_line_result_location(l);
		printf("%.*s,%.*s,%" PRId64 ",%" PRId64 ",", (int)sku.len, sku.ptr, (int)loc.len, loc.ptr,
		       atp_v1_line_result_requested(l), atp_v1_line_result_confirmed(l));
		print_ymd(atp_v1_line_result_promised_date(l));
		printf(",%s\n", atp_v1_line_result_withdrawn(l) ? "true" : "false");
	}
	printf("duplicate,%s\n", atp_v1_reserve_reply_duplicate(r) ? "true" : "false");
	free(reply);
	return 0;
}

int cmd_release(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	if (argc != 2) {
		fprintf(stderr, "usage: atpctl release [--grpc HOST:PORT] ID\n");
		return 2;
	}
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_release_request(&b, atp_str_of(argv[1], strlen(argv[1]))),
					 NULL, &len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Atp/Release", q, len, &atp_v1_release_reply_rule, &r);
	if (!reply)
		return 1;
	printf("released,%" PRId64 "\nfound,%s\n", atp_v1_release_reply_released(r),
	       atp_v1_release_reply_found(r) ? "true" : "false");
	free(reply);
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: atpctl snapshot [--grpc HOST:PORT] [REASON]\n");
		return 2;
	}
	const char *why = argc == 2 ? argv[1] : "atpctl snapshot";
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_snapshot_request(&b, atp_str_of(why, strlen(why))), NULL, &len);
	const uint8_t *r;
	uint8_t *reply = grpc_unary(target, "/atp.v1.Admin/Snapshot", q, len, &atp_v1_snapshot_reply_rule, &r);
	if (!reply)
		return 1;
	printf("snapshot written: %u shards, durable in %" PRIu64 " ms\n", atp_v1_snapshot_reply_shards(r),
	       atp_v1_snapshot_reply_millis(r));
	free(reply);
	return 0;
}

typedef struct scan_state {
	void (*fn)(void *ctx, const uint8_t *position);
	void *ctx;
	bool bad;
	int status;
	bool done;
	char message[256];
} scan_state;

static void scan_msg(void *ctx, const uint8_t *msg, uint32_t len)
{
	scan_state *x = ctx;
	int rc;
	const uint8_t *p = atp_v1_verify(msg, len, &atp_v1_position_atp_rule, &rc);
	if (!p)
		x->bad = true;
	else
		x->fn(x->ctx, p);
}

static void scan_done(void *ctx, int status, const char *message)
{
	scan_state *x = ctx;
	x->status = status;
	x->done = true;
	snprintf(x->message, sizeof(x->message), "%s", message);
}

int grpc_scan_all(const char *target, void (*fn)(void *ctx, const uint8_t *position), void *ctx)
{
	atp_fb_builder b;
	atp_fb_builder_init(&b, mem, sizeof(mem));
	size_t len;
	const uint8_t *q = atp_fb_finish(&b, atp_v1_build_scan_request(&b, (atp_str){ 0 }, 0), NULL, &len);
	atp_grpc_client *c = connect_to(target);
	if (!c)
		return -1;
	scan_state x = { .fn = fn, .ctx = ctx, .status = -1 };
	if (atp_grpc_client_start(c, "/atp.v1.Atp/Scan", q, (uint32_t)len, 0, scan_msg, scan_done, &x) < 0) {
		atp_grpc_client_close(c);
		return -1;
	}
	while (!x.done && atp_grpc_client_pump(c, 1000) >= 0)
		;
	atp_grpc_client_close(c);
	if (x.status != 0 || x.bad) {
		fprintf(stderr, "atpctl: %s: %s\n", atp_grpc_status_name(x.status),
			x.bad ? "a streamed position is not valid" : x.message);
		return -1;
	}
	return 0;
}

static void export_one(void *ctx, const uint8_t *p)
{
	print_position(p);
	++*(uint64_t *)ctx;
}

int cmd_export(int argc, char **argv)
{
	const char *target = grpc_target(&argc, argv);
	if (argc != 1) {
		fprintf(stderr, "usage: atpctl export [--grpc HOST:PORT] > positions.csv\n");
		return 2;
	}
	uint64_t rows = 0;
	fputs(header, stdout);
	if (grpc_scan_all(target, export_one, &rows) < 0)
		return 1;
	fprintf(stderr, "atpctl: exported %" PRIu64 " positions\n", rows);
	return 0;
}
