"""The export guard: every file, stdout, stderr and file name of a job -> pass | review | block.

Why these rules (issue 7, DESIGN.md "Export guard"): raw data never leaves the domain and may not
be restored "through reversible models or algorithms" (双鸭山 public-data rules, 原始数据不出域);
个人信息保护法 第七十三条 counts a value as de-identified only when it cannot identify a person without
extra information, so a raw identifier (GB 11643-1999 公民身份号码, GB 32100-2015 统一社会信用代码,
mobiles, names ...) or a pseudonym (GB/T 37964-2019 假名化) in an output is a hard finding, also
after normalisation and inside reversible encodings (``sandbox.encodings``). Record-level outputs are
hard findings (rows matching source rows, key-like columns, microdata shape); models leave only with
a platform DP certificate (issue 8: ``sandbox.dp_results`` — signed by the instance key, naming the
job, carrying the file's SHA-256). Statistical disclosure control is soft (``sandbox.sdc``): the
agency reviews — except on answers the platform itself signed as differentially private, whose
noise, not cell thresholds, is the protection (identifier scans still run on them).

A finding's ``detail`` never echoes the offending value: the operator reads findings.
Work is vectorized per column over distinct values (pyarrow / pandas), never per cell.
"""

from __future__ import annotations

import contextlib
import io
import json
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from desensitize.fingerprints import FingerprintError, FingerprintSet, join_normalised, normalise_for_fingerprint
from desensitize.textscan import find_entities, redact
from sandbox.dp_results import check_model, signed_by_platform
from sandbox.encodings import decoded_readings
from sandbox.sdc import SdcConfig, check_table, check_text

HARD, SOFT = "hard", "soft"
TABULAR = {".csv", ".parquet", ".json"}
TEXT = {".txt", ".md"}
IMAGES = {".png", ".svg"}
ALLOWED = TABULAR | TEXT | IMAGES
MODELS = {".pt", ".pth", ".pkl", ".pickle", ".joblib", ".onnx", ".safetensors", ".h5", ".ckpt"}
ARCHIVES = {".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst"}
STREAMS = ("<stdout>", "<stderr>", "<file names>")


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    file: str
    location: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Per-instance limits; defaults chosen for aggregate outputs."""

    max_files: int = 20
    max_file_bytes: int = 200 * 1024 * 1024
    max_total_bytes: int = 500 * 1024 * 1024
    #: Output rows matching source rows (or QI tuples) tolerated before blocking (coincidences in tiny tables).
    max_matching_rows: int = 2
    #: A column is key-like when it has at least this many rows and this share of distinct values.
    keylike_min_rows: int = 100
    keylike_distinct_share: float = 0.9
    #: Microdata shape: this many rows and at least this many columns named as a source's columns.
    microdata_min_rows: int = 500
    microdata_min_source_columns: int = 3
    log_excerpt_bytes: int = 4096
    #: A certified model whose membership-inference AUC exceeds this goes to review (issue 8).
    max_mia_auc: float = 0.6
    sdc: SdcConfig = field(default_factory=SdcConfig)


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: str
    findings: list[Finding]

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [f.as_json() for f in self.findings]}


def verdict_of(findings: Iterable[Finding]) -> str:
    """block if any hard finding, review if only soft ones, pass if none."""
    severities = {f.severity for f in findings}
    return "block" if HARD in severities else "review" if SOFT in severities else "pass"


# --- reading outputs ------------------------------------------------------------------------------


def read_table(path: Path) -> pd.DataFrame:
    """A tabular output as strings-or-numbers; JSON is flattened to rows of scalars."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path).to_pandas()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip", engine="python")
    data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        try:
            return pd.DataFrame(data)
        except ValueError:
            pass
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.json_normalize(data)
    return pd.DataFrame({"value": _json_scalars(data)})


def _json_scalars(data: Any) -> list[str]:
    out: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            out.append(str(item))
    return out


