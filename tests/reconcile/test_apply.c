/* Unit tests of the agent's pass over fake planes (fake_planes.h): the
 * rotation protocol's invariant under every answer Cloudflare can give,
 * at every journal step, fresh and resumed (the table in
 * agent/reconcile/README.md; one test per row), and the regressions of
 * issue 9. No root, no charon, no HTTP: the store is the real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sha256.h"
#include "fake_planes.h"
#include "reconcile/agent_internal.h"
#include "reconcile/wait.h"
#include "store/conn_record.h"
#include "store/store.h"

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_init(f, 3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fake_done(*state);
	free(*state);
	return 0;
}

static void pass(struct fake *f, const char *forced, struct ts_pass_result *res)
{
	const char *names[1] = { forced };

	assert_int_equal(fake_pass(f, names, forced ? 1 : 0, res), 0);
}

/* Every tunnel bootstrapped and in agreement. */
static void bootstrap(struct fake *f)
{
	assert_int_equal(fake_settle(f, 1), 1);
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_true(fake_in_agreement(f, i));
}

static void check_safe(struct fake *f)
{
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_true(fake_key_safe(f, i));
}

static void pass_forced_ok(struct fake *f, const char *name)
{
	struct ts_pass_result res;

	pass(f, name, &res);
	assert_int_equal(res.n_failed, 0);
	assert_int_equal(res.n_pending, 0);
	ts_pass_result_done(&res);
}

static void test_bootstrap(void **state)
{
	struct fake *f = *state;

	bootstrap(f);
	assert_int_equal(f->set_calls, 1); /* one bulk call for all three */
	/* In sync: the next pass does nothing. */
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 1);
}

/* Issue 9, key-loss path 1: a journal entry at prepared (a crash after the
 * bulk set was sent: Cloudflare holds the key) resumed, and the resend is
 * answered "unapplied". The entry must survive: Cloudflare may hold it. */
static void test_resumed_prepared_unapplied_kept(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;

	bootstrap(f);
	/* The rotation's first send reaches Cloudflare, the answer is lost. */
	fake_script_set(f, FAKE_LOST, true);
	pass(f, "t01", &res);
	ts_pass_result_done(&res);
	assert_int_equal(fake_journal_step(f, 0), TS_JOURNAL_PREPARED);
	assert_true(fake_journal_key_is_cf(f, 0));
	/* The resend: Cloudflare says unapplied (e.g. busy). */
	fake_script_set(f, FAKE_UNAPPLIED, false);
	pass(f, NULL, &res);
	assert_int_equal(res.n_failed + res.n_pending > 0, true);
	ts_pass_result_done(&res);
	assert_int_equal(fake_journal_step(f, 0), TS_JOURNAL_PREPARED);
	check_safe(f);
	/* Then it goes through, with the same key. */
	assert_true(fake_settle(f, 2) > 0);
	assert_true(fake_in_agreement(f, 0));
}

/* Issue 9, key-loss path 2: a tunnel in neither map of the bulk answer
 * (Cloudflare took the key) keeps its journal and the same key is resent. */
static void test_missing_from_both_maps_kept(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;

	bootstrap(f);
	f->entry_answer[0] = FAKE_MISSING + 1;
	fake_script_set(f, FAKE_APPLIED, true); /* t01's entry: missing, but taken */
	pass(f, "t01", &res);
	ts_pass_result_done(&res);
	f->entry_answer[0] = 0;
	assert_int_equal(fake_journal_step(f, 0), TS_JOURNAL_PREPARED);
	check_safe(f);
	assert_true(fake_settle(f, 2) > 0);
	assert_true(fake_in_agreement(f, 0));
	assert_int_equal(fake_record_generation(f, 0), 2);
}

/* Issue 9: "regenerated elsewhere" from a baseline the agent observed. A
 * psk_generate answer without psk_metadata must not make every later
 * pass rotate again. */
static void test_generate_without_metadata_no_loop(void **state)
{
	struct fake *f = *state;

	for (size_t i = 0; i < f->d.n_tunnels; i++)
		f->t[i].psk.source = TS_PSK_SOURCE_GENERATE;
	f->write_omits_time = true;
	bootstrap(f);
	assert_int_equal(f->gen_calls, 3);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->gen_calls, 3);
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_int_equal(fake_record_baseline(f, i), f->cf[i].last_generated_on);
}

/* Write answers in whole seconds, the list in microseconds (and the other
 * way round): no rotation per pass either way. */
static void test_second_precision_no_loop(void **state)
{
	struct fake *f = *state;

	f->write_unit = TS_USEC_PER_SEC;
	bootstrap(f);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 1);
	f->write_unit = 0;
	f->list_unit = TS_USEC_PER_SEC;
	assert_int_equal(fake_settle(f, 1), 1);
	pass_forced_ok(f, "t02");
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 2);
}

/* A real regeneration on Cloudflare is still seen, and healed. */
static void test_regenerated_elsewhere_detected(void **state)
{
	struct fake *f = *state;

	bootstrap(f);
	fake_cf_regenerate(f, 1);
	assert_false(fake_in_agreement(f, 1));
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 2);
	assert_true(fake_in_agreement(f, 1));
	assert_int_equal(fake_record_generation(f, 1), 2);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 2);
}

/* Issue 12: the write's answer carries last_generated_on: it is the
 * baseline (journaled with step remote, carried into the record), and the
 * pass makes no list after its writes: one list, one bulk call. Then
 * passes in sync list once each and write nothing. The same for
 * psk_generate answers. */
/* The bootstrap in one bulk call and `lists` lists; every record's
 * baseline is Cloudflare's time of the agent's write. */
static void bootstrap_listing(struct fake *f, unsigned lists)
{
	bootstrap(f);
	assert_int_equal(f->lists, lists);
	assert_int_equal(f->set_calls, 1);
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_int_equal(fake_record_baseline(f, i), f->cf[i].last_generated_on);
}

static void test_answer_time_is_baseline(void **state)
{
	struct fake *f = *state;

	bootstrap_listing(f, 1);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->lists, 3);
	assert_int_equal(f->set_calls, 1);

	for (size_t i = 0; i < f->d.n_tunnels; i++)
		f->t[i].psk.source = TS_PSK_SOURCE_GENERATE;
	pass_forced_ok(f, "t02");
	assert_int_equal(f->lists, 4);
	assert_int_equal(f->gen_calls, 1);
	assert_int_equal(fake_record_baseline(f, 1), f->cf[1].last_generated_on);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->gen_calls, 1);
}

/* The answer without the time (the schema allows it): one list after the
 * writes takes the baseline, as before issue 12 (+1 request), for bulk
 * sets and psk_generate alike. */
static void test_answer_without_time_lists_once(void **state)
{
	struct fake *f = *state;

	f->write_omits_time = true;
	bootstrap_listing(f, 2);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->lists, 3);
	f->t[0].psk.source = TS_PSK_SOURCE_GENERATE;
	pass_forced_ok(f, "t01");
	assert_int_equal(f->lists, 5);
	assert_int_equal(fake_record_baseline(f, 0), f->cf[0].last_generated_on);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls + f->gen_calls, 2);
}

/* A key regenerated on Cloudflare right after the agent's write, before
 * any later list (the case ac3077f lost): the next pass sees it and heals
 * it, whether the baseline came from the answer or from the list after
 * the writes, and for every pair of precisions, as soon as it is two
 * units of the coarser one later (core/timeutil.h). */
static void regenerated_right_after(struct fake *f, ts_usec_t dt)
{
	unsigned writes = (unsigned)f->set_calls;

	fake_cf_regenerate_after(f, 1, dt);
	assert_false(fake_in_agreement(f, 1));
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, writes + 1);
	assert_true(fake_in_agreement(f, 1));
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, writes + 1);
}

/* A fake of three tunnels whose Cloudflare writes times in these units. */
static struct fake *fake_in_units(ts_usec_t write_unit, ts_usec_t list_unit)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_init(f, 3);
	f->write_unit = write_unit;
	f->list_unit = list_unit;
	return f;
}

