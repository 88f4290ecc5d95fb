"""The ``keyong`` command line (DESIGN.md, Command-line contract): one module per command group.

``root`` holds the typer application with ``init``, ``demo``, ``serve`` and ``worker`` and mounts the
groups (``dataset``, ``operator``, ``licence``, ``job``, ``release``, ``ledger`` ...); ``conventions``
holds what every command shares (``--home``, ``--json``, output, exit code 1 for refusals). The
console script ``keyong`` and ``python -m app.cli`` both call :func:`main`.
"""

from app.cli.root import cli, main

__all__ = ["cli", "main"]
