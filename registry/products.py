"""数据产品和服务: registered on release with their lineage and an attribution that travels with them.

- 双鸭山市公共数据管理暂行办法 第五十条: products and services are registered (登记); here, when a
  release is approved, with everything needed to trace them back: operator, licence, job, the datasets
  and versions used, the code's hash, the export guard's report, the reviewers and their decisions,
  and the fee class and price the licence sets (第四十四条: 公益 free, 经营性 priced).
- 第五十二条: nothing is released without a pre-release compliance review; registration refuses a
  product whose guard verdict is ``block`` or whose reviews do not hold an approval and no rejection.
- 第四十一条: products must state the data's source and acquisition date. The attribution block
  (providers' names and codes, the creation dates of the versions used) is stored with the product
  and embedded in every delivered artifact by :func:`stamp_artifact`, so it travels with the data.
- 第四十条: an open objection suspends delivery at once; :func:`suspend_product`,
  :func:`restore_product` and :func:`withdraw_product` act inside the objection's own change so the
  product's state and the objection's record are ledgered together.

An operator sees only its own products; another's are reported as not found, so their existence
is not revealed (DESIGN.md: an operator never sees another operator's products).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, Change, NotFoundError, PermissionDeniedError, Recorder, RegistryError, require_role, text_sha256
from registry.config import RegistryConfig
from registry.models import LicenceRow, ObjectionRow, OperatorRow, ProductRow, ResourceRow, VersionRow
from registry.usage import record_usage
from registry.vocabulary import FeeClass, LicenceState, ObjectionState, ProductState, Qualification

ATTRIBUTION_KEY = b"keyong.attribution"  # Parquet schema-metadata key of the attribution block
SIDECAR_SUFFIX = ".attribution.json"  # beside any other file: <file>.attribution.json
ATTRIBUTION_RULE = "双鸭山市公共数据管理暂行办法 第四十一条: 开发的数据产品和服务应当注明数据的来源和获取日期"

# Roles that may read every product (the operator reads only its own).
_READ_ALL = ("custodian", "agency", "regulator")
_ROLES = ("custodian", "agency", "operator", "regulator")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,127}$")
_VERDICTS = ("pass", "review", "block")
_DECISIONS = ("approve", "reject")


class ProductView(BaseModel):
    """A registered product as its readers see it; ``artifacts[].path`` is relative to the home."""

    id: int
    name: str
    operator: str
    licence_id: int
    job: str
    scenario: str
    datasets: list[dict[str, Any]]  # [{"name", "version", "kind", "content_sha256", "created_at"}]
    code_sha256: str
    guard: dict[str, Any]  # {"verdict", "findings"}
    reviews: list[dict[str, Any]]  # [{"reviewer", "decision", "reason"}]
    #: Reviewers outvoted by a further reviewer (reject / changes requested): kept so the lineage shows them.
    dissent: list[dict[str, Any]] = []
    fee_class: str
    price_cents: int | None
    artifacts: list[dict[str, Any]]  # [{"name", "bytes", "sha256", "path"}]
    attribution: dict[str, Any]
    state: str
    registered_by: str
    registered_at: datetime

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _view(row: ProductRow) -> ProductView:
    lineage = row.lineage or {}
    return ProductView(
        id=row.id,
        name=row.name,
        operator=row.operator.name,
        licence_id=row.licence_id,
        job=row.job,
        scenario=row.scenario,
        datasets=list(lineage.get("datasets", [])),
        code_sha256=str(lineage.get("code_sha256", "")),
        guard=dict(lineage.get("guard", {})),
        reviews=list(lineage.get("reviews", [])),
        dissent=list(lineage.get("dissent", [])),
        fee_class=row.fee_class,
        price_cents=row.price_cents,
        artifacts=list(row.artifacts or []),
        attribution=dict(row.attribution or {}),
        state=row.state,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
    )


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# --- attribution (双鸭山 第四十一条) ------------------------------------------------------------


def build_attribution(sources: list[tuple[ResourceRow, VersionRow]]) -> dict[str, Any]:
    """The 数据来源 (providers' names and codes) and 获取日期 (creation dates of the versions used).

    ``acquisition_date`` is the latest of the versions' dates (the product reflects data as
    acquired up to that day); each source also carries its own date.
    """
    entries = [
        {
            "dataset": resource.name,
            "title": resource.title,
            "provider_name": resource.provider_name,
            "provider_code": resource.provider_code,
            "version": version.version,
            "acquisition_date": version.created_at.date().isoformat(),
        }
        for resource, version in sources
    ]
    providers: list[str] = []
    for entry in entries:
        label = f"{entry['provider_name']}（{entry['provider_code']}）"
        if label not in providers:
            providers.append(label)
    dates = sorted({entry["acquisition_date"] for entry in entries})
    return {
        "data_source": providers,
        "acquisition_date": dates[-1] if dates else "",
        "sources": entries,
        "statement": f"数据来源：{'、'.join(providers)}；获取日期：{'、'.join(dates)}",
        "rule": ATTRIBUTION_RULE,
    }


def attribution_metadata(product: ProductView) -> dict[str, Any]:
    """The block embedded in each delivered artifact: the attribution plus which product it is."""
    return {
        "product": product.name,
        "operator": product.operator,
        "licence_id": product.licence_id,
        "registered_at": product.registered_at.isoformat(),
        **product.attribution,
    }


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def stamp_artifact(path: Path, attribution: dict[str, Any]) -> None:
    """Embed ``attribution`` in the artifact so the source and date travel with the data (第四十一条).

    Parquet files carry it in their schema metadata under ``keyong.attribution`` (existing
    metadata kept; the file is rewritten atomically); SVG charts in a ``<metadata>`` element and PNG
    images in an ``iTXt`` chunk, both under the same key, where image viewers ignore it. Any other file
    (CSV, JSON, models…) gets a sidecar ``<file>.attribution.json``, since those formats have no place
    for it that every reader preserves.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"cannot stamp {path}: no such file")
    encoded = json.dumps(attribution, ensure_ascii=False, sort_keys=True)
    embedded = _embed_in_image(path, encoded)
    if embedded is not None:
        _replace_atomically(path, embedded)
        return
    if not _is_parquet(path):
        sidecar_path(path).write_text(encoded + "\n", encoding="utf-8")
        return
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = dict(table.schema.metadata or {})
    metadata[ATTRIBUTION_KEY] = encoded.encode("utf-8")
    stamped = table.replace_schema_metadata(metadata)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".stamping", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(stamped, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_OPEN = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE)
