/* tunnelsync command line: parses common options, dispatches to a command,
 * and turns results into exit codes. The only place that exits. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/log.h"
#include "daemon/daemon.h"
#include "reconcile/agent.h"
#include "reconcile/plan.h"
#include "core/secret.h"
#include "core/util.h"
#include "version.h"
#ifdef TS_HAVE_CONFIG
#include "config/config.h"
#endif

/* Exit codes of the command-line contract (DESIGN.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	  /* error, or invalid config for validate */
	EXIT_PENDING = 2, /* plan: changes pending */
	EXIT_USAGE = 64,
};

struct options {
	const char *config;
	const char *models_dir;
	const char *state_dir;
	bool json;
	bool dry_run;
	bool cancel; /* rotate --cancel */
	char **args; /* positional arguments after the command */
	int n_args;
};

struct command {
	const char *name;
	const char *synopsis;
	const char *help;
	int (*run)(const struct options *o);
};

static int cmd_version(const struct options *o)
{
	printf("tunnelsync %s\n", TUNNELSYNC_VERSION);
	return EXIT_OK;
}

#ifdef TS_HAVE_CONFIG
static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

static void print_tunnel(const struct ts_tunnel *t)
{
	char local[TS_PREFIX_STRLEN], remote[TS_PREFIX_STRLEN], mode[48];

	ts_ip_format(&t->customer_endpoint, local, sizeof(local));
	ts_ip_format(&t->cloudflare_endpoint, remote, sizeof(remote));
	if (t->routing.mode == TS_MODE_POLICY)
		snprintf(mode, sizeof(mode), "policy-based/%zu", t->routing.n_selectors);
	else if (t->routing.has_if_id)
		snprintf(mode, sizeof(mode), "route-based/if-id=%u", t->routing.if_id);
	else
		snprintf(mode, sizeof(mode), "route-based/mark=0x%x", t->routing.mark);
	printf("  %-16s %-32s %-12s %-15s -> %-15s %-24s %-8s %s%s\n", t->name, t->id,
	       or_dash(t->gateway), local, remote, mode, ts_psk_source_to_string(t->psk.source),
	       or_dash(t->redundancy_group), t->enabled ? "" : " (disabled)");
}

/* validate CONFIG: 0 valid, 1 invalid (file:line: path: message). */
static int cmd_validate(const struct options *o)
{
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	const char *config = o->config;
	char text[4096];
	int r;

	if (o->n_args == 1 && !o->config)
		config = o->args[0];
	else if (o->n_args > 0 || !config) {
		fprintf(stderr, "Usage: tunnelsync validate CONFIG\n");
		return EXIT_USAGE;
	}
	r = ts_config_load(config, o->models_dir, &d, &err);
	if (r < 0) {
		if (err.message || err.file) {
			ts_config_error_format(&err, text, sizeof(text));
			fprintf(stderr, "%s\n", text);
		} else {
			fprintf(stderr, "%s: %s\n", config, strerror(-r));
		}
		ts_config_error_done(&err);
		return EXIT_FAIL;
	}
	printf("%s: valid\nrevision: %s\ntunnels: %zu\n", config, d->revision, d->n_tunnels);
	if (d->n_tunnels)
		printf("  %-16s %-32s %-12s %-15s    %-15s %-24s %-8s %s\n", "NAME", "ID",
		       "GATEWAY", "CUSTOMER", "CLOUDFLARE", "MODE", "PSK", "GROUP");
	for (size_t i = 0; i < d->n_tunnels; i++)
		print_tunnel(&d->tunnels[i]);
	ts_desired_free(d);
	return EXIT_OK;
}

/* Loads the config named by -c; prints the error the way validate does. */
static int load_config(const struct options *o, struct ts_desired **ret)
{
	struct ts_config_error err = { 0 };
	char text[4096];
	int r;

	if (!o->config) {
		fprintf(stderr, "tunnelsync: -c CONFIG is required\n");
		return -EINVAL;
	}
	r = ts_config_load(o->config, o->models_dir, ret, &err);
	if (r < 0) {
		if (err.message || err.file)
			ts_config_error_format(&err, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "%s: %s", o->config, strerror(-r));
		fprintf(stderr, "%s\n", text);
		ts_config_error_done(&err);
	}
	return r;
}

