/* Owns the daemon's loop: one poll() over a signalfd, an inotify fd and
 * the agent's event sockets (VICI, XFRM), with one deadline for the next
 * pass. poll() over five descriptors rebuilt each turn keeps reconnects
 * (charon restarting gives a new socket) trivial; epoll would buy nothing
 * at this size. Tells systemd (Type=notify) when ready and feeds its
 * watchdog, without libsystemd: one datagram to $NOTIFY_SOCKET. */
#include "daemon/daemon.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/util.h"
#include "reconcile/agent.h"
#include "reconcile/plan.h"

#define DEFAULT_DEBOUNCE (1 * TS_USEC_PER_SEC)
#define DEFAULT_RETRY	 (30 * TS_USEC_PER_SEC)
#define RECONNECT_EVERY	 (5 * TS_USEC_PER_SEC)

static void sd_notify_text(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

struct daemon {
	const struct ts_daemon_options *o;
	struct ts_desired *desired;
	struct ts_agent *agent;
	int sig_fd, ino_fd;
	char watched_dir[PATH_MAX];
	int wd_parent, wd_target;
	ts_usec_t pass_at; /* monotonic; 0 = none scheduled */
	ts_usec_t reconnect_at;
	ts_usec_t watchdog_every;
	ts_usec_t watchdog_at;
	bool reload;
	int http_fd;
	char http_addr[128];
};

/* --- metrics and health over HTTP ------------------------------------------
 * A deliberately small server: one request per connection, read with a
 * short timeout, answered and closed, on the loopback address the operator
 * names (metrics-listen). /metrics (Prometheus text), /healthz (the loop is
 * alive), /readyz (the last pass read every plane and failed nothing). */

static int http_listen(const char *spec)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;
	long port;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
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
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void http_reply(int fd, const char *status, const char *body)
{
	char head[256];
	size_t blen = strlen(body);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, blen);

	if (write(fd, head, (size_t)n) == n)
		(void)!write(fd, body, blen);
}

