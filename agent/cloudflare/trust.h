/* Internal to agent/cloudflare/: the API's trust anchors, read from a PEM
 * bundle when a handshake asks for them (trust.c says why). Exposed for
 * the client and its tests; not part of the public API. */
#pragma once

#include <stddef.h>

/* Checks that path is a regular file that can be read without blocking
 * and holds at least one certificate, every PEM block of it decoding.
 * Returns 0, or a negative errno with a message naming the file in msg. */
int ts_cf_trust_check(const char *path, char *msg, size_t size);

/* Adds to the store of ssl_ctx (an SSL_CTX *) a lookup that reads path's
 * certificates of a subject when chain building asks for that subject.
 * Returns 0 or -ENOMEM. */
int ts_cf_trust_attach(void *ssl_ctx, const char *path);

/* Certificates the lookups have added to stores since the start (tests:
 * a handshake through a bundle of many roots loads the one it needs). */
unsigned long ts_cf_trust_loaded(void);
