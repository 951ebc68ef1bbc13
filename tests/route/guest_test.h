/* What the owned-interface suites run in a guest (test-iface-uml under
 * user-mode Linux, test-xfrmi-qemu under qemu) share: shell commands, `ip`
 * output checks and the run in a network namespace of their own. */
#ifndef TS_TESTS_ROUTE_GUEST_TEST_H
#define TS_TESTS_ROUTE_GUEST_TEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>

#include <cmocka.h>

#include "route/route.h"

/* The route socket of the namespace, open while the tests run. */
extern struct ts_route_sock *guest_sock;

/* Runs CMD with the shell; fails the test when it does not exit 0. */
void guest_sh(const char *cmd);

/* CMD's whole output (up to 64 KiB; the caller frees it). */
char *guest_out_text(const char *cmd);

/* True when a line of CMD's output contains WHAT. */
bool guest_out_has(const char *cmd, const char *what);

/* ts_iface_ensure(guest_sock, sp, ret_changes), after checking what
 * `plan` reads and decides first (ts_iface_read, ts_iface_decide): the
 * same answer (-EEXIST, -EINVAL), the same changes (a new interface: its
 * creation), and links, addresses and disable_policy byte for byte the
 * same after the reading. */
int guest_ensure(const struct ts_iface_spec *sp, unsigned *ret_changes);

/* Exit 77 with SKIP_WHY unless the environment has IN_GUEST_ENV; then, in
 * a new network namespace with lo up and guest_sock open, runs TESTS. */
int guest_run(const char *name, const struct CMUnitTest *tests, size_t n, const char *in_guest_env,
	      const char *skip_why);

#endif
