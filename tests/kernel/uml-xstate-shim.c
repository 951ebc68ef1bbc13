/*
 * uml-xstate-shim.c: LD_PRELOAD library for Debian's linux.uml (6.1) that
 * lets it save and restore the full x86 extended register state (XSTATE)
 * of its guest processes on hosts whose XSAVE area is larger than UML's
 * fixed buffer. tests/kernel/run-uml builds it and preloads it into UML.
 *
 * The cause (measured on this host: Linux 6.18, AVX-512 + AMX, XSAVE area
 * 11008 bytes; UML's per-thread buffer FP_SIZE = 2696 bytes, which ends
 * right after PKRU):
 *   - UML saves a guest thread's FPU state with
 *     ptrace(PTRACE_GETREGSET, NT_X86_XSTATE) into its 2696-byte buffer
 *     (the host truncates, fine) and restores it with PTRACE_SETREGSET of
 *     the same 2696 bytes. The host only accepts a SETREGSET of exactly its
 *     full XSAVE size and answers EFAULT: "ptrace set fp regs failed,
 *     errno = 14", init dies.
 *   - The former workaround (a seccomp filter making the GETREGSET probe
 *     fail) made UML fall back to PTRACE_GETFPREGS/SETFPREGS, which carry
 *     only the 512-byte FXSAVE image (x87 + XMM low 128 bits). On every
 *     page fault UML lets its stub take a host SIGSEGV in the guest
 *     process; host signal delivery resets the extended state to its init
 *     value, and the FXSAVE restore afterwards brings back only XMM. So the
 *     upper halves of YMM (and all of ZMM/opmask) became zero after each
 *     page fault. glibc's AVX2 memcpy (still selected: its ifunc keys on
 *     the "preferred" bit AVX_Fast_Unaligned_Load, which
 *     GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-AVX does not clear) copies 33
 *     bytes as two 32-byte YMM stores at offsets 0 and 1; when the first
 *     store faults on a fresh page, only the low 16 bytes of each survive:
 *     17 correct bytes, then zeros.
 *
 * The fix: this library interposes ptrace(). A PTRACE_SETREGSET of
 * NT_X86_XSTATE shorter than the host's XSAVE size is widened to the full
 * size: UML's bytes first, the rest zero, and the XSTATE_BV bits of the
 * state components that do not fit in UML's buffer cleared, so the host
 * puts those components in their init state. Only AMX tile state lies
 * beyond 2696 bytes here, and guest processes cannot use AMX (they never
 * get ARCH_REQ_XCOMP_PERM), so nothing they own is lost. GETREGSET needs
 * no help (the host truncates it to UML's buffer). Every other ptrace
 * request goes to libc unchanged.
 *
 * Remaining UML 6.1 limitation (not host-specific): a guest signal frame
 * carries only the legacy + YMM part of the state (struct _xstate, 832
 * bytes), so ZMM/opmask registers are not restored by sigreturn (measured:
 * a SIGALRM handler writing zmm16 changes the interrupted code's zmm16 and
 * the upper half of its zmm1); run-uml keeps glibc and OpenSSL in the guest
 * off AVX-512 for that reason (GLIBC_TUNABLES, OPENSSL_ia32cap).
 *
 * Measured with tests/kernel/uml_fpu_check.c in the guest: with the former
 * seccomp/FXSAVE workaround 11 checks fail (memcpy/memmove into fresh pages,
 * YMM and ZMM across page faults, thread switches, fork and signals); with
 * this shim all pass, also with glibc's own (AVX-512/EVEX) string function
 * choice. tests/kernel/ike-child-sa.sh fails 6 of 7 cases ("MAC
 * mismatched") under the former workaround without an OpenSSL AVX mask and
 * passes with this shim and no AVX mask.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Offsets in the standard (non-compacted) XSAVE format. */
#define XSAVE_HDR_OFFSET 512
#define XSAVE_HDR_SIZE	 64

typedef long (*ptrace_fn)(enum __ptrace_request request, pid_t pid, void *addr, void *data);

static size_t full_size;   /* host's XSTATE regset size, 0 = not known */
static unsigned char *big; /* full_size bytes, one buffer: UML ptraces from one thread */

static ptrace_fn real_ptrace(void)
{
	static ptrace_fn fn;

	if (!fn)
		fn = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
	return fn;
}

/* The host's XSTATE size: a GETREGSET with a large buffer reports it. */
static int learn_full_size(pid_t pid)
{
	size_t cap = 1 << 20;
	void *buf;
	struct iovec iov;
	long r;

	if (full_size)
		return 0;
	buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -1;
	iov.iov_base = buf;
	iov.iov_len = cap;
	r = real_ptrace()(PTRACE_GETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &iov);
	munmap(buf, cap);
	if (r < 0)
		return -1;
	big = mmap(NULL, iov.iov_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED) {
		big = NULL;
		return -1;
	}
	full_size = iov.iov_len;
	return 0;
}

/* XSTATE_BV bits of user state components that end beyond len bytes.
 * Cached: CPUID is slow under a hypervisor and UML calls this on every
 * return to a guest process. */
static uint64_t components_beyond(size_t len)
{
	static size_t cached_len;
	static uint64_t cached_mask;
	unsigned int a, b, c, d;
	uint64_t mask = 0;

	if (cached_len == len)
		return cached_mask;

	for (unsigned int i = 2; i < 64; i++) {
		if (!__get_cpuid_count(0xd, i, &a, &b, &c, &d) || a == 0)
			continue;
		/* ECX bit 0 set: supervisor state, never in the ptrace image. */
		if (c & 1)
			continue;
		if ((size_t)b + a > len)
			mask |= UINT64_C(1) << i;
	}
	cached_mask = mask;
	cached_len = len;
	return mask;
}

static long set_xstate_widened(pid_t pid, const struct iovec *iov)
{
	uint64_t bv;
	struct iovec wide;
	long r;

	if (learn_full_size(pid) < 0 || iov->iov_len >= full_size ||
	    iov->iov_len < XSAVE_HDR_OFFSET + XSAVE_HDR_SIZE)
		return real_ptrace()(PTRACE_SETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE,
				     (void *)iov);
	memcpy(big, iov->iov_base, iov->iov_len);
	memset(big + iov->iov_len, 0, full_size - iov->iov_len);
	memcpy(&bv, big + XSAVE_HDR_OFFSET, sizeof(bv));
	bv &= ~components_beyond(iov->iov_len);
	memcpy(big + XSAVE_HDR_OFFSET, &bv, sizeof(bv));
	wide.iov_base = big;
	wide.iov_len = full_size;
	r = real_ptrace()(PTRACE_SETREGSET, pid, (void *)(uintptr_t)NT_X86_XSTATE, &wide);
	return r;
}

long ptrace(enum __ptrace_request request, ...)
{
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, request);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);

	if (request == PTRACE_SETREGSET && (uintptr_t)addr == NT_X86_XSTATE && data)
		return set_xstate_widened(pid, data);
	return real_ptrace()(request, pid, addr, data);
}
