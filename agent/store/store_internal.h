/* Internal to the store (store.c: directory and lock; format.c: the file
 * format and single files; journal.c: the rotation journal protocol;
 * load.c: reading the whole directory). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "store/store.h"

#define RECORD_MAGIC  "tunnelsync-record"
#define JOURNAL_MAGIC "tunnelsync-journal"
#define RECORDS_DIR   "records"
#define JOURNAL_DIR   "journal"
#define RECORD_EXT    ".rec"
#define JOURNAL_EXT   ".jnl"
#define REQUEST_EXT   ".req"
#define REQUEST_MAGIC "tunnelsync-request"
/* Largest file we accept: the fields plus a hex key of TS_STORE_KEY_MAX. */
#define FILE_MAX (4096 + 2 * TS_STORE_KEY_MAX)

struct ts_store {
	char *dir;
	int lock_fd;
	bool readonly; /* no lock held: every write is -EROFS */
	char last_error[768];
};

int store_file_path(const struct ts_store *s, const char *sub, const char *tunnel, const char *ext,
		    char *buf, size_t size);
/* Removes sub/TUNNEL+ext durably (-ENOENT: none; -EROFS: read-only store). */
int store_file_unlink(struct ts_store *s, const char *sub, const char *tunnel, const char *ext);
/* Records "PATH: message" as the store's last error; returns error. */
int store_set_error(struct ts_store *s, int error, const char *path, const char *fmt, ...)
	TS_PRINTF(4, 5);

/* -EINVAL unless the key is 1..TS_STORE_KEY_MAX bytes. */
int store_check_key(const struct ts_secret *key);
bool store_fingerprint_syntax_ok(const char *fp);
/* Reads and parses one record (journal false) or journal entry file. */
int store_read_and_parse(struct ts_store *s, const char *path, const char *tunnel, bool journal,
			 void *ret);
/* Reads journal/ *.req into st->requests (sorted). */
int store_load_requests(struct ts_store *s, struct ts_store_state *st);
/* Atomically replaces the tunnel's journal file with the entry. */
int store_write_journal(struct ts_store *s, const struct ts_journal_entry *e);
