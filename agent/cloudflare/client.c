/* Owns the HTTP side of the Cloudflare client: credentials, URL policy
 * (TLS always verified; plain http only to loopback when configured),
 * curl setup and its redacted debug output, the request budget, retries
 * and the four operations. Response parsing lives in parse.c. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cloudflare/cloudflare.h"
#include "cloudflare/parse.h"
#include "cloudflare/trust.h"
#include "core/cancel.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/util.h"
#include "version.h"

#define MAX_RESPONSE		(8u << 20)
#define DEFAULT_ATTEMPTS	4
#define DEFAULT_BACKOFF		(1 * TS_USEC_PER_SEC)
#define DEFAULT_BACKOFF_MAX	(30 * TS_USEC_PER_SEC)
#define DEFAULT_RETRY_AFTER_MAX (60 * TS_USEC_PER_SEC)
#define PLANE			"cloudflare"

/* A growable byte buffer that is wiped whenever storage is released:
 * request and response bodies may hold a PSK. */
struct cf_buf {
	char *data;
	size_t len, cap;
	size_t max;
	bool overflow;
};

static void buf_release(struct cf_buf *b)
{
	if (b->data) {
		ts_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

static int buf_append(struct cf_buf *b, const void *data, size_t len)
{
	if (b->max && b->len + len > b->max) {
		b->overflow = true;
		return -EMSGSIZE;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = malloc(cap);
		if (!p)
			return -ENOMEM;
		if (b->data)
			memcpy(p, b->data, b->len);
		ts_wipe(b->data, b->cap);
		free(b->data);
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

static int buf_puts(struct cf_buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

struct ts_cf_client {
	CURL *curl;
	/* Every transfer runs on it (perform): curl_easy_perform's loop with
	 * the wait hook's descriptors polled beside curl's sockets. It holds
	 * the kept-alive connections. */
	CURLM *multi;
	struct ts_cf_wait_hook wait_hook;
	bool in_request;	    /* a wait hook that calls the client gets -EBUSY */
	unsigned long connects;	    /* connections made (ts_cf_client_connects) */
	struct curl_slist *headers; /* the other headers */
	/* The credential's header line lives in a secret buffer (not dumped,
	 * wiped on free), in a list node of our own ahead of headers. */
	struct ts_secret *auth_line;
	struct curl_slist auth_node;
	char account_id[TS_CF_ID_LEN + 1];
	char *base_url; /* without a trailing slash */
	bool plain_http;
	/* The PEM bundle the handshakes find their trust anchors in (trust.c):
	 * ca-file, or the system's; NULL over plain http. */
	char *trust_path;
	struct ts_secret *credential; /* token or API key */
	struct ts_cf_client_options opts;
	/* Request budget as a GCRA token bucket: a request at time now is
	 * allowed when tat - now <= window - interval. */
	ts_usec_t budget_interval;
	ts_usec_t budget_tolerance;
	ts_usec_t budget_tat;
	/* Across calls: no request before hold_until (monotonic): a
	 * Retry-After of any length, or the backoff after calls that failed
	 * with 5xx or in transport (consecutive_failures of them). */
	ts_usec_t hold_until;
	bool hold_rate_limited;
	unsigned consecutive_failures;
	uint64_t rng;
	char errbuf[CURL_ERROR_SIZE];
};

/* OpenSSL's allocations on the wiping allocator too: its TLS record
 * buffers hold the plaintext of what goes over the connection (a
 * generated key decrypted in the read buffer, the request with the token
 * before it is encrypted), and OpenSSL frees them unwiped. Its default
 * functions' behaviour at size 0 is kept (NULL; realloc to 0 frees). */
static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return n ? ts_wipe_malloc(n) : NULL;
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	if (n == 0) {
		ts_wipe_free(p);
		return NULL;
	}
	return ts_wipe_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	ts_wipe_free(p);
}

static bool tls_memory_wiped;

bool ts_cf_tls_memory_wiped(void)
{
	return tls_memory_wiped;
}

/* Connections whose SSL_CTX got SSL_OP_CLEANSE_PLAINTEXT (and must have):
 * without it OpenSSL keeps a response's plaintext (a generated key) in
 * the read buffer of a kept-alive connection until the next record
 * overwrites it; with it the buffer is wiped once the record is read. */
static atomic_uint tls_cleansed_contexts;

unsigned ts_cf_tls_cleansed_contexts(void)
{
	return atomic_load(&tls_cleansed_contexts);
}

static CURLcode ssl_ctx_cb(CURL *curl, void *ssl_ctx, void *userdata)
{
	const struct ts_cf_client *c = userdata;
	SSL_CTX *ctx = ssl_ctx;

	(void)curl;
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
	if (!(SSL_CTX_get_options(ctx) & SSL_OP_CLEANSE_PLAINTEXT))
		return CURLE_SSL_CONNECT_ERROR;
	if (c->trust_path && ts_cf_trust_attach(ctx, c->trust_path) < 0)
		return CURLE_OUT_OF_MEMORY;
	atomic_fetch_add(&tls_cleansed_contexts, 1);
	return CURLE_OK;
}

/* libcurl copies the auth header into its request buffers: with these
 * hooks every block it frees is wiped first. OpenSSL takes other
 * functions only before its first allocation: before curl initializes it
 * here, unless something else in the process used it already. */
static void curl_init_once(void)
{
	tls_memory_wiped = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
	if (!tls_memory_wiped)
		ts_logf(TS_LOG_WARN, "cloudflare", NULL,
			"OpenSSL was used before the API client: its buffers are not wiped when freed");
	/* On the wiping allocator just installed, before libcurl's own
	 * OPENSSL_init_ssl: without OpenSSL's and libssl's error strings
	 * (thousands of entries hashed at init, read for every process's
	 * lifetime: the daemon's RSS 0.7 MiB more, tests/bench/idle-scale.sh).
	 * A failed certificate check still reads in words (libcurl takes it
	 * from X509_verify_cert_error_string, test-cloudflare
	 * test_untrusted_certificate); other OpenSSL errors show their code,
	 * "error:0A000410:lib(20)::reason(1040)", which `openssl errstr
	 * 0A000410` spells out. */
	if (!OPENSSL_init_ssl(
		    OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_LOAD_SSL_STRINGS, NULL))
		ts_logf(TS_LOG_WARN, "cloudflare", NULL, "OpenSSL failed to initialize");
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, ts_wipe_malloc, ts_wipe_free, ts_wipe_realloc,
				 ts_wipe_strdup, ts_wipe_calloc) != CURLE_OK)
		curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* CLOUDFLARE_API_TOKEN, moved out of the environment by ts_cf_take_env_token(). */
static struct ts_secret *env_token;

int ts_cf_take_env_token(void)
{
	if (env_token)
		return 0;
	return ts_secret_take_env("CLOUDFLARE_API_TOKEN", &env_token);
}

/* Wakes early when the daemon stops: the next attempt then sees the
 * cancellation and sends nothing. */
static void default_sleep(ts_usec_t usec, void *userdata)
{
	(void)ts_cancel_sleep(usec);
}

/* Aborts a transfer in flight once a stop is requested (the caller then
 * treats it like any interrupted request: outcome unknown for a write). */
static int xfer_cancel(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	return ts_cancel_requested() ? 1 : 0;
}

/* Header names whose values must never reach a log. */
static bool header_is_credential(const char *line, size_t len)
{
	static const char *const names[] = { "authorization:", "x-auth-key:",
					     "proxy-authorization:", "cookie:" };

	for (size_t i = 0; i < TS_ARRAY_SIZE(names); i++) {
		size_t n = strlen(names[i]);

		if (len >= n && strncasecmp(line, names[i], n) == 0)
			return true;
	}
	return false;
}

static void debug_lines(char dir, const char *data, size_t size)
{
	while (size > 0) {
		const char *eol = memchr(data, '\n', size);
		size_t len = eol ? (size_t)(eol - data) : size;
		size_t shown = len;

		while (shown > 0 && (data[shown - 1] == '\r' || data[shown - 1] == '\n'))
			shown--;
		if (shown > 0) {
			if (dir != '*' && header_is_credential(data, shown)) {
				const char *colon = memchr(data, ':', shown);

				log_trace("curl %c %.*s: (hidden)", dir, (int)(colon - data), data);
			} else {
				log_trace("curl %c %.*s", dir, (int)(shown > 1024 ? 1024 : shown),
					  data);
			}
		}
		if (!eol)
			break;
		size -= len + 1;
		data = eol + 1;
	}
}

/* curl's verbose output: headers at trace level with credentials hidden;
 * bodies (which may carry a PSK) and TLS records only as byte counts. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
	switch (type) {
	case CURLINFO_TEXT:
		debug_lines('*', data, size);
		break;
	case CURLINFO_HEADER_OUT:
		debug_lines('>', data, size);
		break;
	case CURLINFO_HEADER_IN:
		debug_lines('<', data, size);
		break;
	case CURLINFO_DATA_OUT:
		log_trace("curl > [%zu bytes of body not shown]", size);
		break;
	case CURLINFO_DATA_IN:
		log_trace("curl < [%zu bytes of body not shown]", size);
		break;
	default:
		break;
	}
	return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct cf_buf *b = userdata;

	if (buf_append(b, ptr, size * nmemb) < 0)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	return size * nmemb;
}

static bool host_is_loopback(const char *host)
{
	char buf[64];
	size_t n = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(buf))
			return false;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int check_base_url(struct ts_cf_client *c, const char *url, bool allow_plain,
			  struct ts_cf_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int r = 0;

	if (!u)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
				    "api-base-url is not a valid URL");
	} else if (strcasecmp(scheme, "https") == 0) {
		c->plain_http = false;
	} else if (strcasecmp(scheme, "http") == 0) {
		if (!allow_plain)
			r = ts_cf_error_set(
				err, TS_CF_ERR_CONFIG, -EPERM,
				"plain http to %s refused: the API needs https "
				"(allow-plain-http-loopback permits http to loopback only)",
				host);
		else if (!host_is_loopback(host))
			r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EPERM,
					    "plain http to %s refused: only loopback hosts "
					    "(127.0.0.0/8, ::1, localhost) may use http",
					    host);
		else
			c->plain_http = true;
	} else {
		r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
				    "api-base-url scheme '%s' is not https", scheme);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

/* Credentials go into an HTTP header: printable ASCII without spaces, so
 * that a stray newline in a file cannot inject another header. */
static bool header_value_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static int append_secret_header(struct ts_cf_client *c, const char *prefix,
				const struct ts_secret *value)
{
	_cleanup_secret_ struct ts_secret *line = NULL;
	int r;

	r = ts_secret_from_bytes(prefix, strlen(prefix), &line);
	if (r < 0)
		return r;
	r = ts_secret_append(line, ts_secret_str(value), ts_secret_len(value));
	if (r < 0)
		return r;
	/* curl only reads the list: a node of ours pointing into the secret
	 * buffer, never a heap copy (curl_slist_append would strdup it). */
	c->auth_line = TS_TAKE_PTR(line);
	c->auth_node.data = (char *)ts_secret_str(c->auth_line);
	return 0;
}

/* The path of the systemd credential name under $CREDENTIALS_DIRECTORY
 * when that file exists; false when there is none (not under systemd, or
 * the unit does not pass it). */
static bool credential_path(const char *name, char *buf, size_t size)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	int n;

	if (!dir || dir[0] != '/')
		return false;
	n = snprintf(buf, size, "%s/%s", dir, name);
	return n > 0 && (size_t)n < size && access(buf, F_OK) == 0;
}

static int load_credentials(struct ts_cf_client *c, const struct ts_cloudflare_config *cfg,
			    struct ts_cf_error *err)
{
	bool loose = false;
	int r;

	if (cfg->auth == TS_CF_AUTH_TOKEN) {
		char cred[PATH_MAX];
		const char *file = cfg->token_file;

		/* No file in the config: a systemd credential (LoadCredential=)
		 * comes before the environment, which children could inherit. */
		if (!file && credential_path(TS_CF_CREDENTIAL_TOKEN, cred, sizeof(cred)))
			file = cred;
		if (file) {
			r = ts_secret_from_file(file, &c->credential, &loose);
			if (r < 0)
				return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r,
						       "cannot read the API token file %s: %s",
						       file, ts_file_strerror(r));
		} else {
			/* main() moved it into env_token at start; a library user
			 * that did not gets it read from the environment. */
			const char *env = env_token ? ts_secret_str(env_token)
						    : getenv("CLOUDFLARE_API_TOKEN");

			if (!env || !*env)
				return ts_cf_error_set(
					err, TS_CF_ERR_CONFIG, -ENOKEY,
					"no API token: no api-token-file configured, "
					"no systemd credential " TS_CF_CREDENTIAL_TOKEN
					", CLOUDFLARE_API_TOKEN not set");
			r = ts_secret_from_bytes(env, strlen(env), &c->credential);
			if (r < 0)
				return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r,
						       "cannot store the API token");
		}
		if (!header_value_ok(ts_secret_str(c->credential), ts_secret_len(c->credential)))
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "the API token has spaces or non-printable bytes");
		r = append_secret_header(c, "Authorization: Bearer ", c->credential);
	} else if (cfg->auth == TS_CF_AUTH_EMAIL_KEY) {
		char line[320];

		if (!cfg->email || !cfg->key_file)
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "email + key authentication needs an email and a "
					       "key file");
		if (!header_value_ok(cfg->email, strlen(cfg->email)) || strlen(cfg->email) > 254)
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "the account email is not a valid header value");
		r = ts_secret_from_file(cfg->key_file, &c->credential, &loose);
		if (r < 0)
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r,
					       "cannot read the API key file %s: %s", cfg->key_file,
					       ts_file_strerror(r));
		if (!header_value_ok(ts_secret_str(c->credential), ts_secret_len(c->credential)))
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "the API key has spaces or non-printable bytes");
		snprintf(line, sizeof(line), "X-Auth-Email: %s", cfg->email);
		struct curl_slist *l = curl_slist_append(c->headers, line);
		if (!l)
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
		c->headers = l;
		r = append_secret_header(c, "X-Auth-Key: ", c->credential);
	} else {
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL, "unknown auth method");
	}
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r, "cannot build the auth header");
	if (loose)
		log_debug("credential file is readable by group or others");
	return 0;
}

