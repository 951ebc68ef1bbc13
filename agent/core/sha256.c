/* SHA-256 over a 64-byte block buffer: the x86 SHA extensions where the
 * CPU has them (fingerprints and record checksums of every state file are
 * a tenth of a pass at 1,000 tunnels), else a straightforward portable
 * compression; both give the same digests (test-core). */
#include "core/sha256.h"

#include <stdbool.h>
#include <string.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

/* The portable compression of n blocks. */
static void compress_portable(uint32_t st[8], const uint8_t *blk, size_t n)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;

	for (; n > 0; n--, blk += 64) {
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
			       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6],
		h = st[7];
		for (int i = 0; i < 64; i++) {
			uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
				      ((e & f) ^ (~e & g)) + K[i] + w[i];
			uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
				      ((a & b) ^ (a & c) ^ (b & c));

			h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
		}
		st[0] += a, st[1] += b, st[2] += c, st[3] += d;
		st[4] += e, st[5] += f, st[6] += g, st[7] += h;
	}
	explicit_bzero(w, sizeof(w));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

/* The x86 SHA extensions (SHA-NI): two rounds per sha256rnds2 over the
 * state held as ABEF and CDGH (element 3 first), the message schedule
 * by sha256msg1/msg2, four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t st[8],
								       const uint8_t *blk, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i dcba = _mm_loadu_si128((const __m128i *)&st[0]);
	__m128i hgfe = _mm_loadu_si128((const __m128i *)&st[4]);
	__m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);	  /* elements b a d c */
	__m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);	  /* elements h g f e */
	__m128i abef = _mm_alignr_epi8(cdab, efgh, 8);	  /* f e b a */
	__m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0); /* h g d c */

	for (; n > 0; n--, blk += 64) {
		__m128i abef0 = abef, cdgh0 = cdgh, w[4];

		for (int i = 0; i < 4; i++)
			w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk + 16 * i)),
						bswap);
		for (int g = 0; g < 16; g++) {
			__m128i *m = &w[g & 3];
			__m128i wk = _mm_add_epi32(*m, _mm_loadu_si128((const __m128i *)&K[4 * g]));

			/* rnds2 makes the new ABEF; the old ABEF is the new
			 * CDGH: after two calls each is back in its place. */
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
			if (g < 12) {
				/* W[4g+16..4g+19] from W[4g..4g+15]. */
				__m128i next = _mm_sha256msg1_epu32(*m, w[(g + 1) & 3]);

				next = _mm_add_epi32(
					next, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
				*m = _mm_sha256msg2_epu32(next, w[(g + 3) & 3]);
			}
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
	}
	{
		__m128i feba = _mm_shuffle_epi32(abef, 0x1B); /* a b e f */
		__m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1); /* g h c d */

		_mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(feba, dchg, 0xF0));
		_mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(dchg, feba, 8));
	}
}

static bool cpu_has_shani(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
		return false;
	return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#define HAVE_SHANI 1
#else
#define HAVE_SHANI 0
#endif

/* -1: not decided yet; then 0 portable, 1 SHA-NI (when the CPU has it). */
static int use_accel = -1;

bool ts_sha256_accel(int want)
{
#if HAVE_SHANI
	bool have = cpu_has_shani();
#else
	bool have = false;
#endif
	if (want >= 0)
		use_accel = want && have;
	return have;
}

static void compress(uint32_t st[8], const uint8_t *blk, size_t n)
{
	if (use_accel < 0)
		(void)ts_sha256_accel(1);
#if HAVE_SHANI
	if (use_accel) {
		compress_shani(st, blk, n);
		return;
	}
#endif
	compress_portable(st, blk, n);
}

void ts_sha256_init(struct ts_sha256_ctx *ctx)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	memcpy(ctx->state, iv, sizeof(iv));
	ctx->bits = 0;
	ctx->fill = 0;
}

void ts_sha256_update(struct ts_sha256_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;

	ctx->bits += (uint64_t)len * 8;
	if (ctx->fill) {
		size_t take = 64 - ctx->fill;

		if (take > len)
			take = len;
		memcpy(ctx->block + ctx->fill, p, take);
		ctx->fill += take;
		p += take;
		len -= take;
		if (ctx->fill < 64)
			return;
		compress(ctx->state, ctx->block, 1);
		ctx->fill = 0;
	}
	/* Whole blocks straight from the input. */
	if (len >= 64) {
		compress(ctx->state, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	memcpy(ctx->block, p, len);
	ctx->fill = len;
}

void ts_sha256_final(struct ts_sha256_ctx *ctx, uint8_t digest[TS_SHA256_DIGEST_LEN])
{
	uint64_t bits = ctx->bits;

	ctx->block[ctx->fill++] = 0x80;
	if (ctx->fill > 56) {
		memset(ctx->block + ctx->fill, 0, 64 - ctx->fill);
		compress(ctx->state, ctx->block, 1);
		ctx->fill = 0;
	}
	memset(ctx->block + ctx->fill, 0, 56 - ctx->fill);
	for (int i = 0; i < 8; i++)
		ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	compress(ctx->state, ctx->block, 1);
	for (int i = 0; i < 8; i++) {
		digest[4 * i] = (uint8_t)(ctx->state[i] >> 24);
		digest[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
		digest[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
		digest[4 * i + 3] = (uint8_t)ctx->state[i];
	}
	explicit_bzero(ctx, sizeof(*ctx));
}

void ts_sha256(const void *data, size_t len, uint8_t digest[TS_SHA256_DIGEST_LEN])
{
	struct ts_sha256_ctx ctx;

	ts_sha256_init(&ctx);
	ts_sha256_update(&ctx, data, len);
	ts_sha256_final(&ctx, digest);
}

void ts_sha256_hex(const uint8_t digest[TS_SHA256_DIGEST_LEN], char out[65])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < TS_SHA256_DIGEST_LEN; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[64] = '\0';
}
