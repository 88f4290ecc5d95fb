"""A regulator's standalone verifier: no database, no Keyong instance, only files and a key.

    python -m ledger.verify EXPORT.jsonl --public-key KEY [--state TRUSTED.json] [--proof PROOF.json]

checks a ``keyong ledger export`` on its own: it recomputes every entry's hash from the
exported fields (the canonical JSON of DESIGN.md), the chain links, the RFC 9162 Merkle root
at every exported checkpoint, and each checkpoint's Ed25519 signature. With ``--state`` it
keeps the last checkpoint it trusted and refuses an export whose history is not an extension
of it (a rewritten or truncated log); with ``--proof`` it checks an inclusion proof printed by
``keyong ledger prove``. ``KEY`` is the instance's public key as 64 hex characters, a PEM file,
or a C2SP note verifier key (``name+hash+base64``). After key rotations (SATRE 2.4.05) any one key of
the chain is enough: the rotation entries in the export name each successor and the predecessor's
checkpoint vouches for them (:mod:`ledger.keyring`); ``--public-key`` may be given several times.

Only the standard library, ``cryptography`` and this package are used, so the file can be
copied out and audited on its own (双鸭山市公共数据管理暂行办法 第六十条, 第六十四条).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ledger.checkpoints import SignedCheckpoint, checkpoint_statement, public_key_hex
from ledger.keyring import ROTATION_ACTION, signature_problems
from ledger.merkle import TreeAppender, leaf_hash, verify_consistency, verify_inclusion
from ledger.note import KEY_TYPE_ED25519, Checkpoint, NoteError, PolicyError, Verifier, WitnessPolicy, parse_vkey
from ledger.report import GENESIS_HEX, VerifyReport

__all__ = [
    "ExportReport",
    "TrustedState",
    "check_inclusion_proof",
    "load_public_key",
    "main",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
]

ENTRY_KEYS = frozenset({"seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash"})
CHECKPOINT_KEYS = frozenset({"tree_size", "root", "time", "signature", "public_key"})


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def load_public_key(spec: str) -> Ed25519PublicKey:
    """A public key from hex, a PEM file, or a note verifier key."""
    text = spec.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    if "+" in text and not Path(text).exists():
        try:
            verifier = parse_vkey(text)
        except NoteError as exc:
            raise ValueError(f"not a note verifier key: {exc}") from None
        if verifier.key_type != KEY_TYPE_ED25519:
            raise ValueError("note key is not an Ed25519 (type 0x01) verifier key")
        return Ed25519PublicKey.from_public_bytes(verifier.public_key)
    key = load_pem_public_key(Path(text).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{text} is not an Ed25519 public key")
    return key


def _signature_ok(key: Ed25519PublicKey, checkpoint: dict[str, Any]) -> bool:
    """The checkpoint line's Ed25519 signature over the very statement the log signs."""
    statement = checkpoint_statement(checkpoint["tree_size"], checkpoint["root"], checkpoint["time"])
    try:
        key.verify(bytes.fromhex(checkpoint["signature"]), statement)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass
class ExportReport(VerifyReport):
    """A verification of an export file; also the Merkle roots it computed at each checkpoint size."""

    roots: dict[int, str] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                yield number, None
                continue
            yield number, value if isinstance(value, dict) else None


def _keys(public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey]) -> list[Ed25519PublicKey]:
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    if not keys:
        raise ValueError("a verifier needs at least one public key it trusts")
    return keys


def _as_checkpoint(line: dict[str, Any]) -> SignedCheckpoint:
    return SignedCheckpoint(line["tree_size"], line["root"], line["time"], line["signature"], line["public_key"])


