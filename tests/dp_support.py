"""Shared set-up of the DP job tests: a social-insurance dataset in desensitized-copy form, with the
catalog facts DP plans use (person key, public bounds, public domain), and a licence over it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import Actor
from registry import Registry
from registry.models import ItemRow, ResourceRow, VersionRow
from samples.synthetic import generate_all
from tests.consent_support import consent_to_access
from tests.people_support import stand
from tests.test_registry_licences import uscc

AGENCY = Actor("demo-agency", "agency")
DP_OPERATOR = "dp-ops"
DP_SCENARIO = "社会保障分析"
DATASET = "insurance"
STATUSES = ["正常参保", "暂停参保", "终止参保"]


def copy_form(n_residents: int, seed: int = 0) -> pd.DataFrame:
    """The generated social-insurance table as the desensitizer leaves it: a 32-hex pseudonym per
    person, the contribution base generalised to 1,000-yuan bands, dates as text."""
    si = generate_all(n_residents, seed)["social_insurance"]
    base = si["月缴费基数"].to_numpy() // 1000 * 1000
    return pd.DataFrame(
        {
            "身份证号": [hashlib.sha256(f"pepper:{v}".encode()).hexdigest()[:32] for v in si["身份证号"]],
            "月缴费基数": [f"{b}-{b + 999}" for b in base],
            "参保状态": si["参保状态"].astype(str).to_numpy(),
            "参保日期": si["参保日期"].dt.strftime("%Y-%m-%d").to_numpy(),
            "备注": ["" for _ in range(len(si))],
        }
    )


def dp_dataset(
    registry: Registry, home: Path, *, name: str = DATASET, residents: int = 2000, frame: pd.DataFrame | None = None
) -> pd.DataFrame:
    """A published catalog entry with the copy's columns and public facts, and its Parquet copy."""
    frame = copy_form(residents) if frame is None else frame
    path = f"datasets/{name}/v1.parquet"
    (home / path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), home / path)
    items = [
        ItemRow(position=0, name="身份证号", format="string", level="L4", pii_type="cn_resident_id",
                personal_info=True, sensitive_personal_info=True),
        ItemRow(position=1, name="月缴费基数", format="string", level="L3", pii_type="income", personal_info=True,
                public_bounds=[3000, 40000]),
        ItemRow(position=2, name="参保状态", format="string", level="L2", public_domain=list(STATUSES)),
        ItemRow(position=3, name="参保日期", format="string", level="L2", public_bounds=[1995, 2027]),
        ItemRow(position=4, name="备注", format="string", level="L2"),
    ]  # fmt: skip
    with registry.recorder.change(Actor.host()) as change:
        row = ResourceRow(
            name=name,
            title=f"{name} 数据",
            data_format="parquet",
            industry="社会保障",
            provider_name="双鸭山市人力资源和社会保障局",
            provider_code=uscc(9998),
            sharing_type="有条件共享",
            opening_type="有条件开放",
            operation_status="可授权运营",
            level="L4",
            personal_info=True,
            sensitive_personal_info=True,
            created_by="test",
            items=items,
        )
        change.session.add(row)
        change.session.flush()
        change.session.add(
            VersionRow(
                resource_id=row.id,
                version=1,
                kind="desensitized",
                rows=len(frame),
                columns=[{"name": c, "type": "string"} for c in frame.columns],
                content_sha256=hashlib.sha256((home / path).read_bytes()).hexdigest(),  # checked before a mount
                path=path,
                created_by="test",
            )
        )
    return frame


def dp_licensed(
    registry: Registry, home: Path, *, operator: str = DP_OPERATOR, epsilon: float = 3.0, residents: int = 2000
) -> int:
    """The dataset, an operator and an active licence with an ε budget over it; the licence id."""
    dp_dataset(registry, home, residents=residents)
    registry.licences.add_operator(operator, uscc(40 + len(operator)), by=AGENCY)
    stand(registry, operator)  # its login stands: identity checked, terms accepted, trained (issue 22)
    consent_to_access(registry, DATASET)  # its custodian agreed to access (SATRE 1.5.04)
    view = registry.licences.grant(
        operator,
        datasets=[DATASET],
        scenarios=[DP_SCENARIO],
        valid_until=registry.config.now().date() + timedelta(days=365),
        publicity_days=0,
        epsilon=epsilon,
        by=AGENCY,
        reason="授权运营协议 2026-DP",
    )
    return view.id
