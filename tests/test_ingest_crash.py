"""``kill -9`` during an ingest leaves no plaintext and nothing half-registered (issue 17).

A real child process ingests (through the API, or as ``keyong dataset ingest`` does) and is paused
at a known step by a monkeypatched function; the test SIGKILLs it there. Before: the raw upload
stayed in the home as a plaintext file forever, and a vault file written before the catalog row was
committed stayed as an orphan. Now: the scratch copy on disk is ciphertext under a key that died with
the child, and the next start (``Instance.open``: serve, worker, every CLI command) sweeps the dead
scratch and the orphan vault file; the catalog shows no version, the ledger no ingest, and the same
file then ingests cleanly. A live ingest in another process is never swept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app import Instance
from app.settings import Settings
from core import Actor, NotFoundError
from desensitize.identifiers import uscc_check_char
from registry import Scratch, Vault
from tests.totp_support import wall_code_for

PROVIDER = "双鸭山市市场监督管理局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
CANARY = "KANARIE投毒0042"  # a value that must never lie in the home in clear
ROWS = "\n".join(f"{i:06d},{CANARY}{i},黑龙江省双鸭山市尖山区{i}号" for i in range(500))
CSV = f"编号,备注,住所\n{ROWS}\n".encode()

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path

    home, mode, stage, marker, source = sys.argv[1:6]

    def pause(*_args, **_kwargs):
        Path(marker).write_text(stage)
        time.sleep(600)

    import registry.catalog
    import registry.ingest
    import registry.vault

    if stage == "read":  # the upload has arrived in scratch; nothing parsed yet
        registry.ingest.read_source = pause
    elif stage == "vaulted":  # the vault file is written; the catalog row is not
        registry.ingest.Ingestor._record = pause
    elif stage == "in-transaction":  # the version row is flushed inside the open transaction
        add_version = registry.catalog.Catalog.add_version

        def paused(self, *args, **kwargs):
            add_version(self, *args, **kwargs)
            pause()

        registry.catalog.Catalog.add_version = paused
    elif stage == "vault-frame":  # half-way through encrypting the vault file
        write = registry.vault.Sealer._frame

        def frame(self, plain, *, final):
            write(self, plain, final=final)
            pause()

        registry.vault.Sealer._frame = frame

    from app import Instance
    from app.settings import Settings
    from core import Actor

    instance = Instance.open(Settings(home=Path(home)))
    data = Path(source).read_bytes()
    form = {"provider": os.environ["PROVIDER"], "provider_code": os.environ["PROVIDER_CODE"]}
    if mode == "cli":
        instance.registry.ingestor.ingest(
            Path(source), name="crashed", by=Actor("demo-custodian", "custodian"), **form
        )
    else:
        from fastapi.testclient import TestClient
        from app import create_app

        app = create_app(instance=instance)
        client = TestClient(app)
        login = {"api_key": os.environ["API_KEY"], "totp": os.environ["TOTP"]}
        token = client.post("/auth/token", json=login).json()["access_token"]
        boundary = "crashboundary"
        disposition = "\\r\\nContent-Disposition: form-data; name="
        head = "".join(f'--{boundary}{disposition}"{k}"\\r\\n\\r\\n{v}\\r\\n' for k, v in form.items())
        head += f'--{boundary}{disposition}"file"; filename="crashed.csv"\\r\\n\\r\\n'
        body = [head.encode(), data[: len(data) // 2], data[len(data) // 2 :], f"\\r\\n--{boundary}--\\r\\n".encode()]

        async def receive():
            if not body:
                return {"type": "http.disconnect"}
            chunk = body.pop(0)
            if stage == "upload" and not body[1:]:  # half the file has streamed in
                pause()
            return {"type": "http.request", "body": chunk, "more_body": bool(body)}

        async def send(message):
            if message["type"] == "http.response.start":
                print("status", message["status"], flush=True)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/datasets/crashed/ingest", "raw_path": b"/datasets/crashed/ingest", "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
            "headers": [
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            ],
        }
        asyncio.run(app(scope, receive, send))
    print("finished", flush=True)
    """
)


@pytest.fixture
def database_url() -> None:
    """SQLite: the embedded default, whose hot journal the next start must roll back."""
    return None


def files_holding(home: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes())


