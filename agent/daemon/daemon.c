/* Owns the daemon's loop: one poll() over a signalfd, an inotify fd, an
 * eventfd the pass worker writes when it is done, and (while no pass
 * runs) the agent's event sockets, with deadlines for the next pass, the
 * watchdog and a heartbeat tick. The agent is touched by one thread at a
 * time: the worker while a pass runs, the loop otherwise — so no lock
 * guards it. Tells systemd (Type=notify) when ready and feeds its
 * watchdog from the loop, without libsystemd: one datagram to
 * $NOTIFY_SOCKET. */
#include "daemon/daemon.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/log.h"
#include "core/util.h"
#include "daemon/http.h"
#include "model/tunnel.h"
#include "version.h"

#define DEFAULT_SETTLE	   (100 * 1000)
#define DEFAULT_RETRY	   (30 * TS_USEC_PER_SEC)
#define DEFAULT_STOP_GRACE (5 * TS_USEC_PER_SEC)
/* Fallback when inotify cannot see the VICI socket's folder. */
#define RECONNECT_EVERY	   (30 * TS_USEC_PER_SEC)
#define RECONNECT_FAST	   (100 * 1000)
#define RECONNECT_FAST_FOR (5 * TS_USEC_PER_SEC)
/* The loop turns at least this often: heartbeat, fresh metrics. */
#define TICK (5 * TS_USEC_PER_SEC)
/* A pass running longer than this is stuck: the watchdog is no longer fed,
 * so that systemd restarts the daemon (the journal resumes the pass). */
#define PASS_STUCK (15 * 60 * TS_USEC_PER_SEC)
/* More tunnels named by the events before a pass: a full pass. */
#define SCOPE_MAX 16

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
	const struct ts_daemon_ops *ops;
	void *ctx;
	struct ts_desired *desired;
	void *agent;
	int sig_fd, ino_fd, done_fd;
	char watched_dir[PATH_MAX];
	int wd_parent, wd_target, wd_vici;
	char vici_dir[PATH_MAX];
	/* the pass worker */
	pthread_t worker;
	struct pass_job *job;
	bool busy;
	ts_usec_t busy_since;
	struct ts_daemon_pass result;
	/* what is asked for */
	ts_usec_t pass_at; /* monotonic; 0 = none scheduled */
	const char *cause; /* why the scheduled pass runs */
	/* The tunnels drift events named since the last pass began: the next
	 * pass is scoped to them (first), unless scope_full (an event that
	 * named none, or too many). */
	char *scope[SCOPE_MAX];
	size_t n_scope;
	bool scope_full;
	bool reload;
	bool events_kick; /* read the agent's events now (VICI socket back) */
	ts_usec_t reconnect_at;
	/* The socket file appears at bind(), a moment before charon listens:
	 * after it appears, retry every RECONNECT_FAST until then. */
	ts_usec_t fast_reconnect_until;
	ts_usec_t reload_at; /* a config file changed: reload then */
	bool stop;
	ts_usec_t stop_deadline;
	/* systemd */
	ts_usec_t watchdog_every, watchdog_at;
	bool ready_sent, stuck_logged;
	/* reloads */
	bool reload_ok;
	ts_usec_t reload_ok_at; /* wall clock */
	unsigned reloads_failed;
	char not_loaded[256]; /* why the last reload did not take */
	/* HTTP */
	struct ts_http *http;
	char http_addr[128];
	ts_usec_t publish_at;
	unsigned passes;
};

static ts_usec_t mono_from_wall(ts_usec_t wall)
{
	return ts_now_monotonic() + (wall - ts_now_realtime());
}

static void schedule(struct daemon *d, ts_usec_t at, const char *cause)
{
	if (!d->pass_at || at < d->pass_at) {
		d->pass_at = at;
		d->cause = cause;
	}
}

