"""The log's head remembered outside its database, so that a cut-off tail cannot verify ok (red team 21d F8).

Why: every check on the rows themselves is blind to a tail removed whole. Whoever can write the database
(a hostile DBA) deletes the newest entries with the checkpoints and Merkle nodes over them, and what is
left is a consistent, shorter log. A writer that also keeps the tree head it committed (tree size, RFC 9162
root, the latest signed checkpoint) in a file the database's users cannot reach gives the verifier what
RFC 9162 §2.1.4 asks of a client that kept an older head: the log must still hold that size, and its root at
that size must be the one remembered (the prefix is unchanged). A shorter log is ``truncated``; another root
is ``rolled_back``.

The file: JSON, replaced atomically (temporary file, fdatasync, rename; mode 0600) after each commit that
appended or checkpointed, under an exclusive ``flock`` of its directory so that writers of one home never move it
backwards (it keeps the larger head: a writer that committed earlier but writes later changes nothing). Which path
holds it is the caller's choice (this package imports nothing of Keyong's).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from ledger.errors import LedgerError
from ledger.merkle import subtree_root
from ledger.queries import DbNodeSource, checkpoint_at, ledger_size

__all__ = [
    "HEAD_FORMAT",
    "RememberedHead",
    "cut_before_append",
    "forget_head",
    "head_problems",
    "held_in_process",
    "note_head",
    "read_head",
    "remember_head",
    "remembering",
]

HEAD_FORMAT = "keyong-ledger-head/1"
_PENDING = "ledger.head.pending"  # key of Connection.info: the head this transaction will have committed
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RememberedHead:
    """A tree head a writer committed: its size, its RFC 9162 root (hex), and the latest signed checkpoint
    it knew of (``SignedCheckpoint.as_json()``; ``None`` before the first), which the database must keep."""

    tree_size: int
    root: str
    checkpoint: dict[str, Any] | None = None
    # Set for good when a writer found the database short of (or other than) this head before appending:
    # its appends would otherwise move the head past the cut and erase the evidence (:func:`cut_before_append`).
    cut: dict[str, Any] | None = None

    def merged(self, other: RememberedHead | None) -> RememberedHead:
        """The larger head of the two, the larger checkpoint, the first cut: what a file shared by writers keeps."""
        if other is None:
            return self
        head = self if self.tree_size > other.tree_size else other
        cps = [cp for cp in (self.checkpoint, other.checkpoint) if cp is not None]
        checkpoint = max(cps, key=lambda cp: int(cp["tree_size"])) if cps else None
        return RememberedHead(head.tree_size, head.root, checkpoint, other.cut or self.cut)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "tree_size": self.tree_size,
            "root": self.root,
            "checkpoint": self.checkpoint,
            "cut": self.cut,
        }


def note_head(
    connection: Connection,
    tree_size: int,
    root: str,
    checkpoint: dict[str, Any] | None = None,
    cut: dict[str, Any] | None = None,
) -> None:
    """Note on ``connection`` a head its transaction made (an append, or a checkpoint: its size and root);
    :func:`remembering` writes the largest one once the transaction has committed."""
    head = RememberedHead(tree_size, root, checkpoint, cut)
    connection.info[_PENDING] = head.merged(connection.info.get(_PENDING))


def cut_before_append(connection: Connection, path: Path | None, size: int, root: Callable[[], bytes]) -> None:
    """Before an append onto a log of ``size`` entries (``root()`` its root): if this home remembers a longer
    log, or another root at this size, the database was cut or rolled back since; note that for good.

    The appends go on (refusing them would stop every change of the instance, a denial of service any
    DBA could cause), but the cut stays in the file once past it and every verification reports it.
    A log longer than the file (another home's writers appended, or the file lags) must still hold the
    remembered head as its prefix: a DBA who replaced the tail past the last checkpoint with more entries
    than it had was otherwise erased by the next append, which moved the head onto the forged log (red
    team 22)."""
    if path is None:
        return
    try:
        held = _known_head(path)  # the file as this process last saw it, unless it moved since
    except LedgerError:
        return  # the verifier reports an unreadable file
    if held is None or held.cut is not None:
        return
    if held.tree_size < size:  # a log that grew past the head must still hold it as its prefix (RFC 9162 §2.1.4)
        found: str | None = _prefix_root(connection, held.tree_size)
    else:
        found = root().hex() if held.tree_size == size else None
    if found == held.root:
        return
    cut = {"from": held.tree_size, "root": held.root, "to": size, "to_root": found}
    note_head(connection, held.tree_size, held.root, cut=cut)


def _prefix_root(connection: Connection, size: int) -> str:
    """The database's root at ``size`` (its stored nodes and leaves), or a word for why there is none."""
    try:
        return subtree_root(DbNodeSource(connection), 0, size).hex()
    except (LedgerError, ValueError, TypeError) as exc:
        return f"none ({exc})"


@contextmanager
def remembering(connection: Connection, path: Path | None) -> Iterator[None]:
    """Around a write transaction on ``connection``: after it commits, remember the head it noted in ``path``.

    Only after the commit: a head remembered ahead of the database would be a false alarm. Failing to
    write the file does not undo a commit the caller must hear of; it is logged, and the file keeps the
    older head (still checked), until the next commit writes it."""
    connection.info.pop(_PENDING, None)  # Connection.info outlives a pooled checkout: nothing stale
    try:
        yield
    except BaseException:
        connection.info.pop(_PENDING, None)
        raise
    pending = connection.info.pop(_PENDING, None)
    if pending is not None and path is not None:
        try:
            remember_head(path, pending)
        except OSError as exc:
            _log.error("could not remember the ledger head in %s: %s", path, exc)


def read_head(path: Path) -> RememberedHead | None:
    """The head remembered in ``path``; ``None`` when there is no such file; :class:`LedgerError` when it
    cannot be read or is not one (it is then no evidence either way, and the verifier says so)."""
    head, fd, _ = _load(path)
    if fd is not None:
        os.close(fd)
    return head


#: A head file holds a size, a root and one checkpoint: a few hundred bytes. More is not one.
MAX_HEAD_BYTES = 64 * 1024
#: The largest entry count a ledger can have (seq is a signed 64-bit column): a larger one names no head.
_MAX_SIZE = 2**63 - 1


def _load(path: Path | str) -> tuple[RememberedHead | None, int | None, bytes]:
    """:func:`read_head`, the descriptor it read from, still open (the caller closes it), and the bytes."""
    try:
        # Why not ``read_bytes``: a FIFO in its place made every verification and every writer (which reads it
        # after each commit) wait forever, a link to ``/dev/zero`` read until memory ran out, and a huge file
        # was read whole (red team 22). Opened without following a link and without blocking, checked before
        # reading: the writer only ever renames a regular file here.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None, b""
    except OSError as exc:
        raise LedgerError(f"the remembered ledger head {path} cannot be read: {exc.strerror}") from None
    try:
        try:
            raw = _read_regular(fd)
        except OSError as exc:
            raise LedgerError(f"the remembered ledger head {path} cannot be read: {exc.strerror}") from None
        if raw is None:
            raise LedgerError(
                f"the remembered ledger head {path} is not a regular file of at most {MAX_HEAD_BYTES} bytes: refused"
            )
        return _parse(path, raw), fd, raw
    except BaseException:
        os.close(fd)
        raise


def _parse(path: Path | str, raw: bytes) -> RememberedHead:
    try:
        data = json.loads(raw)
        if data.get("format") != HEAD_FORMAT:
            raise ValueError("format")
        size, root, checkpoint = data["tree_size"], data["root"], data.get("checkpoint")
        if not _count(size) or len(bytes.fromhex(root)) != 32:
            raise ValueError("tree_size or root")
        if checkpoint is not None and not (isinstance(checkpoint, dict) and _count(checkpoint["tree_size"])):
            raise ValueError("checkpoint")
        cut = data.get("cut")
        if cut is not None and not (isinstance(cut, dict) and _count(cut["from"]) and _count(cut["to"])):
            raise ValueError("cut")
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError, RecursionError):
        raise LedgerError(f"the remembered ledger head {path} is not one ({HEAD_FORMAT})") from None
    return RememberedHead(size, root, checkpoint, cut)