static void http_serve(struct daemon *d)
{
	struct timeval tv = { 1, 0 };
	char req[1024];
	ssize_t n = 0, got;
	int fd = accept4(d->http_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (n < (ssize_t)sizeof(req) - 1 &&
	       (got = read(fd, req + n, sizeof(req) - 1 - (size_t)n)) > 0) {
		n += got;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n > 0 ? n : 0] = '\0';
	if (strncmp(req, "GET /metrics ", 13) == 0) {
		char *text = NULL;

		if (d->agent && ts_agent_metrics_text(d->agent, &text) == 0)
			http_reply(fd, "200 OK", text);
		else
			http_reply(fd, "503 Service Unavailable", "no agent\n");
		free(text);
	} else if (strncmp(req, "GET /healthz ", 13) == 0) {
		http_reply(fd, "200 OK", "ok\n");
	} else if (strncmp(req, "GET /readyz ", 12) == 0) {
		if (d->agent && ts_agent_ready(d->agent))
			http_reply(fd, "200 OK", "ready\n");
		else
			http_reply(fd, "503 Service Unavailable", "not ready\n");
	} else {
		http_reply(fd, "404 Not Found", "not found\n");
	}
	close(fd);
}

static void http_update(struct daemon *d)
{
	const char *want = d->desired ? d->desired->agent.metrics_listen : NULL;

	if ((want && strcmp(want, d->http_addr) == 0) || (!want && d->http_fd < 0))
		return;
	if (d->http_fd >= 0)
		close(d->http_fd);
	d->http_fd = -1;
	d->http_addr[0] = '\0';
	if (!want)
		return;
	d->http_fd = http_listen(want);
	if (d->http_fd < 0) {
		ts_logf(TS_LOG_ERROR, NULL, NULL, "cannot listen on %s for metrics: %s", want,
			strerror(-d->http_fd));
		d->http_fd = -1;
		return;
	}
	snprintf(d->http_addr, sizeof(d->http_addr), "%s", want);
	ts_logf(TS_LOG_INFO, NULL, NULL, "metrics and health on http://%s/metrics", want);
}

static ts_usec_t mono_from_wall(ts_usec_t wall)
{
	return ts_now_monotonic() + (wall - ts_now_realtime());
}

static void schedule(struct daemon *d, ts_usec_t at)
{
	if (!d->pass_at || at < d->pass_at)
		d->pass_at = at;
}

/* Watches the folder holding the config path (a git-sync link is swapped
 * there) and, when the path resolves to a folder, that folder (files
 * edited in place). Re-armed after each load: the link target moves. */
static void watch_config(struct daemon *d)
{
	char parent[PATH_MAX], resolved[PATH_MAX];
	const char *slash;

	snprintf(parent, sizeof(parent), "%s", d->o->config);
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		parent[slash - parent] = '\0';
	if (d->wd_parent < 0)
		d->wd_parent = inotify_add_watch(d->ino_fd, parent,
						 IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
							 IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB);
	if (!realpath(d->o->config, resolved))
		return;
	if (strcmp(resolved, d->watched_dir) == 0)
		return;
	if (d->wd_target >= 0)
		inotify_rm_watch(d->ino_fd, d->wd_target);
	d->wd_target = inotify_add_watch(d->ino_fd, resolved,
					 IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
						 IN_CLOSE_WRITE | IN_ATTRIB | IN_ONLYDIR);
	snprintf(d->watched_dir, sizeof(d->watched_dir), "%s", resolved);
}

/* Loads the config; keeps the last good one (and its agent) when the new
 * one is invalid. Returns 1 when the desired state changed. */
static int reload(struct daemon *d)
{
	struct ts_config_error err = { 0 };
	struct ts_desired *nd = NULL;
	struct ts_agent_options ao = { .state_dir = d->o->state_dir, .watch = true };
	struct ts_agent *na = NULL;
	char text[4096];
	int r;

	r = ts_config_load(d->o->config, d->o->models_dir, &nd, &err);
	watch_config(d);
	if (r < 0) {
		ts_config_error_format(&err, text, sizeof(text));
		ts_config_error_done(&err);
		if (!d->desired)
			return ts_logf(TS_LOG_ERROR, "config", NULL, "%s", text), r;
		ts_logf(TS_LOG_ERROR, "config", NULL, "%s (keeping revision %s)", text,
			d->desired->revision);
		return 0;
	}
	if (d->desired && strcmp(nd->revision, d->desired->revision) == 0) {
		ts_desired_free(nd);
		return 0;
	}
	/* The old agent goes first: it holds the state directory's lock. */
	ts_agent_free(d->agent);
	d->agent = NULL;
	r = ts_agent_open(nd, &ao, &na);
	if (r < 0) {
		ts_desired_free(nd);
		return r;
	}
	ts_logf(TS_LOG_INFO, "config", NULL, "revision %s loaded (%zu tunnels)", nd->revision,
		nd->n_tunnels);
	ts_desired_free(d->desired);
	d->desired = nd;
	d->agent = na;
	http_update(d);
	return 1;
}

static void run_pass(struct daemon *d)
{
	struct ts_pass_result res = { 0 };
	ts_usec_t now = ts_now_monotonic();
	ts_usec_t next = now + (ts_usec_t)d->desired->agent.resync_interval * TS_USEC_PER_SEC;
	ts_usec_t due;
	char text[160];
	int r;

	d->pass_at = 0;
	r = ts_agent_pass(d->agent, NULL, 0, &res);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, NULL, NULL, "pass failed: %s", strerror(-r));
		next = now + (d->o->retry ? d->o->retry : DEFAULT_RETRY);
	} else {
		ts_logf(ts_plan_has_changes(res.plan) ? TS_LOG_INFO : TS_LOG_DEBUG, NULL, NULL,
			"pass: %zu actions, %u applied, %u pending, %u failed", res.plan->n_actions,
			res.n_applied, res.n_pending, res.n_failed);
		if (res.n_pending || res.n_failed || !res.planes_ok)
			next = now + (d->o->retry ? d->o->retry : DEFAULT_RETRY);
		/* Progress with work left (a redundancy group rotates one tunnel
		 * a pass): go on at once rather than after the retry delay. */
		if (res.n_applied && res.n_pending && !res.n_failed)
			next = now + (d->o->debounce ? d->o->debounce : DEFAULT_DEBOUNCE);
		snprintf(text, sizeof(text), "STATUS=%s: %u applied, %u pending, %u failed",
			 res.n_failed || !res.planes_ok ? "Stalled"
			 : res.n_pending		? "Reconciling"
							: "Ready",
			 res.n_applied, res.n_pending, res.n_failed);
		sd_notify_text(text);
	}
	ts_pass_result_done(&res);
	due = ts_agent_next_due(d->agent);
	if (due && mono_from_wall(due) < next)
		next = mono_from_wall(due) > now ? mono_from_wall(due) : now;
	schedule(d, next);
}