void ts_cf_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, curl_init_once);
}

/* The bundle the handshakes look their anchors up in: the declared
 * ca-file, or the system's (libcurl's built-in bundle, /etc/ssl/certs/
 * ca-certificates.crt on Debian). Checked here, so that a missing or
 * unreadable one is an error naming it rather than a failed handshake. */
static int setup_trust(struct ts_cf_client *c, const struct ts_cloudflare_config *cfg,
		       struct ts_cf_error *err)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const char *path = cfg->ca_file ? cfg->ca_file : v->cainfo;
	char msg[PATH_MAX + 96];
	int r;

	if (!path)
		return 0; /* a libcurl without a built-in bundle: its own defaults */
	r = ts_cf_trust_check(path, msg, sizeof(msg));
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r, "%s%s", msg,
				       cfg->ca_file ? ""
						    : " (the system's trust store: install "
						      "ca-certificates or set cloudflare/ca-file)");
	c->trust_path = strdup(path);
	if (!c->trust_path)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
	return 0;
}

int ts_cf_client_new(const struct ts_cloudflare_config *cfg,
		     const struct ts_cf_client_options *opts, struct ts_cf_client **ret_client,
		     struct ts_cf_error *err)
{
	const char *base = cfg->api_base_url ? cfg->api_base_url : TS_CF_DEFAULT_BASE_URL;
	struct ts_cf_client *c;
	uint32_t budget = cfg->request_budget ? cfg->request_budget : TS_CF_DEFAULT_REQUEST_BUDGET;
	long connect_timeout =
		cfg->connect_timeout ? cfg->connect_timeout : TS_CF_DEFAULT_CONNECT_TIMEOUT;
	long request_timeout =
		cfg->request_timeout ? cfg->request_timeout : TS_CF_DEFAULT_REQUEST_TIMEOUT;
	struct curl_slist *l;
	size_t n;
	int r;

