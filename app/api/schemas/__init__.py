"""Typed response documents of the HTTP API, split by area (issue 17).

Each model documents the JSON a route answers with, keys exactly as the domain's ``as_json`` writes
them (DESIGN.md's contract and the CLI's ``--json`` share them). The models are :class:`Document`\\ s:
declared fields are validated and typed in the OpenAPI schema, and a key a domain view adds later
passes through unchanged instead of being silently dropped, so the contract never shrinks behind a
schema that forgot a field.
"""

from app.api.schemas.base import Document
from app.api.schemas.catalog import (
    CatalogRequestOut,
    ColumnOut,
    CopyFactsOut,
    DatasetOut,
    DatasetUpdateOut,
    DesensitizedOut,
    IngestOut,
    RiskOut,
    UtilityOut,
    VersionOut,
)
from app.api.schemas.examples import add_examples
from app.api.schemas.jobs import BudgetOut, CostOut, JobOut
from app.api.schemas.ledger import CheckpointOut, ConsistencyOut, EntryOut, ProofOut, SignedCheckpointOut, VerifyOut
from app.api.schemas.meta import (
    BINARY_RESPONSE,
    HealthDownOut,
    HealthOut,
    RefusalOut,
    ScopeCheckOut,
    ScopeRefusalOut,
    text_response,
)
from app.api.schemas.people import ExpiringRecordOut, PersonRecordOut, StandingOut, TermsOut
from app.api.schemas.quotas import AllocationOut, QuotasOut, UsageReportOut
from app.api.schemas.retention import PurgeOut, RetentionScheduleOut, RetentionSetOut
from app.api.schemas.security import FreezeOut, IncidentOut, SecurityAlertOut, SecurityEventOut

__all__ = [
    "BINARY_RESPONSE",
    "AllocationOut",
    "BudgetOut",
    "CatalogRequestOut",
    "CheckpointOut",
    "ColumnOut",
    "ConsistencyOut",
    "CopyFactsOut",
    "CostOut",
    "DatasetOut",
    "DatasetUpdateOut",
    "DesensitizedOut",
    "Document",
    "EntryOut",
    "ExpiringRecordOut",
    "FreezeOut",
    "HealthDownOut",
    "HealthOut",
    "IncidentOut",
    "IngestOut",
    "JobOut",
    "PersonRecordOut",
    "ProofOut",
    "PurgeOut",
    "QuotasOut",
    "RefusalOut",
    "RetentionScheduleOut",
    "RetentionSetOut",
    "RiskOut",
    "ScopeCheckOut",
    "ScopeRefusalOut",
    "SecurityAlertOut",
    "SecurityEventOut",
    "SignedCheckpointOut",
    "StandingOut",
    "TermsOut",
    "UsageReportOut",
    "UtilityOut",
    "VerifyOut",
    "VersionOut",
    "add_examples",
    "text_response",
]
