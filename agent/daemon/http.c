/* Owns the HTTP endpoints: libmicrohttpd with its internal polling thread
 * (epoll where available), a per-connection timeout and a connection cap,
 * so that slow, silent or early-closing clients cost a slot for a few
 * seconds and nothing else. SIGPIPE is ignored process-wide (main.c) and
 * libmicrohttpd sends with MSG_NOSIGNAL besides. */
#include "daemon/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct ts_http {
	struct MHD_Daemon *mhd;
	int listen_fd;
	pthread_mutex_t lock;
	char *metrics;	   /* under lock */
	bool ready;	   /* under lock */
	char reason[512];  /* under lock */
	atomic_llong beat; /* monotonic usec of the loop's last turn */
	/* Connections with no request under way, the longest idle first
	 * (libmicrohttpd's thread only: no lock). */
	struct slot *idle_head, *idle_tail;
	unsigned n_idle;
	unsigned long evicted;
};

static int listen_on(const char *spec)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;
	long port;
	char *end;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		host[strlen(host) - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* One connection (its socket context): idle from accept until its
 * request's headers are in, and again after each answer (keep-alive). */
struct slot {
	struct slot *prev, *next;
	int fd;
	bool idle;
};

static void idle_remove(struct ts_http *h, struct slot *s)
{
	if (!s->idle)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		h->idle_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		h->idle_tail = s->prev;
	s->prev = s->next = NULL;
	s->idle = false;
	h->n_idle--;
}

static void idle_add(struct ts_http *h, struct slot *s)
{
	if (s->idle)
		return;
	s->prev = h->idle_tail;
	s->next = NULL;
	if (h->idle_tail)
		h->idle_tail->next = s;
	else
		h->idle_head = s;
	h->idle_tail = s;
	s->idle = true;
	h->n_idle++;
}

/* A connection that sent no request (silent, trickling, or kept alive and
 * quiet) yields its slot to a newcomer once TS_HTTP_IDLE_MAX are idle:
 * the longest idle one is shut down (libmicrohttpd then reads its end and
 * closes it). A probe's request is read at once, so a probe is never the
 * longest idle; however many idle clients there are, the cap is never
 * reached by them and a probe always gets a slot. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct ts_http *h = cls;
	struct slot *s = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (s) {
			idle_remove(h, s);
			free(s);
		}
		*socket_context = NULL;
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	{
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		s->fd = ci ? ci->connect_fd : -1;
	}
	*socket_context = s;
	while (h->n_idle >= TS_HTTP_IDLE_MAX && h->idle_head) {
		struct slot *old = h->idle_head;

		idle_remove(h, old);
		if (old->fd >= 0)
			(void)shutdown(old->fd, SHUT_RDWR);
		if (h->evicted++ % 100 == 0)
			log_debug("http: %u connections idle: the longest idle one is closed "
				  "(%lu so far)",
				  (unsigned)TS_HTTP_IDLE_MAX, h->evicted);
	}
	idle_add(h, s);
}

static struct slot *slot_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* An answer is sent: the connection may idle again (keep-alive). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct slot *s = slot_of(conn);

	(void)con_cls;
	if (s && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		idle_add(cls, s);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

#define TEXT	"text/plain; charset=utf-8"
#define METRICS "text/plain; version=0.0.4; charset=utf-8"

/* libmicrohttpd hands the path without the query string; HEAD gets the
 * GET answer without its body. Everything is answered at the first call,
 * before any request body is read: no endpoint takes one. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct ts_http *h = cls;
	struct slot *slot = slot_of(conn);
	enum MHD_Result ret;
	char body[600];

	/* Its headers are in: a request under way is never closed for a
	 * newcomer. */
	if (slot)
		idle_remove(h, slot);

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT, "method not allowed\n");
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/livez") == 0) {
		ts_usec_t age = ts_now_monotonic() - (ts_usec_t)atomic_load(&h->beat);

		if (age <= TS_HTTP_HEARTBEAT_MAX)
			return reply(conn, MHD_HTTP_OK, TEXT, "ok\n");
		snprintf(body, sizeof(body), "event loop stalled for %lld s\n",
			 (long long)(age / TS_USEC_PER_SEC));
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, body);
	}
	if (strcmp(url, "/readyz") == 0) {
		bool ready;

		pthread_mutex_lock(&h->lock);
		ready = h->ready;
		snprintf(body, sizeof(body), "%s\n", ready ? "ready" : h->reason);
		pthread_mutex_unlock(&h->lock);
		return reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, body);
	}
	if (strcmp(url, "/metrics") == 0) {
		pthread_mutex_lock(&h->lock);
		if (h->metrics)
			ret = reply(conn, MHD_HTTP_OK, METRICS, h->metrics);
		else
			ret = reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, "no metrics yet\n");
		pthread_mutex_unlock(&h->lock);
		return ret;
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, TEXT, "not found\n");
}

/* libmicrohttpd's printf-style logger (the attribute lets clang's
 * -Wformat-nonliteral see that fmt is a format). */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: %s", line);
}

int ts_http_start(const char *listen, struct ts_http **ret_http)
{
	struct ts_http *h = calloc(1, sizeof(*h));
	int fd;

	if (!h)
		return -ENOMEM;
	fd = listen_on(listen);
	if (fd < 0) {
		free(h);
		return fd;
	}
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->reason, sizeof(h->reason), "starting: no pass has completed yet");
	atomic_store(&h->beat, (long long)ts_now_monotonic());
	h->listen_fd = fd;
	h->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		handle, h, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)TS_HTTP_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)TS_HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(32 * 1024), MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		NULL, MHD_OPTION_END);
	if (!h->mhd) {
		close(fd);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return -EIO;
	}
	*ret_http = h;
	return 0;
}

void ts_http_stop(struct ts_http *h)
{
	if (!h)
		return;
	/* libmicrohttpd closes the listening socket it was given. */
	MHD_stop_daemon(h->mhd);
	pthread_mutex_destroy(&h->lock);
	free(h->metrics);
	free(h);
}

void ts_http_publish(struct ts_http *h, char *metrics, bool ready, const char *reason)
{
	char *old;

	if (!h) {
		free(metrics);
		return;
	}
	pthread_mutex_lock(&h->lock);
	old = h->metrics;
	h->metrics = metrics;
	h->ready = ready;
	snprintf(h->reason, sizeof(h->reason), "%s", reason && reason[0] ? reason : "not ready");
	pthread_mutex_unlock(&h->lock);
	free(old);
}

void ts_http_heartbeat(struct ts_http *h, ts_usec_t now)
{
	if (h)
		atomic_store(&h->beat, (long long)now);
}
