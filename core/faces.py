"""A package face that loads on first use (PEP 562), so a command imports only what it runs (issue 21).

``keyong --help`` imports every command module, and each names a few things of the domain packages in its
options (``Role``, ``LicenceState``, ``Actor``): the face gives those from their light modules alone. Any
other name loads the whole face at once, in the order of its import lines, as importing the package did
before: its ORM models register together, so mapper configuration and ``metadata`` stay complete.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Collection, Mapping
from typing import Any


class LazyFace:
    """The ``__getattr__`` of a package face: each public name from the module that defines it.

    ``names`` maps each module to the names it gives, separated by spaces (``public=defined`` where the face
    renames one). A name of a module in ``alone`` loads that module only; with ``whole``, any other name
    loads every other module (a face whose modules register tables or mappers), else just its own.
    """

    def __init__(
        self, package: str, names: Mapping[str, str], *, alone: Collection[str] = (), whole: bool = True
    ) -> None:
        self.package = package
        self.modules: dict[str, list[tuple[str, str]]] = {}
        for module, given in names.items():
            pairs = [(item.partition("=")[0], item.partition("=")[2] or item) for item in given.split()]
            self.modules[module] = pairs
        self.home = {public: (module, defined) for module, pairs in self.modules.items() for public, defined in pairs}
        self.alone = frozenset(alone)
        self.whole = whole

    @property
    def namespace(self) -> dict[str, Any]:
        return vars(sys.modules[self.package])

    def load(self, name: str) -> Any:
        """The value of ``name``, imported now and kept in the package (later look-ups cost nothing)."""
        home = self.home.get(name)
        if home is None:  # a submodule (``from registry import requests``) is then imported by the import system
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        module, defined = home
        if self.whole and module not in self.alone:
            self.load_all()
            return self.namespace[name]
        value = getattr(importlib.import_module(module), defined)
        self.namespace[name] = value
        return value

    def load_all(self) -> None:
        """The names of every module not loaded ``alone``, imported in the face's order (as its eager imports did)."""
        namespace = self.namespace
        for module, pairs in self.modules.items():
            if module in self.alone:
                continue
            loaded = importlib.import_module(module)
            for public, defined in pairs:
                namespace[public] = getattr(loaded, defined)
