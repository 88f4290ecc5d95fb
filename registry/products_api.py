"""Placeholder: HTTP routes being built (issue 4)."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from registry.service import Registry


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    return APIRouter()