static int handle_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			ts_logf(TS_LOG_INFO, NULL, NULL, "SIGHUP: reloading and reconciling");
			d->reload = true;
			d->pass_at = ts_now_monotonic();
		} else {
			ts_logf(TS_LOG_INFO, NULL, NULL, "signal %u: stopping", si.ssi_signo);
			return 1;
		}
	}
	return 0;
}

static void handle_inotify(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(d->ino_fd, buf, sizeof(buf)) > 0)
		;
	d->reload = true;
	schedule(d, ts_now_monotonic() + (d->o->debounce ? d->o->debounce : DEFAULT_DEBOUNCE));
}

int ts_daemon_run(const struct ts_daemon_options *o)
{
	struct daemon d = {
		.o = o, .sig_fd = -1, .ino_fd = -1, .wd_parent = -1, .wd_target = -1, .http_fd = -1
	};
	const char *wd = getenv("WATCHDOG_USEC");
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	d.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.sig_fd < 0 || d.ino_fd < 0) {
		r = -errno;
		goto out;
	}
	if (wd && atoll(wd) > 0)
		d.watchdog_every = atoll(wd) / 2;

	r = reload(&d);
	if (r < 0)
		goto out;
	d.pass_at = ts_now_monotonic();
	for (bool ready = false;;) {
		struct pollfd p[5];
		int n = 0, ike_fd, xfrm_fd, timeout, http_at = -1;
		ts_usec_t now = ts_now_monotonic(), wake = d.pass_at;

		if (d.pass_at && d.pass_at <= now) {
			if (d.reload) {
				d.reload = false;
				r = reload(&d);
				if (r < 0)
					goto out;
			}
			run_pass(&d);
			if (!ready) {
				sd_notify_text("READY=1");
				ready = true;
			}
			continue;
		}
		if (d.watchdog_every && now >= d.watchdog_at) {
			sd_notify_text("WATCHDOG=1");
			d.watchdog_at = now + d.watchdog_every;
		}
		ts_agent_fds(d.agent, &ike_fd, &xfrm_fd);
		if (ike_fd < 0 && (!d.reconnect_at || d.reconnect_at <= now))
			d.reconnect_at = now + RECONNECT_EVERY;
		p[n++] = (struct pollfd){ d.sig_fd, POLLIN, 0 };
		p[n++] = (struct pollfd){ d.ino_fd, POLLIN, 0 };
		if (ike_fd >= 0)
			p[n++] = (struct pollfd){ ike_fd, POLLIN, 0 };
		if (xfrm_fd >= 0)
			p[n++] = (struct pollfd){ xfrm_fd, POLLIN, 0 };
		if (d.http_fd >= 0) {
			http_at = n;
			p[n++] = (struct pollfd){ d.http_fd, POLLIN, 0 };
		}
		if (ike_fd < 0 && (!wake || d.reconnect_at < wake))
			wake = d.reconnect_at;
		if (d.watchdog_every && (!wake || d.watchdog_at < wake))
			wake = d.watchdog_at;
		timeout = !wake ? -1 : wake <= now ? 0 : (int)((wake - now) / 1000 + 1);
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		if (p[0].revents && handle_signal(&d) > 0) {
			r = 0;
			break;
		}
		if (p[1].revents)
			handle_inotify(&d);
		if (http_at >= 0 && p[http_at].revents)
			http_serve(&d);
		/* Agent events (and charon reconnects) ask for a debounced pass. */
		if ((ike_fd >= 0 && p[2].revents) ||
		    (xfrm_fd >= 0 && p[ike_fd >= 0 ? 3 : 2].revents) ||
		    (ike_fd < 0 && ts_now_monotonic() >= d.reconnect_at)) {
			if (ts_agent_process_events(d.agent) > 0)
				schedule(&d, ts_now_monotonic() + (o->debounce ? o->debounce
									       : DEFAULT_DEBOUNCE));
			d.reconnect_at = 0;
		}
	}
out:
	sd_notify_text("STOPPING=1");
	ts_agent_free(d.agent);
	ts_desired_free(d.desired);
	if (d.http_fd >= 0)
		close(d.http_fd);
	if (d.ino_fd >= 0)
		close(d.ino_fd);
	if (d.sig_fd >= 0)
		close(d.sig_fd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	return r;
}