static void publish(struct daemon *d)
{
	char *agent_text = NULL, *text = NULL, why[384] = "";
	bool ready = false;

	if (!d->http || d->busy)
		return;
	if (d->agent) {
		(void)d->ops->metrics(d->ctx, d->agent, &agent_text);
		ready = d->ops->ready(d->ctx, d->agent, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "no agent: %s", d->not_loaded);
	}
	if (asprintf(&text,
		     "%s"
		     "# HELP tunnelsync_config_last_reload_successful 1 when the last config "
		     "change was loaded and its agent opened.\n"
		     "# TYPE tunnelsync_config_last_reload_successful gauge\n"
		     "tunnelsync_config_last_reload_successful %d\n"
		     "# HELP tunnelsync_config_last_reload_success_timestamp_seconds When a "
		     "config revision was last loaded.\n"
		     "# TYPE tunnelsync_config_last_reload_success_timestamp_seconds gauge\n"
		     "tunnelsync_config_last_reload_success_timestamp_seconds %.3f\n"
		     "# HELP tunnelsync_config_reload_failures_total Config changes not taken "
		     "(invalid, or their agent could not open).\n"
		     "# TYPE tunnelsync_config_reload_failures_total counter\n"
		     "tunnelsync_config_reload_failures_total %u\n"
		     "# HELP tunnelsync_config_info The config revision in force.\n"
		     "# TYPE tunnelsync_config_info gauge\n"
		     "tunnelsync_config_info{revision=\"%s\"} 1\n",
		     agent_text ? agent_text : "", d->reload_ok ? 1 : 0,
		     (double)d->reload_ok_at / TS_USEC_PER_SEC, d->reloads_failed,
		     d->desired ? d->desired->revision : "") < 0)
		text = NULL;
	free(agent_text);
	ts_http_publish(d->http, text, ready, why);
}

static void http_update(struct daemon *d)
{
	const char *want = d->desired ? d->desired->agent.metrics_listen : NULL;
	int r;

	if ((want && strcmp(want, d->http_addr) == 0) || (!want && !d->http))
		return;
	ts_http_stop(d->http);
	d->http = NULL;
	d->http_addr[0] = '\0';
	if (!want)
		return;
	r = ts_http_start(want, &d->http);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, NULL, NULL, "cannot listen on %s for metrics: %s", want,
			strerror(-r));
		return;
	}
	snprintf(d->http_addr, sizeof(d->http_addr), "%s", want);
	ts_logf(TS_LOG_INFO, NULL, NULL, "metrics and health on http://%s/metrics", want);
}

static void dir_of(const char *path, char *buf, size_t size)
{
	const char *slash;

	snprintf(buf, size, "%s", path);
	slash = strrchr(buf, '/');
	if (!slash)
		snprintf(buf, size, ".");
	else if (slash == buf)
		buf[1] = '\0';
	else
		buf[slash - buf] = '\0';
}

/* Watches the folder holding the config path (a git-sync link is swapped
 * there) and, when the path resolves to a folder, that folder (files
 * edited in place). Re-armed after each load: the link target moves.
 * Also the VICI socket's folder: charon coming back creates the socket,
 * and the loop reconnects at once instead of on a timer. */
