"""``keyong serve`` for real: uvicorn in a child process, answering over TCP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.totp_support import remember_all, wall_code_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path / "home"
    init = subprocess.run(
        [sys.executable, "-m", "app.cli", "init", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    tokens = json.loads(init.stdout)["tokens"]
    remember_all(tokens, json.loads(init.stdout)["totp"])
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server did not come up: {output}")
            time.sleep(0.1)
        yield base, tokens
    finally:
        process.terminate()
        process.wait(timeout=10)


def _login(api_key: str) -> dict[str, str]:
    """A login for the served process: it reads the wall clock, not the tests' virtual one."""
    return {"api_key": api_key, "totp": wall_code_for(api_key)}


def test_served_api_answers_docs_and_auth(server: tuple[str, dict[str, str]]) -> None:
    base, tokens = server
    docs = httpx.get(f"{base}/docs", timeout=5)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    token = httpx.post(f"{base}/auth/token", json=_login(tokens["regulator"]), timeout=5).json()["access_token"]
    me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert me.json() == {"name": "demo-regulator", "role": "regulator"}
    listing = httpx.get(f"{base}/principals", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert len(listing.json()) == 4
