/*
 * uml-fpu-check: run inside the run-uml guest, checks that user-space
 * register state survives what UML does behind a process's back: page
 * faults on fresh pages (a trap into the UML kernel and its stub), system
 * calls, switches to another thread of the same process, fork, and signal
 * delivery. UML 6.1 with the former FXSAVE-only workaround lost the upper
 * halves of YMM registers on every page fault, which broke glibc's AVX2
 * memcpy (see tests/kernel/uml-xstate-shim.c). Exits 0 when every check
 * passes, 1 otherwise; prints one line per check.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static int failures;

static void report(const char *what, int ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		failures++;
}

/* Untouched pages: the first access to each one faults. */
static unsigned char *fresh_pages(size_t n)
{
	void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* Called through volatile pointers so the compiler cannot inline them. */
static void *(*volatile f_memcpy)(void *, const void *, size_t) = memcpy;
static void *(*volatile f_memmove)(void *, const void *, size_t) = memmove;
static void *(*volatile f_memset)(void *, int, size_t) = memset;
static size_t (*volatile f_strlen)(const char *) = strlen;
static char *(*volatile f_strcpy)(char *, const char *) = strcpy;
static int (*volatile f_memcmp)(const void *, const void *, size_t) = memcmp;

static int same_bytes(const volatile unsigned char *a, const volatile unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static void check_string_functions(void)
{
	enum {
		MAXLEN = 520
	};
	static unsigned char src[MAXLEN + 64];
	int ok_cpy = 1, ok_move = 1, ok_set = 1, ok_str = 1, ok_overlap = 1, ok_cmp = 1;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(0x21 + (i * 7 + i / 13) % 90); /* printable, no NUL */

	unsigned char *pages = fresh_pages(6 * MAXLEN);
	for (size_t len = 1; len <= MAXLEN; len++) {
		unsigned char *d1 = pages + (6 * (len - 1)) * PAGE;
		unsigned char *d2 = d1 + PAGE, *d3 = d1 + 2 * PAGE, *d4 = d1 + 3 * PAGE;
		unsigned char *d5 = d1 + 4 * PAGE, *d6 = d1 + 5 * PAGE;
		size_t off = len % 61; /* vary the alignment too */

		f_memcpy(d1 + off, src, len);
		ok_cpy &= same_bytes(d1 + off, src, len);
		f_memmove(d2 + off, src + 3, len);
		ok_move &= same_bytes(d2 + off, src + 3, len);
		f_memset(d3 + off, (int)(len & 0xff) | 1, len);
		for (size_t i = 0; i < len; i++)
			ok_set &= d3[off + i] == ((len & 0xff) | 1);
		/* strcpy of a len-byte string into a fresh page. */
		unsigned char tmp[MAXLEN + 1];
		memcpy(tmp, src, len);
		tmp[len] = 0;
		f_strcpy((char *)d4 + off, (const char *)tmp);
		ok_str &= f_strlen((const char *)d4 + off) == len &&
			  same_bytes(d4 + off, tmp, len + 1);
		/* Overlapping move inside a fresh page, forwards and backwards. */
		for (size_t i = 0; i < 2 * len + 8; i++)
			d5[i] = src[i % len];
		f_memmove(d5 + 5, d5, 2 * len);
		for (size_t i = 0; i < 2 * len; i++)
			ok_overlap &= d5[5 + i] == src[i % len];
		f_memcpy(d6, src, len);
		ok_cmp &= f_memcmp(d6, src, len) == 0;
	}
	munmap(pages, 6 * MAXLEN * PAGE);
	report("memcpy 1..520 bytes into fresh pages", ok_cpy);
	report("memmove 1..520 bytes into fresh pages", ok_move);
	report("memset 1..520 bytes into fresh pages", ok_set);
	report("strcpy/strlen 1..520 bytes into fresh pages", ok_str);
	report("overlapping memmove in fresh pages", ok_overlap);
	report("memcmp after memcpy into fresh pages", ok_cmp);

	/* The case that broke PSKs: 33 bytes, length not known at compile time. */
	static const char key[] = "FirstKey0123456789abcdefghijklmn";
	volatile size_t n = sizeof(key);
	unsigned char *p = fresh_pages(1);
	f_memcpy(p, key, n);
	report("memcpy of a 33-byte key into a fresh page",
	       same_bytes(p, (const unsigned char *)key, n));
	munmap(p, PAGE);
}

/*
 * Register-level checks: load known values into the vector registers, do
 * something that enters the UML kernel, read them back.
 */
enum disturb {
	FAULT,
	SYSCALLS,
	SPIN
};

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 131 + i * 29 + (i >> 5));
}

/* Between the load and the store: touch a fresh page, or 200 sched_yield()
 * system calls, or a long busy loop (for signals to arrive). */
