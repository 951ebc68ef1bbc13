/* The VICI client: command calls over charon's unix socket with a deadline
 * on every wait, streamed listings, and the event connection. Sockets are
 * non-blocking and every wait goes through poll(), so a stuck charon costs
 * a timeout, never a hung agent. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "ike/vici.h"

#define DEFAULT_TIMEOUT_MS 10000
/* Events read while registering, kept for the next drain. */
#define PENDING_MAX 1024

const char *const ts_vici_default_events[5] = {
	"ike-updown", "child-updown", "ike-rekey", "child-rekey", "log",
};
const char *const ts_vici_state_events[4] = {
	"ike-updown",
	"child-updown",
	"ike-rekey",
	"child-rekey",
};

struct ts_vici_client {
	char *path;
	int fd;
	int timeout_ms;
	unsigned generation;
	bool reconnected;
	/* The shared keys' ids charon holds as this client knows them
	 * (ts_vici_known_shared): its last get-shared's answer, then its own
	 * load-shared and unload-shared; keys_generation: the connection
	 * they were learnt on (another one: unknown). Sorted (strcmp), each
	 * once: a look-up is a binary search, a get-shared of 10,000 keys one
	 * sort (it was a linear search per key: 10 million strcmp). */
	char **keys;
	size_t n_keys, cap_keys;
	bool keys_known;
	unsigned keys_generation;
};

static int sock_open(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A unix connect completes at once or fails (EAGAIN: backlog full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static ts_usec_t deadline_after(int timeout_ms)
{
	return ts_now_monotonic() + (ts_usec_t)timeout_ms * 1000;
}

/* Waits for events on fd until the deadline: 0 ready, -ETIMEDOUT. */
static int wait_fd(int fd, short events, ts_usec_t deadline)
{
	for (;;) {
		ts_usec_t left = deadline - ts_now_monotonic();
		struct pollfd p = { .fd = fd, .events = events };
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)((left + 999) / 1000));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r > 0)
			return 0;
	}
}

static int send_all(int fd, const uint8_t *buf, size_t len, ts_usec_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int r = wait_fd(fd, POLLOUT, deadline);

				if (r < 0)
					return r;
				continue;
			}
			return errno == EPIPE ? -ECONNRESET : -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_exact(int fd, uint8_t *buf, size_t len, ts_usec_t deadline)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int r = wait_fd(fd, POLLIN, deadline);

				if (r < 0)
					return r;
				continue;
			}
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_packet(int fd, enum ts_vici_packet_type type, const char *name,
		       const struct ts_vici_node *body, ts_usec_t deadline)
{
	uint8_t *buf;
	size_t len;
	bool secret;
	int r;

	r = ts_vici_packet_encode(type, name, body, &buf, &len, &secret);
	if (r < 0)
		return r;
	r = send_all(fd, buf, len, deadline);
	/* The kernel has its copy now; ours must not outlive the call. */
	if (secret)
		ts_wipe(buf, len);
	free(buf);
	return r;
}

static int recv_packet(int fd, ts_usec_t deadline, struct ts_vici_packet *ret_packet)
{
	uint8_t hdr[4];
	uint8_t *buf;
	size_t len;
	int r;

	r = recv_exact(fd, hdr, sizeof(hdr), deadline);
	if (r < 0)
		return r;
	r = ts_vici_frame_length(hdr, &len);
	if (r < 0)
		return r;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	r = recv_exact(fd, buf, len, deadline);
	if (r == 0)
		r = ts_vici_packet_decode(buf, len, ret_packet);
	free(buf);
	return r;
}

/* --- command client ------------------------------------------------------ */

