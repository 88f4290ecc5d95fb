"""The registry's tunable rules, with the defaults the regulations give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core import LocalStorage, Storage, utcnow

MIB = 1024 * 1024


@dataclass(frozen=True)
class IngestLimits:
    """The bounds of one ingest, declared once and quoted in every refusal.

    They are checked at the edge, before the expensive step each protects: the declared upload size
    before the body is read, the received size while it streams, an XLSX's inflated size from its zip
    directory before any XML is parsed, columns and rows before profiling, cell length before the vault.
    Where the regulations ask that data be graded and protected (黑龙江 第三十八条), an ingest that ties up
    the platform for minutes or crashes it half-way protects nothing.
    """

    max_upload_bytes: int = 512 * MIB  # an API upload, declared (Content-Length) and received
    max_xlsx_inflated_bytes: int = 64 * MIB  # the sum of an XLSX's decompressed parts (zip directory)
    max_xlsx_parts: int = 1_000  # members of an XLSX zip
    max_columns: int = 1_000  # columns (数据项) of one file
    max_rows: int = 10_000_000  # records of one file
    max_cell_chars: int = 32_767  # characters of one text cell (Excel's own cell limit)
    max_form_field_chars: int = 4_096  # characters of an upload's text fields (provider, title, …)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ingest limit {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RegistryConfig:
    """Where files live and how the monitoring rules count.

    ``clock`` is read for every "now" the rules compare against, so tests and drills can move
    time (six-month grace, three months idle, publicity periods, expiry) without sleeping.
    """

    home: Path
    publicity_days: int = 7  # 公示 period before a licence may become active (双鸭山 第四十八条)
    revocation_grace_days: int = 183  # 黑龙江 第十六条: keep serving a revoked entry 6 months
    idle_days: int = 90  # 双鸭山 第三十一条: 3 months without use is a finding
    violation_limit: int = 3  # violations within the window that suspend an operator automatically
    violation_window_hours: float = 24.0
    blocked_export_limit: int = 3  # blocked exports within the window that raise a finding
    blocked_export_window_hours: float = 168.0
    vault_key: bytes | None = field(default=None, repr=False)  # AES-256 key of the raw-data vault
    pepper: bytes | None = field(default=None, repr=False)  # HMAC key of pseudonyms and guard fingerprints
    data_master: bytes | None = field(default=None, repr=False)  # wraps the data keys of files at rest
    ingest_limits: IngestLimits = field(default_factory=IngestLimits)
    # Days a dataset version is kept when its entry sets no period (SATRE 3.1.09); None: until purged.
    retention_days: int | None = None
    # The region whose rule set gives requests their time limits (registry.request_rules; issue 24).
    request_profile: str = "shuangyashan"
    clock: Callable[[], datetime] = utcnow
    # Where the registry's artifacts lie (issue 19): the vault, copies, fingerprints, licence copies.
    # None: the home itself (core.LocalStorage), the embedded layout, byte for byte as before.
    storage: Storage | None = field(default=None, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def artifacts(self) -> Storage:
        """The storage of every artifact the registry writes for later readers (``storage``, else the home)."""
        return self.storage if self.storage is not None else LocalStorage(self.home)