def _numeric_like(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV cells read as strings: columns that are wholly numeric become numbers (for SDC and shape)."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
            sample = series.dropna().head(200).astype(str)
            if sample.empty or not sample.str.fullmatch(r"\s*-?[0-9.eE+-]*\s*").all():
                continue  # text columns: a cheap sample test before converting a million cells
            if pd.to_numeric(sample.replace("", np.nan), errors="coerce").isna().sum() > (sample == "").sum():
                continue  # "1930-1939" passes the character test but is no number
            numbers = pd.to_numeric(series.replace("", np.nan), errors="coerce")
            if numbers.notna().sum() == series.replace("", np.nan).notna().sum() and numbers.notna().any():
                out[column] = numbers
    return out


# --- value checks ---------------------------------------------------------------------------------


def _as_strings(series: pd.Series) -> pd.Series:
    """Distinct non-empty string forms of a column (integers without '.0')."""
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.dropna()
        whole = values[np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 2**53)]
        return pd.Series(whole.astype("int64").astype(str).unique(), dtype=object)
    if pd.api.types.is_bool_dtype(series.dtype):
        return pd.Series([], dtype=object)
    return pd.Series(series.dropna().astype(str).unique(), dtype=object)


def _runs(values: pd.Series) -> pd.Series:
    """Tokens inside strings: separator-split pieces and ASCII alnum runs of the normalised text."""
    if values.empty:
        return pd.Series([], dtype=object)
    array = pa.array(values.tolist(), type=pa.large_string())
    spaced = pc.list_flatten(pc.split_pattern_regex(array, r"[\s,;|:=/\\，、；：。<>\"'()\[\]{}]+"))
    pieces = pc.list_flatten(pc.split_pattern_regex(array, r"[^\p{L}\p{N}]+"))
    runs = pc.list_flatten(pc.split_pattern_regex(normalise_for_fingerprint(array), r"[^0-9a-z]+"))
    both = pa.concat_arrays([a.cast(pa.large_string()) for a in (spaced, pieces, runs)])
    both = pc.unique(pc.filter(both, pc.greater_equal(pc.utf8_length(both), 2)))
    return pd.Series(both.to_pylist(), dtype=object)


# Identifiers hidden in decimals ("0.13812345678", "5234.1308616635"): the recognizers read a
# decimal's digits as a measurement (a mean's fractional digits look like a phone number one time in
# a hundred), so known values written that way are left to the fingerprints. Only the all-digit
# identifier lengths (mobile numbers, GB 11643 resident ids without an X) are probed, and only up to
# DECIMAL_PROBE_CAP distinct decimals per column or text: beyond that chance matches against a large
# dataset's fingerprints become likely, and a table that long goes to review by the row cap anyway.
IDENTIFIER_DIGITS = (11, 18)
DIGITS_OF_DECIMALS = "raw identifier value(s) written as the digits of decimal numbers, of dataset"
DECIMAL_PROBE_CAP = 10_000
_DECIMAL_IN_TEXT = r"^[+\-]?[0-9]*\.[0-9]+(?:[eE][+\-]?[0-9]{1,3})?$"


def _digit_forms(numbers: Iterable[float]) -> pd.Series:
    """Identifier-length digit strings of decimals: integer part, fraction, significant digits.

    A decimal drops its trailing zeros (phone 13086166350 written as 0.1308616635), so a string one
    digit short is also tried with a zero appended."""
    forms: set[str] = set()
    for number in numbers:
        mantissa = repr(float(number)).split("e")[0].lstrip("-")
        whole, _, fraction = mantissa.partition(".")
        for digits in (whole, fraction, (whole + fraction).lstrip("0")):
            if len(digits) in IDENTIFIER_DIGITS:
                forms.add(digits)
            elif len(digits) + 1 in IDENTIFIER_DIGITS:
                forms.add(digits + "0")
    return pd.Series(sorted(forms), dtype=object)


def _decimals(series: pd.Series) -> np.ndarray:
    """Distinct finite non-whole values of a float column, or none past the probe cap."""
    values = series.dropna().unique()
    values = values[np.isfinite(values) & (values != np.floor(values))]
    return values if len(values) <= DECIMAL_PROBE_CAP else values[:0]


