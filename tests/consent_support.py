"""Custodians' agreement to access, for tests that grant licences (SATRE 1.5.04; registry.access_consent).

A licence becomes active only when every dataset's custodian agreed or delegated its agreement to the
agency. Tests about other things record that delegation, as the dataset's custodian would, before they
grant: through the real rule (``registry.egress`` with ``kind="access"``), acting as a custodian of the
dataset's 提供方 (the test datasets' publishers are no principals). The default stays strict: a test that
does not call this sees its licences wait for agreement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core import Actor
from registry.egress import EgressConsent, live_delegations
from registry.models import ResourceRow

#: The custodian acting in these tests (a principal of the dataset's providing organisation).
CUSTODIAN = Actor("test-access-custodian", "custodian")


def consent_to_access(registry: Any, *datasets: str) -> list[str]:
    """Record a standing access delegation for ``datasets`` (default: every catalogued one without one).

    Returns the datasets delegated now."""
    now = registry.config.now()
    with registry.recorder.read() as session:
        query = select(ResourceRow.name, ResourceRow.provider_name)
        if datasets:
            query = query.where(ResourceRow.name.in_(datasets))
        rows = list(session.execute(query.order_by(ResourceRow.name)))
        live = live_delegations(session, [name for name, _ in rows], now, "access")
    done = []
    for name, provider in rows:
        if name in live:
            continue
        custodians: dict[str, str | None] = {CUSTODIAN.name: provider}
        access = EgressConsent(registry.recorder, registry.config, custodians=custodians.copy, kind="access")
        access.delegate(name, by=CUSTODIAN, reason="测试：授权运营同意委托实施机构")
        done.append(name)
    return done
