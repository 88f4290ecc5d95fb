"""The catalog of data resources, classification and grading, operators and licences,
products and their lineage, objections and usage monitoring (DESIGN.md).

Every change is appended to the ledger in the same transaction as the change itself.
"""

from registry.budgets import BudgetExhaustedError, BudgetView
from registry.catalog_views import CatalogEntry, ColumnClass, DataItem, ResourceView, VersionView
from registry.config import RegistryConfig
from registry.ingest import FileRefusedError, IngestResult
from registry.licences import LicenceView, OperatorView, ScopeGrant, ScopeRefusedError
from registry.models import metadata
from registry.objections import ObjectionView
from registry.products import ProductView, read_attribution, stamp_artifact
from registry.service import Registry
from registry.vault import Vault, VaultError
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
    "BudgetExhaustedError",
    "BudgetView",
    "CatalogEntry",
    "ColumnClass",
    "DataItem",
    "FeeClass",
    "FileRefusedError",
    "IngestResult",
    "Level",
    "LicenceMode",
    "LicenceState",
    "LicenceView",
    "ObjectionOutcome",
    "ObjectionView",
    "OpeningType",
    "OperationStatus",
    "OperatorView",
    "ProductView",
    "Registry",
    "RegistryConfig",
    "ResourceView",
    "ScopeGrant",
    "ScopeRefusedError",
    "SharingType",
    "Vault",
    "VaultError",
    "VersionView",
    "metadata",
    "read_attribution",
    "stamp_artifact",
]
