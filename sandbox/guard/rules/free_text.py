"""Free text and pictures: a person reads them (review at best).

Why: no rule can account for prose or pixels as aggregates (a sentence can state one person's
income, a bar can be drawn to any height), so whatever the other rules found, these outputs go to
the agency's review; only charts the platform rendered itself from a table that passed are
exempt. Models stated in text are checked for their residual degrees of freedom (ACRO: >= 10).
"""

from __future__ import annotations

from sandbox.guard.content import Content
from sandbox.guard.context import Context
from sandbox.guard.findings import SOFT, Finding
from sandbox.sdc import check_text


def check(content: Content, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    if content.image and not content.rendered:
        findings.append(
            Finding("sdc.image", SOFT, content.file, "file", "an image drawn inside the sandbox: a person checks it")
        )
    if content.free_text and not content.signed:
        findings.append(
            Finding(
                "sdc.free_text", SOFT, content.file, "file", "free text or an unstructured document: a person reads it"
            )
        )
        text = "\n".join("\n".join(block.values.astype(str)) for block in content.texts)
        findings += [
            Finding(i.rule, SOFT, content.file, i.location, i.detail) for i in check_text(text, ctx.config.sdc)
        ]
    return findings


__all__ = ["check"]
