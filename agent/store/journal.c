/* The rotation journal protocol of the store (store.h: begin, advance,
 * commit, discard and their crash-safety argument). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/crashpoint.h"
#include "core/fileio.h"
#include "core/secret.h"
#include "core/sha256.h"
#include "core/util.h"

#include "store/store_internal.h"

static int check_entry(const struct ts_store *s, const struct ts_journal_entry *e)
{
	int r;

	if (!s || !e || !ts_store_name_valid(e->tunnel) ||
	    (unsigned)e->source >= _TS_PSK_SOURCE_MAX || (unsigned)e->step >= _TS_JOURNAL_STEP_MAX)
		return -EINVAL;
	if (e->old_fingerprint[0] && !store_fingerprint_syntax_ok(e->old_fingerprint))
		return -EINVAL;
	if (e->new_key) {
		r = store_check_key(e->new_key);
		if (r < 0)
			return r;
	} else if (e->step >= TS_JOURNAL_REMOTE) {
		return -EINVAL; /* past the remote step the key must be known */
	}
	return 0;
}

int ts_store_journal_begin(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct ts_journal_entry old = { 0 };
	struct ts_key_record rec = { 0 };
	int r;

	r = check_entry(s, e);
	if (r < 0)
		return r;
	if (e->step != TS_JOURNAL_PREPARED)
		return -EINVAL;
	/* The entry must continue the current record: a rotation is never
	 * started over a record that cannot be read (it may hold the only
	 * copy of the key Cloudflare has). */
	r = ts_store_record_read(s, e->tunnel, &rec);
	if (r == -ENOENT) {
		if (e->generation != 1 || e->old_fingerprint[0])
			return -EINVAL;
	} else if (r < 0) {
		return r;
	} else {
		bool follows = e->generation == rec.generation + 1 &&
			       ts_streq(e->old_fingerprint, rec.fingerprint);

		ts_store_record_done(&rec);
		if (!follows)
			return -EINVAL;
	}
	r = ts_store_journal_read(s, e->tunnel, &old);
	if (r >= 0) {
		ts_store_journal_entry_done(&old);
		return -EEXIST;
	}
	/* A journal that cannot be read is not "no journal": never overwrite it. */
	if (r != -ENOENT)
		return r;
	return store_write_journal(s, e);
}

int ts_store_journal_advance(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct ts_journal_entry old = { 0 };
	int r;

	r = check_entry(s, e);
	if (r < 0)
		return r;
	r = ts_store_journal_read(s, e->tunnel, &old);
	if (r < 0)
		return r;
	/* Only the step, the attempt, the key once known and the remote
	 * metadata may change; committed is for ts_store_journal_commit(). */
	if (e->step < old.step || e->step == TS_JOURNAL_COMMITTED ||
	    !ts_streq(e->tunnel_id, old.tunnel_id) || e->source != old.source ||
	    e->generation != old.generation || !ts_streq(e->old_fingerprint, old.old_fingerprint) ||
	    (old.new_key && !ts_secret_equal(old.new_key, e->new_key)))
		r = -EINVAL;
	else
		r = store_write_journal(s, e);
	ts_store_journal_entry_done(&old);
	return r;
}

static int unlink_journal(struct ts_store *s, const char *tunnel)
{
	return store_file_unlink(s, JOURNAL_DIR, tunnel, JOURNAL_EXT);
}

int ts_store_journal_commit(struct ts_store *s, const char *tunnel, ts_usec_t applied_at,
			    struct ts_key_record *ret_record)
{
	struct ts_journal_entry e = { 0 };
	struct ts_key_record rec = { 0 };
	int r;

	if (!s)
		return -EINVAL;
	r = ts_store_journal_read(s, tunnel, &e);
	if (r < 0)
		return r;
	if (e.step < TS_JOURNAL_LOCAL) {
		r = -EINVAL;
		goto out;
	}
	if (e.step != TS_JOURNAL_COMMITTED) {
		e.step = TS_JOURNAL_COMMITTED;
		e.applied_at = applied_at;
		r = store_write_journal(s, &e);
		if (r < 0)
			goto out;
	}
	ts_crash_point("store:commit-after-journal");

	/* Everything comes from the entry, so a repeat writes the same record. */
	memcpy(rec.tunnel, e.tunnel, sizeof(rec.tunnel));
	memcpy(rec.tunnel_id, e.tunnel_id, sizeof(rec.tunnel_id));
	rec.key = e.new_key;
	rec.source = e.source;
	rec.last_generated_on = e.last_generated_on;
	rec.last_generated_unit = e.last_generated_unit;
	rec.applied_at = e.applied_at;
	rec.generation = e.generation;
	ts_secret_fingerprint(rec.key, rec.fingerprint);
	r = ts_store_record_write(s, &rec);
	if (r < 0)
		goto out;
	ts_crash_point("store:commit-after-record");

	r = unlink_journal(s, tunnel);
	if (r < 0)
		goto out;
	if (ret_record) {
		e.new_key = NULL; /* ownership moves to the returned record */
		*ret_record = rec;
	}
out:
	ts_store_journal_entry_done(&e);
	return r;
}

int ts_store_journal_discard(struct ts_store *s, const char *tunnel)
{
	struct ts_journal_entry e = { 0 };
	int r;

	if (!s)
		return -EINVAL;
	r = ts_store_journal_read(s, tunnel, &e);
	if (r < 0)
		return r;
	r = e.step == TS_JOURNAL_PREPARED ? unlink_journal(s, tunnel) : -EINVAL;
	ts_store_journal_entry_done(&e);
	return r;
}

int ts_store_record_adopt_baseline(struct ts_store *s, const char *tunnel, const char *fingerprint,
				   ts_usec_t last_generated_on, ts_usec_t unit)
{
	struct ts_key_record rec = { 0 };
	int r;

	if (!s || !fingerprint || last_generated_on <= 0)
		return -EINVAL;
	r = ts_store_record_read(s, tunnel, &rec);
	if (r < 0)
		return r;
	if (rec.last_generated_on != 0 || !ts_streq(rec.fingerprint, fingerprint)) {
		r = -ESTALE;
	} else {
		rec.last_generated_on = last_generated_on;
		rec.last_generated_unit = unit;
		r = ts_store_record_write(s, &rec);
	}
	ts_store_record_done(&rec);
	return r;
}