static void watch_paths(struct daemon *d)
{
	char parent[PATH_MAX], resolved[PATH_MAX], vdir[PATH_MAX];

	dir_of(d->o->config, parent, sizeof(parent));
	if (d->wd_parent < 0)
		d->wd_parent = inotify_add_watch(d->ino_fd, parent,
						 IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
							 IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB);
	if (d->desired && d->desired->agent.vici_socket) {
		dir_of(d->desired->agent.vici_socket, vdir, sizeof(vdir));
		if (strcmp(vdir, d->vici_dir) != 0 || d->wd_vici < 0) {
			if (d->wd_vici >= 0 && d->wd_vici != d->wd_parent)
				inotify_rm_watch(d->ino_fd, d->wd_vici);
			d->wd_vici = inotify_add_watch(d->ino_fd, vdir,
						       IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
			snprintf(d->vici_dir, sizeof(d->vici_dir), "%s", vdir);
		}
	}
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

/* Opens an agent for desired; on failure, says why in d->not_loaded. */
static int agent_open(struct daemon *d, const struct ts_desired *desired, void **ret_agent)
{
	int r = d->ops->open(d->ctx, desired, d->o->state_dir, ret_agent);

	if (r < 0)
		snprintf(d->not_loaded, sizeof(d->not_loaded),
			 "revision %s: the agent cannot open (%s; see the log)", desired->revision,
			 strerror(-r));
	return r;
}

/* Loads the config; keeps the last good one (and its agent) when the new
 * one is invalid or its agent cannot open. Returns 1 when the desired
 * state changed, 0 when not, -errno when there is nothing to run. */
static int reload(struct daemon *d)
{
	struct ts_desired *nd = NULL;
	void *na = NULL, *carry = NULL;
	char text[4096];
	int r;

	r = d->ops->load(d->ctx, d->o->config, d->o->models_dir, &nd, text, sizeof(text));
	if (r < 0) {
		watch_paths(d);
		if (!d->desired)
			return ts_logf(TS_LOG_ERROR, "config", NULL, "%s", text), r;
		ts_logf(TS_LOG_ERROR, "config", NULL, "%s (keeping revision %s)", text,
			d->desired->revision);
		snprintf(d->not_loaded, sizeof(d->not_loaded), "invalid config: %.200s", text);
		d->reload_ok = false;
		d->reloads_failed++;
		return 0;
	}
	if (d->desired && d->agent && strcmp(nd->revision, d->desired->revision) == 0) {
		ts_desired_free(nd);
		watch_paths(d);
		return 0;
	}
	/* The old agent goes first: it holds the state directory's lock. What
	 * it counted and what the API told it (budget, Retry-After) go on. */
	if (d->agent) {
		carry = d->ops->carry_take(d->ctx, d->agent);
		d->ops->close(d->ctx, d->agent);
		d->agent = NULL;
	}
	r = agent_open(d, nd, &na);
	if (r < 0) {
		d->reload_ok = false;
		d->reloads_failed++;
		if (!d->desired) {
			free(carry);
			ts_desired_free(nd);
			return ts_logf(TS_LOG_ERROR, "config", NULL, "%s", d->not_loaded), r;
		}
		ts_logf(TS_LOG_ERROR, "config", NULL, "%s: keeping revision %s", d->not_loaded,
			d->desired->revision);
		ts_desired_free(nd);
		/* Back to the last good revision's agent (it opened before). */
		if (agent_open(d, d->desired, &d->agent) < 0) {
			ts_logf(TS_LOG_ERROR, "config", NULL,
				"revision %s cannot open again either: %s; retrying",
				d->desired->revision, d->not_loaded);
			d->agent = NULL;
			free(carry);
		} else {
			d->ops->carry_give(d->ctx, d->agent, carry);
		}
		watch_paths(d);
		return 0;
	}
	if (carry)
		d->ops->carry_give(d->ctx, na, carry);
	ts_logf(TS_LOG_INFO, "config", NULL, "revision %s loaded (%zu tunnels)", nd->revision,
		nd->n_tunnels);
	ts_log_set_revision(nd->revision);
	ts_desired_free(d->desired);
	d->desired = nd;
	d->agent = na;
	d->reload_ok = true;
	d->reload_ok_at = ts_now_realtime();
	d->not_loaded[0] = '\0';
	watch_paths(d);
	http_update(d);
	return 1;
}

/* What the worker owns: on the heap, not in the loop's frame, so that a
 * worker the loop gave up on (stop_grace) never writes into a returned
 * stack frame. */
struct pass_job {
	const struct ts_daemon_ops *ops;
	void *ctx, *agent;
	int done_fd;
	char *names[SCOPE_MAX]; /* a scoped pass's tunnels (owned) */
	size_t n_names;
	struct ts_daemon_pass result;
};

static void job_free(struct pass_job *job)
{
	for (size_t i = 0; job && i < job->n_names; i++)
		free(job->names[i]);
	free(job);
}

static void scope_clear(struct daemon *d)
{
	for (size_t i = 0; i < d->n_scope; i++)
		free(d->scope[i]);
	d->n_scope = 0;
	d->scope_full = false;
}

/* Takes names (and the array). */
static void scope_merge(struct daemon *d, char **names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		for (size_t k = 0; k < d->n_scope && !dup; k++)
			dup = strcmp(d->scope[k], names[i]) == 0;
		if (dup || d->scope_full) {
			free(names[i]);
		} else if (d->n_scope == SCOPE_MAX) {
			free(names[i]);
			d->scope_full = true;
		} else {
			d->scope[d->n_scope++] = names[i];
		}
	}
	free(names);
}

/* A pass the loop stopped waiting for keeps what it uses: the job, its
 * agent and desired state, its eventfd (still reachable, not leaked). */
static struct {
	struct pass_job *volatile job; /* volatile: stores never read stay */
	struct ts_desired *volatile desired;
} abandoned;

static void *worker_main(void *userdata)
{
	struct pass_job *job = userdata;
	uint64_t one = 1;

	job->result.error = job->ops->pass(job->ctx, job->agent, (const char *const *)job->names,
					   job->n_names, &job->result);
	/* The loop joins on this; nothing of job is touched after it. */
	(void)!write(job->done_fd, &one, sizeof(one));
	return NULL;
}

static int pass_start(struct daemon *d)
{
	char names[160] = "";
	int r;

	d->job = calloc(1, sizeof(*d->job));
	if (!d->job)
		return -ENOMEM;
	*d->job = (struct pass_job){
		.ops = d->ops, .ctx = d->ctx, .agent = d->agent, .done_fd = d->done_fd
	};
	/* Drift events named these tunnels: they go first. */
	if (!d->scope_full && d->n_scope) {
		size_t len = 0;

		for (size_t i = 0; i < d->n_scope; i++) {
			d->job->names[i] = d->scope[i];
			if (len < sizeof(names))
				len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
							i ? ", " : "; scoped: ", d->scope[i]);
		}
		d->job->n_names = d->n_scope;
		d->n_scope = 0; /* moved */
	}
	scope_clear(d);
	ts_logf(TS_LOG_DEBUG, NULL, NULL, "pass %u starts (%s%s)", d->passes + 1,
		d->cause ? d->cause : "timer", names);
	d->pass_at = 0;
	d->busy = true;
	d->busy_since = ts_now_monotonic();
	ts_log_set_cause(d->cause);
	r = pthread_create(&d->worker, NULL, worker_main, d->job);
	if (r != 0) {
		job_free(d->job);
		d->job = NULL;
		d->busy = false;
		return -r;
	}
	return 0;
}

