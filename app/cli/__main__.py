"""``python -m app.cli``: the ``keyong`` command without the installed console script."""

from app.cli import main

main()
