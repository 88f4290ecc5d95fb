"""Every person's second factor: a TOTP (RFC 6238) secret, enrolled, confirmed, checked once per step.

SATRE 3.2.04 (and 1.5.05, 3.2.01) asks that a person's access take a second factor;
黑龙江省政务数据管理暂行办法 第三十八条 asks for account security (身份认证) and 双鸭山市公共数据管理暂行办法
第六十条 for 加密认证 measures. So an API key alone no longer obtains a token (``POST /auth/token``),
opens a console session or casts a person's own act from the CLI: each also needs the current six-digit
code of the principal's authenticator.

Why it is built this way:

* **The secret is never in clear in the database.** It is sealed with AES-256-GCM under the instance's
  ``totp.key`` (``app.keys``), with the principal's name as associated data, so a copied database gives
  nobody a factor, and a sealed secret moved onto another principal's row does not open.
* **Enrolment shows the secret once** (with its ``otpauth://`` URI) and **counts only once a first valid
  code confirmed it**: until then the login stays refused. A person who holds only an API key enrols
  with that key (the key is the first factor, shown once to that person alone); a confirmed factor is
  never replaced that way: losing it takes a reset.
* **A reset is the agency's or the host's** (never one's own: whoever held only a stolen key could
  otherwise swap the factor), takes a reason, is ledgered, and deletes the factor: the next login needs a
  new enrolment.
* **Replay guard**: a code's time step is accepted at most once per principal, and never one older than
  the last accepted (RFC 6238 §5.2), by a conditional UPDATE so two requests racing with one code cannot
  both win. One step (30 s) of clock skew either way is accepted (§6).
* **Brute-force guard** (RFC 4226 §7.3; RFC 6238 §5.2 "the verifier SHOULD" throttle): a key alone makes
  a thief try codes, three of a million of which are accepted per try, so without a limit some 330 000
  requests would find one. After :data:`MAX_FAILURES` wrong codes in a row the factor refuses every code
  (the right one too, so a locked factor tells nothing) for a number of steps that doubles with each
  further wrong code, up to :data:`MAX_LOCK_STEPS` (an hour); a right code ends the run. The count is
  written in its own transaction after the refused one rolled back (:meth:`SecondFactors.counting` around
  each of the identity service's transactions that spend a code), and each lock is ledgered
  (``principal.totp_locked``). Whoever holds the key can so lock its owner out for a while; the agency's
  reset ends the lock.
* Nothing ledgered or recorded holds the secret or a code; a refused code is a failed login for the
  security events (the HTTP adapters mark it) and counts toward their alerts.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from base64 import b32encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core import Actor, Recorder
from operators.errors import AuthenticationError, IdentityError
from operators.models import PrincipalRow, TotpRow, utcnow

STEP_SECONDS = 30
DIGITS = 6
#: Steps of clock skew accepted either side of the verifier's (RFC 6238 §6 recommends at most one).
SKEW_STEPS = 1
#: Steps looked at only to tell an expired code from a wrong one (never accepted).
_EXPIRED_STEPS = 10
#: Wrong codes in a row after which the factor is locked (RFC 4226 §7.3's throttling parameter).
MAX_FAILURES = 5
#: The longest lock, in steps (an hour); the first is one step, doubling with each further wrong code.
MAX_LOCK_STEPS = 120
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4's recommended length
ISSUER = "Keyong"
_NONCE = 12

__all__ = [
    "DIGITS",
    "MAX_FAILURES",
    "MAX_LOCK_STEPS",
    "STEP_SECONDS",
    "SecondFactors",
    "TotpEnrolment",
    "WrongCodeError",
    "totp_code",
]


def _wall() -> float:
    """The verifier's clock (looked up at each call, so a test may move it for every instance at once)."""
    return time.time()


def totp_code(secret: bytes, at: float) -> str:
    """The code of ``secret`` at POSIX time ``at`` (six digits, SHA-1, 30 s: what authenticator apps use)."""
    return TOTP(secret, DIGITS, SHA1(), STEP_SECONDS, enforce_key_length=False).generate(at).decode("ascii")