static void fake_free(struct fake *f)
{
	fake_done(f);
	free(f);
}

static void test_regenerated_right_after_write(void **state)
{
	static const struct {
		bool omit;
		ts_usec_t write_unit, list_unit, dt;
	} cases[] = {
		{ false, 0, 0, 2 },
		{ true, 0, 0, 2 },
		{ false, TS_USEC_PER_SEC, 0, 2 * TS_USEC_PER_SEC },
		{ false, 0, TS_USEC_PER_SEC, 2 * TS_USEC_PER_SEC },
		{ false, 1000, 0, 2000 },
		{ true, 0, 1000, 2000 },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fake *f = fake_in_units(cases[c].write_unit, cases[c].list_unit);

		f->write_omits_time = cases[c].omit;
		bootstrap(f);
		assert_int_equal(f->lists, cases[c].omit ? 2 : 1);
		regenerated_right_after(f, cases[c].dt);
		/* And once more right after the healing rotation's own write. */
		regenerated_right_after(f, cases[c].dt);
		fake_free(f);
	}
}

/* Write answers and list at other precisions, and writers that round
 * (a list rounding up to the next unit shows a later time than the exact
 * answer of the same write): no rotation per pass, and no extra list. */
static void test_precisions_no_loop(void **state)
{
	static const struct {
		ts_usec_t write_unit, list_unit;
		bool write_rounds, list_rounds;
	} cases[] = {
		{ TS_USEC_PER_SEC, 0, false, false },
		{ 0, TS_USEC_PER_SEC, false, false },
		{ 1000, 0, true, false },
		{ 0, 1000, false, true },
		{ 0, TS_USEC_PER_SEC, false, true },
		{ TS_USEC_PER_SEC, 1000, true, false },
		{ 0, 100000, false, false },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fake *f = fake_in_units(cases[c].write_unit, cases[c].list_unit);

		f->write_rounds = cases[c].write_rounds;
		f->list_rounds = cases[c].list_rounds;
		/* A time a writer rounds up: the fake's clock at .999 of a unit. */
		f->real += 999000 - f->real % TS_USEC_PER_SEC + 999;
		bootstrap(f);
		pass_forced_ok(f, "t02");
		for (int k = 0; k < 3; k++)
			assert_int_equal(fake_settle(f, 1), 1);
		assert_int_equal(f->set_calls, 2);
		assert_int_equal(f->lists, 5);
		fake_free(f);
	}
}

/* The list after the write fails: no baseline is recorded, the next pass
 * adopts the list's value instead of rotating. */
static void test_baseline_adopted_later(void **state)
{
	struct fake *f = *state;

	f->write_omits_time = true; /* so that the pass lists after its write */
	f->list_fail_at = 2;	    /* the pass's second list: the one after the write */
	bootstrap(f);
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_int_equal(fake_record_baseline(f, i), 0);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 1);
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_int_equal(fake_record_baseline(f, i), f->cf[i].last_generated_on);
	/* And a later regeneration is still caught. */
	fake_cf_regenerate(f, 0);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(f->set_calls, 2);
	assert_true(fake_in_agreement(f, 0));
}

static void corrupt(struct fake *f, const char *sub, const char *file)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/%s", f->state_dir, sub, file);
	fp = fopen(path, "r+");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 30, SEEK_SET), 0);
	assert_int_equal(fputs("garbage", fp) >= 0, true);
	assert_int_equal(fclose(fp), 0);
}

/* status.json is written without JSON_SORT_KEYS, its members added in
 * order: the text must be what sorting would have made of it. */
static void assert_status_sorted(const char *json)
{
	json_t *root = json_loads(json, 0, NULL);
	char *sorted;

	assert_non_null(root);
	sorted = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	assert_non_null(sorted);
	assert_string_equal(json, sorted);
	free(sorted);
	json_decref(root);
}

static void assert_status(struct fake *f, const char *condition, const char *reason)
{
	char *json = NULL, want[128];

	assert_int_equal(ts_agent_status_read(f->state_dir, &json), 0);
	assert_status_sorted(json);
	snprintf(want, sizeof(want), "\"condition\": \"%s\"", condition);
	assert_non_null(strstr(json, want));
	snprintf(want, sizeof(want), "\"reason\": \"%s\"", reason);
	assert_non_null(strstr(json, want));
	free(json);
}

/* Issue 9: a corrupt journal entry is Stalled (never "in sync"), pass
 * after pass until repaired; the repair in the README works. */
static void test_corrupt_journal_stalls(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	char from[512], to[512];

	bootstrap(f);
	fake_script_set(f, FAKE_LOST, true); /* Cloudflare took it; journal at prepared */
	pass(f, "t01", &res);
	ts_pass_result_done(&res);
	corrupt(f, "journal", "t01.jnl");
	for (int k = 0; k < 2; k++) {
		pass(f, NULL, &res);
		assert_int_equal(res.n_store_problems, 1);
		assert_non_null(strstr(res.store_problem, "t01.jnl"));
		ts_pass_result_done(&res);
		assert_status(f, "Stalled", "StoreDamaged");
		/* The metric and /readyz say so too. */
		assert_non_null(f->last_metrics);
		assert_non_null(strstr(f->last_metrics, "\ntunnelsync_store_problems 1\n"));
		assert_false(f->last_ready);
	}
	/* The others were not held back. */
	assert_true(fake_in_agreement(f, 1));
	assert_true(fake_in_agreement(f, 2));
	/* Repair (README): move the file aside, rotate the tunnel. */
	snprintf(from, sizeof(from), "%s/journal/t01.jnl", f->state_dir);
	snprintf(to, sizeof(to), "%s/t01.jnl.damaged", f->dir);
	assert_int_equal(rename(from, to), 0);
	pass_forced_ok(f, "t01");
	assert_true(fake_in_agreement(f, 0));
	assert_status(f, "Ready", "InSync");
	assert_non_null(strstr(f->last_metrics, "\ntunnelsync_store_problems 0\n"));
	assert_true(f->last_ready);
}

/* A corrupt key record: the same. */
static void test_corrupt_record_stalls(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;

	bootstrap(f);
	corrupt(f, "records", "t02.rec");
	pass(f, NULL, &res);
	assert_int_equal(res.n_store_problems, 1);
	assert_int_equal(f->set_calls, 1); /* never rotated over */
	ts_pass_result_done(&res);
	assert_status(f, "Stalled", "StoreDamaged");
}

/* Issue 9: `rotate a b` in one redundancy group defers b; the request is
 * persisted and b rotates in a later pass, then the request is gone. */
static void test_rotate_deferred_member_persists(void **state)
{
	struct fake *f = *state;
	const char *names[] = { "t01", "t02" };
	struct ts_pass_result res;

	snprintf(f->t[0].redundancy_group, sizeof(f->t[0].redundancy_group), "g");
	snprintf(f->t[1].redundancy_group, sizeof(f->t[1].redundancy_group), "g");
	assert_true(fake_settle(f, 3) > 0); /* bootstrap, one member at a time */
	assert_int_equal(fake_record_generation(f, 0), 1);
	assert_int_equal(fake_record_generation(f, 1), 1);
	assert_int_equal(fake_rotate(f, names, 2, &res), 0);
	assert_int_equal(res.n_failed, 0);
	assert_true(res.n_pending > 0); /* one deferred: exit 2 */
	ts_pass_result_done(&res);
	assert_int_equal(fake_record_generation(f, 0) + fake_record_generation(f, 1), 3);
	assert_true(fake_requested(f, 0) != fake_requested(f, 1));
	/* A plain pass later: the deferred member rotates. */
	assert_true(fake_settle(f, 3) > 0);
	assert_int_equal(fake_record_generation(f, 0), 2);
	assert_int_equal(fake_record_generation(f, 1), 2);
	assert_false(fake_requested(f, 0));
	assert_false(fake_requested(f, 1));
	assert_true(fake_in_agreement(f, 0));
	assert_true(fake_in_agreement(f, 1));
	/* Done means done: no further rotation. */
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(fake_record_generation(f, 0), 2);
}

