/*
 * atp/log.h — the one way atpd's code logs. A message has a level and a
 * text (no trailing newline); the sink the daemon set writes it (by
 * default: "atpd: TEXT" lines on stderr). Messages above the level set are
 * dropped; a message (the same format) written more than 20 times within
 * a second is held back for the rest of that second, and the next message
 * after it says how many were: a flood of connections costs at most 20
 * lines a second per kind of line. Any thread; the sink is called under a
 * lock, one message at a time.
 */
#ifndef ATP_LOG_H
#define ATP_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum atp_log_level { ATP_LOG_ERROR, ATP_LOG_WARN, ATP_LOG_INFO, ATP_LOG_DEBUG };

/* Where messages go: level and text. */
typedef void (*atp_log_sink)(int level, const char *text);

/* Set the sink (NULL: the default) and the highest level written. Call before the threads start. */
void atp_log_setup(atp_log_sink sink, int max_level);
/* "error", "warn", "info", "debug": the level, or -1. */
int atp_log_level_of(const char *name);
const char *atp_log_level_name(int level);
void atp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