def _decimals_in_texts(values: pd.Series) -> np.ndarray:
    """Distinct decimals written inside strings ("均值 17563.1308616635"), or none past the probe cap."""
    if values.empty:
        return np.array([], dtype=np.float64)
    array = pa.array(values.astype(str).tolist(), type=pa.large_string())
    pieces = pc.list_flatten(pc.split_pattern_regex(array, r"[^0-9.eE+\-]+"))
    found = pc.unique(pc.filter(pieces, pc.match_substring_regex(pieces, _DECIMAL_IN_TEXT)))
    if len(found) == 0 or len(found) > DECIMAL_PROBE_CAP:
        return np.array([], dtype=np.float64)
    return _decimals(pd.Series(pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False)))


def _fingerprint_hits(values: pd.Series, prints: Mapping[str, FingerprintSet]) -> list[str]:
    """Names of the datasets whose raw or pseudonymized values occur among ``values``."""
    if values.empty:
        return []
    return [name for name, fp in prints.items() if bool(fp.contains_values(values).any())]


def _scan_texts(
    values: pd.Series,
    prints: Mapping[str, FingerprintSet],
    *,
    file: str,
    location: str,
    names: Sequence[str],
    recognize: bool = True,
    decimals: bool = True,
) -> list[Finding]:
    """Recognizers and fingerprints over distinct strings, their tokens and their decoded readings.

    ``recognize=False`` (measurements with decimals) keeps the exact-value checks only: digits of a
    mean pass a Luhn check by chance, a dataset's own values do not. ``decimals=False``: the caller
    probes the decimals itself (a measured column, as numbers)."""
    findings: list[Finding] = []
    if values.empty:
        return findings
    decoded = decoded_readings(values)
    direct = pd.concat([values, decoded], ignore_index=True)
    spans = (
        find_entities(pd.concat([values, decoded_readings(values, reversals=False)], ignore_index=True), names=names)
        if recognize
        else []
    )
    if spans:
        kinds = sorted({s.entity_type for s in spans})
        encoded = any(s.row >= len(values) for s in spans)
        findings.append(
            Finding(
                "identifier.recognized",
                HARD,
                file,
                location,
                f"{len(spans)} direct identifier(s) of type {', '.join(kinds)}"
                + (" (some encoded)" if encoded else ""),
            )
        )
    tokens = _runs(direct)
    hidden = _digit_forms(_decimals_in_texts(values)) if decimals else None
    candidates = pd.concat([direct, tokens, hidden], ignore_index=True)
    for name in _fingerprint_hits(candidates, prints):
        findings.append(
            Finding(
                "identifier.fingerprint",
                HARD,
                file,
                location,
                f"raw or pseudonymized identifier value(s) of dataset {name} (after normalisation or decoding)",
            )
        )
    return findings


def _split_cells(
    frame: pd.DataFrame, measures: Collection[Any], prints: Mapping[str, FingerprintSet], file: str
) -> list[Finding]:
    """Values split across adjacent cells of a row: neighbours concatenated (pairs, triples, whole row).

    Measurements with decimals are left out (their digits glued together hit an 11-digit mobile
    by chance on large tables). Each column is factorized and its distinct cells normalised once;
    a combination is deduplicated on the cells' codes, and only its distinct rows are glued and
    hashed (:func:`join_normalised`).
    """
    if frame.shape[1] < 2 or not prints or frame.empty:
        return []
    eligible = [c for c in frame.columns if c not in measures]
    if len(eligible) < 2:
        return []
    columns = [_normalised_cells(frame[c]) for c in eligible]
    combos = [list(range(i, i + w)) for w in (2, 3) for i in range(len(columns) - w + 1)]
    if len(columns) > 3:
        combos.append(list(range(len(columns))))
    glued: list[pa.Array] = []
    for combo in combos:
        rows = _distinct_rows([columns[i][0] for i in combo])
        glued.append(join_normalised([columns[i][1].take(pa.array(columns[i][0][rows])) for i in combo]))
    values = pa.concat_arrays([g.cast(pa.large_string()) for g in glued])
    return [
        Finding(
            "identifier.split_cells",
            HARD,
            file,
            "adjacent cells",
            f"identifier value(s) of dataset {name} split across adjacent cells of a row",
        )
        for name, fp in prints.items()
        if bool(fp.contains_normalised(values).any())
    ]


