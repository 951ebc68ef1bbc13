/* Tests of the daemon's loop (daemon/) over a fake agent — named as such:
 * the real agent needs charon, netlink and the API, which the e2e suites
 * (tests/e2e/daemon*.sh) bring. No root. The loop runs in a thread of its
 * own; signals go to the process (blocked here, read by its signalfd).
 * The fake's pass blocks until the test lets it go, so that what the loop
 * does *during* a pass is observable without timing assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/fileio.h"
#include "core/timeutil.h"
#include "daemon/daemon.h"
#include "daemon/http.h"
#include "model/tunnel.h"
#include "reconcile/planes.h"

/* --- the fake agent ------------------------------------------------------- */

struct fake {
	char dir[64], config[96], listen[32];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int passes_started, passes_done, opens, open_failures, carries_given;
	bool in_pass, release, block, saw_cancel;
	bool ignore_cancel;	  /* a pass stuck in a call that cannot be cut short */
	ts_usec_t grace;	  /* stop_grace; 0: 3 s */
	unsigned carried_counter; /* what a reload must keep */
	int ev_pipe[2];
	/* Events are lines on the pipe: a tunnel name, or "*" for one that
	 * names none (charon restarted, an XFRM resync). */
	char ev_names[256];
	bool ev_full;
	char scopes[8][128]; /* what each pass was given: "" full, "a,b" scoped */
	/* What the next passes answer (item by item; then 0). */
	bool unsettled[8];
	/* What the daemon told the agent after each pass (ops->idle). */
	int n_idle;
	ts_usec_t idle_quiet[8];
};

struct fake_agent {
	struct fake *f;
	unsigned counter;
	char revision[72];
};