	ts_cf_error_done(err);
	ts_cf_global_init();
	ts_cf_json_init();

	if (!ts_cf_id_valid(cfg->account_id))
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
				       "account id must be 1..32 letters or digits");
	c = calloc(1, sizeof(*c));
	if (!c)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
	strcpy(c->account_id, cfg->account_id);
	if (opts)
		c->opts = *opts;
	if (!c->opts.max_attempts)
		c->opts.max_attempts = DEFAULT_ATTEMPTS;
	if (!c->opts.backoff_base)
		c->opts.backoff_base = DEFAULT_BACKOFF;
	if (!c->opts.backoff_max)
		c->opts.backoff_max = DEFAULT_BACKOFF_MAX;
	if (!c->opts.retry_after_max)
		c->opts.retry_after_max = DEFAULT_RETRY_AFTER_MAX;
	if (!c->opts.sleep)
		c->opts.sleep = default_sleep;
	c->budget_interval = TS_CF_BUDGET_WINDOW / budget;
	c->budget_tolerance = TS_CF_BUDGET_WINDOW - c->budget_interval;
	if (getrandom(&c->rng, sizeof(c->rng), 0) != sizeof(c->rng) || !c->rng)
		c->rng = (uint64_t)ts_now_monotonic() | 1;

	c->base_url = strdup(base);
	if (!c->base_url) {
		r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
		goto fail;
	}
	n = strlen(c->base_url);
	while (n > 0 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	r = check_base_url(c, c->base_url, cfg->allow_plain_http_loopback, err);
	if (r < 0)
		goto fail;
	r = load_credentials(c, cfg, err);
	if (r < 0)
		goto fail;
	r = c->plain_http ? 0 : setup_trust(c, cfg, err);
	if (r < 0)
		goto fail;
	l = curl_slist_append(c->headers, "Accept: application/json");
	if (l)
		c->headers = l;
	l = l ? curl_slist_append(c->headers, "Content-Type: application/json") : NULL;
	if (l)
		c->headers = l;
	l = l ? curl_slist_append(c->headers, "Expect:") : NULL;
	if (!l) {
		r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
		goto fail;
	}
	c->headers = l;

	c->curl = curl_easy_init();
	c->multi = c->curl ? curl_multi_init() : NULL;
	if (!c->curl || !c->multi) {
		r = ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "cannot create an HTTP handle");
		goto fail;
	}
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "tunnelsync/" TUNNELSYNC_VERSION);
	c->auth_node.next = c->headers;
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->auth_line ? &c->auth_node : c->headers);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_MAXAGE_CONN, (long)TS_CF_CONN_MAX_AGE);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->trust_path) {
		/* The bundle is read by trust.c's lookup, not parsed whole into
		 * each connection's store; a declared ca-file is all that is
		 * trusted (the system's hashed folder too otherwise, as libcurl
		 * is built to read it); each connection gets its own store
		 * (libcurl's shared one would keep what was looked up for a
		 * day, whatever the file says by then). */
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, NULL);
		if (cfg->ca_file)
			curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c->curl, CURLOPT_CA_CACHE_TIMEOUT, 0L);
	}
	curl_easy_setopt(c->curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	curl_easy_setopt(c->curl, CURLOPT_SSL_CTX_DATA, c);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, c->plain_http ? "http" : "https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* Plain text carries the credentials: never through a proxy. */
	if (c->plain_http)
		curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, connect_timeout);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, request_timeout);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, xfer_cancel);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
	*ret_client = c;
	return 0;