_SVG_ATTRIBUTION = re.compile(rb'<metadata id="keyong-attribution"><!\[CDATA\[(.*?)\]\]></metadata>', re.DOTALL)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _embed_in_image(path: Path, encoded: str) -> bytes | None:
    """The SVG or PNG at ``path`` with the attribution embedded; ``None`` for other files."""
    raw = path.read_bytes()
    if raw.startswith(_PNG_SIGNATURE) and raw.endswith(_png_chunk(b"IEND", b"")):
        # iTXt: keyword, NUL, no compression, method 0, empty language tag and translated keyword, UTF-8 text.
        body = ATTRIBUTION_KEY + b"\x00\x00\x00\x00\x00" + encoded.encode("utf-8")
        iend = len(raw) - 12
        return raw[:iend] + _png_chunk(b"iTXt", body) + raw[iend:]
    opening = _SVG_OPEN.search(raw) if path.suffix.lower() == ".svg" else None
    if opening is not None and b"]]>" not in encoded.encode("utf-8"):
        element = b'<metadata id="keyong-attribution"><![CDATA[' + encoded.encode("utf-8") + b"]]></metadata>"
        return raw[: opening.end()] + element + raw[opening.end() :]
    return None


def _replace_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".stamping", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _image_attribution(path: Path) -> dict[str, Any] | None:
    raw = path.read_bytes()
    if raw.startswith(_PNG_SIGNATURE):
        at, prefix = 8, ATTRIBUTION_KEY + b"\x00\x00\x00\x00\x00"
        while at + 8 <= len(raw):
            length = int.from_bytes(raw[at : at + 4], "big")
            kind, body = raw[at + 4 : at + 8], raw[at + 8 : at + 8 + length]
            if kind == b"iTXt" and body.startswith(prefix):
                found: dict[str, Any] = json.loads(body[len(prefix) :].decode("utf-8"))
                return found
            at += 12 + length
        return None
    match = _SVG_ATTRIBUTION.search(raw) if path.suffix.lower() == ".svg" else None
    return json.loads(match.group(1).decode("utf-8")) if match else None


