/* Owns the emulator processes of the Cloudflare tests and their admin
 * calls (a plain libcurl + jansson client of /__admin). */
#include "emu.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EMULATOR TS_TEST_SOURCE_DIR "/../contrib/cf-emulator/cf_emulator.py"
#define MAKE_CA	 TS_TEST_SOURCE_DIR "/cloudflare/make-test-ca.sh"

static const char seed_json[] =
	"{\"tunnels\":["
	"{\"id\":\"" EMU_TUNNEL1 "\",\"name\":\"edge-a\",\"description\":\"first\","
	"\"cloudflare_endpoint\":\"203.0.113.1\",\"customer_endpoint\":\"198.51.100.2\","
	"\"interface_address\":\"10.0.0.0/31\",\"interface_address6\":"
	"\"2606:54c1:7:0:a9fe:12d2:1:200/127\",\"replay_protection\":true,"
	"\"custom_remote_identities\":{\"fqdn_id\":\"a." EMU_ACCOUNT
	".custom.ipsec.cloudflare.com\"},"
	"\"psk\":\"" EMU_SEED_PSK "\",\"psk_metadata\":{\"last_generated_on\":"
	"\"2026-01-02T03:04:05Z\"},\"created_on\":\"2025-12-01T00:00:00Z\"},"
	"{\"id\":\"" EMU_TUNNEL2 "\",\"name\":\"edge-b\","
	"\"cloudflare_endpoint\":\"203.0.113.2\",\"interface_address\":\"10.0.0.2/31\"}"
	"]}";

static int write_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	n = write(fd, content, strlen(content));
	close(fd);
	return n == (ssize_t)strlen(content) ? 0 : -1;
}

