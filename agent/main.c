/* tunnelsync command line: parses common options, dispatches to a command,
 * and turns results into exit codes. The only place that exits. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudflare/cloudflare.h"
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

/* Options a command takes; every command but version also takes --log-level
 * and --log-format (OPTS_LOG), and each takes --help. */
enum {
	OPTS_CONFIG = 1 << 0,
	OPTS_MODELS = 1 << 1,
	OPTS_STATE_DIR = 1 << 2,
	OPTS_NODE_NAME = 1 << 3,
	OPTS_JSON = 1 << 4,
	OPTS_DRY_RUN = 1 << 5,
	OPTS_LOG = 1 << 6,
	OPTS_CANCEL = 1 << 7,
	OPTS_AGENT = OPTS_CONFIG | OPTS_MODELS | OPTS_STATE_DIR | OPTS_NODE_NAME | OPTS_LOG,
};

struct command {
	const char *name;
	const char *synopsis;
	const char *summary; /* one line in tunnelsync --help */
	const char *help;    /* COMMAND --help: lines of at most 80 columns */
	unsigned opts;
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
	/* A dry run shows what a pass would do: the plan, as `plan` prints it. */
	if (o->dry_run && print_plan(o, res.plan) < 0) {
		ts_pass_result_done(&res);
		ts_desired_free(d);
		return EXIT_FAIL;
	}
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
	{
		char why[256];

		/* A corrupt file is an error in either mode, named with where it
		 * breaks: never an empty table or garbage passed on as JSON. */
		r = ts_status_check(text, why, sizeof(why));
		if (r < 0) {
			fprintf(stderr,
				"tunnelsync: %s/status.json is not a valid status record: %s\n",
				o->state_dir ? o->state_dir : d->agent.state_dir, why);
			free(text);
			ts_desired_free(d);
			return EXIT_FAIL;
		}
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
	{ "validate", "validate CONFIG", "check a config against the YANG model",
	  "Check CONFIG (a file, or a directory whose *.json and *.xml files are\n"
	  "merged) against the YANG model and list its tunnels. Reads no key or token\n"
	  "file and talks to nothing: it runs anywhere, e.g. in CI.\n"
	  "Exit status: 0 valid; 1 invalid (file:line: path: message on stderr).",
	  OPTS_CONFIG | OPTS_MODELS | OPTS_LOG, cmd_validate },
	{ "plan", "plan -c CONFIG [--json]", "print what a pass would do, change nothing",
	  "Observe every plane (Cloudflare, charon, the kernel, the state directory)\n"
	  "and print the actions a pass would take. Read-only: no API write, no lock.\n"
	  "Exit status: 0 in sync; 2 changes pending; 1 error (a plane not read).",
	  OPTS_AGENT | OPTS_JSON, cmd_plan },
	{ "once", "once -c CONFIG [--dry-run]", "run one pass: observe, plan, apply",
	  "Run one pass: observe every plane, plan, apply, record status.json.\n"
	  "Exit status: 0 in sync afterwards; 2 work left for a later pass (deferred\n"
	  "or unconfirmed); 1 error.",
	  OPTS_AGENT | OPTS_DRY_RUN, cmd_once },
	{ "rotate", "rotate -c CONFIG [--cancel] TUNNEL...", "rotate the named tunnels' keys now",
	  "Rotate the named tunnels' pre-shared keys now, in one pass (a redundancy\n"
	  "group still rotates one tunnel at a time, while the others are up). The\n"
	  "request is kept in the state directory until each rotation has begun, so a\n"
	  "deferred one is done by a later pass (once, run); --cancel drops requests\n"
	  "not begun yet. A source-file tunnel whose file holds the current key is\n"
	  "refused: write the new key to the file first.\n"
	  "Exit status as for once; 1 also when a TUNNEL is not in CONFIG, or for a\n"
	  "key file that holds the current key.",
	  OPTS_AGENT | OPTS_DRY_RUN | OPTS_CANCEL, cmd_rotate },
	{ "run", "run -c CONFIG", "the daemon",
	  "The daemon: a pass at start, on config changes (a git-sync link swap too),\n"
	  "on IKE and XFRM events, on SIGHUP, when a key falls due and every\n"
	  "resync-interval. Speaks systemd's notify protocol; serves /metrics,\n"
	  "/healthz and /readyz on agent/metrics-listen. Stops on SIGTERM.\n"
	  "Exit status: 0 after SIGTERM; 1 when it cannot start.",
	  OPTS_AGENT, cmd_run },
	{ "status", "status -c CONFIG [--json]", "what the last pass recorded",
	  "Print what the last pass recorded in STATE_DIR/status.json: conditions,\n"
	  "revisions, per tunnel its key fingerprint, IKE and kernel state (no keys).\n"
	  "Exit status: 0 printed; 1 no status recorded or unreadable.",
	  OPTS_CONFIG | OPTS_MODELS | OPTS_STATE_DIR | OPTS_JSON | OPTS_LOG, cmd_status },
#endif
	{ "version", "version", "print the version", "Print the version and exit.", 0,
	  cmd_version },
};

/* One entry per option bit, in --help order. */
static const struct {
	unsigned bit;
	const char *text;
} option_help[] = {
	{ OPTS_CONFIG,
	  "  -c, --config PATH      config file or directory (a git-sync link too)\n" },
	{ OPTS_MODELS, "      --models DIR       the YANG modules (default:\n"
		       "                         " TUNNELSYNC_MODELS_INSTALL_DIR ")\n" },
	{ OPTS_STATE_DIR,
	  "      --state-dir DIR    instead of the config's agent/state-directory\n" },
	{ OPTS_NODE_NAME,
	  "      --node-name NAME   this gateway's name: act on tunnels whose gateway is\n"
	  "                         NAME or unset (else TUNNELSYNC_NODE_NAME, else\n"
	  "                         agent/node-name, else the host name)\n" },
	{ OPTS_JSON, "      --json             print JSON instead of a table\n" },
	{ OPTS_DRY_RUN, "      --dry-run          plan and have Cloudflare validate the rotations\n"
			"                         (validate_only=true); change nothing\n" },
	{ OPTS_CANCEL, "      --cancel           forget the requested rotations not begun yet\n" },
	{ OPTS_LOG, "      --log-level LEVEL  error|warn|info|debug|trace (default info)\n"
		    "      --log-format FMT   text|json (default text)\n" },
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
		fprintf(f, "  %-27s %s\n", commands[i].synopsis, commands[i].summary);
	fprintf(f, "\nRun 'tunnelsync COMMAND --help' for a command's options.\n"
		   "The API token comes from the config's api-token-file, else the systemd\n"
		   "credential cloudflare-api-token, else CLOUDFLARE_API_TOKEN; never from\n"
		   "the command line. See tunnelsync(8) and tunnelsync.yang(5).\n");
}

static void command_usage(const struct command *c)
{
	printf("Usage: tunnelsync %s\n\n%s\n\nOptions:\n", c->synopsis, c->help);
	for (size_t i = 0; i < TS_ARRAY_SIZE(option_help); i++)
		if (c->opts & option_help[i].bit)
			fputs(option_help[i].text, stdout);
	printf("  -h, --help             this help\n");
}

/* getopt_long's values of the long-only options. */
enum {
	OPT_MODELS = 0x100,
	OPT_STATE_DIR,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_JSON,
	OPT_DRY_RUN,
	OPT_NODE_NAME,
	OPT_CANCEL,
};

/* The OPTS_ bit of a getopt result; 0 for --help and errors. */
static unsigned option_bit(int c)
{
	switch (c) {
	case 'c':
		return OPTS_CONFIG;
	case OPT_MODELS:
		return OPTS_MODELS;
	case OPT_STATE_DIR:
		return OPTS_STATE_DIR;
	case OPT_LOG_LEVEL:
	case OPT_LOG_FORMAT:
		return OPTS_LOG;
	case OPT_JSON:
		return OPTS_JSON;
	case OPT_DRY_RUN:
		return OPTS_DRY_RUN;
	case OPT_NODE_NAME:
		return OPTS_NODE_NAME;
	case OPT_CANCEL:
		return OPTS_CANCEL;
	default:
		return 0;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "models", required_argument, NULL, OPT_MODELS },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "cancel", no_argument, NULL, OPT_CANCEL },
		{ "node-name", required_argument, NULL, OPT_NODE_NAME },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { 0 };
	const struct command *cmd;
	bool help = false;
	int c, longindex = 0;

