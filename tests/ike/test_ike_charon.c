/* Integration tests of the IKE plane against two real charons (strongSwan
 * 5.9.8) in two network namespaces joined by veth: side b plays Cloudflare's
 * edge (a responder configured here with swanctl, not by the module under
 * test), side a is the gateway's charon, driven only through agent/ike.
 *
 * On this machine's kernel ESP SAs cannot be installed, so the CHILD SA
 * fails and only the IKE SA is asserted; charon keeps the IKE SA when its
 * CHILD SA fails. The CHILD SA is covered by tests/kernel/ike-child-sa.sh
 * under user-mode Linux. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "charon_harness.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "ike/ike.h"

#define ACCOUNT	  "0123456789abcdef0123456789abcdef"
#define TUNNEL_ID "fedcba9876543210fedcba9876543210"
#define CONN	  "ts-gw1"
#define KEY1	  "FirstKey0123456789abcdefghijklmn"
#define KEY2	  "SecondKey123456789abcdefghijklmn"
#define KEY_BAD	  "WrongKey0123456789abcdefghijklmn"
#define WAIT_MS	  20000

static struct ts_harness harness;
static struct ts_tunnel tunnel;
static char vici_a[256];
static struct ts_vici_client *client;
static struct ts_vici_events *events;
static struct ts_ike_monitor *monitor;
/* kernel-libipsec: CHILD SAs in userspace, since this kernel has no ESP. */
static bool userspace_esp = true;
/* kernel-netlink on a kernel with ESP (the user-mode Linux guest): CHILD SAs
 * up and their SPIs in `ip xfrm state`. */
static bool kernel_esp;

/* What the event callback saw since the last reset. */
static struct {
	unsigned kinds[_TS_IKE_EVENT_MAX];
	uint32_t last_up_id;
} seen;

static void on_event(void *userdata, const char *name, const struct ts_vici_node *body)
{
	struct ts_ike_event ev;

	if (ts_ike_event_parse(name, body, &ev) < 0 || !ts_streq(ev.conn, CONN))
		return;
	ts_ike_monitor_feed(monitor, &ev, ts_now_realtime());
	seen.kinds[ev.kind]++;
	if (ev.kind == TS_IKE_EVENT_IKE_UP)
		seen.last_up_id = ev.ike_unique_id;
}

/* Pumps events until one of the kind arrived (counted since the last
 * reset of `seen`), or the timeout. */
static bool wait_event(enum ts_ike_event_kind kind, int timeout_ms)
{
	ts_usec_t end = ts_now_monotonic() + (ts_usec_t)timeout_ms * 1000;

	while (seen.kinds[kind] == 0) {
		ts_usec_t left = end - ts_now_monotonic();
		int r;

		if (left <= 0)
			return false;
		r = ts_vici_events_wait(events, (int)(left / 1000) + 1, on_event, NULL);
		if (r < 0)
			return false;
	}
	return true;
}

static void seen_reset(void)
{
	memset(&seen, 0, sizeof(seen));
}

static struct ts_secret *secret(const char *s)
{
	struct ts_secret *k;

	assert_int_equal(ts_secret_from_bytes(s, strlen(s), &k), 0);
	return k;
}

/* The edge: responder only, identity = its address, the gateway's FQDN
 * identity as peer, Cloudflare's proposal set. */
static void edge_load(const char *key)
{
	char conf[2048];

	snprintf(
		conf, sizeof(conf),
		"connections {\n"
		" edge {\n"
		"  version = 2\n"
		"  local_addrs = " TS_HARNESS_ADDR_B "\n"
		"  proposals = aes256gcm16-aes128gcm16-prfsha512-prfsha384-prfsha256-ecp384-"
		"modp2048-modp1536, aes256-sha256-prfsha256-ecp384-modp2048\n"
		"  local { auth = psk\n id = " TS_HARNESS_ADDR_B " }\n"
		"  remote { auth = psk\n id = " TUNNEL_ID "." ACCOUNT ".ipsec.cloudflare.com }\n"
		"  children { edge {\n"
		"   local_ts = 0.0.0.0/0\n remote_ts = 0.0.0.0/0\n"
		"   esp_proposals = aes256gcm16-aes128gcm16-ecp384-noesn, aes256-sha256-ecp384-noesn\n"
		"   replay_window = 0\n"
		"  } }\n"
		" }\n"
		"}\n"
		"secrets {\n"
		" ike-gw { id-edge = " TS_HARNESS_ADDR_B "\n"
		"  id-gw = " TUNNEL_ID "." ACCOUNT ".ipsec.cloudflare.com\n"
		"  secret = \"%s\" }\n"
		"}\n",
		key);
	assert_int_equal(ts_harness_swanctl_load(&harness, 1, conf), 0);
}

