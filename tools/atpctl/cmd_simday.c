/* cmd_simday.c — atpctl simday: write a simulated warehouse day. */
#include "atpctl.h"
#include "simday.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int cmd_simday(int argc, char **argv)
{
	atp_simday_params p = atp_simday_default();
	const char *path = NULL;

	for (int i = 1; i < argc; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--one-source") == 0) {
			p.one_source = true;
			i--;
		} else if (strcmp(o, "--prefix") == 0 && v && strlen(v) < sizeof(p.prefix))
			snprintf(p.prefix, sizeof(p.prefix), "%s", v);
		else if (strcmp(o, "--out") == 0 && v)
			path = v;
		else if (strcmp(o, "--seed") == 0)
			p.seed = opt_u64(o, v, 0, UINT64_MAX);
		else if (strcmp(o, "--skus") == 0)
			p.skus = (uint32_t)opt_u64(o, v, 1, 1000000);
		else if (strcmp(o, "--locations") == 0)
			p.locations = (uint32_t)opt_u64(o, v, 1, 99);
		else if (strcmp(o, "--order-lines") == 0)
			p.order_lines = (uint32_t)opt_u64(o, v, 0, 100000000);
		else if (strcmp(o, "--peak-factor") == 0)
			p.peak_factor = (uint32_t)opt_u64(o, v, 1, 1000);
		else if (strcmp(o, "--peak-minutes") == 0)
			p.peak_minutes = (uint32_t)opt_u64(o, v, 0, 1440);
		else if (strcmp(o, "--peak-start-min") == 0)
			p.peak_start_min = (uint32_t)opt_u64(o, v, 0, 1439);
		else {
			fprintf(stderr, "atpctl simday: unknown option '%s'\n", o);
			return 2;
		}
	}
	FILE *out = path ? fopen(path, "w") : stdout;
	if (!out) {
		perror(path);
		return 1;
	}
	atp_simday_summary sum;
	int rc = atp_simday_write(&p, out, &sum);
	if (path && fclose(out) != 0)
		rc = rc ? rc : -1;
	if (rc) {
		fprintf(stderr, "atpctl simday: %s\n", rc == -22 ? "parameters out of range (burst longer than the day?)"
								  : "could not write the day");
		return 1;
	}
	fprintf(stderr, "simday: %" PRIu64 " rows (%" PRIu64 " resent, %" PRIu64 " reservations retried)%s%s\n",
		sum.rows, sum.resent, sum.retried, path ? " -> " : "", path ? path : "");
	return 0;
}
