"""What a principal's organisation (``org``) means, by role: the one rule ``principal add --org`` obeys.

* **operator** (运营机构): the organisation is the operating company the principal logs in for, and it
  must be a registered operator, named by its name or its 统一社会信用代码 (双鸭山 第四十八条: only
  registered operators are licensed). It is stored as the operator's name. The platform knows an
  operator by its principal's name (``registry.operators``: its licences, jobs, budgets and products
  are all keyed by it), so the principal must bear that name: a login named otherwise would act as an
  operator that does not exist, holding no licence. Omitted, nothing is checked (the principal may
  come before its company is registered; the CLI notes it).
* **custodian, agency, regulator** (数据主管部门/公共数据服务机构, 授权运营实施机构, 监管部门): free text, the
  public body the person works for. It may not be a registered operator: the holding, processing and
  product rights are separated (三权分置, 双鸭山 第四十四条), so an operating company's staff never
  hold the custodian's, the agency's or the regulator's role.

Every text is at most :data:`ORG_MAX` printable characters; blank means none. An unknown operator is a
usage error naming the closest registered ones.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from operators.errors import OrganisationError
from operators.roles import Role

ORG_MAX = 128


def clean_org(org: str | None) -> str | None:
    """``org`` stripped, ``None`` when blank; refused when too long or not printable."""
    if org is None:
        return None
    org = org.strip()
    if not org:
        return None
    if len(org) > ORG_MAX or not org.isprintable():
        raise OrganisationError(f"organisation must be at most {ORG_MAX} printable characters")
    return org


def checked_org(session: Session, role: Role, name: str, org: str | None) -> str | None:
    """The organisation to store for a new principal ``name`` of ``role``, or a refusal (see the module)."""
    org = clean_org(org)
    if org is None:
        return None
    # Imported here: identities alone (the CLI's tokens, the database's metadata) do not load the registry.
    from registry import did_you_mean, registered_operators, suggest

    operators = registered_operators(session)
    by_code = {uscc.upper(): operator for operator, uscc in operators.items()}
    operator = org if org in operators else by_code.get(org.upper())
    if role != Role.OPERATOR:
        if operator is not None:
            raise OrganisationError(
                f"{org!r} is a registered operator (运营机构): its staff may not hold the {role.value} role "
                "(三权分置, 双鸭山 第四十四条); give the public body the person works for"
            )
        return org
    if operator is None:
        hint = did_you_mean(suggest(org, [*operators, *operators.values()]))
        raise OrganisationError(
            f"organisation {org!r} is not a registered operator (its name or 统一社会信用代码){hint}: "
            "register it first (`keyong operator add NAME --uscc CODE`), see `keyong operator list`"
        )
    if operator != name:
        raise OrganisationError(
            f"an operator principal logs in as the operator of its own name: name it {operator!r} to act for "
            f"{org!r} (a principal named {name!r} would act as an operator that holds no licence)"
        )
    return operator


__all__ = ["ORG_MAX", "checked_org", "clean_org"]
