"""The guard's per-instance limits; defaults are chosen for aggregate outputs.

Why these defaults: statistical disclosure control thresholds are ACRO's and OpenSAFELY's
(``sandbox.sdc.SdcConfig``: minimum cell 10, p% 10, n-k 2/90, residual df 10, 5,000 rows); the
record-level thresholds say when a table stops being a table of groups and becomes a list of
people (GB/T 37964-2019 去标识化: a record that singles out a person is not de-identified).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.sdc import SdcConfig


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Limits of one instance's export guard."""

    max_files: int = 20
    max_file_bytes: int = 200 * 1024 * 1024
    max_total_bytes: int = 500 * 1024 * 1024
    #: Longest output path (characters); names are content and operators read them.
    max_name_chars: int = 160
    #: Rows of an output that reproduce rows of a copy, tolerated as coincidence in tiny tables.
    max_matching_rows: int = 2
    #: Share of a table's rows describing combinations held by fewer than the minimum cell count in
    #: the copy above which the table is a list of people, not a table of groups.
    rare_row_share: float = 0.5
    #: Columns of a table, and characters of a column name, beyond which a table is refused: headers
    #: are names, and a list of people turned sideways is a header of people.
    max_columns: int = 500
    max_header_chars: int = 64
    #: A column is key-like when it has at least this many rows and this share of distinct values.
    keylike_min_rows: int = 100
    keylike_distinct_share: float = 0.9
    #: Bytes of the operator's log kept for it to read (when the log passes).
    log_excerpt_bytes: int = 4096
    #: A certified model whose membership-inference AUC exceeds this goes to review (issue 8).
    max_mia_auc: float = 0.6
    #: Probes of the byte-level fingerprint search per stream before it gives up (and blocks).
    max_probes: int = 20_000_000
    sdc: SdcConfig = field(default_factory=SdcConfig)


__all__ = ["GuardConfig"]
