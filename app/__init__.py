"""Composition only: settings, the instance home, and the three adapters over the domain packages.

``app.api`` is the FastAPI application and every HTTP router, ``app.cli`` the ``keyong`` command line,
``app.console`` the web console; ``app.instance`` wires the packages over one home, ``app.demo`` plays
the whole flow on generated data. None of them holds a domain rule.

The names load on first use (PEP 562): ``keyong --help`` imports ``app`` (it holds ``app.cli``) and
must not pay for the instance's whole stack (SQLAlchemy, Alembic, every domain package, issue 21), nor
for FastAPI, which costs about a second.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.api import create_app
    from app.instance import Instance, InstanceError
    from app.settings import Settings

__all__ = ["Instance", "InstanceError", "Settings", "create_app"]

#: Each public name -> the module that defines it, imported when the name is first asked for.
_HOMES = {
    "Instance": "app.instance",
    "InstanceError": "app.instance",
    "Settings": "app.settings",
    "create_app": "app.api",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
