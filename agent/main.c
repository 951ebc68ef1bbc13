/* tunnelsync command line: parses common options, dispatches to a command,
 * and turns results into exit codes. The only place that exits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
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
#endif

static const struct command commands[] = {
#ifdef TS_HAVE_CONFIG
	{ "validate", "validate CONFIG",
	  "Check CONFIG (a file or directory) against the YANG model and list its "
	  "tunnels; exit 0 valid, 1 invalid (file:line: path: message on stderr).",
	  cmd_validate },
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
		OPT_DRY_RUN
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "models", required_argument, NULL, OPT_MODELS },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options o = { 0 };
	const struct command *cmd;
	bool help = false;
	int c;

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
