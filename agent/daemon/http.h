/* The daemon's HTTP endpoints (/metrics, /healthz, /readyz) on
 * libmicrohttpd, in its own thread. The handlers never touch the agent:
 * they answer from a board the event loop publishes to (under a mutex, so
 * a request is answered in microseconds whatever a pass is doing). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/timeutil.h"

/* Connections served at once; more are refused (accepted and closed) by
 * libmicrohttpd until one ends. */
#define TS_HTTP_CONNECTION_LIMIT 256
/* Connections with no request under way kept at most: a newcomer closes
 * the longest idle one beyond this, so that silent or trickling clients
 * never fill the cap and a probe always finds a slot (http.c). */
#define TS_HTTP_IDLE_MAX 128
/* Idle time after which a connection is closed (a silent or trickling
 * client costs at most this much of one slot). */
#define TS_HTTP_CONNECTION_TIMEOUT 5 /* seconds */
/* /healthz fails when the loop has not beaten for this long. */
#define TS_HTTP_HEARTBEAT_MAX (30 * TS_USEC_PER_SEC)

struct ts_http;

/* Starts serving on "addr:port" ("[v6]:port", "localhost:port"). */
int ts_http_start(const char *listen, struct ts_http **ret_http);
void ts_http_stop(struct ts_http *h);

/* The event loop's publications. metrics is taken (freed by the board);
 * reason says why not ready ("" when ready). */
void ts_http_publish(struct ts_http *h, char *metrics, bool ready, const char *reason);
/* The loop is alive at monotonic time now. */
void ts_http_heartbeat(struct ts_http *h, ts_usec_t now);
