/* auth.c — the authorization file and its checks (see atp/auth.h). */
#include "atp/auth.h"

#include "atp/log.h"

#include <errno.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 127
#define WORDS_MAX 64

typedef struct grant {
	char name[NAME_MAX_BYTES + 1];
	uint32_t calls;
	char **sources, **channels;   /* patterns, channel names ("*": every one) */
	unsigned n_sources, n_channels;
} grant;

typedef struct token {
	uint8_t sha[32];
	int id;
} token;

struct atp_auth {
	grant *g;
	unsigned n, cap;
	token *t;
	unsigned n_tokens, tokens_cap;
};

static const struct {
	const char *name;
	uint32_t bits;
} calls[] = {
	{ "GetAtp", ATP_AUTH_GET_ATP },
	{ "GetAtpBatch", ATP_AUTH_GET_ATP_BATCH },
	{ "Scan", ATP_AUTH_SCAN },
	{ "Reserve", ATP_AUTH_RESERVE },
	{ "Release", ATP_AUTH_RELEASE },
	{ "Subscribe", ATP_AUTH_SUBSCRIBE },
	{ "Snapshot", ATP_AUTH_SNAPSHOT },
	{ "Redrive", ATP_AUTH_REDRIVE },
	{ "Purge", ATP_AUTH_PURGE },
	{ "DeadLetters", ATP_AUTH_DEAD_LETTERS },
	{ "History", ATP_AUTH_HISTORY },
	{ "GetAtpProfile", ATP_AUTH_GET_ATP_PROFILE },
	{ "read", ATP_AUTH_GET_ATP | ATP_AUTH_GET_ATP_BATCH | ATP_AUTH_SCAN | ATP_AUTH_GET_ATP_PROFILE },
	{ "write", ATP_AUTH_RESERVE | ATP_AUTH_RELEASE },
	{ "admin", ATP_AUTH_SNAPSHOT | ATP_AUTH_REDRIVE | ATP_AUTH_PURGE | ATP_AUTH_DEAD_LETTERS | ATP_AUTH_HISTORY },
	{ "*", ~0u },
};

void atp_auth_free(atp_auth *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n; i++) {
		for (unsigned k = 0; k < a->g[i].n_sources; k++)
			free(a->g[i].sources[k]);
		for (unsigned k = 0; k < a->g[i].n_channels; k++)
			free(a->g[i].channels[k]);
		free(a->g[i].sources);
		free(a->g[i].channels);
	}
	free(a->g);
	free(a->t);
	free(a);
}

/* The grant of name, made when new: its index, or -1 when out of memory. */
static int grant_of(atp_auth *a, const char *name)
{
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->g[i].name, name) == 0)
			return (int)i;
	if (a->n == a->cap) {
		unsigned cap = a->cap ? a->cap * 2 : 16;
		grant *g = realloc(a->g, cap * sizeof(*g));
		if (!g)
			return -1;
		a->g = g;
		a->cap = cap;
	}
	a->g[a->n] = (grant){ 0 };
	snprintf(a->g[a->n].name, sizeof(a->g[a->n].name), "%s", name);
	return (int)a->n++;
}

