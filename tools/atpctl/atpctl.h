/* atpctl.h — the subcommands of atpctl, one file each. */
#ifndef ATPCTL_H
#define ATPCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int cmd_simday(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_atp(int argc, char **argv);
int cmd_reserve(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_grpc_load(int argc, char **argv);
int cmd_subscribe(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_wal(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_dlq(int argc, char **argv);

/* --grpc HOST:PORT (default $ATP_GRPC, else 127.0.0.1:7401), taken out of argv; the rest shifted down. */
const char *grpc_target(int *argc, char **argv);
/* Every position (an atp.v1.PositionAtp, verified) to fn, by the Scan call; -1 after a message. */
int grpc_scan_all(const char *target, void (*fn)(void *ctx, const uint8_t *position), void *ctx);

/*
 * One unary call on its own connection: the reply (free it), with *root
 * its root verified by rule; NULL after printing the error.
 */
struct atp_fb_table_rule;
uint8_t *grpc_unary(const char *target, const char *path, const uint8_t *msg, size_t len,
		    const struct atp_fb_table_rule *rule, const uint8_t **root);

/* The shard count of a data directory (atp_engine_dir_shards), or 0 after a message naming it. */
uint32_t data_shards(const char *dir);

/* Parse a decimal option value into [min, max]; exits with a message when it is not. */
uint64_t opt_u64(const char *name, const char *value, uint64_t min, uint64_t max);
/* --policy per-line|all-or-nothing|partial: an ATP_V1_* policy of Reserve; exits with usage otherwise. */
uint8_t opt_policy(const char *value);
/* Seconds of CLOCK_MONOTONIC. */
double now_seconds(void);

#endif