static void events(struct daemon *d);

/* The worker said it is done: join it and plan what comes next. */
static void pass_done(struct daemon *d)
{
	struct ts_daemon_pass *res = &d->result;
	ts_usec_t now = ts_now_monotonic();
	ts_usec_t retry = d->o->retry ? d->o->retry : DEFAULT_RETRY;
	ts_usec_t next = now + (ts_usec_t)d->desired->agent.resync_interval * TS_USEC_PER_SEC;
	uint64_t n;
	char text[160];

	(void)!read(d->done_fd, &n, sizeof(n));
	pthread_join(d->worker, NULL);
	d->result = d->job->result;
	job_free(d->job);
	d->job = NULL;
	d->busy = false;
	d->passes++;
	ts_log_set_cause(NULL);
	if (res->error < 0) {
		ts_logf(TS_LOG_ERROR, NULL, NULL, "pass failed: %s", strerror(-res->error));
		schedule(d, now + retry, "retry");
		malloc_trim(0); /* as below */
		return;
	}
	ts_logf(res->changes || res->n_applied ? TS_LOG_INFO : TS_LOG_DEBUG, NULL, NULL,
		"pass: %zu actions, %u applied%s, %u pending, %u failed (%.3f s)", res->n_actions,
		res->n_applied, res->scoped ? " (scoped first)" : "", res->n_pending, res->n_failed,
		(double)(now - d->busy_since) / TS_USEC_PER_SEC);
	if (res->n_pending || res->n_failed || !res->planes_ok)
		next = now + retry;
	/* Progress with work left (a redundancy group rotates one tunnel a
	 * pass): go on at once rather than after the retry delay. */
	if (res->n_applied && res->n_pending && !res->n_failed)
		next = now;
	snprintf(text, sizeof(text), "STATUS=%s: %u applied, %u pending, %u failed",
		 res->n_failed || !res->planes_ok ? "Stalled"
		 : res->n_pending		  ? "Reconciling"
						  : "Ready",
		 res->n_applied, res->n_pending, res->n_failed);
	sd_notify_text(text);
	if (res->next_due && mono_from_wall(res->next_due) < next)
		next = mono_from_wall(res->next_due) > now ? mono_from_wall(res->next_due) : now;
	schedule(d, next, next == now ? "progress" : "timer");
	/* Till then the API client's connections would only idle (the
	 * daemon's RSS between resyncs: tests/bench/idle-scale.sh). */
	if (d->ops->idle && d->agent && d->pass_at > now && !res->events_unsettled)
		d->ops->idle(d->ctx, d->agent, d->pass_at - now);
	/* The pass's observations are freed, but glibc keeps their pages (in
	 * the worker's arena too): hand them back, so that an idle daemon holds
	 * what it keeps, not the peak of its last pass (tests/bench/
	 * idle-scale.sh). */
	malloc_trim(0);
	/* Events the pass read itself and the state it left does not settle
	 * ask for a pass at once; events after that are read now. */
	if (res->events_unsettled)
		schedule(d, now, "event");
	events(d);
	if (!d->ready_sent) {
		sd_notify_text("READY=1");
		d->ready_sent = true;
	}
}