int ts_vici_client_new(const char *socket_path, int timeout_ms, struct ts_vici_client **ret_client)
{
	struct ts_vici_client *c;

	if (!socket_path || !*socket_path)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->path = strdup(socket_path);
	if (!c->path) {
		free(c);
		return -ENOMEM;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	*ret_client = c;
	return 0;
}

static void client_disconnect(struct ts_vici_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void keys_forget(struct ts_vici_client *c)
{
	for (size_t i = 0; i < c->n_keys; i++)
		free(c->keys[i]);
	free(c->keys);
	c->keys = NULL;
	c->n_keys = 0;
	c->cap_keys = 0;
	c->keys_known = false;
}

/* The index of id, or where it would go (*found false). */
static size_t keys_search(const struct ts_vici_client *c, const char *id, bool *found)
{
	size_t lo = 0, hi = c->n_keys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->keys[mid], id);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static ssize_t keys_find(const struct ts_vici_client *c, const char *id)
{
	bool found;
	size_t i = keys_search(c, id, &found);

	return found ? (ssize_t)i : -1;
}

static bool keys_reserve(struct ts_vici_client *c, size_t n)
{
	char **k;
	size_t cap;

	if (n <= c->cap_keys)
		return true;
	cap = c->cap_keys ? c->cap_keys : 16;
	while (cap < n)
		cap *= 2;
	k = reallocarray(c->keys, cap, sizeof(*k));
	if (!k)
		return false;
	c->keys = k;
	c->cap_keys = cap;
	return true;
}

/* Adds id (present: once); out of memory: nothing is known any more. */
static void keys_add(struct ts_vici_client *c, const char *id)
{
	bool found;
	size_t i = keys_search(c, id, &found);
	char *copy;

	if (found)
		return;
	if (!keys_reserve(c, c->n_keys + 1) || !(copy = strdup(id))) {
		keys_forget(c);
		return;
	}
	memmove(c->keys + i + 1, c->keys + i, (c->n_keys - i) * sizeof(*c->keys));
	c->keys[i] = copy;
	c->n_keys++;
}

static int keys_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of a get-shared answer, replacing what was known: sorted
 * once, duplicates dropped. */
static void keys_set(struct ts_vici_client *c, const struct ts_vici_node *list)
{
	size_t n = 0;

	keys_forget(c);
	if (list && !keys_reserve(c, list->n_children))
		return;
	for (size_t k = 0; list && k < list->n_children; k++) {
		const char *id = ts_vici_node_str(list->children[k]);

		if (id && !(c->keys[n++] = strdup(id))) {
			c->n_keys = n - 1;
			keys_forget(c);
			return;
		}
	}
	if (n > 1)
		qsort(c->keys, n, sizeof(*c->keys), keys_cmp);
	c->n_keys = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->n_keys && strcmp(c->keys[i], c->keys[c->n_keys - 1]) == 0)
			free(c->keys[i]);
		else
			c->keys[c->n_keys++] = c->keys[i];
	}
	c->keys_known = true;
}

int ts_vici_known_shared(const struct ts_vici_client *c, const char *id)
{
	if (!c || !c->keys_known || c->keys_generation != c->generation || c->fd < 0)
		return -ENOENT;
	return keys_find(c, id) >= 0;
}

void ts_vici_client_free(struct ts_vici_client *c)
{
	if (!c)
		return;
	keys_forget(c);
	client_disconnect(c);
	free(c->path);
	free(c);
}

/* A command connection is idle between calls: anything readable (EOF, or a
 * stray packet) means charon closed it or the stream is out of step. */
static bool client_stale(const struct ts_vici_client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) != 0;
}

int ts_vici_client_connect(struct ts_vici_client *c)
{
	int r;

	if (c->fd >= 0 && !client_stale(c))
		return 0;
	client_disconnect(c);
	r = sock_open(c->path, &c->fd);
	if (r < 0)
		return r;
	if (c->generation++ > 0)
		c->reconnected = true;
	return 0;
}

bool ts_vici_client_take_reconnected(struct ts_vici_client *c)
{
	bool r = c->reconnected;

	c->reconnected = false;
	return r;
}

unsigned ts_vici_client_generation(const struct ts_vici_client *c)
{
	return c->generation;
}

