/* Unit tests of the VICI client's transport against a MOCK charon (a thread
 * serving a unix socket with scripted misbehaviour that a real charon will
 * not produce on demand): timeouts, malformed and oversize replies, a
 * socket closed mid-call, events split into single bytes, events arriving
 * during registration, unknown events. The real charon is exercised by
 * test_ike_charon.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "core/util.h"
#include "ike/vici.h"

/* Events the mock sends before the confirmations: more than the client's
 * first array of pending events holds (it grows). */
#define EARLY_EVENTS 20

enum mock_mode {
	MOCK_SILENT,	   /* reads the request, never answers */
	MOCK_GARBAGE,	   /* answers a response with a bad element */
	MOCK_OVERSIZE,	   /* answers a length prefix over the limit */
	MOCK_CLOSE,	   /* closes after reading the request */
	MOCK_UNKNOWN_CMD,  /* answers "unknown command" */
	MOCK_EVENTS_SPLIT, /* confirms registrations (EARLY_EVENTS events
			    * before the first confirmation, one before the
			    * second), then sends events byte by byte and
			    * closes */
	MOCK_UNKNOWN_EVENT,
	MOCK_SLOW_STREAM,    /* a list of 6 entries, one every 100 ms */
	MOCK_STALLED_STREAM, /* 2 entries of that list, then silence */
	MOCK_SHARED,	     /* get-shared (keys unsorted, one twice), then
			      * load-shared and unload-shared, each a success */
};

struct mock {
	char path[108];
	int listen_fd;
	enum mock_mode mode;
	int connections; /* to serve before the thread ends */
	pthread_t thread;
};

static int read_frame(int fd, struct ts_vici_packet *p)
{
	uint8_t hdr[4], buf[4096];
	size_t len;

	if (recv(fd, hdr, 4, MSG_WAITALL) != 4 || ts_vici_frame_length(hdr, &len) < 0 ||
	    len > sizeof(buf) || recv(fd, buf, len, MSG_WAITALL) != (ssize_t)len)
		return -1;
	return ts_vici_packet_decode(buf, len, p);
}

static void send_packet(int fd, enum ts_vici_packet_type type, const char *name,
			const struct ts_vici_node *body, bool bytewise)
{
	uint8_t *buf;
	size_t len;

	assert_int_equal(ts_vici_packet_encode(type, name, body, &buf, &len, NULL), 0);
	if (!bytewise) {
		assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
	} else {
		for (size_t i = 0; i < len; i++) {
			assert_int_equal(send(fd, buf + i, 1, MSG_NOSIGNAL), 1);
			usleep(200);
		}
	}
	free(buf);
}

static struct ts_vici_node *event_body(const char *conn)
{
	struct ts_vici_node *root, *sa;

	assert_int_equal(ts_vici_msg_new(&root), 0);
	assert_int_equal(ts_vici_add_str(root, "up", "yes"), 0);
	assert_int_equal(ts_vici_add_section(root, conn, &sa), 0);
	assert_int_equal(ts_vici_add_str(sa, "state", "ESTABLISHED"), 0);
	return root;
}

