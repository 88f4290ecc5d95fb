"""HTTP side of the second factor (SATRE 3.2.04): enrol and confirm with one's own API key, reset by the agency.

A person who holds only an API key enrols with that key (``POST /auth/totp/enrol``: the secret and its
``otpauth://`` URI are in that one response, ``Cache-Control: no-store``) and confirms with a first code
(``POST /auth/totp/confirm``); only then does ``POST /auth/token`` issue a token, and only with a current,
unused code. A refused key or code is a failed login in the security events (SATRE 2.5.03), recorded
with the name the key claimed, never the key or the code. The agency resets a lost factor of an operator
or custodian (``POST /principals/{name}/totp/reset``, with a reason; never its own): ledgered, and the
next login enrols again. The rules themselves are ``operators.IdentityService``'s.
"""

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from app.api.security import mark
from operators import AuthenticationError, IdentityError, IdentityService
from registry import SecurityEventKind

TOTP_DESCRIPTION = "The current 6-digit code of your authenticator (RFC 6238 TOTP, 30 s steps)."
TotpField = Field(default=None, max_length=16, description=TOTP_DESCRIPTION, examples=["492039"])


class KeyIn(BaseModel):
    api_key: str = Field(
        min_length=1, max_length=256, description="Your own API key.", examples=["ky_0123456789abcdef_" + "x" * 43]
    )


class KeyAndCodeIn(KeyIn):
    totp: str | None = TotpField


class TotpEnrolmentOut(BaseModel):
    """A new second factor: ``secret`` (base32) and ``uri`` (``otpauth://``, for an authenticator app's
    QR or manual entry) are in this response only; it counts once ``POST /auth/totp/confirm`` took a code."""

    principal: str
    secret: str
    uri: str
    confirmed: bool = False


class TotpConfirmedOut(BaseModel):
    principal: str
    confirmed: bool = True


def failed_login(request: Request, identity: IdentityService, api_key: str, exc: AuthenticationError) -> HTTPException:
    """Record a refused key or code as a failed login (never with the key or the code) and answer 401."""
    mark(request, SecurityEventKind.LOGIN_FAILED, identity.claimed_name(api_key), str(exc))
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"})


def second_factor_routes(
    router: APIRouter, identity: IdentityService, refused: Callable[[IdentityError], HTTPException]
) -> None:
    """``/auth/totp/enrol`` and ``/auth/totp/confirm``, on the identity router (the agency's reset is there too)."""

    @router.post(
        "/auth/totp/enrol",
        response_model=TotpEnrolmentOut,
        status_code=201,
        responses={409: {"description": "A confirmed second factor exists: the agency resets a lost one."}},
    )
    def enrol(body: KeyIn, request: Request, response: Response) -> TotpEnrolmentOut:
        """Enrol a second factor with your own API key: the secret and URI are shown in this response only."""
        try:
            new = identity.enrol_totp(body.api_key)
        except AuthenticationError as exc:
            raise failed_login(request, identity, body.api_key, exc) from None
        except IdentityError as exc:
            raise refused(exc) from None
        response.headers["Cache-Control"] = "no-store"
        return TotpEnrolmentOut(principal=new.principal, secret=new.secret, uri=new.uri)

    @router.post(
        "/auth/totp/confirm",
        response_model=TotpConfirmedOut,
        responses={409: {"description": "The second factor is already confirmed."}},
    )
    def confirm(body: KeyAndCodeIn, request: Request) -> TotpConfirmedOut:
        """Confirm the enrolled second factor with its first code; from then on ``POST /auth/token`` needs a code."""
        try:
            name = identity.confirm_totp(body.api_key, body.totp)
        except AuthenticationError as exc:
            raise failed_login(request, identity, body.api_key, exc) from None
        except IdentityError as exc:
            raise refused(exc) from None
        return TotpConfirmedOut(principal=name)
