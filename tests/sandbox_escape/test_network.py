"""Network attacks: the job's network namespace has only its own loopback (issue 6; 原始数据不出域)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.sandbox_escape import attack, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]


def test_tcp_connect_to_host_listener_is_refused(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        result, _ = attack(
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"stolen")
                print("CONNECTED")
            except OSError as exc:
                print("blocked", type(exc).__name__)
            """,
            tmp_path / "out",
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's listener
    finally:
        listener.close()
    assert result.status == "ok", result.stderr
    assert "CONNECTED" not in result.stdout
    assert result.stdout.startswith("blocked ConnectionRefusedError")


def test_hostname_resolution_fails(tmp_path: Path) -> None:
    result, _ = attack(
        """
        import socket
        for host in ("example.com", "pypi.org"):
            try:
                print(host, socket.getaddrinfo(host, 443))
            except OSError as exc:
                print(host, "unresolved", type(exc).__name__)
        """,
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.split("\n")[:2] == ["example.com unresolved gaierror", "pypi.org unresolved gaierror"]


def test_only_loopback_interface_exists(tmp_path: Path) -> None:
    result, _ = attack(
        """
        import socket
        print(sorted(name for _, name in socket.if_nameindex()))
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))
            print("SENT")
        except OSError as exc:
            print("blocked", type(exc).__name__)
        """,
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.splitlines() == ["['lo']", "blocked OSError"]
