"""The HTTP adapter: the FastAPI application and every router, over the domain packages' services.

Routers live here, not in the packages they serve, so the domain packages stay free of FastAPI
(DESIGN.md, Top-level packages; an import-linter contract in pyproject keeps it so). Each router
module mirrors one package's service: ``identity`` (operators' identities and the role guard),
``jobs`` and ``releases`` (the queue and the release workflow), ``ledger`` (regulators' read-only
access) and the registry's ``catalog``, ``copies``, ``ingest``, ``licences`` and ``products``.
"""

from app.api.factory import create_app
from app.api.identity import authenticator, role_guard

__all__ = ["authenticator", "create_app", "role_guard"]