fail:
	ts_cf_client_free(c);
	return r;
}

void ts_cf_client_free(struct ts_cf_client *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi); /* its connections; no handle is added */
	if (c->curl)
		curl_easy_cleanup(c->curl);
	for (struct curl_slist *l = c->headers; l; l = l->next)
		ts_wipe(l->data, strlen(l->data));
	curl_slist_free_all(c->headers);
	ts_secret_free(c->auth_line);
	ts_secret_free(c->credential);
	free(c->base_url);
	free(c->trust_path);
	free(c);
}

unsigned long ts_cf_client_connects(const struct ts_cf_client *c)
{
	return c->connects;
}

void ts_cf_client_idle(struct ts_cf_client *c, ts_usec_t quiet)
{
	CURLM *m;

	if (!c || c->in_request || quiet <= (ts_usec_t)TS_CF_CONN_MAX_AGE * TS_USEC_PER_SEC)
		return;
	/* The multi handle holds the connections (no transfer is on it
	 * between requests): a new one holds none. */
	m = curl_multi_init();
	if (!m)
		return;
	curl_multi_cleanup(c->multi);
	c->multi = m;
}

static int budget_take(struct ts_cf_client *c, ts_usec_t *ret_wait)
{
	ts_usec_t now = ts_now_monotonic();
	ts_usec_t tat = c->budget_tat > now ? c->budget_tat : now;

	if (tat - now > c->budget_tolerance) {
		*ret_wait = tat - now - c->budget_tolerance;
		return -EAGAIN;
	}
	c->budget_tat = tat + c->budget_interval;
	return 0;
}

unsigned ts_cf_client_budget_available(struct ts_cf_client *c)
{
	ts_usec_t now = ts_now_monotonic();
	ts_usec_t tat = c->budget_tat > now ? c->budget_tat : now;
	ts_usec_t room = c->budget_tolerance - (tat - now) + c->budget_interval;

	return room <= 0 ? 0 : (unsigned)(room / c->budget_interval);
}

