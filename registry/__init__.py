"""The catalog of data resources, classification and grading, operators and licences,
products and their lineage, objections and usage monitoring (DESIGN.md).

Every change is appended to the ledger in the same transaction as the change itself.

The face loads on first use (``core.LazyFace``): the controlled vocabularies (``registry.vocabulary``, the
command line's options) and the configuration (``registry.config``, the settings' ingest bounds) come alone;
any other name loads the whole face as an import did before, so the models register together (issue 21).
"""

from typing import TYPE_CHECKING, Any

from core import LazyFace

if TYPE_CHECKING:
    from registry.access_consent import ConsentView, LicenceConsent, consent_refusal
    from registry.atrest import (
        AtRest,
        dataset_scope,
        legacy_artifact_path,
        licence_scope,
        private_dir,
        products_scope,
        write_checked,
    )
    from registry.atrest_home import EncryptedHome, seal_home
    from registry.budgets import BudgetExhaustedError, BudgetView
    from registry.calendar import MAX_WORKING_DAYS, CalendarError, Due, WorkCalendar, parse_received
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
    from registry.datakeys import DataKeyInfo, DataKeys, master_id
    from registry.egress import (
        EGRESS_REASON_CHARS,
        Custodians,
        EgressConsent,
        EgressView,
        custodian_datasets,
        egress_requirement,
        require_custodian_of,
    )
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
    from registry.linkage import LicenceCopies
    from registry.models import metadata
    from registry.monitoring import FindingView
    from registry.objections import ObjectionView
    from registry.people import (
        Person,
        PersonRecordError,
        RecordKind,
        Standing,
        current_terms,
        expiring,
        operator_people_refusal,
        people_of,
        person_standing,
        publish_terms,
        record_identity_check,
        record_terms,
        record_training,
        records_of,
        terms_json,
    )
    from registry.policy_approvals import PolicyApprovals, PolicyApprovalView, parse_policy, read_policy_file
    from registry.product_states import PRODUCT_NAME_PATTERN, PRODUCT_NAME_RULE, check_product_name, product_name_taken
    from registry.products import (
        ProductRegistration,
        Products,
        ProductView,
        attribution_metadata,
        read_attribution,
        stamp_artifact,
    )
    from registry.quotas import (
        MAX_CONCURRENT,
        MAX_CPU_SECONDS,
        MAX_PER_DAY,
        AllocationView,
        QuotaAllocations,
        Quotas,
        check_quotas,
        limits_of,
    )
    from registry.readonly import Rows, is_frozen, read_product, read_products, suspended_operator_names
    from registry.request_rules import KINDS as REQUEST_KINDS
    from registry.request_rules import OUTCOMES as REQUEST_OUTCOMES
    from registry.request_rules import PROFILES as REQUEST_PROFILES
    from registry.request_rules import Rule as RequestRule
    from registry.request_rules import rules_of
    from registry.requests import RequestRecord, Requests
    from registry.retention import DueVersion, JobsUsing, PurgeResult, ReleasesUsing, Retention, destroy_version_data
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
    from registry.usage_counts import STORED_KINDS, registry_counts, stored_bytes
    from registry.vault import Vault, VaultError, is_sealed
    from registry.vocabulary import (
        EXPIRING_DAYS,
        SUBJECT_KINDS,
        EvidenceKind,
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
    "EGRESS_REASON_CHARS",
    "EXPIRING_DAYS",
    "FORMATS",
    "FREEZE_REASON_CHARS",
    "FREEZE_ROLES",
    "INCIDENT_ROLES",
    "LATEST_DATE",
    "MAX_CONCURRENT",
    "MAX_CPU_SECONDS",
    "MAX_EPSILON",
    "MAX_PER_DAY",
    "MAX_PRICE_CENTS",
    "MAX_PUBLICITY_DAYS",
    "MAX_WORKING_DAYS",
    "PRODUCT_NAME_PATTERN",
    "PRODUCT_NAME_RULE",
    "PRODUCT_STORE",
    "REQUEST_KINDS",
    "REQUEST_OUTCOMES",
    "REQUEST_PROFILES",
    "REVIEW_ROLES",
    "SEVERITIES",
    "STORED_KINDS",
    "SUBJECT_KINDS",
    "UNFREEZE_ROLES",
    "AlertRule",
    "AllocationView",
    "AtRest",
    "BudgetExhaustedError",
    "BudgetView",
    "CalendarError",
    "Catalog",
    "CatalogEntry",
    "ColumnClass",
    "ConsentView",
    "Custodians",
    "DataItem",
    "DataKeyInfo",
    "DataKeys",
    "Due",
    "DueVersion",
    "EgressConsent",
    "EgressView",
    "EncryptedHome",
    "EvidenceKind",
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
    "LicenceConsent",
    "LicenceCopies",
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
    "Person",
    "PersonRecordError",
    "PlatformFrozenError",
    "PolicyApprovalView",
    "PolicyApprovals",
    "ProductRegistration",
    "ProductView",
    "Products",
    "PurgeResult",
    "QuotaAllocations",
    "Quotas",
    "RecordKind",
    "Registry",
    "RegistryConfig",
    "ReleasesUsing",
    "RequestRecord",
    "RequestRule",
    "RequestState",
    "RequestView",
    "Requests",
    "ResourceView",
    "Retention",
    "Rows",
    "ScopeGrant",
    "ScopeRefusedError",
    "Scratch",
    "SecurityEvent",
    "SecurityEventKind",
    "SecurityEvents",
    "SecurityPolicy",
    "SharingType",
    "Standing",
    "UnknownNameError",
    "Usability",
    "Vault",
    "VaultError",
    "VersionView",
    "WorkCalendar",
    "attribution_metadata",
    "check_product_name",
    "check_quotas",
    "consent_refusal",
    "current_terms",
    "custodian_datasets",
    "dataset_scope",
    "destroy_version_data",
    "did_you_mean",
    "egress_requirement",
    "expiring",
    "frozen_state",
    "is_frozen",
    "is_sealed",
    "legacy_artifact_path",
    "licence_scope",
    "licence_standing",
    "limits_of",
    "master_id",
    "metadata",
    "operator_people_refusal",
    "parse_policy",
    "parse_received",
    "people_of",
    "person_standing",
    "private_dir",
    "product_name_taken",
    "products_scope",
    "publish_terms",
    "read_attribution",
    "read_policy_file",
    "read_product",
    "read_products",
    "reclaim",
    "record_identity_check",
    "record_terms",
    "record_training",
    "records_of",
    "registered_operators",
    "registry_counts",
    "require_custodian_of",
    "require_not_frozen",
    "require_qualified",
    "rules_of",
    "seal_home",
    "stamp_artifact",
    "stored_bytes",
    "suggest",
    "suspended_operator_names",
    "suspended_operators",
    "terms_json",
    "usability",
    "write_checked",
]

