"""HTTP side of identities: ``POST /auth/token``, ``GET /me``, people and keys, and the role dependency.

People and keys (issue 17): the agency lists, adds, suspends and restores principals and issues,
rotates and revokes their keys; which principals it may manage (operators, custodians, its own keys)
is ``operators.identity``'s rule, answered here as 403. A secret is in one response only, marked
``Cache-Control: no-store``; a revoked or rotated key ends its JWTs at once, and ``POST /auth/logout``
ends the presented JWT itself.

The role guard is a FastAPI dependency, so it lives with the HTTP adapter and ``operators`` keeps
only the identity service, tokens and roles. The other routers get role enforcement by injection:
the factory passes them ``require`` (from :func:`role_guard`), so each router module depends on its
own service and not on how principals are authenticated.
"""

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from app.api.limits import Text
from app.api.second_factor import TotpField, failed_login, second_factor_routes
from app.api.security import mark, note_principal
from operators import (
    AuthenticationError,
    IdentityError,
    IdentityPermissionError,
    IdentityService,
    NewApiKey,
    OrganisationError,
    Principal,
    RecoveryHoldError,
    Role,
    UnknownPrincipalError,
)
from registry import SecurityEventKind

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /auth/token")


class TokenRequest(BaseModel):
    api_key: str = Field(
        min_length=1,
        max_length=256,
        description="An API key printed by `keyong init`.",
        examples=["ky_0123456789abcdef_" + "x" * 43],
    )
    totp: str | None = TotpField  # without it (or with a wrong or used one) no token: SATRE 3.2.04


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    role: Role
    sub: str


class PrincipalOut(BaseModel):
    name: str
    role: Role


NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,126}[a-z0-9]$"
KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="A key id: 16 hex digits.")]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128, description="A principal's name.")]


class KeyOut(BaseModel):
    """An API key as listed: its public id and dates, never its secret."""

    key_id: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    live: bool


class RecoveryHoldOut(BaseModel):
    kind: Literal["key_issued", "key_rotated", "totp_reset", "unconfirmed"]
    by: str = Field(description="Who performed the recovery (or created the principal): not the one to confirm it.")
    at: str
    reason: str


class PrincipalListItem(BaseModel):
    name: str
    role: Role
    active: bool
    created_at: str
    org: str | None = None
    keys: list[KeyOut] = []
    second_factor: Literal["confirmed", "pending"] | None = Field(
        default=None, description="The TOTP second factor: confirmed, enrolled but pending a first code, or none."
    )
    recovery_hold: list[RecoveryHoldOut] | None = Field(
        default=None,
        description="Open recovery holds (SATRE 3.2.01): while any is open the principal's acts are refused.",
    )


class RecoveryIn(BaseModel):
    reason: Text = Field(min_length=1, max_length=500, description="Why; recorded in the ledger.")


class RecoveryOut(PrincipalListItem):
    confirmed: list[str]
    confirmed_by: str


class PrincipalIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=128, examples=["acme-analyst"])
    role: Role = Field(description="An agency principal may add operators and custodians.")
    org: str | None = Field(default=None, max_length=128, description="The organisation the person acts for.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "acme-ops", "role": "operator", "org": "acme-ops"}]}
    )


class ReasonIn(BaseModel):
    reason: Text = Field(
        min_length=1, max_length=2000, description="Why; recorded in the ledger.", examples=["离职，停用账号"]
    )


class NewKeyOut(BaseModel):
    """A new key: ``api_key`` is in this response only (Keyong keeps its SHA-256 digest)."""

    principal: str
    role: Role
    key_id: str
    api_key: str
    replaced: str | None = None


class RevokedKeyOut(KeyOut):
    principal: str


class LogoutOut(BaseModel):
    revoked: bool


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _refused(exc: IdentityError) -> HTTPException:
    """A refusal of the identity service as its 4xx: 404 unknown, 403 not allowed, 422 an organisation that
    does not fit the role (a usage error), 409 otherwise."""
    if isinstance(exc, UnknownPrincipalError):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc))
    if isinstance(exc, IdentityPermissionError):
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc))
    if isinstance(exc, OrganisationError):
        return HTTPException(422, detail=str(exc))
    return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))


def _new_key(response: Response, new: NewApiKey, replaced: str | None = None) -> NewKeyOut:
    response.headers["Cache-Control"] = "no-store"
    return NewKeyOut(
        principal=new.principal.name,
        role=new.principal.role,
        key_id=new.key_id,
        api_key=new.api_key,
        replaced=replaced,
    )