static void handle_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			ts_logf(TS_LOG_INFO, NULL, NULL, "SIGHUP: reloading and reconciling");
			d->reload = true;
			schedule(d, ts_now_monotonic(), "SIGHUP");
		} else if (!d->stop) {
			ts_logf(TS_LOG_INFO, NULL, NULL, "signal %u: stopping%s", si.ssi_signo,
				d->busy ? " (the running pass stops at its next safe step)" : "");
			d->stop = true;
			d->stop_deadline =
				ts_now_monotonic() +
				(d->o->stop_grace ? d->o->stop_grace : DEFAULT_STOP_GRACE);
			ts_cancel_request();
		}
	}
}

static void handle_inotify(struct daemon *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *sock = d->desired ? strrchr(d->desired->agent.vici_socket, '/') : NULL;
	const char *base = strrchr(d->o->config, '/');
	bool config = false;
	ssize_t n;

	base = base ? base + 1 : d->o->config;
	sock = sock ? sock + 1 : d->desired ? d->desired->agent.vici_socket : NULL;
	while ((n = read(d->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->wd == d->wd_vici && ev->len && sock && strcmp(ev->name, sock) == 0)
				d->events_kick = true;
			/* In the config's folder only the config path itself
			 * (a file replaced, a link swapped); in the folder it
			 * resolves to, anything. The VICI folder may be either. */
			if (ev->wd == d->wd_target ||
			    (ev->wd == d->wd_parent && (!ev->len || strcmp(ev->name, base) == 0)))
				config = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	/* A reload first; a pass only if the revision changed. */
	if (config && !d->reload_at)
		d->reload_at =
			ts_now_monotonic() + (d->o->debounce ? d->o->debounce : DEFAULT_SETTLE);
}

static void events(struct daemon *d)
{
	char **names = NULL;
	size_t n = 0;

	if (!d->agent || d->ops->process_events(d->ctx, d->agent) <= 0)
		return;
	if (d->ops->event_scope && d->ops->event_scope(d->ctx, d->agent, &names, &n) > 0 && n)
		scope_merge(d, names, n);
	else
		d->scope_full = true;
	ts_logf(TS_LOG_DEBUG, NULL, NULL, "events ask for a pass%s",
		d->busy ? " (after the running one)" : "");
	schedule(d, ts_now_monotonic(), "event");
}

int ts_daemon_run_with(const struct ts_daemon_options *o, const struct ts_daemon_ops *ops,
		       void *ctx)
{
	struct daemon d = { .o = o,
			    .ops = ops,
			    .ctx = ctx,
			    .sig_fd = -1,
			    .ino_fd = -1,
			    .done_fd = -1,
			    .wd_parent = -1,
			    .wd_target = -1,
			    .wd_vici = -1 };
	const char *wd = getenv("WATCHDOG_USEC");
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	/* Before any thread starts: the worker and libmicrohttpd's threads
	 * inherit the mask, and only the signalfd sees these. */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	/* One malloc arena for every thread: glibc gives the worker (and
	 * libmicrohttpd's thread) arenas of their own, each keeping pages of
	 * its last peak that malloc_trim cannot hand back between the objects
	 * still alive there; the threads hardly ever allocate at once (1,000
	 * tunnels idle: RSS 20.5 -> 18.1 MiB, tests/bench/idle-scale.sh). */
	(void)mallopt(M_ARENA_MAX, 1);
	ts_cancel_reset();
	d.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	d.done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d.sig_fd < 0 || d.ino_fd < 0 || d.done_fd < 0) {
		r = -errno;
		goto out;
	}
	if (wd && atoll(wd) > 0)
		d.watchdog_every = atoll(wd) / 2;

	r = reload(&d);
	if (r < 0)
		goto out;
	schedule(&d, ts_now_monotonic(), "start");
	publish(&d);
	for (;;) {
		struct pollfd p[6];
		int n = 0, ike_fd = -1, xfrm_fd = -1, timeout, ike_at = -1, xfrm_at = -1;
		ts_usec_t now = ts_now_monotonic(), wake = now + TICK;

		ts_http_heartbeat(d.http, now);
		if (d.stop && !d.busy) {
			r = 0;
			break;
		}
		if (d.stop && now >= d.stop_deadline) {
			ts_logf(TS_LOG_WARN, NULL, NULL,
				"the pass did not stop within %.1f s; exiting without it (the "
				"journal resumes any rotation it left)",
				(double)(o->stop_grace ? o->stop_grace : DEFAULT_STOP_GRACE) /
					TS_USEC_PER_SEC);
			sd_notify_text("STOPPING=1");
			/* The worker still uses the agent: neither is freed. */
			pthread_detach(d.worker);
			abandoned.job = d.job;
			abandoned.desired = d.desired;
			ts_http_stop(d.http);
			if (d.ino_fd >= 0)
				close(d.ino_fd);
			if (d.sig_fd >= 0)
				close(d.sig_fd);
			pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
			return 0;
		}
		if (!d.busy && !d.stop) {
			if (d.events_kick) {
				d.events_kick = false;
				d.fast_reconnect_until = now + RECONNECT_FAST_FOR;
				d.reconnect_at = 0;
				events(&d);
			}
			if (d.reload_at && d.reload_at <= now) {
				d.reload_at = 0;
				r = reload(&d);
				if (r < 0)
					goto out;
				if (r > 0)
					schedule(&d, now, "config");
				publish(&d);
				continue;
			}
			if (d.pass_at && d.pass_at <= now) {
				if (d.reload || !d.agent) {
					d.reload = false;
					r = reload(&d);
					if (r < 0)
						goto out;
				}
				if (d.agent) {
					r = pass_start(&d);
					if (r < 0)
						goto out;
				} else {
					schedule(&d, now + (o->retry ? o->retry : DEFAULT_RETRY),
						 "retry");
					publish(&d);
				}
				continue;
			}
		}
		/* Fed from the loop, which a pass never holds; a stuck pass
		 * (PASS_STUCK) stops it, so that systemd restarts us. */
		if (d.watchdog_every && now >= d.watchdog_at) {
			if (!d.busy || now - d.busy_since < PASS_STUCK) {
				sd_notify_text("WATCHDOG=1");
			} else if (!d.stuck_logged) {
				ts_logf(TS_LOG_ERROR, NULL, NULL,
					"a pass has run for %lld s: no longer feeding the watchdog",
					(long long)((now - d.busy_since) / TS_USEC_PER_SEC));
				d.stuck_logged = true;
			}
			d.watchdog_at = now + d.watchdog_every;
		}
		if (!d.busy && d.agent)
			d.ops->fds(d.ctx, d.agent, &ike_fd, &xfrm_fd);
		if (!d.busy && d.agent && ike_fd < 0) {
			if (!d.reconnect_at)
				d.reconnect_at =
					now + (now < d.fast_reconnect_until ? RECONNECT_FAST
									    : RECONNECT_EVERY);
			if (d.reconnect_at <= now) {
				d.reconnect_at = 0;
				events(&d);
				continue;
			}
			if (d.reconnect_at < wake)
				wake = d.reconnect_at;
		}
		p[n++] = (struct pollfd){ d.sig_fd, POLLIN, 0 };
		p[n++] = (struct pollfd){ d.ino_fd, POLLIN, 0 };
		p[n++] = (struct pollfd){ d.done_fd, POLLIN, 0 };
		if (ike_fd >= 0) {
			ike_at = n;
			p[n++] = (struct pollfd){ ike_fd, POLLIN, 0 };
		}
		if (xfrm_fd >= 0) {
			xfrm_at = n;
			p[n++] = (struct pollfd){ xfrm_fd, POLLIN, 0 };
		}
		if (!d.busy && !d.stop && d.pass_at && d.pass_at < wake)
			wake = d.pass_at;
		if (!d.busy && !d.stop && d.reload_at && d.reload_at < wake)
			wake = d.reload_at;
		if (d.watchdog_every && d.watchdog_at < wake)
			wake = d.watchdog_at;
		if (d.stop && d.stop_deadline < wake)
			wake = d.stop_deadline;
		timeout = wake <= now ? 0 : (int)((wake - now + 999) / 1000);
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		if (p[0].revents)
			handle_signal(&d);
		if (p[1].revents)
			handle_inotify(&d);
		if (p[2].revents && d.busy) {
			pass_done(&d);
			publish(&d);
		}
		if ((ike_at >= 0 && p[ike_at].revents) || (xfrm_at >= 0 && p[xfrm_at].revents)) {
			d.reconnect_at = 0;
			events(&d);
		}
		/* Fresh figures (ages, "rate-limited until") now and then. */
		if (!d.busy && ts_now_monotonic() >= d.publish_at) {
			publish(&d);
			d.publish_at = ts_now_monotonic() + TICK;
		}
	}
out:
	sd_notify_text("STOPPING=1");
	if (d.busy) {
		/* Only on a fatal error: let the pass end, it holds the agent. */
		ts_cancel_request();
		pthread_join(d.worker, NULL);
		job_free(d.job);
	}
	scope_clear(&d);
	ts_http_stop(d.http);
	if (d.agent)
		ops->close(ctx, d.agent);
	ts_desired_free(d.desired);
	if (d.done_fd >= 0)
		close(d.done_fd);
	if (d.ino_fd >= 0)
		close(d.ino_fd);
	if (d.sig_fd >= 0)
		close(d.sig_fd);
	pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
	return r;
}

int ts_daemon_run(const struct ts_daemon_options *o)
{
	return ts_daemon_run_with(o, &ts_daemon_agent_ops, NULL);
}