static void serve(struct mock *m, int fd)
{
	static const uint8_t bad_response[] = { 0, 0, 0, 3, 1, 9, 9 };
	static const uint8_t oversize[] = { 0x7f, 0, 0, 0, 1 };
	struct ts_vici_packet p = { 0 };
	struct ts_vici_node *ev;

	switch (m->mode) {
	case MOCK_SILENT:
		(void)read_frame(fd, &p);
		/* hold the socket open until the client gives up */
		(void)recv(fd, &p, 1, 0);
		break;
	case MOCK_GARBAGE:
		(void)read_frame(fd, &p);
		(void)!send(fd, bad_response, sizeof(bad_response), MSG_NOSIGNAL);
		(void)recv(fd, &p, 1, 0);
		break;
	case MOCK_OVERSIZE:
		(void)read_frame(fd, &p);
		(void)!send(fd, oversize, sizeof(oversize), MSG_NOSIGNAL);
		(void)recv(fd, &p, 1, 0);
		break;
	case MOCK_CLOSE:
		(void)read_frame(fd, &p);
		break;
	case MOCK_UNKNOWN_CMD:
		(void)read_frame(fd, &p);
		send_packet(fd, TS_VICI_CMD_UNKNOWN, NULL, NULL, false);
		(void)recv(fd, &p, 1, 0);
		break;
	case MOCK_EVENTS_SPLIT:
		ev = event_body("ts-early");
		for (int i = 0; i < 2; i++) {
			assert_int_equal(read_frame(fd, &p), 0);
			assert_int_equal(p.type, TS_VICI_EVENT_REGISTER);
			for (int k = 0; k < (i == 0 ? EARLY_EVENTS - 1 : 1); k++)
				send_packet(fd, TS_VICI_EVENT, "ike-updown", ev, false);
			send_packet(fd, TS_VICI_EVENT_CONFIRM, NULL, NULL, false);
			ts_vici_packet_done(&p);
		}
		ts_vici_node_free(ev);
		ev = event_body("ts-split");
		send_packet(fd, TS_VICI_EVENT, "ike-updown", ev, true);
		send_packet(fd, TS_VICI_EVENT, "child-updown", ev, true);
		ts_vici_node_free(ev);
		usleep(100000);
		break;
	case MOCK_SLOW_STREAM:
	case MOCK_STALLED_STREAM:
		assert_int_equal(read_frame(fd, &p), 0);
		assert_int_equal(p.type, TS_VICI_EVENT_REGISTER);
		ts_vici_packet_done(&p);
		send_packet(fd, TS_VICI_EVENT_CONFIRM, NULL, NULL, false);
		assert_int_equal(read_frame(fd, &p), 0);
		assert_int_equal(p.type, TS_VICI_CMD_REQUEST);
		ts_vici_packet_done(&p);
		ev = event_body("ts-slow");
		for (int i = 0; i < (m->mode == MOCK_SLOW_STREAM ? 6 : 2); i++) {
			usleep(100000);
			send_packet(fd, TS_VICI_EVENT, "list-sa", ev, false);
		}
		ts_vici_node_free(ev);
		if (m->mode == MOCK_STALLED_STREAM) {
			(void)recv(fd, &p, 1, 0);
			break;
		}
		assert_int_equal(ts_vici_msg_new(&ev), 0);
		send_packet(fd, TS_VICI_CMD_RESPONSE, NULL, ev, false);
		ts_vici_node_free(ev);
		assert_int_equal(read_frame(fd, &p), 0);
		assert_int_equal(p.type, TS_VICI_EVENT_UNREGISTER);
		send_packet(fd, TS_VICI_EVENT_CONFIRM, NULL, NULL, false);
		break;
	case MOCK_SHARED: {
		static const char *const ids[] = { "ts-c", "ts-a", "ts-b", "ts-a" };
		struct ts_vici_node *list;

		assert_int_equal(read_frame(fd, &p), 0);
		assert_string_equal(p.name, "get-shared");
		ts_vici_packet_done(&p);
		assert_int_equal(ts_vici_msg_new(&ev), 0);
		assert_int_equal(ts_vici_add_list(ev, "keys", &list), 0);
		for (size_t i = 0; i < TS_ARRAY_SIZE(ids); i++)
			assert_int_equal(ts_vici_list_add_str(list, ids[i]), 0);
		send_packet(fd, TS_VICI_CMD_RESPONSE, NULL, ev, false);
		ts_vici_node_free(ev);
		for (int i = 0; i < 2; i++) {
			assert_int_equal(read_frame(fd, &p), 0);
			ts_vici_packet_done(&p);
			assert_int_equal(ts_vici_msg_new(&ev), 0);
			assert_int_equal(ts_vici_add_str(ev, "success", "yes"), 0);
			send_packet(fd, TS_VICI_CMD_RESPONSE, NULL, ev, false);
			ts_vici_node_free(ev);
		}
		(void)recv(fd, &p, 1, 0);
		break;
	}
	case MOCK_UNKNOWN_EVENT:
		assert_int_equal(read_frame(fd, &p), 0);
		send_packet(fd, TS_VICI_EVENT_UNKNOWN, NULL, NULL, false);
		(void)recv(fd, &p, 1, 0);
		break;
	}
	ts_vici_packet_done(&p);
}

static void *mock_thread(void *arg)
{
	struct mock *m = arg;

	for (int i = 0; i < m->connections; i++) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		serve(m, fd);
		close(fd);
	}
	return NULL;
}

