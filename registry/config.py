"""The registry's tunable rules, with the defaults the regulations give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core import utcnow


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
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        return self.clock()
