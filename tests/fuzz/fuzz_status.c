/* Fuzz target for the readers of STATE_DIR/status.json (agent/reconcile/
 * status.c): the file as `tunnelsync status` prints it in text mode, and
 * as the agent reads its per-tunnel memory back at start (authentication
 * failure counts, last failure and rotation times). The input is the
 * file, written to a private state directory. The agent is a bare struct
 * with two remembered tunnels: these readers touch nothing else of it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "reconcile/agent.h"
#include "reconcile/agent_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/ts-fuzz-status-XXXXXX";
static char path[64];
static FILE *devnull;

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
	if (devnull)
		fclose(devnull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_agent_tunnel_memory mem[2] = { { .name = "t1" }, { .name = "t2" } };
	struct ts_agent a = { .state_dir = dir, .memory = mem, .n_memory = 2 };
	char *text = NULL;
	int fd, r;

	if (!path[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/status.json", dir);
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
		atexit(cleanup);
		ts_log_set_level(TS_LOG_ERROR);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);

	r = ts_agent_status_read(dir, &text);
	if (r == 0) {
		if (strlen(text) > size)
			abort();
		(void)ts_status_print_text(text, devnull);
		free(text);
	}
	if (ts_agent_status_load_memory(&a) == 0) {
		for (size_t i = 0; i < 2; i++)
			if (mem[i].auth_failures != mem[i].auth_failures_base)
				abort();
	}
	ts_agent_status_done(&a);
	return 0;
}