def _count(value: Any) -> bool:
    """Whether ``value`` is an entry count the database can hold (a JSON integer in 0 .. 2^63 - 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SIZE


def _read_regular(fd: int) -> bytes | None:
    """The bytes of the file open on ``fd`` when it is a regular file of at most :data:`MAX_HEAD_BYTES`."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    chunks, left = [], MAX_HEAD_BYTES + 1
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    raw = b"".join(chunks)
    return raw if len(raw) <= MAX_HEAD_BYTES else None


# --- the head as this process last read or wrote it ------------------------------------------------------
#
# Reading and parsing the file before each append and again under the lock after each commit was most of what
# the head cost a writer besides its write (ledger23). What a process last read or wrote is kept with the file
# still open: its inode cannot be reused while open, so a path that still names that inode is that very file,
# and its bytes, read again through the open descriptor (no parse), say whether anyone changed it in place.
# Any other file there (another process's write, a link, a FIFO, a removed one) misses and is read and checked
# as before. Only the file is cached: the database is checked against the head before every append.

_SEEN_MAX = 16  # homes per process whose file is kept open (tests make many; a server has one)
_seen: OrderedDict[str, tuple[int, tuple[int, int], bytes, RememberedHead]] = OrderedDict()
_seen_lock = threading.Lock()


