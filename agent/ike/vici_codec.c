/* VICI message trees and their encoding: pure functions over bytes. Every
 * length read from input is checked against what is left before it is used;
 * nesting is tracked on a fixed stack so that hostile input cannot recurse. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "core/util.h"
#include "ike/vici.h"

enum {
	EL_SECTION_START = 1,
	EL_SECTION_END = 2,
	EL_KEY_VALUE = 3,
	EL_LIST_START = 4,
	EL_LIST_ITEM = 5,
	EL_LIST_END = 6,
};

const char *const ts_vici_packet_type_names[_TS_VICI_PACKET_MAX] = {
	[TS_VICI_CMD_REQUEST] = "cmd-request",
	[TS_VICI_CMD_RESPONSE] = "cmd-response",
	[TS_VICI_CMD_UNKNOWN] = "cmd-unknown",
	[TS_VICI_EVENT_REGISTER] = "event-register",
	[TS_VICI_EVENT_UNREGISTER] = "event-unregister",
	[TS_VICI_EVENT_CONFIRM] = "event-confirm",
	[TS_VICI_EVENT_UNKNOWN] = "event-unknown",
	[TS_VICI_EVENT] = "event",
};

const char *ts_vici_packet_type_to_string(enum ts_vici_packet_type t)
{
	return (unsigned)t < _TS_VICI_PACKET_MAX ? ts_vici_packet_type_names[t] : "invalid";
}

bool ts_vici_packet_type_has_name(enum ts_vici_packet_type t)
{
	return t == TS_VICI_CMD_REQUEST || t == TS_VICI_EVENT_REGISTER ||
	       t == TS_VICI_EVENT_UNREGISTER || t == TS_VICI_EVENT;
}

bool ts_vici_packet_type_has_body(enum ts_vici_packet_type t)
{
	return t == TS_VICI_CMD_REQUEST || t == TS_VICI_CMD_RESPONSE || t == TS_VICI_EVENT;
}

/* --- tree ---------------------------------------------------------------- */

/* A built node is one allocation: the node, then its name and its value,
 * each with a NUL after it. */
static struct ts_vici_node *node_new(enum ts_vici_node_type type, const char *name, size_t name_len,
				     const void *value, size_t value_len)
{
	bool has_value = type == TS_VICI_KV || type == TS_VICI_ITEM;
	struct ts_vici_node *n =
		malloc(sizeof(*n) + (name ? name_len + 1 : 0) + (has_value ? value_len + 1 : 0));
	char *tail;

	if (!n)
		return NULL;
	tail = (char *)(n + 1);
	*n = (struct ts_vici_node){ .type = type };
	if (name) {
		n->name = memcpy(tail, name, name_len);
		n->name[name_len] = 0;
		tail += name_len + 1;
	}
	if (has_value) {
		n->value = (uint8_t *)tail;
		if (value_len)
			memcpy(n->value, value, value_len);
		n->value[value_len] = 0;
		n->value_len = value_len;
	}
	return n;
}

void ts_vici_node_free(struct ts_vici_node *n)
{
	if (!n)
		return;
	if (n->in_block) {
		/* Decoded values are never secret (nothing decoded is marked);
		 * a member is freed with its root's block. */
		if (n->block_root)
			free(n);
		return;
	}
	for (size_t i = 0; i < n->n_children; i++)
		ts_vici_node_free(n->children[i]);
	free(n->children);
	if (n->value && n->secret)
		ts_wipe(n->value, n->value_len);
	free(n); /* its name and value with it */
}

int ts_vici_msg_new(struct ts_vici_node **ret_root)
{
	struct ts_vici_node *n = node_new(TS_VICI_SECTION, NULL, 0, NULL, 0);

	if (!n)
		return -ENOMEM;
	*ret_root = n;
	return 0;
}

