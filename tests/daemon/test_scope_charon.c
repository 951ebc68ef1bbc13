/* What the scoped stage asks charon, over the agent's real planes
 * (agent/reconcile/planes.c, the real VICI client and ike_observe) and a
 * MOCK charon: a thread serving a unix socket that speaks VICI (event
 * (un)registration, version, list-conns / list-sas streamed as list-conn /
 * list-sa events, get-shared), records every request with its "ike"
 * filter, and either honours that filter or, as a charon that ignored it
 * would, answers every connection and SA it has. A mock because the
 * property is about the requests themselves: a real charon answers both
 * ways alike (e2e and bench-daemon-reaction run it for real).
 *
 * Promised (README "The daemon", agent/daemon/README.md "Scoped passes"):
 * a scope of up to 4 tunnels asks charon about each by name and never
 * for the whole lists; above 4, the whole lists, once; each answer is
 * credited to the tunnel asked about only (a filter-ignoring charon's
 * extra connections and SAs count for nobody, nothing twice); tunnels out
 * of the scope are left unread. And the keys: a by-name observation
 * does not ask get-shared when the client knows them (its last get-shared
 * on this connection, then its own load-shared and unload-shared); a key
 * unloaded behind its back is missed there and seen by the next whole
 * observation; a new connection (charon restarted) forgets them. No root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_planes.h"
#include "ike/vici.h"
#include "reconcile/agent_internal.h"

#define N_TUNNELS 6
#define MAX_CONNS 8
#define MAX_LOG	  64

struct mock {
	char path[108];
	int listen_fd, stop[2];
	pthread_t thread;
	bool honour_filter;
	/* Keys charon holds (all at start); someone else may unload one
	 * (the agent's own load-shared and unload-shared change it too). */
	bool key_gone[N_TUNNELS];
	bool close_next; /* the next request: the connection closes instead */
	pthread_mutex_t lock;
	char log[MAX_LOG][300]; /* "list-conns ts-t01", "list-sas *", "get-shared" */
	size_t n_log;
};

/* charon's SAs: t01 up (a CHILD SA installed), t02 none, t03 connecting,
 * the others up; every tunnel's connection and key loaded. */
static const char *sa_state(size_t i)
{
	return i == 1 ? NULL : i == 2 ? "CONNECTING" : "ESTABLISHED";
}

static int read_frame(int fd, struct ts_vici_packet *p)
{
	uint8_t hdr[4], buf[8192];
	size_t len;

	if (recv(fd, hdr, 4, MSG_WAITALL) != 4 || ts_vici_frame_length(hdr, &len) < 0 ||
	    len > sizeof(buf) || recv(fd, buf, len, MSG_WAITALL) != (ssize_t)len)
		return -1;
	return ts_vici_packet_decode(buf, len, p);
}

static int send_packet(int fd, enum ts_vici_packet_type type, const char *name,
		       const struct ts_vici_node *body)
{
	uint8_t *buf;
	size_t len;
	int r = ts_vici_packet_encode(type, name, body, &buf, &len, NULL);

	if (r < 0)
		return r;
	r = send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
	free(buf);
	return r;
}

static void note(struct mock *m, const char *cmd, const char *ike)
{
	pthread_mutex_lock(&m->lock);
	if (m->n_log < MAX_LOG)
		snprintf(m->log[m->n_log++], sizeof(m->log[0]), "%s%s%s", cmd, ike ? " " : "",
			 ike ? ike : "");
	pthread_mutex_unlock(&m->lock);
}

/* One list-conn or list-sa event per connection the answer covers. */
static int stream(struct mock *m, int fd, bool sas, const char *ike)
{
	for (size_t i = 0; i < N_TUNNELS; i++) {
		_cleanup_vici_ struct ts_vici_node *ev = NULL;
		struct ts_vici_node *sec, *children, *child;
		char name[16];

		snprintf(name, sizeof(name), "ts-t%02zu", i + 1);
		if (ike && m->honour_filter && strcmp(ike, name) != 0)
			continue;
		if (sas && !sa_state(i))
			continue;
		if (ts_vici_msg_new(&ev) < 0 || ts_vici_add_section(ev, name, &sec) < 0)
			return -1;
		if (!sas) {
			if (ts_vici_add_str(sec, "version", "2") < 0 ||
			    ts_vici_add_section(sec, "children", &children) < 0 ||
			    ts_vici_add_section(children, name, &child) < 0 ||
			    ts_vici_add_str(child, "mode", "TUNNEL") < 0)
				return -1;
		} else {
			if (ts_vici_add_str(sec, "state", sa_state(i)) < 0 ||
			    ts_vici_add_fmt(sec, "uniqueid", "%zu", i + 1) < 0 ||
			    ts_vici_add_section(sec, "child-sas", &children) < 0)
				return -1;
			if (strcmp(sa_state(i), "ESTABLISHED") == 0 &&
			    (ts_vici_add_section(children, name, &child) < 0 ||
			     ts_vici_add_str(child, "name", name) < 0 ||
			     ts_vici_add_str(child, "state", "INSTALLED") < 0 ||
			     ts_vici_add_fmt(child, "spi-in", "c%07zx", i + 1) < 0 ||
			     ts_vici_add_fmt(child, "spi-out", "d%07zx", i + 1) < 0))
				return -1;
		}
		if (send_packet(fd, TS_VICI_EVENT, sas ? "list-sa" : "list-conn", ev) < 0)
			return -1;
	}
	return 0;
}