def _new_lock_in_child() -> None:
    """A child forked while another thread held the lock would wait on it forever: it gets its own."""
    global _seen_lock
    _seen_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _known_head(path: Path | str) -> RememberedHead | None:
    """:func:`read_head`, without parsing the file when it is, byte for byte, the one this process last saw,
    and never less than what this process last saw there (:func:`held_in_process`).

    Why the memory counts: a file removed, or replaced by a link or a FIFO (or by an older copy), while a DBA
    cut the tail made the next append treat the head as no evidence, note no cut and write the cut log's head
    in its place; every verification after said ok (red team 23b F4). The head this process committed or read
    is evidence as good as the file was: it is merged in, and the next write of the file restores it."""
    name = os.fspath(path)
    with _seen_lock:
        seen = _seen.get(name)
        if seen is not None and _unchanged(name, *seen[:3]):
            return seen[3]
    remembered = None if seen is None else seen[3]
    try:
        head, fd, raw = _load(path)
    except LedgerError:
        if remembered is None:
            raise
        _log.error("the remembered ledger head %s cannot be read: using the head this process last saw", name)
        return remembered
    if head is None:
        return remembered
    kept = head if remembered is None else remembered.merged(head)  # a tie: the file's (another writer's)
    if fd is not None:
        _learn(name, fd, raw, kept)
    return kept


def held_in_process(path: Path | str) -> RememberedHead | None:
    """The head this process last read or wrote at ``path`` (whatever the file holds now), or ``None``."""
    with _seen_lock:
        seen = _seen.get(os.fspath(path))
    return None if seen is None else seen[3]


def forget_head(path: Path | str) -> None:
    """Drop what this process remembers of the head file at ``path`` (and close the file it kept open).

    Why: the memory is evidence against a cut only while ``path`` belongs to the same ledger. A restore builds a
    *new* home at a path that held nothing (the home it replaces was moved aside or removed first): a process
    that restores with the head of the set-aside home in memory judged the restored, earlier ledger rolled back
    (test_upgrade_rollback: the documented rollback to a pre-upgrade backup, in one process). The restored ledger
    is checked against the head its backup's manifest recorded instead."""
    with _seen_lock:
        seen = _seen.pop(os.fspath(path), None)
    if seen is not None:
        with suppress(OSError):
            os.close(seen[0])


def _unchanged(name: str, fd: int, inode: tuple[int, int], raw: bytes) -> bool:
    try:
        found = os.lstat(name)
        return (found.st_dev, found.st_ino) == inode and os.pread(fd, len(raw) + 1, 0) == raw
    except OSError:
        return False


