/* main.c — atpctl: the command-line tool of atpd. */
#include "atpctl.h"
#include "atp/wire_api.h"
#include "tls_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
	fputs("usage: atpctl COMMAND [OPTIONS]\n"
	      "  simday [--out FILE] [--seed N] [--skus N] [--locations N] [--order-lines N]\n"
	      "         [--peak-factor N] [--peak-minutes N] [--peak-start-min N] [--prefix P] [--one-source]\n"
	      "      write a simulated warehouse day as the event CSV (stdout by default); --prefix P\n"
	      "      starts every source and SKU name with P, --one-source sends everything as Pwms\n"
	      "  import FILE [--positions OUT.csv] [--max-positions N] [--max-lines N] [--frozen-clock]\n"
	      "         [--data DIR [--shards N] [--workers N] [--segment-mb N] [--snapshot-mb N] [--progress]\n"
	      "         [--sync-every N]]\n"
	      "      replay an event file (CSV, or binary from convert) and print what happened:\n"
	      "      a CSV is validated whole first (every bad row as FILE:LINE: reason, nothing applied);\n"
	      "      without --data through the in-memory core, with it through the durable engine\n"
	      "      (WAL, group commit, snapshots) into DIR, resuming after what DIR already holds;\n"
	      "      --sync-every N waits until each N events are durable (a group commit per N at most);\n"
	      "      sizes also as --segment-kb and --snapshot-kb; --progress prints what is durable\n"
	      "  convert IN.csv OUT.evb\n"
	      "      an event CSV into the binary event file (EventBatch frames of 256 events)\n"
	      "  send --tcp HOST:PORT FILE [--batch N] [--window-kb N] [--timeout S] [--progress] [--concurrent]\n"
	      "      stream an event file to a running atpd, one connection per source; reconnects and\n"
	      "      resumes after any loss; exits 0 once every event is acknowledged as durable;\n"
	      "      in the file's order across sources (a run waits for the one before it: import's table),\n"
	      "      or with --concurrent every source at once, in no order across sources (load);\n"
	      "      --batch events per frame (256), --window-kb bytes awaiting Acks per connection (1024)\n"
	      "  send --udp HOST:PORT FILE [--batch N] [--window FRAMES] [--drop-percent P] [--reorder-percent P]\n"
	      "      the same over UDP (atpd's udp_listen): one datagram per frame (--batch 8), a window of\n"
	      "      frames in flight (32), resent after 50 ms unacknowledged or from next_seq after a gap;\n"
	      "      --drop-percent/--reorder-percent lose or reorder datagrams on purpose (tests)\n"
	      "  atp [--grpc HOST:PORT] SKU [LOCATION...]\n"
	      "      ATP of a SKU (every location when none is named) and its network ATP, over gRPC\n"
	      "  reserve [--grpc HOST:PORT] [--ttl-ms N] [--partial] [--policy per-line|all-or-nothing|partial]\n"
	      "          [--need-by YYYY-MM-DD] ID SKU LOCATION QTY [SKU LOCATION QTY]...\n"
	      "      reserve, durably and idempotently (the same ID again answers the first result); with\n"
	      "      --need-by a line short of stock may be promised against inbound supply due by then\n"
	      "  profile [--grpc HOST:PORT] [--horizon DAYS] SKU [LOCATION...]\n"
	      "      what can be promised per day from today (30 days): on hand, plus inbound supply due\n"
	      "      by then that no promise holds (GetAtpProfile)\n"
	      "  release [--grpc HOST:PORT] ID\n"
	      "      release every open line of reservation ID\n"
	      "  export [--grpc HOST:PORT] > positions.csv\n"
	      "      every position as the positions CSV, streamed by the Scan call\n"
	      "  reconcile ONHAND.csv [--grpc HOST:PORT] [--top N] [--progress]\n"
	      "         [--apply [--tcp HOST:PORT] [--source NAME] [--zero-missing]]\n"
	      "      a WMS stock file (columns sku,location,on_hand) against atpd's positions: a variance\n"
	      "      report; --apply sends a COUNT per differing position (and per position only in the\n"
	      "      file; --zero-missing: 0 for those only in atpd) as source NAME (reconcile)\n"
	      "  grpc-load [--grpc HOST:PORT] [--method getatp|reserve|profile] [--connections N] [--concurrency K]\n"
	      "         [--seconds S] [--rate CALLS_PER_S] [--skus N] [--lines L] [--prefix P] [--location LOC]\n"
	      "      load the gRPC API (SKUs PSKU-000000 ...) and print calls/s and latency quantiles;\n"
	      "      profile: GetAtpProfile over 30 days\n"
	      "  subscribe [--grpc HOST:PORT] CHANNEL [--from HEX | --token-file FILE] [--count N] [--seconds S]\n"
	      "         [--heartbeats]\n"
	      "      a sales channel's stream as CSV lines (kind,shard,seq,index,sku,location,atp,\n"
	      "      previous_atp,sku_atp,version); --token-file resumes from and keeps the token\n"
	      "  status [--metrics HOST:PORT] [--json] [--interval-ms N]\n"
	      "      a running atpd on one screen, from two scrapes of its metrics N ms apart (1000):\n"
	      "      uptime, events/s, fsync p50/p99, snapshot age, capacity, dead letters, connections, sources,\n"
	      "      channels\n"
	      "  snapshot [--grpc HOST:PORT] [REASON]\n"
	      "      a running atpd writes a snapshot of every shard now (Admin/Snapshot; REASON to its log)\n"
	      "  verify DIR\n"
	      "      check a data directory offline: every snapshot's checksum, every WAL record's CRC,\n"
	      "      no hole between them; a report per shard, exit 0 (sound), 1 (a problem) or 2\n"
	      "  wal DIR [--from LSN] [--sku SKU] [--shard N]\n"
	      "      the WAL records of a data directory as CSV lines (shard,lsn,kind,now,event fields)\n"
	      "  replay DIR --until TIME|lsn:N[,N...] [--positions OUT.csv] [--max-positions N] [--max-lines N]\n"
	      "      the positions as of any moment DIR retains (wal_retention_hours), offline, from its\n"
	      "      snapshots and WAL; TIME as 2026-12-06T14:02:00Z (UTC) or ms; an LSN per shard or one\n"
	      "  history [DIR] SKU [LOCATION] [--since TIME] [--max-positions N] [--max-lines N]\n"
	      "      every event that touched the SKU's positions (refused ones too) and every lapse, with\n"
	      "      the position after it, as CSV, offline from DIR, or without DIR from a running atpd\n"
	      "  dlq list [DIR] [--grpc HOST:PORT] [--source NAME] [--reason CODE] [--since TIME] | dlq show [DIR] ID\n"
	      "      the dead-letter store (on_invalid = deadletter): one CSV line per entry, or one entry\n"
	      "      whole with its event as an event CSV row to correct; of DIR offline, else of atpd\n"
	      "  dlq redrive [--grpc HOST:PORT] ID... [--corrected FILE.csv]\n"
	      "      apply entries' events (or the CSV's rows in their place) once, as source @dlq\n"
	      "  dlq purge [--grpc HOST:PORT] (ID... | --before TIME) [--redriven]\n"
	      "      drop entries from a running atpd's dead-letter store\n"
	      "  (--grpc defaults to $ATP_GRPC, else 127.0.0.1:7401; --tcp to $ATP_TCP, else 127.0.0.1:7400;\n"
	      "   --metrics to $ATP_METRICS, else 127.0.0.1:9464)\n",
	      f);
	fputs(tls_client_usage, f);
}

