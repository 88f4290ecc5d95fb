"""The catalog of data resources, classification and grading, operators and licences,
products and their lineage, objections and usage monitoring (DESIGN.md).

Every change is appended to the ledger in the same transaction as the change itself.
"""

from registry.changes import Actor, NotFoundError, PermissionDeniedError, Recorder, RegistryError
from registry.config import RegistryConfig
from registry.models import metadata
from registry.service import Registry
from registry.vocabulary import (
    FeeClass,
    Level,
    LicenceMode,
    LicenceState,
    ObjectionOutcome,
    OpeningType,
    OperationStatus,
    SharingType,
)

__all__ = [
    "Actor",
    "FeeClass",
    "Level",
    "LicenceMode",
    "LicenceState",
    "NotFoundError",
    "ObjectionOutcome",
    "OpeningType",
    "OperationStatus",
    "PermissionDeniedError",
    "Recorder",
    "Registry",
    "RegistryConfig",
    "RegistryError",
    "SharingType",
    "metadata",
]
