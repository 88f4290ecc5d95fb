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
from registry.config import IngestLimits, RegistryConfig
from registry.freeze import (
    FREEZE_REASON_CHARS,
    FREEZE_ROLES,
    UNFREEZE_ROLES,
    Freeze,
    FreezeView,
    PlatformFrozenError,
    frozen_state,
    require_not_frozen,
)
from registry.incidents import INCIDENT_ROLES, SEVERITIES, Incidents
from registry.ingest import FileInvalidError, FileRefusedError, FileTooLargeError, IngestResult
from registry.leftovers import PRODUCT_STORE, reclaim
from registry.licence_terms import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_EPSILON,
    MAX_PRICE_CENTS,
    MAX_PUBLICITY_DAYS,
)
from registry.licences import LicenceView, OperatorView, ScopeGrant, ScopeRefusedError, UnknownNameError
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
from registry.retention import DueVersion, JobsUsing, PurgeResult, Retention, destroy_version_data
from registry.scope_names import did_you_mean, suggest
from registry.scratch import Scratch
from registry.security_events import (
    DEFAULT_RULES,
    REVIEW_ROLES,
    AlertRule,
    SecurityEvent,
    SecurityEventKind,
    SecurityEvents,
    SecurityPolicy,
)
from registry.service import Registry
from registry.source_files import FORMATS
from registry.usability import (
    LicenceStanding,
    OperatorSuspendedError,
    Usability,
    licence_standing,
    registered_operators,
    require_qualified,
    suspended_operators,
    usability,
)
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
    "DEFAULT_RULES",
    "EARLIEST_DATE",
    "FORMATS",
    "FREEZE_REASON_CHARS",
    "FREEZE_ROLES",
    "INCIDENT_ROLES",
    "LATEST_DATE",
    "MAX_EPSILON",
    "MAX_PRICE_CENTS",
    "MAX_PUBLICITY_DAYS",
    "PRODUCT_NAME_PATTERN",
    "PRODUCT_NAME_RULE",
    "PRODUCT_STORE",
    "REVIEW_ROLES",
    "SEVERITIES",
    "UNFREEZE_ROLES",
    "AlertRule",
    "BudgetExhaustedError",
    "BudgetView",
    "Catalog",
    "CatalogEntry",
    "ColumnClass",
    "DataItem",
    "DueVersion",
    "FeeClass",
    "FileInvalidError",
    "FileRefusedError",
    "FileTooLargeError",
    "FindingKind",
    "FindingView",
    "Freeze",
    "FreezeView",
    "Incidents",
    "IngestLimits",
    "IngestResult",
    "JobsUsing",
    "Level",
    "LicenceMode",
    "LicenceStanding",
    "LicenceState",
    "LicenceView",
    "ObjectionOutcome",
    "ObjectionView",
    "OpeningType",
    "OperationStatus",
    "OperatorSuspendedError",
    "OperatorView",
    "PlatformFrozenError",
    "ProductRegistration",
    "ProductView",
    "Products",
    "PurgeResult",
    "Registry",
    "RegistryConfig",
    "RequestState",
    "RequestView",
    "ResourceView",
    "Retention",
    "ScopeGrant",
    "ScopeRefusedError",
    "Scratch",
    "SecurityEvent",
    "SecurityEventKind",
    "SecurityEvents",
    "SecurityPolicy",
    "SharingType",
    "UnknownNameError",
    "Usability",
    "Vault",
    "VaultError",
    "VersionView",
    "attribution_metadata",
    "check_product_name",
    "destroy_version_data",
    "did_you_mean",
    "frozen_state",
    "licence_standing",
    "metadata",
    "product_name_taken",
    "read_attribution",
    "reclaim",
    "registered_operators",
    "require_not_frozen",
    "require_qualified",
    "stamp_artifact",
    "suggest",
    "suspended_operators",
    "usability",
]
