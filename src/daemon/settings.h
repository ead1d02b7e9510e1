/*
 * settings.h — atpd's settings: one table (settings.c) of every key with
 * its type, bounds, unit, default and the field it sets, as Redis's
 * config.c keeps them. The defaults are the modules' own (*_config_default),
 * so the reference `atpd --help-settings` prints, the README's table and
 * the example config cannot drift from what atpd does.
 *
 * Sources, applied in order: the defaults, then --config FILE (`key =
 * value` lines, `#` comments) and --set KEY=VALUE as they come on the
 * command line. channel.NAME.* keys go to atp/channel.h; source.NAME.on_invalid
 * to the stream's policies. Main thread only.
 */
#ifndef ATPD_SETTINGS_H
#define ATPD_SETTINGS_H

#include "atp/channel.h"
#include "atp/engine.h"
#include "atp/grpc_server.h"
#include "atp/hub.h"
#include "atp/stream_server.h"
#include "atp/tls.h"
#include "atp/udp_server.h"
#include "atp/dpdk_port.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum clock_mode { CLOCK_WALL, CLOCK_EVENTS, CLOCK_FROZEN };
enum channel_stream_mode { STREAM_AUTO, STREAM_ON, STREAM_OFF };

typedef struct settings {
	atp_engine_config engine;
	atp_stream_config stream;
	bool listen;            /* listen != "none" */
	atp_udp_config udp;
	atp_dpdk_config dpdk;   /* dpdk.eal "": off */
	bool udp_on;            /* udp_listen != "none" */
	atp_grpc_config grpc;
	bool grpc_on;           /* grpc_listen != "none" */
	char metrics_listen[128];
	bool metrics_on;        /* metrics_listen != "none" */
	int allow_plaintext;    /* 0 false, 1 true: plaintext listeners beyond loopback */
	atp_tls_config tls;     /* tls.cert "": plaintext */
	char authz_file[ATP_TLS_PATH_MAX];  /* "": no authorization file */
	char user[64];          /* started as root: run as this user; "": stay */
	uint64_t metrics_max_bytes;
	int log_level;          /* atp/log.h */
	int log_format;         /* 0 text, 1 logfmt */
	int clock;              /* enum clock_mode */
	uint64_t tick_ms;
	uint32_t deadletter_max;  /* entries of the dead-letter store */
	uint64_t deadletter_retention_ms;  /* older entries are purged; 0: kept until purged by hand */
	int channel_stream;     /* enum channel_stream_mode */
	atp_channel_set channels;
	atp_hub_config hub;
	bool check_only;        /* --check-config */
	bool help;              /* --help-settings */
} settings;

/*
 * The settings of a command line: defaults, then every --config and --set
 * in order (--data's value to *data when data is not NULL). 0, or -1 after
 * a log line naming the file:line or the --set at fault.
 */
int settings_load(settings *s, int argc, char **argv, const char **data);

/* The reference: one Markdown table row per key (name, default, range and unit, what it does). */
void settings_print_reference(FILE *f);

#endif
