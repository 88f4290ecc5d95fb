"""Composition only: settings, the instance home, the FastAPI app and the ``keyong`` CLI."""

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
