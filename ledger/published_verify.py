"""Verifying the published ledger (:mod:`ledger.published`) from the bucket alone: no database, no home.

Why: a regulator holds read access to ``ledger/`` and the log's public key, nothing else (issue 19).
From the objects this recomputes what ``keyong ledger verify`` recomputes from the database, and
reports with the same keys (``ok``, ``entries``, ``head``, ``checkpoints``, ``problems``):

* the layout: every object under ``ledger/`` is one the layout has; a checkpoint has both its note and
  its ``.json``; the entries objects cover ``1 .. N`` without gap or overlap and end at the last
  checkpoint (anything else is a problem: fail closed, an inserted or removed object shows);
* the hash chain: each entry's hash recomputed from its fields, each ``prev_hash`` the previous hash;
* the Merkle root (RFC 9162) at every checkpoint size, from the entries;
* each checkpoint's Ed25519 signature by the key in office for its size (rotations are followed as
  :mod:`ledger.keyring` says, from any one trusted key: SATRE 2.4.05), and its C2SP signed note by the
  same key over the same size and root;
* the RFC 9162 consistency proof from each checkpoint to the next (so a checkpoint chain also stands
  against the roots a regulator kept earlier);
* the C2SP tlog-tiles under ``ledger/tile/``: exactly the tiles of the entries at the checkpoint sizes;
* witness cosignatures: each object's key is its line's SHA-256, and with a :class:`WitnessPolicy`
  each known witness's line must verify; ``witnessed`` names the largest checkpoint with the quorum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoints import SignedCheckpoint, public_key_hex
from ledger.entry import EntryError, canonical_json
from ledger.keyring import ROTATION_ACTION, signature_problems
from ledger.merkle import TreeAppender, leaf_hash, verify_consistency
from ledger.note import (
    NoteError,
    Verifier,
    WitnessPolicy,
    open_note,
    parse_checkpoint_body,
    parse_vkey,
    verify_cosignature,
)
from ledger.note.lines import parse_signature_line
from ledger.published import (
    PUBLISHED_PREFIX,
    ObjectStore,
    checkpoint_json_key,
    checkpoint_note_key,
    parse_published_key,
)
from ledger.report import GENESIS_HEX, VerifyReport
from ledger.tiles import TileHasher

__all__ = ["PublishedReport", "key_origin", "main", "verify_published"]

ENTRY_KEYS = frozenset({"seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash"})
CHECKPOINT_KEYS = frozenset({"tree_size", "root", "time", "signature", "public_key", "consistency"})
_HEX = frozenset("0123456789abcdef")


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def key_origin(spec: str) -> str | None:
    """The log's origin when ``spec`` is a C2SP note verifier key (``name+hash+base64``), else ``None``."""
    try:
        return parse_vkey(spec.strip()).name
    except (NoteError, TypeError):
        return None