/* Sends an event (un)registration and waits for its confirmation. */
static int event_toggle(int fd, enum ts_vici_packet_type type, const char *event,
			ts_usec_t deadline)
{
	struct ts_vici_packet p = { 0 };
	int r;

	r = send_packet(fd, type, event, NULL, deadline);
	if (r < 0)
		return r;
	r = recv_packet(fd, deadline, &p);
	if (r < 0)
		return r;
	r = p.type == TS_VICI_EVENT_CONFIRM   ? 0
	    : p.type == TS_VICI_EVENT_UNKNOWN ? -EOPNOTSUPP
					      : -EBADMSG;
	ts_vici_packet_done(&p);
	return r;
}

/* deadline: the whole call's, except that each streamed event moves it to
 * at least `idle` after that event: a long list that charon keeps sending
 * (10,000 connections or SAs from a busy charon take longer than the
 * timeout) is read to its end; a charon silent for `idle` is not waited
 * for. */
static int call_once(struct ts_vici_client *c, const char *cmd, const struct ts_vici_node *req,
		     const char *stream_event, ts_vici_stream_fn cb, void *userdata,
		     ts_usec_t deadline, ts_usec_t idle, struct ts_vici_node **ret_response,
		     bool *ret_received)
{
	struct ts_vici_node *resp = NULL;
	int r, cb_r = 0;

	if (stream_event) {
		r = event_toggle(c->fd, TS_VICI_EVENT_REGISTER, stream_event, deadline);
		if (r < 0)
			return r;
		*ret_received = true;
	}
	r = send_packet(c->fd, TS_VICI_CMD_REQUEST, cmd, req, deadline);
	if (r < 0)
		return r;
	while (!resp) {
		struct ts_vici_packet p = { 0 };

		r = recv_packet(c->fd, deadline, &p);
		if (r < 0)
			return r;
		*ret_received = true;
		if (p.type == TS_VICI_CMD_RESPONSE) {
			resp = TS_TAKE_PTR(p.body);
		} else if (p.type == TS_VICI_CMD_UNKNOWN) {
			r = -EOPNOTSUPP;
		} else if (p.type == TS_VICI_EVENT && stream_event &&
			   ts_streq(p.name, stream_event)) {
			if (cb && cb_r >= 0)
				cb_r = cb(userdata, p.body);
			if (ts_now_monotonic() + idle > deadline)
				deadline = ts_now_monotonic() + idle;
		} else {
			r = -EBADMSG;
		}
		ts_vici_packet_done(&p);
		if (r < 0)
			return r;
	}
	if (stream_event) {
		r = event_toggle(c->fd, TS_VICI_EVENT_UNREGISTER, stream_event, deadline);
		if (r < 0) {
			ts_vici_node_free(resp);
			return r;
		}
	}
	if (cb_r < 0) {
		ts_vici_node_free(resp);
		return cb_r;
	}
	if (ret_response)
		*ret_response = resp;
	else
		ts_vici_node_free(resp);
	return 0;
}

int ts_vici_call(struct ts_vici_client *c, const char *cmd, const struct ts_vici_node *req,
		 const char *stream_event, ts_vici_stream_fn cb, void *userdata, int timeout_ms,
		 struct ts_vici_node **ret_response)
{
	int ms = timeout_ms > 0 ? timeout_ms : c->timeout_ms;
	ts_usec_t deadline = deadline_after(ms);
	int r;

	for (int attempt = 0;; attempt++) {
		bool received = false;

		r = ts_vici_client_connect(c);
		if (r < 0)
			return r;
		r = call_once(c, cmd, req, stream_event, cb, userdata, deadline,
			      (ts_usec_t)ms * 1000, ret_response, &received);
		if (r >= 0 || r == -EOPNOTSUPP)
			return r;
		client_disconnect(c);
		/* A socket that died before charon answered anything (it was
		 * restarted since the last call): one fresh try. */
		if (r != -ECONNRESET || received || attempt > 0)
			return r;
	}
}

static void copy_err(const struct ts_vici_node *resp, char *err, size_t err_size)
{
	const char *msg;

	if (!err || !err_size)
		return;
	msg = ts_vici_get_str(resp, "errmsg");
	snprintf(err, err_size, "%s", msg ? msg : "charon refused the command");
}

