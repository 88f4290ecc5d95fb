"""A separate writer process for the concurrency and crash tests.

    python -m tests.ledger_worker HOME DATABASE_URL NAME COUNT BATCH

appends COUNT entries in batches of BATCH through the instance's ledger and prints
``ack <seq of the batch's last entry>`` after each commit, so the parent knows exactly which
entries were acknowledged.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app import Instance, Settings
from ledger import Record


def main() -> None:
    home, url, name, count, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    instance = Instance.open(Settings(home=Path(home), database_url=url or None), upgrade=False)
    done = 0
    while done < count:
        size = min(batch, count - done)
        made = instance.ledger.append_many(
            Record(name, "operator", "job.submitted", f"job:{name}-{done + i}", {"n": done + i}) for i in range(size)
        )
        done += size
        print(f"ack {made[-1].seq}", flush=True)
    instance.close()


if __name__ == "__main__":
    main()