static ts_usec_t backoff_delay(struct ts_cf_client *c, unsigned attempt)
{
	ts_usec_t d = c->opts.backoff_base;

	for (unsigned i = 1; i < attempt && d < c->opts.backoff_max; i++)
		d *= 2;
	if (d > c->opts.backoff_max)
		d = c->opts.backoff_max;
	/* Jitter: half fixed, half random, so that agents spread out. */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return d / 2 + (ts_usec_t)(c->rng % (uint64_t)(d / 2 + 1));
}

struct cf_call {
	const char *method; /* GET, POST or PUT */
	const char *suffix; /* after …/magic/ipsec_tunnels */
	bool validate_only;
	const struct cf_buf *body;
	/* May be sent again after it may have reached the server. */
	bool replay_safe;
};

static bool curl_not_sent(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_RESOLVE_PROXY;
}

static bool curl_is_tls(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
	       rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
	       rc == CURLE_SSL_INVALIDCERTSTATUS || rc == CURLE_SSL_CRL_BADFILE;
}

/* A response header over CURL_MAX_HTTP_HEADER (100 KiB): curl 7.88 fails
 * such a transfer with CURLE_OUT_OF_MEMORY (its header buffer has that
 * cap) and no error text; 8.6+ says CURLE_TOO_LARGE. It is the server's
 * answer, not our memory: curl allocates through ts_wipe_malloc(), so an
 * "out of memory" without a failed allocation was a size limit. A retry
 * would get the same answer. */
static bool curl_header_too_large(CURLcode rc, unsigned long alloc_failures_before)
{
	return (rc == CURLE_OUT_OF_MEMORY && ts_wipe_alloc_failures() == alloc_failures_before) ||
	       (int)rc == 100 /* CURLE_TOO_LARGE */;
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	default:
		return -EIO;
	}
}

static const char *call_operation(const struct cf_call *call)
{
	size_t n = strlen(call->suffix);

	if (n == 0)
		return strcmp(call->method, "GET") == 0 ? "list" : "create";
	if (strcmp(call->suffix, "/psk") == 0)
		return "psk_set";
	if (n > 13 && strcmp(call->suffix + n - 13, "/psk_generate") == 0)
		return "psk_generate";
	if (strcmp(call->method, "GET") == 0)
		return "get";
	if (strcmp(call->method, "DELETE") == 0)
		return "delete";
	return "update";
}

void ts_cf_client_set_wait_hook(struct ts_cf_client *c, const struct ts_cf_wait_hook *hook)
{
	if (hook)
		c->wait_hook = *hook;
	else
		memset(&c->wait_hook, 0, sizeof(c->wait_hook));
}

/* One transfer: curl_easy_perform's loop on the client's multi handle,
 * polling the wait hook's descriptors too. While one is readable the
 * hook runs (the transfer waits meanwhile: the kernel buffers what the
 * server sends, curl's timeouts keep counting); it returns non-zero to be
 * left out for the rest of this transfer. A stop still ends the transfer
 * through xfer_cancel, which curl calls at least once a second. */
static CURLcode perform(struct ts_cf_client *c)
{
	CURLcode rc = CURLE_FAILED_INIT;
	CURLMcode mc;
	CURLMsg *msg;
	bool watch = c->wait_hook.ready != NULL;
	int running = 1, queued;
	long connects = 0;

	mc = curl_multi_add_handle(c->multi, c->curl);
	if (mc != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mc));
		return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
	}
	for (;;) {
		struct curl_waitfd w[TS_CF_WAIT_FDS];
		int fds[TS_CF_WAIT_FDS];
		unsigned nw = 0;

		mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK || !running)
			break;
		if (watch && c->wait_hook.fds) {
			for (size_t i = 0; i < TS_CF_WAIT_FDS; i++)
				fds[i] = -1;
			c->wait_hook.fds(c->wait_hook.userdata, fds);
			for (size_t i = 0; i < TS_CF_WAIT_FDS; i++)
				if (fds[i] >= 0)
					w[nw++] =
						(struct curl_waitfd){ .fd = fds[i],
								      .events = CURL_WAIT_POLLIN };
		}
		mc = curl_multi_poll(c->multi, w, nw, 1000, NULL);
		if (mc != CURLM_OK)
			break;
		for (unsigned i = 0; i < nw; i++)
			if (w[i].revents) {
				if (c->wait_hook.ready(c->wait_hook.userdata) != 0)
					watch = false;
				break;
			}
	}
	if (mc != CURLM_OK)
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mc));
	while ((msg = curl_multi_info_read(c->multi, &queued)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->curl)
			rc = msg->data.result;
	if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
	    connects > 0)
		c->connects += (unsigned long)connects;
	curl_multi_remove_handle(c->multi, c->curl);
	return rc;
}

/* Sends the call, with budget and retries. Returns 0 with the final
 * HTTP status and body (any status the caller must interpret), or a
 * negative errno with err set (no usable response). */