uint8_t opt_policy(const char *value)
{
	if (strcmp(value, "per-line") == 0)
		return ATP_V1_PER_LINE;
	if (strcmp(value, "all-or-nothing") == 0)
		return ATP_V1_ALL_OR_NOTHING;
	if (strcmp(value, "partial") == 0)
		return ATP_V1_PARTIAL;
	fprintf(stderr, "atpctl: --policy %s: per-line, all-or-nothing or partial\n", value);
	exit(2);
}

uint64_t opt_u64(const char *name, const char *value, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = value ? strtoull(value, &end, 10) : 0;
	if (!value || errno || *end || value[0] == '-' || end == value || v < min || v > max) {
		fprintf(stderr, "atpctl: %s needs a number in [%llu, %llu], got '%s'\n", name,
			(unsigned long long)min, (unsigned long long)max, value ? value : "");
		exit(2);
	}
	return v;
}

double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	tls_client_args(&argc, argv);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "simday") == 0)
		return cmd_simday(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(argv[1], "convert") == 0)
		return cmd_convert(argc - 1, argv + 1);
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "atp") == 0)
		return cmd_atp(argc - 1, argv + 1);
	if (strcmp(argv[1], "reserve") == 0)
		return cmd_reserve(argc - 1, argv + 1);
	if (strcmp(argv[1], "profile") == 0)
		return cmd_profile(argc - 1, argv + 1);
	if (strcmp(argv[1], "release") == 0)
		return cmd_release(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "grpc-load") == 0)
		return cmd_grpc_load(argc - 1, argv + 1);
	if (strcmp(argv[1], "subscribe") == 0)
		return cmd_subscribe(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "snapshot") == 0)
		return cmd_snapshot(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "wal") == 0)
		return cmd_wal(argc - 1, argv + 1);
	if (strcmp(argv[1], "reconcile") == 0)
		return cmd_reconcile(argc - 1, argv + 1);
	if (strcmp(argv[1], "replay") == 0)
		return cmd_replay(argc - 1, argv + 1);
	if (strcmp(argv[1], "history") == 0)
		return cmd_history(argc - 1, argv + 1);
	if (strcmp(argv[1], "dlq") == 0)
		return cmd_dlq(argc - 1, argv + 1);
	fprintf(stderr, "atpctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
