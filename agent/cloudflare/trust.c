/* The API client's trust anchors, read when a handshake asks for them.
 *
 * libcurl given a CA bundle (CURLOPT_CAINFO) parses every certificate of
 * it into each new connection's store: with the system's 144 roots that
 * is 0.9 MiB of the idle daemon's heap, held as long as the kept-alive
 * connection lives, to verify a chain that needs one of them
 * (tests/bench/idle-scale.sh TLS=system). Here the bundle is instead a
 * lookup of the connection's store, as a hashed certificate folder is:
 * when OpenSSL's chain building asks for the certificates of a subject
 * (the issuer it looks for, or, with partial chains, a certificate of the
 * chain itself), the bundle is read again and the certificates whose
 * subject equals it are added to the store; nothing else is parsed.
 *
 * What is trusted does not change: the same file, read as OpenSSL's file
 * lookup reads it (CERTIFICATE, X509 CERTIFICATE and TRUSTED CERTIFICATE
 * blocks, the last with its trust settings), its names compared as
 * OpenSSL compares them (X509_NAME_cmp: canonical form). CRLs in a bundle
 * are not used (libcurl checks none without CURLOPT_CRLFILE either). The
 * file is read at each lookup, not once: a bundle replaced under a
 * running daemon (a mounted ConfigMap) is what the next connection
 * trusts, as before; it is opened as every file the agent reads is (never
 * blocking, regular files only). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudflare/trust.h"
#include "core/fileio.h"
#include "core/log.h"

#define MAX_BUNDLE (16u << 20)
#define PLANE	   "cloudflare"

static atomic_ulong loaded;

unsigned long ts_cf_trust_loaded(void)
{
	return atomic_load(&loaded);
}

/* One DER TLV at *p (definite lengths only, as DER has): its whole
 * encoding in [*tlv, *tlv + *tlv_len), its contents from *val; *p moves
 * past it. */
static bool der_next(const unsigned char **p, const unsigned char *end, unsigned char *tag,
		     const unsigned char **val, size_t *len)
{
	const unsigned char *q = *p;
	size_t l, n;

	if (end - q < 2)
		return false;
	*tag = q[0];
	l = q[1];
	q += 2;
	if (l & 0x80) {
		n = l & 0x7f;
		if (n == 0 || n > sizeof(size_t) - 1 || (size_t)(end - q) < n)
			return false;
		for (l = 0; n > 0; n--)
			l = l << 8 | *q++;
	}
	if ((size_t)(end - q) < l)
		return false;
	*val = q;
	*len = l;
	*p = q + l;
	return true;
}

/* The subject Name's DER inside a certificate's DER, without decoding
 * the rest (its public key above all: the costly part of d2i_X509):
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
 * OPTIONAL, serialNumber, signature, issuer, validity, subject, ... } }. */
static bool der_subject(const unsigned char *der, size_t len, const unsigned char **ret,
			size_t *ret_len)
{
	const unsigned char *p = der, *end = der + len, *val, *start;
	unsigned char tag;
	size_t l;

	if (!der_next(&p, end, &tag, &val, &l) || tag != 0x30)
		return false;
	p = val;
	end = val + l;
	if (!der_next(&p, end, &tag, &val, &l) || tag != 0x30)
		return false;
	p = val;
	end = val + l;
	start = p;
	if (!der_next(&p, end, &tag, &val, &l))
		return false;
	if (tag == 0xa0) /* version */
		start = p;
	else
		p = start;
	/* serialNumber, signature, issuer, validity */
	for (int i = 0; i < 4; i++)
		if (!der_next(&p, end, &tag, &val, &l))
			return false;
	start = p;
	if (!der_next(&p, end, &tag, &val, &l) || tag != 0x30)
		return false;
	*ret = start;
	*ret_len = (size_t)(p - start);
	return true;
}

enum block_kind {
	BLOCK_OTHER,
	BLOCK_CERT,
	BLOCK_TRUSTED
};

static enum block_kind block_kind(const char *name)
{
	if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0)
		return BLOCK_CERT;
	if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0)
		return BLOCK_TRUSTED;
	return BLOCK_OTHER;
}

/* Calls fn for each certificate block of the bundle's text, in order,
 * with its DER; stops when fn returns non-zero (returned). A block that
 * does not decode ends the walk with -EBADMSG and its number in
 * *ret_block; the end of the text is 0. OpenSSL's error queue is left as
 * it was. */
static int walk_bundle(const char *text, size_t len, unsigned *ret_block,
		       int (*fn)(enum block_kind kind, const unsigned char *der, size_t der_len,
				 void *userdata),
		       void *userdata)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	unsigned block = 0;
	int r = 0;

	if (!bio)
		return -ENOMEM;
	ERR_set_mark();
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long der_len = 0;
		enum block_kind kind;

		if (!PEM_read_bio(bio, &name, &header, &der, &der_len)) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
			    ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
				r = -EBADMSG;
			block++;
			break;
		}
		block++;
		kind = block_kind(name);
		if (kind != BLOCK_OTHER)
			r = fn(kind, der, (size_t)der_len, userdata);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		if (r != 0)
			break;
	}
	ERR_pop_to_mark();
	BIO_free(bio);
	if (ret_block)
		*ret_block = block;
	return r;
}

