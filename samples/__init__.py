"""Generated data: synthetic government tables for the demo and benchmarks, and the labelled set
the detection quality is measured on. Fixtures, not product: only ``app`` (the demo), tests and
benchmarks import it, and it stands on ``desensitize``'s public face alone (import-linter checks both).

``samples.synthetic`` is the face of the tables (one module per table family behind it),
``samples.labelled`` the face of the labelled set.
"""

from samples import labelled, synthetic
from samples.labelled import CELL_COLUMNS, EntitySpan, LabelledSet, Score, evaluate
from samples.synthetic import (
    AS_OF,
    generate_all,
    market_entities,
    region_names,
    residents,
    social_insurance,
    write_csv,
)

__all__ = [
    "AS_OF",
    "CELL_COLUMNS",
    "EntitySpan",
    "LabelledSet",
    "Score",
    "evaluate",
    "generate_all",
    "labelled",
    "market_entities",
    "region_names",
    "residents",
    "social_insurance",
    "synthetic",
    "write_csv",
]