def _normalised_cells(series: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """A column as (code per row, ``fp-norm-1`` of each distinct cell text); a null reads as ''."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = _cell_text(pd.Series(uniques, dtype=series.dtype if len(uniques) else object))
    strings = pa.array([*texts.astype(str).tolist(), ""], type=pa.large_string())
    return np.where(codes < 0, len(uniques), codes), normalise_for_fingerprint(strings)


def _distinct_rows(codes: Sequence[np.ndarray]) -> np.ndarray:
    """The first row of each distinct combination of the columns' codes."""
    key = codes[0].astype(np.int64)
    for column in codes[1:]:
        width = int(column.max()) + 1
        if int(key.max()) + 1 > (2**62) // width:
            key = pd.factorize(key)[0].astype(np.int64)  # re-number before the product overflows
        key = key * width + column
    groups, distinct = pd.factorize(key)
    first = np.empty(len(distinct), dtype=np.int64)
    first[groups[::-1]] = np.arange(len(groups) - 1, -1, -1)  # the last write per group is its first row
    return first


def _is_measure(series: pd.Series) -> bool:
    """A float column with non-whole values: a measurement (a mean, a rate), not a code or a count."""
    return pd.api.types.is_float_dtype(series.dtype) and not bool((series.dropna() % 1 == 0).all())


def _cell_text(series: pd.Series) -> pd.Series:
    """Cells as strings for gluing: integers without '.0', nulls as ''."""
    if pd.api.types.is_float_dtype(series.dtype) and bool((series.dropna().abs() < 2**53).all()):
        return series.astype("Int64").astype(str).fillna("").replace("<NA>", "")
    return series.astype(str).where(series.notna(), "")


def _record_level(
    frame: pd.DataFrame, prints: Mapping[str, FingerprintSet], file: str, config: GuardConfig
) -> list[Finding]:
    findings: list[Finding] = []
    n = len(frame)
    for name, fp in prints.items():
        for kind in ("rows_raw", "rows_desensitized", "qi_rows_raw", "qi_rows_desensitized"):
            try:
                wanted = fp.row_columns(kind)
                if not wanted:
                    continue
                if not all(c in frame.columns for c in wanted) and len(frame.columns) != len(wanted):
                    continue
                hits = int(fp.contains_rows(frame.astype(object).where(frame.notna(), None), kind).sum())
            except (FingerprintError, KeyError, ValueError, TypeError):
                continue
            if hits > config.max_matching_rows:
                findings.append(
                    Finding(
                        "record.matching_rows",
                        HARD,
                        file,
                        "rows",
                        f"{hits} row(s) match {kind.replace('_', ' ')} of dataset {name}",
                    )
                )
        source_columns = set(fp.row_columns("rows_desensitized")) | set(fp.row_columns("rows_raw"))
        shared = [c for c in frame.columns if str(c) in source_columns]
        if n >= config.microdata_min_rows and len(shared) >= config.microdata_min_source_columns:
            findings.append(
                Finding(
                    "record.microdata_shape",
                    HARD,
                    file,
                    "table",
                    f"{n} rows carrying {len(shared)} columns of dataset {name}: record-level data",
                )
            )
    if n >= config.keylike_min_rows:
        for column in frame.columns:
            series = frame[column]
            if _is_measure(series):
                continue  # continuous measures are naturally distinct
            if series.nunique(dropna=True) >= config.keylike_distinct_share * n:
                findings.append(
                    Finding(
                        "record.key_like_column",
                        HARD,
                        file,
                        f"column {column}",
                        f"mostly distinct values over {n} rows: a record key",
                    )
                )
    return findings


def _check_frame(
    frame: pd.DataFrame,
    prints: Mapping[str, FingerprintSet],
    file: str,
    names: Sequence[str],
    config: GuardConfig,
    *,
    statistical: bool = True,
) -> list[Finding]:
    findings: list[Finding] = []
    header = pd.Series([str(c) for c in frame.columns], dtype=object)
    findings += _scan_texts(header, prints, file=file, location="header", names=names)
    typed = _numeric_like(frame)
    measures = {column for column in frame.columns if _is_measure(typed[column])}
    for column in frame.columns:
        series = typed[column]
        measured = column in measures
        findings += _scan_texts(
            _as_strings(frame[column]),
            prints,
            file=file,
            location=f"column {column}",
            names=names,
            recognize=not measured,
            decimals=not measured,
        )
        if measured:
            findings += [
                Finding("identifier.fingerprint", HARD, file, f"column {column}", f"{DIGITS_OF_DECIMALS} {name}")
                for name in _fingerprint_hits(_digit_forms(_decimals(series)), prints)
            ]
    findings += _split_cells(frame, measures, prints, file)
    if statistical:
        findings += _record_level(typed, prints, file, config)
        findings += [Finding(i.rule, SOFT, file, i.location, i.detail) for i in check_table(typed, config.sdc)]
    return findings


def _text_lines(text: str) -> pd.Series:
    return pd.Series([line for line in text.splitlines() if line.strip()], dtype=object).drop_duplicates()


# --- the guard ------------------------------------------------------------------------------------


def judge(
    out_dir: Path,
    outputs: Sequence[Mapping[str, Any]],
    *,
    stdout: str = "",
    stderr: str = "",
    removed: Sequence[Mapping[str, Any]] = (),
    fingerprints: Mapping[str, FingerprintSet] | None = None,
    names: Iterable[str] = (),
    config: GuardConfig | None = None,
    earlier: Sequence[tuple[str, np.ndarray]] = (),
    certificate_key: Ed25519PublicKey | None = None,
    job: int | None = None,
) -> Judgement:
    """The verdict on one run: ``outputs`` as the runner listed them (files under ``out_dir``).

    ``certificate_key`` and ``job``: the instance's public key and the job's id, to accept model
    files with a valid platform certificate and DP answers the platform signed (issue 8).

    ``earlier``: (product, totals) of what was already released from the job's datasets, for the
    differencing rule (:func:`differencing_findings`).

    ``removed``: what the runner's sweep took out of the output (links, special or hidden files);
    an attempt is itself a hard finding. ``names``: known person names for the PERSON recognizer.
    """
    config = config or GuardConfig()
    prints = dict(fingerprints or {})
    names = tuple(names)
    findings: list[Finding] = []
    for item in removed:
        findings.append(
            Finding(
                "manifest.removed",
                HARD,
                str(item.get("name", "?")),
                "file",
                f"removed by the sandbox: {item.get('why')}",
            )
        )
    if len(outputs) > config.max_files:
        findings.append(
            Finding("manifest.file_count", HARD, "*", "manifest", f"{len(outputs)} files > {config.max_files}")
        )
    total = sum(int(o.get("bytes", 0)) for o in outputs)
    if total > config.max_total_bytes:
        findings.append(Finding("manifest.total_size", HARD, "*", "manifest", f"{total} bytes in all exceed the cap"))
    file_names = pd.Series([str(o["name"]) for o in outputs], dtype=object)
    stems = pd.Series([Path(n).stem for n in file_names], dtype=object)
    findings += _scan_texts(
        pd.concat([file_names, stems], ignore_index=True).drop_duplicates(),
        prints,
        file="<file names>",
        location="name",
        names=names,
    )
    for stream, text in (("<stdout>", stdout), ("<stderr>", stderr)):
        if text:
            findings += _scan_texts(_text_lines(text), prints, file=stream, location="text", names=names)
            findings += [Finding(i.rule, SOFT, stream, i.location, i.detail) for i in check_text(text, config.sdc)]
    for output in outputs:
        name = str(output["name"])
        path = out_dir / name
        suffix = Path(name).suffix.lower()
        parts = Path(name).parts
        if any(p.startswith(".") for p in parts):
            findings.append(Finding("manifest.hidden", HARD, name, "file", "hidden file"))
            continue
        if path.is_symlink() or not path.is_file():
            findings.append(Finding("manifest.special", HARD, name, "file", "not a regular file"))
            continue
        if suffix in MODELS:
            problem, certificate = check_model(name, out_dir, outputs, certificate_key, job)
            if problem is not None:
                findings.append(Finding("model.uncertified", HARD, name, "file", problem))
            elif certificate is not None:
                auc = certificate.get("mia_auc")
                if auc is None or float(auc) > config.max_mia_auc:
                    findings.append(
                        Finding(
                            "model.membership_inference",
                            SOFT,
                            name,
                            "certificate",
                            f"membership-inference AUC {auc} exceeds {config.max_mia_auc}: the model may remember "
                            "its training rows"
                            if auc is not None
                            else "no membership-inference AUC was recorded",
                        )
                    )
            continue
        if suffix in ARCHIVES or ".tar." in name.lower():
            findings.append(Finding("manifest.archive", HARD, name, "file", "archives cannot be checked"))
            continue
        if suffix not in ALLOWED:
            findings.append(Finding("manifest.type", HARD, name, "file", f"file type {suffix or '(none)'} not allowed"))
            continue
        size = path.stat().st_size
        if size > config.max_file_bytes:
            findings.append(Finding("manifest.size", HARD, name, "file", f"{size} bytes exceed the per-file cap"))
            continue
        try:
            if suffix in TABULAR:
                frame = read_table(path)
                sealed = suffix == ".json" and signed_by_platform(path, certificate_key, job)
                findings += _check_frame(frame, prints, name, names, config, statistical=not sealed)
                if earlier and not sealed:
                    totals = aggregate_totals(frame)
                    findings += differencing_findings(totals, name, earlier, config.sdc.min_cell_count)
            elif suffix in TEXT:
                text = path.read_text(encoding="utf-8", errors="replace")
                findings += _scan_texts(_text_lines(text), prints, file=name, location="text", names=names)
                findings += [Finding(i.rule, SOFT, name, i.location, i.detail) for i in check_text(text, config.sdc)]
                findings.append(Finding("sdc.free_text", SOFT, name, "file", "free-text documents are always reviewed"))
            else:
                findings += _check_image(path, prints, name, names)
        except (ValueError, OSError, pa.ArrowException, UnicodeError, json.JSONDecodeError) as exc:
            findings.append(
                Finding("manifest.unreadable", HARD, name, "file", f"cannot be read as {suffix}: {type(exc).__name__}")
            )
    return Judgement(verdict_of(findings), findings)


def _check_image(path: Path, prints: Mapping[str, FingerprintSet], name: str, names: Sequence[str]) -> list[Finding]:
    """Images always go to review; their embedded text (SVG text, PNG text chunks) is scanned too."""
    findings = [Finding("sdc.image", SOFT, name, "file", "images are always reviewed")]
    raw = path.read_bytes()
    if path.suffix.lower() == ".png" and not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return [Finding("manifest.type", HARD, name, "file", "not a PNG image")]
    text = raw.decode("utf-8", errors="ignore")
    if path.suffix.lower() == ".png":
        text = "\n".join(_png_texts(raw))
    findings += _scan_texts(_text_lines(text), prints, file=name, location="embedded text", names=names)
    return findings


def _png_texts(raw: bytes) -> list[str]:
    """The payloads of every non-image chunk of a PNG (text chunks, unknown chunks): where text hides."""
    texts: list[str] = []
    at = 8
    while at + 8 <= len(raw):
        length = int.from_bytes(raw[at : at + 4], "big")
        kind = raw[at + 4 : at + 8]
        body = raw[at + 8 : at + 8 + length]
        if kind not in (b"IHDR", b"IDAT", b"IEND", b"PLTE"):
            if kind == b"zTXt" and b"\x00" in body:
                with contextlib.suppress(zlib.error):
                    body = body.split(b"\x00", 1)[0] + b"\n" + zlib.decompress(body.split(b"\x00", 1)[1][1:])
            texts.extend(body.decode("utf-8", errors="ignore").replace("\x00", "\n").splitlines())
        at += 12 + length
    if at < len(raw):  # bytes after the last chunk
        texts.extend(raw[at:].decode("utf-8", errors="ignore").splitlines())
    return texts


#: Tables up to this many rows count every whole-number cell as a total; larger ones only their column sums.
TOTALS_SMALL_TABLE_ROWS = 20
#: At most this many totals are kept per file (a huge table's cells are not totals).
MAX_TOTALS = 10_000

#: ``released(dataset) -> [(product name, [artifact paths])]``: what was already released from a dataset.
Released = Callable[[str], Sequence[tuple[str, Sequence[Path]]]]


def aggregate_totals(frame: pd.DataFrame, *, small_table_rows: int = TOTALS_SMALL_TABLE_ROWS) -> np.ndarray:
    """The totals an aggregate output states: whole, non-negative numbers of a small table's cells, and
    the column sums of every whole-number column (the total a reader can always compute)."""
    found: list[np.ndarray] = []
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        values = values[values.notna()]
        if values.empty or len(values) < 0.9 * len(frame):
            continue
        numbers = values.to_numpy(dtype=np.float64)
        if not (np.all(numbers >= 0) and np.all(numbers == np.floor(numbers))):
            continue
        if len(frame) <= small_table_rows:
            found.append(numbers)
        found.append(np.array([numbers.sum()]))
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(found).astype(np.int64))[:MAX_TOTALS]


