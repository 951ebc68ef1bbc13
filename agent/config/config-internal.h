/* Shared between the config loader's files; libyang types allowed here,
 * never outside agent/config/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <libyang/libyang.h>

#include "config/config.h"
#include "core/util.h"

#define TS_CONFIG_MODULE "tunnelsync"

struct cfg_text_index;
struct cfg_entry_map;

struct cfg_file {
	char *display; /* name in messages: the path as the caller gave it */
	char *name;    /* base name, part of the content hash */
	char *data;    /* NUL-terminated content */
	size_t len;
	LYD_FORMAT format;
	struct lyd_node *tree;	      /* this file alone, parsed, not validated */
	struct cfg_text_index *index; /* built on the first line look-up */
};

struct cfg_load {
	struct ly_ctx *ctx;
	struct cfg_file *files;
	size_t n_files;
	struct lyd_node *tree;	       /* all files merged and validated */
	struct cfg_entry_map *entries; /* list entry → file, built on a look-up */
	struct ts_config_error *err;
	bool locate_tunnels; /* TS_CONFIG_LOAD_SOURCES */
};

/* Records an error (first one wins) and returns r. file may be NULL. */
int cfg_error(struct cfg_load *L, const char *file, unsigned line, const char *path, int r,
	      const char *fmt, ...) TS_PRINTF(6, 7);

/* Records an error at a data path: the file that holds the deepest part of
 * the path and the line of it there. */
int cfg_error_at(struct cfg_load *L, const char *path, int r, const char *fmt, ...) TS_PRINTF(4, 5);

/* The line (1-based) in f where path's deepest node that can be found
 * is written; 0 if not even the first node is found. Textual search: JSON
 * members and XML elements in path order, list entries by their keys,
 * over an index of f built on the first call (f->index). */
unsigned cfg_find_line(struct cfg_file *f, const char *path);
/* The same; *ret_complete tells whether every node of path was found. */
unsigned cfg_find_line_full(struct cfg_file *f, const char *path, bool *ret_complete);
void cfg_text_index_free(struct cfg_text_index *ix);
void cfg_entry_map_free(struct cfg_entry_map *map);

/* The file whose tree holds the longest prefix of path, and the line in
 * it; NULL when no file holds any of it. */
const struct cfg_file *cfg_locate(struct cfg_load *L, const char *path, unsigned *ret_line);

/* The config revision: a commit hash component of the resolved path, the
 * HEAD of an enclosing git checkout, or sha256 over the files. */
void cfg_revision(const char *resolved, bool is_dir, const struct cfg_file *files, size_t n_files,
		  char ret[72]);

/* Converts L->tree into the plain structs and runs the checks across
 * tunnels that YANG cannot state. */
int cfg_convert(struct cfg_load *L, struct ts_desired **ret_desired);

/* Sets ag->node_name from TS_CONFIG_NODE_NAME_ENV when set (an invalid one
 * is an error), else keeps agent/node-name, else takes the host name. */
int cfg_node_name(struct cfg_load *L, struct ts_agent_config *ag);
