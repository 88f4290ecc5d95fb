"""The programs Keyong itself runs inside the sandbox for the platform-run job kinds (issue 8: dp-query, dp-train).

Why standalone programs and not functions of Keyong's packages: they run inside bubblewrap over
the licence's desensitized copies, where only the interpreter, the standard library and the
venv's third-party packages (pandas, numpy, pyarrow, diffprivlib, torch, opacus, scikit-learn) are
visible — Keyong's own code is not mounted, so a job cannot import (and so cannot be tampered with
through) the host's worker, ledger or vault. The host copies these files under ``/job/`` (both of
them for either kind, so ``dp_train.py`` can reuse ``dp_query.py``'s column reading and
contribution bounding), writes the resolved ``/job/plan.json`` and runs ``python -I -B
/job/dp_query.py`` or ``/job/dp_train.py``. The files stay importable on the host (no side effects
at import) so tests and benchmarks call their functions on DataFrames directly.
"""
