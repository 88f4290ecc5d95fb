"""Refusals of the identity service (principals, keys, organisations), in one place both its modules share."""


class IdentityError(Exception):
    """A principal or key operation was refused."""


class AuthenticationError(IdentityError):
    """Credentials were missing, malformed, unknown, revoked or belong to an inactive principal."""


class UnknownPrincipalError(IdentityError):
    """No principal or key of that name or id."""


class IdentityPermissionError(IdentityError):
    """The acting principal may not manage that principal or key."""


class OrganisationError(IdentityError):
    """The organisation given does not fit the principal's role: a usage error (the message says what to give)."""


__all__ = [
    "AuthenticationError",
    "IdentityError",
    "IdentityPermissionError",
    "OrganisationError",
    "UnknownPrincipalError",
]