@dataclass
class PublishedReport(VerifyReport):
    """A verification of the published ledger; ``roots`` are the Merkle roots recomputed at checkpoint sizes."""

    latest: dict[str, Any] | None = None
    cosignatures: int = 0
    witnessed: dict[str, Any] | None = None
    roots: dict[int, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = super().as_json()
        data.update(latest=self.latest, cosignatures=self.cosignatures, witnessed=self.witnessed)
        return data


@dataclass
class _Inventory:
    notes: set[int] = field(default_factory=set)
    jsons: set[int] = field(default_factory=set)
    batches: list[tuple[int, int, str]] = field(default_factory=list)
    cosignatures: list[tuple[int, str, str]] = field(default_factory=list)
    tiles: set[str] = field(default_factory=set)


def _inventory(store: ObjectStore, report: PublishedReport) -> _Inventory:
    """Sort the listed objects by kind; an object the layout does not have is a problem."""
    found = _Inventory()
    for item in store.list(PUBLISHED_PREFIX):
        parsed = parse_published_key(item.key)
        if parsed is None:
            report.add(None, "format", f"unexpected object {item.key}: not part of the published ledger")
        elif parsed.kind == "note":
            found.notes.add(parsed.numbers[0])
        elif parsed.kind == "checkpoint":
            found.jsons.add(parsed.numbers[0])
        elif parsed.kind == "entries":
            first, last = parsed.numbers
            if first < 1 or last < first:
                report.add(None, "format", f"entries object {item.key} names an empty or reversed range")
            else:
                found.batches.append((first, last, item.key))
        elif parsed.kind == "cosignature":
            found.cosignatures.append((parsed.numbers[0], parsed.digest, item.key))
        elif parsed.kind == "tile":
            found.tiles.add(item.key)
    for size in sorted(found.notes ^ found.jsons):
        half = "note" if size in found.notes else ".json"
        report.add(None, "incomplete", f"checkpoint {size} has only its {half} (publication interrupted or altered)")
    found.batches.sort()
    return found


def _checkpoint_document(store: ObjectStore, size: int, report: PublishedReport) -> dict[str, Any] | None:
    """The ``.json`` of checkpoint ``size`` when well formed, else a problem and ``None``."""
    key = checkpoint_json_key(size)
    try:
        doc = json.loads(store.read(key))
    except (ValueError, UnicodeDecodeError):
        doc = None
    consistency = doc.get("consistency") if isinstance(doc, dict) else None
    well_formed = (
        isinstance(doc, dict)
        and set(doc) == CHECKPOINT_KEYS
        and _is_size(doc["tree_size"])
        and doc["tree_size"] == size
        and _is_hash(doc["root"])
        and all(isinstance(doc[k], str) for k in ("time", "signature", "public_key"))
        and isinstance(consistency, dict)
        and set(consistency) == {"old_size", "path"}
        and _is_size(consistency["old_size"])
        and isinstance(consistency["path"], list)
        and all(_is_hash(p) for p in consistency["path"])
    )
    if not well_formed:
        report.add(None, "format", f"{key} is not a published checkpoint of size {size}")
        return None
    assert isinstance(doc, dict)
    return doc


def _entry_problem(line: object, expected_seq: int, prev: str) -> tuple[str, str] | None:
    """Why an entries line does not continue the chain at ``expected_seq`` after ``prev``, or ``None``."""
    if not isinstance(line, dict) or set(line) != ENTRY_KEYS:
        return "format", "not an entry line"
    if line["seq"] != expected_seq:
        return "order", f"expected entry {expected_seq}, found {line['seq']!r}"
    if line["prev_hash"] != prev:
        return "link", "prev_hash does not match the previous entry's hash"
    try:
        body = canonical_json({k: v for k, v in line.items() if k != "hash"})
        computed = hashlib.sha256(bytes.fromhex(line["prev_hash"]) + body).hexdigest()
    except (EntryError, ValueError, TypeError):
        return "format", "hashes are not hex or the fields are not canonical JSON"
    if not _is_hash(line["hash"]) or computed != line["hash"]:
        return "hash", "content does not match its hash"
    return None


@dataclass
class _Replay:
    appender: TreeAppender = field(default_factory=TreeAppender)
    prev: str = GENESIS_HEX
    rotations: list[tuple[int, Any]] = field(default_factory=list)
    tiles: TileHasher = field(default_factory=TileHasher)
    checkpoint_sizes: set[int] = field(default_factory=set)


def _replay_batch(
    data: bytes, first: int, last: int, key: str, sizes: set[int], state: _Replay, report: PublishedReport
) -> None:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != last - first + 1:
        report.add(first, "format", f"{key} holds {len(lines)} lines for entries {first}..{last}")
    for number, raw in enumerate(lines):
        expected = state.appender.size + 1
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        problem = _entry_problem(line, expected, state.prev)
        if problem is not None:
            report.add(first + number, problem[0], f"{key} line {number + 1}: {problem[1]}")
        stored = line.get("hash") if isinstance(line, dict) else None
        stored = stored if isinstance(stored, str) else ""
        leaf = leaf_hash(bytes.fromhex(stored) if _is_hash(stored) else b"")
        state.appender.append(leaf)
        state.tiles.add(leaf)
        if state.appender.size in state.checkpoint_sizes:
            state.tiles.edge()
        state.prev = stored
        if isinstance(line, dict) and line.get("action") == ROTATION_ACTION:
            state.rotations.append((expected, line.get("payload")))
        if state.appender.size in sizes:
            report.roots[state.appender.size] = state.appender.root().hex()


def _replay_entries(
    store: ObjectStore,
    batches: list[tuple[int, int, str]],
    sizes: set[int],
    report: PublishedReport,
    progress: Callable[[int], None] | None,
    checkpoint_sizes: set[int],
) -> _Replay:
    """Recompute the chain, the roots at ``sizes`` and the tiles from the entries objects."""
    state = _Replay(checkpoint_sizes=checkpoint_sizes)
    if 0 in sizes:
        report.roots[0] = state.appender.root().hex()
    for first, last, key in batches:
        expected = state.appender.size + 1
        if first > expected:
            report.add(expected, "missing", f"entries {expected}..{first - 1} are not published")
            break  # nothing after a gap can be chained
        if first < expected:
            report.add(first, "order", f"{key} overlaps entries already published")
            continue
        _replay_batch(store.read(key), first, last, key, sizes, state, report)
        if progress is not None:
            progress(last - first + 1)
    report.entries = state.appender.size
    report.head = state.prev if report.entries else GENESIS_HEX
    return state


def _check_tiles(store: ObjectStore, stored: set[str], expected: dict[str, str], report: PublishedReport) -> None:
    """The published tlog-tiles are exactly those of the entries at the checkpoint sizes, byte for byte."""
    wanted = {f"{PUBLISHED_PREFIX}/{path}": digest for path, digest in expected.items()}
    for key in sorted(stored - set(wanted)):
        report.add(None, "tile", f"{key} is not a tile of the published checkpoints")
    for key, digest in sorted(wanted.items()):
        if key not in stored:
            report.add(None, "tile", f"{key} is not published")
        elif hashlib.sha256(store.read(key)).hexdigest() != digest:
            report.add(None, "tile", f"{key} does not hold the Merkle hashes of the entries")


def _check_chain(docs: dict[int, dict[str, Any]], report: PublishedReport) -> None:
    """Roots against the entries, and each checkpoint's consistency proof from the one before it."""
    previous: dict[str, Any] | None = None
    for size in sorted(docs):
        doc, old_size = docs[size], docs[size]["consistency"]["old_size"]
        path = [bytes.fromhex(p) for p in doc["consistency"]["path"]]
        want_old = previous["tree_size"] if previous else 0
        if old_size != want_old:
            report.add(None, "missing", f"checkpoint {size} follows checkpoint {old_size}, which is not published")
        elif previous is None:
            if path:
                report.add(None, "consistency", f"checkpoint {size}: a proof from the empty tree must be empty")
        elif not verify_consistency(old_size, size, path, bytes.fromhex(previous["root"]), bytes.fromhex(doc["root"])):
            report.add(None, "consistency", f"checkpoint {size} is not consistent with checkpoint {old_size}")
        if size > report.entries:
            report.add(None, "truncated", f"checkpoint of size {size} reaches past the {report.entries} entries")
        elif report.roots.get(size) != doc["root"]:
            report.add(None, "checkpoint_root", f"checkpoint of size {size} does not match the entries")
        previous = doc
    if docs and report.entries > max(docs):
        report.add(max(docs) + 1, "incomplete", f"entries after {max(docs)} are not covered by a checkpoint")


def _check_notes(
    store: ObjectStore, docs: dict[int, dict[str, Any]], origin: str | None, report: PublishedReport
) -> dict[int, bytes]:
    """Each note signed by its checkpoint's key over the same size and root; the bodies that verified."""
    bodies: dict[int, bytes] = {}
    for size, doc in sorted(docs.items()):
        key = checkpoint_note_key(size)
        try:
            text = store.read(key).decode("utf-8")
            name = text.split("\n", 1)[0]
            if origin is not None and name != origin:
                raise NoteError(f"origin {name!r} is not the key's {origin!r}")
            verifier = Verifier.from_public_key(name, bytes.fromhex(doc["public_key"]))
            body, _ = open_note(text, [verifier])
            checkpoint = parse_checkpoint_body(body)
        except (NoteError, ValueError, UnicodeDecodeError) as exc:
            report.add(None, "note", f"{key}: the signed note does not verify: {exc}")
            continue
        if checkpoint.tree_size != size or checkpoint.root_hash.hex() != doc["root"]:
            report.add(None, "note", f"{key}: the signed note states another tree head than {size}.json")
            continue
        bodies[size] = body
    return bodies


def _check_cosignatures(
    store: ObjectStore,
    inventory: _Inventory,
    bodies: dict[int, bytes],
    policy: WitnessPolicy | None,
    report: PublishedReport,
) -> None:
    """Cosignature objects fit their keys; with a policy, known witnesses' lines verify and a quorum stands."""
    counted: dict[int, set[str]] = {}
    for size, digest, key in inventory.cosignatures:
        data = store.read(key)
        if hashlib.sha256(data).hexdigest() != digest:
            report.add(None, "cosignature", f"{key} was altered: its bytes no longer have the SHA-256 its key names")
            continue
        if size not in bodies:
            report.add(None, "cosignature", f"{key} cosigns checkpoint {size}, which is not published and verified")
            continue
        report.cosignatures += 1
        if policy is None:
            continue
        try:
            line = data.decode("utf-8")
            signature = parse_signature_line(line.removesuffix("\n"))
        except (UnicodeDecodeError, NoteError):
            report.add(None, "cosignature", f"{key} is not a signature line")
            continue
        for witness in policy.witnesses:
            if (witness.name, witness.key_hash) != (signature.name, signature.key_hash):
                continue
            if _cosigned(bodies[size], line, witness):
                counted.setdefault(size, set()).add(witness.name)
            else:
                report.add(None, "cosignature", f"{key}: witness {witness.name}'s cosignature does not verify")
    if policy is None:
        return
    quorate = [size for size, names in counted.items() if len(names) >= policy.threshold]
    if policy.threshold == 0 and bodies:
        quorate.append(max(bodies))
    if not quorate:
        report.add(None, "witnesses", f"no published checkpoint carries {policy.threshold} witness cosignatures")
        return
    best = max(quorate)
    report.witnessed = {"tree_size": best, "witnesses": sorted(counted.get(best, set()))}


def _cosigned(body: bytes, line: str, witness: Verifier) -> bool:
    return verify_cosignature(body, line, witness) is not None


def verify_published(
    store: ObjectStore,
    public_keys: Sequence[Ed25519PublicKey],
    *,
    origin: str | None = None,
    policy: WitnessPolicy | None = None,
    progress: Callable[[int], None] | None = None,
    extra_sizes: Iterable[int] = (),
) -> PublishedReport:
    """Verify everything under ``ledger/`` in ``store`` against the trusted key(s); see the module text.

    ``origin`` is the log's note name (a vkey's name): when given, every note must carry it.
    ``extra_sizes`` are tree sizes whose roots the caller also needs (a checkpoint it trusted earlier).
    """
    if not public_keys:
        raise ValueError("a verifier needs at least one public key it trusts")
    report = PublishedReport()
    inventory = _inventory(store, report)
    docs: dict[int, dict[str, Any]] = {}
    for size in sorted(inventory.jsons & inventory.notes):
        doc = _checkpoint_document(store, size, report)
        if doc is not None:
            docs[size] = doc
    report.checkpoints = len(docs)
    replay = _replay_entries(store, inventory.batches, set(docs) | set(extra_sizes), report, progress, set(docs))
    rotations = replay.rotations
    _check_chain(docs, report)
    _check_tiles(store, inventory.tiles, replay.tiles.digests, report)
    signed = [
        SignedCheckpoint(s, d["root"], d["time"], d["signature"], d["public_key"]) for s, d in sorted(docs.items())
    ]
    for problem in signature_problems(signed, rotations, [public_key_hex(k) for k in public_keys]):
        report.add(problem.seq, problem.kind, problem.detail)
    bodies = _check_notes(store, docs, origin, report)
    _check_cosignatures(store, inventory, bodies, policy, report)
    if docs:
        latest = docs[max(docs)]
        report.latest = {k: latest[k] for k in ("tree_size", "root", "time", "signature", "public_key")}
    else:
        report.add(None, "missing", "no checkpoint is published under ledger/")
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m ledger.published_verify DIR --public-key KEY``: a downloaded copy of the bucket's ``ledger/``.

    For a regulator with nothing of Keyong's but this package (the same check as ``keyong ledger
    verify-published``, which also reads S3 directly). Exit 0 when it verifies, 1 otherwise, 2 on usage.
    """
    import argparse
    import sys
    from pathlib import Path

    from ledger.published import DirectoryStore
    from ledger.verify import load_public_key

    parser = argparse.ArgumentParser(prog="python -m ledger.published_verify", description=main.__doc__)
    parser.add_argument("directory", type=Path, help="the directory holding the copied ledger/ prefix")
    parser.add_argument("--public-key", required=True, action="append", help="hex, PEM file or note vkey")
    parser.add_argument("--witnesses", type=Path, help="witness policy ('witness NAME VKEY' lines, 'quorum N')")
    args = parser.parse_args(argv)
    try:
        keys = [load_public_key(spec) for spec in args.public_key]
        policy = WitnessPolicy.parse(args.witnesses.read_text(encoding="utf-8")) if args.witnesses else None
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    origins = {origin for spec in args.public_key if (origin := key_origin(spec)) is not None}
    origin = next(iter(origins)) if len(origins) == 1 else None
    report = verify_published(DirectoryStore(args.directory), keys, origin=origin, policy=policy)
    print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
