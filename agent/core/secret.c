/* Owns secret storage and the registry of live secrets used for redaction. */
#include "core/secret.h"

#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "core/util.h"

struct ts_secret {
	unsigned char *data; /* mmap'd, capacity bytes, always NUL-terminated */
	size_t len;
	size_t capacity;
	struct ts_secret *next, *prev; /* registry */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ts_secret *registry;

void ts_wipe(void *p, size_t len)
{
	if (p && len)
		explicit_bzero(p, len);
}

static size_t page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

static unsigned char *storage_alloc(size_t *capacity)
{
	size_t size = page_round(*capacity + 1);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_DONTDUMP);
	(void)madvise(p, size, MADV_WIPEONFORK);
	/* mlock is best effort: RLIMIT_MEMLOCK may be small in containers. */
	(void)mlock(p, size);
	*capacity = size - 1;
	return p;
}

static void storage_free(unsigned char *p, size_t capacity)
{
	if (!p)
		return;
	explicit_bzero(p, capacity + 1);
	munlock(p, capacity + 1);
	munmap(p, capacity + 1);
}

static void registry_add(struct ts_secret *s)
{
	pthread_mutex_lock(&registry_lock);
	s->next = registry;
	if (registry)
		registry->prev = s;
	registry = s;
	pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(struct ts_secret *s)
{
	pthread_mutex_lock(&registry_lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		registry = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&registry_lock);
}

int ts_secret_new(size_t capacity, struct ts_secret **ret_secret)
{
	struct ts_secret *s;

	if (capacity > TS_SECRET_MAX)
		return -EMSGSIZE;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->capacity = capacity ? capacity : 64;
	s->data = storage_alloc(&s->capacity);
	if (!s->data) {
		free(s);
		return -ENOMEM;
	}
	registry_add(s);
	*ret_secret = s;
	return 0;
}

void ts_secret_free(struct ts_secret *s)
{
	if (!s)
		return;
	registry_remove(s);
	storage_free(s->data, s->capacity);
	free(s);
}

int ts_secret_append(struct ts_secret *s, const void *data, size_t len)
{
	if (len > TS_SECRET_MAX || s->len + len > TS_SECRET_MAX)
		return -EMSGSIZE;
	if (s->len + len > s->capacity) {
		size_t cap = s->len + len;
		unsigned char *p = storage_alloc(&cap);

		if (!p)
			return -ENOMEM;
		/* Hold the registry lock so that redaction never reads freed storage. */
		pthread_mutex_lock(&registry_lock);
		memcpy(p, s->data, s->len);
		storage_free(s->data, s->capacity);
		s->data = p;
		s->capacity = cap;
		pthread_mutex_unlock(&registry_lock);
	}
	memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
	return 0;
}

void ts_secret_clear(struct ts_secret *s)
{
	explicit_bzero(s->data, s->capacity + 1);
	s->len = 0;
}

int ts_secret_from_bytes(const void *data, size_t len, struct ts_secret **ret_secret)
{
	struct ts_secret *s;
	int r = ts_secret_new(len, &s);

	if (r < 0)
		return r;
	r = ts_secret_append(s, data, len);
	if (r < 0) {
		ts_secret_free(s);
		return r;
	}
	*ret_secret = s;
	return 0;
}

struct ts_secret *ts_secret_dup(const struct ts_secret *s)
{
	struct ts_secret *copy;

	if (!s || ts_secret_from_bytes(s->data, s->len, &copy) < 0)
		return NULL;
	return copy;
}

int ts_secret_from_file(const char *path, struct ts_secret **ret_secret, bool *ret_loose_mode)
{
	_cleanup_close_ int fd = -1;
	struct ts_secret *s = NULL;
	struct stat st;
	unsigned char chunk[512];
	ssize_t n;
	int r;

	/* Never blocks on a FIFO; anything but a regular file is -TS_ENOTREG. */
	fd = ts_file_open_regular(path, false, &st);
	if (fd < 0)
		return fd;
	if (st.st_size > TS_SECRET_MAX)
		return -EMSGSIZE;
	r = ts_secret_new((size_t)st.st_size, &s);
	if (r < 0)
		return r;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		r = ts_secret_append(s, chunk, (size_t)n);
		if (r < 0)
			goto fail;
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (s->len > 0 && s->data[s->len - 1] == '\n')
		s->data[--s->len] = '\0';
	if (s->len > 0 && s->data[s->len - 1] == '\r')
		s->data[--s->len] = '\0';
	if (s->len == 0) {
		r = -ENODATA;
		goto fail;
	}
	if (memchr(s->data, '\0', s->len) || memchr(s->data, '\n', s->len)) {
		r = -EBADMSG;
		goto fail;
	}
	if (ret_loose_mode)
		*ret_loose_mode = (st.st_mode & 077) != 0;
	*ret_secret = s;
	return 0;
fail:
	explicit_bzero(chunk, sizeof(chunk));
	ts_secret_free(s);
	return r;
}

int ts_secret_random_alnum(size_t len, struct ts_secret **ret_secret)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	struct ts_secret *s;
	unsigned char pool[64];
	size_t used = sizeof(pool);
	int r;

	r = ts_secret_new(len, &s);
	if (r < 0)
		return r;
	while (s->len < len) {
		unsigned char c;

		if (used == sizeof(pool)) {
			ssize_t n = getrandom(pool, sizeof(pool), 0);

			if (n != (ssize_t)sizeof(pool)) {
				r = n < 0 ? -errno : -EIO;
				if (r == -EINTR)
					continue;
				explicit_bzero(pool, sizeof(pool));
				ts_secret_free(s);
				return r;
			}
			used = 0;
		}
		c = pool[used++];
		/* 62 * 4 = 248: accept 0..247 so every character is equally likely. */
		if (c >= 248)
			continue;
		s->data[s->len++] = (unsigned char)alphabet[c % 62];
	}
	s->data[s->len] = '\0';
	explicit_bzero(pool, sizeof(pool));
	*ret_secret = s;
	return 0;
}