static int node_append(struct ts_vici_node *parent, struct ts_vici_node *child)
{
	if (parent->n_children == parent->cap_children) {
		size_t cap = parent->cap_children ? parent->cap_children * 2 : 4;
		struct ts_vici_node **c = reallocarray(parent->children, cap, sizeof(*c));

		if (!c)
			return -ENOMEM;
		parent->children = c;
		parent->cap_children = cap;
	}
	parent->children[parent->n_children++] = child;
	return 0;
}

static int name_check(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len == 0 || len > TS_VICI_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Adds a named child of the given type, with a value for key/values. */
static int add_child(struct ts_vici_node *parent, enum ts_vici_node_type type, const char *name,
		     const void *value, size_t len, bool secret, struct ts_vici_node **ret_child)
{
	struct ts_vici_node *n;
	int r;

	if (!parent || parent->type != (type == TS_VICI_ITEM ? TS_VICI_LIST : TS_VICI_SECTION))
		return -EINVAL;
	if (parent->in_block)
		return -EPERM;
	if (type != TS_VICI_ITEM) {
		r = name_check(name);
		if (r < 0)
			return r;
	}
	if ((type == TS_VICI_KV || type == TS_VICI_ITEM) && len > TS_VICI_VALUE_MAX)
		return -E2BIG;
	n = node_new(type, type != TS_VICI_ITEM ? name : NULL,
		     type != TS_VICI_ITEM ? strlen(name) : 0, value, len);
	if (!n)
		return -ENOMEM;
	n->secret = secret;
	r = node_append(parent, n);
	if (r < 0)
		goto fail;
	if (ret_child)
		*ret_child = n;
	return 0;
fail:
	ts_vici_node_free(n);
	return r;
}

int ts_vici_add_section(struct ts_vici_node *parent, const char *name,
			struct ts_vici_node **ret_section)
{
	return add_child(parent, TS_VICI_SECTION, name, NULL, 0, false, ret_section);
}

int ts_vici_add_list(struct ts_vici_node *parent, const char *name, struct ts_vici_node **ret_list)
{
	return add_child(parent, TS_VICI_LIST, name, NULL, 0, false, ret_list);
}

int ts_vici_add_bytes(struct ts_vici_node *parent, const char *name, const void *value, size_t len)
{
	return add_child(parent, TS_VICI_KV, name, value, len, false, NULL);
}

int ts_vici_add_str(struct ts_vici_node *parent, const char *name, const char *value)
{
	return ts_vici_add_bytes(parent, name, value, strlen(value));
}

int ts_vici_add_fmt(struct ts_vici_node *parent, const char *name, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	return ts_vici_add_bytes(parent, name, buf, (size_t)n);
}

int ts_vici_add_secret(struct ts_vici_node *parent, const char *name, const struct ts_secret *s)
{
	if (!s)
		return -EINVAL;
	return add_child(parent, TS_VICI_KV, name, ts_secret_str(s), ts_secret_len(s), true, NULL);
}

int ts_vici_list_add_bytes(struct ts_vici_node *list, const void *value, size_t len)
{
	return add_child(list, TS_VICI_ITEM, NULL, value, len, false, NULL);
}

int ts_vici_list_add_str(struct ts_vici_node *list, const char *value)
{
	return ts_vici_list_add_bytes(list, value, strlen(value));
}

const struct ts_vici_node *ts_vici_get(const struct ts_vici_node *section, const char *name)
{
	if (!section || section->type != TS_VICI_SECTION || !name)
		return NULL;
	for (size_t i = 0; i < section->n_children; i++)
		if (ts_streq(section->children[i]->name, name))
			return section->children[i];
	return NULL;
}

const struct ts_vici_node *ts_vici_get_section(const struct ts_vici_node *section, const char *name)
{
	const struct ts_vici_node *n = ts_vici_get(section, name);

	return n && n->type == TS_VICI_SECTION ? n : NULL;
}

const struct ts_vici_node *ts_vici_get_list(const struct ts_vici_node *section, const char *name)
{
	const struct ts_vici_node *n = ts_vici_get(section, name);

	return n && n->type == TS_VICI_LIST ? n : NULL;
}

const char *ts_vici_node_str(const struct ts_vici_node *n)
{
	if (!n || !n->value || memchr(n->value, 0, n->value_len))
		return NULL;
	return (const char *)n->value;
}

const char *ts_vici_get_str(const struct ts_vici_node *section, const char *name)
{
	const struct ts_vici_node *n = ts_vici_get(section, name);

	return n && n->type == TS_VICI_KV ? ts_vici_node_str(n) : NULL;
}

bool ts_vici_get_yes(const struct ts_vici_node *section, const char *name)
{
	return ts_streq(ts_vici_get_str(section, name), "yes");
}

int ts_vici_get_u32(const struct ts_vici_node *section, const char *name, uint32_t *ret_value)
{
	const char *s = ts_vici_get_str(section, name);
	unsigned long long v;
	char *end;

	if (!s)
		return -ENOENT;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*ret_value = (uint32_t)v;
	return 0;
}

bool ts_vici_node_equal(const struct ts_vici_node *a, const struct ts_vici_node *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type || a->n_children != b->n_children || a->value_len != b->value_len)
		return false;
	if ((a->name || b->name) && !ts_streq(a->name, b->name))
		return false;
	if (a->value_len && memcmp(a->value, b->value, a->value_len) != 0)
		return false;
	for (size_t i = 0; i < a->n_children; i++)
		if (!ts_vici_node_equal(a->children[i], b->children[i]))
			return false;
	return true;
}