/* Calls a command answering {success, errmsg}. */
static int call_simple(struct ts_vici_client *c, const char *cmd, const struct ts_vici_node *req,
		       int timeout_ms, char *err, size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *resp = NULL;
	int r;

	if (err && err_size)
		err[0] = 0;
	r = ts_vici_call(c, cmd, req, NULL, NULL, NULL, timeout_ms, &resp);
	if (r < 0)
		return r;
	if (!ts_vici_get_yes(resp, "success")) {
		copy_err(resp, err, err_size);
		return -EIO;
	}
	return 0;
}

static int call_with_kv(struct ts_vici_client *c, const char *cmd, const char *key,
			const char *value, int timeout_ms, char *err, size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *req = NULL;
	int r;

	r = ts_vici_msg_new(&req);
	if (r < 0)
		return r;
	r = ts_vici_add_str(req, key, value);
	if (r < 0)
		return r;
	return call_simple(c, cmd, req, timeout_ms, err, err_size);
}

static void copy_field(const struct ts_vici_node *resp, const char *name, char *dst, size_t size)
{
	const char *s = ts_vici_get_str(resp, name);

	snprintf(dst, size, "%s", s ? s : "");
}

int ts_vici_version(struct ts_vici_client *c, struct ts_vici_version *ret_version)
{
	_cleanup_vici_ struct ts_vici_node *resp = NULL;
	struct ts_vici_version v;
	int r;

	r = ts_vici_call(c, "version", NULL, NULL, NULL, NULL, 0, &resp);
	if (r < 0)
		return r;
	if (!ts_vici_get_str(resp, "version"))
		return -EBADMSG;
	copy_field(resp, "daemon", v.daemon, sizeof(v.daemon));
	copy_field(resp, "version", v.version, sizeof(v.version));
	copy_field(resp, "sysname", v.sysname, sizeof(v.sysname));
	copy_field(resp, "release", v.release, sizeof(v.release));
	copy_field(resp, "machine", v.machine, sizeof(v.machine));
	*ret_version = v;
	return 0;
}

int ts_vici_load_conn(struct ts_vici_client *c, const struct ts_vici_node *conn, char *err,
		      size_t err_size)
{
	if (!conn || conn->n_children != 1 || conn->children[0]->type != TS_VICI_SECTION)
		return -EINVAL;
	return call_simple(c, "load-conn", conn, 0, err, err_size);
}

int ts_vici_unload_conn(struct ts_vici_client *c, const char *name, char *err, size_t err_size)
{
	return call_with_kv(c, "unload-conn", "name", name, 0, err, err_size);
}

int ts_vici_load_shared(struct ts_vici_client *c, const struct ts_vici_node *msg, char *err,
			size_t err_size)
{
	const char *id = ts_vici_get_str(msg, "id");
	int r;

	if (!ts_vici_get(msg, "data"))
		return -EINVAL;
	r = call_simple(c, "load-shared", msg, 0, err, err_size);
	/* Loaded: charon holds it under id. Failed, or no id: unknown. */
	if (r >= 0 && id && c->keys_known && c->keys_generation == c->generation)
		keys_add(c, id);
	else
		keys_forget(c);
	return r;
}

int ts_vici_unload_shared(struct ts_vici_client *c, const char *id, char *err, size_t err_size)
{
	int r = call_with_kv(c, "unload-shared", "id", id, 0, err, err_size);
	ssize_t i = r >= 0 && id ? keys_find(c, id) : -1;

	if (i >= 0) {
		free(c->keys[i]);
		memmove(c->keys + i, c->keys + i + 1,
			(c->n_keys - (size_t)i - 1) * sizeof(*c->keys));
		c->n_keys--;
	} else if (r < 0) {
		keys_forget(c); /* did charon unload it? unknown */
	}
	return r;
}

