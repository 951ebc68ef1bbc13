#!/usr/bin/python3
"""Exec a command (linux.uml) with a seccomp filter that makes
ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, ...) fail with EIO.

Why: Debian's UML 6.1 saves guest FPU state with PTRACE_SETREGSET of a
fixed 2696-byte XSTATE buffer. Hosts whose XSAVE area is larger (AVX-512
plus AMX/APX) reject that with EFAULT and the guest's init dies at once
("userspace - ptrace set fp regs failed, errno = 14"). When the probe at
boot fails, UML falls back to PTRACE_GETFPREGS/SETFPREGS (512-byte FXSAVE),
which every x86-64 host accepts. Cost: the upper halves of YMM/ZMM
registers are not switched between guest threads of one process, so
run-uml also asks glibc in the guest not to use AVX (GLIBC_TUNABLES).
Only the one ptrace request is filtered; everything else is allowed.
"""
import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
NR_PTRACE = 101
PTRACE_GETREGSET = 0x4204
NT_X86_XSTATE = 0x202
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
RET_ERRNO_EIO = 0x00050000 | 5
RET_ALLOW = 0x7FFF0000


def stmt(code, k):
    return struct.pack("HBBI", code, 0, 0, k)


def jeq(k, skip_if_false):
    return struct.pack("HBBI", BPF_JEQ_K, 0, skip_if_false, k)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: uml-xstate-workaround.py COMMAND [ARGS...]\n")
        return 2
    # seccomp_data: nr @0, arch @4, args[0] @16, args[2] @32 (low words).
    prog = b"".join([
        stmt(BPF_LD_W_ABS, 4), jeq(AUDIT_ARCH_X86_64, 7),
        stmt(BPF_LD_W_ABS, 0), jeq(NR_PTRACE, 5),
        stmt(BPF_LD_W_ABS, 16), jeq(PTRACE_GETREGSET, 3),
        stmt(BPF_LD_W_ABS, 32), jeq(NT_X86_XSTATE, 1),
        stmt(BPF_RET_K, RET_ERRNO_EIO),
        stmt(BPF_RET_K, RET_ALLOW),
    ])

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    os.execv(sys.argv[1], sys.argv[1:])
    return 127


if __name__ == "__main__":
    sys.exit(main())
