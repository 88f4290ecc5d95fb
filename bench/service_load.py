"""Load on a served Keyong (issue 17): p50/p99 latency at 50 concurrent clients, zero errors, ledger verified after.

A real ``keyong serve --workers 0`` (uvicorn, one process) on loopback over a fresh home made by
``keyong init``; clients are httpx's async client. Two workloads:

* ``token``: ``POST /auth/token`` (API key and TOTP code → JWT: a key lookup, the second factor's check and
  the spending of its time step, a signature). A code's step is accepted once per principal, so each
  exchange is a different principal's: the home is provisioned with as many (each enrolled by the host,
  as ``keyong init`` enrols its demo principals) before the server starts;
* ``read``: authenticated reads a console or a script makes all day: ``/me``, ``/datasets``,
  ``/principals``, ``/ledger/entries`` in turn (each re-checks the JWT, its key and principal).

Baseline in the same run: the same requests from one client at a time (``clients: 1``), so the
cost of concurrency is read against the server's own unloaded latency. Bounded: ``--requests`` per
workload (default 2,000). After the load, ``keyong ledger verify`` must pass.

Run: ``python bench/service_load.py [--clients 50] [--requests 2000]``; one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from benchinfo import emit, machine

READS = ("/me", "/datasets", "/principals", "/ledger/entries")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keyong(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, check=True)


def _serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--home", str(home), "--port", str(port), "--workers", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("keyong serve did not come up")
        time.sleep(0.1)


def _people(home: Path, count: int) -> list[tuple[str, str]]:
    """``count`` principals with their API key and TOTP secret (the host enrols them, as ``keyong init``)."""
    from app.instance import Instance
    from app.settings import Settings
    from operators import Role

    instance = Instance.open(Settings(home=home))
    try:
        people = []
        for n in range(count):
            name = f"bench-login-{n}"
            new = instance.identity.create_principal(name, Role.CUSTODIAN, enrol_totp=True)
            people.append((new.api_key, str(new.totp_secret)))
        return people
    finally:
        instance.close()


def _code(secret: str) -> str:
    """The current code of a base32 TOTP secret (what an authenticator app shows now)."""
    from base64 import b32decode

    from operators import totp_code

    return totp_code(b32decode(secret + "=" * (-len(secret) % 8)), time.time())


async def _drive(base: str, clients: int, requests: int, call: Any) -> dict[str, Any]:
    """``requests`` calls spread over ``clients`` concurrent connections: latencies and error count."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def client() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                start = time.perf_counter()
                try:
                    status = await call(http, i)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "per_second": round(len(latencies) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keyong-load-") as tmp:
        home = Path(tmp) / "home"
        made = json.loads(_keyong("init", "--home", str(home), "--json").stdout)
        keys, secrets = made["tokens"], made["totp"]
        logins = iter(_people(home, 2 * args.requests))  # one per exchange of both runs of ``token``
        process, base = _serve(home)
        try:
            login = {"api_key": keys["regulator"], "totp": _code(secrets["regulator"])}
            token = httpx.post(f"{base}/auth/token", json=login, timeout=10).json()
            bearer = {"Authorization": f"Bearer {token['access_token']}"}

            async def exchange(http: httpx.AsyncClient, i: int) -> int:
                key, secret = next(logins)
                return (await http.post("/auth/token", json={"api_key": key, "totp": _code(secret)})).status_code

            async def read(http: httpx.AsyncClient, i: int) -> int:
                return (await http.get(READS[i % len(READS)], headers=bearer)).status_code

            where = machine(uvicorn=version("uvicorn"), fastapi=version("fastapi"), httpx=version("httpx"))
            for name, call in (("token", exchange), ("read", read)):
                for clients in (1, args.clients):
                    result = asyncio.run(_drive(base, clients, args.requests, call))
                    emit(
                        {
                            "bench": "service_load",
                            "workload": name,
                            "clients": clients,
                            "baseline": clients == 1,
                            "database": "sqlite",
                            **result,
                            "machine": where,
                        }
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)
        verified = subprocess.run(
            [sys.executable, "-m", "app.cli", "ledger", "verify", "--home", str(home), "--json"],
            capture_output=True,
            text=True,
        )
        emit({"bench": "service_load", "ledger_verify_exit": verified.returncode, "machine": where})


if __name__ == "__main__":
    main()