int ts_vici_get_shared(struct ts_vici_client *c, struct ts_vici_node **ret_response)
{
	const struct ts_vici_node *keys;
	int r = ts_vici_call(c, "get-shared", NULL, NULL, NULL, NULL, 0, ret_response);

	keys_forget(c);
	if (r < 0)
		return r;
	keys = ts_vici_get_list(*ret_response, "keys");
	keys_set(c, keys);
	c->keys_generation = c->generation;
	return r;
}

static int list_call(struct ts_vici_client *c, const char *cmd, const char *event, const char *ike,
		     bool noblock, ts_vici_stream_fn cb, void *userdata)
{
	_cleanup_vici_ struct ts_vici_node *req = NULL;
	int r;

	r = ts_vici_msg_new(&req);
	if (r < 0)
		return r;
	if (ike) {
		r = ts_vici_add_str(req, "ike", ike);
		if (r < 0)
			return r;
	}
	/* noblock skips IKE SAs busy with an exchange, which would read as
	 * "no IKE SA" right after one came up: not used for observation. */
	if (noblock) {
		r = ts_vici_add_str(req, "noblock", "yes");
		if (r < 0)
			return r;
	}
	return ts_vici_call(c, cmd, req, event, cb, userdata, 0, NULL);
}

int ts_vici_list_conns(struct ts_vici_client *c, const char *ike, ts_vici_stream_fn cb,
		       void *userdata)
{
	return list_call(c, "list-conns", "list-conn", ike, false, cb, userdata);
}

int ts_vici_list_sas(struct ts_vici_client *c, const char *ike, ts_vici_stream_fn cb,
		     void *userdata)
{
	return list_call(c, "list-sas", "list-sa", ike, false, cb, userdata);
}

/* charon's own timeout for blocking commands, and ours a little longer so
 * that its answer (success or "timed out") arrives before we give up. */
static int blocking_call(struct ts_vici_client *c, const char *cmd, const char *ike,
			 const char *child, int timeout_ms, char *err, size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *req = NULL;
	bool no_wait = timeout_ms == TS_VICI_NO_WAIT;
	int r;

	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	r = ts_vici_msg_new(&req);
	if (r < 0)
		return r;
	if (child && (r = ts_vici_add_str(req, "child", child)) < 0)
		return r;
	if (ike && (r = ts_vici_add_str(req, "ike", ike)) < 0)
		return r;
	/* A negative timeout: charon answers before the exchange (5.9.8
	 * vici_control.c), we wait for that answer as for any other. */
	r = ts_vici_add_fmt(req, "timeout", "%d", no_wait ? -1 : timeout_ms);
	if (r < 0)
		return r;
	/* No control-log stream wanted. */
	r = ts_vici_add_str(req, "loglevel", "-1");
	if (r < 0)
		return r;
	return call_simple(c, cmd, req, timeout_ms + 2000, err, err_size);
}

int ts_vici_initiate(struct ts_vici_client *c, const char *ike, const char *child, int timeout_ms,
		     char *err, size_t err_size)
{
	if (!child)
		return -EINVAL;
	return blocking_call(c, "initiate", ike, child, timeout_ms, err, err_size);
}

int ts_vici_terminate(struct ts_vici_client *c, const char *ike, int timeout_ms, char *err,
		      size_t err_size)
{
	if (!ike)
		return -EINVAL;
	return blocking_call(c, "terminate", ike, NULL, timeout_ms, err, err_size);
}

int ts_vici_terminate_id(struct ts_vici_client *c, bool child, uint32_t unique_id, int timeout_ms,
			 char *err, size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *req = NULL;
	int r;

	if (unique_id == 0)
		return -EINVAL;
	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	r = ts_vici_msg_new(&req);
	if (r < 0)
		return r;
	if ((r = ts_vici_add_fmt(req, child ? "child-id" : "ike-id", "%u", unique_id)) < 0 ||
	    (r = ts_vici_add_fmt(req, "timeout", "%d", timeout_ms)) < 0 ||
	    (r = ts_vici_add_str(req, "loglevel", "-1")) < 0)
		return r;
	return call_simple(c, "terminate", req, timeout_ms + 2000, err, err_size);
}