static int fake_load(void *ctx, const char *config, const char *models_dir, struct ts_desired **ret,
		     char *errbuf, size_t errsize)
{
	struct fake *f = ctx;
	char *text = NULL;
	struct ts_desired *d;
	int r = ts_file_read_all(config, 1024, &text, NULL);

	if (r < 0)
		return snprintf(errbuf, errsize, "%s: unreadable", config), r;
	text[strcspn(text, "\n")] = '\0';
	if (strncmp(text, "bad", 3) == 0) {
		free(text);
		return snprintf(errbuf, errsize, "%s:1: invalid", config), -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	snprintf(d->revision, sizeof(d->revision), "%s", text);
	d->agent.resync_interval = 600;
	d->agent.metrics_listen = strdup(f->listen);
	d->agent.state_dir = strdup(f->dir);
	if (asprintf(&d->agent.vici_socket, "%s/vici", f->dir) < 0)
		d->agent.vici_socket = NULL;
	free(text);
	*ret = d;
	return 0;
}

static int fake_open(void *ctx, const struct ts_desired *d, const char *state_dir, void **ret)
{
	struct fake *f = ctx;
	struct fake_agent *a;

	pthread_mutex_lock(&f->lock);
	f->opens++;
	if (strncmp(d->revision, "unusable", 8) == 0) {
		f->open_failures++;
		pthread_mutex_unlock(&f->lock);
		return -EPERM;
	}
	pthread_mutex_unlock(&f->lock);
	a = calloc(1, sizeof(*a));
	a->f = f;
	snprintf(a->revision, sizeof(a->revision), "%s", d->revision);
	*ret = a;
	return 0;
}

static void fake_close(void *ctx, void *agent)
{
	free(agent);
}

static void *fake_carry_take(void *ctx, void *agent)
{
	unsigned *c = malloc(sizeof(*c));

	*c = ((struct fake_agent *)agent)->counter;
	return c;
}

static void fake_carry_give(void *ctx, void *agent, void *carry)
{
	struct fake *f = ctx;

	((struct fake_agent *)agent)->counter = *(unsigned *)carry;
	pthread_mutex_lock(&f->lock);
	f->carries_given++;
	f->carried_counter = *(unsigned *)carry;
	pthread_mutex_unlock(&f->lock);
	free(carry);
}

static int fake_pass(void *ctx, void *agent, const char *const *names, size_t n,
		     struct ts_daemon_pass *ret)
{
	struct fake *f = ctx;
	struct fake_agent *a = agent;
	bool unsettled;

	pthread_mutex_lock(&f->lock);
	if (f->passes_started < 8) {
		char *sc = f->scopes[f->passes_started];

		for (size_t i = 0; i < n; i++)
			snprintf(sc + strlen(sc), sizeof(f->scopes[0]) - strlen(sc), "%s%s",
				 i ? "," : "", names[i]);
	}
	unsettled = f->passes_started < 8 && f->unsettled[f->passes_started];
	f->passes_started++;
	f->in_pass = true;
	pthread_cond_broadcast(&f->cond);
	while (f->block && !f->release) {
		struct timespec ts;

		if (ts_cancel_requested() && !f->ignore_cancel) {
			f->saw_cancel = true;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	f->release = false;
	f->in_pass = false;
	f->passes_done++;
	a->counter++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	*ret = (struct ts_daemon_pass){ .planes_ok = true,
					.scoped = n > 0,
					.events_unsettled = unsettled };
	return 0;
}

static void fake_fds(void *ctx, void *agent, int *ike, int *xfrm)
{
	*ike = ((struct fake *)ctx)->ev_pipe[0];
	*xfrm = -1;
}

static int fake_events(void *ctx, void *agent)
{
	struct fake *f = ctx;
	char buf[64];
	ssize_t n;
	bool any = false;

	while ((n = read(f->ev_pipe[0], buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		any = true;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			if (strcmp(line, "*") == 0 || strcmp(line, "e") == 0)
				f->ev_full = true;
			else
				snprintf(f->ev_names + strlen(f->ev_names),
					 sizeof(f->ev_names) - strlen(f->ev_names), "%s\n", line);
		}
	}
	return any;
}

/* As the planes do: the names since the last call, or 0 (full). */
static int fake_event_scope(void *ctx, void *agent, char ***ret, size_t *ret_n)
{
	struct fake *f = ctx;
	char **names = calloc(16, sizeof(*names));
	size_t n = 0;
	bool full = f->ev_full;

	for (char *line = strtok(f->ev_names, "\n"); line && n < 16; line = strtok(NULL, "\n"))
		names[n++] = strdup(line);
	f->ev_names[0] = '\0';
	f->ev_full = false;
	if (full || !n) {
		while (n)
			free(names[--n]);
		free(names);
		return 0;
	}
	*ret = names;
	*ret_n = n;
	return 1;
}

static int fake_metrics(void *ctx, void *agent, char **ret)
{
	return asprintf(ret, "fake_counter %u\n", ((struct fake_agent *)agent)->counter) < 0
		       ? -ENOMEM
		       : 0;
}

static bool fake_ready(void *ctx, void *agent, char *buf, size_t size)
{
	if (((struct fake_agent *)agent)->counter)
		return true;
	snprintf(buf, size, "no pass has completed yet");
	return false;
}

static void fake_idle(void *ctx, void *agent, ts_usec_t quiet)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	if (f->n_idle < 8)
		f->idle_quiet[f->n_idle] = quiet;
	f->n_idle++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static const struct ts_daemon_ops fake_ops = {
	.load = fake_load,
	.open = fake_open,
	.close = fake_close,
	.carry_take = fake_carry_take,
	.carry_give = fake_carry_give,
	.pass = fake_pass,
	.fds = fake_fds,
	.process_events = fake_events,
	.event_scope = fake_event_scope,
	.metrics = fake_metrics,
	.ready = fake_ready,
	.idle = fake_idle,
};

/* --- harness ---------------------------------------------------------------- */

struct run {
	struct fake *f;
	struct ts_daemon_options o;
	pthread_t thread;
	atomic_int rc;
	atomic_bool done;
};

static void *run_main(void *p)
{
	struct run *r = p;

	atomic_store(&r->rc, ts_daemon_run_with(&r->o, &fake_ops, r->f));
	atomic_store(&r->done, true);
	return NULL;
}

static void write_config(struct fake *f, const char *text)
{
	assert_int_equal(ts_file_write_atomic(f->config, text, strlen(text), 0600), 0);
}

static void start(struct run *r, struct fake *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->o = (struct ts_daemon_options){ .config = f->config,
					   .stop_grace =
						   f->grace ? f->grace : 3 * TS_USEC_PER_SEC };
	assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
}

static int finish(struct run *r)
{
	kill(getpid(), SIGTERM);
	pthread_join(r->thread, NULL);
	return atomic_load(&r->rc);
}

/* Waits (bounded: a hang fails, it never passes) until *v >= want. */
static void wait_at_least(struct fake *f, const int *v, int want)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&f->lock);
	while (*v < want)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&f->lock);
	assert_true(*v >= want);
}

static void release_pass(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->release = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* One HTTP request; returns the status (0: no answer within wait_s
 * seconds) and the body. */
static int http_within(const struct fake *f, const char *request, char *body, size_t size,
		       int wait_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	int fd, status = 0;
	struct timeval tv = { wait_s, 0 };

	sa.sin_port = htons((uint16_t)atoi(strchr(f->listen, ':') + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 100 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0; i++) {
		close(fd);
		usleep(20 * 1000);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	(void)!write(fd, request, strlen(request));
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	sscanf(buf, "HTTP/1.%*d %d", &status);
	if (body) {
		const char *b = strstr(buf, "\r\n\r\n");

		snprintf(body, size, "%s", b ? b + 4 : "");
	}
	return status;
}

static int http(const struct fake *f, const char *request, char *body, size_t size)
{
	return http_within(f, request, body, size, 5);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ts-daemon-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->config, sizeof(f->config), "%s/config", f->dir);
	/* PID-derived port: parallel runs do not collide. */
	snprintf(f->listen, sizeof(f->listen), "127.0.0.1:%d", 20000 + getpid() % 20000);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pipe2(f->ev_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	write_config(f, "rev1\n");
	ts_cancel_reset();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	char cmd[128];

	close(f->ev_pipe[0]);
	close(f->ev_pipe[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- tests -------------------------------------------------------------------- */

/* While a pass is held, /healthz, /metrics and /readyz answer, signals
 * are read, and the pass keeps running (it was never waited on). */
static void test_http_answers_during_pass(void **state)
{
	struct fake *f = *state;
	struct run r;
	char body[4096];

	f->block = true;
	start(&r, f);
	wait_at_least(f, &f->passes_started, 1);
	assert_int_equal(http(f, "GET /healthz HTTP/1.0\r\n\r\n", body, sizeof(body)), 200);
	assert_string_equal(body, "ok\n");
	assert_int_equal(http(f, "GET /readyz HTTP/1.0\r\n\r\n", body, sizeof(body)), 503);
	assert_non_null(strstr(body, "no pass has completed yet"));
	pthread_mutex_lock(&f->lock);
	assert_true(f->in_pass); /* answered while the pass was running */
	pthread_mutex_unlock(&f->lock);
	release_pass(f);
	wait_at_least(f, &f->passes_done, 1);
	f->block = false;
	/* The loop publishes after the pass; poll for it (bounded). */
	for (int i = 0; i < 100; i++) {
		if (http(f, "GET /readyz HTTP/1.0\r\n\r\n", body, sizeof(body)) == 200)
			break;
		usleep(20 * 1000);
	}
	assert_int_equal(http(f, "GET /readyz HTTP/1.0\r\n\r\n", body, sizeof(body)), 200);
	/* HEAD, query strings, other methods, unknown paths */
	assert_int_equal(http(f, "HEAD /healthz HTTP/1.0\r\n\r\n", body, sizeof(body)), 200);
	assert_string_equal(body, "");
	assert_int_equal(http(f, "GET /metrics?x=1&y HTTP/1.0\r\n\r\n", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "fake_counter 1\n"));
	assert_non_null(strstr(body, "tunnelsync_config_last_reload_successful 1\n"));
	assert_int_equal(http(f, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", body,
			      sizeof(body)),
			 405);
	assert_int_equal(http(f, "DELETE /healthz HTTP/1.0\r\n\r\n", NULL, 0), 405);
	assert_int_equal(http(f, "GET /nothing HTTP/1.0\r\n\r\n", NULL, 0), 404);
	assert_int_equal(finish(&r), 0);
}

/* Events during a pass coalesce into one follow-up pass, run at once
 * when it ends; an event when idle starts a pass at once (no debounce). */
static void test_events_coalesce(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->block = true;
	start(&r, f);
	wait_at_least(f, &f->passes_started, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(write(f->ev_pipe[1], "e", 1), 1);
	f->block = false;
	release_pass(f);
	wait_at_least(f, &f->passes_done, 2);
	usleep(200 * 1000); /* a third pass would have started by now */
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->passes_started, 2);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(write(f->ev_pipe[1], "e", 1), 1);
	wait_at_least(f, &f->passes_done, 3);
	assert_int_equal(finish(&r), 0);
}

static void event(struct fake *f, const char *line)
{
	assert_int_equal(write(f->ev_pipe[1], line, strlen(line)), (ssize_t)strlen(line));
}

static void assert_scope(struct fake *f, int pass, const char *want)
{
	pthread_mutex_lock(&f->lock);
	assert_string_equal(f->scopes[pass], want);
	pthread_mutex_unlock(&f->lock);
}

/* Events naming tunnels make the next pass scoped to them (each once,
 * those of a burst during a pass together); an event naming none (charon
 * restarted), the start, SIGHUP and config changes make full passes. */
static void test_event_scope(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->block = true;
	start(&r, f);
	wait_at_least(f, &f->passes_started, 1);
	event(f, "t07\n"); /* during the first pass: the follow-up takes it */
	event(f, "t02\nt07\n");
	f->block = false;
	release_pass(f);
	wait_at_least(f, &f->passes_done, 2);
	assert_scope(f, 0, ""); /* the start: full */
	assert_scope(f, 1, "t07,t02");
	event(f, "t03\n");
	wait_at_least(f, &f->passes_done, 3);
	assert_scope(f, 2, "t03");
	/* One event naming no tunnel among named ones: a full pass. */
	f->block = true;
	event(f, "t04\n");
	wait_at_least(f, &f->passes_started, 4);
	event(f, "t05\n*\n");
	f->block = false;
	release_pass(f);
	wait_at_least(f, &f->passes_done, 5);
	assert_scope(f, 3, "t04");
	assert_scope(f, 4, "");
	kill(getpid(), SIGHUP);
	wait_at_least(f, &f->passes_done, 6);
	assert_scope(f, 5, "");
	assert_int_equal(finish(&r), 0);
}

/* A pass whose own events the state it left does not settle is followed
 * by one at once; a settled one is not followed by anything. */
static void test_followup_only_when_unsettled(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->unsettled[1] = true; /* the second pass (the event's) */
	start(&r, f);
	wait_at_least(f, &f->passes_done, 1);
	event(f, "t01\n");
	wait_at_least(f, &f->passes_done, 3); /* the event's, then the follow-up */
	usleep(300 * 1000);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->passes_started, 3);
	pthread_mutex_unlock(&f->lock);
	assert_scope(f, 2, ""); /* events the agent took: a full pass */
	event(f, "t01\n");
	wait_at_least(f, &f->passes_done, 4);
	usleep(300 * 1000);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->passes_started, 4); /* settled: no follow-up */
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(finish(&r), 0);
}

/* After a pass the agent is told how long no pass is due (its API client
 * then closes connections it would not reuse): the resync interval after
 * a settled pass; nothing after one followed at once. */
static void test_idle_after_pass(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->unsettled[0] = true; /* the start's pass: a follow-up at once */
	start(&r, f);
	wait_at_least(f, &f->passes_done, 2);
	wait_at_least(f, &f->n_idle, 1);
	usleep(100 * 1000);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->n_idle, 1);
	assert_true(f->idle_quiet[0] > 590 * TS_USEC_PER_SEC);
	assert_true(f->idle_quiet[0] <= 600 * TS_USEC_PER_SEC);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(finish(&r), 0);
}

/* SIGTERM during a pass: the pass sees the cancellation, the loop waits
 * for it and returns 0 (well within the grace). */
static void test_sigterm_mid_pass(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->block = true;
	start(&r, f);
	wait_at_least(f, &f->passes_started, 1);
	assert_int_equal(finish(&r), 0);
	assert_true(f->saw_cancel);
	assert_int_equal(f->passes_done, 1);
}

/* SIGTERM during a pass that does not stop: the loop gives up after
 * stop_grace and returns 0; the worker, released later, finishes on what
 * the loop left it (no use of a returned frame: valgrind would say). */
static void test_stuck_pass_abandoned(void **state)
{
	struct fake *f = *state;
	struct run r;

	f->block = true;
	f->ignore_cancel = true;
	f->grace = 300 * 1000;
	start(&r, f);
	wait_at_least(f, &f->passes_started, 1);
	assert_int_equal(finish(&r), 0);
	pthread_mutex_lock(&f->lock);
	assert_int_equal(f->passes_done, 0); /* returned while the pass ran */
	pthread_mutex_unlock(&f->lock);
	release_pass(f);
	wait_at_least(f, &f->passes_done, 1);
	usleep(100 * 1000); /* the worker's last write and exit */
}

/* A revision whose agent cannot open keeps the last good one (reopened,
 * with its counters); SIGHUP and passes go on; an invalid config too. */
static void wait_counter_is_passes(struct fake *f, char *body, size_t size)
{
	char want[64] = "";

	/* Every pass counts 1 on the agent it ran on; a carried counter
	 * therefore equals the passes done. Poll: the loop publishes after. */
	for (int i = 0; i < 100; i++) {
		pthread_mutex_lock(&f->lock);
		snprintf(want, sizeof(want), "fake_counter %d\n", f->passes_done);
		pthread_mutex_unlock(&f->lock);
		if (http(f, "GET /metrics HTTP/1.0\r\n\r\n", body, size) == 200 &&
		    strstr(body, want))
			break;
		usleep(20 * 1000);
	}
	assert_non_null(strstr(body, want));
}

static void test_reload_keeps_last_good(void **state)
{
	struct fake *f = *state;
	struct run r;
	char body[4096];
	int failures;

	start(&r, f);
	wait_at_least(f, &f->passes_done, 1);
	write_config(f, "unusable-state-dir\n"); /* inotify reloads it, and SIGHUP */
	kill(getpid(), SIGHUP);
	wait_at_least(f, &f->open_failures, 1);
	wait_at_least(f, &f->passes_done, 2);
	pthread_mutex_lock(&f->lock);
	failures = f->open_failures;
	/* rev1, then per attempt: unusable (refused) and rev1 again */
	assert_int_equal(f->opens, 1 + 2 * failures);
	assert_int_equal(f->carries_given, failures);
	assert_true(f->carried_counter >= 1);
	pthread_mutex_unlock(&f->lock);
	wait_counter_is_passes(f, body, sizeof(body)); /* counted on, not from 0 */
	assert_non_null(strstr(body, "tunnelsync_config_last_reload_successful 0\n"));
	assert_non_null(strstr(body, "tunnelsync_config_info{revision=\"rev1\"} 1\n"));

	write_config(f, "bad\n");
	kill(getpid(), SIGHUP);
	wait_at_least(f, &f->passes_done, 3);
	write_config(f, "rev2\n");
	kill(getpid(), SIGHUP);
	wait_at_least(f, &f->passes_done, 4);
	pthread_mutex_lock(&f->lock);
	failures = f->open_failures;
	assert_int_equal(f->carries_given, failures + 1); /* rev2 opened once */
	pthread_mutex_unlock(&f->lock);
	wait_counter_is_passes(f, body, sizeof(body));
	assert_non_null(strstr(body, "tunnelsync_config_last_reload_successful 1\n"));
	assert_non_null(strstr(body, "tunnelsync_config_info{revision=\"rev2\"} 1\n"));
	assert_int_equal(finish(&r), 0);
}

/* 200 connections that never send a byte, and one trickling client: a
 * probe is still answered, the loop goes on (SIGHUP passes), and /healthz
 * answers after they are gone. */
static void test_hostile_clients(void **state)
{
	struct fake *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fds[600], n = 0, trickle;
	struct run r;

	start(&r, f);
	wait_at_least(f, &f->passes_done, 1);
	assert_int_equal(http(f, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0), 200);
	sa.sin_port = htons((uint16_t)atoi(strchr(f->listen, ':') + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	/* More than twice the connection cap (TS_HTTP_CONNECTION_LIMIT):
	 * half silent, half with a request begun and never ended. */
	for (int i = 0; i < 600; i++) {
		fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fds[n], (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			if (n % 2)
				(void)!write(fds[n], "GET /he", 7);
			n++;
			usleep(2000); /* as they come: each accepted before the next */
		} else {
			close(fds[n]);
		}
	}
	assert_true(n > 2 * TS_HTTP_CONNECTION_LIMIT);
	/* Over the cap, a probe is answered among them, each time, well
	 * before any of them times out (TS_HTTP_CONNECTION_TIMEOUT, 5 s): the
	 * longest idle ones yield. Without that it waits in the listen queue
	 * until idle ones time out. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(http_within(f, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0, 1), 200);
	trickle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	(void)connect(trickle, (struct sockaddr *)&sa, sizeof(sa));
	for (int i = 0; i < 3; i++) {
		kill(getpid(), SIGHUP);
		wait_at_least(f, &f->passes_done, 2 + i);
		(void)!write(trickle, "G", 1);
		usleep(300 * 1000);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(trickle);
	for (int i = 0; i < 100; i++) {
		if (http(f, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0) == 200)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(http(f, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0), 200);
	assert_int_equal(finish(&r), 0);
}

/* Which kernel events ask for a pass: only the agent's own objects (by
 * if_id, mark, reqid); another IKE daemon's SAs and policies do not. */
static void test_foreign_xfrm_events_ignored(void **state)
{
	static const uint32_t if_ids[] = { 101 };
	struct ts_xfrm_owner owner = {
		.if_ids = if_ids, .n_if_ids = 1, .reqid_min = 1000, .reqid_max = 1999
	};
	struct ts_xfrm_event ev = { .type = TS_XFRM_EVENT_SA_DEL };

	ev.sa.if_id = 101;
	assert_true(ts_planes_xfrm_event_owned(&owner, &ev));
	ev.sa.if_id = 7; /* someone else's */
	assert_false(ts_planes_xfrm_event_owned(&owner, &ev));
	ev.sa.reqid = 1500;
	assert_true(ts_planes_xfrm_event_owned(&owner, &ev));
	memset(&ev, 0, sizeof(ev));
	ev.type = TS_XFRM_EVENT_POLICY_DEL;
	ev.policy.if_id = 7;
	assert_false(ts_planes_xfrm_event_owned(&owner, &ev));
	ev.policy.if_id = 101;
	assert_true(ts_planes_xfrm_event_owned(&owner, &ev));
	memset(&ev, 0, sizeof(ev));
	ev.type = TS_XFRM_EVENT_ACQUIRE;
	ev.acquire.policy.if_id = 9;
	assert_false(ts_planes_xfrm_event_owned(&owner, &ev));
}

/* Which IKE events ask for a pass: our connections' coming and going (and
 * one naming no connection); not rekeys, which at 1,000 tunnels come every
 * second (each cost a pass and a Cloudflare list), not log lines, not
 * another daemon's connections. */
static void test_ike_events_that_ask(void **state)
{
	static const struct {
		const char *event;
		enum ts_ike_event_kind kind;
		const char *conn;
		bool asks;
	} cases[] = {
		{ "ike-updown", TS_IKE_EVENT_IKE_DOWN, "ts-a", true },
		{ "ike-updown", TS_IKE_EVENT_CONNECT_FAILED, "ts-a", true },
		{ "ike-updown", TS_IKE_EVENT_IKE_UP, "ts-a", true },
		{ "child-updown", TS_IKE_EVENT_CHILD_DOWN, "ts-a", true },
		{ "child-updown", TS_IKE_EVENT_CHILD_UP, "ts-a", true },
		{ "ike-updown", TS_IKE_EVENT_OTHER, "", true },
		{ "ike-rekey", TS_IKE_EVENT_IKE_REKEY, "ts-a", false },
		{ "child-rekey", TS_IKE_EVENT_CHILD_REKEY, "ts-a", false },
		{ "log", TS_IKE_EVENT_AUTH_FAILED, "ts-a", false },
		{ "ike-updown", TS_IKE_EVENT_IKE_DOWN, "office-vpn", false },
		{ "child-updown", TS_IKE_EVENT_CHILD_DOWN, "office-vpn", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ts_ike_event ev = { .kind = cases[i].kind };

		snprintf(ev.conn, sizeof(ev.conn), "%s", cases[i].conn);
		if (ts_planes_ike_event_asks(cases[i].event, &ev) != cases[i].asks)
			fail_msg("%s %s: asks %d", cases[i].event, cases[i].conn, !cases[i].asks);
	}
}

/* Policy-based tunnels' kernel objects carry only a reqid: the map names
 * their tunnel (declared or learnt reqids; a reqid seen again for another
 * tunnel moves), for SAs, policies (any template) and acquires; other
 * reqids name none. */
static void test_reqid_map(void **state)
{
	struct ts_reqid_map m = { 0 };
	struct ts_xfrm_event ev = { .type = TS_XFRM_EVENT_SA_DEL };
	(void)state;

	/* out of order, more than the first allocation */
	for (uint32_t r = 40; r >= 1; r--)
		assert_int_equal(ts_reqid_map_set(&m, 1000 + r * 7, r), 0);
	assert_int_equal(ts_reqid_map_set(&m, 0, 3), -EINVAL);
	assert_int_equal(m.n, 40);
	for (size_t i = 1; i < m.n; i++)
		assert_true(m.v[i - 1].reqid < m.v[i].reqid);
	ev.sa.reqid = 1000 + 5 * 7;
	assert_int_equal(ts_reqid_map_event(&m, &ev), 5);
	ev.sa.reqid = 1001; /* someone else's */
	assert_int_equal(ts_reqid_map_event(&m, &ev), -1);
	ev.sa.reqid = 0;
	assert_int_equal(ts_reqid_map_event(&m, &ev), -1);
	/* charon gave reqid 1035 to another tunnel since */
	assert_int_equal(ts_reqid_map_set(&m, 1035, 9), 0);
	assert_int_equal(m.n, 40);
	ev.sa.reqid = 1035;
	assert_int_equal(ts_reqid_map_event(&m, &ev), 9);

	memset(&ev, 0, sizeof(ev));
	ev.type = TS_XFRM_EVENT_POLICY_DEL;
	ev.policy.n_tmpl = 2;
	ev.policy.tmpl[0].reqid = 5;
	assert_int_equal(ts_reqid_map_event(&m, &ev), -1);
	ev.policy.tmpl[1].reqid = 1000 + 40 * 7;
	assert_int_equal(ts_reqid_map_event(&m, &ev), 40);
	memset(&ev, 0, sizeof(ev));
	ev.type = TS_XFRM_EVENT_ACQUIRE;
	ev.acquire.policy.n_tmpl = 1;
	ev.acquire.policy.tmpl[0].reqid = 1007;
	assert_int_equal(ts_reqid_map_event(&m, &ev), 1);
	ts_reqid_map_done(&m);
	assert_int_equal(ts_reqid_map_event(&m, &ev), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_http_answers_during_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_coalesce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_followup_only_when_unsettled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_after_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_mid_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stuck_pass_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_last_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_clients, setup, teardown),
		cmocka_unit_test(test_foreign_xfrm_events_ignored),
		cmocka_unit_test(test_reqid_map),
		cmocka_unit_test(test_ike_events_that_ask),
	};
	sigset_t mask;

	/* The loop's signalfd reads these; no thread may take them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