/* plan, once, rotate: one pass with the agent. */
static int run_pass(const struct options *o, bool readonly, const char *const *forced,
		    size_t n_forced, struct ts_pass_result *ret_result, struct ts_desired **ret_d)
{
	struct ts_agent_options ao = {
		.state_dir = o->state_dir,
		.readonly = readonly,
		.dry_run = o->dry_run,
	};
	struct ts_desired *d = NULL;
	struct ts_agent *a = NULL;
	int r;

	r = load_config(o, &d);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_forced; i++) {
		if (!ts_desired_find(d, forced[i])) {
			fprintf(stderr, "tunnelsync: no tunnel named '%s' in %s\n", forced[i],
				o->config);
			ts_desired_free(d);
			return -ENOENT;
		}
	}
	r = ts_agent_open(d, &ao, &a);
	if (r < 0) {
		ts_desired_free(d);
		return r;
	}
	/* `rotate`: the request outlives this run (a deferred redundancy
	 * group member rotates in a later pass) until done or cancelled. */
	if (n_forced > 0 && !readonly && !o->dry_run)
		r = ts_agent_request_rotations(a, forced, n_forced);
	if (r >= 0)
		r = ts_agent_pass(a, forced, n_forced, ret_result);
	ts_agent_free(a);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, NULL, NULL, "pass failed: %s", strerror(-r));
		ts_desired_free(d);
		return r;
	}
	*ret_d = d;
	return 0;
}

static int print_plan(const struct options *o, const struct ts_plan *plan)
{
	char *text = NULL;
	int r = o->json ? ts_plan_format_json(plan, &text) : ts_plan_format_table(plan, &text);

	if (r < 0)
		return r;
	if (o->json)
		printf("%s\n", text);
	else if (text[0])
		fputs(text, stdout);
	else
		printf("in sync: nothing to do\n");
	free(text);
	return 0;
}

static int cmd_plan(const struct options *o)
{
	struct ts_pass_result res = { 0 };
	struct ts_desired *d = NULL;
	int r;

	if (o->n_args > 0) {
		fprintf(stderr, "Usage: tunnelsync plan -c CONFIG [--json]\n");
		return EXIT_USAGE;
	}
	if (run_pass(o, true, NULL, 0, &res, &d) < 0)
		return EXIT_FAIL;
	r = print_plan(o, res.plan);
	/* A plane not read is an error, whatever else the plan holds: neither
	 * "in sync" nor "these changes" can be said of it. */
	r = r < 0 || !res.planes_ok || res.n_store_problems ? EXIT_FAIL
	    : ts_plan_has_changes(res.plan)		    ? EXIT_PENDING
							    : EXIT_OK;
	ts_pass_result_done(&res);
	ts_desired_free(d);
	return r;
}

static int pass_exit(const struct options *o, const struct ts_pass_result *res)
{
	printf("pass: %zu actions, %u applied, %u pending, %u failed%s\n", res->plan->n_actions,
	       res->n_applied, res->n_pending, res->n_failed,
	       o->dry_run ? " (dry run: nothing changed)" : "");
	if (res->n_failed || !res->planes_ok || res->n_store_problems)
		return EXIT_FAIL;
	if (res->n_pending || (o->dry_run && ts_plan_has_changes(res->plan)))
		return EXIT_PENDING;
	return EXIT_OK;
}

/* once and rotate: one pass that applies; forced names rotate now. */
static int apply_pass(const struct options *o, const char *const *forced, size_t n_forced)
{
	struct ts_pass_result res = { 0 };
	struct ts_desired *d = NULL;
	int r;

	if (run_pass(o, false, forced, n_forced, &res, &d) < 0)
		return EXIT_FAIL;
	r = pass_exit(o, &res);
	ts_pass_result_done(&res);
	ts_desired_free(d);
	return r;
}

