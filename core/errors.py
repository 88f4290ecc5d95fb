"""The errors every domain raises when it refuses an operation.

One family across the registry, the sandbox and the operators, so the API and the console map
them to 4xx answers in one place: a refusal says why and what would make it acceptable.
"""

from __future__ import annotations

__all__ = ["NotFoundError", "PermissionDeniedError", "RegistryError", "UsageError"]


class RegistryError(Exception):
    """A registry operation was refused; the message says why and what would make it acceptable."""


class NotFoundError(RegistryError):
    """The named resource, licence, operator, product or objection does not exist (or is not visible)."""


class PermissionDeniedError(RegistryError):
    """The actor's role may not do this."""


class UsageError(RegistryError):
    """The request names something that does not exist (a dataset, a scenario, a job kind): a usage error.

    Not a refusal of a right: nothing was attempted that the rules forbid, so it is never a violation
    (双鸭山 第三十一条 is about data used otherwise than licensed, not about typos). The message says what
    was not recognised and, where it can, what was meant.
    """