def _b32(secret: bytes) -> str:
    return b32encode(secret).decode("ascii").rstrip("=")


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A new, unconfirmed second factor: ``secret`` (base32) and ``uri`` are shown this once."""

    principal: str
    secret: str
    uri: str


class WrongCodeError(AuthenticationError):
    """A well-formed code that is not the factor's: it counts toward the lock (:meth:`SecondFactors.count_failure`)."""

    def __init__(self, message: str, factor_id: int) -> None:
        super().__init__(message)
        self.factor_id = factor_id


def lock_steps(failures: int) -> int:
    """Steps a factor stays locked after ``failures`` wrong codes in a row (0 below :data:`MAX_FAILURES`)."""
    if failures < MAX_FAILURES:
        return 0
    return min(1 << min(failures - MAX_FAILURES, 7), MAX_LOCK_STEPS)


def _clean_code(code: str | None) -> str:
    text = "".join((code or "").split())  # "123 456" as some apps show it
    if not text:
        raise AuthenticationError(
            "a second-factor code is required (totp: the 6 digits of your authenticator, RFC 6238)"
        )
    if len(text) != DIGITS or not text.isascii() or not text.isdigit():
        raise AuthenticationError(f"malformed second-factor code: {DIGITS} digits expected")
    return text


class SecondFactors:
    """Seal, enrol, check and reset TOTP factors inside the identity service's transactions."""

    def __init__(self, key: bytes, clock: Callable[[], float] | None = None) -> None:
        if len(key) != 32:
            raise ValueError("the TOTP key is 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self._clock = clock

    def now(self) -> float:
        return (self._clock or _wall)()

    @staticmethod
    def _aad(name: str) -> bytes:
        return f"keyong-totp:v1:{name}".encode()

    def _seal(self, name: str, secret: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret, self._aad(name))

    def _unseal(self, name: str, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], self._aad(name))
        except (InvalidTag, ValueError):
            raise AuthenticationError(
                "the second factor does not open under this instance's key: ask the agency to reset it"
            ) from None

    @staticmethod
    def _row(session: Session, principal: PrincipalRow) -> TotpRow | None:
        return session.scalar(select(TotpRow).where(TotpRow.principal_id == principal.id))

    def state(self, session: Session, principal: PrincipalRow) -> str | None:
        """``"confirmed"``, ``"pending"`` (enrolled, no code yet) or ``None`` (none: enrol)."""
        row = self._row(session, principal)
        return None if row is None else ("confirmed" if row.confirmed_at is not None else "pending")

    def enrol(self, session: Session, principal: PrincipalRow) -> TotpEnrolment:
        """A new secret for a principal without a confirmed factor (a pending one is replaced)."""
        row = self._row(session, principal)
        if row is not None and row.confirmed_at is not None:
            raise IdentityError(
                f"principal {principal.name!r} already has a confirmed second factor: a lost one is reset by "
                "the agency (`keyong principal totp-reset NAME --reason R`), then enrolled again"
            )
        secret = secrets.token_bytes(SECRET_BYTES)
        sealed = self._seal(principal.name, secret)
        if row is None:
            session.add(TotpRow(principal_id=principal.id, sealed_secret=sealed, created_at=utcnow()))
        else:
            row.sealed_secret, row.created_at, row.last_step = sealed, utcnow(), None
        session.flush()
        uri = TOTP(secret, DIGITS, SHA1(), STEP_SECONDS, enforce_key_length=False).get_provisioning_uri(
            principal.name, ISSUER
        )
        return TotpEnrolment(principal.name, _b32(secret), uri)

    def consume(self, session: Session, principal: PrincipalRow, code: str | None, *, confirming: bool) -> bool:
        """Accept ``code`` for ``principal`` once, or raise :class:`AuthenticationError` saying why.

        ``confirming``: the first code of a pending factor (which it confirms); otherwise the factor must
        already be confirmed. Returns whether this call confirmed the factor.
        """
        row = self._row(session, principal)
        if row is None:
            raise AuthenticationError(
                "no second factor enrolled: enrol one with your API key (POST /auth/totp/enrol, or log in to "
                "the console with the key alone), then confirm it with a first code"
            )
        if row.confirmed_at is None and not confirming:
            raise AuthenticationError(
                "the second factor is enrolled but not confirmed: confirm it with a first code "
                "(POST /auth/totp/confirm)"
            )
        if row.confirmed_at is not None and confirming:
            raise IdentityError(f"principal {principal.name!r}'s second factor is already confirmed")
        now = self.now()
        step = int(now // STEP_SECONDS)
        if row.locked_until_step is not None and step < row.locked_until_step:
            wait = int(row.locked_until_step * STEP_SECONDS - now) + 1
            raise AuthenticationError(
                f"too many wrong second-factor codes: the factor is locked, try again in {wait} s "
                "(or ask the agency to reset it)"
            )
        text = _clean_code(code)
        secret = self._unseal(principal.name, row.sealed_secret)
        matches = [s for s in range(step - SKEW_STEPS, step + SKEW_STEPS + 1) if self._is(secret, s, text)]
        if not matches:
            old = any(self._is(secret, s, text) for s in range(step - _EXPIRED_STEPS, step - SKEW_STEPS))
            raise WrongCodeError(
                "expired second-factor code: use the current one"
                if old
                else "wrong second-factor code (is the authenticator's clock right?)",
                row.id,
            )
        accepted = max(matches)
        values: dict[str, object] = {"last_step": accepted, "failures": 0, "locked_until_step": None}
        if confirming:
            values["confirmed_at"] = utcnow()
        done = session.execute(
            update(TotpRow)
            .where(TotpRow.id == row.id, or_(TotpRow.last_step.is_(None), TotpRow.last_step < accepted))
            .values(**values),
            execution_options={"synchronize_session": False},
        )
        if getattr(done, "rowcount", 0) != 1:
            raise AuthenticationError("second-factor code already used: wait for the next code")
        session.expire(row)
        return confirming

    def count_failure(self, session: Session, factor_id: int) -> tuple[int, int]:
        """Count one wrong code of factor ``factor_id`` (in the caller's new transaction, after the refused one
        rolled back): ``(failures in a row, steps now locked)``; the lock starts at the next step boundary."""
        session.execute(
            update(TotpRow).where(TotpRow.id == factor_id).values(failures=TotpRow.failures + 1),
            execution_options={"synchronize_session": False},
        )
        failures = session.scalar(select(TotpRow.failures).where(TotpRow.id == factor_id)) or 0
        steps = lock_steps(failures)
        if steps:
            until = int(self.now() // STEP_SECONDS) + 1 + steps
            session.execute(
                update(TotpRow).where(TotpRow.id == factor_id).values(locked_until_step=until),
                execution_options={"synchronize_session": False},
            )
        return failures, steps

    @contextmanager
    def counting(self, recorder: Recorder, name: str) -> Iterator[None]:
        """Around a transaction that spends a code of principal ``name``: a wrong code is counted toward the
        factor's lock once that transaction rolled back, and a lock that starts is ledgered."""
        try:
            yield
        except WrongCodeError as exc:
            with recorder.change(Actor.host()) as change:
                failures, steps = self.count_failure(change.session, exc.factor_id)
                if steps:
                    change.log("principal.totp_locked", f"principal:{name}", {"failures": failures, "steps": steps})
            raise

    def confirm_on_host(self, session: Session, principal: PrincipalRow) -> None:
        """Mark a just-enrolled factor confirmed without a code (the host enrolled it with the principal)."""
        row = self._row(session, principal)
        if row is None:
            raise IdentityError(f"principal {principal.name!r} has no second factor to confirm")
        row.confirmed_at = utcnow()
        session.flush()

    @staticmethod
    def _is(secret: bytes, step: int, code: str) -> bool:
        return hmac.compare_digest(totp_code(secret, step * STEP_SECONDS), code)

    def reset(self, session: Session, principal: PrincipalRow) -> str:
        """Delete a principal's factor (its next login must enrol again); the state it had."""
        row = self._row(session, principal)
        if row is None:
            raise IdentityError(f"principal {principal.name!r} has no second factor to reset")
        state = "confirmed" if row.confirmed_at is not None else "pending"
        session.delete(row)
        session.flush()
        return state