static void observe(struct ts_ike_observed *o)
{
	assert_int_equal(ts_ike_observe(client, &tunnel, 1, ACCOUNT, monitor, o), 0);
}

/* The SAs alone (what the waits read): the same SA as a full observation
 * (o, of `tunnel`), nothing of the connection or the key; for one tunnel
 * (asked by name) and among five (one dump of every SA). */
static void observe_sas_same(const struct ts_ike_observed *o)
{
	struct ts_tunnel many[5];
	struct ts_ike_observed so[5];

	for (size_t n = 1; n <= 5; n += 4) {
		for (size_t i = 0; i < n; i++) {
			many[i] = tunnel; /* shallow: read only */
			if (i > 0)
				snprintf(many[i].name, sizeof(many[i].name), "gw9%zu", i);
		}
		assert_int_equal(ts_ike_observe_sas(client, many, n, so), 0);
		assert_int_equal(so[0].ike_state, o->ike_state);
		assert_int_equal(so[0].ike_unique_id, o->ike_unique_id);
		assert_int_equal(so[0].n_children, o->n_children);
		assert_false(so[0].conn_loaded);
		assert_false(so[0].key_loaded);
		for (size_t i = 1; i < n; i++)
			assert_int_equal(so[i].ike_state, TS_IKE_SA_NONE);
		for (size_t i = 0; i < n; i++)
			ts_ike_observed_done(&so[i]);
	}
}

static int setup(void **state)
{
	assert_int_equal(ts_harness_up(&harness, "tsike"), 0);
	harness.userspace_esp = userspace_esp;
	assert_int_equal(ts_harness_start(&harness, 0), 0);
	assert_int_equal(ts_harness_start(&harness, 1), 0);
	ts_harness_vici_path(&harness, 0, vici_a, sizeof(vici_a));
	edge_load(KEY1);

	memset(&tunnel, 0, sizeof(tunnel));
	strcpy(tunnel.name, "gw1");
	strcpy(tunnel.id, TUNNEL_ID);
	tunnel.enabled = true;
	assert_int_equal(ts_ip_parse(TS_HARNESS_ADDR_A, &tunnel.customer_endpoint), 0);
	assert_int_equal(ts_ip_parse(TS_HARNESS_ADDR_B, &tunnel.cloudflare_endpoint), 0);
	tunnel.ike.local_identity = TS_IDENTITY_FQDN;
	tunnel.ike.ike_sa =
		(struct ts_proposal){ TS_ENCR_AES256_GCM16, 0, TS_PRF_HMAC_SHA2_256, TS_DH_ECP384 };
	tunnel.ike.child_sa = (struct ts_proposal){ TS_ENCR_AES256_GCM16, 0, 0, TS_DH_ECP384 };
	tunnel.ike.ike_sa_lifetime = 86400;
	tunnel.ike.child_sa_lifetime = 28800;
	tunnel.ike.lifetime_spread = 300;
	tunnel.ike.dpd_delay = 30;
	tunnel.routing.mode = TS_MODE_ROUTE;

	assert_int_equal(ts_vici_client_new(vici_a, 5000, &client), 0);
	assert_int_equal(ts_ike_monitor_new(&monitor), 0);
	assert_int_equal(ts_vici_events_new(vici_a, ts_vici_default_events,
					    TS_ARRAY_SIZE(ts_vici_default_events), 5000, &events),
			 0);
	assert_true(ts_vici_events_connected(events));
	assert_true(ts_vici_events_fd(events) >= 0);
	return 0;
}