static int answer(struct mock *m, int fd, const struct ts_vici_packet *p)
{
	_cleanup_vici_ struct ts_vici_node *resp = NULL;
	const char *ike = p->body ? ts_vici_get_str(p->body, "ike") : NULL;
	struct ts_vici_node *keys;

	if (p->type == TS_VICI_EVENT_REGISTER || p->type == TS_VICI_EVENT_UNREGISTER)
		return send_packet(fd, TS_VICI_EVENT_CONFIRM, NULL, NULL);
	if (p->type != TS_VICI_CMD_REQUEST)
		return -1;
	pthread_mutex_lock(&m->lock);
	if (m->close_next) {
		m->close_next = false;
		pthread_mutex_unlock(&m->lock);
		return -1; /* as a restarting charon: no answer, the socket gone */
	}
	pthread_mutex_unlock(&m->lock);
	if (ts_vici_msg_new(&resp) < 0)
		return -1;
	if (strcmp(p->name, "list-conns") == 0 || strcmp(p->name, "list-sas") == 0) {
		note(m, p->name, ike ? ike : "*");
		if (stream(m, fd, p->name[5] == 's', ike) < 0)
			return -1;
	} else if (strcmp(p->name, "get-shared") == 0) {
		note(m, p->name, NULL);
		if (ts_vici_add_list(resp, "keys", &keys) < 0)
			return -1;
		for (size_t i = 0; i < N_TUNNELS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "ts-t%02zu", i + 1);
			if (!m->key_gone[i] && ts_vici_list_add_str(keys, name) < 0)
				return -1;
		}
	} else if (strcmp(p->name, "load-shared") == 0 || strcmp(p->name, "unload-shared") == 0) {
		const char *id = p->body ? ts_vici_get_str(p->body, "id") : NULL;

		note(m, p->name, id);
		for (size_t i = 0; id && i < N_TUNNELS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "ts-t%02zu", i + 1);
			if (strcmp(id, name) == 0)
				m->key_gone[i] = p->name[0] == 'u';
		}
		if (ts_vici_add_str(resp, "success", "yes") < 0)
			return -1;
	} else if (strcmp(p->name, "version") == 0) {
		if (ts_vici_add_str(resp, "daemon", "charon") < 0 ||
		    ts_vici_add_str(resp, "version", "5.9.13") < 0)
			return -1;
	} else {
		note(m, p->name, NULL);
		return send_packet(fd, TS_VICI_CMD_UNKNOWN, NULL, NULL);
	}
	return send_packet(fd, TS_VICI_CMD_RESPONSE, NULL, resp);
}

static void *mock_thread(void *arg)
{
	struct mock *m = arg;
	struct pollfd pfd[2 + MAX_CONNS];
	size_t n = 2;

	pfd[0] = (struct pollfd){ m->stop[0], POLLIN, 0 };
	pfd[1] = (struct pollfd){ m->listen_fd, POLLIN, 0 };
	for (;;) {
		if (poll(pfd, n, -1) < 0)
			continue;
		if (pfd[0].revents)
			break;
		if ((pfd[1].revents & POLLIN) && n < 2 + MAX_CONNS) {
			int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				pfd[n++] = (struct pollfd){ fd, POLLIN, 0 };
		}
		for (size_t i = 2; i < n; i++) {
			struct ts_vici_packet p = { 0 };
			int r;

			if (!pfd[i].revents)
				continue;
			r = read_frame(pfd[i].fd, &p);
			if (r >= 0)
				r = answer(m, pfd[i].fd, &p);
			ts_vici_packet_done(&p);
			if (r < 0) {
				close(pfd[i].fd);
				pfd[i--] = pfd[--n];
			}
		}
	}
	for (size_t i = 2; i < n; i++)
		close(pfd[i].fd);
	return NULL;
}

