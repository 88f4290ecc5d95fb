"""Differential privacy: planning a DP job from public facts, its cost and noise, its signed results
and model certificates, and the programs the sandbox runs for the DP job kinds.

Used by submission (planning), by the worker (signing) and inside the sandbox (the programs); it
imports only ``core`` of ours. The programs (``dp.programs.dp_query``, ``dp.programs.dp_train``)
are not imported here: they load pandas and torch, and the host only ships their source
(:func:`program_files`) into the sandbox.
"""

from dp.certificates import CertificateError, canonical, key_id, sign, verify
from dp.kinds import DP_KINDS, DpKind
from dp.plans import (
    HOLDOUT,
    PERSON_KEY_TYPES,
    ColumnFacts,
    Cost,
    DatasetFacts,
    DpQuerySpec,
    DpSpecError,
    DpTrainSpec,
    cost_of,
    cost_of_plan,
    facts_from_catalog,
    kind_of_spec,
    noise_multiplier,
    parse_spec,
    plan,
    plan_query,
    plan_train,
)
from dp.programs import PROGRAMS, program_files, program_source
from dp.results import (
    CERTIFICATE_SUFFIX,
    MODEL,
    TRAINING,
    SealError,
    beats_majority,
    certificate_name,
    check_model,
    seal,
    seal_query,
    seal_train,
    signed_by_platform,
)

__all__ = [
    "CERTIFICATE_SUFFIX",
    "DP_KINDS",
    "HOLDOUT",
    "MODEL",
    "PERSON_KEY_TYPES",
    "PROGRAMS",
    "TRAINING",
    "CertificateError",
    "ColumnFacts",
    "Cost",
    "DatasetFacts",
    "DpKind",
    "DpQuerySpec",
    "DpSpecError",
    "DpTrainSpec",
    "SealError",
    "beats_majority",
    "canonical",
    "certificate_name",
    "check_model",
    "cost_of",
    "cost_of_plan",
    "facts_from_catalog",
    "key_id",
    "kind_of_spec",
    "noise_multiplier",
    "parse_spec",
    "plan",
    "plan_query",
    "plan_train",
    "program_files",
    "program_source",
    "seal",
    "seal_query",
    "seal_train",
    "sign",
    "signed_by_platform",
    "verify",
]
