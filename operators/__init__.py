"""The operator-facing side: identities, API keys and JWTs (later: licences as an operator
sees them, job submission and privacy-budget accounting)."""

from operators.api import authenticator, build_router, role_guard
from operators.identity import (
    AuthenticationError,
    IdentityError,
    IdentityService,
    NewApiKey,
    Principal,
)
from operators.models import metadata
from operators.roles import Role
from operators.tokens import Claims, IssuedToken, TokenError, TokenService

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
    "metadata",
    "role_guard",
]
