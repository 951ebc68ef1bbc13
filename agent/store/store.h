/* The state directory: each tunnel's current key record and the
 * write-ahead journal of rotations in progress (DESIGN.md, "PSK rotation").
 *
 * Layout: DIR/ (0700)  lock, records/NAME.rec, journal/NAME.jnl,
 * journal/NAME.req (a requested rotation not begun yet) (0600).
 * Every file is replaced atomically (temporary file, fsync, rename, fsync
 * of the directory) and carries a format version and a SHA-256 over its
 * content, so a torn, truncated or flipped file is reported (-EBADMSG, with
 * the file named) and never read as "no key" or silently reset. Keys are
 * hex in the files, and every buffer that held one is wiped.
 *
 * One agent per directory: open takes an flock on DIR/lock (released when
 * the store is closed or the process dies) and writes its pid there.
 *
 * Permissions: an existing directory (or records/, journal/) that group or
 * others can access, or that another user owns, is refused (-EPERM): keys
 * may already have leaked, and only the operator can judge that; a record
 * or journal file with such modes is reported like a corrupt one.
 *
 * Crash safety of a rotation, step by step (a crash may happen anywhere;
 * "atomic write" means the file holds the old or the new content):
 *   begin    atomic write of journal/NAME.jnl at step prepared. Before the
 *            rename: no journal, nothing happened remotely. After: the
 *            journal names the rotation (and the key, for random/file).
 *   advance  atomic write of the entry at a later step (remote: with the
 *            key psk_generate returned, at once). A crash before the rename
 *            leaves the previous step, which is resumed from: repeating the
 *            bulk set is idempotent (same key); a psk_generate whose result
 *            was not journaled is lost and must be redone.
 *   commit   1. the entry is rewritten at step committed with applied_at
 *               (skipped when already there);
 *            2. records/NAME.rec is replaced by the record the entry
 *               describes (key, fingerprint, generation, applied_at);
 *            3. journal/NAME.jnl is unlinked and journal/ fsynced.
 *            Crash before 1 completes: the entry is at its previous step
 *            (local), resumed, committed again. Between 1 and 3: the entry
 *            is at committed; ts_store_journal_commit() again rolls forward
 *            and rewrites the same record (idempotent: everything comes
 *            from the entry). After 3: done.
 * So a key Cloudflare holds is always in the journal or the record, except
 * between psk_generate's response and the advance to remote: a window no
 * local ordering can close (the API mints the key before telling it).
 *
 * Temporary files of a crashed write (NAME.rec.tmp.PID) are removed at
 * open, under the lock. Test builds can crash at file:* (core/fileio.h)
 * and at store:commit-after-journal, store:commit-after-record.
 *
 * File format (version 1), one "field=value" a line after a header line,
 * then a checksum over every byte before it:
 *   tunnelsync-record 1            tunnelsync-journal 1
 *   tunnel=NAME                    tunnel=NAME
 *   tunnel_id=HEX32                tunnel_id=HEX32
 *   source=random|generate|file    step=prepared|remote|local|committed
 *   generation=N                   source=…  attempt=N  generation=N
 *   fingerprint=sha256:…           started_at=USEC  last_generated_on=USEC
 *   last_generated_on=USEC         applied_at=USEC
 *   applied_at=USEC                old_fingerprint=…  new_fingerprint=…
 *   key=HEX                        [key=HEX]  (absent until known)
 *   sha256=HEX64                   sha256=HEX64
 * Times are microseconds since the epoch (0 = unknown). Both may carry
 * last_generated_unit=USEC after last_generated_on (the unit Cloudflare
 * wrote it in, 10^0..10^6 us; only when coarser than 1 us, absent = 1 us). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/timeutil.h"
#include "model/observed.h"

#define TS_STORE_FORMAT_VERSION 1
/* Keys longer than this are refused (Cloudflare's are 32 characters). */
#define TS_STORE_KEY_MAX 1024

struct ts_store;

/* A file that could not be used, as found by ts_store_load(). */
struct ts_store_problem {
	char tunnel[TS_NAME_MAX + 1]; /* "" when the name itself is bad */
	char path[512];
	int error; /* -EBADMSG corrupt/truncated, -EPROTONOSUPPORT version, -EPERM mode */
	char message[128];
};

/* A rotation the operator asked for (`tunnelsync rotate NAME`) that has
 * not begun yet: journal/NAME.req. It stays until a rotation of the
 * tunnel begins (the journal entry then carries it) or is cancelled. */
struct ts_store_request {
	char tunnel[TS_NAME_MAX + 1];
	ts_usec_t requested_at; /* 0: unknown (unreadable file: still a request) */
};

/* Everything the directory holds; arrays sorted by tunnel name. */
struct ts_store_state {
	struct ts_key_record *records;
	size_t n_records;
	struct ts_journal_entry *journal;
	size_t n_journal;
	struct ts_store_problem *problems;
	size_t n_problems;
	struct ts_store_request *requests;
	size_t n_requests;
};

/* Creates the directory (0700) if needed, checks its permissions, takes
 * the lock and removes temporary files left by a crash. -EBUSY when
 * another process holds the lock; then *holder_pid (if not NULL) gets its
 * pid, or 0 when unknown. */
int ts_store_open(const char *dir, struct ts_store **ret_store, pid_t *holder_pid);
/* For readers while an agent runs (`plan`, `status`): no lock, no
 * creation, no cleanup; every write is -EROFS. A directory that does not
 * exist is -ENOENT; permissions are checked as for ts_store_open(). Files
 * are replaced atomically, so each one read is whole, though a record and
 * a journal entry may come from two moments of a rotation. */
