"""Red team 23's F4, F5, F7 and F8 closed (fixreg23; CONTRACT23_fixreg.md).

* F4: every copy written (base and licence) is in a fresh random row order.
* F5: a kept near-unique text (or identifier-typed) key is re-keyed per licence; a kept number stays
  verbatim and is stated (``shared_columns`` in ``linkage``, a warning in the keep ruling's answer).
* F7: the guard blocks pseudonyms shortened to 10-16 hex digits, or written as the integers they make.
* F8: a superseded licence copy a queued or running job names is held, then swept once none does.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from app import Instance
from desensitize.fingerprints import FingerprintSet
from registry.linkage_rules import (
    SHARED_NOTE,
    kept_key_decision,
    kept_key_warnings,
    licence_keyed_columns,
    linkage_entries,
    shared_columns,
)
from registry.models import LicenceCopyRow
from registry.row_order import random_order, shuffled
from sandbox.guard.probe import Probe
from tests.linkage_support import AGENCY, APART, CUSTODIAN, Linked, linked

PEPPER = b"fixreg23-pepper-0123456789abcdef"


@pytest.fixture
def database_url() -> None:
    """SQLite only: these tests are about keys, order and files, not about the database."""
    return None


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Linked:
    return linked(initialised[0], tmp_path)


# --- F4: row order ------------------------------------------------------------------------------------


def test_a_shuffle_keeps_the_rows_and_draws_a_fresh_order_each_time() -> None:
    table = pa.table({"i": list(range(500)), "s": [f"v{i}" for i in range(500)]})
    one, two = shuffled(table), shuffled(table)
    assert sorted(one.column("i").to_pylist()) == list(range(500))
    assert one.column("i").to_pylist() != table.column("i").to_pylist()
    assert one.column("i").to_pylist() != two.column("i").to_pylist()
    assert [f"v{i}" for i in one.column("i").to_pylist()] == one.column("s").to_pylist()  # rows stay whole
    assert sorted(random_order(10).tolist()) == list(range(10))
    assert shuffled(table.slice(0, 1)).num_rows == 1 and shuffled(table.slice(0, 0)).num_rows == 0


def test_base_and_licence_copies_are_written_in_orders_of_their_own(env: Linked) -> None:
    """The base copy is not in the source's order, and two licences' copies are not in the same order."""
    from tests.linkage_support import tables

    _, base = env.base("people")
    raw = tables()["people"]
    assert sorted(base["性别"].tolist()) == sorted(raw["性别"].tolist())
    assert base["性别"].tolist() != raw["性别"].tolist()
    _, one = env.mounted(APART, "people")
    _, joint = env.mounted("acme-joint", "people")
    assert one["性别"].tolist() != joint["性别"].tolist() and one["性别"].tolist() != base["性别"].tolist()


# --- F5: kept keys ------------------------------------------------------------------------------------


def _report(*kept: str) -> dict:
    columns = [{"name": "身份证号", "type": "cn_resident_id", "action": "pseudonymize"}]
    near = {"action": "kept", "reason": "r"}
    columns += [{"name": c, "type": None, "action": "keep", "near_unique": near} for c in kept]
    return {"columns": columns}


def test_kept_text_and_identifier_keys_are_re_keyed_kept_numbers_are_stated() -> None:
    frame = pd.DataFrame(
        {
            "身份证号": ["a", "b"],
            "社保卡号": ["000123", "000124"],  # digits with a leading zero: a code
            "金额": [12.34, 56.78],  # a quantity: its value is the point
            "卡": [6222021234567, 6222021234568],  # a quantity by size, but typed as a bank card: a key
            "收入": ["52317", "48110.5"],  # quantities, as text (the vault's copies are text)
            "账号": ["6222021234567890", "12"],  # an integer of 16 digits: a code
            "车牌": ["黑A12345", "黑A12346"],
        }
    )
    report = _report("社保卡号", "金额", "卡", "收入", "账号", "车牌")
    decision = kept_key_decision(report, {"卡": "bank_card"}, frame)
    assert decision == {"rekeyed": ["社保卡号", "卡", "账号", "车牌"], "shared": ["金额", "收入"]}
    recorded = {**report, "kept_keys": decision}
    assert licence_keyed_columns(recorded) == ["身份证号", "社保卡号", "卡", "账号", "车牌"]
    assert shared_columns(recorded) == ["金额", "收入"]
    warnings = kept_key_warnings(recorded)
    assert len(warnings) == 6 and "re-key" in warnings[0] and "joins across licences" in warnings[5]


def test_a_report_made_before_the_decision_states_every_kept_key_and_re_keys_none() -> None:
    report = _report("社保卡号")
    assert licence_keyed_columns(report) == ["身份证号"]
    assert shared_columns(report) == ["社保卡号"]
    forged = {**report, "kept_keys": {"rekeyed": ["身份证号", "nope"], "shared": []}}  # only kept keys count
    assert licence_keyed_columns(forged) == ["身份证号"] and shared_columns(forged) == ["社保卡号"]


def test_linkage_entries_list_the_shared_columns_of_their_datasets() -> None:
    entries = linkage_entries([("a", "a+b"), ("b", "a+b"), ("c", None)], {}, {"b": ["金额"], "c": []})
    joint, alone = entries
    assert joint["shared_columns"] == [{"dataset": "b", "column": "金额"}] and joint["shared_note"] == SHARED_NOTE
    assert alone["shared_columns"] == [] and alone["shared_note"] is None


@pytest.fixture
def kept_env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Linked:
    """``env`` whose people also hold a business number (a code) and an exact amount (a quantity), both
    near-unique (the vault holds them as text, as every CSV column)."""
    from tests import linkage_support

    plain = linkage_support.tables

    def tables(n: int = 600, seed: int = 7) -> dict[str, pd.DataFrame]:
        made = plain(n, seed)
        people = made["people"]
        people["业务编号"] = [f"YW{i * 7919 % 1000003:07d}" for i in range(len(people))]
        people["存款"] = [round(1000 + i * 3.17, 2) for i in range(len(people))]
        return made

    monkeypatch.setattr(linkage_support, "tables", tables)
    return linked(initialised[0], tmp_path)


def test_the_registry_re_keys_a_kept_text_key_per_licence_and_states_a_kept_number(kept_env: Linked) -> None:
    """The custodian keeps a card number (text) and an exact amount (number): the base report records the
    decision, the keep ruling's answer warns, licence copies re-key the card per licence, and the amount is
    listed in both licences' linkage."""
    env = kept_env
    raw = linkage_support_tables()["people"]
    result = env.registry.copies.make(
        "people", by=CUSTODIAN, keep_columns={"业务编号": "业务核对需要原编号", "存款": "精确金额用于核算"}
    )
    assert result.report["kept_keys"] == {"rekeyed": ["业务编号"], "shared": ["存款"]}
    warnings = result.as_json()["warnings"]
    assert any("业务编号" in w and "re-key" in w for w in warnings)
    assert any("存款" in w and "joins across licences" in w for w in warnings)
    _, apart = env.mounted(APART, "people")
    _, joint = env.mounted("acme-joint", "people")
    assert set(apart["业务编号"]).isdisjoint(joint["业务编号"])  # no longer a key common to the licences
    assert set(apart["业务编号"]).isdisjoint(raw["业务编号"])
    assert sorted(apart["存款"]) == sorted(joint["存款"])  # a measure kept verbatim: stated below
    for licence in env.licences.values():
        view = env.registry.licences.get(licence, viewer=AGENCY)
        entry = next(e for e in view.linkage if "people" in e["datasets"])
        assert {"dataset": "people", "column": "存款"} in entry["shared_columns"]
        assert entry["shared_note"] == SHARED_NOTE