static int run_wait(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int emu_prepare_dir(char *dir, size_t size)
{
	char *argv[] = { "/bin/sh", MAKE_CA, dir, NULL };

	snprintf(dir, size, "/tmp/ts-cf-test-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(dir))
		return -1;
	if (run_wait(argv) < 0)
		return -1;
	if (write_file(dir, "token", EMU_TOKEN "\n") < 0 ||
	    write_file(dir, "apikey", EMU_API_KEY "\n") < 0 ||
	    write_file(dir, "bad-token", "tstoken-not-the-right-one\n") < 0 ||
	    write_file(dir, "seed.json", seed_json) < 0)
		return -1;
	return 0;
}

void emu_remove_dir(const char *dir)
{
	char *argv[] = { "/bin/rm", "-rf", (char *)dir, NULL };

	if (dir[0] && strncmp(dir, "/tmp/ts-cf-test-", 16) == 0)
		run_wait(argv);
}

int emu_start(struct emu *e, const char *dir, bool tls, const char *name)
{
	char port_file[300], pid_file[300], token[300], key[300], seed[300], cert[300], tlskey[300],
		hook[400];
	pid_t pid;

	memset(e, 0, sizeof(*e));
	e->tls = tls;
	snprintf(e->dir, sizeof(e->dir), "%s", dir);
	snprintf(port_file, sizeof(port_file), "%s/%s.port", dir, name);
	snprintf(pid_file, sizeof(pid_file), "%s/%s.pid", dir, name);
	snprintf(token, sizeof(token), "%s/token", dir);
	snprintf(key, sizeof(key), "%s/apikey", dir);
	snprintf(seed, sizeof(seed), "%s/seed.json", dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(tlskey, sizeof(tlskey), "%s/server.key", dir);
	snprintf(e->stderr_path, sizeof(e->stderr_path), "%s/%s.stderr", dir, name);
	/* The hook gets the key on stdin and the tunnel id as $1. */
	snprintf(hook, sizeof(hook), "/bin/sh -c 'cat > %s/hook-$1.key' hook", dir);
	unlink(port_file);

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(e->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char *argv[32];
		int n = 0;

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		argv[n++] = "/usr/bin/python3";
		argv[n++] = EMULATOR;
		argv[n++] = "--verbose";
		argv[n++] = "--account-id";
		argv[n++] = EMU_ACCOUNT;
		argv[n++] = "--token-file";
		argv[n++] = token;
		argv[n++] = "--email";
		argv[n++] = EMU_EMAIL;
		argv[n++] = "--key-file";
		argv[n++] = key;
		argv[n++] = "--seed";
		argv[n++] = seed;
		argv[n++] = "--port-file";
		argv[n++] = port_file;
		argv[n++] = "--pid-file";
		argv[n++] = pid_file;
		argv[n++] = "--on-key-change";
		argv[n++] = hook;
		if (tls) {
			argv[n++] = "--cert";
			argv[n++] = cert;
			argv[n++] = "--key";
			argv[n++] = tlskey;
		}
		argv[n] = NULL;
		execv(argv[0], argv);
		_exit(127);
	}
	e->pid = pid;
	for (int i = 0; i < 300; i++) {
		FILE *f = fopen(port_file, "r");
		int status;

		if (f) {
			int ok = fscanf(f, "%d", &e->port) == 1;

			fclose(f);
			if (ok && e->port > 0)
				break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			e->pid = 0;
			return -1;
		}
		usleep(50 * 1000);
	}
	if (e->port <= 0) {
		emu_stop(e);
		return -1;
	}
	snprintf(e->base_url, sizeof(e->base_url), "%s://127.0.0.1:%d/client/v4",
		 tls ? "https" : "http", e->port);
	snprintf(e->admin_url, sizeof(e->admin_url), "%s://127.0.0.1:%d/__admin",
		 tls ? "https" : "http", e->port);
	return 0;
}

void emu_stop(struct emu *e)
{
	int status;

	if (e->pid <= 0)
		return;
	kill(e->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			e->pid = 0;
			return;
		}
		usleep(50 * 1000);
	}
	kill(e->pid, SIGKILL);
	waitpid(e->pid, &status, 0);
	e->pid = 0;
}

struct body {
	char *data;
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	struct body *b = userdata;
	char *grown = realloc(b->data, b->len + size * n + 1);

	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, p, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

char *emu_admin(struct emu *e, const char *method, const char *path, const char *body)
{
	CURL *h = curl_easy_init();
	struct body b = { 0 };
	char url[256], ca[300];
	long status = 0;
	CURLcode rc;

	if (!h)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", e->admin_url, path);
	snprintf(ca, sizeof(ca), "%s/ca.pem", e->dir);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK || status != 200) {
		fprintf(stderr, "admin %s %s failed: %s, HTTP %ld\n", method, path,
			curl_easy_strerror(rc), status);
		free(b.data);
		return NULL;
	}
	return b.data;
}

static void admin_ok(struct emu *e, const char *method, const char *path, const char *body)
{
	char *r = emu_admin(e, method, path, body);

	if (!r) {
		fprintf(stderr, "emulator admin call failed\n");
		abort();
	}
	free(r);
}

void emu_reset(struct emu *e)
{
	admin_ok(e, "DELETE", "/faults", NULL);
	admin_ok(e, "DELETE", "/requests", NULL);
	admin_ok(e, "PUT", "/tunnels", seed_json);
}

void emu_clear_log(struct emu *e)
{
	admin_ok(e, "DELETE", "/requests", NULL);
}

void emu_fault(struct emu *e, const char *rules_json)
{
	admin_ok(e, "POST", "/faults", rules_json);
}

static json_t *load_requests(struct emu *e)
{
	char *body = emu_admin(e, "GET", "/requests", NULL);
	json_t *root;

	if (!body)
		abort();
	root = json_loads(body, 0, NULL);
	free(body);
	if (!root)
		abort();
	return root;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

int emu_count(struct emu *e, const char *method, const char *suffix, int *ret_statuses, int n)
{
	json_t *root = load_requests(e), *item;
	size_t i;
	int count = 0;

	json_array_foreach(json_object_get(root, "requests"), i, item)
	{
		const char *m = json_string_value(json_object_get(item, "method"));
		const char *p = json_string_value(json_object_get(item, "path"));

		if ((method && (!m || strcmp(m, method) != 0)) || !p || !ends_with(p, suffix))
			continue;
		if (ret_statuses && count < n)
			ret_statuses[count] =
				(int)json_integer_value(json_object_get(item, "status"));
		count++;
	}
	json_decref(root);
	return count;
}

int emu_count_query(struct emu *e, const char *query)
{
	json_t *root = load_requests(e), *item;
	size_t i;
	int count = 0;

	json_array_foreach(json_object_get(root, "requests"), i, item)
	{
		const char *q = json_string_value(json_object_get(item, "query"));

		if (q && strcmp(q, query) == 0)
			count++;
	}
	json_decref(root);
	return count;
}

void emu_last_user_agent(struct emu *e, char *out, size_t size)
{
	json_t *root = load_requests(e), *reqs = json_object_get(root, "requests");
	size_t n = json_array_size(reqs);
	const char *ua =
		n ? json_string_value(json_object_get(json_array_get(reqs, n - 1), "user_agent"))
		  : NULL;

	snprintf(out, size, "%s", ua ? ua : "");
	json_decref(root);
}

void emu_fingerprint(struct emu *e, const char *id, char out[32])
{
	char *body = emu_admin(e, "GET", "/tunnels", NULL);
	json_t *root, *item;
	size_t i;

	out[0] = '\0';
	if (!body)
		abort();
	root = json_loads(body, 0, NULL);
	free(body);
	json_array_foreach(json_object_get(root, "tunnels"), i, item)
	{
		const char *fp = json_string_value(json_object_get(item, "fingerprint"));

		if (strcmp(json_string_value(json_object_get(item, "id")), id) == 0 && fp)
			snprintf(out, 32, "%s", fp);
	}
	json_decref(root);
}