def authenticator(identity: IdentityService) -> Callable[..., Principal]:
    """The FastAPI dependency that turns a bearer JWT into the acting :class:`Principal`."""

    def current_principal(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            mark(request, SecurityEventKind.TOKEN_REJECTED, None, "missing bearer token")
            raise _unauthorized("missing bearer token")
        try:
            principal = identity.authenticate_token(credentials.credentials)
        except RecoveryHoldError as exc:  # authenticated, but held until a second person confirms (SATRE 3.2.01)
            mark(request, SecurityEventKind.FORBIDDEN, identity.claimed_name(credentials.credentials), str(exc))
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
        except AuthenticationError as exc:  # a security event (SATRE 2.5.03): who it claimed to be, and why
            mark(request, SecurityEventKind.TOKEN_REJECTED, identity.claimed_name(credentials.credentials), str(exc))
            raise _unauthorized(str(exc)) from None
        note_principal(request, principal.name)
        return principal

    return current_principal


def role_guard(identity: IdentityService) -> Callable[..., Callable[..., Principal]]:
    """``require(*roles)``: a dependency admitting only principals holding one of ``roles``."""
    current_principal = authenticator(identity)

    def require(*roles: Role) -> Callable[..., Principal]:
        allowed = frozenset(roles)
        if not allowed:
            raise ValueError("require() needs at least one role")

        def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
            if principal.role not in allowed:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail=f"role {principal.role.value!r} may not do this; allowed: "
                    + ", ".join(sorted(str(getattr(r, "value", r)) for r in allowed)),
                )
            return principal

        dependency.roles = tuple(sorted(str(getattr(r, "value", r)) for r in allowed))  # type: ignore[attr-defined]
        return dependency

    return require


