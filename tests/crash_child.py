"""A child process for the crash tests: opens the home, runs one multi-step write, and is killed in it.

    KEYONG_TEST_CRASH_AT=POINT python -m tests.crash_child HOME OPERATION [ARGUMENT ...]

The test sets the crash point (:mod:`core.crashpoints`) in this process's environment; when the
operation reaches it, the process sends itself ``SIGKILL``. Reaching the end prints ``finished`` and
exits 0, which the test reports as a crash point never reached.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app import Instance, Settings
from core import Actor


def main() -> None:
    home, operation, *arguments = sys.argv[1:]
    instance = Instance.open(Settings(home=Path(home)))
    if operation == "desensitize":
        instance.registry.copies.make(arguments[0], by=Actor("demo-custodian", "custodian"))
    elif operation == "vote":
        instance.releases.vote(int(arguments[0]), "approve", by=Actor(arguments[1], "agency"))
    elif operation == "revoke":
        instance.registry.licences.transition(
            int(arguments[0]), "revoked", by=Actor("demo-agency", "agency"), reason="违反授权运营协议"
        )
    elif operation == "work":
        from tests.job_worker_proc import fast_runner

        instance.worker(runner=fast_runner, worker_id="doomed").run_pending()
    elif operation == "cancel":
        instance.jobs.cancel(int(arguments[0]), by=Actor(arguments[1], "operator"))
    elif operation == "fetch":
        instance.releases.fetch(arguments[0], Path(arguments[1]), by=Actor(arguments[2], "operator"))
    elif operation == "licence-copies":  # issue 23: a licence's copies made (re-keyed, sealed, recorded)
        instance.registry.licence_copies.ensure(int(arguments[0]))
    elif operation == "rotate":
        instance.identity.rotate_api_key(arguments[0])
    else:
        raise SystemExit(f"unknown operation {operation!r}")
    print("finished", flush=True)


if __name__ == "__main__":
    main()