static int teardown(void **state)
{
	ts_vici_events_free(events);
	ts_vici_client_free(client);
	ts_ike_monitor_free(monitor);
	ts_harness_down(&harness);
	return 0;
}

static void test_version(void **state)
{
	struct ts_vici_version v;

	assert_int_equal(ts_vici_version(client, &v), 0);
	assert_string_equal(v.daemon, "charon");
	assert_string_equal(v.version, "5.9.8");
	/* Unknown commands are reported as such and leave the socket usable. */
	assert_int_equal(ts_vici_call(client, "no-such-command", NULL, NULL, NULL, NULL, 0, NULL),
			 -EOPNOTSUPP);
	assert_int_equal(ts_vici_version(client, &v), 0);
	assert_false(ts_vici_client_take_reconnected(client));
}

/* Load key and connection; loading alone does not initiate
 * (start_action=none); an initiate brings the IKE SA up, seen both in the
 * event stream and in list-sas. */
static void test_load_and_establish(void **state)
{
	_cleanup_secret_ struct ts_secret *k1 = secret(KEY1);
	struct ts_ike_observed o;
	char err[128];

	observe(&o);
	assert_false(o.conn_loaded);
	assert_false(o.key_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_NONE);
	ts_ike_observed_done(&o);

	seen_reset();
	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, k1, err, sizeof(err)), 0);
	observe(&o);
	assert_true(o.conn_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_NONE);
	ts_ike_observed_done(&o);
	/* The CHILD SA may fail here (no ESP in this kernel): the IKE SA is
	 * what counts, confirmed through the events below. */
	(void)ts_vici_initiate(client, CONN, CONN, 10000, err, sizeof(err));
	assert_true(wait_event(TS_IKE_EVENT_IKE_UP, WAIT_MS));
	assert_int_equal(seen.kinds[TS_IKE_EVENT_AUTH_FAILED], 0);

	observe(&o);
	assert_true(o.conn_loaded);
	if (!o.conn_equal)
		fail_msg("loaded connection differs from the rendering: %s", o.conn_diff);
	assert_string_equal(o.conn_diff, "");
	assert_true(o.key_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	assert_int_equal(o.ike_unique_id, seen.last_up_id);
	assert_int_equal(o.failures.auth_failures, 0);
	observe_sas_same(&o);
	ts_ike_observed_done(&o);

	if (userspace_esp || kernel_esp) {
		bool installed = false;

		assert_true(wait_event(TS_IKE_EVENT_CHILD_UP, WAIT_MS));
		observe(&o);
		for (size_t i = 0; i < o.n_children; i++) {
			const struct ts_ike_child_sa *c = &o.children[i];

			if (c->state != TS_CHILD_SA_INSTALLED)
				continue;
			installed = true;
			assert_string_equal(c->name, CONN);
			assert_int_not_equal(c->spi_in, 0);
			assert_int_not_equal(c->spi_out, 0);
			assert_int_not_equal(c->spi_in, c->spi_out);
			assert_int_not_equal(c->reqid, 0);
			if (kernel_esp) {
				char cmd[128];

				/* The kernel holds the pair charon reports. */
				snprintf(cmd, sizeof(cmd),
					 "ip xfrm state | grep -q \"proto esp spi 0x%08x \"",
					 c->spi_in);
				assert_int_equal(ts_harness_exec(&harness, 0, cmd), 0);
				snprintf(cmd, sizeof(cmd),
					 "ip xfrm state | grep -q \"proto esp spi 0x%08x \"",
					 c->spi_out);
				assert_int_equal(ts_harness_exec(&harness, 0, cmd), 0);
			}
		}
		assert_true(installed);
		ts_ike_observed_done(&o);
	}

	/* Drift: a declared change the loaded connection does not have. */
	tunnel.ike.child_sa_lifetime = 3600;
	observe(&o);
	assert_true(o.conn_loaded);
	assert_false(o.conn_equal);
	assert_string_equal(o.conn_diff, "child.rekey_time");
	ts_ike_observed_done(&o);
	tunnel.ike.child_sa_lifetime = 28800;
}

/* A key the edge does not have: the failure arrives through VICI events
 * (log + ike-updown while CONNECTING) and shows in the observation. */
