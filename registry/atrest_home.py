"""``keyong keys encrypt-home``: seal what an earlier Keyong wrote in clear (issue 22, SATRE 2.8.01).

Every desensitized copy and fingerprint set (their dataset's key), every job attempt's files (the
licence's key) and every product's artifacts (the products key of its licence). Idempotent (sealed
files are skipped) and ledgered (``keys.home_encrypted``: counts only). Until it runs, readers still
open files in clear (:class:`registry.AtRest`), so an upgraded home keeps working meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import Actor, Recorder
from registry.atrest import AtRest, dataset_scope, licence_scope, products_scope
from registry.leftovers import PRODUCT_STORE
from registry.models import ProductRow

__all__ = ["EncryptedHome", "seal_home"]

_LICENCE_DIR = re.compile(r"^licence-(\d+)$")


@dataclass(frozen=True, slots=True)
class EncryptedHome:
    """What ``keyong keys encrypt-home`` sealed, by kind."""

    copies: int
    fingerprints: int
    outputs: int
    products: int

    def as_json(self) -> dict[str, Any]:
        return {
            "copies": self.copies,
            "fingerprints": self.fingerprints,
            "outputs": self.outputs,
            "products": self.products,
        }


def _dataset_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()) if root.is_dir() else []


def seal_home(recorder: Recorder, at_rest: AtRest, *, by: Actor) -> EncryptedHome:
    """Seal every file an earlier Keyong left in clear under its scope's data key; ledgered."""
    home = at_rest.home
    copies = sum(at_rest.seal_tree(d, dataset_scope(d.name), by=by) for d in _dataset_dirs(home / "copies"))
    prints = sum(at_rest.seal_tree(d, dataset_scope(d.name), by=by) for d in _dataset_dirs(home / "fingerprints"))
    outputs = 0
    for operator in _dataset_dirs(home / "work"):
        for licence in _dataset_dirs(operator):
            found = _LICENCE_DIR.match(licence.name)
            if found:
                outputs += at_rest.seal_tree(licence, licence_scope(int(found.group(1))), by=by)
    products = 0
    with recorder.read() as session:
        licences = {name: licence for name, licence in session.execute(select(ProductRow.name, ProductRow.licence_id))}
    for store in _dataset_dirs(home / PRODUCT_STORE):
        if store.name in licences:
            products += at_rest.seal_tree(store, products_scope(licences[store.name]), by=by)
    result = EncryptedHome(copies, prints, outputs, products)
    with recorder.change(by) as change:
        change.log("keys.home_encrypted", "keys:data-master", result.as_json())
    return result