static void mock_start(struct mock *m, enum mock_mode mode, int connections)
{
	static int seq;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(m, 0, sizeof(*m));
	snprintf(m->path, sizeof(m->path), "/tmp/tsvici-mock-%d-%d.sock", (int)getpid(), seq++);
	strcpy(sa.sun_path, m->path);
	unlink(m->path);
	m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(m->listen_fd >= 0);
	assert_int_equal(bind(m->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(m->listen_fd, 4), 0);
	m->mode = mode;
	m->connections = connections;
	assert_int_equal(pthread_create(&m->thread, NULL, mock_thread, m), 0);
}

static void mock_stop(struct mock *m)
{
	pthread_join(m->thread, NULL);
	close(m->listen_fd);
	unlink(m->path);
}

static void test_timeout(void **state)
{
	struct ts_vici_client *c;
	struct ts_vici_version v;
	struct mock m;
	ts_usec_t t0;

	mock_start(&m, MOCK_SILENT, 1);
	assert_int_equal(ts_vici_client_new(m.path, 300, &c), 0);
	t0 = ts_now_monotonic();
	assert_int_equal(ts_vici_version(c, &v), -ETIMEDOUT);
	/* It waited for the timeout, and not much longer. */
	assert_true(ts_now_monotonic() - t0 >= 250000);
	assert_true(ts_now_monotonic() - t0 < 3000000);
	ts_vici_client_free(c);
	mock_stop(&m);
}

static int count_entry(void *userdata, const struct ts_vici_node *event)
{
	(void)event;
	++*(int *)userdata;
	return 0;
}

/* Issue 12: a list longer to stream than the timeout (10,000 SAs from a
 * busy charon) is read to its end while entries keep coming; a stream
 * that stops is given up the timeout after its last entry. */
static void test_slow_stream(void **state)
{
	struct ts_vici_client *c;
	struct mock m;
	ts_usec_t t0;
	int n = 0;

	(void)state;
	mock_start(&m, MOCK_SLOW_STREAM, 1);
	assert_int_equal(ts_vici_client_new(m.path, 300, &c), 0);
	t0 = ts_now_monotonic();
	assert_int_equal(ts_vici_list_sas(c, NULL, count_entry, &n), 0);
	assert_int_equal(n, 6);
	assert_true(ts_now_monotonic() - t0 >= 550000); /* longer than the timeout */
	ts_vici_client_free(c);
	mock_stop(&m);

	n = 0;
	mock_start(&m, MOCK_STALLED_STREAM, 1);
	assert_int_equal(ts_vici_client_new(m.path, 300, &c), 0);
	t0 = ts_now_monotonic();
	assert_int_equal(ts_vici_list_sas(c, NULL, count_entry, &n), -ETIMEDOUT);
	assert_int_equal(n, 2);
	/* 2 x 100 ms of entries, then the 300 ms timeout: not much longer. */
	assert_true(ts_now_monotonic() - t0 >= 450000);
	assert_true(ts_now_monotonic() - t0 < 3000000);
	ts_vici_client_free(c);
	mock_stop(&m);
}

static void test_bad_replies(void **state)
{
	struct ts_vici_client *c;
	struct ts_vici_version v;
	struct mock m;

	mock_start(&m, MOCK_GARBAGE, 1);
	assert_int_equal(ts_vici_client_new(m.path, 2000, &c), 0);
	assert_int_equal(ts_vici_version(c, &v), -EBADMSG);
	ts_vici_client_free(c);
	mock_stop(&m);

	mock_start(&m, MOCK_OVERSIZE, 1);
	assert_int_equal(ts_vici_client_new(m.path, 2000, &c), 0);
	assert_int_equal(ts_vici_version(c, &v), -EMSGSIZE);
	ts_vici_client_free(c);
	mock_stop(&m);

	mock_start(&m, MOCK_UNKNOWN_CMD, 1);
	assert_int_equal(ts_vici_client_new(m.path, 2000, &c), 0);
	assert_int_equal(ts_vici_version(c, &v), -EOPNOTSUPP);
	ts_vici_client_free(c);
	mock_stop(&m);
}

/* Closed before any answer: one fresh try, then the error; the client
 * counts both connections and reports the second as a reconnection. */
static void test_closed(void **state)
{
	struct ts_vici_client *c;
	struct ts_vici_version v;
	struct mock m;

	mock_start(&m, MOCK_CLOSE, 2);
	assert_int_equal(ts_vici_client_new(m.path, 2000, &c), 0);
	assert_int_equal(ts_vici_version(c, &v), -ECONNRESET);
	assert_int_equal(ts_vici_client_generation(c), 2);
	assert_true(ts_vici_client_take_reconnected(c));
	ts_vici_client_free(c);
	mock_stop(&m);

	/* Nobody listening. */
	assert_int_equal(ts_vici_client_new("/tmp/tsvici-mock-none.sock", 500, &c), 0);
	assert_int_equal(ts_vici_version(c, &v), -ENOENT);
	ts_vici_client_free(c);
}

struct got {
	int n;
	char names[EARLY_EVENTS + 2][32];
	char conns[EARLY_EVENTS + 2][32];
};

static void on_event(void *userdata, const char *event, const struct ts_vici_node *body)
{
	struct got *g = userdata;

	if (g->n < (int)TS_ARRAY_SIZE(g->names)) {
		snprintf(g->names[g->n], sizeof(g->names[0]), "%s", event);
		snprintf(g->conns[g->n], sizeof(g->conns[0]), "%s",
			 body->n_children > 1 ? body->children[1]->name : "");
	}
	g->n++;
}

/* The keys the client knows: get-shared's answer (in any order, an id
 * twice), then its own load-shared and unload-shared. */
static void test_known_shared(void **state)
{
	struct ts_vici_client *c;
	struct ts_vici_node *resp = NULL, *msg;
	struct mock m;
	char err[64];

	mock_start(&m, MOCK_SHARED, 1);
	assert_int_equal(ts_vici_client_new(m.path, 2000, &c), 0);
	assert_int_equal(ts_vici_known_shared(c, "ts-a"), -ENOENT); /* nothing asked yet */
	assert_int_equal(ts_vici_get_shared(c, &resp), 0);
	ts_vici_node_free(resp);
	assert_int_equal(ts_vici_known_shared(c, "ts-a"), 1);
	assert_int_equal(ts_vici_known_shared(c, "ts-b"), 1);
	assert_int_equal(ts_vici_known_shared(c, "ts-c"), 1);
	assert_int_equal(ts_vici_known_shared(c, "ts-d"), 0);
	assert_int_equal(ts_vici_known_shared(c, "ts-0"), 0);
	assert_int_equal(ts_vici_msg_new(&msg), 0);
	assert_int_equal(ts_vici_add_str(msg, "id", "ts-0"), 0);
	assert_int_equal(ts_vici_add_str(msg, "type", "IKE"), 0);
	assert_int_equal(ts_vici_add_str(msg, "data", "not-a-real-key"), 0);
	assert_int_equal(ts_vici_load_shared(c, msg, err, sizeof(err)), 0);
	ts_vici_node_free(msg);
	assert_int_equal(ts_vici_known_shared(c, "ts-0"), 1);
	assert_int_equal(ts_vici_unload_shared(c, "ts-b", err, sizeof(err)), 0);
	assert_int_equal(ts_vici_known_shared(c, "ts-b"), 0);
	assert_int_equal(ts_vici_known_shared(c, "ts-0"), 1);
	assert_int_equal(ts_vici_known_shared(c, "ts-a"), 1);
	assert_int_equal(ts_vici_known_shared(c, "ts-c"), 1);
	ts_vici_client_free(c);
	mock_stop(&m);
}

static void test_events(void **state)
{
	static const char *const names[] = { "ike-updown", "child-updown" };
	struct ts_vici_events *e;
	struct got g = { 0 };
	struct mock m;
	int r = 0;

	mock_start(&m, MOCK_EVENTS_SPLIT, 1);
	assert_int_equal(ts_vici_events_new(m.path, names, 2, 2000, &e), 0);
	assert_true(ts_vici_events_connected(e));
	/* EARLY_EVENTS events came before the confirmations, in order; then
	 * two byte by byte; then the mock closes. */
	for (int i = 0; i < 200 && (r = ts_vici_events_wait(e, 1000, on_event, &g)) >= 0; i++)
		;
	assert_int_equal(r, -ECONNRESET);
	assert_int_equal(g.n, EARLY_EVENTS + 2);
	for (int i = 0; i < EARLY_EVENTS; i++)
		assert_string_equal(g.conns[i], "ts-early");
	assert_string_equal(g.names[EARLY_EVENTS], "ike-updown");
	assert_string_equal(g.conns[EARLY_EVENTS], "ts-split");
	assert_string_equal(g.names[EARLY_EVENTS + 1], "child-updown");
	assert_false(ts_vici_events_connected(e));
	assert_int_equal(ts_vici_events_fd(e), -1);
	assert_int_equal(ts_vici_events_drain(e, on_event, &g), -ENOTCONN);
	mock_stop(&m);
	/* Gone for good: reconnecting fails until something listens. */
	r = ts_vici_events_connect(e);
	assert_true(r == -ENOENT || r == -ECONNREFUSED);
	ts_vici_events_free(e);

	mock_start(&m, MOCK_UNKNOWN_EVENT, 1);
	assert_int_equal(ts_vici_events_new(m.path, names, 1, 2000, &e), -EOPNOTSUPP);
	mock_stop(&m);

	assert_int_equal(ts_vici_events_new("/tmp/x", names, 0, 2000, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeout),	     cmocka_unit_test(test_slow_stream),
		cmocka_unit_test(test_bad_replies),  cmocka_unit_test(test_closed),
		cmocka_unit_test(test_known_shared), cmocka_unit_test(test_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
