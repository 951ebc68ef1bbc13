/* VICI, strongSwan's control protocol: the message codec (a small tree of
 * sections, key/values and lists, encoded and decoded as pure functions over
 * bytes, bounded against hostile input) and the client over charon's unix
 * socket (commands with timeouts, streamed listings, an event connection
 * with reconnection). Debian ships no libvici header, so this is our own.
 *
 * Wire format: u32 big-endian length, u8 packet type, for some types u8 name
 * length + name, then for requests, responses and events the message:
 * 1 section start (u8 len + name), 2 section end, 3 key/value (u8 len + name,
 * u16 len + value), 4 list start (u8 len + name), 5 list item (u16 len +
 * value), 6 list end. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ts_secret;

#define TS_VICI_NAME_MAX  255u
#define TS_VICI_VALUE_MAX 65535u
/* charon refuses larger messages itself (VICI_MESSAGE_SIZE_MAX). */
#define TS_VICI_MESSAGE_MAX (512u * 1024u)
/* Deepest nesting of sections (and a list inside the innermost); charon's
 * own replies nest 5 deep at most. */
#define TS_VICI_DEPTH_MAX 32u

enum ts_vici_packet_type {
	TS_VICI_CMD_REQUEST = 0,
	TS_VICI_CMD_RESPONSE = 1,
	TS_VICI_CMD_UNKNOWN = 2,
	TS_VICI_EVENT_REGISTER = 3,
	TS_VICI_EVENT_UNREGISTER = 4,
	TS_VICI_EVENT_CONFIRM = 5,
	TS_VICI_EVENT_UNKNOWN = 6,
	TS_VICI_EVENT = 7,
	_TS_VICI_PACKET_MAX,
};

enum ts_vici_node_type {
	TS_VICI_SECTION, /* named (or the unnamed root); ordered children */
	TS_VICI_KV,	 /* named value */
	TS_VICI_LIST,	 /* named; children are TS_VICI_ITEMs */
	TS_VICI_ITEM,	 /* unnamed value inside a list */
	_TS_VICI_NODE_MAX,
};

/* A message tree. Read the fields freely; change it only through the
 * functions below. Values are byte strings of value_len bytes with a NUL
 * after them (so text values read as C strings). */
struct ts_vici_node {
	enum ts_vici_node_type type;
	bool secret; /* value wiped when freed */
	/* A decoded tree lives in one block (its nodes, their children arrays,
	 * names and values), which its root's free releases; such a tree is
	 * read-only: adding to it fails with -EPERM. */
	bool in_block, block_root;
	char *name; /* NULL for the root and list items */
	uint8_t *value;
	size_t value_len;
	struct ts_vici_node **children;
	size_t n_children;
	size_t cap_children;
};

extern const char *const ts_vici_packet_type_names[_TS_VICI_PACKET_MAX];
const char *ts_vici_packet_type_to_string(enum ts_vici_packet_type t);
/* Types that carry a name (command or event). */
bool ts_vici_packet_type_has_name(enum ts_vici_packet_type t);
/* Types that carry a message body. */
bool ts_vici_packet_type_has_body(enum ts_vici_packet_type t);

/* --- building ------------------------------------------------------------ */

/* A new empty root section. */
int ts_vici_msg_new(struct ts_vici_node **ret_root);
/* Frees a tree (wiping secret values); accepts NULL. */
void ts_vici_node_free(struct ts_vici_node *n);
static inline void ts_vici_node_freep(struct ts_vici_node **n)
{
	ts_vici_node_free(*n);
}
#define _cleanup_vici_ __attribute__((cleanup(ts_vici_node_freep)))

/* Each returns 0, -EINVAL (wrong parent type), -ENAMETOOLONG (name over
 * 255 bytes or empty), -E2BIG (value over 65535 bytes) or -ENOMEM. */
int ts_vici_add_section(struct ts_vici_node *parent, const char *name,
			struct ts_vici_node **ret_section);