static bool names_has(const char *list, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++, list += strlen(list) + 1)
		if (ts_streq(list, name))
			return true;
	return false;
}

/* A whole observation (more than a few tunnels) keeps every name of
 * charon's lists, a foreign connection's too; one asked by name keeps
 * none (ike_names then asks charon itself). */
static void test_observe_names(void **state)
{
	struct ts_tunnel many[5];
	struct ts_ike_observed so[5], one;
	struct ts_ike_names names;
	char err[128];

	struct ts_vici_node *msg, *conn, *sec;

	/* Loaded over VICI: swanctl would unload what its file lacks. */
	assert_int_equal(ts_vici_msg_new(&msg), 0);
	assert_int_equal(ts_vici_add_section(msg, "foreign", &conn), 0);
	assert_int_equal(ts_vici_add_str(conn, "version", "2"), 0);
	assert_int_equal(ts_vici_add_section(conn, "local", &sec), 0);
	assert_int_equal(ts_vici_add_str(sec, "auth", "psk"), 0);
	assert_int_equal(ts_vici_add_section(conn, "remote", &sec), 0);
	assert_int_equal(ts_vici_add_str(sec, "auth", "psk"), 0);
	assert_int_equal(ts_vici_load_conn(client, msg, err, sizeof(err)), 0);
	ts_vici_node_free(msg);
	for (size_t i = 0; i < 5; i++) {
		many[i] = tunnel; /* shallow: read only */
		if (i > 0)
			snprintf(many[i].name, sizeof(many[i].name), "gw9%zu", i);
	}
	assert_int_equal(ts_ike_observe_names(client, many, 5, ACCOUNT, monitor, so, &names), 0);
	assert_true(names.valid);
	assert_true(so[0].conn_loaded);
	assert_true(so[0].key_loaded);
	assert_false(so[1].conn_loaded);
	assert_true(names_has(names.conns, names.n_conns, CONN));
	assert_true(names_has(names.conns, names.n_conns, "foreign"));
	assert_false(names_has(names.conns, names.n_conns, "ts-gw91"));
	assert_int_equal(names.n_keys, 1);
	assert_true(names_has(names.keys, names.n_keys, CONN));
	ts_ike_names_done(&names);
	for (size_t i = 0; i < 5; i++)
		ts_ike_observed_done(&so[i]);
	assert_int_equal(ts_ike_observe_names(client, &tunnel, 1, ACCOUNT, monitor, &one, &names),
			 0);
	assert_false(names.valid);
	assert_null(names.conns);
	assert_true(one.conn_loaded);
	ts_ike_observed_done(&one);
	assert_int_equal(ts_vici_unload_conn(client, "foreign", err, sizeof(err)), 0);
}

static void test_key_mismatch(void **state)
{
	_cleanup_secret_ struct ts_secret *bad = secret(KEY_BAD);
	_cleanup_secret_ struct ts_secret *k1 = secret(KEY1);
	struct ts_ike_observed o;
	char err[128];

	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, bad, err, sizeof(err)), 0);
	assert_int_equal(ts_vici_terminate(client, CONN, 10000, err, sizeof(err)), 0);
	seen_reset();
	/* The CHILD SA cannot come up here, so initiate reports failure
	 * either way: the events tell what happened. */
	(void)ts_vici_initiate(client, CONN, CONN, 10000, err, sizeof(err));
	assert_true(wait_event(TS_IKE_EVENT_AUTH_FAILED, WAIT_MS));
	assert_true(wait_event(TS_IKE_EVENT_CONNECT_FAILED, WAIT_MS));
	assert_int_equal(seen.kinds[TS_IKE_EVENT_IKE_UP], 0);

	observe(&o);
	assert_true(o.failures.auth_failures >= 1);
	assert_true(o.failures.last_auth_failure > 0);
	assert_true(o.failures.connect_failures >= 1);
	assert_int_not_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	assert_true(o.key_loaded);
	ts_ike_observed_done(&o);

	/* Back to the key the edge has: up again. */
	ts_ike_monitor_reset(monitor, CONN);
	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, k1, err, sizeof(err)), 0);
	seen_reset();
	(void)ts_vici_initiate(client, CONN, CONN, 10000, err, sizeof(err));
	assert_true(wait_event(TS_IKE_EVENT_IKE_UP, WAIT_MS));
	observe(&o);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	assert_int_equal(o.failures.auth_failures, 0);
	ts_ike_observed_done(&o);
}