/* --- encoding ------------------------------------------------------------ */

struct writer {
	uint8_t *buf; /* NULL: only count */
	size_t len;
	bool secret;
};

static void put(struct writer *w, const void *p, size_t n)
{
	if (w->buf && n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u8(struct writer *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put_u16(struct writer *w, size_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(w, b, 2);
}

static void put_name(struct writer *w, const char *name)
{
	size_t n = strlen(name);

	put_u8(w, (uint8_t)n);
	put(w, name, n);
}

/* Validates as it goes (depth, name and value sizes, message size), so that
 * a tree assembled by hand cannot produce a frame charon would misparse. */
static int encode_children(struct writer *w, const struct ts_vici_node *sec, unsigned depth)
{
	for (size_t i = 0; i < sec->n_children; i++) {
		const struct ts_vici_node *n = sec->children[i];
		int r;

		if (name_check(n->name) < 0)
			return -ENAMETOOLONG;
		if (w->len > TS_VICI_MESSAGE_MAX)
			return -EMSGSIZE;
		switch (n->type) {
		case TS_VICI_SECTION:
			if (depth + 1 > TS_VICI_DEPTH_MAX)
				return -ELOOP;
			put_u8(w, EL_SECTION_START);
			put_name(w, n->name);
			r = encode_children(w, n, depth + 1);
			if (r < 0)
				return r;
			put_u8(w, EL_SECTION_END);
			break;
		case TS_VICI_KV:
			if (n->value_len > TS_VICI_VALUE_MAX)
				return -E2BIG;
			put_u8(w, EL_KEY_VALUE);
			put_name(w, n->name);
			put_u16(w, n->value_len);
			put(w, n->value, n->value_len);
			w->secret |= n->secret;
			break;
		case TS_VICI_LIST:
			if (depth + 1 > TS_VICI_DEPTH_MAX)
				return -ELOOP;
			put_u8(w, EL_LIST_START);
			put_name(w, n->name);
			for (size_t j = 0; j < n->n_children; j++) {
				const struct ts_vici_node *it = n->children[j];

				if (it->type != TS_VICI_ITEM)
					return -EINVAL;
				if (it->value_len > TS_VICI_VALUE_MAX)
					return -E2BIG;
				put_u8(w, EL_LIST_ITEM);
				put_u16(w, it->value_len);
				put(w, it->value, it->value_len);
				w->secret |= it->secret;
			}
			put_u8(w, EL_LIST_END);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* Two passes: measure (and validate), then write into an exact buffer. */
static int encode(enum ts_vici_packet_type type, const char *name, const struct ts_vici_node *body,
		  bool frame, uint8_t **ret_buf, size_t *ret_len, bool *ret_secret)
{
	struct writer w = { 0 };
	size_t total = 0;
	int r;

	if (body && body->type != TS_VICI_SECTION)
		return -EINVAL;
	for (int pass = 0; pass < 2; pass++) {
		w.len = 0;
		w.secret = false;
		if (frame) {
			size_t payload = pass ? total - 4 : 0;
			uint8_t hdr[4] = { (uint8_t)(payload >> 24), (uint8_t)(payload >> 16),
					   (uint8_t)(payload >> 8), (uint8_t)payload };

			put(&w, hdr, 4);
			put_u8(&w, (uint8_t)type);
			if (ts_vici_packet_type_has_name(type)) {
				if (name_check(name) < 0)
					return -ENAMETOOLONG;
				put_name(&w, name);
			}
		}
		if (body && (!frame || ts_vici_packet_type_has_body(type))) {
			r = encode_children(&w, body, 0);
			if (r < 0) {
				if (w.buf) {
					ts_wipe(w.buf, total);
					free(w.buf);
				}
				return r;
			}
		}
		if (pass == 0) {
			total = w.len;
			if (total - (frame ? 4 : 0) > TS_VICI_MESSAGE_MAX)
				return -EMSGSIZE;
			w.buf = malloc(total ? total : 1);
			if (!w.buf)
				return -ENOMEM;
		}
	}
	*ret_buf = w.buf;
	*ret_len = w.len;
	if (ret_secret)
		*ret_secret = w.secret;
	return 0;
}

int ts_vici_body_encode(const struct ts_vici_node *root, uint8_t **ret_buf, size_t *ret_len,
			bool *ret_secret)
{
	if (!root)
		return -EINVAL;
	return encode(TS_VICI_CMD_REQUEST, NULL, root, false, ret_buf, ret_len, ret_secret);
}

int ts_vici_packet_encode(enum ts_vici_packet_type type, const char *name,
			  const struct ts_vici_node *body, uint8_t **ret_buf, size_t *ret_len,
			  bool *ret_secret)
{
	if ((unsigned)type >= _TS_VICI_PACKET_MAX)
		return -EINVAL;
	return encode(type, name, body, true, ret_buf, ret_len, ret_secret);
}

/* --- decoding ------------------------------------------------------------ */

struct reader {
	const uint8_t *p;
	size_t left;
};

static int get_u8(struct reader *r, uint8_t *ret)
{
	if (r->left < 1)
		return -EBADMSG;
	*ret = *r->p++;
	r->left--;
	return 0;
}

static int get_bytes(struct reader *r, size_t n, const uint8_t **ret)
{
	if (r->left < n)
		return -EBADMSG;
	*ret = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

/* u8 length + name, in place; names with a NUL byte (or empty) are
 * refused, since they could not be looked up unambiguously. */
static int get_name_ref(struct reader *r, const uint8_t **ret, size_t *ret_len)
{
	uint8_t n;
	int e;

	e = get_u8(r, &n);
	if (e < 0)
		return e;
	e = get_bytes(r, n, ret);
	if (e < 0)
		return e;
	if (n == 0 || memchr(*ret, 0, n))
		return -EBADMSG;
	*ret_len = n;
	return 0;
}

static int get_name(struct reader *r, char ret_name[TS_VICI_NAME_MAX + 1])
{
	const uint8_t *b;
	size_t n;
	int e = get_name_ref(r, &b, &n);

	if (e < 0)
		return e;
	memcpy(ret_name, b, n);
	ret_name[n] = 0;
	return 0;
}

static int get_value(struct reader *r, const uint8_t **ret, size_t *ret_len)
{
	const uint8_t *b;
	size_t n;
	int e;

	e = get_bytes(r, 2, &b);
	if (e < 0)
		return e;
	n = (size_t)b[0] << 8 | b[1];
	e = get_bytes(r, n, ret);
	if (e < 0)
		return e;
	*ret_len = n;
	return 0;
}

/* One element of a body; what the two passes of the decoder share. */
struct element {
	uint8_t el;
	const uint8_t *name; /* sections, lists, key/values; not NUL-ended */
	size_t name_len;
	const uint8_t *value; /* key/values, list items */
	size_t value_len;
};

/* Reads the next element, checking it against the open container `top`
 * (inside a list only items and the list's end may appear). */
static int get_element(struct reader *rd, enum ts_vici_node_type top, struct element *e)
{
	int r;

	r = get_u8(rd, &e->el);
	if (r < 0)
		return r;
	if (top == TS_VICI_LIST && e->el != EL_LIST_ITEM && e->el != EL_LIST_END)
		return -EBADMSG;
	e->name_len = 0;
	e->value_len = 0;
	switch (e->el) {
	case EL_SECTION_START:
	case EL_LIST_START:
		r = get_name_ref(rd, &e->name, &e->name_len);
		break;
	case EL_KEY_VALUE:
		r = get_name_ref(rd, &e->name, &e->name_len);
		if (r >= 0)
			r = get_value(rd, &e->value, &e->value_len);
		break;
	case EL_LIST_ITEM:
		r = top == TS_VICI_LIST ? get_value(rd, &e->value, &e->value_len) : -EBADMSG;
		break;
	case EL_SECTION_END:
	case EL_LIST_END:
		return top == (e->el == EL_SECTION_END ? TS_VICI_SECTION : TS_VICI_LIST) ? 0
											 : -EBADMSG;
	default:
		return -EBADMSG;
	}
	return r;
}

/* The decoder reads a body twice: first to check it whole and to count its
 * nodes and bytes, then to lay the tree out in one block of exactly that
 * size (a message of 1,000 connections used to cost four allocations a
 * node: a tree of list-conns or list-sas is read once and freed). */
int ts_vici_body_decode(const uint8_t *data, size_t len, struct ts_vici_node **ret_root)
{
	enum ts_vici_node_type stack[TS_VICI_DEPTH_MAX + 1];
	size_t up[TS_VICI_DEPTH_MAX + 1];
	struct reader rd = { data, len };
	struct ts_vici_node *nodes, **ptrs;
	size_t n_nodes = 1, n_bytes = 0, k = 1, off = 0;
	struct element e;
	unsigned depth = 0;
	char *text;
	int r;

	if (!data && len)
		return -EINVAL;
	if (len > TS_VICI_MESSAGE_MAX)
		return -EMSGSIZE;
	stack[0] = TS_VICI_SECTION;
	while (rd.left) {
		r = get_element(&rd, stack[depth], &e);
		if (r < 0)
			return r;
		if (e.el == EL_SECTION_END || e.el == EL_LIST_END) {
			if (depth == 0)
				return -EBADMSG;
			depth--;
			continue;
		}
		if (e.el == EL_SECTION_START || e.el == EL_LIST_START) {
			if (depth + 1 > TS_VICI_DEPTH_MAX)
				return -ELOOP;
			stack[++depth] = e.el == EL_SECTION_START ? TS_VICI_SECTION : TS_VICI_LIST;
		}
		n_nodes++;
		n_bytes += (e.name_len ? e.name_len + 1 : 0) +
			   (e.el == EL_KEY_VALUE || e.el == EL_LIST_ITEM ? e.value_len + 1 : 0);
	}
	if (depth != 0)
		return -EBADMSG;

	/* Nodes, then the children arrays (every node but the root is one
	 * parent's child), then names and values. */
	nodes = calloc(1, n_nodes * sizeof(*nodes) + (n_nodes - 1) * sizeof(*ptrs) + n_bytes);
	if (!nodes)
		return -ENOMEM;
	ptrs = (struct ts_vici_node **)(nodes + n_nodes);
	text = (char *)(ptrs + (n_nodes - 1));
	nodes[0].type = TS_VICI_SECTION;
	nodes[0].block_root = true;
	/* Second pass: the nodes in document order, each with its parent's
	 * index in cap_children until the children arrays are laid out. */
	rd = (struct reader){ data, len };
	up[0] = 0;
	while (rd.left) {
		struct ts_vici_node *n;

		r = get_element(&rd, nodes[up[depth]].type, &e);
		if (r < 0) /* the first pass read the same bytes */
			goto fail;
		if (e.el == EL_SECTION_END || e.el == EL_LIST_END) {
			depth--;
			continue;
		}
		n = &nodes[k];
		n->type = e.el == EL_SECTION_START ? TS_VICI_SECTION
			  : e.el == EL_LIST_START  ? TS_VICI_LIST
			  : e.el == EL_KEY_VALUE   ? TS_VICI_KV
						   : TS_VICI_ITEM;
		n->cap_children = up[depth];
		nodes[up[depth]].n_children++;
		if (e.name_len) {
			n->name = memcpy(text, e.name, e.name_len);
			text[e.name_len] = 0;
			text += e.name_len + 1;
		}
		if (n->type == TS_VICI_KV || n->type == TS_VICI_ITEM) {
			n->value = (uint8_t *)text;
			if (e.value_len)
				memcpy(text, e.value, e.value_len);
			text[e.value_len] = 0;
			n->value_len = e.value_len;
			text += e.value_len + 1;
		}
		if (n->type == TS_VICI_SECTION || n->type == TS_VICI_LIST)
			up[++depth] = k;
		k++;
	}
	for (size_t i = 0; i < n_nodes; i++) {
		nodes[i].in_block = true;
		if (nodes[i].n_children)
			nodes[i].children = ptrs + off;
		off += nodes[i].n_children;
		nodes[i].n_children = 0;
	}
	for (size_t i = 1; i < n_nodes; i++) {
		struct ts_vici_node *p = &nodes[nodes[i].cap_children];

		p->children[p->n_children++] = &nodes[i];
	}
	for (size_t i = 0; i < n_nodes; i++)
		nodes[i].cap_children = nodes[i].n_children;
	*ret_root = nodes;
	return 0;
fail:
	free(nodes);
	return r;
}

void ts_vici_packet_done(struct ts_vici_packet *p)
{
	if (!p)
		return;
	ts_vici_node_free(p->body);
	p->body = NULL;
}

int ts_vici_frame_length(const uint8_t hdr[4], size_t *ret_len)
{
	size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];

	if (n == 0)
		return -EBADMSG;
	/* One byte of packet type on top of the largest message. */
	if (n > TS_VICI_MESSAGE_MAX + 1 + 1 + TS_VICI_NAME_MAX)
		return -EMSGSIZE;
	*ret_len = n;
	return 0;
}

int ts_vici_packet_decode(const uint8_t *data, size_t len, struct ts_vici_packet *ret_packet)
{
	struct ts_vici_packet p = { 0 };
	struct reader rd = { data, len };
	uint8_t type;
	int r;

	if (!data)
		return -EINVAL;
	r = get_u8(&rd, &type);
	if (r < 0)
		return r;
	if (type >= _TS_VICI_PACKET_MAX)
		return -EBADMSG;
	p.type = type;
	if (ts_vici_packet_type_has_name(p.type)) {
		r = get_name(&rd, p.name);
		if (r < 0)
			return r;
	}
	if (ts_vici_packet_type_has_body(p.type)) {
		r = ts_vici_body_decode(rd.p, rd.left, &p.body);
		if (r < 0)
			return r;
	} else if (rd.left) {
		return -EBADMSG;
	}
	*ret_packet = p;
	return 0;
}

int ts_vici_frame_decode(const uint8_t *data, size_t len, struct ts_vici_packet *ret_packet)
{
	size_t n;
	int r;

	if (!data || len < 4)
		return -EBADMSG;
	r = ts_vici_frame_length(data, &n);
	if (r < 0)
		return r;
	if (n != len - 4)
		return -EBADMSG;
	return ts_vici_packet_decode(data + 4, n, ret_packet);
}