static int cmd_once(const struct options *o)
{
	if (o->n_args > 0) {
		fprintf(stderr, "Usage: tunnelsync once -c CONFIG [--dry-run]\n");
		return EXIT_USAGE;
	}
	return apply_pass(o, NULL, 0);
}

/* rotate --cancel: forgets requested rotations that have not begun. */
static int rotate_cancel(const struct options *o)
{
	struct ts_agent_options ao = { .state_dir = o->state_dir };
	struct ts_desired *d = NULL;
	struct ts_agent *a = NULL;
	size_t n = 0;
	int r;

	if (load_config(o, &d) < 0)
		return EXIT_FAIL;
	r = ts_agent_open(d, &ao, &a);
	if (r >= 0)
		r = ts_agent_cancel_rotations(a, (const char *const *)o->args, (size_t)o->n_args,
					      &n);
	ts_agent_free(a);
	ts_desired_free(d);
	if (r < 0) {
		fprintf(stderr, "tunnelsync: cannot cancel: %s\n", strerror(-r));
		return EXIT_FAIL;
	}
	printf("%zu of %d requested rotations cancelled (a rotation already begun is carried "
	       "to its end)\n",
	       n, o->n_args);
	return n == (size_t)o->n_args ? EXIT_OK : EXIT_FAIL;
}

static int cmd_rotate(const struct options *o)
{
	if (o->n_args == 0) {
		fprintf(stderr, "Usage: tunnelsync rotate -c CONFIG [--cancel] TUNNEL...\n");
		return EXIT_USAGE;
	}
	if (o->cancel)
		return rotate_cancel(o);
	return apply_pass(o, (const char *const *)o->args, (size_t)o->n_args);
}

static int cmd_run(const struct options *o)
{
	struct ts_daemon_options d = {
		.config = o->config,
		.models_dir = o->models_dir,
		.state_dir = o->state_dir,
	};

	if (o->n_args > 0 || !o->config) {
		fprintf(stderr, "Usage: tunnelsync run -c CONFIG\n");
		return EXIT_USAGE;
	}
	return ts_daemon_run(&d) < 0 ? EXIT_FAIL : EXIT_OK;
}

static int cmd_status(const struct options *o)
{
	struct ts_desired *d = NULL;
	char *text = NULL;
	int r;

	if (o->n_args > 0) {
		fprintf(stderr, "Usage: tunnelsync status -c CONFIG [--json]\n");
		return EXIT_USAGE;
	}
	if (load_config(o, &d) < 0)
		return EXIT_FAIL;
	r = ts_agent_status_read(o->state_dir ? o->state_dir : d->agent.state_dir, &text);
	if (r < 0) {
		fprintf(stderr, "tunnelsync: no status recorded in %s/status.json: %s\n",
			o->state_dir ? o->state_dir : d->agent.state_dir, ts_file_strerror(r));
		ts_desired_free(d);
		return EXIT_FAIL;
	}
	if (o->json)
		fputs(text, stdout);
	else
		r = ts_status_print_text(text, stdout);
	fputs(o->json ? "\n" : "", stdout);
	free(text);
	ts_desired_free(d);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}
#endif