/* Rotation: the key changes on both sides while the IKE SA stays up (a
 * plain load does not touch SAs); a reauthentication makes a new IKE SA
 * that can only have authenticated with the new key, since the edge no
 * longer has the old one. */
static void test_rotate_and_reauth(void **state)
{
	_cleanup_secret_ struct ts_secret *k2 = secret(KEY2);
	struct ts_ike_observed o;
	uint32_t old_id;
	char err[128];

	observe(&o);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	old_id = o.ike_unique_id;
	ts_ike_observed_done(&o);

	edge_load(KEY2);
	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, k2, err, sizeof(err)), 0);
	observe(&o);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	assert_int_equal(o.ike_unique_id, old_id);
	ts_ike_observed_done(&o);

	seen_reset();
	assert_int_equal(ts_ike_reauth(client, &tunnel, 10000, err, sizeof(err)), 0);
	assert_true(wait_event(TS_IKE_EVENT_IKE_UP, WAIT_MS));
	assert_true(seen.last_up_id > old_id);
	assert_int_equal(seen.kinds[TS_IKE_EVENT_AUTH_FAILED], 0);
	/* The old SA may take a moment to go. */
	for (int i = 0; i < 50; i++) {
		observe(&o);
		if (o.n_ike_sas == 1)
			break;
		ts_ike_observed_done(&o);
		usleep(100000);
	}
	assert_int_equal(o.n_ike_sas, 1);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	assert_int_equal(o.ike_unique_id, seen.last_up_id);
	assert_int_equal(o.failures.auth_failures, 0);
	ts_ike_observed_done(&o);
}

struct sa_seen {
	uint32_t ike_id, child_id;
	char keysize[8], dpd[16];
};

static int on_sa_seen(void *userdata, const struct ts_vici_node *event)
{
	struct sa_seen *s = userdata;
	const struct ts_vici_node *sa = ts_vici_get_section(event, CONN);
	const struct ts_vici_node *chs = ts_vici_get_section(sa, "child-sas");

	if (!sa || ts_streq(ts_vici_get_str(sa, "state"), "DELETING"))
		return 0;
	(void)ts_vici_get_u32(sa, "uniqueid", &s->ike_id);
	for (size_t i = 0; chs && i < chs->n_children; i++) {
		const struct ts_vici_node *c = chs->children[i];

		if (!ts_streq(ts_vici_get_str(c, "state"), "INSTALLED"))
			continue;
		(void)ts_vici_get_u32(c, "uniqueid", &s->child_id);
		snprintf(s->keysize, sizeof(s->keysize), "%s",
			 ts_vici_get_str(c, "encr-keysize") ?: "");
	}
	return 0;
}

static int on_conn_seen(void *userdata, const struct ts_vici_node *event)
{
	struct sa_seen *s = userdata;
	const struct ts_vici_node *c = ts_vici_get_section(event, CONN);

	if (c)
		snprintf(s->dpd, sizeof(s->dpd), "%s", ts_vici_get_str(c, "dpd_delay") ?: "");
	return 0;
}

/* The SAs of CONN after the old ones had time to go: exactly one IKE SA. */
static struct sa_seen sas_settled(void)
{
	struct sa_seen s;
	struct ts_ike_observed o;

	for (int i = 0; i < 50; i++) {
		observe(&o);
		if (o.n_ike_sas == 1)
			break;
		ts_ike_observed_done(&o);
		usleep(100000);
	}
	assert_int_equal(o.n_ike_sas, 1);
	ts_ike_observed_done(&o);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ts_vici_list_sas(client, CONN, on_sa_seen, &s), 0);
	assert_int_equal(ts_vici_list_conns(client, CONN, on_conn_seen, &s), 0);
	return s;
}

/* A declared change applied to a running tunnel (update-conn): a CHILD
 * config change gives a new CHILD SA in the same IKE SA (charon reuses an
 * IKE SA whose peer config is unchanged); a peer config change (DPD) a new
 * IKE SA; the old SAs go after the new ones are up; the key is untouched
 * (the edge would refuse any other). */
