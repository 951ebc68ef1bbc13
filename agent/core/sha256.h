/* SHA-256 (FIPS 180-4), used for key fingerprints and config content
 * hashes. Not for secrets' protection: fingerprints are truncated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_SHA256_DIGEST_LEN 32

struct ts_sha256_ctx {
	uint32_t state[8];
	uint64_t bits;
	uint8_t block[64];
	size_t fill;
};

void ts_sha256_init(struct ts_sha256_ctx *ctx);
void ts_sha256_update(struct ts_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void ts_sha256_final(struct ts_sha256_ctx *ctx, uint8_t digest[TS_SHA256_DIGEST_LEN]);
void ts_sha256(const void *data, size_t len, uint8_t digest[TS_SHA256_DIGEST_LEN]);
/* Whether this CPU has the SHA extensions; want 0 or 1 turns their use
 * off or on (on only where present; tests compare both), -1 leaves it. */
bool ts_sha256_accel(int want);
/* 64 lowercase hex digits + NUL. */
void ts_sha256_hex(const uint8_t digest[TS_SHA256_DIGEST_LEN], char out[65]);