def _learn(name: str, fd: int, raw: bytes, head: RememberedHead) -> None:
    """Keep ``fd`` (open for reading on the file at ``name``, whose bytes ``raw`` say ``head``) as seen."""
    try:
        found = os.fstat(fd)
    except OSError:
        os.close(fd)
        return
    with _seen_lock:
        dropped = [_seen.pop(name, None)]
        _seen[name] = (fd, (found.st_dev, found.st_ino), raw, head)
        while len(_seen) > _SEEN_MAX:
            dropped.append(_seen.popitem(last=False)[1])
    for old in dropped:
        if old is not None:
            os.close(old[0])


def _open_directory(directory: str) -> int:
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def remember_head(path: Path, head: RememberedHead) -> RememberedHead:
    """Keep the larger of ``head`` and the one ``path`` holds, atomically and under a lock; returns it.

    An unreadable file is replaced by ``head``: the writer's own commit is the best evidence it has."""
    # The lock is the directory itself and the temporary file's name is random: a lock file or a temporary
    # name someone made a directory (or a FIFO) stopped every write of the head, logged only, while verify
    # went on comparing with the last one written, an ever older head (red team 22).
    name = os.fspath(path)  # strings, not Path objects: this runs after every commit
    directory, base = os.path.split(name)
    lock = _open_directory(directory or ".")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            held = _known_head(name)
        except LedgerError:
            held = None
        kept = head.merged(held)
        if kept == held:
            return kept
        temporary = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            raw = json.dumps(kept.as_json(), sort_keys=True).encode()
            data = memoryview(raw)
            while data:
                data = data[os.write(fd, data) :]
            os.fdatasync(fd)  # a rename that outlives a crash onto an empty file would be a false alarm
            os.replace(temporary, name)
        except BaseException:
            os.close(fd)
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _learn(name, fd, raw, kept)  # the descriptor now names the file at ``path``
        return kept
    finally:
        os.close(lock)  # releases the flock


def head_problems(connection: Connection, held: RememberedHead) -> list[tuple[int | None, str, str]]:
    """``(seq, kind, detail)`` for each way the database's log fails to extend the remembered head.

    Read the file before opening ``connection``'s snapshot: a writer commits before it remembers, so the
    database a verifier reads afterwards always reaches what the file says (no false alarm under load)."""
    found: list[tuple[int | None, str, str]] = []
    if held.cut is not None:
        cut = held.cut
        found.append(
            (
                None,
                "truncated" if cut["to"] < cut["from"] else "rolled_back",
                f"this home's writers committed {cut['from']} entries (root {cut['root']}), then found the "
                f"database's ledger at {cut['to']} entries"
                + ("" if cut["to"] < cut["from"] else f" with another root ({cut.get('to_root')})")
                + " and appended after it: it was cut off or rolled back in between",
            )
        )
    size = ledger_size(connection)
    if size < held.tree_size:
        found.append(
            (
                size + 1,  # the first entry missing, as the verifiers name a cut they see themselves
                "truncated",
                f"the database's ledger ends at entry {size}, but this home's writers committed "
                f"{held.tree_size}: entries {size + 1} to {held.tree_size} were removed",
            )
        )
    else:
        try:
            root = subtree_root(DbNodeSource(connection), 0, held.tree_size).hex()
        except (LedgerError, ValueError) as exc:
            root = f"none ({exc})"
        if root != held.root:
            found.append(
                (
                    None,
                    "rolled_back",
                    f"the ledger's root at size {held.tree_size} is {root}, not the {held.root} this home's "
                    "writers committed: entries up to that size were replaced (rolled back and rewritten)",
                )
            )
    cp = held.checkpoint
    if cp is not None:
        stored = checkpoint_at(connection, int(cp["tree_size"]))
        if stored is None or (stored.root, stored.signature) != (cp.get("root"), cp.get("signature")):
            found.append(
                (
                    None,
                    "truncated",
                    f"the signed checkpoint of size {cp['tree_size']} this home's writers made is "
                    + ("missing from the database" if stored is None else "not the one the database holds"),
                )
            )
    return found