static int cf_call_attempts(struct ts_cf_client *c, const struct cf_call *call, struct cf_buf *resp,
			    long *ret_status, struct ts_cf_error *err)
{
	_cleanup_free_ char *url = NULL;
	unsigned attempt = 0;

	if (asprintf(&url, "%s/accounts/%s/magic/ipsec_tunnels%s%s", c->base_url, c->account_id,
		     call->suffix, call->validate_only ? "?validate_only=true" : "") < 0) {
		url = NULL;
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -ENOMEM, "out of memory");
	}
	if (c->in_request)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EBUSY,
				       "a request is under way on this client");
	for (;;) {
		ts_usec_t wait = 0;
		long status = 0;
		curl_off_t retry_after = -1;
		unsigned long alloc_failures;
		CURLcode rc;
		bool last;

		if (ts_cancel_requested())
			return ts_cf_error_set(err, TS_CF_ERR_TRANSPORT, -ECANCELED,
					       "stopping: request not sent");
		if (c->hold_until > ts_now_monotonic()) {
			ts_usec_t left = c->hold_until - ts_now_monotonic();

			if (err)
				err->retry_after = left;
			return ts_cf_error_set(
				err, TS_CF_ERR_BUDGET, -EAGAIN, "%s; next request in %lld s",
				c->hold_rate_limited ? "rate-limited by Cloudflare (Retry-After)"
						     : "backing off after failed calls",
				(long long)((left + TS_USEC_PER_SEC - 1) / TS_USEC_PER_SEC));
		}
		if (budget_take(c, &wait) < 0) {
			if (err)
				err->retry_after = wait;
			return ts_cf_error_set(
				err, TS_CF_ERR_BUDGET, -EAGAIN,
				"request budget exhausted; next request in %lld s",
				(long long)((wait + TS_USEC_PER_SEC - 1) / TS_USEC_PER_SEC));
		}
		attempt++;
		last = attempt >= c->opts.max_attempts;
		if (err)
			err->attempts = attempt;
		buf_release(resp);
		resp->len = 0;
		resp->overflow = false;
		resp->max = MAX_RESPONSE;
		c->errbuf[0] = '\0';

		curl_easy_setopt(c->curl, CURLOPT_URL, url);
		if (call->body) {
			curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
					 strcmp(call->method, "PUT") == 0 ? "PUT" : NULL);
			/* Not COPYPOSTFIELDS: curl sends from our wiped buffer. */
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, call->body->data);
			curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)call->body->len);
		} else {
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
			curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		}
		/* A request that must not be replayed gets a fresh connection:
		 * on a reused keep-alive connection that dies without an answer,
		 * curl itself would resend the request. */
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, call->replay_safe ? 0L : 1L);
		curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE, call->replay_safe ? 0L : 1L);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, resp);
		curl_easy_setopt(c->curl, CURLOPT_VERBOSE, ts_log_enabled(TS_LOG_TRACE) ? 1L : 0L);
		log_debug("%s %s%s (attempt %u)", call->method,
			  call->suffix[0] ? call->suffix : "/",
			  call->validate_only ? " validate_only" : "", attempt);

		alloc_failures = ts_wipe_alloc_failures();
		c->in_request = true;
		rc = perform(c);
		c->in_request = false;
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
		if (c->opts.on_request)
			c->opts.on_request(c->opts.on_request_userdata, call_operation(call),
					   rc == CURLE_OK ? status : 0);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &retry_after);
			if (err)
				err->http_status = status;
			if (status == 429) {
				ts_usec_t delay = retry_after > 0
							  ? (ts_usec_t)retry_after * TS_USEC_PER_SEC
							  : backoff_delay(c, attempt);

				/* No request before it, in this call or any later
				 * one (persisted by the agent across processes). */
				c->hold_until = ts_now_monotonic() + delay;
				c->hold_rate_limited = true;
				if (err)
					err->retry_after = delay;
				if (last || delay > c->opts.retry_after_max)
					break;
				log_debug("HTTP 429: retrying in %lld ms",
					  (long long)(delay / 1000));
				c->opts.sleep(delay, c->opts.sleep_userdata);
				/* Waited out here: the retry may go. */
				c->hold_until = 0;
				continue;
			}
			if (status >= 500) {
				if (!call->replay_safe) {
					ts_cf_parse_error_response(resp->data, resp->len, status,
								   err);
					return ts_cf_error_set(
						err, TS_CF_ERR_OUTCOME_UNKNOWN,
						-TS_CF_EOUTCOME_UNKNOWN,
						"HTTP %ld: the change may or may not have been made",
						status);
				}
				if (last)
					break;
				c->opts.sleep(backoff_delay(c, attempt), c->opts.sleep_userdata);
				continue;
			}
			break;
		}
		if (curl_is_tls(rc))
			return ts_cf_error_set(err, TS_CF_ERR_TLS, -EKEYREJECTED, "TLS: %s",
					       c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		if (rc == CURLE_WRITE_ERROR && resp->overflow)
			return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -EMSGSIZE,
					       "response larger than %u bytes", MAX_RESPONSE);
		if (curl_header_too_large(rc, alloc_failures)) {
			if (!call->replay_safe)
				return ts_cf_error_set(
					err, TS_CF_ERR_OUTCOME_UNKNOWN, -TS_CF_EOUTCOME_UNKNOWN,
					"response header too large (%s): the request "
					"reached Cloudflare, its answer is lost",
					c->errbuf);
			return ts_cf_error_set(
				err, TS_CF_ERR_PROTOCOL, -EMSGSIZE,
				"response header too large (over libcurl's 100 KiB); "
				"not retried");
		}
		if (!curl_not_sent(rc) && !call->replay_safe)
			return ts_cf_error_set(err, TS_CF_ERR_OUTCOME_UNKNOWN,
					       -TS_CF_EOUTCOME_UNKNOWN,
					       "%s: the request may have reached Cloudflare",
					       curl_easy_strerror(rc));
		if (last)
			return ts_cf_error_set(
				err, TS_CF_ERR_TRANSPORT, curl_errno(rc), "%s after %u attempts",
				c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc), attempt);
		log_debug("transport error: %s; retrying", curl_easy_strerror(rc));
		c->opts.sleep(backoff_delay(c, attempt), c->opts.sleep_userdata);
	}
	*ret_status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, ret_status);
	return 0;
}

