"""The catalog of data resources, classification and grading, operators and licences,
products and their lineage, objections and usage monitoring (DESIGN.md).

Every change is appended to the ledger in the same transaction as the change itself.
"""

from registry.budgets import BudgetExhaustedError, BudgetView
from registry.catalog import Catalog
from registry.catalog_views import (
    CATALOG_FIELDS,
    CatalogEntry,
    ColumnClass,
    DataItem,
    RequestView,
    ResourceView,
    VersionView,
)
from registry.config import RegistryConfig
from registry.ingest import FileRefusedError, IngestResult
from registry.licences import LicenceView, OperatorView, ScopeGrant, ScopeRefusedError
from registry.models import metadata
from registry.monitoring import FindingView
from registry.objections import ObjectionView
from registry.product_states import PRODUCT_NAME_PATTERN, PRODUCT_NAME_RULE, check_product_name, product_name_taken
from registry.products import (
    ProductRegistration,
    Products,
    ProductView,
    attribution_metadata,
    read_attribution,
    stamp_artifact,
)
from registry.service import Registry
from registry.source_files import FORMATS
from registry.usability import LicenceStanding, Usability, licence_standing, usability
from registry.vault import Vault, VaultError
from registry.vocabulary import (
    FeeClass,
    FindingKind,
    Level,
    LicenceMode,
    LicenceState,
    ObjectionOutcome,
    OpeningType,
    OperationStatus,
    RequestState,
    SharingType,
)

__all__ = [
    "CATALOG_FIELDS",
    "FORMATS",
    "PRODUCT_NAME_PATTERN",
    "PRODUCT_NAME_RULE",
    "BudgetExhaustedError",
    "BudgetView",
    "Catalog",
    "CatalogEntry",
    "ColumnClass",
    "DataItem",
    "FeeClass",
    "FileRefusedError",
    "FindingKind",
    "FindingView",
    "IngestResult",
    "Level",
    "LicenceMode",
    "LicenceStanding",
    "LicenceState",
    "LicenceView",
    "ObjectionOutcome",
    "ObjectionView",
    "OpeningType",
    "OperationStatus",
    "OperatorView",
    "ProductRegistration",
    "ProductView",
    "Products",
    "Registry",
    "RegistryConfig",
    "RequestState",
    "RequestView",
    "ResourceView",
    "ScopeGrant",
    "ScopeRefusedError",
    "SharingType",
    "Usability",
    "Vault",
    "VaultError",
    "VersionView",
    "attribution_metadata",
    "check_product_name",
    "licence_standing",
    "metadata",
    "product_name_taken",
    "read_attribution",
    "stamp_artifact",
    "usability",
]
