"""The four roles of DESIGN.md, carried in the JWT ``role`` claim.

The split mirrors the separation of holding, processing and product rights (三权分置,
双鸭山市公共数据管理暂行办法 第四十四条): the custodian holds the data, the agency licenses and
reviews, the operator processes within its licence, and the regulator supervises the whole
process (第六十四条) without changing anything.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A principal's role; the value is what tokens and the ledger carry."""

    CUSTODIAN = "custodian"
    AGENCY = "agency"
    OPERATOR = "operator"
    REGULATOR = "regulator"

    @classmethod
    def parse(cls, value: object) -> Role:
        """The role named by ``value``; raises ``ValueError`` for anything not in the table."""
        if not isinstance(value, str):
            raise ValueError(f"role must be a string, not {type(value).__name__}")
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown role {value!r}") from None