/* `rotate --cancel` drops a deferred request. */
static void test_rotate_cancel(void **state)
{
	struct fake *f = *state;
	const char *names[] = { "t01", "t02" };
	const char *deferred[1];
	struct ts_pass_result res;
	size_t n = 9;

	snprintf(f->t[0].redundancy_group, sizeof(f->t[0].redundancy_group), "g");
	snprintf(f->t[1].redundancy_group, sizeof(f->t[1].redundancy_group), "g");
	assert_true(fake_settle(f, 3) > 0);
	assert_int_equal(fake_rotate(f, names, 2, &res), 0);
	ts_pass_result_done(&res);
	deferred[0] = fake_requested(f, 0) ? "t01" : "t02";
	assert_int_equal(fake_cancel(f, deferred, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(fake_cancel(f, deferred, 1, &n), 0);
	assert_int_equal(n, 0); /* nothing left to cancel */
	assert_int_equal(fake_settle(f, 2) > 0, true);
	assert_int_equal(fake_record_generation(f, 0) + fake_record_generation(f, 1), 3);
}

/* Issue 9: `rotate` of a file tunnel whose file did not change fails
 * plainly (exit 1), changes nothing and leaves no request behind. */
static void test_rotate_file_unchanged(void **state)
{
	struct fake *f = *state;
	const char *names[] = { "t01" };
	char path[256];
	struct ts_pass_result res;
	FILE *fp;
	bool said = false;

	snprintf(path, sizeof(path), "%s/t01.key", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("0123456789abcdefghijklmnopqrstuv\n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	f->t[0].psk.source = TS_PSK_SOURCE_FILE;
	f->t[0].psk.file = path;
	bootstrap(f);
	assert_int_equal(fake_rotate(f, names, 1, &res), 0);
	assert_int_equal(res.n_failed, 1);
	for (size_t i = 0; i < res.plan->n_actions; i++)
		said |= strstr(res.outcomes[i].detail, "holds the current key") != NULL;
	assert_true(said);
	ts_pass_result_done(&res);
	assert_int_equal(fake_record_generation(f, 0), 1);
	assert_false(fake_requested(f, 0));
	assert_int_equal(fake_journal_step(f, 0), -1);
	/* A new key in the file: rotated by the next pass. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("vutsrqponmlkjihgfedcba9876543210\n", fp);
	fclose(fp);
	assert_int_equal(fake_settle(f, 1), 1);
	assert_int_equal(fake_record_generation(f, 0), 2);
	assert_true(fake_in_agreement(f, 0));
	f->t[0].psk.file = NULL;
}

/* Issue 9: the waits of one pass run together. 20 tunnels whose peers do
 * not answer: one initiate timeout for the pass, not 20 in a row; the same
 * for 20 rotations waiting for their confirmation. Times are the fake
 * clock's (wait() advances it), printed as the measurement. */
static ts_usec_t timed_pass(struct fake *f, const char *const *forced, size_t n,
			    struct ts_pass_result *res)
{
	ts_usec_t t0 = f->mono;

	assert_int_equal(fake_pass(f, forced, n, res), 0);
	return f->mono - t0 - 60 * TS_USEC_PER_SEC; /* fake_pass adds 60 s after */
}

static void test_waits_run_together(void **state)
{
	struct fake *f = *state;
	const char *names[20];
	struct ts_pass_result res;
	ts_usec_t took;

	fake_done(f);
	fake_init(f, 20);
	bootstrap(f);
	for (size_t i = 0; i < 20; i++) {
		f->ike[i].up = false;
		f->ike[i].ike_id = 0;
		f->ike[i].reachable = false;
		names[i] = f->t[i].name;
	}
	took = timed_pass(f, NULL, 0, &res);
	assert_int_equal(res.n_pending, 20);
	ts_pass_result_done(&res);
	print_message("20 unreachable tunnels: initiates waited %.2f s in all (one wait: %u s)\n",
		      (double)took / TS_USEC_PER_SEC, f->d.agent.confirm_timeout);
	/* One wait (min(confirm-timeout, TS_INITIATE_WAIT_S) = 5 s), not 20 x 5 s. */
	assert_true(took <= (ts_usec_t)(f->d.agent.confirm_timeout + 1) * TS_USEC_PER_SEC);
	assert_true(took >= (ts_usec_t)(f->d.agent.confirm_timeout - 1) * TS_USEC_PER_SEC);

	f->d.agent.max_rotations_per_pass = 0;
	took = timed_pass(f, names, 20, &res);
	assert_int_equal(res.n_failed, 0);
	ts_pass_result_done(&res);
	print_message("20 rotations, peers unreachable: confirmations waited %.2f s in all "
		      "(confirm-timeout %u s)\n",
		      (double)took / TS_USEC_PER_SEC, f->d.agent.confirm_timeout);
	assert_true(took <= (ts_usec_t)(f->d.agent.confirm_timeout + 1) * TS_USEC_PER_SEC);
	for (size_t i = 0; i < 20; i++) {
		assert_int_equal(fake_journal_step(f, i), TS_JOURNAL_REMOTE);
		assert_true(fake_key_safe(f, i));
		f->ike[i].reachable = true;
	}
	/* Reachable again: every one confirmed and committed. */
	assert_true(fake_settle(f, 2) > 0);
	for (size_t i = 0; i < 20; i++)
		assert_true(fake_in_agreement(f, i));
}

/* Issue 12: a wait's rounds read the SAs alone (no connections' dump, no
 * keys), and when a round is slow (every SA of 10,000 tunnels) the pause
 * after it grows with it, so that the waits do not keep charon busy. 20
 * rotations to unreachable peers, each observation lasting 2 s of the
 * fake clock: about confirm-timeout / (2 s + 6 s) rounds, not / 2.25 s. */
static void test_wait_rounds_sas_only(void **state)
{
	struct fake *f = *state;
	const char *names[20];
	struct ts_pass_result res;
	unsigned observes, rounds, bound;

	fake_done(f);
	fake_init(f, 20);
	bootstrap(f);
	for (size_t i = 0; i < 20; i++) {
		f->ike[i].reachable = false;
		names[i] = f->t[i].name;
	}
	f->d.agent.max_rotations_per_pass = 0;
	f->d.agent.confirm_timeout = 60;
	f->observe_delay = 2 * TS_USEC_PER_SEC;
	observes = f->observes;
	f->sa_observes = 0;
	assert_int_equal(fake_pass(f, names, 20, &res), 0);
	assert_int_equal(res.n_failed, 0);
	ts_pass_result_done(&res);
	rounds = f->sa_observes;
	bound = f->d.agent.confirm_timeout / 8 + 2;
	print_message("20 confirmations, 2 s per observation, confirm-timeout %u s: %u rounds "
		      "(bound %u; %u other observations in the pass)\n",
		      f->d.agent.confirm_timeout, rounds, bound, f->observes - observes);
	assert_true(rounds >= 2);
	assert_true(rounds <= bound);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(fake_journal_step(f, i), TS_JOURNAL_REMOTE);
}

static void test_wait_pause(void **state)
{
	const ts_usec_t s = TS_USEC_PER_SEC;

	(void)state;
	assert_int_equal(ts_wait_pause(0), 250);      /* a fast round */
	assert_int_equal(ts_wait_pause(s / 20), 250); /* 3 x 50 ms */
	assert_int_equal(ts_wait_pause(s / 5), 600);  /* 3 x 200 ms */
	assert_int_equal(ts_wait_pause(s), 3000);     /* 3 x 1 s */
	assert_int_equal(ts_wait_pause(4 * s), 5000); /* at most 5 s */
	assert_int_equal(ts_wait_pause(100 * s), 5000);
}

/* --- declared changes (update-conn, update-tunnel) --------------------------- */

static const struct ts_action *find_action(const struct ts_plan *plan, enum ts_action_kind k,
					   const char *tunnel)
{
	for (size_t i = 0; plan && i < plan->n_actions; i++)
		if (plan->actions[i].kind == k && strcmp(plan->actions[i].tunnel, tunnel) == 0)
			return &plan->actions[i];
	return NULL;
}

static void keys_copy(struct fake *f, struct ts_secret **out)
{
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		out[i] = ts_secret_dup(f->cf[i].key);
}

static void keys_unchanged(struct fake *f, struct ts_secret **before)
{
	for (size_t i = 0; i < f->d.n_tunnels; i++) {
		assert_true(ts_secret_equal(before[i], f->cf[i].key));
		assert_true(ts_secret_equal(before[i], f->ike[i].key));
		ts_secret_free(before[i]);
	}
}

static void pass_in_sync(struct fake *f)
{
	struct ts_pass_result res;

	pass(f, NULL, &res);
	if (res.plan->n_actions)
		fail_msg("not in sync: %s %s",
			 ts_plan_action_kind_to_string(res.plan->actions[0].kind),
			 res.plan->actions[0].reason);
	ts_pass_result_done(&res);
}

/* A declared CHILD proposal change: update-conn of that tunnel only, with
 * the leaf old -> new, new SAs for it, no key change anywhere, then in
 * sync. */
static void test_update_conn_applied(void **state)
{
	struct fake *f = *state;
	struct ts_secret *before[3];
	struct ts_pass_result res;
	const struct ts_action *a;
	const struct ts_change *c;
	uint32_t id0, id1;

	bootstrap(f);
	pass_in_sync(f);
	keys_copy(f, before);
	id0 = f->ike[0].ike_id, id1 = f->ike[1].ike_id;
	f->t[0].ike.child_sa.encr = TS_ENCR_AES128_GCM16;
	pass(f, NULL, &res);
	assert_int_equal(res.n_failed + res.n_pending, 0);
	assert_int_equal(res.plan->n_rotations, 0);
	a = find_action(res.plan, TS_ACTION_UPDATE_CONN, "t01");
	assert_non_null(a);
	assert_int_equal(res.plan->n_actions, 1);
	c = ts_changes_find(&a->changes, "child.esp_proposals");
	assert_non_null(c);
	assert_string_equal(c->old_value, "aes256gcm16-ecp384-noesn");
	assert_string_equal(c->new_value, "aes128gcm16-ecp384-noesn");
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].updates, 1);
	assert_int_not_equal(f->ike[0].ike_id, id0);
	assert_int_equal(f->ike[1].updates, 0);
	assert_int_equal(f->ike[1].ike_id, id1);
	keys_unchanged(f, before);
	pass_in_sync(f);
}

/* The new SAs do not come up: pending, the old SAs kept, and the next pass
 * plans the update again although charon already holds the new config
 * (the record says the running SAs do not); once they come up, in sync. */
static void test_update_conn_retried(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *a;
	uint32_t id0;

	bootstrap(f);
	pass_in_sync(f);
	id0 = f->ike[0].ike_id;
	f->ike[0].update_fails = true;
	f->t[0].ike.dpd_delay = 30;
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending, 1);
	assert_int_equal(res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].ike_id, id0);
	pass(f, NULL, &res);
	a = find_action(res.plan, TS_ACTION_UPDATE_CONN, "t01");
	assert_non_null(a);
	assert_string_equal(ts_changes_find(&a->changes, "dpd_delay")->old_value, "10");
	ts_pass_result_done(&res);
	f->ike[0].update_fails = false;
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_not_equal(f->ike[0].ike_id, id0);
	pass_in_sync(f);
}

/* A peer that refuses a second IKE SA: new SAs beside the old never come
 * up; once that lasted longer than confirm-timeout (across processes: the
 * mark is in the state directory) the update breaks before it makes. */
static void test_update_conn_refused_overlap(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	char path[300];
	struct stat st;

	bootstrap(f);
	pass_in_sync(f);
	f->ike[0].refuses_overlap = true;
	f->t[0].ike.dpd_delay = 30;
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].breaks, 0);
	snprintf(path, sizeof(path), "%s/conns/t01.failing", f->state_dir);
	assert_int_equal(stat(path, &st), 0);
	/* fake_pass lets a minute pass: beyond confirm-timeout (5 s). */
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].breaks, 1);
	assert_int_equal(stat(path, &st), -1);
	pass_in_sync(f);
}

