/* Cancellation of a running pass: one process-wide flag that the daemon
 * raises on SIGTERM and that long operations read between safe steps
 * (apply between actions, the API client before each attempt, during a
 * transfer and while it waits out a backoff). Raised from any thread;
 * never cleared except by the daemon before a new pass. */
#pragma once

#include <stdbool.h>

#include "core/timeutil.h"

void ts_cancel_request(void);
bool ts_cancel_requested(void);
void ts_cancel_reset(void);

/* Sleeps usec, waking early (returning -ECANCELED) once cancellation is
 * requested; 0 after the full sleep. */
int ts_cancel_sleep(ts_usec_t usec);