def totals_of_files(paths: Iterable[Path]) -> np.ndarray:
    """The totals of a released product's tabular artifacts (unreadable or non-tabular files give none)."""
    found = [np.zeros(0, dtype=np.int64)]
    for path in paths:
        if path.suffix.lower() in TABULAR and path.is_file():
            try:
                found.append(aggregate_totals(read_table(path)))
            except (ValueError, OSError, pa.ArrowException, UnicodeError, json.JSONDecodeError):
                continue
    return np.unique(np.concatenate(found))


def differencing_findings(
    totals: np.ndarray, file: str, earlier: Sequence[tuple[str, np.ndarray]], threshold: int
) -> list[Finding]:
    """Totals that, with a total already released from the same dataset (by any operator), isolate a group
    smaller than ``threshold``: two totals of at least ``threshold`` whose difference is between 1 and
    ``threshold - 1`` (two filters that differ by a handful of people). A soft finding naming the
    earlier product; the reviewer decides whether the two really describe nested groups.
    """
    findings: list[Finding] = []
    mine = totals[totals >= threshold]
    if len(mine) == 0:
        return findings
    for product, released in earlier:
        theirs = np.sort(released[released >= threshold])
        if len(theirs) == 0:
            continue
        near = np.searchsorted(theirs, mine + threshold, side="left") - np.searchsorted(
            theirs, mine - threshold, side="right"
        )
        equal = np.searchsorted(theirs, mine, side="right") - np.searchsorted(theirs, mine, side="left")
        hits = int(((near - equal) > 0).sum())
        if hits:
            findings.append(
                Finding(
                    "sdc.differencing",
                    SOFT,
                    file,
                    "totals",
                    f"{hits} total(s) differ from totals released in product {product!r} by fewer than {threshold}: "
                    "together they may isolate a group below the threshold",
                )
            )
    return findings


