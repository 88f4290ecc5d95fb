"""Privilege attacks: the job is uid 65534 with no capabilities, no_new_privs and the seccomp deny-list,
so ptrace, mount, new namespaces, keyrings and bpf fail (issue 6; sandbox/seccomp.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sandbox_escape import attack, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]

LIBC = """
import ctypes, ctypes.util, json, os
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
def call(name, *args):
    result = getattr(libc, name)(*args)
    return "OK" if result != -1 else os.strerror(ctypes.get_errno())
"""


def test_job_runs_as_nobody_without_capabilities(tmp_path: Path) -> None:
    result, _ = attack(
        """
        import json, os
        status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)
        keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
        print(json.dumps({"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
                          **{k: status[k].strip() for k in keys}}))
        """,
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    seen = json.loads(result.stdout)
    assert seen["ids"] == [65534, 65534, 65534, 65534, []]
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(seen[key], 16) == 0, key
    assert seen["NoNewPrivs"] == "1"
    assert seen["Seccomp"] == "2"  # filter mode


def test_ptrace_and_reading_other_processes_fail(tmp_path: Path) -> None:
    result, _ = attack(
        LIBC
        + """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-I", "-c", "import time; time.sleep(30)", sys.argv[1]])
        time.sleep(0.2)
        out = {
            "attach_child": call("ptrace", 16, child.pid, None, None),   # PTRACE_ATTACH, same uid
            "attach_pid1": call("ptrace", 16, 1, None, None),
            "traceme": call("ptrace", 0, 0, None, None),
        }
        try:
            open(f"/proc/{child.pid}/mem", "rb").read(1)
            out["mem"] = "OK"
        except OSError as exc:
            out["mem"] = type(exc).__name__
        child.kill()
        print(json.dumps(out))
        """.replace("\n        ", "\n"),
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    seen = json.loads(result.stdout)
    assert seen["attach_child"] == seen["attach_pid1"] == seen["traceme"] == "Operation not permitted"
    assert seen["mem"] != "OK"


def test_mount_unshare_and_kernel_interfaces_fail(tmp_path: Path) -> None:
    result, _ = attack(
        LIBC
        + """
        os.makedirs("/tmp/m", exist_ok=True)
        out = {
            "mount_tmpfs": call("mount", b"none", b"/tmp/m", b"tmpfs", 0, None),
            "remount_usr": call("mount", b"none", b"/usr", None, 32 | 4096, None),  # MS_REMOUNT|MS_BIND
            "umount_out": call("umount2", b"/out", 2),
            "unshare_user": call("unshare", 0x10000000),
            "unshare_mount": call("unshare", 0x00020000),
            "chroot": call("chroot", b"/tmp"),
            "keyctl": call("syscall", 250, 0, 0, 0, 0),    # keyctl on x86_64
            "bpf": call("syscall", 321, 0, 0, 0),          # bpf on x86_64
            "clock_settime": call("clock_settime", 0, ctypes.byref((ctypes.c_long * 2)(0, 0))),
            "sethostname": call("sethostname", b"owned", 5),
        }
        print(json.dumps(out))
        """.replace("\n        ", "\n"),
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    seen = json.loads(result.stdout)
    assert "OK" not in seen.values(), seen
    for key in ("mount_tmpfs", "unshare_user", "unshare_mount", "keyctl", "bpf", "clock_settime"):
        assert seen[key] == "Operation not permitted", key
