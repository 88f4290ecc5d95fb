"""Composition only: settings, the instance home, and the three adapters over the domain packages.

``app.api`` is the FastAPI application and every HTTP router, ``app.cli`` the ``keyong`` command line,
``app.console`` the web console; ``app.instance`` wires the packages over one home, ``app.demo`` plays
the whole flow on generated data. None of them holds a domain rule.
"""

from typing import TYPE_CHECKING, Any

from app.instance import Instance, InstanceError
from app.settings import Settings

if TYPE_CHECKING:
    from app.api import create_app

__all__ = ["Instance", "InstanceError", "Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI costs ~1 s to import; CLI commands that serve nothing should not pay for it.
    if name == "create_app":
        from app.api import create_app

        return create_app
    raise AttributeError(name)
