/* GnuTLS left uninitialized in the tunnelsync executable.
 *
 * Nothing in the agent uses GnuTLS: its API client is libcurl over OpenSSL
 * (agent/cloudflare) and its metrics listener is libmicrohttpd without TLS
 * (agent/daemon). Yet GnuTLS is loaded (librtmp, libldap and
 * libmicrohttpd, which libcurl and the daemon pull in, link it) and
 * initialized twice before main(): by its own constructor and by
 * libmicrohttpd's, which calls gnutls_global_init(). That initialization
 * (ASN.1 trees, crypto back ends, p11-kit's trust module) kept 0.8 MiB
 * resident for the daemon's life (README "Daemon idle").
 *
 * The executable defines the two symbols both paths go through (exported
 * by agent/exports.list, so that the libraries' references bind here):
 * GnuTLS's documented constructor hook _gnutls_global_init_skip() and
 * gnutls_global_init(). Both leave GnuTLS uninitialized unless libcurl's
 * TLS back end is not OpenSSL, in which case the real initialization runs
 * (a libcurl built against GnuTLS needs it). A GnuTLS call made anyway
 * would find the library uninitialized (its entry points that check the
 * library's state refuse with GNUTLS_E_LIB_IN_ERROR_STATE; read from
 * GnuTLS's source, not tested here): only an rtmps:// or ldaps:// transfer
 * would make one, and the API client allows https (or http on loopback)
 * alone. Test: ctest gnutls-uninit (tests/daemon/gnutls-uninit.sh). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <curl/curl.h>
#include <dlfcn.h>
#include <string.h>

int _gnutls_global_init_skip(void);
int gnutls_global_init(void);

/* True when libcurl does TLS with something other than OpenSSL. */
static int gnutls_wanted(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return !v || !v->ssl_version || strncmp(v->ssl_version, "OpenSSL/", 8) != 0;
}

int _gnutls_global_init_skip(void)
{
	return !gnutls_wanted();
}

int gnutls_global_init(void)
{
	int (*real)(void);

	if (!gnutls_wanted())
		return 0;
	*(void **)&real = dlsym(RTLD_NEXT, "gnutls_global_init");
	return real ? real() : -1;
}
