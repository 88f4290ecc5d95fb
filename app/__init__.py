"""Composition only: settings, the instance home, the FastAPI app and the ``keyong`` CLI."""

from app.api import create_app
from app.instance import Instance, InstanceError
from app.settings import Settings

__all__ = ["Instance", "InstanceError", "Settings", "create_app"]
