"""HTTP side of identities: ``POST /auth/token``, ``GET /me`` and the role dependency.

The role guard is a FastAPI dependency, so it lives with the HTTP adapter and ``operators`` keeps
only the identity service, tokens and roles. The other routers get role enforcement by injection:
the factory passes them ``require`` (from :func:`role_guard`), so each router module depends on its
own service and not on how principals are authenticated.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from operators import AuthenticationError, IdentityService, Principal, Role

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /auth/token")


class TokenRequest(BaseModel):
    api_key: str = Field(min_length=1, max_length=256, description="An API key printed by `keyong init`.")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: str
    role: Role
    sub: str


class PrincipalOut(BaseModel):
    name: str
    role: Role


class PrincipalListItem(BaseModel):
    name: str
    role: Role
    active: bool
    created_at: str


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def authenticator(identity: IdentityService) -> Callable[..., Principal]:
    """The FastAPI dependency that turns a bearer JWT into the acting :class:`Principal`."""

    def current_principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("missing bearer token")
        try:
            return identity.authenticate_token(credentials.credentials)
        except AuthenticationError as exc:
            raise _unauthorized(str(exc)) from None

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
    def issue_token(body: TokenRequest) -> TokenResponse:
        """Exchange an API key for a short-lived JWT."""
        try:
            issued = identity.exchange(body.api_key)
        except AuthenticationError as exc:
            raise _unauthorized(str(exc)) from None
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

    return router
