/* test_auth.c — atp/auth.h: the authorization file's grammar and errors, grants, patterns, tokens, default deny. */
#include "atp/auth.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static atp_auth *load(const char *text, char *err, size_t errlen)
{
	snprintf(path, sizeof(path), "/tmp/atp-auth-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	atp_auth *a = atp_auth_load(path, err, errlen);
	unlink(path);
	return a;
}

/* sha256("tok") */
#define TOK_SHA "1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62"

Test(auth, grants_by_name_pattern_and_channel)
{
	char err[256];
	atp_auth *a = load("# roles\n"
			   "allow wms-site1 source site1-* site1\n"
			   "allow capture call read write\n"
			   "allow spiffe://site/bridge channel web  # a comment\n"
			   "allow ops call admin GetAtp\n"
			   "allow all channel *\n",
			   err, sizeof(err));
	cr_assert(a, "%s", err);
	cr_assert_eq(atp_auth_identities(a), 5);
	const char *wms[] = { "x", "wms-site1" };
	int w = atp_auth_find(a, wms, 2);
	cr_assert_str_eq(atp_auth_name(a, w), "wms-site1");
	cr_assert(atp_auth_may_send(a, w, "site1-wms", 9));
	cr_assert(atp_auth_may_send(a, w, "site1", 5));
	cr_assert_not(atp_auth_may_send(a, w, "site2-wms", 9));
	cr_assert_not(atp_auth_may_send(a, w, "site1-wms", 4), "a prefix of a name is another name");
	cr_assert_not(atp_auth_may_send(a, w, "@grpc", 5), "never an '@' source");
	cr_assert_not(atp_auth_may_call(a, w, ATP_AUTH_GET_ATP), "default deny");
	const char *cap[] = { "capture" };
	int c = atp_auth_find(a, cap, 1);
	cr_assert(atp_auth_may_call(a, c, ATP_AUTH_GET_ATP | ATP_AUTH_SCAN | ATP_AUTH_RESERVE | ATP_AUTH_RELEASE));
	cr_assert_not(atp_auth_may_call(a, c, ATP_AUTH_SNAPSHOT));
	cr_assert_not(atp_auth_may_call(a, c, ATP_AUTH_SUBSCRIBE));
	cr_assert_not(atp_auth_may_send(a, c, "site1-wms", 9));
	const char *br[] = { "spiffe://site/bridge" };
	int b = atp_auth_find(a, br, 1);
	cr_assert(atp_auth_may_call(a, b, ATP_AUTH_SUBSCRIBE), "a channel grant implies Subscribe");
	cr_assert(atp_auth_may_subscribe(a, b, "web", 3));
	cr_assert_not(atp_auth_may_subscribe(a, b, "we", 2));
	cr_assert_not(atp_auth_may_subscribe(a, b, "marketplace", 11));
	const char *all[] = { "all" };
	cr_assert(atp_auth_may_subscribe(a, atp_auth_find(a, all, 1), "anything", 8));
	const char *ops[] = { "ops" };
	int o = atp_auth_find(a, ops, 1);
	cr_assert(atp_auth_may_call(a, o, ATP_AUTH_HISTORY | ATP_AUTH_PURGE | ATP_AUTH_GET_ATP));
	cr_assert_not(atp_auth_may_call(a, o, ATP_AUTH_SCAN));
	const char *nobody[] = { "nobody" };
	int n = atp_auth_find(a, nobody, 1);
	cr_assert_eq(n, ATP_AUTH_NONE);
	cr_assert_not(atp_auth_may_call(a, n, ATP_AUTH_GET_ATP));
	cr_assert_not(atp_auth_may_send(a, n, "site1", 5));
	atp_auth_free(a);
}

Test(auth, a_token_is_found_by_its_sha256)
{
	char err[256];
	/* printf %s s3cret | sha256sum */
	atp_auth *a = load("token svc sha256:1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0\n"
			   "token ops sha256:" TOK_SHA "\nallow svc call read\n",
			   err, sizeof(err));
	cr_assert(a, "%s", err);
	cr_assert_eq(atp_auth_tokens(a), 2);
	int svc = atp_auth_token(a, (const uint8_t *)"s3cret", 6);
	cr_assert_str_eq(atp_auth_name(a, svc), "svc");
	cr_assert(atp_auth_may_call(a, svc, ATP_AUTH_GET_ATP));
	cr_assert_str_eq(atp_auth_name(a, atp_auth_token(a, (const uint8_t *)"tok", 3)), "ops");
	cr_assert_not(atp_auth_may_call(a, atp_auth_token(a, (const uint8_t *)"tok", 3), ATP_AUTH_GET_ATP));
	cr_assert_eq(atp_auth_token(a, (const uint8_t *)"s3cre", 5), ATP_AUTH_NONE);
	cr_assert_eq(atp_auth_token(a, (const uint8_t *)"", 0), ATP_AUTH_NONE);
	atp_auth_free(a);
}

Test(auth, errors_name_the_line)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "allow x call Fly\n", ":1: 'Fly' is not a method" },
		{ "\n\nallow x source @grpc\n", ":3: '@grpc': sources starting with @" },
		{ "allow x drive y\n", ":1: 'drive': expected call, source or channel" },
		{ "deny x call read\n", ":1: expected 'token NAME" },
		{ "allow x\n", ":1: expected" },
		{ "token x sha256:abc\n", ":1: expected 'token NAME sha256:HEX'" },
		{ "token x sha256:zz" "00000000000000000000000000000000000000000000000000000000000000\n", ":1: 'zz" },
		{ "token x sha256:" TOK_SHA "\ntoken y sha256:" TOK_SHA "\n", ":2: this token is already x's" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		atp_auth *a = load(bad[i].text, err, sizeof(err));
		cr_assert_null(a, "case %zu loaded", i);
		cr_assert(strstr(err, bad[i].want), "case %zu: '%s' lacks '%s'", i, err, bad[i].want);
		cr_assert(strstr(err, path), "case %zu names the file: %s", i, err);
	}
	char err[256];
	cr_assert_null(atp_auth_load("/nonexistent/authz", err, sizeof(err)));
	cr_assert(strstr(err, "/nonexistent/authz: No such file"), "%s", err);
}