#: Each module of this face -> the names it gives (``public=defined`` where the face renames one).
_NAMES: dict[str, str] = {
    "registry.access_consent": "ConsentView LicenceConsent consent_refusal",
    "registry.atrest": (
        "AtRest dataset_scope legacy_artifact_path licence_scope private_dir products_scope write_checked"
    ),
    "registry.atrest_home": "EncryptedHome seal_home",
    "registry.budgets": "BudgetExhaustedError BudgetView",
    "registry.calendar": "MAX_WORKING_DAYS CalendarError Due WorkCalendar parse_received",
    "registry.catalog": "Catalog",
    "registry.catalog_views": "CATALOG_FIELDS CatalogEntry ColumnClass DataItem RequestView ResourceView VersionView",
    "registry.config": "IngestLimits RegistryConfig",
    "registry.datakeys": "DataKeyInfo DataKeys master_id",
    "registry.egress": (
        "EGRESS_REASON_CHARS Custodians EgressConsent EgressView custodian_datasets egress_requirement "
        "require_custodian_of"
    ),
    "registry.freeze": (
        "FREEZE_REASON_CHARS FREEZE_ROLES UNFREEZE_ROLES Freeze FreezeView PlatformFrozenError frozen_state "
        "require_not_frozen"
    ),
    "registry.incidents": "INCIDENT_ROLES SEVERITIES Incidents",
    "registry.ingest": "FileInvalidError FileRefusedError FileTooLargeError IngestResult",
    "registry.leftovers": "PRODUCT_STORE reclaim",
    "registry.licence_terms": "EARLIEST_DATE LATEST_DATE MAX_EPSILON MAX_PRICE_CENTS MAX_PUBLICITY_DAYS",
    "registry.licences": "LicenceView OperatorView ScopeGrant ScopeRefusedError UnknownNameError",
    "registry.linkage": "LicenceCopies",
    "registry.models": "metadata",
    "registry.monitoring": "FindingView",
    "registry.objections": "ObjectionView",
    "registry.people": (
        "Person PersonRecordError RecordKind Standing current_terms expiring operator_people_refusal "
        "people_of person_standing publish_terms record_identity_check record_terms record_training "
        "records_of terms_json"
    ),
    "registry.policy_approvals": "PolicyApprovals PolicyApprovalView parse_policy read_policy_file",
    "registry.product_states": "PRODUCT_NAME_PATTERN PRODUCT_NAME_RULE check_product_name product_name_taken",
    "registry.products": (
        "ProductRegistration Products ProductView attribution_metadata read_attribution stamp_artifact"
    ),
    "registry.quotas": (
        "MAX_CONCURRENT MAX_CPU_SECONDS MAX_PER_DAY AllocationView QuotaAllocations Quotas check_quotas limits_of"
    ),
    "registry.readonly": "Rows is_frozen read_product read_products suspended_operator_names",
    "registry.request_rules": (
        "REQUEST_KINDS=KINDS REQUEST_OUTCOMES=OUTCOMES REQUEST_PROFILES=PROFILES RequestRule=Rule rules_of"
    ),
    "registry.requests": "RequestRecord Requests",
    "registry.retention": "DueVersion JobsUsing PurgeResult ReleasesUsing Retention destroy_version_data",
    "registry.scope_names": "did_you_mean suggest",
    "registry.scratch": "Scratch",
    "registry.security_events": (
        "DEFAULT_RULES REVIEW_ROLES AlertRule SecurityEvent SecurityEventKind SecurityEvents SecurityPolicy"
    ),
    "registry.service": "Registry",
    "registry.source_files": "FORMATS",
    "registry.usability": (
        "LicenceStanding OperatorSuspendedError Usability licence_standing registered_operators "
        "require_qualified suspended_operators usability"
    ),
    "registry.usage_counts": "STORED_KINDS registry_counts stored_bytes",
    "registry.vault": "Vault VaultError is_sealed",
    "registry.vocabulary": (
        "EXPIRING_DAYS SUBJECT_KINDS EvidenceKind FeeClass FindingKind Level LicenceMode LicenceState "
        "ObjectionOutcome OpeningType OperationStatus RequestState SharingType"
    ),
}

_FACE = LazyFace("registry", _NAMES, alone=("registry.vocabulary", "registry.config", "registry.readonly"))


def __getattr__(name: str) -> Any:
    return _FACE.load(name)
