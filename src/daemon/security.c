/* security.c — TLS contexts, the authorization file and the user of atpd (see security.h). */
#define _GNU_SOURCE
#include "security.h"

#include "atp/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int security_drop_privileges(const settings *s, char *err, size_t errlen)
{
	if (geteuid() != 0)
		return 0;
	if (!s->user[0]) {
		atp_log(ATP_LOG_WARN, "running as root: atpd needs no privilege (its ports are above 1024); set user = "
				      "NAME, or start it as that user (deploy/atpd.service does)");
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(s->user);
	if (!pw) {
		snprintf(err, errlen, "user %s: %s", s->user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "becoming user %s: %s", s->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {  /* must fail now */
		snprintf(err, errlen, "becoming user %s: root could be taken back", s->user);
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	atp_log(ATP_LOG_INFO, "running as user %s (uid %u, gid %u)", s->user, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

/* A context of the server certificate (both listeners have the same), or NULL without TLS. */
static const atp_tls_ctx *cert_ctx(const atpd_security *sec)
{
	return sec->grpc_tls ? sec->grpc_tls : sec->stream_tls;
}

static void expiry_check(const atpd_security *sec)
{
	const atp_tls_ctx *x = cert_ctx(sec);
	if (!x)
		return;
	int64_t left = atp_tls_ctx_not_after(x) - (int64_t)time(NULL);
	if (left < SECURITY_EXPIRY_WARN_S)
		atp_log(ATP_LOG_WARN, "the TLS certificate %s %s %.1f days: renew tls_cert, then SIGHUP", atp_tls_ctx_subject(x),
			left < 0 ? "expired" : "expires in", (left < 0 ? -left : left) / 86400.0);
}

static void describe(const atpd_security *sec)
{
	const atp_tls_ctx *x = cert_ctx(sec);
	if (x) {
		char when[32];
		time_t t = (time_t)atp_tls_ctx_not_after(x);
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%d", gmtime_r(&t, &tm));
		atp_log(ATP_LOG_INFO, "TLS: certificate %s, valid until %s; client certificates %s", atp_tls_ctx_subject(x),
			when, atp_tls_ctx_asks_clients(x) ? "asked for and verified" : "not asked for");
	}
	if (sec->auth)
		atp_log(ATP_LOG_INFO, "authorization: %u identities, %u bearer tokens; everything else refused",
			atp_auth_identities(sec->auth), atp_auth_tokens(sec->auth));
}

int security_open(atpd_security *sec, const settings *s, char *err, size_t errlen)
{
	*sec = (atpd_security){ 0 };
	if (s->tls.cert[0] && ((s->listen && !(sec->stream_tls = atp_tls_ctx_new(&s->tls, false, err, errlen))) ||
			       (s->grpc_on && !(sec->grpc_tls = atp_tls_ctx_new(&s->tls, true, err, errlen)))))
		goto fail;
	if (s->authz_file[0] && !(sec->auth = atp_auth_load(s->authz_file, err, errlen)))
		goto fail;
	describe(sec);
	expiry_check(sec);
	return 0;
fail:
	security_close(sec);
	return -1;
}

void security_apply(const atpd_security *sec, atp_stream_server *srv, atp_grpc_server *api)
{
	if (srv)
		atp_stream_server_set_security(srv, sec->stream_tls, sec->auth);
	if (api)
		atp_grpc_server_set_security(api, sec->grpc_tls, sec->auth);
}

void security_reload(atpd_security *sec, const settings *fresh, atp_stream_server *srv, atp_grpc_server *api)
{
	char err[512];
	atp_tls_ctx *both[2] = { sec->stream_tls, sec->grpc_tls };
	for (int i = 0; i < 2; i++)
		if (both[i] && atp_tls_ctx_reload(both[i], err, sizeof(err)) < 0)
			atp_log(ATP_LOG_ERROR, "SIGHUP: %s; the certificate in use stays", err);
	atp_auth *auth = NULL, *old = sec->auth;
	if (fresh->authz_file[0] && !(auth = atp_auth_load(fresh->authz_file, err, sizeof(err)))) {
		atp_log(ATP_LOG_ERROR, "SIGHUP: %s; the authorization in force stays", err);
		auth = old;
	} else if (!auth && old) {
		atp_log(ATP_LOG_WARN, "SIGHUP: no authz_file any more: every authenticated client may do everything");
	}
	sec->auth = auth;
	security_apply(sec, srv, api);  /* the listeners let go of old before it is freed */
	if (old != auth)
		atp_auth_free(old);
	describe(sec);
	expiry_check(sec);
}

void security_tick(atpd_security *sec, uint64_t now_ms)
{
	if (now_ms < sec->next_expiry_check_ms)
		return;
	if (sec->next_expiry_check_ms)
		expiry_check(sec);
	sec->next_expiry_check_ms = now_ms + 86400000;
}

int64_t security_not_after(const atpd_security *sec)
{
	const atp_tls_ctx *x = cert_ctx(sec);
	return x ? atp_tls_ctx_not_after(x) : 0;
}

void security_close(atpd_security *sec)
{
	atp_tls_ctx_free(sec->stream_tls);
	atp_tls_ctx_free(sec->grpc_tls);
	atp_auth_free(sec->auth);
	*sec = (atpd_security){ 0 };
}