def read_attribution(path: Path) -> dict[str, Any] | None:
    """The attribution a stamped artifact carries (Parquet or image metadata, or sidecar), or ``None``."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".svg", ".png"):
        embedded = _image_attribution(path)
        if embedded is not None:
            return embedded
    if path.is_file() and _is_parquet(path):
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        raw = metadata.get(ATTRIBUTION_KEY)
        return json.loads(raw.decode("utf-8")) if raw is not None else None
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        loaded: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
        return loaded
    return None


# --- state changes shared with objections (双鸭山 第四十条) -------------------------------------


def product_row(session: Session, name: str) -> ProductRow:
    row = session.scalar(select(ProductRow).where(ProductRow.name == name))
    if row is None:
        raise NotFoundError(f"no product named {name!r}")
    return row


def open_objections_on(session: Session, product_id: int, *, excluding: int | None = None) -> list[int]:
    """Ids of the objections still open against a product (any one of them keeps delivery stopped)."""
    query = select(ObjectionRow.id).where(
        ObjectionRow.target_kind == "product",
        ObjectionRow.target_id == product_id,
        ObjectionRow.state == ObjectionState.OPEN,
    )
    if excluding is not None:
        query = query.where(ObjectionRow.id != excluding)
    return list(session.scalars(query.order_by(ObjectionRow.id)))


def _transition(
    change: Change, row: ProductRow, to: ProductState, action: str, *, reason: str, objection: int | None
) -> None:
    """Move the product and ledger it; the reason travels as its hash, the objection by id."""
    payload: dict[str, Any] = {
        "product_id": row.id,
        "from": row.state,
        "to": str(to),
        "reason_sha256": text_sha256(reason),
    }
    if objection is not None:
        payload["objection"] = objection
    row.state = to
    change.log(action, f"product:{row.name}", payload)


def suspend_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Stop delivery at once (第四十条: 立即中止). Returns whether the state changed (ledgered then)."""
    if row.state != ProductState.AVAILABLE:
        return False
    _transition(change, row, ProductState.SUSPENDED, "product.suspended", reason=reason, objection=objection)
    return True


def restore_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Deliver again, unless it was withdrawn or another objection on it is still open."""
    if row.state != ProductState.SUSPENDED:
        return False
    if open_objections_on(change.session, row.id, excluding=objection):
        return False
    _transition(change, row, ProductState.AVAILABLE, "product.restored", reason=reason, objection=objection)
    return True


def withdraw_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Withdraw for good (第四十条: 撤回): no later restoration delivers it again."""
    if row.state == ProductState.WITHDRAWN:
        return False
    _transition(change, row, ProductState.WITHDRAWN, "product.withdrawn", reason=reason, objection=objection)
    return True


# --- the service -------------------------------------------------------------------------------