static void mock_start(struct mock *m, bool honour_filter)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->honour_filter = honour_filter;
	snprintf(m->path, sizeof(m->path), "/tmp/ts-scope-charon-%d.sock", (int)getpid());
	strcpy(sa.sun_path, m->path);
	unlink(m->path);
	m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(m->listen_fd >= 0);
	assert_int_equal(bind(m->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(m->listen_fd, 8), 0);
	assert_int_equal(pipe(m->stop), 0);
	assert_int_equal(pthread_create(&m->thread, NULL, mock_thread, m), 0);
}

static void mock_stop(struct mock *m)
{
	assert_int_equal(write(m->stop[1], "x", 1), 1);
	pthread_join(m->thread, NULL);
	close(m->stop[0]);
	close(m->stop[1]);
	close(m->listen_fd);
	unlink(m->path);
	pthread_mutex_destroy(&m->lock);
}

/* The listing requests the mock saw, one per line, and forgets them. */
static void take_log(struct mock *m, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_log && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s\n", m->log[i]);
	m->n_log = 0;
	pthread_mutex_unlock(&m->lock);
}

/* The real planes over the fakes' world (its declared tunnels and state
 * directory), charon at the mock's socket, no API client (an unusable
 * base URL: nothing leaves the machine) and no kernel plane. */
static struct ts_agent *open_agent(struct fake *f, struct mock *m)
{
	struct ts_agent *a = NULL;

	fake_init(f, N_TUNNELS);
	ts_store_close(f->store); /* the agent takes the lock */
	f->store = NULL;
	f->d.agent.vici_socket = m->path;
	f->d.cloudflare.api_base_url = (char *)"http://192.0.2.1/";
	assert_int_equal(ts_agent_open(&f->d, NULL, &a), 0);
	return a;
}

/* The keys the agent should see loaded (all but these). */
static bool key_seen_gone[N_TUNNELS];

/* What the observation credits each tunnel with. */
static void check_credit(const struct ts_observation *o, const bool *scope)
{
	for (size_t i = 0; i < N_TUNNELS; i++) {
		const struct ts_ike_observed *io = &o->ike[i];

		if (!scope[i]) {
			/* Out of the scope: not read, nothing credited. */
			assert_false(io->conn_loaded);
			assert_false(io->key_loaded);
			assert_int_equal(io->n_ike_sas, 0);
			assert_int_equal(io->n_children, 0);
			continue;
		}
		assert_true(io->conn_loaded);
		assert_int_equal(io->key_loaded, !key_seen_gone[i]);
		assert_int_equal(io->n_ike_sas, sa_state(i) ? 1 : 0);
		if (i == 1) {
			assert_int_equal(io->ike_state, TS_IKE_SA_NONE);
		} else if (i == 2) {
			assert_int_equal(io->ike_state, TS_IKE_SA_CONNECTING);
			assert_int_equal(io->n_children, 0);
		} else {
			assert_int_equal(io->ike_state, TS_IKE_SA_ESTABLISHED);
			assert_int_equal(io->ike_unique_id, i + 1);
			assert_int_equal(io->n_children, 1);
			assert_int_equal(io->children[0].spi_in, 0xc0000000u + i + 1);
		}
	}
}

/* The scoped stage's observation of names (their groups joined). */
static void observe_scope(struct ts_agent *a, struct fake *f, struct mock *m,
			  const char *const *names, size_t n, size_t want_k, char *log,
			  size_t log_size)
{
	struct ts_observation o = { 0 };
	struct ts_plan *plan = NULL;
	size_t k = 0;
	bool *scope = ts_agent_scope_expand(&f->d, names, n, &k);

	assert_non_null(scope);
	assert_int_equal(k, want_k);
	take_log(m, log, log_size); /* what opening asked */
	assert_true(ts_agent_plan_scoped(a, scope, &o, &plan) >= 0);
	take_log(m, log, log_size);
	assert_true(o.ike_ok);
	check_credit(&o, scope);
	ts_plan_free(plan);
	ts_observation_done(&o);
	free(scope);
}