/* The backoff outlives the call: each call that ends in 5xx or a
 * transport failure doubles the quiet time before the next (backoff_base,
 * 1 s by default, .. 5 min,
 * with jitter); any answered call resets it. */
static int cf_call(struct ts_cf_client *c, const struct cf_call *call, struct cf_buf *resp,
		   long *ret_status, struct ts_cf_error *err)
{
	int r = cf_call_attempts(c, call, resp, ret_status, err);
	bool failed = r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -EIO ||
		      r == -TS_CF_EOUTCOME_UNKNOWN || (r == 0 && *ret_status >= 500);

	if (r == -EAGAIN || r == -ECANCELED || r == -EKEYREJECTED)
		return r;
	if (!failed) {
		c->consecutive_failures = 0;
		if (r < 0 || *ret_status != 429) {
			c->hold_until = 0;
			c->hold_rate_limited = false;
		}
		return r;
	}
	if (c->consecutive_failures < 16)
		c->consecutive_failures++;
	{
		ts_usec_t d = c->opts.backoff_base << (c->consecutive_failures - 1);

		if (d > TS_CF_BACKOFF_ACROSS_MAX)
			d = TS_CF_BACKOFF_ACROSS_MAX;
		c->rng ^= c->rng << 13;
		c->rng ^= c->rng >> 7;
		c->rng ^= c->rng << 17;
		d = d / 2 + (ts_usec_t)(c->rng % (uint64_t)(d / 2 + 1));
		c->hold_until = ts_now_monotonic() + d;
		c->hold_rate_limited = false;
	}
	return r;
}

void ts_cf_client_set_observer(struct ts_cf_client *c,
			       void (*on_request)(void *userdata, const char *operation,
						  long http_status),
			       void *userdata)
{
	c->opts.on_request = on_request;
	c->opts.on_request_userdata = userdata;
}

void ts_cf_client_state_get(const struct ts_cf_client *c, struct ts_cf_client_state *ret_state)
{
	ts_usec_t mono = ts_now_monotonic(), wall = ts_now_realtime();

	*ret_state = (struct ts_cf_client_state){
		.budget_tat = c->budget_tat > mono ? wall + (c->budget_tat - mono) : 0,
		.hold_until = c->hold_until > mono ? wall + (c->hold_until - mono) : 0,
		.rate_limited = c->hold_until > mono && c->hold_rate_limited,
		.consecutive_failures = c->consecutive_failures,
	};
}

void ts_cf_client_state_set(struct ts_cf_client *c, const struct ts_cf_client_state *state)
{
	ts_usec_t mono = ts_now_monotonic(), wall = ts_now_realtime();

	/* Later of the two: a state never makes the client less careful. */
	if (state->budget_tat > wall && mono + (state->budget_tat - wall) > c->budget_tat)
		c->budget_tat = mono + (state->budget_tat - wall);
	if (state->hold_until > wall && mono + (state->hold_until - wall) > c->hold_until) {
		c->hold_until = mono + (state->hold_until - wall);
		c->hold_rate_limited = state->rate_limited;
	}
	if (state->consecutive_failures > c->consecutive_failures)
		c->consecutive_failures = state->consecutive_failures;
}

int ts_cf_list_tunnels(struct ts_cf_client *c, struct ts_cf_tunnel_list *ret_list,
		       struct ts_cf_error *err)
{
	struct cf_call call = { .method = "GET", .suffix = "", .replay_safe = true };
	struct cf_buf resp = { 0 };
	long status;
	int r;

	ts_cf_error_done(err);
	r = cf_call(c, &call, &resp, &status, err);
	if (r >= 0)
		r = ts_cf_parse_tunnel_list(resp.data, resp.len, status, ret_list, err);
	buf_release(&resp);
	return r;
}

int ts_cf_get_tunnel(struct ts_cf_client *c, const char *tunnel_id, struct ts_cf_tunnel *ret_tunnel,
		     struct ts_cf_error *err)
{
	struct cf_call call = { .method = "GET", .replay_safe = true };
	struct cf_buf resp = { 0 };
	char suffix[TS_CF_ID_LEN + 2];
	long status;
	int r;

	ts_cf_error_done(err);
	if (!ts_cf_id_valid(tunnel_id))
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL, "invalid tunnel id");
	snprintf(suffix, sizeof(suffix), "/%s", tunnel_id);
	call.suffix = suffix;
	r = cf_call(c, &call, &resp, &status, err);
	if (r >= 0)
		r = ts_cf_parse_tunnel_single(resp.data, resp.len, status, ret_tunnel, err);
	buf_release(&resp);
	return r;
}

