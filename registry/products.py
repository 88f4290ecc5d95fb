"""Placeholder: being built (issue 4)."""

from __future__ import annotations

from typing import Any


class Products:
    def __init__(self, *args: Any) -> None:
        self.args = args
