/* Config loading: the YANG-modelled desired state (models/tunnelsync.yang)
 * read from a file or a directory, validated strictly by libyang and
 * converted into the plain structs of model/tunnel.h. No libyang type
 * crosses this header. */
#pragma once

#include <stddef.h>

#include "model/tunnel.h"

/* Overrides agent/node-name (an agent of a fleet that shares one config
 * learns which gateway it is from its environment); see ts_config_load. */
#define TS_CONFIG_NODE_NAME_ENV "TUNNELSYNC_NODE_NAME"

/* Largest config file the loader reads. */
#define TS_CONFIG_FILE_MAX (16u * 1024 * 1024)

/* Why a config was refused: where and what, in plain words. Any field may
 * be unset (NULL / 0) when it is not known. */
struct ts_config_error {
	char *file;    /* as the caller named it: CONFIG or CONFIG/<name> */
	unsigned line; /* 1-based; 0 = unknown */
	char *path;    /* YANG data path, e.g. /tunnelsync:tunnelsync/tunnels/tunnel[name='a']/id */
	char *message;
};

/* Frees what the struct owns and zeroes it; accepts NULL. */
void ts_config_error_done(struct ts_config_error *e);

/* Writes "file:line: path: message" (leaving out unknown parts) into buf,
 * always terminated; returns what snprintf returns. */
int ts_config_error_format(const struct ts_config_error *e, char *buf, size_t size);

/* Picks the directory of the YANG modules: override when given (it must
 * exist), else the install directory if it holds tunnelsync.yang, else the
 * source tree's models/ (for running from a build directory). */
int ts_config_models_dir(const char *override, const char **ret_dir);

/* Loads the desired state from path: a *.json or *.xml file, or a directory
 * whose *.json and *.xml files (not hidden ones, not recursive) are merged
 * into one tree in name order. A value set differently in two files is an
 * error that names both. path may be a symlink that git-sync swaps: it is
 * resolved once per call and every file is read through that resolution,
 * so a swap during the load cannot mix two revisions.
 *
 * models_dir NULL means ts_config_models_dir(NULL). On success
 * *ret_desired owns a new struct ts_desired (free with ts_desired_free):
 * every default applied, agent.node_name from TS_CONFIG_NODE_NAME_ENV when
 * that is set, else from the config, else the host name, tunnels sorted by name, revision set (the
 * git-sync link target if it is a commit hash, else the enclosing checkout's HEAD, else "sha256:"
 * over the files). On failure returns -errno (-EINVAL for an invalid config) and, if err is not
 * NULL, fills it (free with ts_config_error_done).
 *
 * What is not checked here: that files named by the config (PSK, token,
 * CA) exist or are readable. The config is often validated away from the
 * gateway (CI, a laptop); those files are read when they are used and
 * their errors are reported then. */
int ts_config_load(const char *path, const char *models_dir, struct ts_desired **ret_desired,
		   struct ts_config_error *err);

/* ts_config_load() with flags. TS_CONFIG_LOAD_SOURCES: each tunnel's
 * source_file and source_line are set (where it is declared). Nothing in
 * the agent needs them on a valid load (an error finds its own file and
 * line when it is raised), and locating every tunnel is 7-10 % of a
 * 10,000-tunnel load (README.md, "Scale and performance"), so a plain
 * load leaves them NULL / 0. */
#define TS_CONFIG_LOAD_SOURCES 0x1u
int ts_config_load_flags(const char *path, const char *models_dir, unsigned flags,
			 struct ts_desired **ret_desired, struct ts_config_error *err);
