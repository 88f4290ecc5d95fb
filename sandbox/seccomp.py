"""The seccomp filter every sandboxed job runs under, compiled to the BPF that bwrap's ``--seccomp FD`` loads.

Why a filter on top of namespaces and an unprivileged uid: the kernel's attack surface is the last
wall between an operator's code and the host (原始数据不出域 — raw data must not leave the domain,
GB/T 35273-2020 §6.3 access control). Syscalls that a data-analysis job never needs but an
escape or a host disturbance would — debugging other processes, mounting, new namespaces, kernel
keyrings, eBPF, perf, modules, clocks, reboot, swap, accounting, userfaultfd, file handles,
personality flags that switch off ASLR — fail with EPERM. The default action is *allow* (a
deny-list) because pandas, numpy, torch and DuckDB use a wide, version-dependent set of syscalls;
a deny-list of the dangerous ones is what Docker, Flatpak and nsjail's defaults also block.

``clone3`` passes its flags in a struct the filter cannot read, so it answers ENOSYS, which makes
glibc fall back to ``clone``, whose flags the filter does inspect (the approach of Flatpak and
Docker's default profile).
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

import pyseccomp as seccomp

# Syscalls denied outright (EPERM). Names unknown to the running libseccomp/arch are skipped.
DENIED_SYSCALLS: tuple[str, ...] = (
    # debugging / reading other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # mounts and root changes
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    # namespaces
    "unshare",
    "setns",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # eBPF and perf (frequent kernel exploit vectors)
    "bpf",
    "perf_event_open",
    # kernel modules and kexec
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    # clocks
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "stime",
    # machine administration
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "sethostname",
    "setdomainname",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "_sysctl",
    # userfaultfd widens kernel race windows; file handles bypass path-based confinement
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    # fanotify watches whole mounts
    "fanotify_init",
)

# clone(2) flags that create namespaces (linux/sched.h).
CLONE_NEW_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}

# personality(2) flags that weaken the address-space layout (linux/personality.h).
PERSONALITY_DENIED_FLAGS: dict[str, int] = {
    "ADDR_NO_RANDOMIZE": 0x0040000,
    "MMAP_PAGE_ZERO": 0x0100000,
    "ADDR_COMPAT_LAYOUT": 0x0200000,
    "READ_IMPLIES_EXEC": 0x0400000,
}

# ioctl(2) requests that push input into another terminal (TIOCSTI) or drive the console.
IOCTL_DENIED: dict[str, int] = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}


def _resolvable(name: str) -> bool:
    try:
        return bool(seccomp.resolve_syscall(seccomp.system_arch(), name) >= 0)
    except (ValueError, OSError, TypeError):
        return False


def build_filter() -> seccomp.SyscallFilter:
    """The filter object (for inspection and tests); :func:`filter_bpf` is what the runner loads."""
    deny = seccomp.ERRNO(errno.EPERM)
    filt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        if _resolvable(name):
            filt.add_rule(deny, name)
    for flag in CLONE_NEW_FLAGS.values():
        filt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    if _resolvable("clone3"):
        filt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in PERSONALITY_DENIED_FLAGS.values():
        filt.add_rule(deny, "personality", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for request in IOCTL_DENIED.values():
        filt.add_rule(deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, request))
    return filt


@functools.cache
def filter_bpf() -> bytes:
    """The compiled BPF program (cached: building it costs a few ms, every job loads the same one)."""
    with tempfile.TemporaryFile() as sink:
        build_filter().export_bpf(sink)
        sink.seek(0)
        return sink.read()


def filter_fd() -> int:
    """A fresh memfd holding the BPF, positioned at 0, for ``bwrap --seccomp FD``; the caller closes it."""
    fd = os.memfd_create("keyong-seccomp", os.MFD_CLOEXEC)
    os.write(fd, filter_bpf())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