def linkage_support_tables() -> dict[str, pd.DataFrame]:
    from tests import linkage_support

    return linkage_support.tables()


# --- F7: shortened pseudonyms -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prints() -> tuple[FingerprintSet, list[str]]:
    keys = [secrets.token_hex(16) for _ in range(3000)]
    frame = pd.DataFrame({"k": keys, "n": np.arange(3000)})
    return FingerprintSet.build(frame, frame, {}, pepper=PEPPER, pseudonym_columns=["k"], workers=1), keys


@pytest.mark.parametrize(
    "form",
    [
        lambda k: k[:10],
        lambda k: k[:12],
        lambda k: k[:16],
        lambda k: k[-12:],
        lambda k: k[:8].upper() + "-" + k[8:16].upper(),
        lambda k: str(int(k[:12], 16)),
        lambda k: str(int(k[:16], 16)),
        lambda k: k[:13],  # an odd length: its first 10 and 12 digits are still a pseudonym's
    ],
)
def test_shortened_pseudonyms_are_certain_hits(prints: tuple[FingerprintSet, list[str]], form: object) -> None:
    fingerprints, keys = prints
    lines = "\n".join(form(k) for k in keys[:50])  # type: ignore[operator]
    hits = Probe({"people": fingerprints}).strings(pd.Series([lines], dtype=object))["people"]
    assert hits.shortened and hits.certain and hits.fragments >= 50


