"""The sharing provider's consent to authorized operation (双鸭山 第四十三条).

Data obtained by sharing from another region or department enters authorized operation only with
its provider's recorded consent (:func:`registry.eligibility.licensing_refusal` asks for it).
"""

from __future__ import annotations

from datetime import date

from core import Actor, Recorder, RegistryError, require_role
from registry.catalog_rules import CUSTODIAN, catalog_row, refuse_revoked, resource_view, screen, subject
from registry.catalog_views import ResourceView
from registry.config import RegistryConfig


class Consents:
    """Recording providers' consents on resources obtained by sharing."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    def record_consent(
        self, name: str, *, provider: str, reference: str, on: date | None = None, by: Actor
    ) -> ResourceView:
        """Record the sharing provider's consent to authorized operation of data obtained by sharing.

        双鸭山 第四十三条: 以公共数据共享方式获取的其他地区或部门的公共数据, 用于授权运营的应征得共享数据提供部门同意.
        """
        require_role(by, CUSTODIAN)
        provider, reference = (provider or "").strip(), (reference or "").strip()
        if not provider or not reference:
            raise RegistryError("a consent needs the consenting provider and a reference to its document")
        if len(provider) > 200 or len(reference) > 200:
            raise RegistryError("provider and reference are at most 200 characters each")
        screen([provider, reference], "the consent")
        now = self.config.now()
        given = on or now.date()
        if given > now.date():
            raise RegistryError(f"a consent dated {given} lies in the future: record it once it is given")
        with self.recorder.change(by) as change:
            row = catalog_row(change.session, name, lock=True)
            refuse_revoked(row, "changed")
            if not row.obtained_via_sharing:
                raise RegistryError(
                    f"dataset {name!r} is not marked as obtained by sharing from another region or department, "
                    "so no provider's consent is needed (双鸭山 第四十三条); mark it first if it was"
                )
            consent = {"provider": provider, "reference": reference, "date": given.isoformat(), "recorded_by": by.name}
            row.provider_consent = consent
            row.updated_at = now
            change.session.flush()
            change.log(
                "catalog.consent_recorded",
                subject(name),
                {"provider": provider, "reference": reference, "date": given.isoformat()},
            )
            return resource_view(row, self.config.now())


__all__ = ["Consents"]
