"""The ledger as JSON lines for regulators: every entry (its fields plus ``hash``), then every checkpoint.

This is the file ``python -m ledger.verify`` checks on a machine with no database: each entry
line is the canonical JSON the entry's hash covers plus the ``hash`` itself, so the chain can be
recomputed from it in any language (双鸭山市公共数据管理暂行办法 第六十条).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO

from sqlalchemy.engine import Engine

from ledger.queries import ENTRY_COLUMNS, all_checkpoints
from ledger.storage import read_transaction

__all__ = ["export_jsonl"]


def export_jsonl(engine: Engine, out: IO[str], progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Write the ledger to ``out`` from one snapshot; (entries, checkpoints) written."""
    count = 0
    with read_transaction(engine) as connection:
        result = connection.exec_driver_sql(f"SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq")
        while chunk := result.fetchmany(20_000):
            for seq, time, actor, role, action, subject, payload, prev_hash, stored in chunk:
                # The payload text is already canonical JSON: splice it in instead of re-encoding.
                head = json.dumps(
                    {"action": action, "actor": actor, "prev_hash": prev_hash, "role": role, "seq": seq},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
                tail = json.dumps(
                    {"subject": subject, "time": time, "hash": stored}, ensure_ascii=False, separators=(",", ":")
                )
                out.write(f'{head[:-1]},"payload":{payload},{tail[1:]}\n')
            count += len(chunk)
            if progress is not None:
                progress(len(chunk))
        cps = all_checkpoints(connection)
        for signed in cps:
            out.write(json.dumps(signed.as_json(), separators=(",", ":")) + "\n")
    return count, len(cps)
