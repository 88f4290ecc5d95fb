"""Job queue and workers, the isolated runner, job kinds, the export guard and the release
workflow (DESIGN.md). Built by issues 6 and 7."""