int ts_vici_add_list(struct ts_vici_node *parent, const char *name, struct ts_vici_node **ret_list);
int ts_vici_add_bytes(struct ts_vici_node *parent, const char *name, const void *value, size_t len);
int ts_vici_add_str(struct ts_vici_node *parent, const char *name, const char *value);
int ts_vici_add_fmt(struct ts_vici_node *parent, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The value is copied into a buffer wiped on free; the encoder marks the
 * output so that the sender wipes it too. */
int ts_vici_add_secret(struct ts_vici_node *parent, const char *name, const struct ts_secret *s);
int ts_vici_list_add_str(struct ts_vici_node *list, const char *value);
int ts_vici_list_add_bytes(struct ts_vici_node *list, const void *value, size_t len);

/* --- reading ------------------------------------------------------------- */

/* First child named name (any type), or NULL. */
const struct ts_vici_node *ts_vici_get(const struct ts_vici_node *section, const char *name);
const struct ts_vici_node *ts_vici_get_section(const struct ts_vici_node *section,
					       const char *name);
const struct ts_vici_node *ts_vici_get_list(const struct ts_vici_node *section, const char *name);
/* Value of a key/value as text; NULL when absent, not a key/value, or
 * holding a NUL byte. */
const char *ts_vici_get_str(const struct ts_vici_node *section, const char *name);
/* "yes" → true, anything else (or absent) → false. */
bool ts_vici_get_yes(const struct ts_vici_node *section, const char *name);
/* Decimal u32; -ENOENT when absent, -EINVAL when not a number. */
int ts_vici_get_u32(const struct ts_vici_node *section, const char *name, uint32_t *ret_value);
/* Text of a list item or key/value node; NULL when it holds a NUL byte. */
const char *ts_vici_node_str(const struct ts_vici_node *n);
/* Deep equality of two trees (names, types, values, order). */
bool ts_vici_node_equal(const struct ts_vici_node *a, const struct ts_vici_node *b);

/* --- codec --------------------------------------------------------------- */

/* Encodes a message body (the root's children). *ret_secret tells whether a
 * secret value went into the output: then the caller must ts_wipe it. */
int ts_vici_body_encode(const struct ts_vici_node *root, uint8_t **ret_buf, size_t *ret_len,
			bool *ret_secret);
/* Decodes a message body. -EBADMSG for malformed input (truncated element,
 * unknown element type, unbalanced sections or lists, list item outside a
 * list, NUL byte in a name), -ELOOP for nesting beyond TS_VICI_DEPTH_MAX,
 * -EMSGSIZE for more than TS_VICI_MESSAGE_MAX bytes, -ENOMEM. */
int ts_vici_body_decode(const uint8_t *data, size_t len, struct ts_vici_node **ret_root);

struct ts_vici_packet {
	enum ts_vici_packet_type type;
	char name[TS_VICI_NAME_MAX + 1]; /* "" when the type carries none */
	struct ts_vici_node *body;	 /* NULL when the type carries none */
};
void ts_vici_packet_done(struct ts_vici_packet *p);

/* Encodes a whole frame, length prefix included. body may be NULL (empty
 * message) and is ignored for types without one. */
int ts_vici_packet_encode(enum ts_vici_packet_type type, const char *name,
			  const struct ts_vici_node *body, uint8_t **ret_buf, size_t *ret_len,
			  bool *ret_secret);
/* Reads a frame's 4-byte length prefix: the payload length that follows.
 * -EMSGSIZE above TS_VICI_MESSAGE_MAX, -EBADMSG for 0. */
int ts_vici_frame_length(const uint8_t hdr[4], size_t *ret_len);
/* Decodes a frame's payload (after the length prefix). */
int ts_vici_packet_decode(const uint8_t *data, size_t len, struct ts_vici_packet *ret_packet);
/* Decodes a whole frame, length prefix included; the prefix must match len. */
int ts_vici_frame_decode(const uint8_t *data, size_t len, struct ts_vici_packet *ret_packet);

/* --- client -------------------------------------------------------------- */

/* One command connection to charon. Not thread-safe. It connects lazily and
 * reconnects once when it finds the socket closed (charon restarted); after
 * that ts_vici_client_take_reconnected() reports true once, so that the
 * caller reloads its connections and keys (charon forgets keys loaded over
 * VICI when it restarts). */
struct ts_vici_client;

int ts_vici_client_new(const char *socket_path, int timeout_ms, struct ts_vici_client **ret_client);
void ts_vici_client_free(struct ts_vici_client *c);
static inline void ts_vici_client_freep(struct ts_vici_client **c)
{
	ts_vici_client_free(*c);
}
#define _cleanup_vici_client_ __attribute__((cleanup(ts_vici_client_freep)))
/* Connects now if not connected; -ENOENT/-ECONNREFUSED while charon is down. */
int ts_vici_client_connect(struct ts_vici_client *c);
bool ts_vici_client_take_reconnected(struct ts_vici_client *c);
/* Number of connections made so far (1 after the first). */
unsigned ts_vici_client_generation(const struct ts_vici_client *c);

typedef int (*ts_vici_stream_fn)(void *userdata, const struct ts_vici_node *event);

/* Sends cmd with body req (NULL: empty) and waits at most timeout_ms
 * (≤ 0: the client's default) for the response. With stream_event, that
 * event is registered for the call and each one received is passed to cb (a
 * negative return from cb aborts with that error after the response).
 * -ETIMEDOUT, -ECONNRESET (charon went away), -EOPNOTSUPP (unknown command
 * or event), -EBADMSG (malformed reply). The connection is closed after any
 * I/O or protocol error, so that the next call starts clean. */
int ts_vici_call(struct ts_vici_client *c, const char *cmd, const struct ts_vici_node *req,
		 const char *stream_event, ts_vici_stream_fn cb, void *userdata, int timeout_ms,
		 struct ts_vici_node **ret_response);

/* Commands. Those answering {success, errmsg} return -EIO (with errmsg,
 * secret-free, copied into err if given) when charon says no. */
struct ts_vici_version {
	char daemon[32];
	char version[32];
	char sysname[32];
	char release[64];
	char machine[32];
};
int ts_vici_version(struct ts_vici_client *c, struct ts_vici_version *ret_version);
/* conn is a root holding one section named after the connection. */
int ts_vici_load_conn(struct ts_vici_client *c, const struct ts_vici_node *conn, char *err,
		      size_t err_size);
int ts_vici_unload_conn(struct ts_vici_client *c, const char *name, char *err, size_t err_size);
/* msg as rendered by ts_ike_render_shared() (id, type, data, owners). */
int ts_vici_load_shared(struct ts_vici_client *c, const struct ts_vici_node *msg, char *err,
			size_t err_size);
int ts_vici_unload_shared(struct ts_vici_client *c, const char *id, char *err, size_t err_size);
/* The response's "keys" list: ids of the shared keys loaded over VICI. */
int ts_vici_get_shared(struct ts_vici_client *c, struct ts_vici_node **ret_response);
/* Whether charon holds a shared key with this id, as this client knows it
 * without asking: its last get-shared's answer on this connection, then
 * its own load-shared and unload-shared since. 1 yes, 0 no, -ENOENT not
 * known (no get-shared on this connection, or a load or unload whose
 * outcome is unknown). Blind to what others did meanwhile (swanctl
 * --load-creds, another VICI client): only get-shared sees that. */
int ts_vici_known_shared(const struct ts_vici_client *c, const char *id);
/* cb gets each list-conn event (a root holding one section per connection). */
int ts_vici_list_conns(struct ts_vici_client *c, const char *ike, ts_vici_stream_fn cb,
		       void *userdata);
/* cb gets each list-sa event (a root holding one section per IKE SA). ike
 * (connection name) may be NULL: all. */
int ts_vici_list_sas(struct ts_vici_client *c, const char *ike, ts_vici_stream_fn cb,
		     void *userdata);
/* timeout_ms of the blocking calls below: charon answers at once and
 * carries on (its "timeout" -1); the outcome is for the caller to observe. */
#define TS_VICI_NO_WAIT (-1)
/* Initiates the CHILD SA child (and its IKE SA ike) and waits up to
 * timeout_ms for the result (TS_VICI_NO_WAIT: none; 0: the client's). */
int ts_vici_initiate(struct ts_vici_client *c, const char *ike, const char *child, int timeout_ms,
		     char *err, size_t err_size);
/* Terminates the IKE SA(s) of connection ike; waits up to timeout_ms. */
int ts_vici_terminate(struct ts_vici_client *c, const char *ike, int timeout_ms, char *err,
		      size_t err_size);
/* Terminates one IKE SA (child false) or CHILD SA by its unique id. */
int ts_vici_terminate_id(struct ts_vici_client *c, bool child, uint32_t unique_id, int timeout_ms,
			 char *err, size_t err_size);
/* Rekeys the IKE SA(s) of connection ike; reauth makes a new IKE SA that
 * authenticates again (with the currently loaded key). Returns once charon
 * has queued it: confirm the outcome through list-sas or ike-updown. */
int ts_vici_rekey(struct ts_vici_client *c, const char *ike, bool reauth, char *err,
		  size_t err_size);

/* The event connection: a second socket registered for a set of events,
 * exposed as a pollable fd. */
struct ts_vici_events;

/* Events the IKE plane needs: ike-updown, child-updown, ike-rekey,
 * child-rekey and log (strongSwan 5.9.8 has no authentication-failure event:
 * the failure shows as a "log" event of the IKE SA, followed by ike-updown
 * without up=yes in state CONNECTING; see ike.h). */
extern const char *const ts_vici_default_events[5];
/* The same without "log": charon's log stream is the costly one (every
 * line of every thread, and after an abrupt client exit strongSwan 5.9
 * can log "vici connection N unknown" for each event it still raises for
 * it), so the agent registers "log" on a connection of its own, only
 * while an authentication failure can happen (reconcile/traffic.c). */
extern const char *const ts_vici_state_events[4];

/* Creates the object and tries to connect and register (failure to connect
 * is not an error: ts_vici_events_fd() is then -1; retry with
 * ts_vici_events_connect()). */
int ts_vici_events_new(const char *socket_path, const char *const *events, size_t n_events,
		       int timeout_ms, struct ts_vici_events **ret_events);
void ts_vici_events_free(struct ts_vici_events *e);
static inline void ts_vici_events_freep(struct ts_vici_events **e)
{
	ts_vici_events_free(*e);
}
#define _cleanup_vici_events_ __attribute__((cleanup(ts_vici_events_freep)))
/* Connects and registers when disconnected. 0: already connected; 1: newly
 * connected after a loss (charon restarted: reload connections and keys);
 * 2: first connection; -errno while charon is down. */
int ts_vici_events_connect(struct ts_vici_events *e);
/* The fd to poll for POLLIN, or -1 while disconnected. */
int ts_vici_events_fd(const struct ts_vici_events *e);
bool ts_vici_events_connected(const struct ts_vici_events *e);

typedef void (*ts_vici_event_fn)(void *userdata, const char *event,
				 const struct ts_vici_node *body);
/* Reads what is available without blocking and passes every complete event
 * to cb. Returns the number of events, or -ECONNRESET when charon closed the
 * connection (the fd is closed: reconnect with ts_vici_events_connect()),
 * -EBADMSG on a malformed frame (likewise disconnected). */
int ts_vici_events_drain(struct ts_vici_events *e, ts_vici_event_fn cb, void *userdata);
/* Waits up to timeout_ms for the fd to become readable, then drains. */
int ts_vici_events_wait(struct ts_vici_events *e, int timeout_ms, ts_vici_event_fn cb,
			void *userdata);