def redacted_log(
    stdout: str,
    stderr: str,
    *,
    fingerprints: Mapping[str, FingerprintSet] | None = None,
    names: Iterable[str] = (),
    limit: int = 4096,
) -> str:
    """What the operator may read of its logs: recognized entities redacted, lines with fingerprint
    hits withheld, truncated to ``limit`` bytes (a traceback is an output too)."""
    lines = (stdout.splitlines()[-200:] if stdout else []) + (
        ["--- stderr ---", *stderr.splitlines()[-200:]] if stderr else []
    )
    if not lines:
        return ""
    series = pd.Series(lines, dtype=object)
    cleaned = redact(series, names=names, workers=1)
    prints = dict(fingerprints or {})
    if prints:
        bad = np.zeros(len(series), dtype=bool)
        for i, line in enumerate(lines):  # bounded: at most 401 lines
            pieces = pd.concat([pd.Series([line], dtype=object), _runs(pd.Series([line], dtype=object))])
            pieces = pd.concat([pieces, decoded_readings(pieces)], ignore_index=True)
            bad[i] = bool(_fingerprint_hits(pieces, prints))
        cleaned = cleaned.where(~bad, "<line withheld: dataset value>")
    text = "\n".join(cleaned.astype(str).tolist())
    data = text.encode("utf-8")
    if len(data) > limit:
        text = data[-limit:].decode("utf-8", errors="ignore")
        text = "[…truncated]\n" + text
    return text


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """CSV bytes of a frame (tests and the bench write outputs with it)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


__all__ = [
    "Finding",
    "GuardConfig",
    "Judgement",
    "Released",
    "aggregate_totals",
    "differencing_findings",
    "judge",
    "read_table",
    "redacted_log",
    "totals_of_files",
    "verdict_of",
]
