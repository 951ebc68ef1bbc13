/* Fuzz target for the IKE plane's observation (agent/ike/ike_observe.c
 * over agent/ike/vici_client.c): charon's answers to list-conns, list-sas
 * and get-shared, streamed events included, turned into per-tunnel
 * observations of declared tunnels: first two ("ts-t1", "ts-t2"), for
 * which charon is asked about each tunnel by name, then, from the rest of
 * the input on a new connection, five (the whole lists).
 *
 * The input is what charon sends: VICI frames (u32 big-endian length,
 * packet), in order. A fake charon in a thread listens on a real unix
 * socket and, for each request the client sends, answers with the next
 * frames of the input: one for an event (un)registration, and for a
 * command every frame up to and including a command response (or
 * unknown-command). When the input runs out it closes the connection, so
 * the client sees an end of stream, never a timeout. The client's own
 * framing, stream handling, retry-on-reset and staleness checks run
 * unchanged.
 *
 * What the observation leaves of the input then goes to the event
 * connection, as the daemon uses it: the four state events are registered
 * (each answered by every frame up to the first that is not an event, as
 * charon may send events before a confirmation), then the fake charon
 * sends all the rest at once and closes; the events read are classified
 * and fed to the failure monitor. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ike/ike.h"
#include "ike/vici.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLIENT_TIMEOUT_MS 5000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static const uint8_t *in;
static size_t in_len, in_off;
static unsigned closed;
static unsigned push_after; /* registrations before the rest is pushed */
static int listen_fd = -1;
static char dir[] = "/tmp/ts-fuzz-ike-XXXXXX";
static char sock_path[64];

static int read_exact(int fd, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the next input frame; returns its packet type, -1 when none is left. */
static int send_frame(int fd)
{
	size_t len, left = in_len - in_off;
	int type;

	if (left == 0)
		return -1;
	if (left < 4) {
		(void)send(fd, in + in_off, left, MSG_NOSIGNAL);
		in_off = in_len;
		return -1;
	}
	len = (size_t)in[in_off] << 24 | (size_t)in[in_off + 1] << 16 |
	      (size_t)in[in_off + 2] << 8 | in[in_off + 3];
	if (len > left - 4) {
		/* A frame cut short by the end of the input: send what there
		 * is, then the end of the stream. */
		(void)send(fd, in + in_off, left, MSG_NOSIGNAL);
		in_off = in_len;
		return -1;
	}
	type = len ? in[in_off + 4] : 0xff;
	if (send(fd, in + in_off, 4 + len, MSG_NOSIGNAL) != (ssize_t)(4 + len))
		return -1;
	in_off += 4 + len;
	return type;
}

static void serve(int fd)
{
	for (;;) {
		uint8_t hdr[4], *req;
		size_t len;
		int type;

		if (read_exact(fd, hdr, 4) < 0)
			return;
		len = (size_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
		if (len == 0 || len > (1u << 20) || !(req = malloc(len)))
			return;
		if (read_exact(fd, req, len) < 0) {
			free(req);
			return;
		}
		type = req[0];
		free(req);
		if (type == TS_VICI_CMD_REQUEST) {
			int t;

			do
				t = send_frame(fd);
			while (t >= 0 && t != TS_VICI_CMD_RESPONSE && t != TS_VICI_CMD_UNKNOWN);
			if (t < 0)
				return;
		} else if (push_after) {
			/* The event connection: charon may send events of
			 * those already registered before it confirms the
			 * next, and the client queues them, so the answer is
			 * every frame up to the first that is not an event.
			 * (One frame only would leave the client waiting for
			 * the confirmation until its timeout.) */
			int t;

			do
				t = send_frame(fd);
			while (t == TS_VICI_EVENT);
			if (t < 0)
				return;
			if (type != TS_VICI_EVENT_REGISTER || --push_after)
				continue;
			(void)send(fd, in + in_off, in_len - in_off, MSG_NOSIGNAL);
			in_off = in_len;
			shutdown(fd, SHUT_WR);
		} else if (send_frame(fd) < 0) {
			/* The command connection's stream (un)registration:
			 * the client takes one frame as the answer. */
			return;
		}
	}
}

static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			continue;
		pthread_mutex_lock(&lock);
		serve(fd);
		close(fd);
		closed++;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void cleanup(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void init(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t th;

	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/charon.vici", dir);
	strcpy(sa.sun_path, sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 16) < 0)
		abort();
	atexit(cleanup);
	if (pthread_create(&th, NULL, server, NULL) != 0)
		abort();
	pthread_detach(th);
	ts_log_set_level(TS_LOG_ERROR);
}

static void tunnel(struct ts_tunnel *t, const char *name, const char *id, uint8_t last)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->id, sizeof(t->id), "%s", id);
	t->customer_endpoint = (struct ts_ip){ AF_INET, { 192, 0, 2, 1 } };
	t->cloudflare_endpoint = (struct ts_ip){ AF_INET, { 192, 0, 2, last } };
	t->ike = (struct ts_ike_settings){
		.ike_sa = { TS_ENCR_AES256_GCM16, 0, TS_PRF_HMAC_SHA2_256, TS_DH_ECP384 },
		.child_sa = { TS_ENCR_AES256_GCM16, 0, 0, TS_DH_ECP384 },
		.ike_sa_lifetime = 86400,
		.child_sa_lifetime = 28800,
		.dpd_delay = 10,
	};
}

