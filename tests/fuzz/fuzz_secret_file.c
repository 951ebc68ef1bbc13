/* Fuzz target for the key and token files: the bytes after the first are
 * written to a file that is read as
 *   byte 0 % 3 == 0: the API token file (Cloudflare client: Bearer header),
 *                 1: the API key file of email + key authentication,
 *                 2: a tunnel's PSK file (source "file"), rendered into a
 *                    load-shared message for charon.
 * What is accepted must be what the file holds, less one trailing newline
 * (and carriage return), never empty, never with a NUL or a line break;
 * a credential that reaches an HTTP header must be printable without spaces
 * (no header injection). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloudflare/cloudflare.h"
#include "core/log.h"
#include "core/secret.h"
#include "ike/ike.h"
#include "ike/vici.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/ts-fuzz-secret-XXXXXX";
static char path[64];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void check_content(const struct ts_secret *s, const uint8_t *data, size_t size)
{
	size_t len = ts_secret_len(s);

	if (len == 0 || len > size || memcmp(ts_secret_str(s), data, len) != 0 ||
	    memchr(ts_secret_str(s), '\n', len) || memchr(ts_secret_str(s), '\0', len))
		abort();
	/* Only a newline, then a carriage return, may be cut. */
	if (size - len > 2 || (size > len && data[size - 1] != '\n' && data[size - 1] != '\r'))
		abort();
}

static void credential(const char *file, bool email_key)
{
	struct ts_cloudflare_config cfg = {
		.account_id = "023e105f4ecef8ad9ca31a8372d0c353",
		.api_base_url = "https://api.cloudflare.com/client/v4",
		.auth = email_key ? TS_CF_AUTH_EMAIL_KEY : TS_CF_AUTH_TOKEN,
		.token_file = email_key ? NULL : (char *)file,
		.email = email_key ? "ops@example.com" : NULL,
		.key_file = email_key ? (char *)file : NULL,
	};
	struct ts_cf_client *c = NULL;
	struct ts_cf_error err = { 0 };
	struct ts_secret *s = NULL;

	if (ts_cf_client_new(&cfg, NULL, &c, &err) == 0) {
		if (ts_secret_from_file(file, &s, NULL) < 0)
			abort();
		for (size_t i = 0; i < ts_secret_len(s); i++)
			if ((unsigned char)ts_secret_str(s)[i] <= 0x20 ||
			    (unsigned char)ts_secret_str(s)[i] >= 0x7f)
				abort();
		ts_secret_free(s);
		ts_cf_client_free(c);
	} else if (!err.detail[0]) {
		abort(); /* a refusal says why */
	}
	ts_cf_error_done(&err);
}

static void psk(const char *file, const uint8_t *data, size_t size)
{
	static const struct ts_tunnel t = {
		.name = "t1",
		.id = "0123456789abcdef0123456789abcdef",
		.customer_endpoint = { AF_INET, { 192, 0, 2, 1 } },
		.cloudflare_endpoint = { AF_INET, { 192, 0, 2, 2 } },
	};
	struct ts_vici_node *msg = NULL;
	struct ts_secret *s = NULL;
	uint8_t *buf;
	size_t len;
	bool secret;

	if (ts_secret_from_file(file, &s, NULL) < 0)
		return;
	check_content(s, data, size);
	if (ts_ike_render_shared(&t, "023e105f4ecef8ad9ca31a8372d0c353", s, &msg) == 0) {
		if (ts_vici_packet_encode(TS_VICI_CMD_REQUEST, "load-shared", msg, &buf, &len,
					  &secret) < 0 ||
		    !secret)
			abort();
		ts_wipe(buf, len);
		free(buf);
		ts_vici_node_free(msg);
	}
	ts_secret_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd;

	if (!path[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/secret", dir);
		atexit(cleanup);
		ts_log_set_level(TS_LOG_ERROR);
	}
	if (size == 0)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)))
		abort();
	close(fd);
	switch (data[0] % 3) {
	case 0:
		credential(path, false);
		break;
	case 1:
		credential(path, true);
		break;
	default:
		psk(path, data + 1, size - 1);
		break;
	}
	return 0;
}
