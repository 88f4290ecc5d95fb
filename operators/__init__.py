"""The operator-facing side: identities, principals and roles, API keys and JWTs, people's standing, job submission.

HTTP lives in ``app.api`` (the role guard among it): this package imports no web framework.
"""

from typing import TYPE_CHECKING, Any

from core import LazyFace

if TYPE_CHECKING:
    from operators.errors import (
        AuthenticationError,
        IdentityError,
        IdentityPermissionError,
        OrganisationError,
        UnknownPrincipalError,
    )
    from operators.identity import AGENCY_MANAGES, IdentityService, NewApiKey, host_actor
    from operators.instance_usage import REPORT_ROLES, usage_report
    from operators.jobs import JobRefusedError, Jobs, JobUsageError, Quotas
    from operators.models import metadata
    from operators.people import People
    from operators.recovery import HoldKind, RecoveryHoldError
    from operators.roles import Role
    from operators.second_factor import STEP_SECONDS, TotpEnrolment, totp_code
    from operators.sessions import Principal
    from operators.tokens import Claims, IssuedToken, JwtKeyring, SigningKey, TokenError, TokenService, jwt_key_id

__all__ = [
    "AGENCY_MANAGES",
    "REPORT_ROLES",
    "STEP_SECONDS",
    "AuthenticationError",
    "Claims",
    "HoldKind",
    "IdentityError",
    "IdentityPermissionError",
    "IdentityService",
    "IssuedToken",
    "JobRefusedError",
    "JobUsageError",
    "Jobs",
    "JwtKeyring",
    "NewApiKey",
    "OrganisationError",
    "People",
    "Principal",
    "Quotas",
    "RecoveryHoldError",
    "Role",
    "SigningKey",
    "TokenError",
    "TokenService",
    "TotpEnrolment",
    "UnknownPrincipalError",
    "host_actor",
    "jwt_key_id",
    "metadata",
    "totp_code",
    "usage_report",
]

#: Each module of this face -> the names it gives.
_NAMES: dict[str, str] = {
    "operators.errors": (
        "AuthenticationError IdentityError IdentityPermissionError OrganisationError UnknownPrincipalError"
    ),
    "operators.identity": "AGENCY_MANAGES IdentityService NewApiKey host_actor",
    "operators.models": "metadata",
    "operators.recovery": "HoldKind RecoveryHoldError",
    "operators.roles": "Role",
    "operators.second_factor": "STEP_SECONDS TotpEnrolment totp_code",
    "operators.sessions": "Principal",
    "operators.tokens": "Claims IssuedToken JwtKeyring SigningKey TokenError TokenService jwt_key_id",
    "operators.instance_usage": "REPORT_ROLES usage_report",
    "operators.jobs": "JobRefusedError Jobs JobUsageError Quotas",
    "operators.people": "People",
}

# Roles and the errors come alone (the command line's options and refusals). Submission pulls in the
# queue and DP planning (~0.8 s), the usage report counts over every package, People stands on the
# registry's records: each is loaded when first asked for. Any other name loads the identities together.
_FACE = LazyFace(
    "operators",
    _NAMES,
    alone=("operators.errors", "operators.roles", "operators.instance_usage", "operators.jobs", "operators.people"),
)


def __getattr__(name: str) -> Any:
    return _FACE.load(name)
