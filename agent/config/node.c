/* The agent's node name: which gateway this agent is. A fleet shares one
 * config, so the name usually comes from outside it: TUNNELSYNC_NODE_NAME
 * (a Kubernetes DaemonSet sets it from spec.nodeName through the downward
 * API; --node-name sets it) overrides agent/node-name; with neither, the
 * host name, as the YANG module promises. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config-internal.h"

/* The YANG type name-string; true also promises it fits ag->node_name. */
static bool node_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > TS_NAME_MAX ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int cfg_node_name(struct cfg_load *L, struct ts_agent_config *ag)
{
	const char *env = getenv(TS_CONFIG_NODE_NAME_ENV);
	char host[256];

	if (env && env[0]) {
		if (!node_name_ok(env))
			return cfg_error(L, NULL, 0, NULL, -EINVAL,
					 "%s (or --node-name) \"%.80s\": must be 1 to 63 letters, "
					 "digits, '.', '_' or '-', starting with a letter or digit",
					 TS_CONFIG_NODE_NAME_ENV, env);
		memcpy(ag->node_name, env, strlen(env) + 1);
		return 0;
	}
	if (ag->node_name[0])
		return 0;
	/* A host name that is no valid node name leaves the name empty: the
	 * agent then only acts on tunnels that name no gateway. */
	if (gethostname(host, sizeof(host)) < 0)
		return 0;
	host[sizeof(host) - 1] = '\0'; /* POSIX leaves a truncated name unterminated */
	if (node_name_ok(host))
		memcpy(ag->node_name, host, strlen(host) + 1);
	return 0;
}