#define DISTURB_ASM                                  \
	"cmpl $0, %[mode]\n\t"                       \
	"jne 1f\n\t"                                 \
	"movb $1, (%[page])\n\t"                     \
	"jmp 3f\n"                                   \
	"1:\n\t"                                     \
	"cmpl $1, %[mode]\n\t"                       \
	"jne 4f\n\t"                                 \
	"movl $200, %%r12d\n"                        \
	"2:\n\t"                                     \
	"movl $24, %%eax\n\t" /* __NR_sched_yield */ \
	"syscall\n\t"                                \
	"decl %%r12d\n\t"                            \
	"jnz 2b\n\t"                                 \
	"jmp 3f\n"                                   \
	"4:\n\t"                                     \
	"movq %[spins], %%r12\n"                     \
	"5:\n\t"                                     \
	"decq %%r12\n\t"                             \
	"jnz 5b\n"                                   \
	"3:\n\t"

#define DISTURB_OPERANDS(mode, page) [mode] "m"(mode), [page] "r"(page), [spins] "m"(spin_count)

static long spin_count = 200000000;

static void xmm_roundtrip(const unsigned char *in, unsigned char *out, int mode,
			  unsigned char *page)
{
	__asm__ volatile("movdqu 0(%[in]), %%xmm0\n\tmovdqu 16(%[in]), %%xmm1\n\t"
			 "movdqu 32(%[in]), %%xmm2\n\tmovdqu 48(%[in]), %%xmm3\n\t"
			 "movdqu 64(%[in]), %%xmm4\n\tmovdqu 80(%[in]), %%xmm5\n\t"
			 "movdqu 96(%[in]), %%xmm6\n\tmovdqu 112(%[in]), %%xmm7\n\t"
			 "movdqu 128(%[in]), %%xmm8\n\tmovdqu 144(%[in]), %%xmm9\n\t"
			 "movdqu 160(%[in]), %%xmm10\n\tmovdqu 176(%[in]), %%xmm11\n\t"
			 "movdqu 192(%[in]), %%xmm12\n\tmovdqu 208(%[in]), %%xmm13\n\t"
			 "movdqu 224(%[in]), %%xmm14\n\tmovdqu 240(%[in]), %%xmm15\n\t" DISTURB_ASM
			 "movdqu %%xmm0, 0(%[out])\n\tmovdqu %%xmm1, 16(%[out])\n\t"
			 "movdqu %%xmm2, 32(%[out])\n\tmovdqu %%xmm3, 48(%[out])\n\t"
			 "movdqu %%xmm4, 64(%[out])\n\tmovdqu %%xmm5, 80(%[out])\n\t"
			 "movdqu %%xmm6, 96(%[out])\n\tmovdqu %%xmm7, 112(%[out])\n\t"
			 "movdqu %%xmm8, 128(%[out])\n\tmovdqu %%xmm9, 144(%[out])\n\t"
			 "movdqu %%xmm10, 160(%[out])\n\tmovdqu %%xmm11, 176(%[out])\n\t"
			 "movdqu %%xmm12, 192(%[out])\n\tmovdqu %%xmm13, 208(%[out])\n\t"
			 "movdqu %%xmm14, 224(%[out])\n\tmovdqu %%xmm15, 240(%[out])\n\t"
			 :
			 : [in] "r"(in), [out] "r"(out), DISTURB_OPERANDS(mode, page)
			 : "rax", "rcx", "r11", "r12", "memory", "cc", "xmm0", "xmm1", "xmm2",
			   "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
			   "xmm12", "xmm13", "xmm14", "xmm15");
}