/* Without a record (an older agent, a lost file), the unlisted leaves are
 * unknown: one reload, no new SAs, then in sync. */
static void test_update_conn_without_record(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *a;
	char path[300];
	uint32_t id0;

	bootstrap(f);
	pass_in_sync(f);
	id0 = f->ike[0].ike_id;
	snprintf(path, sizeof(path), "%s/conns/t01.conn", f->state_dir);
	assert_int_equal(unlink(path), 0);
	pass(f, NULL, &res);
	a = find_action(res.plan, TS_ACTION_UPDATE_CONN, "t01");
	assert_non_null(a);
	assert_non_null(ts_changes_find(&a->changes, "unlisted-fields"));
	assert_int_equal(a->changes.n, 1);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].updates, 1);
	assert_int_equal(f->ike[0].ike_id, id0);
	pass_in_sync(f);
}

/* Issue 9: update-conn joins the pass's waits. Four tunnels changed whose
 * new SAs never come up, one unreachable tunnel to initiate and one update
 * that succeeds: the pass waits one update wait (min(confirm-timeout,
 * TS_INITIATE_WAIT_S)), not five in a row; the four stay pending with the
 * old SAs kept (nothing finished), the healthy one is finished once and
 * recorded (in sync next pass), and no key changes. */
static void test_update_conn_waits_together(void **state)
{
	struct fake *f = *state;
	struct ts_secret *before[8];
	struct ts_pass_result res;
	uint32_t old[8];
	ts_usec_t took;

	fake_done(f);
	fake_init(f, 6);
	bootstrap(f);
	keys_copy(f, before);
	for (size_t i = 0; i < 6; i++) {
		old[i] = f->ike[i].ike_id;
		f->t[i].ike.dpd_delay = 30;
		f->ike[i].update_fails = i < 4;
	}
	f->t[4].ike.dpd_delay = 10; /* t05 unchanged: initiated */
	f->ike[4].up = false;
	f->ike[4].ike_id = 0;
	f->ike[4].reachable = false;
	took = timed_pass(f, NULL, 0, &res);
	print_message("4 updates whose new SAs do not come up + 1 unreachable initiate: the pass "
		      "waited %.2f s (one wait: %u s; in a row: %u s)\n",
		      (double)took / TS_USEC_PER_SEC, f->d.agent.confirm_timeout,
		      5 * f->d.agent.confirm_timeout);
	assert_true(took <= (ts_usec_t)(f->d.agent.confirm_timeout + 1) * TS_USEC_PER_SEC);
	assert_true(took >= (ts_usec_t)(f->d.agent.confirm_timeout - 1) * TS_USEC_PER_SEC);
	assert_int_equal(res.n_pending, 5);
	assert_int_equal(res.n_failed, 0);
	for (size_t i = 0; i < 4; i++) {
		const struct ts_action *a =
			find_action(res.plan, TS_ACTION_UPDATE_CONN, f->t[i].name);

		assert_non_null(a);
		assert_int_equal(res.outcomes[a - res.plan->actions].status, TS_OUTCOME_PENDING);
		assert_int_equal(f->ike[i].updates, 1);
		assert_int_equal(f->ike[i].finishes, 0); /* old SAs kept */
		assert_int_equal(f->ike[i].ike_id, old[i]);
	}
	assert_int_equal(f->ike[5].finishes, 1);
	assert_int_not_equal(f->ike[5].ike_id, old[5]);
	ts_pass_result_done(&res);
	keys_unchanged(f, before);
	/* The peers take the new SAs: every update finishes in one pass. */
	for (size_t i = 0; i < 6; i++) {
		f->ike[i].update_fails = false;
		f->ike[i].reachable = true;
	}
	assert_int_equal(fake_settle(f, 1), 1);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(f->ike[i].finishes, 1);
		assert_int_not_equal(f->ike[i].ike_id, old[i]);
	}
	pass_in_sync(f);
}