int ts_vici_rekey(struct ts_vici_client *c, const char *ike, bool reauth, char *err,
		  size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *req = NULL;
	int r;

	if (!ike)
		return -EINVAL;
	r = ts_vici_msg_new(&req);
	if (r < 0)
		return r;
	r = ts_vici_add_str(req, "ike", ike);
	if (r < 0)
		return r;
	if (reauth && (r = ts_vici_add_str(req, "reauth", "yes")) < 0)
		return r;
	return call_simple(c, "rekey", req, 0, err, err_size);
}

/* --- event connection ---------------------------------------------------- */

struct ts_vici_events {
	char *path;
	char **events;
	size_t n_events;
	int fd;
	int timeout_ms;
	unsigned generation;
	uint8_t *in; /* bytes read, not yet a whole frame */
	size_t in_len, in_cap;
	struct ts_vici_packet *pending; /* events read while registering */
	size_t n_pending, pending_cap;	/* grown as needed, up to PENDING_MAX */
};

static void events_disconnect(struct ts_vici_events *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	e->in_len = 0;
}

static void pending_clear(struct ts_vici_events *e)
{
	for (size_t i = 0; i < e->n_pending; i++)
		ts_vici_packet_done(&e->pending[i]);
	e->n_pending = 0;
}

void ts_vici_events_free(struct ts_vici_events *e)
{
	if (!e)
		return;
	events_disconnect(e);
	pending_clear(e);
	free(e->pending);
	for (size_t i = 0; i < e->n_events; i++)
		free(e->events[i]);
	free(e->events);
	free(e->in);
	free(e->path);
	free(e);
}

/* Registers every event; events of those already registered may arrive
 * before the next confirmation and are queued. */
static int events_register(struct ts_vici_events *e, ts_usec_t deadline)
{
	for (size_t i = 0; i < e->n_events; i++) {
		int r = send_packet(e->fd, TS_VICI_EVENT_REGISTER, e->events[i], NULL, deadline);

		if (r < 0)
			return r;
		for (;;) {
			struct ts_vici_packet p = { 0 };

			r = recv_packet(e->fd, deadline, &p);
			if (r < 0)
				return r;
			if (p.type == TS_VICI_EVENT_CONFIRM)
				break;
			if (p.type != TS_VICI_EVENT) {
				ts_vici_packet_done(&p);
				return p.type == TS_VICI_EVENT_UNKNOWN ? -EOPNOTSUPP : -EBADMSG;
			}
			if (e->n_pending == e->pending_cap) {
				size_t cap = e->pending_cap ? 2 * e->pending_cap : 16;
				struct ts_vici_packet *grown =
					cap > PENDING_MAX
						? NULL
						: realloc(e->pending, cap * sizeof(*e->pending));

				if (!grown) {
					ts_vici_packet_done(&p);
					return cap > PENDING_MAX ? -ENOBUFS : -ENOMEM;
				}
				e->pending = grown;
				e->pending_cap = cap;
			}
			e->pending[e->n_pending++] = p;
		}
	}
	return 0;
}

int ts_vici_events_connect(struct ts_vici_events *e)
{
	int r;

	if (e->fd >= 0)
		return 0;
	r = sock_open(e->path, &e->fd);
	if (r < 0)
		return r;
	r = events_register(e, deadline_after(e->timeout_ms));
	if (r < 0) {
		events_disconnect(e);
		pending_clear(e);
		return r;
	}
	return e->generation++ > 0 ? 1 : 2;
}