__attribute__((target("avx"))) static void
ymm_roundtrip(const unsigned char *in, unsigned char *out, int mode, unsigned char *page)
{
	__asm__ volatile(
		"vmovdqu 0(%[in]), %%ymm0\n\tvmovdqu 32(%[in]), %%ymm1\n\t"
		"vmovdqu 64(%[in]), %%ymm2\n\tvmovdqu 96(%[in]), %%ymm3\n\t"
		"vmovdqu 128(%[in]), %%ymm4\n\tvmovdqu 160(%[in]), %%ymm5\n\t"
		"vmovdqu 192(%[in]), %%ymm6\n\tvmovdqu 224(%[in]), %%ymm7\n\t"
		"vmovdqu 256(%[in]), %%ymm8\n\tvmovdqu 288(%[in]), %%ymm9\n\t"
		"vmovdqu 320(%[in]), %%ymm10\n\tvmovdqu 352(%[in]), %%ymm11\n\t"
		"vmovdqu 384(%[in]), %%ymm12\n\tvmovdqu 416(%[in]), %%ymm13\n\t"
		"vmovdqu 448(%[in]), %%ymm14\n\tvmovdqu 480(%[in]), %%ymm15\n\t" DISTURB_ASM
		"vmovdqu %%ymm0, 0(%[out])\n\tvmovdqu %%ymm1, 32(%[out])\n\t"
		"vmovdqu %%ymm2, 64(%[out])\n\tvmovdqu %%ymm3, 96(%[out])\n\t"
		"vmovdqu %%ymm4, 128(%[out])\n\tvmovdqu %%ymm5, 160(%[out])\n\t"
		"vmovdqu %%ymm6, 192(%[out])\n\tvmovdqu %%ymm7, 224(%[out])\n\t"
		"vmovdqu %%ymm8, 256(%[out])\n\tvmovdqu %%ymm9, 288(%[out])\n\t"
		"vmovdqu %%ymm10, 320(%[out])\n\tvmovdqu %%ymm11, 352(%[out])\n\t"
		"vmovdqu %%ymm12, 384(%[out])\n\tvmovdqu %%ymm13, 416(%[out])\n\t"
		"vmovdqu %%ymm14, 448(%[out])\n\tvmovdqu %%ymm15, 480(%[out])\n\t"
		"vzeroupper\n\t"
		:
		: [in] "r"(in), [out] "r"(out), DISTURB_OPERANDS(mode, page)
		: "rax", "rcx", "r11", "r12", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3",
		  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
		  "xmm13", "xmm14", "xmm15");
}

/* zmm0..31 (2 KiB) then k1..k7 (8 bytes each). */
#define ZBYTES	  (32 * 64 + 7 * 8)
#define ZLOAD(n)  "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n\t"
#define ZSTORE(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n\t"
#define KLOAD(n)  "kmovw 2048+(" #n "-1)*8(%[in]), %%k" #n "\n\t"
#define KSTORE(n) "kmovw %%k" #n ", 2048+(" #n "-1)*8(%[out])\n\t"
#define Z10(M, a) M(a##0) M(a##1) M(a##2) M(a##3) M(a##4) M(a##5) M(a##6) M(a##7) M(a##8) M(a##9)
#define ZALL(M)	  M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) Z10(M, 1) Z10(M, 2) M(30) M(31)
#define KALL(M)	  M(1) M(2) M(3) M(4) M(5) M(6) M(7)