/* A tunnel changed and rotated in one pass: the rotation's reauth keeps
 * the config the SAs were made from, so the update only loads the
 * connection (pending) and re-establishes in the next pass; the key is the
 * rotation's, the record of the connection says so only after that. */
static void test_update_conn_with_rotation(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *a;
	uint32_t id;

	bootstrap(f);
	pass_in_sync(f);
	f->t[0].ike.dpd_delay = 30;
	pass(f, "t01", &res);
	a = find_action(res.plan, TS_ACTION_UPDATE_CONN, "t01");
	assert_non_null(a);
	assert_int_equal(res.outcomes[a - res.plan->actions].status, TS_OUTCOME_PENDING);
	assert_non_null(find_action(res.plan, TS_ACTION_ROTATE, "t01"));
	assert_int_equal(res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(fake_record_generation(f, 0), 2);
	assert_true(fake_in_agreement(f, 0));
	assert_int_equal(f->ike[0].finishes, 0);
	id = f->ike[0].ike_id;
	pass(f, NULL, &res);
	a = find_action(res.plan, TS_ACTION_UPDATE_CONN, "t01");
	assert_non_null(a);
	assert_non_null(ts_changes_find(&a->changes, "dpd_delay"));
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].finishes, 1);
	assert_int_not_equal(f->ike[0].ike_id, id);
	assert_int_equal(fake_record_generation(f, 0), 2);
	pass_in_sync(f);
}

/* A file's content (NULL: none), for "nothing else touched". */
static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!fp)
		return NULL;
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static char *state_file(struct fake *f, const char *sub, const char *name, const char *ext)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s/%s.%s", f->state_dir, sub, name, ext);
	return slurp(path);
}

/* Stale-tunnel cleanup: t03 removed from the config. Prune off: its
 * connection and key in charon are reported, nothing removed. Prune on:
 * both unloaded from charon and its connection record
 * (STATE_DIR/conns/t03.conn) removed; its key record stays (it holds the
 * key Cloudflare still has, should the tunnel come back); the other
 * tunnels' SAs, keys, key records and connection records are unchanged and
 * Cloudflare gets no write; the next pass has nothing to do. */
static void test_removed_tunnel_cleanup(void **state)
{
	struct fake *f = *state;
	struct ts_secret *before[3];
	struct ts_pass_result res;
	char *conn[3], *rec[3], *t03_rec;
	uint32_t id[2];
	size_t set_calls;

	bootstrap(f);
	pass_in_sync(f);
	keys_copy(f, before);
	for (size_t i = 0; i < 3; i++) {
		conn[i] = state_file(f, "conns", f->t[i].name, "conn");
		rec[i] = state_file(f, "records", f->t[i].name, "rec");
		assert_non_null(conn[i]);
		assert_non_null(rec[i]);
	}
	id[0] = f->ike[0].ike_id, id[1] = f->ike[1].ike_id;
	set_calls = f->set_calls;
	f->d.n_tunnels = 2;

	pass(f, NULL, &res);
	assert_int_equal(res.n_failed + res.n_pending, 0);
	for (size_t k = 0; k < res.plan->n_actions; k++) {
		const struct ts_action *a = &res.plan->actions[k];

		assert_int_equal(a->kind, TS_ACTION_REPORT);
		assert_int_equal(a->cause, TS_CAUSE_STALE);
		assert_string_equal(a->tunnel, "t03");
	}
	assert_int_equal(res.plan->n_actions, 2); /* its connection and its key */
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[2].unloads, 0);
	assert_true(f->ike[2].conn_loaded);
	t03_rec = state_file(f, "conns", "t03", "conn");
	assert_non_null(t03_rec);
	assert_string_equal(t03_rec, conn[2]);
	free(t03_rec);

	f->d.agent.prune = true;
	pass(f, NULL, &res);
	assert_int_equal(res.n_failed + res.n_pending, 0);
	assert_non_null(find_action(res.plan, TS_ACTION_UNLOAD_CONN, "t03"));
	assert_non_null(find_action(res.plan, TS_ACTION_UNLOAD_KEY, "t03"));
	assert_int_equal(res.plan->n_actions, 2);
	assert_int_equal(res.n_applied, 2);
	ts_pass_result_done(&res);
	assert_false(f->ike[2].conn_loaded);
	assert_null(f->ike[2].key);
	assert_null(state_file(f, "conns", "t03", "conn"));
	/* The key record stays; so does everything of t01 and t02. */
	t03_rec = state_file(f, "records", "t03", "rec");
	assert_non_null(t03_rec);
	assert_string_equal(t03_rec, rec[2]);
	free(t03_rec);
	for (size_t i = 0; i < 2; i++) {
		char *c = state_file(f, "conns", f->t[i].name, "conn");
		char *r = state_file(f, "records", f->t[i].name, "rec");

		assert_non_null(c);
		assert_non_null(r);
		assert_string_equal(c, conn[i]);
		assert_string_equal(r, rec[i]);
		free(c);
		free(r);
		assert_int_equal(f->ike[i].ike_id, id[i]);
		assert_int_equal(f->ike[i].unloads, 0);
		assert_int_equal(f->ike[i].updates, 0);
	}
	assert_int_equal(f->set_calls, set_calls);
	assert_int_equal(f->cf[2].updates, 0);
	keys_unchanged(f, before);
	ts_secret_free(before[2]);
	for (size_t i = 0; i < 3; i++) {
		free(conn[i]);
		free(rec[i]);
	}
	pass_in_sync(f);
}

/* interface_address changed at Cloudflare: reported, nothing written;
 * with manage-tunnels, set back through the update call; keys untouched. */
/* Break-before-make is the fallback for a rotation whose earlier
 * make-before-break attempt did not come up: one taken from the journal,
 * older than confirm-timeout. A fresh rotation whose bulk call alone lasted
 * longer (100 keys to a slow edge) still gets make-before-break. */
static void test_reauth_fallback_only_when_resumed(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;

	bootstrap(f);
	f->set_delay = (ts_usec_t)(f->d.agent.confirm_timeout + 2) * TS_USEC_PER_SEC;
	pass_forced_ok(f, "t01");
	assert_int_equal(f->ike[0].reauths, 1);
	assert_int_equal(f->ike[0].reinitiates, 0);
	f->set_delay = 0;

	/* The peer refuses a second IKE SA: the rotation is left at remote. */
	f->ike[1].refuses_overlap = true;
	pass(f, "t02", &res);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(fake_journal_step(f, 1), TS_JOURNAL_REMOTE);
	assert_int_equal(f->ike[1].reauths, 1);
	assert_int_equal(f->ike[1].reinitiates, 0);
	/* charon shows the new IKE SA, its IKE_SA_INIT never answered. */
	assert_int_equal(f->ike[1].reauth_sa, FAKE_REAUTH_UNANSWERED);
	/* Later, resumed: break-before-make this time. */
	f->real += (ts_usec_t)(f->d.agent.confirm_timeout + 1) * TS_USEC_PER_SEC;
	f->mono += (ts_usec_t)(f->d.agent.confirm_timeout + 1) * TS_USEC_PER_SEC;
	assert_true(fake_settle(f, 3) > 0);
	assert_int_equal(f->ike[1].reinitiates, 1);
	assert_true(fake_in_agreement(f, 1));
	check_safe(f);
}

static void advance(struct fake *f, unsigned seconds)
{
	f->real += (ts_usec_t)seconds * TS_USEC_PER_SEC;
	f->mono += (ts_usec_t)seconds * TS_USEC_PER_SEC;
}

