"""What a sandboxed job sees: the staged files, data and ``/out``, and bubblewrap's mounts (``sandbox.runner``).

Why a staging directory: a bind's source path shows in the job's ``/proc/self/mountinfo``, so the
data and ``/out`` are never bound from where they lie in the instance home; each run has its own
``tempfile.mkdtemp(prefix="keyong-run-")`` directory holding ``etc``, ``job``, ``data`` and ``out``,
binds those four (neutral names), and stages hard links (or copies) of the granted copies into
``data`` (数据可用不可见, 第三十五条). The bind list depends on nothing a job is granted, so a sandbox
started ahead of demand (:mod:`sandbox.prestart`) has exactly the mounts of a fresh one.
How the uid is dropped (setpriv as root, a user namespace otherwise) is the runner's docstring.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from sandbox.limits import Limits

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534  # nogroup
SETPRIV = "/usr/bin/setpriv"

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


def interpreter_binds() -> list[str]:
    """Host directories bound read-only at the same path so the venv's interpreter runs inside.

    The venv (``sys.prefix``) holds the packages; its ``python`` is a symlink into the base
    prefix (``sys.base_prefix``, here pyenv's), which holds the real binary, libpython and the stdlib.

    These (with ``/usr`` and the top-level library directories) are the only host paths a job can
    read in ``/proc/self/mountinfo``: they are the software install, not data, and name no home,
    operator, licence or job. Every data mount is staged under a neutral name (:func:`stage_data`,
    :func:`stage_out`). Deploy the venv outside the instance home so its path says nothing of it.
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


def is_root() -> bool:
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


def prepare_staging(staging: Path) -> Path:
    """Lay out a run's staging directory before its sandbox starts; the staged ``out`` (see :func:`stage_out`).

    ``etc`` (the sandbox's minimal /etc), an empty ``job`` and ``data``, and ``out``: everything bwrap
    binds comes from here, so the bind list does not depend on what a job is granted, and a sandbox
    started ahead of demand (:mod:`sandbox.prestart`) is started with exactly the mounts of a fresh one.
    What a job is granted is staged into the bound ``job`` and ``data`` directories
    (:func:`stage_job_files`, :func:`stage_data`): a file created under a bound directory appears inside.
    """
    staging.chmod(0o700)
    stage_etc(staging)
    for name in ("job", "data"):
        (staging / name).mkdir(exist_ok=True)
        (staging / name).chmod(0o755)
    return stage_out(staging)


def stage_etc(staging: Path) -> None:
    """Write the sandbox's minimal /etc into the per-run staging directory.

    The staging directory itself stays 0700 (``mkdtemp``'s mode): it holds links to the granted copies
    and the job's live ``out``, which no other host user may reach; bwrap resolves the sources as
    their owner. ``etc``, ``job`` and ``data`` are 0755: they become ``/etc``, ``/job`` and ``/data``,
    which uid 65534 reads (inside, lookups start at the mount, not at the 0700 staging directory).
    """
    etc = staging / "etc"
    etc.mkdir(exist_ok=True)
    etc.chmod(0o755)
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
    for path in etc.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def stage_job_files(staging: Path, files: Mapping[str, bytes]) -> None:
    """Write the job's files into ``staging/job`` (``/job`` inside, read-only), each 0644."""
    job = staging / "job"
    for name in files:
        if not _NAME.match(name):
            raise ValueError(f"job file name not allowed: {name!r}")
    for name, data in files.items():
        (job / name).write_bytes(data)
        (job / name).chmod(0o644)


def stage_files(staging: Path, files: Mapping[str, bytes]) -> None:
    """The whole staging layout (:func:`prepare_staging`) with the job's files in it."""
    prepare_staging(staging)
    stage_job_files(staging, files)


def stage_data(staging: Path, data: Mapping[str, Path]) -> dict[str, Path]:
    """Stage each granted copy as ``staging/data/NAME.parquet`` (``/data/NAME.parquet`` inside); name -> staged path.

    Why: a bind's source path shows in the job's ``/proc/self/mountinfo``, and a copy's home path
    (``HOME/copies/…``) names the instance home; the directory bound at ``/data`` is the run's own
    ``staging/data``, which names nothing (数据可用不可见, shuangyashan-2026-public-data.txt 第三十五条),
    and the copies' file names inside are the dataset names the job was granted. A hard link when the
    copy lies on the staging directory's filesystem (instant, no bytes duplicated; same inode and mode,
    under a read-only bind), else a read-only copy — so put ``TMPDIR`` on the home's filesystem for
    large copies. Other host users cannot reach a link: the staging directory is 0700.
    """
    directory = staging / "data"
    checked: list[tuple[str, Path]] = []
    for name, path in data.items():  # every name and file checked before anything is staged
        if not _NAME.match(name):
            raise ValueError(f"dataset name not allowed in a path: {name!r}")
        real = Path(path).resolve(strict=True)
        if not real.is_file():
            raise ValueError(f"dataset {name!r} is not a regular file: {path}")
        checked.append((name, real))
    staged: dict[str, Path] = {}
    for name, real in checked:
        target = directory / f"{name}.parquet"
        try:
            os.link(real, target, follow_symlinks=False)
        except OSError:  # another filesystem (EXDEV), protected_hardlinks (EPERM), too many links
            shutil.copyfile(real, target)
            target.chmod(0o444)
        staged[name] = target
    return staged


def prepare_out_dir(out_dir: Path) -> None:
    """The caller's ``out_dir``: new or empty, mode 0700, the host user's. The job never sees it."""
    if out_dir.is_symlink():
        raise ValueError(f"out_dir must not be a symbolic link: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"out_dir must be empty: {out_dir}")
    out_dir.chmod(0o700)


def stage_out(staging: Path) -> Path:
    """The directory bound as ``/out``: ``staging/out``, fresh, owned by the sandbox uid, mode 0700.

    Why not the caller's ``out_dir``: its path (``HOME/work/<operator>/licence-<id>/jobs/…``) would
    show as the mount source in the job's ``/proc/self/mountinfo``. :func:`deliver` moves what the
    job left into ``out_dir`` once it is swept.
    """
    job_out = staging / "out"
    job_out.mkdir(mode=0o700)
    if is_root():
        os.chown(job_out, SANDBOX_UID, SANDBOX_GID)
    job_out.chmod(0o700)
    return job_out


def deliver(job_out: Path, out_dir: Path) -> None:
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


def bwrap_args(
    *,
    staging: Path,
    limits: Limits,
    seccomp_fd: int,
    status_fd: int,
) -> list[str]:
    """bwrap's options for the run staged in ``staging`` (:func:`prepare_staging`). Every source is under
    ``staging`` or the software install, never the home; nothing here depends on the job, so a fresh and
    a pre-started sandbox are built from the same list."""
    args = _Args()
    args.add("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")
    if not is_root():
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
    for directory in interpreter_binds():
        args.ro_bind(directory, directory)
    args.ro_bind(str(staging / "etc"), "/etc")
    args.ro_bind(str(staging / "job"), "/job")
    args.ro_bind(str(staging / "data"), "/data")  # the granted copies, staged by stage_data under it
    args.add("--bind", str(staging / "out"), "/out")
    args.add("--proc", "/proc", "--dev", "/dev")
    # multiprocessing's semaphores (joblib, sklearn n_jobs) need a writable /dev/shm; bwrap's is root's 0755.
    args.add("--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm")
    args.add("--chdir", "/out")
    args.add("--seccomp", str(seccomp_fd), "--json-status-fd", str(status_fd))
    return args.items


def command(argv_inside: list[str]) -> list[str]:
    """What bwrap execs (on its real argv: ``--args FD`` carries options only)."""
    if not is_root():
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


__all__ = [
    "ETC_FONTS_CONF",
    "JOB_ENV",
    "SANDBOX_GID",
    "SANDBOX_UID",
    "SETPRIV",
    "bwrap_args",
    "command",
    "deliver",
    "interpreter_binds",
    "is_root",
    "prepare_out_dir",
    "prepare_staging",
    "stage_data",
    "stage_etc",
    "stage_files",
    "stage_job_files",
    "stage_out",
]