__attribute__((target("avx512f"))) static void
zmm_roundtrip(const unsigned char *in, unsigned char *out, int mode, unsigned char *page)
{
	__asm__ volatile(
		ZALL(ZLOAD) KALL(KLOAD) DISTURB_ASM ZALL(ZSTORE) KALL(KSTORE) "vzeroupper\n\t"
		:
		: [in] "r"(in), [out] "r"(out), DISTURB_OPERANDS(mode, page)
		: "rax", "rcx", "r11", "r12", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3",
		  "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
		  "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
		  "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",
		  "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

enum width {
	XMM,
	YMM,
	ZMM
};
static const size_t width_bytes[] = { 256, 512, ZBYTES };

static int roundtrip(enum width w, int mode, unsigned seed)
{
	unsigned char in[ZBYTES], out[ZBYTES];
	unsigned char *page = fresh_pages(1);
	size_t n = width_bytes[w];
	int ok;

	fill(in, n, seed);
	memset(out, 0, n);
	if (w == XMM)
		xmm_roundtrip(in, out, mode, page);
	else if (w == YMM)
		ymm_roundtrip(in, out, mode, page);
	else
		zmm_roundtrip(in, out, mode, page);
	if (w == ZMM) /* kmovw moves 16 bits of each mask register */
		for (int k = 0; k < 7; k++)
			memset(in + 2048 + k * 8 + 2, 0, 6), memset(out + 2048 + k * 8 + 2, 0, 6);
	ok = memcmp(in, out, n) == 0;
	munmap(page, PAGE);
	return ok;
}

struct thread_arg {
	enum width w;
	unsigned seed;
	int ok;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;

	a->ok = 1;
	for (int i = 0; i < 20; i++)
		a->ok &= roundtrip(a->w, SYSCALLS, a->seed + i) &
			 roundtrip(a->w, FAULT, a->seed + i);
	return NULL;
}

static int with_threads(enum width w)
{
	pthread_t t[3];
	struct thread_arg a[3];
	int ok = 1;

	for (int i = 0; i < 3; i++) {
		a[i] = (struct thread_arg){ .w = w, .seed = 1000u * (i + 1) };
		if (pthread_create(&t[i], NULL, thread_main, &a[i]) != 0)
			return 0;
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok &= a[i].ok;
	}
	return ok;
}

static int with_fork(enum width w)
{
	pid_t pid = fork();
	int ok = 1, status;

	if (pid < 0)
		return 0;
	for (int i = 0; i < 20; i++)
		ok &= roundtrip(w, SYSCALLS, (pid ? 7u : 9u) + i) & roundtrip(w, FAULT, 3u + i);
	if (pid == 0)
		_exit(ok ? 0 : 1);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ok = 0;
	return ok;
}

/* A signal handler that scribbles over every XMM/YMM register. */
static volatile sig_atomic_t signals_seen;
static int have_avx;

__attribute__((target("avx"))) static void clobber_ymm(void)
{
	__asm__ volatile(
		"vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
		"vmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm2\n\tvmovdqa %%ymm0, %%ymm3\n\t"
		"vmovdqa %%ymm0, %%ymm4\n\tvmovdqa %%ymm0, %%ymm5\n\tvmovdqa %%ymm0, %%ymm6\n\t"
		"vmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm8\n\tvmovdqa %%ymm0, %%ymm9\n\t"
		"vmovdqa %%ymm0, %%ymm10\n\tvmovdqa %%ymm0, %%ymm11\n\tvmovdqa %%ymm0, %%ymm12\n\t"
		"vmovdqa %%ymm0, %%ymm13\n\tvmovdqa %%ymm0, %%ymm14\n\tvmovdqa %%ymm0, %%ymm15\n\t"
		"vzeroupper\n\t" ::
			: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
			  "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static void on_alarm(int sig)
{
	(void)sig;
	if (have_avx)
		clobber_ymm();
	else
		__asm__ volatile(
			"pcmpeqd %%xmm0, %%xmm0\n\tmovdqa %%xmm0, %%xmm7\n\tmovdqa %%xmm0, "
			"%%xmm15\n\t" ::
				: "xmm0", "xmm7", "xmm15");
	signals_seen++;
}

static int with_signals(enum width w)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = { .it_interval = { 0, 2000 }, .it_value = { 0, 2000 } };
	int ok = 1;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	signals_seen = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	for (int i = 0; i < 3; i++)
		ok &= roundtrip(w, SPIN, 500u + i);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_IGN);
	printf("     (%d signals arrived during the %s check)\n", (int)signals_seen,
	       w == XMM ? "xmm" : "ymm");
	return ok && signals_seen > 0;
}

/* Scalar and packed double math written to fresh pages, against the same
 * computation done with no faults in between. */
static void compute(double *out, size_t n, double seed)
{
	double acc = seed;

	for (size_t i = 0; i < n; i++) {
		acc = sqrt(acc * 1.000001 + (double)i) / 1.0000003 + sin((double)i * 0.001);
		out[i] = acc;
	}
}

static void *fp_thread(void *p)
{
	int *ok = p;
	enum {
		N = 8 * PAGE / sizeof(double)
	};
	double *ref = malloc(N * sizeof(double));
	double *fresh = (double *)fresh_pages(8);

	memset(ref, 0, N * sizeof(double));
	compute(ref, N, 3.5);
	compute(fresh, N, 3.5);
	*ok = memcmp(ref, fresh, N * sizeof(double)) == 0;
	free(ref);
	munmap(fresh, 8 * PAGE);
	return NULL;
}

int main(void)
{
	__builtin_cpu_init();
	have_avx = __builtin_cpu_supports("avx");
	int have_avx512 = __builtin_cpu_supports("avx512f");

	check_string_functions();

	static const char *const names[] = { "xmm", "ymm", "zmm+opmask" };
	for (enum width w = XMM; w <= ZMM; w++) {
		char what[128];

		if ((w == YMM && !have_avx) || (w == ZMM && !have_avx512)) {
			printf("skip %s checks: the CPU does not have them\n", names[w]);
			continue;
		}
		int ok = 1;
		for (int i = 0; i < 20; i++)
			ok &= roundtrip(w, FAULT, (unsigned)i);
		snprintf(what, sizeof(what), "%s registers across page faults", names[w]);
		report(what, ok);
		ok = 1;
		for (int i = 0; i < 5; i++)
			ok &= roundtrip(w, SYSCALLS, 77u + i);
		snprintf(what, sizeof(what), "%s registers across system calls", names[w]);
		report(what, ok);
		snprintf(what, sizeof(what), "%s registers across thread switches", names[w]);
		report(what, with_threads(w));
		snprintf(what, sizeof(what), "%s registers across fork", names[w]);
		report(what, with_fork(w));
		/* UML 6.1 signal frames hold x87/SSE/AVX state only (struct
		 * _xstate): ZMM/opmask are not restored by sigreturn. */
		if (w != ZMM) {
			snprintf(what, sizeof(what),
				 "%s registers across a signal handler that clobbers them",
				 names[w]);
			report(what, with_signals(w));
		}
	}

	pthread_t t[2];
	int ok[2] = { 0, 0 };
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, fp_thread, &ok[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	report("double math into fresh pages in two threads", ok[0] && ok[1]);

	printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
	return failures ? 1 : 0;
}