static void run(bool honour_filter)
{
	struct mock m;
	struct fake f;
	struct ts_agent *a;
	char log[2048];
	const char *one[] = { "t03" };
	const char *four[] = { "t01", "t02", "t03", "t05" };
	const char *five[] = { "t01", "t02", "t03", "t04", "t06" };

	mock_start(&m, honour_filter);
	a = open_agent(&f, &m);

	/* One tunnel, and its redundancy group's other member. */
	snprintf(f.t[2].redundancy_group, sizeof(f.t[2].redundancy_group), "up");
	snprintf(f.t[3].redundancy_group, sizeof(f.t[3].redundancy_group), "up");
	observe_scope(a, &f, &m, one, 1, 2, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t03\nlist-sas ts-t03\n"
				 "list-conns ts-t04\nlist-sas ts-t04\nget-shared\n");
	f.t[2].redundancy_group[0] = f.t[3].redundancy_group[0] = '\0';

	/* Four: still by name, each once; the keys as the client learnt
	 * them from the get-shared before (no second one). */
	observe_scope(a, &f, &m, four, 4, 4, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t01\nlist-sas ts-t01\n"
				 "list-conns ts-t02\nlist-sas ts-t02\n"
				 "list-conns ts-t03\nlist-sas ts-t03\n"
				 "list-conns ts-t05\nlist-sas ts-t05\n");

	/* Five: the whole lists, once each, and every key's id. */
	observe_scope(a, &f, &m, five, 5, 5, log, sizeof(log));
	assert_string_equal(log, "list-conns *\nlist-sas *\nget-shared\n");

	/* Someone unloads t03's key behind the agent's back: by name, the
	 * agent still takes it for loaded (what the cache misses), and the
	 * next whole observation sees it gone; by name then too. */
	m.key_gone[2] = true;
	observe_scope(a, &f, &m, one, 1, 1, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t03\nlist-sas ts-t03\n");
	key_seen_gone[2] = true;
	observe_scope(a, &f, &m, five, 5, 5, log, sizeof(log));
	assert_string_equal(log, "list-conns *\nlist-sas *\nget-shared\n");
	observe_scope(a, &f, &m, one, 1, 1, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t03\nlist-sas ts-t03\n");

	/* The agent's own unload and load: known without asking. */
	assert_int_equal(TS_PLANES(a)->ike_unload_key(TS_PLANES_CTX(a), "ts-t03", NULL, 0), 0);
	assert_int_equal(TS_PLANES(a)->ike_unload_key(TS_PLANES_CTX(a), "ts-t01", NULL, 0), 0);
	key_seen_gone[0] = true;
	observe_scope(a, &f, &m, one, 1, 1, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t03\nlist-sas ts-t03\n");
	{
		_cleanup_secret_ struct ts_secret *k = NULL;

		assert_int_equal(ts_secret_from_bytes("a fresh key of enough length", 28, &k), 0);
		assert_int_equal(TS_PLANES(a)->ike_load_key(TS_PLANES_CTX(a), &f.t[0], k, NULL, 0),
				 0);
	}
	key_seen_gone[0] = false;
	observe_scope(a, &f, &m, four, 4, 4, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t01\nlist-sas ts-t01\n"
				 "list-conns ts-t02\nlist-sas ts-t02\n"
				 "list-conns ts-t03\nlist-sas ts-t03\n"
				 "list-conns ts-t05\nlist-sas ts-t05\n");

	/* charon restarts (the connection closes under a request: that
	 * observation fails): what the client knew is forgotten, and the next
	 * observation, on a new connection, asks get-shared again. */
	m.close_next = true;
	{
		struct ts_observation o = { 0 };
		struct ts_plan *plan = NULL;
		size_t k = 0;
		bool *scope = ts_agent_scope_expand(&f.d, one, 1, &k);

		assert_true(ts_agent_plan_scoped(a, scope, &o, &plan) >= 0);
		assert_false(o.ike_ok);
		ts_plan_free(plan);
		ts_observation_done(&o);
		free(scope);
	}
	m.key_gone[2] = false; /* the restarted charon has the key again */
	key_seen_gone[2] = false;
	observe_scope(a, &f, &m, one, 1, 1, log, sizeof(log));
	assert_string_equal(log, "list-conns ts-t03\nlist-sas ts-t03\nget-shared\n");
	memset(key_seen_gone, 0, sizeof(key_seen_gone));

	ts_agent_free(a);
	fake_done(&f);
	mock_stop(&m);
}

static void test_by_name_filter_honoured(void **state)
{
	(void)state;
	run(true);
}

/* A charon that ignores the filter answers every connection and SA to
 * each by-name request: each tunnel is still credited with its own only. */
static void test_by_name_filter_ignored(void **state)
{
	(void)state;
	run(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_by_name_filter_honoured),
		cmocka_unit_test(test_by_name_filter_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