int ts_vici_events_new(const char *socket_path, const char *const *events, size_t n_events,
		       int timeout_ms, struct ts_vici_events **ret_events)
{
	struct ts_vici_events *e;
	int r;

	if (!socket_path || !*socket_path || !events || n_events == 0)
		return -EINVAL;
	for (size_t i = 0; i < n_events; i++) {
		size_t len = events[i] ? strlen(events[i]) : 0;

		if (len == 0 || len > TS_VICI_NAME_MAX)
			return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = -1;
	e->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
	e->path = strdup(socket_path);
	e->events = calloc(n_events, sizeof(*e->events));
	/* The pending events' array only when events come while
	 * registering (it was a fixed 272 KiB per event socket). */
	if (!e->path || !e->events) {
		ts_vici_events_free(e);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_events; i++) {
		e->events[i] = strdup(events[i]);
		if (!e->events[i]) {
			ts_vici_events_free(e);
			return -ENOMEM;
		}
		e->n_events++;
	}
	r = ts_vici_events_connect(e);
	if (r < 0 && r != -ENOENT && r != -ECONNREFUSED && r != -ETIMEDOUT && r != -ECONNRESET) {
		ts_vici_events_free(e);
		return r;
	}
	*ret_events = e;
	return 0;
}

int ts_vici_events_fd(const struct ts_vici_events *e)
{
	return e->fd;
}

bool ts_vici_events_connected(const struct ts_vici_events *e)
{
	return e->fd >= 0;
}

/* Passes each whole frame in the input buffer to cb; keeps a partial one. */
static int events_parse(struct ts_vici_events *e, ts_vici_event_fn cb, void *userdata, int *count)
{
	size_t off = 0;
	int r = 0;

	while (e->in_len - off >= 4) {
		struct ts_vici_packet p = { 0 };
		size_t n;

		r = ts_vici_frame_length(e->in + off, &n);
		if (r < 0)
			break;
		if (e->in_len - off - 4 < n)
			break;
		r = ts_vici_packet_decode(e->in + off + 4, n, &p);
		if (r < 0)
			break;
		off += 4 + n;
		if (p.type == TS_VICI_EVENT) {
			if (cb)
				cb(userdata, p.name, p.body);
			(*count)++;
		}
		ts_vici_packet_done(&p);
	}
	memmove(e->in, e->in + off, e->in_len - off);
	e->in_len -= off;
	return r;
}

int ts_vici_events_drain(struct ts_vici_events *e, ts_vici_event_fn cb, void *userdata)
{
	int count = 0;

	for (size_t i = 0; i < e->n_pending; i++) {
		if (cb)
			cb(userdata, e->pending[i].name, e->pending[i].body);
		count++;
	}
	pending_clear(e);
	if (e->fd < 0)
		return -ENOTCONN;
	for (;;) {
		ssize_t n;
		int r;

		if (e->in_cap - e->in_len < 4096) {
			size_t cap = e->in_cap ? e->in_cap * 2 : 16384;
			uint8_t *b;

			/* A frame is bounded: a larger backlog is garbage. */
			if (cap > 2 * (TS_VICI_MESSAGE_MAX + 4096)) {
				events_disconnect(e);
				return -EBADMSG;
			}
			b = realloc(e->in, cap);
			if (!b)
				return -ENOMEM;
			e->in = b;
			e->in_cap = cap;
		}
		n = recv(e->fd, e->in + e->in_len, e->in_cap - e->in_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return count;
			r = -errno;
			events_disconnect(e);
			return r == -EPIPE ? -ECONNRESET : r;
		}
		if (n == 0) {
			events_disconnect(e);
			return -ECONNRESET;
		}
		e->in_len += (size_t)n;
		r = events_parse(e, cb, userdata, &count);
		if (r < 0) {
			events_disconnect(e);
			return r;
		}
	}
}

int ts_vici_events_wait(struct ts_vici_events *e, int timeout_ms, ts_vici_event_fn cb,
			void *userdata)
{
	int r;

	if (e->n_pending)
		return ts_vici_events_drain(e, cb, userdata);
	if (e->fd < 0)
		return -ENOTCONN;
	r = wait_fd(e->fd, POLLIN, deadline_after(timeout_ms));
	if (r == -ETIMEDOUT)
		return 0;
	if (r < 0)
		return r;
	return ts_vici_events_drain(e, cb, userdata);
}