int ts_store_open_readonly(const char *dir, struct ts_store **ret_store);
/* "PATH: what was wrong" for the last failed open in this thread. */
const char *ts_store_open_error(void);
/* Releases the lock; accepts NULL. */
void ts_store_close(struct ts_store *store);
static inline void ts_store_closep(struct ts_store **s)
{
	ts_store_close(*s);
}
#define _cleanup_store_ __attribute__((cleanup(ts_store_closep)))

const char *ts_store_dir(const struct ts_store *store);
/* "PATH: what was wrong" for the last -EBADMSG/-EPERM/-EPROTONOSUPPORT
 * of this store, "" if none. */
const char *ts_store_last_error(const struct ts_store *store);

/* Reads every record and journal entry. Unusable files do not fail the
 * load: they are listed in ->problems so that the planner can hold that
 * tunnel back while the others proceed. -errno only for a failure to read
 * the directory itself. */
int ts_store_load(struct ts_store *store, struct ts_store_state **ret_state);
/* The same for the named tunnels only (an event's scope): their records
 * and journal entries (a missing file is none), the problems of their
 * files, and every requested rotation. Each tunnel's view
 * (ts_store_state_observe) is the one ts_store_load gives it; the cost
 * does not grow with the state directory. */
int ts_store_load_names(struct ts_store *store, const char *const *names, size_t n,
			struct ts_store_state **ret_state);
void ts_store_state_free(struct ts_store_state *state);
static inline void ts_store_state_freep(struct ts_store_state **s)
{
	ts_store_state_free(*s);
}
#define _cleanup_store_state_ __attribute__((cleanup(ts_store_state_freep)))
const struct ts_key_record *ts_store_state_record(const struct ts_store_state *state,
						  const char *tunnel);
const struct ts_journal_entry *ts_store_state_journal(const struct ts_store_state *state,
						      const char *tunnel);
const struct ts_store_problem *ts_store_state_problem(const struct ts_store_state *state,
						      const char *tunnel);

/* The planner's view of one tunnel's store plane (model/observed.h): ok is
 * false when its record or journal file is unusable. The pointers are
 * valid while state lives. */
void ts_store_state_observe(const struct ts_store_state *state, const char *tunnel,
			    struct ts_obs_store *ret_obs);

/* One record: -ENOENT when there is none, -EBADMSG when corrupt. The
 * record's fingerprint is recomputed from its key and must match. */
int ts_store_record_read(struct ts_store *store, const char *tunnel,
			 struct ts_key_record *ret_record);
/* Writes (replaces) a record; its fingerprint is computed from the key. */
int ts_store_record_write(struct ts_store *store, const struct ts_key_record *record);

int ts_store_journal_read(struct ts_store *store, const char *tunnel,
			  struct ts_journal_entry *ret_entry);
/* Starts a rotation: the entry must be at step prepared and continue the
 * current record (generation = record's + 1 and old_fingerprint = record's;
 * 1 and "" when there is none), else -EINVAL; an unreadable record is
 * returned as its error, never rotated over. -EEXIST when the tunnel
 * already has an entry (resume it instead). */
int ts_store_journal_begin(struct ts_store *store, const struct ts_journal_entry *entry);
/* Records a later step (or the same step with a higher attempt). Going
 * back a step, jumping to committed (commit's job), changing the tunnel id,
 * source, generation, old fingerprint or a key already journaled, or
 * reaching remote without a key is -EINVAL; no entry is -ENOENT. */
int ts_store_journal_advance(struct ts_store *store, const struct ts_journal_entry *entry);
/* Commits the tunnel's rotation (see the header comment): the entry must
 * be at step local or committed. applied_at is used unless the entry is
 * already at committed (then its own is kept, so a repeat is identical).
 * On success *ret_record (if not NULL) gets the new record. */
int ts_store_journal_commit(struct ts_store *store, const char *tunnel, ts_usec_t applied_at,
			    struct ts_key_record *ret_record);
/* Sets the record's last_generated_on baseline (the value Cloudflare's
 * list showed, written in `unit`) when the record has none (0) and still
 * holds the key with this fingerprint; -ESTALE otherwise (the record
 * changed since it was observed: nothing written). */
int ts_store_record_adopt_baseline(struct ts_store *store, const char *tunnel,
				   const char *fingerprint, ts_usec_t last_generated_on,
				   ts_usec_t unit);
/* Drops a rotation that provably never changed Cloudflare's key (e.g. the
 * bulk call reported the tunnel unapplied). Never for a later step. */
int ts_store_journal_discard(struct ts_store *store, const char *tunnel);

/* Persists a requested rotation (the earlier time is kept when the tunnel
 * already has one). */
int ts_store_request_add(struct ts_store *store, const char *tunnel, ts_usec_t requested_at);
/* Removes it: 0, or -ENOENT when there was none. */
int ts_store_request_remove(struct ts_store *store, const char *tunnel);
const struct ts_store_request *ts_store_state_request(const struct ts_store_state *state,
						      const char *tunnel);

/* Frees what the structs own (the keys: wiped); accepts NULL. */
void ts_store_record_done(struct ts_key_record *record);
void ts_store_journal_entry_done(struct ts_journal_entry *entry);

/* Tunnel names become file names: [A-Za-z0-9._-], 1..63, no leading dot. */
bool ts_store_name_valid(const char *tunnel);