static const struct command commands[] = {
#ifdef TS_HAVE_CONFIG
	{ "validate", "validate CONFIG",
	  "Check CONFIG (a file or directory) against the YANG model and list its "
	  "tunnels; exit 0 valid, 1 invalid (file:line: path: message on stderr).",
	  cmd_validate },
	{ "plan", "plan -c CONFIG [--json]",
	  "Observe every plane and print what a pass would do; exit 0 in sync, 2 changes "
	  "pending, 1 error. Changes nothing.",
	  cmd_plan },
	{ "once", "once -c CONFIG [--dry-run]",
	  "Run one pass: observe, plan, apply. Exit 0 in sync afterwards, 2 work left for a "
	  "later pass, 1 error. --dry-run: plan and validate_only API calls, no change.",
	  cmd_once },
	{ "rotate", "rotate -c CONFIG [--cancel] TUNNEL...",
	  "Rotate the named tunnels' keys now (one pass; redundancy groups still rotate one "
	  "tunnel at a time: the rest stay requested in the state directory and rotate in later "
	  "passes, until done or rotate --cancel). A file tunnel whose file holds the current "
	  "key: exit 1.",
	  cmd_rotate },
	{ "run", "run -c CONFIG",
	  "The daemon: a pass at start, on config changes, on IKE and XFRM events, on "
	  "SIGHUP, when a key falls due and every resync-interval; stops on SIGTERM.",
	  cmd_run },
	{ "status", "status -c CONFIG [--json]",
	  "Print what the last pass recorded in the state directory (no keys).", cmd_status },
#endif
	{ "version", "version", "Print the version and exit.", cmd_version },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < TS_ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: tunnelsync COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < TS_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-34s %s\n", commands[i].synopsis, commands[i].help);
	fprintf(f,
		"\nCommon options:\n"
		"  -c, --config PATH      config file or directory (git-sync link)\n"
		"      --models DIR       YANG modules (default: %s)\n"
		"      --state-dir DIR    override the config's state directory\n"
		"      --log-level LEVEL  error|warn|info|debug|trace (default info)\n"
		"      --log-format FMT   text|json (default text)\n"
		"  -h, --help             help for a command: tunnelsync COMMAND --help\n"
		"\nThe API token comes from the file the config names or from\n"
		"CLOUDFLARE_API_TOKEN; never from the command line.\n",
		TUNNELSYNC_MODELS_INSTALL_DIR);
}

static void command_usage(const struct command *c)
{
	printf("Usage: tunnelsync %s\n\n%s\n\nCommon options: see tunnelsync --help.\n",
	       c->synopsis, c->help);
}

int main(int argc, char **argv)
{
	enum {
		OPT_MODELS = 0x100,
		OPT_STATE_DIR,
		OPT_LOG_LEVEL,
		OPT_LOG_FORMAT,
		OPT_JSON,
		OPT_DRY_RUN,
		OPT_CANCEL
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "models", required_argument, NULL, OPT_MODELS },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "cancel", no_argument, NULL, OPT_CANCEL },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { 0 };
	const struct command *cmd;
	bool help = false;
	int c;

	/* A peer that closes early (a scraper's or a probe's timeout) must
	 * cost an EPIPE on that one socket, never the process (SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	/* Keys pass through this process: no core dumps, no ptrace by others. */
	(void)ts_secret_harden_process();

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
			usage(stdout);
			return EXIT_OK;
		}
		if (argc >= 2 && strcmp(argv[1], "--version") == 0)
			return cmd_version(&o);
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "tunnelsync: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}

	optind = 2;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config = optarg;
			break;
		case OPT_MODELS:
			o.models_dir = optarg;
			break;
		case OPT_STATE_DIR:
			o.state_dir = optarg;
			break;
		case OPT_LOG_LEVEL: {
			enum ts_log_level l;

			if (ts_log_level_from_string(optarg, &l) < 0) {
				fprintf(stderr, "tunnelsync: --log-level: unknown level '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			ts_log_set_level(l);
			break;
		}
		case OPT_LOG_FORMAT: {
			enum ts_log_format f;

			if (ts_log_format_from_string(optarg, &f) < 0) {
				fprintf(stderr,
					"tunnelsync: --log-format: expected text or json\n");
				return EXIT_USAGE;
			}
			ts_log_set_format(f);
			break;
		}
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_CANCEL:
			o.cancel = true;
			break;
		case 'h':
			help = true;
			break;
		default:
			fprintf(stderr, "Try 'tunnelsync %s --help'.\n", cmd->name);
			return EXIT_USAGE;
		}
	}
	if (help) {
		command_usage(cmd);
		return EXIT_OK;
	}
	o.args = argv + optind;
	o.n_args = argc - optind;
	return cmd->run(&o);
}