def verify_export(
    path: Path, public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey], *, extra_sizes: tuple[int, ...] = ()
) -> ExportReport:
    """Check a whole export against the key(s) trusted; ``extra_sizes`` are tree sizes whose roots the
    caller also needs."""
    trusted = [public_key_hex(key) for key in _keys(public_key)]
    rotations: list[tuple[int, Any]] = []
    report = ExportReport()
    appender = TreeAppender()
    prev = GENESIS_HEX
    checkpoints: list[dict[str, Any]] = []
    for number, line in _lines(path):
        if line is None:
            report.add(None, "format", f"line {number} is not a JSON object")
        elif set(line) == ENTRY_KEYS:
            if checkpoints:
                report.add(line.get("seq"), "format", f"line {number}: entry after the checkpoints")
            seq = line["seq"]
            if seq != appender.size + 1:
                report.add(
                    seq,
                    "missing" if isinstance(seq, int) and seq > appender.size + 1 else "order",
                    f"line {number}: expected entry {appender.size + 1}, found {seq!r}",
                )
            if line["prev_hash"] != prev:
                report.add(seq, "link", "prev_hash does not match the previous entry's hash")
            body = canonical({k: v for k, v in line.items() if k != "hash"})
            try:
                computed = hashlib.sha256(bytes.fromhex(line["prev_hash"]) + body).hexdigest()
                stored = bytes.fromhex(line["hash"])
            except (ValueError, TypeError):
                report.add(seq, "format", f"line {number}: hashes are not hex")
                continue
            if computed != line["hash"]:
                report.add(seq, "hash", "content does not match its hash")
            appender.append(leaf_hash(stored))
            prev = line["hash"]
            if line["action"] == ROTATION_ACTION:
                rotations.append((seq, line["payload"]))
        elif set(line) == CHECKPOINT_KEYS:
            checkpoints.append(line)
        else:
            report.add(None, "format", f"line {number} is neither an entry nor a checkpoint")
    report.entries = appender.size
    report.head = prev
    report.checkpoints = len(checkpoints)
    # Checkpoint lines follow the entries, so their sizes are known only now: a second pass
    # over the leaves computes the roots at exactly those sizes, in constant memory.
    sizes = sorted({cp["tree_size"] for cp in checkpoints if isinstance(cp.get("tree_size"), int)} | set(extra_sizes))
    report.roots = _roots_at(path, sizes, report.entries)
    for problem in signature_problems([_as_checkpoint(cp) for cp in checkpoints], rotations, trusted):
        report.add(problem.seq, problem.kind, problem.detail)
    for cp in checkpoints:
        size = cp.get("tree_size")
        if not isinstance(size, int) or size > report.entries:
            report.add(None, "truncated", f"checkpoint of size {size} reaches past the {report.entries} entries")
        elif report.roots.get(size) != cp.get("root"):
            report.add(None, "checkpoint_root", f"checkpoint of size {size} does not match the entries")
    return report


def _roots_at(path: Path, sizes: list[int], count: int) -> dict[int, str]:
    wanted = [s for s in sizes if 0 <= s <= count]
    if not wanted:
        return {}
    roots: dict[int, str] = {}
    appender = TreeAppender()
    pending = iter(wanted)
    target = next(pending, None)
    while target == 0:
        roots[0] = appender.root().hex()
        target = next(pending, None)
    for _, line in _lines(path):
        if target is None:
            break
        if line is None or set(line) != ENTRY_KEYS:
            continue
        try:
            appender.append(leaf_hash(bytes.fromhex(line["hash"])))
        except (ValueError, TypeError):
            appender.append(leaf_hash(b""))
        while target is not None and appender.size == target:
            roots[target] = appender.root().hex()
            target = next(pending, None)
    return roots