struct check_ctx {
	unsigned certs;
	bool bad;
};

static int check_one(enum block_kind kind, const unsigned char *der, size_t der_len, void *userdata)
{
	struct check_ctx *cc = userdata;
	const unsigned char *subject;
	size_t subject_len;

	(void)kind;
	if (!der_subject(der, der_len, &subject, &subject_len)) {
		cc->bad = true;
		return 1;
	}
	cc->certs++;
	return 0;
}

int ts_cf_trust_check(const char *path, char *msg, size_t size)
{
	struct check_ctx cc = { 0 };
	char *text = NULL;
	size_t len = 0;
	unsigned block = 0;
	int r;

	r = ts_file_read_all(path, MAX_BUNDLE, &text, &len);
	if (r < 0) {
		snprintf(msg, size, "CA file %s: %s", path, ts_file_strerror(r));
		return r;
	}
	r = walk_bundle(text, len, &block, check_one, &cc);
	free(text);
	if (r == -ENOMEM) {
		snprintf(msg, size, "CA file %s: out of memory", path);
		return r;
	}
	if (r < 0 || cc.bad) {
		snprintf(msg, size,
			 "CA file %s: PEM block %u is not a certificate that can be read", path,
			 block);
		return -EBADMSG;
	}
	if (cc.certs == 0) {
		snprintf(msg, size, "CA file %s: no PEM certificate in it", path);
		return -EBADMSG;
	}
	return 0;
}

struct lookup_ctx {
	X509_STORE *store;
	const X509_NAME *name;
	unsigned added;
	bool failed;
};

static int lookup_one(enum block_kind kind, const unsigned char *der, size_t der_len,
		      void *userdata)
{
	struct lookup_ctx *lc = userdata;
	const unsigned char *subject, *p;
	size_t subject_len;
	X509_NAME *name;
	X509 *x;
	int cmp;

	if (!der_subject(der, der_len, &subject, &subject_len))
		return 0;
	p = subject;
	name = d2i_X509_NAME(NULL, &p, (long)subject_len);
	if (!name)
		return 0;
	cmp = X509_NAME_cmp(name, lc->name);
	X509_NAME_free(name);
	if (cmp != 0)
		return 0;
	p = der;
	x = kind == BLOCK_TRUSTED ? d2i_X509_AUX(NULL, &p, (long)der_len)
				  : d2i_X509(NULL, &p, (long)der_len);
	if (!x)
		return 0;
	/* The store takes its own reference (none for a duplicate). */
	if (!X509_STORE_add_cert(lc->store, x))
		lc->failed = true;
	else
		lc->added++;
	X509_free(x);
	return lc->failed;
}

/* Adds every certificate of the bundle with this subject to the lookup's
 * store and answers with one of the store's, a pointer it owns, as
 * OpenSSL's own lookups answer (X509_STORE_CTX_get_by_subject takes the
 * reference its caller gets). */
static int by_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name,
		      X509_OBJECT *ret)
{
	const char *path = X509_LOOKUP_get_method_data(lu);
	struct lookup_ctx lc = { .store = X509_LOOKUP_get_store(lu), .name = name };
	X509_OBJECT *obj;
	X509 *x = NULL;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (type != X509_LU_X509 || !path || !lc.store)
		return 0;
	r = ts_file_read_all(path, MAX_BUNDLE, &text, &len);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, PLANE, NULL, "CA file %s: %s", path, ts_file_strerror(r));
		return 0;
	}
	r = walk_bundle(text, len, NULL, lookup_one, &lc);
	free(text);
	if (r == -ENOMEM || lc.added == 0)
		return 0;
	atomic_fetch_add(&loaded, lc.added);
	if (!X509_STORE_lock(lc.store))
		return 0;
	obj = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(lc.store), X509_LU_X509,
					      name);
	x = obj ? X509_OBJECT_get0_X509(obj) : NULL;
	/* set1 takes a reference that the answer must not hold. */
	r = x && X509_OBJECT_set1_X509(ret, x);
	X509_STORE_unlock(lc.store);
	if (r)
		X509_free(x);
	return r;
}

static void lookup_free(X509_LOOKUP *lu)
{
	free(X509_LOOKUP_get_method_data(lu));
}

static X509_LOOKUP_METHOD *method;

static void method_init(void)
{
	X509_LOOKUP_METHOD *m = X509_LOOKUP_meth_new("tunnelsync CA bundle");

	if (!m)
		return;
	if (!X509_LOOKUP_meth_set_get_by_subject(m, by_subject) ||
	    !X509_LOOKUP_meth_set_free(m, lookup_free)) {
		X509_LOOKUP_meth_free(m);
		return;
	}
	method = m;
}

int ts_cf_trust_attach(void *ssl_ctx, const char *path)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);
	X509_LOOKUP *lu;
	char *copy;

	pthread_once(&once, method_init);
	if (!method || !store)
		return -ENOMEM;
	lu = X509_STORE_add_lookup(store, method);
	if (!lu)
		return -ENOMEM;
	if (X509_LOOKUP_get_method_data(lu))
		return 0; /* this store has it already */
	copy = strdup(path);
	if (!copy || !X509_LOOKUP_set_method_data(lu, copy)) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}