static void test_update_conn(void **state)
{
	_cleanup_secret_ struct ts_secret *k2 = secret(KEY2);
	struct sa_seen before, after;
	struct ts_changes ch = { 0 };
	bool key, again;
	char err[128];

	before = sas_settled();
	assert_int_not_equal(before.ike_id, 0);
	/* Nothing re-established for an unknown-only diff (no record). */
	assert_int_equal(ts_changes_add(&ch, "unlisted-fields", NULL, "x"), 0);
	ts_ike_update_needs(&ch, &key, &again);
	assert_int_equal(ts_ike_update(client, &tunnel, ACCOUNT, NULL, again, false, 10000, err,
				       sizeof(err)),
			 0);
	after = sas_settled();
	assert_int_equal(after.ike_id, before.ike_id);
	assert_int_equal(after.child_id, before.child_id);
	ts_changes_done(&ch);

	if (!userspace_esp && !kernel_esp) {
		/* No CHILD SA can come up here: the update says so and keeps
		 * the running IKE SA. */
		tunnel.ike.child_sa.encr = TS_ENCR_AES128_GCM16;
		assert_true(ts_ike_update(client, &tunnel, ACCOUNT, NULL, true, false, 10000, err,
					  sizeof(err)) < 0);
		tunnel.ike.child_sa.encr = TS_ENCR_AES256_GCM16;
		assert_int_equal(sas_settled().ike_id, before.ike_id);
		return;
	}
	assert_string_equal(before.keysize, "256");
	tunnel.ike.child_sa.encr = TS_ENCR_AES128_GCM16;
	assert_int_equal(
		ts_ike_update(client, &tunnel, ACCOUNT, NULL, true, false, 10000, err, sizeof(err)),
		0);
	after = sas_settled();
	assert_int_equal(after.ike_id, before.ike_id);
	assert_true(after.child_id > before.child_id);
	assert_string_equal(after.keysize, "128");

	before = after;
	assert_string_equal(before.dpd, "30");
	tunnel.ike.dpd_delay = 20;
	seen_reset();
	/* With the key again (as for an identity change): the same key. */
	assert_int_equal(
		ts_ike_update(client, &tunnel, ACCOUNT, k2, true, false, 10000, err, sizeof(err)),
		0);
	after = sas_settled();
	assert_true(after.ike_id > before.ike_id);
	assert_string_equal(after.dpd, "20");
	assert_string_equal(after.keysize, "128");
	assert_int_equal(seen.kinds[TS_IKE_EVENT_AUTH_FAILED], 0);
	/* Break before make (a peer refusing overlapping IKE SAs): the old
	 * IKE SA goes first, a new one from the loaded config follows. */
	before = after;
	tunnel.ike.dpd_delay = 30;
	tunnel.ike.child_sa.encr = TS_ENCR_AES256_GCM16;
	assert_int_equal(
		ts_ike_update(client, &tunnel, ACCOUNT, NULL, true, true, 10000, err, sizeof(err)),
		0);
	after = sas_settled();
	assert_true(after.ike_id > before.ike_id);
	assert_string_equal(after.keysize, "256");
	assert_string_equal(after.dpd, "30");
}

/* charon restarts: both sockets notice, reconnect, and say so; charon has
 * forgotten connection and key, which the caller reloads. */
