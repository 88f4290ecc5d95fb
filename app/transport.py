"""Encryption in transit for ``keyong serve`` (SATRE v2 2.8.01: data and credentials are encrypted in transit).

Why a refusal and not a warning: an API key, a session cookie or a released file sent over plain HTTP
across a network can be read by anyone on the path. So the server decides how it is reached before it
opens the home or binds a socket, and fails closed:

- With ``--tls-cert`` and ``--tls-key`` uvicorn serves HTTPS itself; both files are loaded here first,
  so a wrong path, a key that does not match the certificate or an unreadable file is a one-line
  refusal (exit 1), not a traceback from inside uvicorn.
- ``--behind-tls-proxy`` says a TLS-terminating proxy in front carries the encryption; the operator
  vouches for that hop (docs/operations.md).
- Neither: only a loopback address may be bound (``127.0.0.0/8``, ``::1``, ``localhost`` if it resolves
  to loopback only), where the traffic never leaves the machine. Any other address, a wildcard
  (``0.0.0.0``, ``::``) or a host name that is not ``localhost`` is refused — another name is not
  resolved, since what it resolves to can change.

When the transport is secure (either way), every response carries ``Strict-Transport-Security`` (a
browser that once saw the server over HTTPS never falls back to HTTP for it) and the console's session
cookie is ``Secure`` (:class:`~app.settings.Settings` ``transport_secure``).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "Strict-Transport-Security"


class TransportError(ValueError):
    """The server was asked to listen in a way that would carry data in clear text, or its TLS files are unusable."""


def _address_is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address, or ``localhost`` resolving to loopback addresses only;
    anything unparsable or unresolvable counts as not.

    ``localhost`` is the one name taken, and even it is resolved: it is what the host's resolver says
    (``/etc/hosts``), and uvicorn binds what it says; a ``localhost`` mapped to a LAN address served
    plain HTTP to the network (the red team, issue 22).
    """
    name = host.strip().lower()
    if name != "localhost":
        return _address_is_loopback(name)
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(_address_is_loopback(address.split("%")[0]) for address in found)


@dataclass(frozen=True, slots=True)
class Transport:
    """How the server is reached: its own TLS, a TLS proxy in front, or plain HTTP on loopback."""

    host: str
    port: int
    certfile: Path | None = None
    keyfile: Path | None = None
    behind_tls_proxy: bool = False

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def secure(self) -> bool:
        """Clients reach the server over TLS only: Secure cookies and HSTS are due."""
        return self.tls or self.behind_tls_proxy

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def uvicorn_options(self) -> dict[str, Any]:
        """The keyword arguments that make uvicorn serve TLS with these files, and believe ``X-Forwarded-*``
        only behind a TLS proxy (from uvicorn's ``forwarded_allow_ips``). uvicorn believes them from
        127.0.0.1 by default, so any local process could name the client address that security events
        record and count per source (the red team, issue 22)."""
        options: dict[str, Any] = {"proxy_headers": self.behind_tls_proxy}
        if self.tls:
            options.update(ssl_certfile=str(self.certfile), ssl_keyfile=str(self.keyfile))
        return options


def _check_tls_files(certfile: Path, keyfile: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile=str(certfile), keyfile=str(keyfile))
    except FileNotFoundError as exc:
        raise TransportError(f"TLS file not found: {exc.filename}") from None
    except PermissionError as exc:
        raise TransportError(f"TLS file not readable: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TransportError(
            f"cannot use --tls-cert {certfile} with --tls-key {keyfile}: {exc}; "
            "give a PEM certificate (chain) and the PEM private key that belongs to it"
        ) from None


def plan_transport(
    host: str,
    port: int,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    behind_tls_proxy: bool = False,
) -> Transport:
    """The transport for serving on ``host:port``, or :class:`TransportError` if it would not be encrypted."""
    if (certfile is None) != (keyfile is None):
        raise TransportError("--tls-cert and --tls-key go together: give both, or neither")
    if certfile is not None and keyfile is not None:
        _check_tls_files(certfile, keyfile)
    transport = Transport(host, port, certfile, keyfile, behind_tls_proxy)
    if not transport.secure and not is_loopback(host):
        raise TransportError(
            f"refusing to serve plain HTTP on {host}: API keys, session cookies and released files would "
            "cross the network unencrypted (SATRE 2.8.01). Give --tls-cert FILE --tls-key FILE, or "
            "--behind-tls-proxy if a TLS-terminating proxy in front is the only way in, or bind 127.0.0.1"
        )
    return transport


def hsts_value(max_age: int) -> str:
    return f"max-age={max_age}"


class StrictTransportSecurity:
    """ASGI middleware adding ``Strict-Transport-Security`` to every HTTP response.

    Plain ASGI (not ``BaseHTTPMiddleware``) so file downloads stream through untouched.
    """

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.value = hsts_value(max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HSTS] = self.value
            await send(message)

        await self.app(scope, receive, send_with_hsts)


__all__ = [
    "HSTS",
    "StrictTransportSecurity",
    "Transport",
    "TransportError",
    "hsts_value",
    "is_loopback",
    "plan_transport",
]