static void wait_closed(unsigned n)
{
	pthread_mutex_lock(&lock);
	while (closed < n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void on_event(void *userdata, const char *name, const struct ts_vici_node *body)
{
	struct ts_ike_event ev;

	if (body && ts_ike_event_parse(name, body, &ev) == 0)
		ts_ike_monitor_feed(userdata, &ev, 1000000);
}

/* The daemon's event connection over the rest of the input. */
static void events(unsigned connects)
{
	struct ts_ike_monitor *m;
	struct ts_vici_events *e;
	struct ts_ike_failures f;
	struct timespec t0, t1;
	int r;

	pthread_mutex_lock(&lock);
	push_after = 4;
	pthread_mutex_unlock(&lock);
	if (ts_ike_monitor_new(&m) < 0)
		abort();
	/* A refused registration (unknown event, garbage) is an error here.
	 * The fake charon answers every registration or closes: a
	 * registration that took the client's timeout was left waiting. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = ts_vici_events_new(sock_path, ts_vici_state_events, 4, CLIENT_TIMEOUT_MS, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >=
	    CLIENT_TIMEOUT_MS)
		abort();
	if (r == 0) {
		for (int i = 0; i < 64 && r >= 0; i++)
			r = ts_vici_events_wait(e, CLIENT_TIMEOUT_MS, on_event, m);
		if (r >= 0)
			abort(); /* the fake charon closes: the stream must end */
		ts_ike_monitor_get(m, "ts-t1", &f);
		ts_vici_events_free(e);
	}
	ts_ike_monitor_free(m);
	wait_closed(connects + 1);
	pthread_mutex_lock(&lock);
	push_after = 0;
	pthread_mutex_unlock(&lock);
}

/* One observation of the first n tunnels on a client of its own; returns
 * the connections the fake charon has closed once it is freed. */
static unsigned observe(const struct ts_tunnel *tunnels, size_t n, unsigned closed_before)
{
	struct ts_ike_observed obs[5];
	struct ts_vici_client *c;
	unsigned connects;
	int r;

	if (ts_vici_client_new(sock_path, CLIENT_TIMEOUT_MS, &c) < 0)
		abort();
	r = ts_ike_observe(c, tunnels, n, "023e105f4ecef8ad9ca31a8372d0c353", NULL, obs);
	if (r == 0) {
		for (size_t i = 0; i < n; i++) {
			/* Each observation is of its own tunnel, whatever charon said. */
			if (strcmp(obs[i].tunnel, tunnels[i].name) != 0 ||
			    (obs[i].n_children && !obs[i].children))
				abort();
			ts_ike_observed_done(&obs[i]);
		}
	} else if (r == -ETIMEDOUT) {
		/* The fake charon never leaves the client waiting. */
		abort();
	}
	connects = closed_before + ts_vici_client_generation(c);
	ts_vici_client_free(c);
	/* Wait until the fake charon has closed every connection the client
	 * made, so that it serves the next one from the rest of the input. */
	wait_closed(connects);
	return connects;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_tunnel tunnels[5];
	unsigned connects;

	if (listen_fd < 0) {
		init();
		tunnel(&tunnels[0], "t1", "0123456789abcdef0123456789abcdef", 2);
		tunnel(&tunnels[1], "t2", "fedcba9876543210fedcba9876543210", 3);
		tunnel(&tunnels[2], "t3", "00112233445566778899aabbccddeeff", 4);
		tunnel(&tunnels[3], "t4", "ffeeddccbbaa99887766554433221100", 5);
		tunnel(&tunnels[4], "t5", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", 6);
	}
	pthread_mutex_lock(&lock);
	in = data;
	in_len = size;
	in_off = 0;
	closed = 0;
	pthread_mutex_unlock(&lock);

	/* Two tunnels: charon is asked about each by name (an event's scope,
	 * ts_ike_observe's filtered path); then five from the rest of the
	 * input: the whole lists. */
	connects = observe(tunnels, 2, 0);
	connects = observe(tunnels, 5, connects);
	events(connects);
	return 0;
}