static void test_charon_restart(void **state)
{
	_cleanup_secret_ struct ts_secret *k2 = secret(KEY2);
	struct ts_vici_version v;
	struct ts_ike_observed o;
	char err[128];
	int r;

	assert_int_equal(ts_harness_stop(&harness, 0), 0);
	/* The event socket reports the loss (after any last events); the fd
	 * is then -1. */
	for (int i = 0; i < 100 && (r = ts_vici_events_wait(events, 5000, on_event, NULL)) >= 0;
	     i++)
		;
	assert_int_equal(r, -ECONNRESET);
	assert_false(ts_vici_events_connected(events));
	assert_int_equal(ts_vici_events_fd(events), -1);
	/* While charon is down, calls fail fast. */
	r = ts_vici_version(client, &v);
	assert_true(r == -ENOENT || r == -ECONNREFUSED);
	r = ts_vici_events_connect(events);
	assert_true(r == -ENOENT || r == -ECONNREFUSED);

	assert_int_equal(ts_harness_start(&harness, 0), 0);
	assert_int_equal(ts_vici_events_connect(events), 1);
	assert_int_equal(ts_vici_version(client, &v), 0);
	assert_true(ts_vici_client_take_reconnected(client));
	assert_false(ts_vici_client_take_reconnected(client));

	observe(&o);
	assert_false(o.conn_loaded);
	assert_false(o.key_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_NONE);
	ts_ike_observed_done(&o);

	seen_reset();
	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, k2, err, sizeof(err)), 0);
	(void)ts_vici_initiate(client, CONN, CONN, 10000, err, sizeof(err));
	assert_true(wait_event(TS_IKE_EVENT_IKE_UP, WAIT_MS));
	observe(&o);
	assert_true(o.conn_loaded);
	assert_true(o.conn_equal);
	assert_true(o.key_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_ESTABLISHED);
	ts_ike_observed_done(&o);
}

/* A charon restart between two calls, with no event socket to notice it:
 * the command client finds its socket stale and reconnects by itself. */
static void test_restart_between_calls(void **state)
{
	struct ts_vici_version v;

	assert_int_equal(ts_vici_version(client, &v), 0);
	assert_int_equal(ts_harness_stop(&harness, 0), 0);
	assert_int_equal(ts_harness_start(&harness, 0), 0);
	assert_int_equal(ts_vici_version(client, &v), 0);
	assert_true(ts_vici_client_take_reconnected(client));
	/* Drain the event socket's loss and reconnect it for what follows. */
	for (int i = 0; i < 100 && ts_vici_events_wait(events, 2000, on_event, NULL) >= 0; i++)
		;
	assert_int_equal(ts_vici_events_connect(events), 1);
}

static void test_unload(void **state)
{
	_cleanup_secret_ struct ts_secret *k2 = secret(KEY2);
	struct ts_ike_observed o;
	char err[128];

	seen_reset();
	assert_int_equal(ts_ike_load(client, &tunnel, ACCOUNT, k2, err, sizeof(err)), 0);
	(void)ts_vici_initiate(client, CONN, CONN, 10000, err, sizeof(err));
	assert_true(wait_event(TS_IKE_EVENT_IKE_UP, WAIT_MS));
	assert_int_equal(ts_ike_unload(client, &tunnel, 10000), 0);
	observe(&o);
	assert_false(o.conn_loaded);
	assert_false(o.key_loaded);
	assert_int_equal(o.ike_state, TS_IKE_SA_NONE);
	ts_ike_observed_done(&o);
	/* Unloading what is not there is fine. */
	assert_int_equal(ts_ike_unload(client, &tunnel, 10000), 0);
	/* charon's refusals carry its reason. */
	assert_int_equal(ts_vici_unload_conn(client, "ts-none", err, sizeof(err)), -EIO);
	assert_true(strlen(err) > 0);
}

/* No argument: kernel-libipsec (CHILD SAs work, in userspace). "xfrm":
 * kernel-netlink, as in production; on a kernel without ESP only the IKE
 * SA can come up then. "kernel-esp": kernel-netlink on a kernel with ESP
 * (tests/kernel/ike-child-sa.sh in the user-mode Linux guest): CHILD SA
 * asserted, its SPIs checked in `ip xfrm state`. */
int main(int argc, char **argv)
{
	const char *why;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_load_and_establish),
		cmocka_unit_test(test_observe_names),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_rotate_and_reauth),
		cmocka_unit_test(test_update_conn),
		cmocka_unit_test(test_charon_restart),
		cmocka_unit_test(test_restart_between_calls),
		cmocka_unit_test(test_unload),
	};

	if (argc > 1 && strcmp(argv[1], "xfrm") == 0)
		userspace_esp = false;
	if (argc > 1 && strcmp(argv[1], "kernel-esp") == 0) {
		userspace_esp = false;
		kernel_esp = true;
	}
	if (!ts_harness_available(&why)) {
		printf("SKIP: charon integration tests: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
