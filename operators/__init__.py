"""The operator-facing side: identities, principals and roles, API keys and JWTs, people's standing, job submission.

HTTP lives in ``app.api`` (the role guard among it): this package imports no web framework.
"""

from typing import TYPE_CHECKING, Any

from operators.errors import (
    AuthenticationError,
    IdentityError,
    IdentityPermissionError,
    OrganisationError,
    UnknownPrincipalError,
)
from operators.identity import AGENCY_MANAGES, IdentityService, NewApiKey, host_actor
from operators.models import metadata
from operators.recovery import HoldKind, RecoveryHoldError
from operators.roles import Role
from operators.second_factor import STEP_SECONDS, TotpEnrolment, totp_code
from operators.sessions import Principal
from operators.tokens import Claims, IssuedToken, JwtKeyring, SigningKey, TokenError, TokenService, jwt_key_id

if TYPE_CHECKING:
    from operators.instance_usage import REPORT_ROLES, usage_report
    from operators.jobs import JobRefusedError, Jobs, JobUsageError, Quotas
    from operators.people import People

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

_SUBMISSION = ("JobRefusedError", "JobUsageError", "Jobs", "Quotas")


def __getattr__(name: str) -> Any:
    # Submission pulls in the queue and DP planning (~0.8 s); identities alone (the CLI's tokens,
    # the database's metadata) should not pay for it.
    if name in _SUBMISSION:
        from operators import jobs

        return getattr(jobs, name)
    if name in ("REPORT_ROLES", "usage_report"):  # counts over every package: loaded when first asked
        from operators import instance_usage

        return getattr(instance_usage, name)
    if name == "People":  # over the registry's records (operators.people): loaded when first used
        from operators import people

        return people.People
    raise AttributeError(name)