/* t02 rotated against a slow peer: the pass stops waiting while the new
 * IKE SA's IKE_AUTH is under way (the peer answered its IKE_SA_INIT).
 * Returns the realtime the rotation began at (or just before). */
static ts_usec_t rotate_slow(struct fake *f)
{
	struct ts_pass_result res;
	ts_usec_t began;

	/* The default: the one-shot passes of the fakes come 60 s apart. */
	f->d.agent.confirm_timeout = 30;
	bootstrap(f);
	f->ike[1].reauth_slow = true;
	began = f->real;
	pass(f, "t02", &res);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(fake_journal_step(f, 1), TS_JOURNAL_REMOTE);
	assert_int_equal(f->ike[1].reauths, 1);
	assert_int_equal(f->ike[1].reauth_sa, FAKE_REAUTH_ANSWERED);
	return began;
}

/* Confirmed with the new key by a later pass, from the one reauth request
 * of the first: no break-before-make, no other IKE SA asked for. */
static void slow_confirmed(struct fake *f, unsigned initiates)
{
	assert_int_equal(f->ike[1].reauths, 1);
	assert_int_equal(f->ike[1].reinitiates, 0);
	assert_int_equal(f->ike[1].initiates, initiates);
	assert_int_equal(fake_journal_step(f, 1), -1);
	assert_true(fake_in_agreement(f, 1));
	check_safe(f);
}

/* An edge slower than confirm-timeout (100 keys at once on a loaded hub):
 * resumed after confirm-timeout with IKE_AUTH still under way, the
 * rotation waits for it (a refusing peer never answers IKE_SA_INIT:
 * test_reauth_fallback_only_when_resumed); once the SA is up the next pass
 * confirms and commits it. */
static void test_slow_reauth_waited_for(void **state)
{
	struct fake *f = *state;
	unsigned initiates;
	struct ts_pass_result res;

	rotate_slow(f);
	initiates = f->ike[1].initiates;
	advance(f, f->d.agent.confirm_timeout + 1);
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[1].reauths, 1);
	assert_int_equal(f->ike[1].reinitiates, 0);
	assert_true(f->ike[1].up); /* the old SA never broken */
	assert_int_equal(f->ike[1].reauth_sa, FAKE_REAUTH_ANSWERED);
	assert_int_equal(fake_journal_step(f, 1), TS_JOURNAL_REMOTE);

	assert_int_equal(fake_reauth_complete(f, 1), 0);
	advance(f, 1);
	assert_int_equal(fake_settle(f, 2), 1);
	slow_confirmed(f, initiates);
}

/* The same, the new IKE SA up before the next pass: confirmed by that pass,
 * the SA that came up kept. */
static void test_slow_reauth_came_up_between(void **state)
{
	struct fake *f = *state;
	unsigned initiates;
	uint32_t id;

	rotate_slow(f);
	initiates = f->ike[1].initiates;
	assert_int_equal(fake_reauth_complete(f, 1), 0);
	id = f->ike[1].ike_id;
	advance(f, f->d.agent.confirm_timeout + 1);
	pass_forced_ok(f, NULL);
	assert_int_equal(f->ike[1].ike_id, id);
	slow_confirmed(f, initiates);
}

/* Under way for ever (the peer answered IKE_SA_INIT, never IKE_AUTH):
 * waited for up to 10 x confirm-timeout since the rotation began, then
 * break-before-make. The peer's error answer to IKE_AUTH ends it sooner:
 * charon drops the new SA, the next pass after confirm-timeout falls back. */
static void test_slow_reauth_bounded(void **state)
{
	struct fake *f = *state;
	ts_usec_t began = rotate_slow(f), bound;
	unsigned passes = 0;

	bound = (ts_usec_t)10 * f->d.agent.confirm_timeout * TS_USEC_PER_SEC;
	while (f->ike[1].reinitiates == 0) {
		bool late = f->real - began > bound;
		struct ts_pass_result res;

		assert_true(++passes < 10);
		pass(f, NULL, &res);
		ts_pass_result_done(&res);
		assert_int_equal(f->ike[1].reinitiates, late);
		assert_int_equal(f->ike[1].reauths, 1);
	}
	assert_true(passes > 1);
	assert_true(fake_settle(f, 2) > 0);
	assert_true(fake_in_agreement(f, 1));
	check_safe(f);
}

static void test_slow_reauth_then_refused(void **state)
{
	struct fake *f = *state;

	rotate_slow(f);
	fake_reauth_fail(f, 1);
	f->ike[1].reauth_slow = false;
	advance(f, f->d.agent.confirm_timeout + 1);
	assert_true(fake_settle(f, 2) > 0);
	assert_int_equal(f->ike[1].reinitiates, 1);
	assert_int_equal(f->ike[1].reauths, 1);
	assert_true(fake_in_agreement(f, 1));
	check_safe(f);
}

/* --- update-conn against a slow or refusing peer: the rotation's rule
 * (ts_earlier_decide) for the new SAs an earlier pass asked for ---------- */

/* The log lines of a pass (INFO and up), for what the rule says and why. */
struct log_capture {
	char text[8192];
	size_t len;
};

static void capture_line(enum ts_log_level level, const char *line, void *userdata)
{
	struct log_capture *c = userdata;
	int n;

	(void)level;
	n = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(c->text) - c->len)
		c->len += (size_t)n;
}

static void pass_logged(struct fake *f, struct ts_pass_result *res, struct log_capture *c)
{
	memset(c, 0, sizeof(*c));
	ts_log_set_level(TS_LOG_INFO);
	ts_log_set_sink(capture_line, c);
	pass(f, NULL, res);
	ts_log_set_sink(NULL, NULL);
	ts_log_set_level(TS_LOG_ERROR);
	/* No key of any tunnel in what the rule logged. */
	for (size_t i = 0; i < f->d.n_tunnels; i++)
		assert_null(strstr(c->text, ts_secret_str(f->cf[i].key)));
}

/* t01's CHILD proposal changed against a peer that takes new SAs beside
 * the old ones slowly (slow) or never (refuses): the first pass asks for
 * them, make-before-break, and stops waiting with the old SAs kept. */
static void update_slow_begin(struct fake *f, unsigned confirm_timeout, bool refuses)
{
	struct ts_pass_result res;

	f->d.agent.confirm_timeout = confirm_timeout;
	bootstrap(f);
	pass_in_sync(f);
	f->ike[0].reauth_slow = !refuses;
	f->ike[0].refuses_overlap = refuses;
	f->t[0].ike.child_sa.encr = TS_ENCR_AES128_GCM16;
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending, 1);
	assert_int_equal(res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].reestablishes, 1);
	assert_int_equal(f->ike[0].breaks, 0);
	assert_int_equal(f->ike[0].finishes, 0);
	assert_int_equal(f->ike[0].reauth_sa,
			 refuses ? FAKE_REAUTH_UNANSWERED : FAKE_REAUTH_ANSWERED);
}

/* The new IKE SA's IKE_AUTH is still under way (the peer answered its
 * IKE_SA_INIT) a minute later, past confirm-timeout (30 s): the next pass
 * waits for it — no break-before-make, no new request, the old SA kept —
 * and says so; once it is up (the old IKE SA still beside it), the pass
 * after confirms it, again without a request, and finishes the update: the
 * old IKE SA terminated. The old rule broke the tunnel in the second
 * pass. */
