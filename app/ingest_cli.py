"""Placeholder: ``keyong dataset ingest`` (being built, issue 4)."""