	/* A peer that closes early (a scraper's or a probe's timeout) must
	 * cost an EPIPE on that one socket, never the process (SIGPIPE). */
	signal(SIGPIPE, SIG_IGN);
	/* Keys pass through this process: no core dumps, no ptrace by others. */
	(void)ts_secret_harden_process();
	/* The API token leaves the environment before any thread starts: no
	 * child inherits it, no core or /proc/PID/environ shows it. */
	if (ts_cf_take_env_token() < 0) {
		fprintf(stderr,
			"tunnelsync: cannot move CLOUDFLARE_API_TOKEN into secure memory\n");
		return EXIT_FAIL;
	}
	/* libcurl and OpenSSL on the wiping allocator before either is used. */
	ts_cf_global_init();

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
	while ((c = getopt_long(argc, argv, "c:h", longopts, &longindex)) != -1) {
		unsigned bit = option_bit(c);

		if (bit && !(cmd->opts & bit)) {
			fprintf(stderr, "tunnelsync %s: --%s is not an option of %s\n", cmd->name,
				c == 'c' ? "config" : longopts[longindex].name, cmd->name);
			fprintf(stderr, "Try 'tunnelsync %s --help'.\n", cmd->name);
			return EXIT_USAGE;
		}
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
#ifdef TS_HAVE_CONFIG
		case OPT_NODE_NAME:
			/* The config loader reads it, on every reload of the daemon too. */
			if (setenv(TS_CONFIG_NODE_NAME_ENV, optarg, 1) < 0)
				return EXIT_FAIL;
			break;
#endif
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
