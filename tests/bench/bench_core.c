/* Figures for core/: SHA-256 throughput (fingerprints, config hashes) and
 * the cost of redacting a log line with live secrets registered. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/secret.h"
#include "core/sha256.h"
#include "core/timeutil.h"

int main(void)
{
	static char buf[1 << 20];
	uint8_t d[TS_SHA256_DIGEST_LEN];
	struct ts_secret *secrets[100];
	char line[512];
	ts_usec_t t0, t1;
	int rounds = 64;

	memset(buf, 'x', sizeof(buf));
	t0 = ts_now_monotonic();
	for (int i = 0; i < rounds; i++)
		ts_sha256(buf, sizeof(buf), d);
	t1 = ts_now_monotonic();
	printf("sha256: %.1f MiB/s\n", rounds / ((double)(t1 - t0) / 1e6));

	for (int i = 0; i < 100; i++)
		ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &secrets[i]);
	t0 = ts_now_monotonic();
	for (int i = 0; i < 10000; i++) {
		snprintf(line, sizeof(line),
			 "tunnel gw-%d rotated, fingerprint sha256:0123456789abcdef", i);
		ts_secret_redact(line, sizeof(line));
	}
	t1 = ts_now_monotonic();
	printf("redact (100 live secrets, 60-byte line): %.2f us/line\n",
	       (double)(t1 - t0) / 10000);
	for (int i = 0; i < 100; i++)
		ts_secret_free(secrets[i]);
	return 0;
}
