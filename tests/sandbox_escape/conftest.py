"""Every escape test runs against both ways a sandbox starts: fresh, and pre-started (issue 21)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sandbox_escape import PATHS, use_path


@pytest.fixture(params=PATHS, autouse=True)
def sandbox_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """The way this run of the test starts its sandboxes (``fresh`` or ``prestarted``)."""
    use_path(request.param)
    try:
        yield request.param
    finally:
        use_path("fresh")
