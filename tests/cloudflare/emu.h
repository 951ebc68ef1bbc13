/* Test harness: starts contrib/cf-emulator/cf_emulator.py (TLS with a CA
 * generated for the test, or plain http on loopback) and talks to its
 * /__admin interface: faults, request log, key fingerprints, seeding. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define EMU_ACCOUNT  "023e105f4ecef8ad9ca31a8372d0c353"
#define EMU_TUNNEL1  "c4a7362d577a6c3019a474fd6f485821"
#define EMU_TUNNEL2  "d4a7362d577a6c3019a474fd6f485822"
#define EMU_TOKEN    "tstoken-Zx81Qm0pL4vR7sK2wN9bY6"
#define EMU_API_KEY  "tsapikey-Hq3Jd8Fs1Lk5Mz0Pw7Xc4V"
#define EMU_EMAIL    "ops@example.com"
#define EMU_SEED_PSK "seedpsk-Ab12Cd34Ef56Gh78"

struct emu {
	pid_t pid;
	int port;
	bool tls;
	char dir[256];	    /* shared temp dir: CA, credentials, seed */
	char base_url[128]; /* …/client/v4 */
	char admin_url[128];
	char stderr_path[300];
};

/* Creates a temp dir with the test CA (make-test-ca.sh), credential files
 * and a seed; returns 0 or -1. */
int emu_prepare_dir(char *dir, size_t size);
void emu_remove_dir(const char *dir);
/* Starts an emulator over dir's files; waits for its port file. */
int emu_start(struct emu *e, const char *dir, bool tls, const char *name);
void emu_stop(struct emu *e);

/* Admin calls; the returned body is malloc'd (NULL on failure). */
char *emu_admin(struct emu *e, const char *method, const char *path, const char *body);
/* Clears faults and the request log and reseeds the two tunnels. */
void emu_reset(struct emu *e);
void emu_fault(struct emu *e, const char *rules_json);
void emu_clear_log(struct emu *e);
/* Requests in the log whose path ends with suffix (and method matches
 * unless NULL); with ret_statuses, their statuses in order (max n). */
int emu_count(struct emu *e, const char *method, const char *suffix, int *ret_statuses, int n);
int emu_count_query(struct emu *e, const char *query);
/* User-Agent of the last logged request ("" when none). */
void emu_last_user_agent(struct emu *e, char *out, size_t size);
/* The emulator's fingerprint of a tunnel's key ("" when none). */
void emu_fingerprint(struct emu *e, const char *id, char out[32]);
