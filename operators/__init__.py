"""The operator-facing side: identities, API keys and JWTs (later: licences as an operator
sees them, job submission and privacy-budget accounting)."""

from typing import TYPE_CHECKING, Any

from operators.identity import (
    AuthenticationError,
    IdentityError,
    IdentityService,
    NewApiKey,
    Principal,
    host_actor,
)
from operators.models import metadata
from operators.roles import Role
from operators.tokens import Claims, IssuedToken, TokenError, TokenService

if TYPE_CHECKING:
    from operators.api import authenticator, build_router, role_guard

__all__ = [
    "AuthenticationError",
    "Claims",
    "IdentityError",
    "IdentityService",
    "IssuedToken",
    "NewApiKey",
    "Principal",
    "Role",
    "TokenError",
    "TokenService",
    "authenticator",
    "build_router",
    "host_actor",
    "metadata",
    "role_guard",
]


def __getattr__(name: str) -> Any:
    # The HTTP layer pulls in FastAPI (~1 s); the CLI and workers import identities without it.
    if name in ("authenticator", "build_router", "role_guard"):
        from operators import api

        return getattr(api, name)
    raise AttributeError(name)
