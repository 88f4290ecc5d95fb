"""Encryption in transit (SATRE v2 2.8.01; issue 22): ``keyong serve`` over TLS, and the refusals around it.

A real server with a self-signed certificate (made here with ``cryptography``) answers https on loopback
with HSTS and sets a Secure session cookie at console login; plain http to it fails. A non-loopback bind
without TLS is refused before anything listens. PostgreSQL over TLS: tests/test_database_tls.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from app import Instance, create_app
from app.settings import Settings
from app.transport import HSTS, TransportError, is_loopback, plan_transport
from tests.test_serve import free_port
from tests.totp_support import login_form, remember_all, wall_code_for

KEYONG = [sys.executable, "-m", "app.cli"]


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")}
    return subprocess.run(
        [*KEYONG, *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=timeout
    )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyong-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("transport") / "home"
    init = _run("init", "--home", str(path), "--json")
    assert init.returncode == 0, init.stderr
    remember_all(json.loads(init.stdout)["tokens"], json.loads(init.stdout)["totp"])
    return path, json.loads(init.stdout)["tokens"]


# --- the bind rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts_may_serve_plain_http(host: str) -> None:
    assert is_loopback(host)
    assert not plan_transport(host, 8000).secure


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "10.0.0.1", "data.example.gov", "localhost.evil", ""])
def test_other_hosts_are_refused_without_tls(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(TransportError, match="refusing to serve plain HTTP"):
        plan_transport(host, 8000)
    assert plan_transport(host, 8000, behind_tls_proxy=True).secure  # the operator vouches for the proxy


@pytest.mark.attack
def test_cli_refuses_a_non_loopback_bind_without_tls(home: tuple[Path, dict[str, str]]) -> None:
    """The refusal comes before the home is opened or a socket bound: the command ends at once, exit 1.

    (Were it not refused, the server would bind 0.0.0.0 on a free port and the timeout would fail the test.)"""
    path, _ = home
    for host in ("0.0.0.0", "::"):
        result = _run("serve", "--home", str(path), "--host", host, "--port", str(free_port()), timeout=60)
        assert result.returncode == 1, result.stderr
        assert "refusing to serve plain HTTP" in result.stderr and "--tls-cert" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_tls_files_are_checked_before_serving(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert plan_transport("0.0.0.0", 8443, certfile=cert, keyfile=key).url == "https://0.0.0.0:8443"
    with pytest.raises(TransportError, match="go together"):
        plan_transport("127.0.0.1", 8443, certfile=cert)
    with pytest.raises(TransportError, match="not found"):
        plan_transport("127.0.0.1", 8443, certfile=tmp_path / "missing.pem", keyfile=key)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    _, wrong_key = self_signed(stranger)
    with pytest.raises(TransportError, match="cannot use --tls-cert"):
        plan_transport("127.0.0.1", 8443, certfile=cert, keyfile=wrong_key)  # a key of another certificate
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TransportError, match="cannot use --tls-cert"):
        plan_transport("127.0.0.1", 8443, certfile=garbage, keyfile=key)


# --- a real server over TLS -------------------------------------------------------------------------


@pytest.fixture
def https_server(home: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, str]]:
    path, tokens = home
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(
        [*KEYONG, "serve", "--home", str(path), "--port", str(port), "--workers", "0", *tls],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")},
    )
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", verify=trust, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"https server did not come up: {output}")
            time.sleep(0.2)
        yield base, trust, tokens["regulator"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_https_server_sends_hsts_and_a_secure_session_cookie(https_server: tuple[str, ssl.SSLContext, str]) -> None:
    base, trust, api_key = https_server
    health = httpx.get(f"{base}/healthz", verify=trust, timeout=5)
    assert health.status_code == 200 and health.headers[HSTS] == "max-age=31536000"
    with httpx.Client(base_url=base, verify=trust, timeout=10, headers={"origin": base}) as client:
        assert client.get("/console/login").headers[HSTS].startswith("max-age=")
        form = {"api_key": api_key, "totp": wall_code_for(api_key)}  # the served process reads the wall clock
        login = client.post("/console/login", data=form, follow_redirects=False)
        assert login.status_code == 303, login.text
        cookie = login.headers["set-cookie"]
        assert cookie.startswith("keyong_console=") and "; Secure" in cookie and "HttpOnly" in cookie
        assert login.headers[HSTS] == "max-age=31536000"
        assert client.get("/console", follow_redirects=True).status_code == 200  # the session works over https


@pytest.mark.slow
@pytest.mark.attack
def test_plain_http_to_the_tls_port_fails(https_server: tuple[str, ssl.SSLContext, str]) -> None:
    base, _, _ = https_server
    with pytest.raises(httpx.TransportError):
        httpx.get(base.replace("https://", "http://") + "/healthz", timeout=5)


@pytest.mark.attack
def test_an_untrusted_certificate_is_not_accepted_by_a_verifying_client(
    https_server: tuple[str, ssl.SSLContext, str],
) -> None:
    """The server presents the certificate it was given (a client trusting only the system CAs refuses it)."""
    base, _, _ = https_server
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=5)


# --- behind a TLS proxy, and plain loopback ------------------------------------------------------


def _login(instance: Instance, api_key: str, *, transport_secure: bool) -> httpx.Response:
    settings = instance.settings.model_copy(update={"transport_secure": transport_secure})
    inst = Instance(settings, instance.keys, instance.engine, instance.instance_id)
    client = TestClient(create_app(instance=inst), headers={"origin": "http://testserver"})
    return client.post("/console/login", data=login_form(api_key), follow_redirects=False)


def test_behind_a_tls_proxy_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    """The proxy speaks https to browsers and http to us: the app must not take the http hop for the truth."""
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    key = result.tokens["regulator"]
    try:
        proxied = _login(instance, key, transport_secure=True)
        assert proxied.status_code == 303 and "; Secure" in proxied.headers["set-cookie"]
        assert proxied.headers[HSTS] == "max-age=31536000"
        plain = _login(instance, key, transport_secure=False)  # loopback http: no HSTS, cookie not Secure
        assert plain.status_code == 303 and "Secure" not in plain.headers["set-cookie"]
        assert HSTS not in plain.headers
    finally:
        instance.close()