static int push(char ***list, unsigned *n, const char *word)
{
	char **l = realloc(*list, (*n + 1) * sizeof(*l));
	if (!l)
		return -1;
	*list = l;
	if (!(l[*n] = strdup(word)))
		return -1;
	(*n)++;
	return 0;
}

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One line's words: 0, or -1 with why. */
static int line(atp_auth *a, char **w, unsigned n, char *why, size_t whylen)
{
	if (strlen(w[1]) > NAME_MAX_BYTES) {
		snprintf(why, whylen, "the name '%s' is longer than %d bytes", w[1], NAME_MAX_BYTES);
		return -1;
	}
	if (strcmp(w[0], "token") == 0) {
		if (n != 3 || strncmp(w[2], "sha256:", 7) != 0 || strlen(w[2]) != 7 + 64) {
			snprintf(why, whylen, "expected 'token NAME sha256:HEX' (64 hex digits)");
			return -1;
		}
		token t = { .id = grant_of(a, w[1]) };
		for (int i = 0; i < 32; i++) {
			int hi = hex(w[2][7 + 2 * i]), lo = hex(w[2][8 + 2 * i]);
			if (hi < 0 || lo < 0) {
				snprintf(why, whylen, "'%s' is not 64 hex digits", w[2] + 7);
				return -1;
			}
			t.sha[i] = (uint8_t)(hi << 4 | lo);
		}
		for (unsigned i = 0; i < a->n_tokens; i++)
			if (memcmp(a->t[i].sha, t.sha, 32) == 0) {
				snprintf(why, whylen, "this token is already %s's", a->g[a->t[i].id].name);
				return -1;
			}
		if (t.id < 0)
			goto nomem;
		if (a->n_tokens == a->tokens_cap) {
			unsigned cap = a->tokens_cap ? a->tokens_cap * 2 : 16;
			token *p = realloc(a->t, cap * sizeof(*p));
			if (!p)
				goto nomem;
			a->t = p;
			a->tokens_cap = cap;
		}
		a->t[a->n_tokens++] = t;
		return 0;
	}
	if (strcmp(w[0], "allow") != 0 || n < 4) {
		snprintf(why, whylen, "expected 'token NAME sha256:HEX' or 'allow NAME call|source|channel WORD...'");
		return -1;
	}
	int id = grant_of(a, w[1]);
	if (id < 0)
		goto nomem;
	grant *g = &a->g[id];
	for (unsigned i = 3; i < n; i++) {
		if (strcmp(w[2], "call") == 0) {
			size_t k = 0;
			while (k < sizeof(calls) / sizeof(calls[0]) && strcmp(calls[k].name, w[i]) != 0)
				k++;
			if (k == sizeof(calls) / sizeof(calls[0])) {
				snprintf(why, whylen, "'%s' is not a method or group (GetAtp ... History, read, write, admin, *)",
					 w[i]);
				return -1;
			}
			g->calls |= calls[k].bits;
		} else if (strcmp(w[2], "source") == 0) {
			if (w[i][0] == '@') {
				snprintf(why, whylen, "'%s': sources starting with @ are atpd's own", w[i]);
				return -1;
			}
			if (push(&g->sources, &g->n_sources, w[i]) < 0)
				goto nomem;
		} else if (strcmp(w[2], "channel") == 0) {
			if (push(&g->channels, &g->n_channels, w[i]) < 0)
				goto nomem;
			g->calls |= ATP_AUTH_SUBSCRIBE;
		} else {
			snprintf(why, whylen, "'%s': expected call, source or channel", w[2]);
			return -1;
		}
	}
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

atp_auth *atp_auth_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	atp_auth *a = calloc(1, sizeof(*a));
	char buf[4096], why[200];
	unsigned no = 0;
	if (!a) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (fgets(buf, sizeof(buf), f)) {
		no++;
		if (!strchr(buf, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: longer than %zu bytes", path, no, sizeof(buf) - 2);
			goto fail;
		}
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		char *w[WORDS_MAX], *save = NULL;
		unsigned n = 0;
		for (char *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
			if (n == WORDS_MAX) {
				snprintf(err, errlen, "%s:%u: more than %d words", path, no, WORDS_MAX);
				goto fail;
			}
			w[n++] = tok;
		}
		if (n == 0)
			continue;
		if (n < 3) {
			snprintf(err, errlen, "%s:%u: expected 'token NAME sha256:HEX' or 'allow NAME call|source|channel WORD...'",
				 path, no);
			goto fail;
		}
		if (line(a, w, n, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, no, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	return a;
fail:
	fclose(f);
	atp_auth_free(a);
	return NULL;
}

unsigned atp_auth_identities(const atp_auth *a)
{
	return a->n;
}

unsigned atp_auth_tokens(const atp_auth *a)
{
	return a->n_tokens;
}

int atp_auth_find(const atp_auth *a, const char *const *names, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		for (unsigned i = 0; i < a->n; i++)
			if (strcmp(a->g[i].name, names[k]) == 0)
				return (int)i;
	return ATP_AUTH_NONE;
}

int atp_auth_token(const atp_auth *a, const uint8_t *tok, size_t len)
{
	uint8_t sha[32];
	SHA256(tok, len, sha);
	int id = ATP_AUTH_NONE;
	for (unsigned i = 0; i < a->n_tokens; i++)
		if (CRYPTO_memcmp(a->t[i].sha, sha, 32) == 0)
			id = a->t[i].id;
	return id;
}

const char *atp_auth_name(const atp_auth *a, int id)
{
	return id >= 0 && (unsigned)id < a->n ? a->g[id].name : "(none)";
}

bool atp_auth_may_call(const atp_auth *a, int id, uint32_t call)
{
	return id >= 0 && (unsigned)id < a->n && (a->g[id].calls & call) == call;
}

bool atp_auth_may_send(const atp_auth *a, int id, const char *source, size_t len)
{
	char name[256];
	if (id < 0 || (unsigned)id >= a->n || len == 0 || len >= sizeof(name) || source[0] == '@')
		return false;
	memcpy(name, source, len);
	name[len] = 0;
	if (strlen(name) != len)
		return false;
	const grant *g = &a->g[id];
	for (unsigned i = 0; i < g->n_sources; i++)
		if (fnmatch(g->sources[i], name, 0) == 0)
			return true;
	return false;
}

bool atp_auth_may_subscribe(const atp_auth *a, int id, const char *channel, size_t len)
{
	if (id < 0 || (unsigned)id >= a->n)
		return false;
	const grant *g = &a->g[id];
	for (unsigned i = 0; i < g->n_channels; i++)
		if (strcmp(g->channels[i], "*") == 0 ||
		    (strlen(g->channels[i]) == len && memcmp(g->channels[i], channel, len) == 0))
			return true;
	return false;
}

static _Atomic uint64_t refused_unauth, refused_denied;

void atp_auth_refused(bool unauthenticated, const char *who, const char *op, const char *why)
{
	atomic_fetch_add_explicit(unauthenticated ? &refused_unauth : &refused_denied, 1, memory_order_relaxed);
	atp_log(ATP_LOG_WARN, "refused (%s): %s: %s: %s", unauthenticated ? "unauthenticated" : "permission denied", who,
		op, why);
}

atp_auth_stats atp_auth_refusals(void)
{
	return (atp_auth_stats){ atomic_load_explicit(&refused_unauth, memory_order_relaxed),
				 atomic_load_explicit(&refused_denied, memory_order_relaxed) };
}
