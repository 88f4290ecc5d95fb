"""Guard fingerprints: keyed hashes of what must never leave the sandbox, in a form probed fast.

Why: a sandbox mounts only the desensitized copy, but an operator's job can still try to export
what it should not — raw identifiers it reconstructed or found, the pseudonyms themselves (person
keys are for joining inside, not for carrying out), or individual records, raw or desensitized
(双鸭山市公共数据管理暂行办法 第五十四条: 不得将原始数据资源导出授权运营平台; 第三十五条 原始数据不出域).
The export guard must recognise those in an output without holding the raw data, so this module
keeps, outside every sandbox, only keyed 64-bit hashes:

* ``values``: the raw values of every direct-identifier column (IDs, names, phones, addresses,
  e-mails, cards, USCCs, plates …; values under 2 characters skipped) and the pseudonyms of the
  desensitized copy;
* ``qi_rows_raw`` / ``qi_rows_desensitized``: quasi-identifier tuples (birth date, gender,
  region …) of the raw and of the desensitized table;
* ``rows_raw`` / ``rows_desensitized``: whole rows of both;
* ``fragments``: the first and last 10, 12 and 16 hex digits of every pseudonym (red team 23, F7: a
  pseudonym cut to 48 bits is still a person key of the table; the guard probes an output's hex pieces
  and ``int(prefix, 16)`` numbers against them, hits weighed against chance).

Values are normalised before hashing (version ``fp-norm-1``: NFKC, so full-width digits become
ASCII; everything but letters and digits removed — spaces, hyphens, punctuation, symbols; lower
case; a +86/0086 prefix dropped from mobile numbers; ``5200.0`` read as ``5200``), so "138 0279
0360", "１３８-０２７９-０３６０" and "+86 13802790360" all probe as the same number. Hashes are
SipHash-2-4 (``pandas.util.hash_array``, vectorized, ~0.1 s per million strings) keyed with a
16-character key derived from the instance pepper by HMAC: without the pepper the set is useless
— no dictionary of ID numbers can be hashed against it — and the key is never written to disk.
Each kind is a sorted array of distinct uint64, probed with ``np.searchsorted``. The hashing
itself (normalisation, SipHash, row hashes) is ``desensitize.fingerprint_hashes``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.fingerprint_hashes import (
    DEFAULT_LENGTHS,
    FRAGMENT_LENGTHS,
    LENGTH_CLASSES,
    MIN_VALUE_CHARS,
    FingerprintError,
    RawPrints,
    class_lengths,
    column_hashes,
    column_prints,
    combine_rows,
    combined_lengths,
    distinct_text,
    fingerprint_key,
    fragments_of,
    join_normalised,
    long_distinct,
    member,
    normalise_for_fingerprint,
    raw_column_hashes,
    raw_prints,
    siphash,
    sorted_unique,
    value_lengths,
)
from desensitize.forking import Forked, on_threads, worth_forking
from desensitize.pseudonym_pieces import CopyPrints, picked_fragments, picked_hashes
from desensitize.transforms import arrow_strings, as_text

__all__ = [
    "DEFAULT_LENGTHS",
    "FRAGMENTS",
    "FRAGMENT_LENGTHS",
    "IDENTIFIER_TYPES",
    "KINDS",
    "LENGTH_CLASSES",
    "MIN_VALUE_CHARS",
    "NORMALISATION_VERSION",
    "FingerprintError",
    "FingerprintSet",
    "RawPrints",
    "fingerprint_key",
    "join_normalised",
    "normalise_for_fingerprint",
    "raw_column_hashes",
    "raw_prints",
    "value_lengths",
]

NORMALISATION_VERSION = "fp-norm-1"
KINDS = ("values", "qi_rows_raw", "qi_rows_desensitized", "rows_raw", "rows_desensitized")
ROW_KINDS = KINDS[1:]
#: Pieces of the pseudonyms (their first and last ``FRAGMENT_LENGTHS`` hex digits, red team 23 F7); a set
#: saved before them has none (it loads, and finds no fragment).
FRAGMENTS = "fragments"

#: Column types whose raw values identify a person or an entity directly.
IDENTIFIER_TYPES = frozenset(
    {
        "cn_resident_id", "passport", "travel_permit", "bank_card", "person_name", "cn_phone", "cn_landline",
        "email", "ip_address", "address", "license_plate", "uscc", "biometric",
    }
)  # fmt: skip

_FORMAT = "keyong-fingerprints"
_KEY_CHECK = "keyong-fingerprint-key-check"
_MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(slots=True)
class FingerprintSet:
    """Sorted distinct keyed hashes per kind, the columns each kind was built from, and the key (never saved)."""

    arrays: dict[str, np.ndarray]
    columns: dict[str, list[str]]
    _key: str = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        raw: pd.DataFrame,
        desensitized: pd.DataFrame,
        column_types: Mapping[str, str | None],
        *,
        pepper: bytes,
        pseudonym_columns: Sequence[str] = (),
        quasi_identifier_columns: Sequence[str] = (),
        identifier_types: Iterable[str] = IDENTIFIER_TYPES,
        progress: Callable[[str, int, int], None] | None = None,
        workers: int | None = None,
        raw_hashes: Mapping[str, tuple[np.ndarray, np.ndarray]] | RawPrints | None = None,
        early: CopyPrints | None = None,
        kept: np.ndarray | None = None,
    ) -> FingerprintSet:
        """Fingerprints of a raw table and its desensitized copy.

        ``column_types`` are the raw columns' types (which columns are direct identifiers);
        ``pseudonym_columns`` the desensitized columns holding pseudonyms;
        ``quasi_identifier_columns`` the columns of the quasi-identifier tuples (present in both
        frames). Row order and row count of the two frames may differ (suppressed rows). ``workers=1``
        keeps the work in this process (default: fork for large tables on a machine with two cores).
        ``raw_hashes`` are the raw side's column hashes when the caller computed them already
        (:func:`raw_column_hashes`, e.g. on the other core while it transformed the table), or
        :func:`raw_prints` with the identifier columns' normalised text, which spares normalising
        them again for the value lengths. ``early`` (``desensitize.pseudonym_pieces``), ``kept`` (the raw
        rows the copy holds): fragment prints and hashes of the copy's columns picked, not hashed again."""
        key = fingerprint_key(pepper)
        identifier_types = frozenset(identifier_types)
        raw_columns = [str(c) for c in raw.columns]
        des_columns = [str(c) for c in desensitized.columns]
        qi = [c for c in quasi_identifier_columns if c in raw.columns and c in desensitized.columns]
        identifiers = [c for c in raw_columns if column_types.get(c) in identifier_types]
        pseudonyms = [c for c in pseudonym_columns if c in desensitized.columns]
        total = len(raw_columns) + len(des_columns) + 1

        def note(done: int) -> None:
            if progress is not None:
                progress("fingerprints", done, total)

        note(0)
        raw_side, des_side, prints, texts = _hash_both_sides(
            raw, desensitized, pepper, key, pseudonyms=pseudonyms, identifiers=identifiers, raw_hashes=raw_hashes,
            workers=workers, note=note, picked=picked_hashes(early, kept, len(raw), len(desensitized)),
        )  # fmt: skip
        note(total - 1)

        value_parts = [raw_side[c][0][raw_side[c][1]] for c in identifiers]
        value_parts += [des_side[c][0][des_side[c][1]] for c in pseudonyms]

        def lengths_and_fragments() -> tuple[dict[str, dict[str, int]], np.ndarray, dict[str, int]]:
            picked = picked_fragments(early.pieces if early is not None else None, pseudonyms, kept, len(desensitized))
            return _lengths_and_fragments(raw, identifiers, pseudonyms, prints, texts, key, picked)

        tasks: dict[str, Callable[[], Any]] = {  # the largest first
            "values": lambda: sorted_unique(value_parts),
            "lengths": lengths_and_fragments,
            **_row_tasks(raw_side, des_side, raw_columns, des_columns, qi, (len(raw), len(desensitized))),
        }
        done = on_threads(tasks, threads=2 if worth_forking(len(raw), workers) else 1)
        lengths, fragment_prints, fragments = done.pop("lengths")
        arrays = {name: done[name] for name in KINDS if name != FRAGMENTS}
        arrays[FRAGMENTS] = fragment_prints
        columns = {
            "values": identifiers + [f"{c} (pseudonyms)" for c in pseudonyms],
            "qi_rows_raw": list(qi),
            "qi_rows_desensitized": list(qi),
            "rows_raw": raw_columns,
            "rows_desensitized": des_columns,
        }
        note(total)
        columns[FRAGMENTS] = [f"{c} (pseudonym fragments)" for c in pseudonyms]
        meta = {
            "value_columns": {"raw": identifiers, "pseudonyms": pseudonyms},
            "lengths": lengths,
            "fragments": fragments,
        }
        return cls(arrays, columns, key, meta)

    # -- probing -----------------------------------------------------------------------------

    def hash_values(self, values: Iterable[Any] | pd.Series) -> np.ndarray:
        """Keyed hashes of values, normalised exactly as the set's values were (uint64)."""
        series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        if series.dtype == object:
            series = series.astype("str")
        hashes, _ = column_hashes(series.reset_index(drop=True), self._key)
        return hashes

    def contains_values(self, values: Iterable[Any] | pd.Series) -> np.ndarray:
        """Per value: is it (after normalisation) a raw identifier or a pseudonym of the set.

        Values shorter than two characters after normalisation are never reported.
        """
        series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        if series.dtype == object:
            series = series.astype("str")
        hashes, long_enough = column_hashes(series.reset_index(drop=True), self._key)
        return np.asarray(member(self.arrays["values"], hashes) & long_enough)

    def contains_normalised(self, normalised: pa.Array) -> np.ndarray:
        """:meth:`contains_values` for strings already in ``fp-norm-1`` (see :func:`join_normalised`)."""
        hashes, long_enough = column_hashes(pd.Series(normalised, dtype="str"), self._key, canonical=True)
        return np.asarray(member(self.arrays["values"], hashes) & long_enough)

    def contains_fragments(self, candidates: pa.Array) -> np.ndarray:
        """Per candidate (``fp-norm-1`` text, see ``fragment_candidates``): is it a pseudonym's first or last
        10, 12 or 16 hex digits."""
        held = self.arrays.get(FRAGMENTS)
        if held is None or not len(held) or not len(candidates):
            return np.zeros(len(candidates), dtype=bool)
        return np.asarray(member(held, siphash(candidates, self._key)))

    def fragment_chance(self, candidates: pa.Array) -> float:
        """Expected chance hits of these candidates (random hex against the set's fragments of each length)."""
        counts = {int(n): int(c) for n, c in (self.meta.get("fragments") or {}).items()}
        if not counts or not len(candidates):
            return 0.0
        lengths, times = np.unique(pc.utf8_length(candidates).to_numpy(zero_copy_only=False), return_counts=True)
        return float(sum(t * counts.get(int(n), 0) / 16.0 ** int(n) for n, t in zip(lengths, times, strict=True)))

    def row_columns(self, kind: str) -> list[str]:
        """The columns, in order, whose cells make up a row hash of ``kind``."""
        if kind not in ROW_KINDS:
            raise FingerprintError(f"unknown row kind {kind!r} (known: {', '.join(ROW_KINDS)})")
        return list(self.columns[kind])

    def hash_rows(self, frame: pd.DataFrame, kind: str) -> np.ndarray:
        """Row hashes of ``frame`` as ``kind`` builds them.

        The frame holds the kind's columns by name or, when it has exactly as many columns, in
        the same order under other names (an export may rename headers).
        """
        wanted = self.row_columns(kind)
        if not wanted:
            return np.zeros(len(frame), dtype=np.uint64)
        if all(c in frame.columns for c in wanted):
            cells = [frame[c] for c in wanted]
        elif len(frame.columns) == len(wanted):
            cells = [frame.iloc[:, i] for i in range(len(wanted))]
        else:
            missing = [c for c in wanted if c not in frame.columns]
            raise FingerprintError(f"{kind}: the frame lacks columns {missing}")
        hashes = [column_hashes(c.reset_index(drop=True), self._key)[0] for c in cells]
        return combine_rows(hashes, len(frame))

    def contains_rows(self, frame: pd.DataFrame, kind: str) -> np.ndarray:
        """Per row of ``frame``: is it, after normalisation, a row (or quasi-identifier tuple) of ``kind``."""
        if not self.row_columns(kind):
            return np.zeros(len(frame), dtype=bool)
        return member(self.arrays[kind], self.hash_rows(frame, kind))

    def contains_hashes(self, hashes: np.ndarray, kind: str = "values") -> np.ndarray:
        """Membership of precomputed hashes (for a guard that hashes tokens itself)."""
        if kind not in KINDS:
            raise FingerprintError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
        return member(self.arrays[kind], np.asarray(hashes, dtype=np.uint64))

    def lengths(self) -> dict[str, dict[int, int]]:
        """Per class of value (``LENGTH_CLASSES``): how many values of each length the set holds."""
        recorded = self.meta.get("lengths")
        if isinstance(recorded, dict) and recorded:
            return {c: {int(k): int(v) for k, v in counts.items()} for c, counts in recorded.items()}
        everything = max(1, len(self.arrays["values"]))
        return {c: dict.fromkeys(lengths, everything) for c, lengths in DEFAULT_LENGTHS.items()}

    def counts(self) -> dict[str, int]:
        return {kind: len(self.arrays[kind]) for kind in KINDS}

    # -- storage -----------------------------------------------------------------------------

    def _key_check(self) -> str:
        return f"{int(siphash(pa.array([_KEY_CHECK], pa.large_string()), self._key)[0]):016x}"

    def save(self, directory: Path | str) -> Path:
        """Write one ``.npy`` per kind and ``manifest.json`` (no key) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        kinds: dict[str, Any] = {}
        for kind in (*KINDS, *([FRAGMENTS] if FRAGMENTS in self.arrays else [])):
            path = directory / f"{kind}.npy"
            np.save(path, self.arrays[kind].astype("<u8"), allow_pickle=False)
            kinds[kind] = {
                "file": path.name,
                "count": len(self.arrays[kind]),
                "columns": self.columns[kind],
                "sha256": _sha256(path),
            }
        manifest = {
            "format": _FORMAT,
            "version": 1,
            "normalisation": NORMALISATION_VERSION,
            "min_value_chars": MIN_VALUE_CHARS,
            "hash": "SipHash-2-4 (pandas.util.hash_array) keyed with base64(HMAC-SHA256(pepper, "
            "'keyong-fingerprint'))[:16]; rows: splitmix64 chain over the cells' hashes in column order",
            "key_check": self._key_check(),
            "kinds": kinds,
            "meta": self.meta,
        }
        (directory / _MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path | str, pepper: bytes, *, check_key: bool = True) -> FingerprintSet:
        """Read a saved set; the pepper re-derives the key.

        A pepper other than the one the set was built with is refused (``FingerprintError``):
        a guard probing with the wrong key would find nothing and let everything through.
        ``check_key=False`` skips that check (for tests showing that such a set finds nothing).
        """
        directory = Path(directory)
        try:
            manifest = json.loads((directory / _MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FingerprintError(f"{directory}: no readable {_MANIFEST}: {exc}") from None
        if manifest.get("format") != _FORMAT or manifest.get("normalisation") != NORMALISATION_VERSION:
            raise FingerprintError(
                f"{directory}: format {manifest.get('format')!r} / normalisation {manifest.get('normalisation')!r} "
                f"is not {_FORMAT!r} / {NORMALISATION_VERSION!r}"
            )
        arrays: dict[str, np.ndarray] = {}
        columns: dict[str, list[str]] = {}
        for kind in (*KINDS, FRAGMENTS):
            entry = manifest["kinds"].get(kind)
            if entry is None and kind == FRAGMENTS:  # saved before fragments were kept
                continue
            if entry is None:
                raise FingerprintError(f"{directory}: manifest lacks kind {kind!r}")
            path = directory / entry["file"]
            if path.name != entry["file"] or not path.is_file():
                raise FingerprintError(f"{directory}: missing file {entry['file']!r}")
            if _sha256(path) != entry["sha256"]:
                raise FingerprintError(f"{path}: content does not match the manifest's sha256")
            array = np.load(path, allow_pickle=False)
            if array.dtype != np.dtype("<u8") or array.ndim != 1 or len(array) != entry["count"]:
                raise FingerprintError(f"{path}: expected {entry['count']} uint64 values")
            if len(array) > 1 and not bool(np.all(array[1:] > array[:-1])):
                raise FingerprintError(f"{path}: not sorted and distinct")
            arrays[kind] = array.astype(np.uint64, copy=False)
            columns[kind] = list(entry["columns"])
        fingerprints = cls(arrays, columns, fingerprint_key(pepper), dict(manifest.get("meta") or {}))
        if check_key and fingerprints._key_check() != manifest.get("key_check"):
            raise FingerprintError(f"{directory}: built with another pepper; probing with this one would find nothing")
        return fingerprints


_Hashes = dict[str, tuple[np.ndarray, np.ndarray]]
_Texts = dict[str, pa.Array | pa.ChunkedArray]


def _row_tasks(
    raw_side: _Hashes,
    des_side: _Hashes,
    raw_columns: list[str],
    des_columns: list[str],
    qi: list[str],
    rows: tuple[int, int],
) -> dict[str, Callable[[], np.ndarray]]:
    """The row kinds' sorted distinct hashes (whole rows, quasi-identifier tuples: none without
    quasi-identifiers), each a task for ``on_threads``; ``rows``: the raw table's and the copy's."""

    def combined(side: _Hashes, names: list[str], n: int) -> Callable[[], np.ndarray]:
        return lambda: sorted_unique([combine_rows([side[c][0] for c in names], n)])

    def none() -> np.ndarray:
        return sorted_unique([])

    return {
        "rows_raw": combined(raw_side, raw_columns, rows[0]),
        "rows_desensitized": combined(des_side, des_columns, rows[1]),
        "qi_rows_raw": combined(raw_side, qi, rows[0]) if qi else none,
        "qi_rows_desensitized": combined(des_side, qi, rows[1]) if qi else none,
    }


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def _hash_both_sides(
    raw: pd.DataFrame,
    desensitized: pd.DataFrame,
    pepper: bytes,
    key: str,
    *,
    pseudonyms: Sequence[str],
    identifiers: Sequence[str],
    raw_hashes: Mapping[str, tuple[np.ndarray, np.ndarray]] | RawPrints | None,
    workers: int | None,
    note: Callable[[int], None],
    picked: _Hashes,
) -> tuple[_Hashes, _Hashes, RawPrints, _Texts]:
    """Column hashes of the raw table (``raw_hashes`` when the caller has them already) and of the copy,
    the raw side as ``raw_prints`` gives it (without ``distinct`` when the caller gave hashes alone), and
    the text hashed of the pseudonym columns.

    The raw side and the desensitized side are independent: on a large table the raw side is hashed
    on the other core (desensitize.forking) while this process hashes the copy; ``picked``: the copy's
    columns hashed already (``desensitize.pseudonym_pieces.picked_hashes``).
    """
    raw_columns = [str(c) for c in raw.columns]

    def hash_raw() -> RawPrints:
        return raw_prints(raw, pepper, identifiers)

    given = raw_hashes is not None and all(
        c in (raw_hashes.hashes if isinstance(raw_hashes, RawPrints) else raw_hashes) for c in raw_columns
    )
    forked = Forked(hash_raw, "the raw fingerprints") if not given and worth_forking(len(raw), workers) else None
    texts: _Texts = {}  # the pseudonym columns' text, as hashed
    try:
        des_hashes: _Hashes = {}
        for done, column in enumerate((str(c) for c in desensitized.columns), start=1):
            if column in picked:
                des_hashes[column] = picked[column]
                if column in pseudonyms:  # the text hashed: canonical, every row's
                    texts[column] = pc.fill_null(arrow_strings(as_text(desensitized[column])), "")
            else:
                hashes, long_enough, text = column_prints(desensitized[column], key, canonical=column in pseudonyms)
                des_hashes[column] = (hashes, long_enough)
                if column in pseudonyms:
                    texts[column] = text
            note(done)
        if given:
            assert raw_hashes is not None
            prints = raw_hashes if isinstance(raw_hashes, RawPrints) else RawPrints(dict(raw_hashes))
        else:
            prints = forked.result() if forked is not None else hash_raw()
    finally:
        if forked is not None:
            forked.cancel()
    return prints.hashes, des_hashes, prints, texts


def _lengths_and_fragments(
    raw: pd.DataFrame,
    identifiers: list[str],
    pseudonyms: list[str],
    prints: RawPrints,
    texts: _Texts,
    key: str,
    picked: tuple[np.ndarray, dict[str, int]] | None = None,
) -> tuple[dict[str, dict[str, int]], np.ndarray, dict[str, int]]:
    """The value lengths of identifiers and pseudonyms, the pseudonyms' keyed fragments and their lengths.

    The raw identifiers' distinct normalised values come with the raw hashes (raw_prints, often from the
    other core); the pseudonyms' text is the one just hashed (canonical already). ``picked``: the
    fragments and their counts already (``desensitize.pseudonym_pieces``)."""
    raw_distinct, raw_counts = prints.distinct, prints.counts
    if raw_distinct is None or prints.identifiers != identifiers:
        raw_text = [a for c in identifiers for a in _chunks(normalise_for_fingerprint(distinct_text(raw[c])))]
        raw_distinct = long_distinct(pa.chunked_array(raw_text, type=pa.large_string()))
        raw_counts = class_lengths(raw_distinct)
    pseudonym_text = [a for c in pseudonyms for a in _chunks(texts[c])]
    lengths = combined_lengths(raw_distinct, raw_counts, pa.chunked_array(pseudonym_text, type=pa.large_string()))
    if picked is not None:
        return lengths, *picked
    pieces = fragments_of(pa.chunked_array(pseudonym_text, type=pa.large_string()).combine_chunks())
    hashed = sorted_unique([siphash(pieces, key)] if len(pieces) else [])
    per_length = pc.value_counts(pc.utf8_length(pieces)) if len(pieces) else []
    fragments = {str(item["values"].as_py()): int(item["counts"].as_py()) for item in per_length}
    return lengths, hashed, fragments
