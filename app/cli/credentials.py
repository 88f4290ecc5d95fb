"""Whose own credential a CLI act carries: ``--key-file F`` or ``$KEYONG_API_KEY`` (issue 22).

Running the CLI on the host proves only that one is the host administrator, not that one is a
reviewer: a vote cast by the host in a reviewer's name would be an impersonation the ledger could
not tell apart (SATRE 3.1.06: one's own identity for each act; 3.2.01: independent output review,
双鸭山市公共数据管理暂行办法 第五十二条). So an act that is a person's own reads that person's API key
(or a token exchanged for it) and checks it through the same identity service the API uses: a
revoked, forged or expired credential, a suspended principal, or a key of the wrong role is refused.

An API key alone is one factor: as ``POST /auth/token`` and the console do, an act by key also takes the
principal's current TOTP code (``--totp CODE`` or ``$KEYONG_TOTP``; SATRE 3.2.04), spent once. A JWT
given instead of a key was obtained with a code already, so it needs none.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core import Actor, actor_of
from operators import AuthenticationError

if TYPE_CHECKING:
    from app.instance import Instance
    from operators import Principal

#: The environment variable holding a credential when ``--key-file`` is not given.
KEY_ENV = "KEYONG_API_KEY"
#: The environment variable holding the second factor's code when ``--totp`` is not given.
TOTP_ENV = "KEYONG_TOTP"

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        dir_okay=False,
        help=f"A file holding your own API key (from `keyong key issue`), else ${KEY_ENV}.",
        show_default=False,
    ),
]


TotpOption = Annotated[
    str | None,
    typer.Option(
        "--totp",
        envvar=TOTP_ENV,
        help=f"With an API key: the current code of your second factor (TOTP), else ${TOTP_ENV}.",
        show_default=False,
    ),
]


class CredentialError(AuthenticationError):
    """No usable credential of the person who acts; the CLI exits 1 with the reason."""


#: A key file holds one API key or one JWT; anything longer is not one (``/dev/zero`` was read without end).
MAX_KEY_FILE_BYTES = 4096


def _key_file_text(key_file: Path) -> str:
    """The key file's text, if it is a small regular file of the user running the CLI that nobody else
    may read or write (as ``ssh`` refuses an unprotected private key). A key others can read is a key
    they may have used: an act on it would name its person while proving nothing (SATRE 3.2.01);
    a file owned by another account is another person's key, whoever can read it (the host's root)."""
    try:
        fd = os.open(key_file, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise CredentialError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CredentialError(f"the key file {key_file} is not a regular file")
        if info.st_uid != os.geteuid():
            raise CredentialError(
                f"the key file {key_file} belongs to another account (uid {info.st_uid}): give your own key"
            )
        if info.st_mode & 0o077:
            raise CredentialError(
                f"the key file {key_file} may be read or written by others (mode {stat.S_IMODE(info.st_mode):o}): "
                f"whoever can read it can act as you; `chmod 600 {key_file}` and rotate the key if others read it"
            )
        raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise CredentialError(f"the key file {key_file} holds more than an API key or a token")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"the key file {key_file} is not UTF-8 text") from None


def read_credential(key_file: Path | None) -> str | None:
    """The credential text from ``key_file`` or ``$KEYONG_API_KEY``; ``None`` when neither is given."""
    if key_file is not None:
        text = _key_file_text(key_file)
        if not text:
            raise CredentialError(f"the key file {key_file} is empty")
        return text
    text = os.environ.get(KEY_ENV, "").strip()
    return text or None


def _is_token(credential: str) -> bool:
    return credential.count(".") == 2 and not credential.startswith("ky_")


def authenticate(instance: Instance, credential: str) -> Principal:
    """The principal a credential speaks for, checked as the API checks it (API key, or its JWT); the
    second factor of a key is checked by :func:`own_actor` once the key's role fits the act."""
    identity = instance.identity
    if _is_token(credential):
        return identity.authenticate_token(credential)  # an expired or logged-out token is refused here
    return identity.authenticate_api_key(credential)


def own_actor(
    instance: Instance,
    key_file: Path | None,
    role: str | tuple[str, ...],
    *,
    claimed: str | None,
    how: str,
    totp: str | None = None,
) -> Actor:
    """The actor of a person's own act: the principal of the credential given, which must hold ``role``.

    ``claimed`` is a name the command line gave (``--reviewer``, ``--operator``): it must be the
    credential's own principal, never someone else's. ``how`` tells the user how to act instead.
    """
    credential = read_credential(key_file)
    if credential is None:
        who = f" as {claimed!r}" if claimed else ""
        raise CredentialError(
            f"this act needs the credential of the person who acts{who}: the host administrator cannot act "
            f"in their name (SATRE 3.1.06). {how}"
        )
    try:
        principal = authenticate(instance, credential)
    except AuthenticationError as exc:
        raise CredentialError(f"credential refused: {exc}") from None
    actor = actor_of(principal)
    roles = (role,) if isinstance(role, str) else role
    if actor.role not in roles:
        wanted = " or ".join(repr(r) for r in roles)
        raise CredentialError(
            f"the key is {actor.name!r}'s, a key of role {actor.role!r}: this act needs a key of role {wanted}. {how}"
        )
    if claimed is not None and claimed != actor.name:
        raise CredentialError(
            f"the key is {actor.name!r}'s, not {claimed!r}'s: one acts only as oneself (SATRE 3.1.06). {how}"
        )
    if not _is_token(credential):  # a key is one factor: the code of the second is spent here (SATRE 3.2.04)
        try:
            instance.identity.check_totp(actor.name, totp)
        except AuthenticationError as exc:  # a failed login, as over the API (SATRE 2.5.03): never the code
            from registry import SecurityEventKind

            instance.registry.security.record(
                SecurityEventKind.LOGIN_FAILED,
                source="host",
                principal=actor.name,
                route="keyong (CLI)",
                detail=str(exc),
            )
            raise CredentialError(f"second factor refused: {exc} (give --totp CODE or ${TOTP_ENV})") from None
        try:  # a held person acts nothing until a second agency person confirms it (SATRE 3.2.01; a token is
            instance.identity.ensure_not_held(actor.name)  # checked in authenticate_token)
        except AuthenticationError as exc:
            raise CredentialError(f"credential refused: {exc}") from None
    return actor


#: How an operator's act may be done from the CLI (said when a given credential does not fit).
HOW_TO_ACT = (
    "Give the operator's own key (--key-file FILE or $KEYONG_API_KEY, with --totp CODE), or give none: "
    "the host administrator then acts for the operator and the ledger names the host as the actor, "
    "the operator as the subject."
)


def operator_actor(instance: Instance, key_file: Path | None, operator: str | None, totp: str | None = None) -> Actor:
    """Who does an operator's act from the CLI (submit, mitigate, request, resubmit, withdraw, fetch).

    With the operator's own credential, that principal (``--operator`` must name it). Without one, the
    host administrator, recorded as itself: the ledger's actor is the host and the operator stays the
    subject (the entries' ``operator`` payload key, or the job or release they name), so the ledger
    never shows an operator doing what the host did (SATRE 3.1.06). These are acts the host may do for
    an operator (DESIGN.md: ``--operator`` names whom the command is for); a vote is not one of them.
    """
    if read_credential(key_file) is None:
        return Actor.host()
    return own_actor(instance, key_file, "operator", claimed=operator, how=HOW_TO_ACT, totp=totp)