def kill_at(home: Path, tmp: Path, api_key: str, mode: str, stage: str) -> None:
    """Run the child until it pauses at ``stage``, then SIGKILL it."""
    script = tmp / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    source = tmp / "crashed.csv"
    source.write_bytes(CSV)
    marker = tmp / f"paused-{mode}-{stage}"
    system_temp = tmp / "system-temp"  # where Starlette would have spooled the multipart body in clear
    system_temp.mkdir(exist_ok=True)
    env = {**os.environ, "API_KEY": api_key, "PROVIDER": PROVIDER, "PROVIDER_CODE": PROVIDER_CODE}
    env["TOTP"] = wall_code_for(api_key)  # the child's verifier reads the wall clock
    env["TMPDIR"] = str(system_temp)
    cwd = Path(__file__).resolve().parent.parent
    args = [sys.executable, str(script), str(home), mode, stage, str(marker), str(source)]
    child = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if child.poll() is not None:
                out, err = child.communicate()
                pytest.fail(f"the child ended before pausing at {stage}: {out.decode()} {err.decode()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the child never reached {stage}")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


STAGES = [
    ("api", "upload"),  # killed while the body streams into the sealed scratch
    ("api", "read"),  # killed with the whole upload in scratch
    ("api", "vault-frame"),  # killed half-way through the vault file
    ("api", "vaulted"),  # killed after the vault file, before the catalog transaction
    ("api", "in-transaction"),  # killed inside the uncommitted catalog transaction
    ("cli", "vaulted"),  # keyong dataset ingest, killed between vault and catalog
]


@pytest.mark.parametrize(("mode", "stage"), STAGES, ids=[f"{m}-{s}" for m, s in STAGES])
def test_kill_9_during_an_ingest_leaves_no_plaintext_and_nothing_half_registered(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path, mode: str, stage: str
) -> None:
    instance, tokens = initialised
    home = instance.home
    ledger_before = instance.ledger.size()
    instance.close()
    kill_at(home, tmp_path, tokens["custodian"], mode, stage)

    # Killed: whatever it left is ciphertext. Not the raw upload, nor its text anywhere in the home.
    assert files_holding(home, CANARY.encode()) == []
    assert files_holding(home, CSV[:200]) == []
    assert files_holding(tmp_path / "system-temp", CANARY.encode()) == []
    left = [p for p in (home / ".scratch").rglob("*") if p.is_file()] if (home / ".scratch").exists() else []
    if mode == "api":
        assert left, "the killed API ingest left its scratch behind (what the sweep is for)"

    # The next start sweeps the dead ingest's scratch and any vault file no committed version names.
    reopened = Instance.open(Settings(home=home))
    try:
        assert list((home / ".scratch").iterdir()) == []
        vault = home / "vault"
        assert not vault.exists() or [p for p in vault.rglob("*") if p.is_file()] == []
        with pytest.raises(NotFoundError):
            reopened.registry.catalog.get("crashed")
        entries = [e.action for e in reopened.ledger.entries(after=ledger_before)]
        assert "dataset.ingested" not in entries and "catalog.published" not in entries
        assert reopened.ledger.verify().ok

        # And the same file then ingests cleanly as version 1.
        result = reopened.registry.ingestor.ingest(
            tmp_path / "crashed.csv",
            name="crashed",
            provider=PROVIDER,
            provider_code=PROVIDER_CODE,
            by=Actor("demo-custodian", "custodian"),
        )
        assert result.version == 1 and result.rows == 500
        assert files_holding(home, CANARY.encode()) == []
    finally:
        reopened.close()


def test_the_sweep_spares_live_ingests_and_committed_versions(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path
) -> None:
    instance, _ = initialised
    home = instance.home
    source = tmp_path / "kept.csv"
    source.write_bytes(CSV)
    kept = instance.registry.ingestor.ingest(
        source, name="kept", provider=PROVIDER, provider_code=PROVIDER_CODE, by=Actor("demo-custodian", "custodian")
    )
    vault = Vault(home, instance.keys.vault_key)  # type: ignore[arg-type]

    with Scratch(home) as live:
        live.note_pending("inflight")
        inflight = vault.put("inflight", 1, b"not yet committed")
        writer = live.writer("upload")
        writer.write(CSV)
        writer.close()
        assert live.read("upload") == CSV  # sealed on disk, readable only by its owner
        assert files_holding(home, CANARY.encode()) == []
        swept = Instance.open(Settings(home=home))  # another start while the ingest is live
        swept.close()
        assert live.path.exists() and (home / inflight.path).exists()
        assert (home / kept.vault_path).exists()
    # The ingest died without committing: its directory is gone, its vault file is an orphan.
    assert not live.path.exists()
    Instance.open(Settings(home=home)).close()
    assert not (home / inflight.path).exists()
    assert vault.read_table(kept.vault_path).num_rows == 500

    legacy = home / ".ingest-abc123"  # the clear-text scratch of earlier releases
    legacy.mkdir()
    (legacy / "upload.csv").write_bytes(CSV)
    Instance.open(Settings(home=home)).close()
    assert not legacy.exists()
