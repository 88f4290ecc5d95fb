"""Response documents of retention and purges (``app.api.retention``; SATRE 3.1.09, 2.2.06).

Keys are exactly those ``registry.DueVersion.as_json``, ``registry.PurgeResult.as_json`` and
``Retention.set_retention`` write.
"""

from typing import Any

from pydantic import Field

from app.api.schemas.base import Document, example

_T = "2026-12-01T09:00:00+00:00"
_DUE = {
    "dataset": "traffic",
    "version": 1,
    "kind": "desensitized",
    "created_at": _T,
    "retention_days": 365,
    "expires_at": "2027-12-01T09:00:00+00:00",
    "due": False,
    "why": "",
    "blocked": ["licence 3 is live and serves version 1"],
}


class RetentionScheduleOut(Document):
    """Live dataset versions with their expiry; ``due`` ones have reached it (``why``: retention or
    revoked), ``blocked`` names the live licences and running jobs that keep one from being purged."""

    model_config = example(versions=[_DUE])

    versions: list[dict[str, Any]]


class RetentionSetOut(Document):
    """A dataset's retention period (days per version; null: the instance default applies)."""

    model_config = example(dataset="traffic", retention_days=365, previous=None, default_days=None)

    dataset: str
    retention_days: int | None
    previous: int | None
    default_days: int | None = Field(description="The instance's default period (null: kept until purged).")


class PurgeOut(Document):
    """What a purge deleted: versions, each file (what, version, SHA-256, bytes, reason) and products."""

    model_config = example(
        dataset="traffic",
        versions=[1, 2],
        files=[{"what": "raw", "version": 1, "sha256": "ab" * 32, "bytes": 10240, "reason": "提供方撤回数据"}],
        products=[],
        reason="提供方撤回数据",
    )

    dataset: str
    versions: list[int]
    files: list[dict[str, Any]]
    products: list[str]
    reason: str