static void test_update_conn_slow_waited_for(void **state)
{
	struct fake *f = *state;
	struct log_capture logs;
	struct ts_pass_result res;
	uint32_t id0;

	update_slow_begin(f, 30, false);
	id0 = f->ike[0].ike_id;
	pass_logged(f, &res, &logs);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].breaks, 0);
	assert_int_equal(f->ike[0].reestablishes, 1);
	assert_true(f->ike[0].up);
	assert_int_equal(f->ike[0].ike_id, id0);
	assert_int_equal(f->ike[0].reauth_sa, FAKE_REAUTH_ANSWERED);
	assert_non_null(strstr(logs.text, "t01: update-conn's request for new SAs is still under "
					  "way (the peer answered its IKE_SA_INIT): waiting for "
					  "it, no new request"));
	assert_null(strstr(logs.text, "break-before-make"));

	assert_int_equal(fake_reauth_complete(f, 0), 0);
	pass_logged(f, &res, &logs);
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_non_null(strstr(logs.text, "t01: update-conn's request for new SAs came up since: "
					  "confirming it, no new request"));
	assert_int_equal(f->ike[0].breaks, 0);
	assert_int_equal(f->ike[0].reestablishes, 1);
	assert_int_equal(f->ike[0].finishes, 1);
	assert_int_equal(f->ike[0].beside, 0);
	assert_int_not_equal(f->ike[0].ike_id, id0);
	pass_in_sync(f);
	assert_int_equal(f->ike[0].reinitiates + f->ike[0].breaks, 0);
}

/* The same, the new IKE SA coming up during the second pass's wait: that
 * pass confirms it, the SAs the earlier request made kept (nothing asked
 * for again), the old ones finished. */
static void complete_in_wait(struct fake *f, const char *step, const char *tunnel)
{
	unsigned *seen = f->step_data;

	/* The first t01-only observation decides; the second is the wait's. */
	if (seen && strcmp(step, "ike_observe") == 0 && tunnel && strcmp(tunnel, "t01") == 0 &&
	    ++*seen == 2)
		assert_int_equal(fake_reauth_complete(f, 0), 0);
}

static void test_update_conn_slow_up_in_wait(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	unsigned seen = 0;
	uint32_t id0;

	update_slow_begin(f, 30, false);
	id0 = f->ike[0].ike_id;
	f->on_step = complete_in_wait;
	f->step_data = &seen;
	pass(f, NULL, &res);
	f->on_step = NULL;
	f->step_data = NULL;
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_true(seen >= 2);
	assert_int_equal(f->ike[0].breaks, 0);
	assert_int_equal(f->ike[0].reestablishes, 1);
	assert_int_equal(f->ike[0].finishes, 1);
	assert_int_not_equal(f->ike[0].ike_id, id0);
	pass_in_sync(f);
}

/* A peer that never answers the new IKE SA's IKE_SA_INIT (it refuses a
 * second IKE SA): within confirm-timeout (120 s; passes a minute apart)
 * the next pass leaves it to charon's retries — no new request (the old
 * rule asked again) —, past it break-before-make, saying why. */
static void test_update_conn_unanswered_falls_back(void **state)
{
	struct fake *f = *state;
	struct log_capture logs;
	struct ts_pass_result res;

	update_slow_begin(f, 120, true);
	pass_logged(f, &res, &logs);
	assert_int_equal(res.n_pending, 1);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].reestablishes, 1);
	assert_int_equal(f->ike[0].breaks, 0);
	assert_non_null(strstr(logs.text, "t01: update-conn's request for new SAs is not "
					  "answered yet: charon retries it, no new request"));

	pass_logged(f, &res, &logs);
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].breaks, 1);
	assert_int_equal(f->ike[0].reestablishes, 2);
	assert_non_null(strstr(logs.text,
			       "(the peer never answered its IKE_SA_INIT: a peer that "
			       "refuses overlapping SAs?): break-before-make this time"));
	pass_in_sync(f);
}

/* Answered, never completed: waited for (no request, no break) up to 10 x
 * confirm-timeout since the first attempt, then break-before-make. */
static void test_update_conn_slow_bounded(void **state)
{
	struct fake *f = *state;
	ts_usec_t since, bound;
	unsigned passes = 0;

	update_slow_begin(f, 30, false);
	assert_int_equal(ts_conn_record_failing_read(f->state_dir, "t01", &since), 0);
	assert_true(since > 0);
	bound = (ts_usec_t)TS_EARLIER_PATIENCE * f->d.agent.confirm_timeout * TS_USEC_PER_SEC;
	while (f->ike[0].breaks == 0) {
		bool late = f->real - since > bound;
		struct ts_pass_result res;

		assert_true(++passes < 10);
		pass(f, NULL, &res);
		assert_int_equal(res.n_failed, 0);
		ts_pass_result_done(&res);
		assert_int_equal(f->ike[0].breaks, late);
		assert_int_equal(f->ike[0].reestablishes, 1 + late);
	}
	assert_true(passes > 2);
	pass_in_sync(f);
}

/* The peer's error answer to IKE_AUTH: charon drops the new IKE SA, so
 * nothing is under way; past confirm-timeout, break-before-make. */
static void test_update_conn_slow_then_refused(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;

	update_slow_begin(f, 30, false);
	fake_reauth_fail(f, 0);
	pass(f, NULL, &res);
	assert_int_equal(res.n_pending + res.n_failed, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->ike[0].breaks, 1);
	pass_in_sync(f);
}

static void test_cloudflare_drift(void **state)
{
	struct fake *f = *state;
	struct ts_secret *before[3];
	struct ts_pass_result res;
	const struct ts_action *a;
	const struct ts_change *c;

	bootstrap(f);
	keys_copy(f, before);
	f->cf[1].ifaddr_drift = true;
	assert_int_equal(ts_prefix_parse("10.9.9.0/31", &f->cf[1].ifaddr), 0);
	pass(f, NULL, &res);
	a = find_action(res.plan, TS_ACTION_REPORT, "t02");
	assert_non_null(a);
	assert_int_equal(a->cause, TS_CAUSE_CF_DIFFERS);
	c = ts_changes_find(&a->changes, "interface_address");
	assert_non_null(c);
	assert_string_equal(c->old_value, "10.9.9.0/31");
	assert_string_equal(c->new_value, "10.0.1.0/31");
	ts_pass_result_done(&res);
	assert_int_equal(f->cf[1].updates, 0);

	f->d.cloudflare.manage_tunnels = true;
	pass(f, NULL, &res);
	assert_non_null(find_action(res.plan, TS_ACTION_UPDATE_TUNNEL, "t02"));
	assert_int_equal(res.n_failed + res.n_pending, 0);
	ts_pass_result_done(&res);
	assert_int_equal(f->cf[1].updates, 1);
	assert_false(f->cf[1].ifaddr_drift);
	keys_unchanged(f, before);
	pass_in_sync(f);
}

/* --- STATE_DIR/memory (status.c): the agent's memory across processes ---- */

/* STATE_DIR/name, or NULL. */
static char *top_file(struct fake *f, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", f->state_dir, name);
	return slurp(path);
}

