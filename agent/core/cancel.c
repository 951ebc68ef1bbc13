/* Owns the process-wide cancellation flag. */
#include "core/cancel.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

static atomic_bool cancelled;

void ts_cancel_request(void)
{
	atomic_store(&cancelled, true);
}

bool ts_cancel_requested(void)
{
	return atomic_load(&cancelled);
}

void ts_cancel_reset(void)
{
	atomic_store(&cancelled, false);
}

int ts_cancel_sleep(ts_usec_t usec)
{
	/* Slices of 50 ms: a stop is noticed within that, without a signal. */
	while (usec > 0) {
		ts_usec_t slice = usec < 50000 ? usec : 50000;
		struct timespec ts = { (time_t)(slice / TS_USEC_PER_SEC),
				       (long)(slice % TS_USEC_PER_SEC) * 1000 };

		if (ts_cancel_requested())
			return -ECANCELED;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		usec -= slice;
	}
	return ts_cancel_requested() ? -ECANCELED : 0;
}