def test_one_shortened_pseudonym_in_a_sentence_is_found(prints: tuple[FingerprintSet, list[str]]) -> None:
    fingerprints, keys = prints
    hits = Probe({"people": fingerprints}).strings(pd.Series([f"用户 {keys[7][:12]} 的记录"], dtype=object))
    assert hits["people"].shortened


def test_honest_numbers_and_random_hex_are_not_shortened_pseudonyms(prints: tuple[FingerprintSet, list[str]]) -> None:
    fingerprints, _ = prints
    rng = np.random.default_rng(1)
    honest = [str(int(v)) for v in rng.integers(0, 10**12, 5000)]  # counts, sums, ids of the output's own
    honest += [secrets.token_hex(6) for _ in range(3000)] + [secrets.token_hex(8) for _ in range(3000)]
    honest += [f"{x:.4f}" for x in rng.normal(50000, 100, 1000)]
    found = Probe({"people": fingerprints}).strings(pd.Series(honest, dtype=object))
    assert "people" not in found or not found["people"].certain


def test_a_set_saved_before_fragments_loads_and_finds_none(
    prints: tuple[FingerprintSet, list[str]], tmp_path: Path
) -> None:
    fingerprints, keys = prints
    where = fingerprints.save(tmp_path / "set")
    manifest = json.loads((where / "manifest.json").read_text(encoding="utf-8"))
    del manifest["kinds"]["fragments"]
    (where / "fragments.npy").unlink()
    (where / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = FingerprintSet.load(where, PEPPER)
    assert not Probe({"people": old}).strings(pd.Series([keys[0][:16]], dtype=object))
    assert Probe({"people": old}).strings(pd.Series([keys[0]], dtype=object))["people"].exact  # whole still


# --- F8: a superseded copy held while a job names it --------------------------------------------------


def _copies(env: Linked, licence: int) -> list[LicenceCopyRow]:
    with env.registry.recorder.read() as session:
        rows = session.query(LicenceCopyRow).filter_by(licence_id=licence).order_by(LicenceCopyRow.id).all()
        session.expunge_all()
        return rows


def test_a_superseded_copy_a_job_names_is_held_then_swept(env: Linked) -> None:
    licence = env.licences[APART]
    old_path, _ = env.mounted(APART, "people")
    (old,) = [r for r in _copies(env, licence) if r.path == old_path]
    held = {old.id}
    env.registry.licence_copies.copies_in_use = lambda: set(held)
    mark = env.instance.ledger.size()
    env.registry.copies.make("people", by=CUSTODIAN)  # a newer base copy while a job names the old one
    assert (env.instance.home / old_path).is_file() and old.id in {r.id for r in _copies(env, licence)}
    new_path, _ = env.mounted(APART, "people")  # a new job mounts the successor
    assert new_path != old_path
    entries = env.instance.ledger.entries(after=mark, limit=1000)
    assert any(e.action == "licence.copy_held" and e.payload["copy"] == old.id for e in entries)
    assert env.registry.licence_copies.sweep() == []  # still named: kept
    held.clear()  # the job finished
    mark = env.instance.ledger.size()
    env.registry.licence_copies.ensure_for(APART, ["people"])  # the next admission sweeps first
    assert not (env.instance.home / old_path).exists()
    assert old.id not in {r.id for r in _copies(env, licence)}
    deleted = [e for e in env.instance.ledger.entries(after=mark, limit=1000) if e.action == "licence.copy_deleted"]
    assert [e.payload["copy"] for e in deleted] == [old.id] and "superseded" in deleted[0].payload["reason"]
    assert env.registry.licence_copies.sweep() == []


def test_the_sandbox_names_the_copies_of_queued_and_running_jobs(env: Linked) -> None:
    from sqlalchemy.orm import Session

    from sandbox import licence_copies_in_use
    from sandbox.models import JobRow

    engine = env.instance.engine
    with Session(engine) as session:
        for state, copy in (("queued", 11), ("running", 12), ("succeeded", 13)):
            session.add(
                JobRow(
                    operator=APART,
                    kind="python",
                    datasets={"people": {"version": 1, "path": "x", "licence_copy": copy}, "odd": "not a spec"},
                    scenario="s",
                    code="",
                    code_sha256="0" * 64,
                    spec_sha256="0" * 64,
                    state=state,
                )
            )
        session.commit()
    assert licence_copies_in_use(engine) == {11, 12}
    assert env.registry.licence_copies.copies_in_use is not None  # composed in by app.instance