static void put_state_file(struct fake *f, const char *name, const char *text)
{
	char path[512], tmp[520];
	FILE *fp;

	/* A new file renamed over the old one, as an editor or the agent does. */
	snprintf(path, sizeof(path), "%s/%s", f->state_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* Replaces the first "from" in the named state file. */
static void edit_state_file(struct fake *f, const char *name, const char *from, const char *to)
{
	char *text = top_file(f, name), *at, *out;

	assert_non_null(text);
	at = strstr(text, from);
	assert_non_null(at);
	out = calloc(1, strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcat(out, to);
	strcat(out, at + strlen(from));
	put_state_file(f, name, out);
	free(out);
	free(text);
}

/* The memory file's checksum line made right again after an edit. */
static void reseal_memory(struct fake *f)
{
	char *text = top_file(f, "memory"), *sum, hex[65], *out;
	uint8_t digest[TS_SHA256_DIGEST_LEN];

	assert_non_null(text);
	sum = strstr(text, "sha256=");
	assert_non_null(sum);
	ts_sha256(text, (size_t)(sum - text), digest);
	ts_sha256_hex(digest, hex);
	assert_int_equal(asprintf(&out, "%.*ssha256=%s\n", (int)(sum - text), text, hex) > 0, 1);
	put_state_file(f, "memory", out);
	free(out);
	free(text);
}

/* A status write by a fresh agent whose memory of t01 is set by hand. */
static void status_write_with(struct fake *f, uint32_t auth_failures, ts_usec_t t)
{
	struct ts_agent *a = NULL;
	struct ts_observation o;
	struct ts_pass_result res = { .planes_ok = true };

	assert_int_equal(fake_agent_open(f, NULL, &a), 0);
	a->memory[0].auth_failures = auth_failures;
	a->memory[0].last_auth_failure = t;
	a->memory[0].last_rotation = t + 1;
	ts_agent_check_mbb(a);
	assert_int_equal(ts_agent_observe(a, &o, NULL), 0);
	assert_int_equal(ts_agent_status_write(a, &o, &res), 0);
	ts_observation_done(&o);
	ts_agent_free(a);
}

/* A tunnel's last error in status.json: the latest one, cut at 191
 * bytes; null for a tunnel without one (the memory holds a string only
 * when there is an error: 40 bytes a tunnel, not 280). */
static void test_last_error_in_status(void **state)
{
	struct fake *f = *state;
	struct ts_agent *a = NULL;
	struct ts_observation o;
	struct ts_pass_result res = { .planes_ok = true };
	char long_error[301], want[240];
	char *text;

	bootstrap(f);
	memset(long_error, 'x', 300);
	long_error[300] = '\0';
	assert_int_equal(fake_agent_open(f, NULL, &a), 0);
	ts_memory_set_error(&a->memory[0], "initiate: peer unreachable");
	ts_memory_set_error(&a->memory[1], long_error);
	ts_memory_set_error(&a->memory[0], "load-conn: refused");
	ts_agent_check_mbb(a);
	assert_int_equal(ts_agent_observe(a, &o, NULL), 0);
	assert_int_equal(ts_agent_status_write(a, &o, &res), 0);
	ts_observation_done(&o);
	ts_agent_free(a);
	text = top_file(f, "status.json");
	assert_non_null(strstr(text, "\"last_error\": \"load-conn: refused\""));
	assert_null(strstr(text, "peer unreachable"));
	snprintf(want, sizeof(want), "\"last_error\": \"%.191s\"", long_error);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "\"last_error\": null"));
	free(text);
}

/* What a new process takes back for t01: auth failures, or -1 if nothing. */
static long loaded_failures(struct fake *f, ts_usec_t *ret_laf, ts_usec_t *ret_lr)
{
	struct ts_agent *a = NULL;
	long n;

	assert_int_equal(fake_agent_open(f, NULL, &a), 0);
	n = a->memory[0].auth_failures;
	assert_int_equal(a->memory[0].auth_failures_base, a->memory[0].auth_failures);
	*ret_laf = a->memory[0].last_auth_failure;
	*ret_lr = a->memory[0].last_rotation;
	ts_agent_free(a);
	return n;
}

static void remove_state_file(struct fake *f, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", f->state_dir, name);
	assert_int_equal(unlink(path), 0);
}

/* The text of status.json from one member's key to the next's is the same. */
static void assert_same_member(const char *before, const char *after, const char *key,
			       const char *next)
{
	const char *b = strstr(before, key), *e = b ? strstr(b, next) : NULL;
	const char *b2 = strstr(after, key), *e2 = b2 ? strstr(b2, next) : NULL;

	assert_true(b && e && b2 && e2 && e - b == e2 - b2);
	assert_memory_equal(b, b2, (size_t)(e - b));
	assert_non_null(strstr(b, "\"lastTransitionTime\": \"") || strstr(b, "\"applied\": \""));
}

/* The memory file is read in place of status.json only while it belongs
 * to the status.json present (the same write); else, or when it is
 * damaged, status.json is read as before: the same memory either way. */
static void test_memory_file(void **state)
{
	struct fake *f = *state;
	/* What is changed, into what, and whether the checksum is made
	 * right again (the parse must refuse it then). */
	static const struct {
		const char *from, *to;
		bool reseal;
	} damage[] = {
		{ "\nsha256=", "\nsha256=0", false },			/* the checksum */
		{ "tunnel=3\t", "tunnel=x\t", true },			/* a count */
		{ "tunnelsync-memory 1", "tunnelsync-memory 9", true }, /* another version */
		{ "\nstatus=", "\nstatus=1", true },			/* another status.json */
		{ "\tt01\n", "\tt01", false }, /* a line merged into the next */
	};
	const ts_usec_t t = 1796000000123456;
	ts_usec_t laf = 0, lr = 0;
	char *before, *after, *mem;

	bootstrap(f);
	status_write_with(f, 3, t);
	before = top_file(f, "status.json");
	assert_non_null(strstr(before, "\"make_before_break\": {"));
	assert_status_sorted(before);
	free(before);
	mem = top_file(f, "memory");
	assert_non_null(mem);
	assert_non_null(strstr(mem, "tunnelsync-memory 1\n"));
	assert_non_null(strstr(mem, "\tt01\n"));
	free(mem);
	assert_int_equal(loaded_failures(f, &laf, &lr), 3);
	assert_int_equal(laf, t);
	assert_int_equal(lr, t + 1);

	/* Read from the memory file: what it says wins while its stamp holds. */
	edit_state_file(f, "memory", "tunnel=3\t", "tunnel=7\t");
	reseal_memory(f);
	assert_int_equal(loaded_failures(f, &laf, &lr), 7);
	/* status.json replaced (edited, restored, another writer): its own
	 * figures, not the memory file's. */
	before = top_file(f, "status.json");
	put_state_file(f, "status.json", before);
	assert_int_equal(loaded_failures(f, &laf, &lr), 3);
	edit_state_file(f, "status.json", "\"auth_failures\": 3", "\"auth_failures\": 5");
	assert_int_equal(loaded_failures(f, &laf, &lr), 5);
	assert_int_equal(laf, t);

	/* Damaged memory files: status.json. */
	for (size_t k = 0; k < TS_ARRAY_SIZE(damage); k++) {
		status_write_with(f, (uint32_t)(2 + k), t);
		edit_state_file(f, "memory", damage[k].from, damage[k].to);
		if (damage[k].reseal)
			reseal_memory(f);
		assert_int_equal(loaded_failures(f, &laf, &lr), 2 + k);
	}
	/* No status.json: no memory, whatever the memory file says. */
	status_write_with(f, 3, t);
	remove_state_file(f, "status.json");
	assert_int_equal(loaded_failures(f, &laf, &lr), 0);
	assert_int_equal(lr, 0);

	/* The next write keeps each condition's lastTransitionTime and the
	 * applied revision, from the memory file as from status.json. */
	status_write_with(f, 0, t);
	free(before);
	before = top_file(f, "status.json");
	for (int via_status = 0; via_status < 2; via_status++) {
		if (via_status)
			remove_state_file(f, "memory");
		status_write_with(f, 0, t);
		after = top_file(f, "status.json");
		assert_same_member(before, after, "\"conditions\"", "\"make_before_break\"");
		assert_same_member(before, after, "\"revision\"", "\"store_problem\"");
		free(after);
	}
	free(before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resumed_prepared_unapplied_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_from_both_maps_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_without_metadata_no_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_second_precision_no_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regenerated_elsewhere_detected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_baseline_adopted_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_time_is_baseline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_without_time_lists_once, setup,
						teardown),
		cmocka_unit_test(test_regenerated_right_after_write),
		cmocka_unit_test(test_precisions_no_loop),
		cmocka_unit_test_setup_teardown(test_corrupt_journal_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_error_in_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_record_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_deferred_member_persists, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotate_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_file_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_run_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_rounds_sas_only, setup, teardown),
		cmocka_unit_test(test_wait_pause),
		cmocka_unit_test_setup_teardown(test_update_conn_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_without_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_refused_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_waits_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_with_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_slow_waited_for, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_slow_up_in_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_unanswered_falls_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_slow_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_conn_slow_then_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_removed_tunnel_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cloudflare_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reauth_fallback_only_when_resumed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slow_reauth_waited_for, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reauth_came_up_between, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reauth_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reauth_then_refused, setup, teardown),
	};

	ts_log_set_level(TS_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
