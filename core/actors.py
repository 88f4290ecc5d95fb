"""Who acts: a principal's name and role, or the host administrator, and the role check."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from core.errors import PermissionDeniedError

__all__ = ["HOST_ROLE", "Actor", "actor_of", "require_role"]

HOST_ROLE = "host"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a principal's name and role (``operators.Principal`` fits), or the host administrator."""

    name: str
    role: str

    @classmethod
    def host(cls) -> Actor:
        """The local administrator acting through the CLI (DESIGN.md: the CLI acts for the implied role)."""
        return cls(f"host:{getpass.getuser()}", HOST_ROLE)

    @property
    def is_host(self) -> bool:
        return self.role == HOST_ROLE


def actor_of(who: Any) -> Actor:
    """Accept anything with ``name`` and ``role`` (a ``Principal`` whose role is a StrEnum, say)."""
    if who is None:
        return Actor.host()
    if isinstance(who, Actor):
        return who
    return Actor(str(who.name), str(getattr(who.role, "value", who.role)))


def require_role(actor: Actor, *roles: str) -> None:
    """Refuse unless ``actor`` holds one of ``roles``; the host administrator may act for any role."""
    if actor.is_host or actor.role in roles:
        return
    raise PermissionDeniedError(f"role {actor.role!r} may not do this; allowed: {', '.join(sorted(roles))}")