int ts_cf_update_tunnel(struct ts_cf_client *c, const struct ts_tunnel *t, bool validate_only,
			struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err)
{
	struct cf_call get = { .method = "GET", .replay_safe = true };
	struct cf_call put = { .method = "PUT", .replay_safe = true };
	struct cf_buf resp = { 0 }, body = { 0 };
	char suffix[TS_CF_ID_LEN + 2];
	char *text = NULL;
	size_t len = 0;
	long status;
	int r;

	ts_cf_error_done(err);
	if (!t || !ts_cf_id_valid(t->id))
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL, "invalid tunnel id");
	snprintf(suffix, sizeof(suffix), "/%s", t->id);
	get.suffix = put.suffix = suffix;
	put.validate_only = validate_only;
	/* Read first: the update carries every property, and those the
	 * config does not declare must keep Cloudflare's current values. */
	r = cf_call(c, &get, &resp, &status, err);
	if (r >= 0)
		r = ts_cf_build_tunnel_update(resp.data, resp.len, status, t, &text, &len, err);
	buf_release(&resp);
	if (r < 0)
		return r;
	r = buf_append(&body, text, len);
	free(text);
	if (r < 0) {
		buf_release(&body);
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r, "out of memory");
	}
	put.body = &body;
	/* PUT is idempotent: the same body again sets the same values. */
	r = cf_call(c, &put, &resp, &status, err);
	if (r >= 0)
		r = ts_cf_parse_tunnel_modified(resp.data, resp.len, status, ret_tunnel, err);
	buf_release(&resp);
	buf_release(&body);
	return r;
}

/* Appends s as a JSON string body; PSKs are printable ASCII (checked). */
static int buf_put_json_string(struct cf_buf *b, const char *s, size_t len)
{
	int r = buf_puts(b, "\"");

	for (size_t i = 0; r >= 0 && i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			char esc[2] = { '\\', s[i] };

			r = buf_append(b, esc, 2);
		} else {
			r = buf_append(b, &s[i], 1);
		}
	}
	return r < 0 ? r : buf_puts(b, "\"");
}

static bool psk_printable(const struct ts_secret *s)
{
	const char *p = ts_secret_str(s);
	size_t n = ts_secret_len(s);

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			return false;
	return true;
}

int ts_cf_psk_set(struct ts_cf_client *c, const struct ts_cf_psk_entry *entries, size_t n_entries,
		  bool validate_only, struct ts_cf_psk_set_result *ret_result,
		  struct ts_cf_error *err)
{
	struct cf_call call = { .method = "POST",
				.suffix = "/psk",
				.validate_only = validate_only,
				.replay_safe = true };
	struct cf_buf body = { 0 }, resp = { 0 };
	long status;
	int r;

	ts_cf_error_done(err);
	if (n_entries == 0)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL, "no PSK to set");
	for (size_t i = 0; i < n_entries; i++) {
		if (!ts_cf_id_valid(entries[i].tunnel_id))
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "entry %zu: invalid tunnel id", i);
		if (!entries[i].psk || !psk_printable(entries[i].psk))
			return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
					       "tunnel %s: the PSK must be printable ASCII",
					       entries[i].tunnel_id);
		for (size_t j = 0; j < i; j++)
			if (ts_streq(entries[i].tunnel_id, entries[j].tunnel_id))
				return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL,
						       "tunnel %s listed twice",
						       entries[i].tunnel_id);
	}
	/* The body is built by hand into a wiped buffer: a serializer's
	 * output would be a heap copy of every key. */
	r = buf_puts(&body, "{\"psks\":[");
	for (size_t i = 0; r >= 0 && i < n_entries; i++) {
		r = buf_puts(&body, i ? ",{\"id\":\"" : "{\"id\":\"");
		if (r >= 0)
			r = buf_puts(&body, entries[i].tunnel_id);
		if (r >= 0)
			r = buf_puts(&body, "\",\"psk\":");
		if (r >= 0)
			r = buf_put_json_string(&body, ts_secret_str(entries[i].psk),
						ts_secret_len(entries[i].psk));
		if (r >= 0)
			r = buf_puts(&body, "}");
	}
	if (r >= 0)
		r = buf_puts(&body, "]}");
	if (r < 0) {
		buf_release(&body);
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r, "cannot build the request");
	}
	call.body = &body;
	r = cf_call(c, &call, &resp, &status, err);
	buf_release(&body);
	if (r >= 0)
		r = ts_cf_parse_psk_set(resp.data, resp.len, status, entries, n_entries, ret_result,
					err);
	buf_release(&resp);
	return r;
}

int ts_cf_psk_generate(struct ts_cf_client *c, const char *tunnel_id, bool validate_only,
		       struct ts_cf_psk_generated *ret_generated, struct ts_cf_error *err)
{
	struct cf_call call = { .method = "POST", .validate_only = validate_only };
	struct cf_buf body = { 0 }, resp = { 0 };
	char suffix[TS_CF_ID_LEN + 16];
	long status;
	int r;

	ts_cf_error_done(err);
	if (!ts_cf_id_valid(tunnel_id))
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, -EINVAL, "invalid tunnel id");
	snprintf(suffix, sizeof(suffix), "/%s/psk_generate", tunnel_id);
	call.suffix = suffix;
	/* Validation changes nothing, so only then is a replay harmless. */
	call.replay_safe = validate_only;
	r = buf_puts(&body, "{}");
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_CONFIG, r, "out of memory");
	call.body = &body;
	r = cf_call(c, &call, &resp, &status, err);
	buf_release(&body);
	if (r >= 0) {
		r = ts_cf_parse_psk_generate(resp.data, resp.len, status, c->account_id, tunnel_id,
					     validate_only, ret_generated, err);
		/* A 2xx we cannot read means a key was probably made and lost. */
		if (r == -EBADMSG && !validate_only && status >= 200 && status < 300)
			r = ts_cf_error_set(err, TS_CF_ERR_OUTCOME_UNKNOWN, -TS_CF_EOUTCOME_UNKNOWN,
					    "HTTP %ld with an unreadable body: a key may have "
					    "been generated",
					    status);
	}
	buf_release(&resp);
	return r;
}