def _require_text(value: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise RegistryError(f"{what} must not be empty")
    return text


def _visible(row: ProductRow, viewer: Actor) -> bool:
    if viewer.is_host or viewer.role in _READ_ALL:
        return True
    return viewer.role == "operator" and row.operator.name == viewer.name


class Products:
    """Registration, reading and delivery of products; state changes on behalf of the agency."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    # registration ------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        operator: str,
        licence_id: int,
        job: str,
        scenario: str,
        datasets: list[dict[str, Any]],
        code_sha256: str,
        guard: dict[str, Any],
        reviews: list[dict[str, Any]],
        artifacts: list[dict[str, Any]],
        by: Actor,
        dissent: list[dict[str, Any]] | None = None,
    ) -> ProductView:
        """Register a released product (双鸭山 第五十条) once its pre-release review passed (第五十二条).

        Refused unless: the licence is active, unexpired and the operator's; every dataset (and the
        named version of it) is in the licence; the scenario is one the licence grants; the export
        guard did not block; and the reviews hold at least one approval and no rejection, none by
        the operator itself. Writes one ``product.released`` usage record per dataset (黑龙江
        第二十八条) and the ``product.registered`` ledger entry (lineage ids and hashes only).
        """
        require_role(by, "agency")
        name = _require_text(name, "product name")
        if not _NAME.match(name):
            raise RegistryError(f"product name {name!r} must be 1-128 letters, digits, CJK characters, '.', '_' or '-'")
        job = _require_text(str(job), "job")
        code_sha256 = (code_sha256 or "").lower()
        if not _SHA256.match(code_sha256):
            raise RegistryError("code_sha256 must be the 64-hex-digit SHA-256 of the job's code")
        checked_guard = self._check_guard(guard)
        checked_reviews = self._check_reviews(reviews, operator)
        checked_artifacts = self._check_artifacts(artifacts)
        if not datasets:
            raise RegistryError("a product must name the datasets (and versions) it was made from")
        now = self.config.now()

        with self.recorder.change(by) as change:
            session = change.session
            if session.scalar(select(ProductRow.id).where(ProductRow.name == name)) is not None:
                raise RegistryError(f"a product named {name!r} is already registered: choose another name")
            licence = session.get(LicenceRow, licence_id)
            if licence is None:
                raise NotFoundError(f"no licence {licence_id}")
            if licence.operator.name != operator:
                raise RegistryError(
                    f"licence {licence_id} belongs to operator {licence.operator.name!r}, not {operator!r}: "
                    "a product is registered under its own operator's licence"
                )
            if licence.state != LicenceState.ACTIVE:
                raise RegistryError(
                    f"licence {licence_id} is {licence.state}: products are registered only under an active "
                    "licence (restore or activate it first)"
                )
            if licence.valid_until < now.date():
                raise RegistryError(
                    f"licence {licence_id} expired on {licence.valid_until.isoformat()}: no product may be "
                    "registered under it"
                )
            if licence.operator.qualification != Qualification.QUALIFIED:
                raise RegistryError(
                    f"operator {operator!r} is {licence.operator.qualification}: its products are not registered "
                    "until the agency restores it"
                )
            if scenario not in (licence.scenarios or []):
                granted = ", ".join(licence.scenarios or []) or "none"
                raise RegistryError(
                    f"scenario {scenario!r} is not licensed by licence {licence_id} (granted: {granted}): "
                    "a product serves only the scenarios its licence grants"
                )
            sources = self._sources(session, licence, datasets)

            lineage_datasets = [
                {
                    "name": resource.name,
                    "version": version.version,
                    "kind": version.kind,
                    "content_sha256": version.content_sha256,
                    "created_at": version.created_at.isoformat(),
                }
                for resource, version in sources
            ]
            lineage = {
                "datasets": lineage_datasets,
                "code_sha256": code_sha256,
                "guard": checked_guard,
                "reviews": checked_reviews,
                "dissent": [
                    {
                        "reviewer": str(d.get("reviewer", "")),
                        "decision": str(d.get("decision", "")),
                        "reason": str(d.get("reason") or ""),
                    }
                    for d in dissent or []
                ],
            }
            attribution = build_attribution(sources)
            commercial = licence.fee_class == FeeClass.COMMERCIAL
            row = ProductRow(
                name=name,
                operator_id=licence.operator_id,
                licence_id=licence.id,
                job=job,
                scenario=scenario,
                lineage=lineage,
                attribution=attribution,
                fee_class=licence.fee_class,
                price_cents=licence.price_cents if commercial else None,
                artifacts=checked_artifacts,
                state=ProductState.AVAILABLE,
                registered_by=by.name,
                registered_at=now,
            )
            row.operator = licence.operator
            session.add(row)
            session.flush()
            for resource, version in sources:
                usage = record_usage(
                    session,
                    resource_id=resource.id,
                    event="product.released",
                    licence_id=licence.id,
                    operator_id=licence.operator_id,
                    scenario=scenario,
                    subject=f"product:{name}",
                    detail={"job": job, "version": version.version, "artifacts": len(checked_artifacts)},
                )
                usage.at = now
            change.log(
                "product.registered",
                f"product:{name}",
                {
                    "product_id": row.id,
                    "operator": operator,
                    "licence_id": licence.id,
                    "job": job,
                    "scenario": scenario,
                    "datasets": [
                        {"name": d["name"], "version": d["version"], "content_sha256": d["content_sha256"]}
                        for d in lineage_datasets
                    ],
                    "code_sha256": code_sha256,
                    "guard_verdict": checked_guard["verdict"],
                    "guard_sha256": _sha256_json(checked_guard),
                    "reviews": [{"reviewer": r["reviewer"], "decision": r["decision"]} for r in checked_reviews],
                    "fee_class": row.fee_class,
                    "price_cents": row.price_cents,
                    "artifacts": [
                        {"name": a["name"], "bytes": a["bytes"], "sha256": a["sha256"]} for a in checked_artifacts
                    ],
                    "attribution_sha256": _sha256_json(attribution),
                },
            )
            return _view(row)

    @staticmethod
    def _check_guard(guard: dict[str, Any]) -> dict[str, Any]:
        verdict = str((guard or {}).get("verdict", ""))
        if verdict not in _VERDICTS:
            raise RegistryError(f"guard verdict must be one of {', '.join(_VERDICTS)}; got {verdict!r}")
        if verdict == "block":
            raise RegistryError(
                "the export guard blocked this output: a blocked output is never released (双鸭山 第五十四条); "
                "change the job so its output passes the guard"
            )
        findings = list((guard or {}).get("findings", []))
        return {"verdict": verdict, "findings": findings}

    @staticmethod
    def _check_reviews(reviews: list[dict[str, Any]], operator: str) -> list[dict[str, Any]]:
        checked: list[dict[str, Any]] = []
        for review in reviews or []:
            reviewer = str(review.get("reviewer", "")).strip()
            decision = str(review.get("decision", ""))
            if not reviewer or decision not in _DECISIONS:
                raise RegistryError('each review needs a reviewer and a decision "approve" or "reject"')
            if reviewer == operator:
                raise RegistryError(f"reviewer {reviewer!r} is the operator itself: reviews must be independent")
            checked.append({"reviewer": reviewer, "decision": decision, "reason": str(review.get("reason", ""))})
        if any(r["decision"] == "reject" for r in checked):
            raise RegistryError("a reviewer rejected this release: a rejected product is not registered (第五十二条)")
        if not any(r["decision"] == "approve" for r in checked):
            raise RegistryError(
                "no reviewer approved this release: products are registered only after a pre-release compliance "
                "review approved them (双鸭山 第五十二条)"
            )
        return checked

    @staticmethod
    def _check_artifacts(artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        checked: list[dict[str, Any]] = []
        for artifact in artifacts or []:
            try:
                item = {
                    "name": str(artifact["name"]),
                    "bytes": int(artifact["bytes"]),
                    "sha256": str(artifact["sha256"]).lower(),
                    "path": str(artifact["path"]),
                }
            except (KeyError, TypeError, ValueError):
                raise RegistryError('each artifact needs "name", "bytes", "sha256" and "path"') from None
            if not _SHA256.match(item["sha256"]) or item["bytes"] < 0:
                raise RegistryError(f"artifact {item['name']!r} needs a SHA-256 and a non-negative size")
            checked.append(item)
        return checked

    @staticmethod
    def _sources(
        session: Session, licence: LicenceRow, datasets: list[dict[str, Any]]
    ) -> list[tuple[ResourceRow, VersionRow]]:
        """The (resource, version) pairs named, each within the licence's scope."""
        in_scope = {entry.resource.name: entry.resource for entry in licence.datasets}
        sources: list[tuple[ResourceRow, VersionRow]] = []
        for wanted in datasets:
            dataset = str(wanted.get("name", ""))
            resource = in_scope.get(dataset)
            if resource is None:
                scope = ", ".join(sorted(in_scope)) or "none"
                raise RegistryError(
                    f"dataset {dataset!r} is not in licence {licence.id} (licensed: {scope}): a product may use "
                    "only the datasets its licence grants"
                )
            try:
                number = int(wanted.get("version"))
            except (TypeError, ValueError):
                raise RegistryError(f"dataset {dataset!r} needs the version number the job read") from None
            version = next((v for v in resource.versions if v.version == number), None)
            if version is None:
                raise NotFoundError(f"dataset {dataset!r} has no version {number}")
            if any(r.id == resource.id for r, _ in sources):
                raise RegistryError(f"dataset {dataset!r} is named twice")
            sources.append((resource, version))
        return sources

    # reading ------------------------------------------------------------------------------------

    def get(self, name: str, *, viewer: Actor) -> ProductView:
        """One product; an operator asking for another's gets "not found" (existence is not revealed)."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            row = session.scalar(select(ProductRow).where(ProductRow.name == name))
            if row is None or not _visible(row, viewer):
                raise NotFoundError(f"no product named {name!r}")
            return _view(row)

    def list(self, *, viewer: Actor) -> builtins.list[ProductView]:
        """Products in registration order: an operator's own, or all for custodian, agency, regulator."""
        require_role(viewer, *_ROLES)
        with self.recorder.read() as session:
            query = select(ProductRow).order_by(ProductRow.id)
            if not (viewer.is_host or viewer.role in _READ_ALL):
                query = query.join(OperatorRow, ProductRow.operator_id == OperatorRow.id).where(
                    OperatorRow.name == viewer.name
                )
            return [_view(row) for row in session.scalars(query)]

    def deliverable(self, name: str, *, viewer: Actor) -> ProductView:
        """The product, if it may be delivered now to ``viewer``: only available, only to its operator.

        Suspended (an objection is open, 第四十条) and withdrawn products are not delivered.
        """
        product = self.get(name, viewer=viewer)
        if not viewer.is_host and not (viewer.role == "operator" and viewer.name == product.operator):
            raise PermissionDeniedError(f"product {name!r} is delivered only to its operator {product.operator!r}")
        if product.state == ProductState.SUSPENDED:
            raise RegistryError(
                f"product {name!r} is suspended while an objection against it is open (双鸭山 第四十条): "
                "it is delivered again once the agency resolves the objection"
            )
        if product.state != ProductState.AVAILABLE:
            raise RegistryError(f"product {name!r} is {product.state}: it is no longer delivered")
        return product

    # state changes by the agency ---------------------------------------------------------------

    def suspend(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Stop delivery (the agency's own measure; objections do this through :func:`suspend_product`)."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if not suspend_product(change, row, reason=reason):
                raise RegistryError(f"product {name!r} is {row.state}: only an available product can be suspended")
            return _view(row)

    def restore(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Deliver again; refused while an objection on it is open, and for a withdrawn product."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if row.state != ProductState.SUSPENDED:
                raise RegistryError(f"product {name!r} is {row.state}: only a suspended product can be restored")
            still_open = open_objections_on(change.session, row.id)
            if still_open:
                listed = ", ".join(str(i) for i in still_open)
                raise RegistryError(
                    f"product {name!r} has open objections ({listed}): resolve them first (双鸭山 第四十条)"
                )
            restore_product(change, row, reason=reason)
            return _view(row)

    def withdraw(self, name: str, *, reason: str, by: Actor) -> ProductView:
        """Withdraw a product for good."""
        require_role(by, "agency")
        reason = _require_text(reason, "reason")
        with self.recorder.change(by) as change:
            row = product_row(change.session, name)
            if not withdraw_product(change, row, reason=reason):
                raise RegistryError(f"product {name!r} is already withdrawn")
            return _view(row)
