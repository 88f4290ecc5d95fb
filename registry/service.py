"""The registry as one object: catalog, desensitized copies, licences, monitoring, products, objections, usage,
security operations (security events, the platform freeze, incidents) and retention."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Engine

from core import Recorder
from ledger import Ledger
from registry.access_consent import LicenceConsent
from registry.atrest import AtRest
from registry.budgets import Budgets
from registry.catalog import Catalog
from registry.config import RegistryConfig
from registry.copies import Copies
from registry.datakeys import DataKeys
from registry.egress import Custodians, EgressConsent
from registry.freeze import Freeze
from registry.incidents import Incidents
from registry.ingest import Ingestor
from registry.leftovers import TREES, sweep_home
from registry.licences import Licences
from registry.linkage import LicenceCopies
from registry.monitoring import Monitoring
from registry.objections import Objections
from registry.policy_approvals import PolicyApprovals
from registry.products import Products
from registry.public import PublicRegister
from registry.quotas import QuotaAllocations
from registry.requests import Requests
from registry.retention import Retention
from registry.scratch import Swept
from registry.security_events import SecurityEvents, SecurityPolicy
from registry.storage_keys import referenced_keys
from registry.usage import UsageRecords
from registry.vault import DIRECTORY as VAULT_DIRECTORY


class Registry:
    """Every registry change goes through :class:`Recorder`, so it is ledgered in its transaction."""

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        config: RegistryConfig,
        *,
        security: SecurityPolicy | None = None,
        custodians: Custodians | None = None,
    ) -> None:
        self.config = config
        self.recorder = Recorder(engine, ledger)
        self.catalog = Catalog(self.recorder, config)
        self.data_keys = DataKeys(self.recorder, config)
        self.at_rest = AtRest(self.data_keys, config.home, config.artifacts())  # copies, prints, outputs, products
        self.ingestor = Ingestor(self.recorder, config, self.catalog)
        self.copies = Copies(self.recorder, config, self.catalog, lambda: self.ingestor.vault)
        self.monitoring = Monitoring(self.recorder, config)
        self.licences = Licences(self.recorder, config, self.monitoring)
        # Each licence reads its own copies, keyed for it (issue 23): made on activation, on a newer base copy,
        # and before a job if missing; the scope check mounts nothing else.
        self.licence_copies = LicenceCopies(
            self.recorder, config, self.at_rest, lambda level: self.copies.policy_for(level)
        )
        self.licences.lifecycle.linkage = self.licence_copies
        self.licences.scope.linkage = self.licence_copies
        self.copies.recorded.append(self.licence_copies.refresh_dataset)
        self.objections = Objections(self.recorder, config)
        self.products = Products(self.recorder, config)
        self.usage = UsageRecords(self.recorder, config)
        self.public = PublicRegister(self.recorder, config)  # the unauthenticated page's answers (SATRE 1.7.02*)
        self.budgets = Budgets(self.recorder, config)
        self.quotas = QuotaAllocations(self.recorder, config)  # compute shares the agency allocates
        self.security = SecurityEvents(self.recorder, config, security)
        self.freeze = Freeze(self.recorder, config)
        self.incidents = Incidents(self.recorder, config)
        self.retention = Retention(self.recorder, config, default_days=config.retention_days, custodians=custodians)
        # Whose datasets a custodian acts for is the identity service's to say (None: nobody's, fail closed).
        self.egress = EgressConsent(self.recorder, config, custodians)
        # Nobody reaches a dataset without its custodian's agreement (SATRE 1.5.04): per licence, or delegated.
        self.access = EgressConsent(self.recorder, config, custodians, kind="access")
        self.licence_consent = LicenceConsent(self.recorder, config, custodians)
        # Only trusted people change desensitization policies (SATRE 1.2.01): proposed, then four-eyes approved.
        self.policies = PolicyApprovals(self.recorder, config)
        # Requests with statutory deadlines on the working-day calendar (issue 24): a queue per department.
        self.requests = Requests(self.recorder, config, self.monitoring, custodians)

    def storage_keys(self) -> Iterable[str]:
        """Every storage key the registry's rows refer to (``ReferencedKeys``: the object sweeper spares them)."""
        with self.recorder.read() as session:
            return list(referenced_keys(session, self.config.artifacts()))

    def sweep(self) -> Swept:
        """At every start: remove what dead multi-step writes left, settle interrupted destructions (issue 17),
        and delete files of purged versions a crash left behind (``Retention.settle``)."""
        storage = self.config.artifacts()
        # The home's artifact trees are swept here only when the artifacts lie in the home; objects of a
        # bucket no row names are core.storage_sweep's (with its grace period), via storage_keys().
        in_home = storage.local_path(VAULT_DIRECTORY) == self.config.home / VAULT_DIRECTORY
        swept = sweep_home(self.config.home, self.recorder, trees=TREES if in_home else ())
        self.retention.settle()
        return swept