def check_inclusion_proof(proof: dict[str, Any], public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey]) -> bool:
    """Check a ``keyong ledger prove --json`` document: signed checkpoint (by a trusted key) and Merkle path."""
    try:
        checkpoint = proof["checkpoint"]
        signer = next((key for key in _keys(public_key) if public_key_hex(key) == checkpoint["public_key"]), None)
        if signer is None or not _signature_ok(signer, checkpoint):
            return False
        if checkpoint["tree_size"] != proof["tree_size"] or checkpoint["root"] != proof["root"]:
            return False
        if proof["leaf_index"] != proof["seq"] - 1:
            return False
        path = [bytes.fromhex(p) for p in proof["path"]]
        return verify_inclusion(
            leaf_hash(bytes.fromhex(proof["entry_hash"])),
            proof["leaf_index"],
            proof["tree_size"],
            path,
            bytes.fromhex(proof["root"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


class TrustedState:
    """The last checkpoint a regulator trusted, kept in a small JSON file.

    A newer checkpoint is accepted only if the log it describes extends the trusted one: same
    root at the trusted size. Anything else — a smaller size, a different root at the same
    size, a root at the trusted size that differs — means history was rewritten or cut, and
    the state is left unchanged.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        value = json.loads(self.path.read_text(encoding="utf-8"))
        return value if isinstance(value, dict) else None

    def check(self, new: dict[str, Any], root_at_trusted_size: str | None) -> str | None:
        """``None`` when ``new`` may replace the trusted checkpoint, else the reason not to."""
        trusted = self.load()
        if trusted is None:
            return None
        if new["tree_size"] < trusted["tree_size"]:
            return f"checkpoint size {new['tree_size']} is smaller than the trusted {trusted['tree_size']}"
        if root_at_trusted_size != trusted["root"]:
            return f"the log no longer has the trusted root at size {trusted['tree_size']}: history was rewritten"
        return None

    def check_with_proof(self, new: dict[str, Any], proof: list[bytes]) -> str | None:
        """Like :meth:`check`, from an RFC 9162 consistency proof instead of the entries."""
        trusted = self.load()
        if trusted is None:
            return None
        ok = verify_consistency(
            trusted["tree_size"], new["tree_size"], proof, bytes.fromhex(trusted["root"]), bytes.fromhex(new["root"])
        )
        return None if ok else f"checkpoint of size {new['tree_size']} is not consistent with the trusted one"

    def save(self, checkpoint: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({k: checkpoint[k] for k in sorted(CHECKPOINT_KEYS)}, indent=2), encoding="utf-8")
        tmp.replace(self.path)


def _witnessed(
    note_path: Path, policy_path: Path | None, keys: Sequence[Ed25519PublicKey]
) -> tuple[Checkpoint, list[str]]:
    """The checkpoint a signed note carries, once the log's signature (by one of the trusted keys)
    and the witness quorum hold."""
    text = note_path.read_text(encoding="utf-8")
    policy = WitnessPolicy.parse(policy_path.read_text(encoding="utf-8")) if policy_path else WitnessPolicy(0, ())
    origin = text.split("\n", 1)[0]
    reason = "no trusted key"
    for key in keys:
        try:
            log = Verifier.from_public_key(origin, key)
            witnessed = policy.verify(text, log, origin=origin)
        except (NoteError, PolicyError) as exc:
            reason = str(exc)
            continue
        return witnessed.checkpoint, sorted(w.name for w in witnessed.cosignatures)
    raise ValueError(reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path, help="a `keyong ledger export` file (JSON lines)")
    parser.add_argument(
        "--public-key",
        required=True,
        action="append",
        help="instance public key: hex, PEM file or note vkey (repeat for several keys across rotations)",
    )
    parser.add_argument("--state", type=Path, help="file keeping the last trusted checkpoint")
    parser.add_argument("--proof", type=Path, help="an inclusion proof from `keyong ledger prove --json`")
    parser.add_argument("--note", type=Path, help="a checkpoint signed note (GET /ledger/checkpoint.note)")
    parser.add_argument(
        "--witnesses", type=Path, help="witness policy the note must meet ('witness' lines, 'quorum N')"
    )
    args = parser.parse_args(argv)
    if args.witnesses and not args.note:
        parser.error("--witnesses needs --note: the cosignatures travel with the checkpoint note")
    try:
        key = [load_public_key(spec) for spec in args.public_key]
    except (ValueError, OSError) as exc:
        print(f"error: cannot read the public key: {exc}", file=sys.stderr)
        return 2
    problems: list[tuple[str, str]] = []
    note_checkpoint: Checkpoint | None = None
    witnesses: list[str] = []
    if args.note:
        try:
            note_checkpoint, witnesses = _witnessed(args.note, args.witnesses, key)
        except (ValueError, OSError) as exc:
            problems.append(("note", f"the checkpoint note is not accepted: {exc}"))
    state = TrustedState(args.state) if args.state else None
    trusted = state.load() if state else None
    extra = tuple(s for s in (trusted and trusted["tree_size"], note_checkpoint and note_checkpoint.tree_size) if s)
    report = verify_export(args.export, key, extra_sizes=extra)
    for kind, detail in problems:
        report.add(None, kind, detail)
    result = report.as_json()
    cps = {
        line["tree_size"]: line for _, line in _lines(args.export) if line is not None and set(line) == CHECKPOINT_KEYS
    }
    candidate = cps[max(cps)] if cps else None
    if note_checkpoint is not None:
        # With a note, only the witnessed checkpoint may become trusted, and it must be the export's.
        candidate = cps.get(note_checkpoint.tree_size)
        if (
            candidate is None
            or candidate["root"] != note_checkpoint.root_hash.hex()
            or (report.roots.get(note_checkpoint.tree_size) != note_checkpoint.root_hash.hex())
        ):
            report.add(None, "note", f"the note's checkpoint of size {note_checkpoint.tree_size} is not the export's")
            candidate = None
        else:
            result["witnessed"] = {"tree_size": note_checkpoint.tree_size, "witnesses": witnesses}
    if state and candidate is not None and report.ok:
        reason = state.check(candidate, report.roots.get(trusted["tree_size"]) if trusted else None)
        if reason:
            report.add(None, "trusted_checkpoint", reason)
        else:
            state.save(candidate)
            result["trusted"] = {"tree_size": candidate["tree_size"], "root": candidate["root"]}
    if args.proof:
        proof_ok = check_inclusion_proof(json.loads(args.proof.read_text(encoding="utf-8")), key)
        result["proof"] = proof_ok
        if not proof_ok:
            report.add(None, "proof", "the inclusion proof does not verify")
    result["ok"] = report.ok
    result["problems"] = [p.as_json() for p in report.problems]
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