def build_router(identity: IdentityService) -> APIRouter:
    router = APIRouter(tags=["identity"])
    require = role_guard(identity)
    any_role = require(*Role)

    @router.post("/auth/token", response_model=TokenResponse)
    def issue_token(body: TokenRequest, request: Request) -> TokenResponse:
        """Exchange an API key and the current code of its principal's second factor (``totp``) for a short-lived
        JWT. Without a confirmed second factor, or with a wrong, expired or already used code: 401, no token."""
        try:
            issued = identity.exchange(body.api_key, body.totp)
        except AuthenticationError as exc:  # a failed login: a security event, never with the key or the code
            raise failed_login(request, identity, body.api_key, exc) from None
        return TokenResponse(
            access_token=issued.token,
            expires_at=issued.claims.expires_at.isoformat(),
            role=issued.claims.role,
            sub=issued.claims.sub,
        )

    @router.get("/me", response_model=PrincipalOut)
    def me(principal: Annotated[Principal, Depends(any_role)]) -> PrincipalOut:
        """Who the bearer token speaks for: the principal's name and role."""
        return PrincipalOut(name=principal.name, role=principal.role)

    @router.get("/principals", response_model=list[PrincipalListItem])
    def principals(
        _: Annotated[Principal, Depends(require(Role.AGENCY, Role.REGULATOR))],
    ) -> list[PrincipalListItem]:
        """Who may act on the platform; for the agency that licenses and the regulator that supervises."""
        return [PrincipalListItem.model_validate(p) for p in identity.list_principals()]

    @router.post("/auth/logout", response_model=LogoutOut)
    def logout(
        _: Annotated[Principal, Depends(any_role)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> LogoutOut:
        """End the presented JWT now (any role); the API key keeps working."""
        return LogoutOut(revoked=identity.revoke_token(credentials.credentials if credentials else ""))

    _people_routes(router, identity, require)
    _recovery_route(router, identity, require(Role.AGENCY))
    second_factor_routes(router, identity, _refused)
    _first_login_route(router, identity, require(Role.AGENCY))
    return router


def _people_routes(
    router: APIRouter, identity: IdentityService, require: Callable[..., Callable[..., Principal]]
) -> None:
    """People and keys, for the agency (issue 17)."""
    agency = require(Role.AGENCY)

    @router.get("/principals/{name}", response_model=PrincipalListItem)
    def principal(
        name: NamePath, _: Annotated[Principal, Depends(require(Role.AGENCY, Role.REGULATOR))]
    ) -> PrincipalListItem:
        """One principal with its organisation and key ids (agency, regulator)."""
        try:
            return PrincipalListItem.model_validate(identity.get_principal(name))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/principals", response_model=NewKeyOut, status_code=201)
    def add_principal(body: PrincipalIn, response: Response, by: Annotated[Principal, Depends(agency)]) -> NewKeyOut:
        """Add a person with a first API key, shown in this response only (agency)."""
        try:
            return _new_key(response, identity.create_principal(body.name, body.role, org=body.org, by=by))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/principals/{name}/keys", response_model=NewKeyOut, status_code=201)
    def issue_key(name: NamePath, response: Response, by: Annotated[Principal, Depends(agency)]) -> NewKeyOut:
        """A further API key for a principal, shown in this response only (agency)."""
        try:
            return _new_key(response, identity.issue_api_key(name, by=by))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/principals/{name}/suspend", response_model=PrincipalListItem)
    def suspend(name: NamePath, body: ReasonIn, by: Annotated[Principal, Depends(agency)]) -> PrincipalListItem:
        """Suspend a principal: its keys and tokens stop working at once (agency)."""
        try:
            identity.set_active(name, False, by=by, reason=body.reason)
            return PrincipalListItem.model_validate(identity.get_principal(name))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/principals/{name}/restore", response_model=PrincipalListItem)
    def restore(name: NamePath, body: ReasonIn, by: Annotated[Principal, Depends(agency)]) -> PrincipalListItem:
        """Reactivate a suspended principal (agency)."""
        try:
            identity.set_active(name, True, by=by, reason=body.reason)
            return PrincipalListItem.model_validate(identity.get_principal(name))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/principals/{name}/totp/reset", response_model=PrincipalListItem)
    def reset_totp(name: NamePath, body: ReasonIn, by: Annotated[Principal, Depends(agency)]) -> PrincipalListItem:
        """Reset an operator's or custodian's second factor (agency; never its own): ledgered with the reason;
        the principal's next login must enrol again (``POST /auth/totp/enrol``)."""
        try:
            identity.reset_totp(name, by=by, reason=body.reason)
            return PrincipalListItem.model_validate(identity.get_principal(name))
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/keys/{key_id}/rotate", response_model=NewKeyOut, status_code=201)
    def rotate_key(key_id: KeyIdPath, response: Response, by: Annotated[Principal, Depends(agency)]) -> NewKeyOut:
        """Replace a key by a new one, shown in this response only; the old key's tokens end at once (agency)."""
        try:
            return _new_key(response, identity.rotate_api_key(key_id, by=by), replaced=key_id)
        except IdentityError as exc:
            raise _refused(exc) from None

    @router.post("/keys/{key_id}/revoke", response_model=RevokedKeyOut)
    def revoke_key(key_id: KeyIdPath, by: Annotated[Principal, Depends(agency)]) -> RevokedKeyOut:
        """Revoke a key: it and every token exchanged for it stop working at once (agency)."""
        try:
            return RevokedKeyOut.model_validate(identity.revoke_api_key(key_id, by=by))
        except IdentityError as exc:
            raise _refused(exc) from None


def _recovery_route(router: APIRouter, identity: IdentityService, agency: Callable[..., Principal]) -> None:
    """The second person of a recovery (``operators.recovery``): an agency session of its own, never the host."""

    @router.post("/principals/{name}/recovery/confirm", response_model=RecoveryOut)
    def confirm_recovery(name: NamePath, body: RecoveryIn, by: Annotated[Principal, Depends(agency)]) -> RecoveryOut:
        """Confirm a person's recovered credential, or a reviewer or custodian the host created (agency; never the
        held person nor whoever performed the recovery): ledgered ``principal.recovery_confirmed`` (SATRE 3.2.01)."""
        try:
            kinds = identity.confirm_recovery(name, by=by, reason=body.reason)
            item = identity.get_principal(name)
        except IdentityError as exc:
            raise _refused(exc) from None
        return RecoveryOut.model_validate({**item, "confirmed": kinds, "confirmed_by": by.name})


def _first_login_route(router: APIRouter, identity: IdentityService, agency: Callable[..., Principal]) -> None:
    """An operator's first login, for the agency (issue 17; ``keyong operator add --login`` on the host)."""

    @router.post(
        "/operators/{name}/login",
        response_model=NewKeyOut,
        status_code=201,
        responses={
            409: {"description": "The operator already has a login (a principal of its name)."},
            422: {"description": "No registered operator of that name."},
        },
    )
    def operator_login(name: NamePath, response: Response, by: Annotated[Principal, Depends(agency)]) -> NewKeyOut:
        """Create a registered operator's first login, as `keyong operator add --login` does (agency).

        The login is the operator principal of the operator's name (the platform knows an operator by
        it), acting for that operator; its API key is in this response only (``Cache-Control: no-store``;
        Keyong keeps its SHA-256 digest). Further keys: ``POST /principals/{name}/keys``."""
        try:
            return _new_key(response, identity.create_principal(name, Role.OPERATOR, org=name, by=by))
        except IdentityError as exc:
            raise _refused(exc) from None