const char *ts_secret_str(const struct ts_secret *s)
{
	return (const char *)s->data;
}

size_t ts_secret_len(const struct ts_secret *s)
{
	return s->len;
}

bool ts_secret_equal(const struct ts_secret *a, const struct ts_secret *b)
{
	unsigned char diff;
	size_t n;

	if (!a || !b)
		return a == b;
	n = a->len < b->len ? a->len : b->len;
	diff = a->len != b->len;
	for (size_t i = 0; i < n; i++)
		diff |= a->data[i] ^ b->data[i];
	return diff == 0;
}

void ts_fingerprint_bytes(const void *data, size_t len, char ret_fp[TS_FINGERPRINT_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[TS_SHA256_DIGEST_LEN];

	ts_sha256(data, len, digest);
	memcpy(ret_fp, "sha256:", 7);
	for (size_t i = 0; i < 8; i++) {
		ret_fp[7 + 2 * i] = hex[digest[i] >> 4];
		ret_fp[8 + 2 * i] = hex[digest[i] & 0xf];
	}
	ret_fp[23] = '\0';
	explicit_bzero(digest, sizeof(digest));
}

void ts_secret_fingerprint(const struct ts_secret *s, char ret_fp[TS_FINGERPRINT_LEN])
{
	ts_fingerprint_bytes(s->data, s->len, ret_fp);
}

int ts_secret_redact(char *buf, size_t size)
{
	static const char mark[] = "[redacted]";
	const size_t mark_len = sizeof(mark) - 1;
	int count = 0;

	pthread_mutex_lock(&registry_lock);
	for (struct ts_secret *s = registry; s; s = s->next) {
		char *hit;

		if (s->len < TS_SECRET_REDACT_MIN)
			continue;
		while ((hit = memmem(buf, strlen(buf), s->data, s->len))) {
			size_t tail = strlen(hit + s->len);

			if ((size_t)(hit - buf) + mark_len >= size) {
				/* No room for the mark: blank the rest of the line. */
				memset(hit, '*', strlen(hit));
				count++;
				break;
			}

			/* When the longer mark pushes the tail past the buffer, drop the
			 * tail: cutting it could leave a prefix of another secret. */
			if ((size_t)(hit - buf) + mark_len + tail >= size)
				tail = 0;
			memmove(hit + mark_len, hit + s->len, tail);
			memcpy(hit, mark, mark_len);
			hit[mark_len + tail] = '\0';
			count++;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return count;
}

int ts_secret_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return -errno;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

int ts_secret_take_env(const char *name, struct ts_secret **ret_secret)
{
	struct ts_secret *s = NULL;
	char *value = getenv(name);
	char *entry;
	size_t len;
	int r;

	if (!value || !*value) {
		*ret_secret = NULL;
		return 0;
	}
	len = strlen(value);
	r = ts_secret_from_bytes(value, len, &s);
	if (r < 0)
		return r;
	/* getenv points just past "NAME=" of the entry. unsetenv only drops
	 * the pointer from environ (the bytes stay where they were: on the
	 * initial stack, which /proc/PID/environ shows, or in libc's heap). */
	entry = value - strlen(name) - 1;
	if (unsetenv(name) < 0) {
		r = -errno;
		ts_secret_free(s);
		return r;
	}
	ts_wipe(entry, strlen(name) + 1 + len);
	*ret_secret = s;
	return 0;
}

/* Header in front of each block: its size, padded to keep the block as
 * aligned as malloc's (max_align_t: 16 bytes on x86-64). */
#define WIPE_HDR 16

static unsigned long wipe_alloc_failures;

unsigned long ts_wipe_alloc_failures(void)
{
	return __atomic_load_n(&wipe_alloc_failures, __ATOMIC_RELAXED);
}

void *ts_wipe_malloc(size_t size)
{
	unsigned char *b = NULL;

	if (size <= SIZE_MAX - WIPE_HDR)
		b = malloc(WIPE_HDR + size);
	if (!b) {
		__atomic_add_fetch(&wipe_alloc_failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	memcpy(b, &size, sizeof(size));
	return b + WIPE_HDR;
}

void ts_wipe_free(void *p)
{
	unsigned char *b;
	size_t size;

	if (!p)
		return;
	b = (unsigned char *)p - WIPE_HDR;
	memcpy(&size, b, sizeof(size));
	ts_wipe(b, WIPE_HDR + size);
	free(b);
}

void *ts_wipe_realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!p)
		return ts_wipe_malloc(size);
	memcpy(&old, (unsigned char *)p - WIPE_HDR, sizeof(old));
	q = ts_wipe_malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	ts_wipe_free(p);
	return q;
}

char *ts_wipe_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *d = ts_wipe_malloc(len);

	if (d)
		memcpy(d, s, len);
	return d;
}

void *ts_wipe_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size) {
		__atomic_add_fetch(&wipe_alloc_failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	p = ts_wipe_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}
