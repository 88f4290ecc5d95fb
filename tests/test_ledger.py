"""The ledger on SQLite and PostgreSQL: appends, the database's append-only guard, tamper
detection (edit, delete, insert, reorder, truncate, re-signed checkpoint), proofs checked by
the standalone verifier, export, checkpoints, witnesses, and atomicity with domain changes."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import Instance, Settings
from ledger import GENESIS, EntryError, Ledger, LedgerError, Record, canonical_json, verify_consistency
from ledger.entry import entry_body
from ledger.note import (
    KEY_TYPE_COSIGNATURE_V1,
    Checkpoint,
    Verifier,
    WitnessPolicy,
    add_signature_lines,
    cosign,
)
from ledger.verify import TrustedState, check_inclusion_proof, verify_export
from operators import IdentityError, Role
from tests.ledger_support import tamper
from tests.totp_support import code_for


def fill(ledger: Ledger, n: int, start: int = 0) -> None:
    ledger.append_many(
        Record(f"op-{i % 3}", "operator", "job.submitted", f"job:{i}", {"i": i, "名": "值"})
        for i in range(start, start + n)
    )


def kinds(ledger: Ledger) -> list[tuple[int | None, str]]:
    """The problems both verifiers find; they must agree (the fast one is the default)."""
    fast, reference = ledger.verify(), ledger.verify(reference=True)
    assert fast.as_json() == reference.as_json()
    return [(p.seq, p.kind) for p in reference.problems]


# --- the chain ------------------------------------------------------------------------------


def test_init_is_ledgered_and_verifies(instance: Instance) -> None:
    ledger = instance.ledger
    found = ledger.entries()
    assert [e.action for e in found] == ["instance.initialised"] + ["principal.created"] * 4
    assert found[0].prev_hash == GENESIS.hex()
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(found))
    report = ledger.verify()
    assert report.ok and report.entries == 5 and report.checkpoints == 1
    assert report.head == found[-1].hash


def test_entry_hash_is_sha256_of_prev_and_canonical_json(instance: Instance) -> None:
    entry = instance.ledger.append(
        actor="demo-agency",
        role="agency",
        action="licence.granted",
        subject="licence:1",
        payload={"datasets": ["residents"], "说明": "中文"},
    )
    fields = {k: v for k, v in entry.as_json().items() if k != "hash"}
    assert set(fields) == {"seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash"}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert hashlib.sha256(bytes.fromhex(entry.prev_hash) + body).hexdigest() == entry.hash
    assert entry.time.endswith("Z") and datetime.fromisoformat(entry.time.replace("Z", "+00:00")).tzinfo is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(1, 2**40),
    actor=st.text(min_size=1, max_size=30),
    subject=st.text(min_size=1, max_size=30),
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
def test_fast_entry_body_equals_canonical_json(seq: int, actor: str, subject: str, payload: dict[str, object]) -> None:
    fields = {
        "seq": seq,
        "time": "2026-11-23T00:00:00.000000Z",
        "actor": actor,
        "role": "operator",
        "action": "job.ran",
        "subject": subject,
        "payload": payload,
        "prev_hash": "ab" * 32,
    }
    fast = entry_body(
        seq,
        fields["time"],
        actor,
        "operator",
        "job.ran",
        subject,  # type: ignore[arg-type]
        canonical_json(payload).decode(),
        "ab" * 32,
    )
    assert fast == canonical_json(fields)


@pytest.mark.parametrize(
    "record, message",
    [
        (Record("", "agency", "a.b", "x:1"), "actor"),
        (Record("a", "agency", "NotDotted", "x:1"), "dotted"),
        (Record("a", "agency", "a.b", "x:1", ["not", "an", "object"]), "JSON object"),  # type: ignore[arg-type]
        (Record("a", "agency", "a.b", "x:1", {"v": float("nan")}), "canonical"),
        (Record("a", "agency", "a.b", "x:1", {"v": object()}), "not JSON"),
        (Record("a", "agency", "a.b", "x:1", {"v": "x" * 70_000}), "limit"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_appended(instance: Instance, record: Record, message: str) -> None:
    size = instance.ledger.size()
    with pytest.raises(EntryError, match=message):
        instance.ledger.append_many([Record("a", "agency", "a.b", "x:0"), record])
    assert instance.ledger.size() == size


def test_append_needs_a_write_transaction_on_sqlite(tmp_path: Path) -> None:
    """Only SQLite distinguishes deferred from immediate transactions, so only it can refuse."""
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        with instance.engine.connect() as connection, connection.begin(), pytest.raises(LedgerError, match="write"):
            instance.ledger.append(actor="a", role="r", action="a.b", subject="s", connection=connection)
    finally:
        instance.close()


def test_entry_and_domain_change_commit_or_roll_back_together(instance: Instance) -> None:
    size = instance.ledger.size()
    with pytest.raises(IdentityError, match="already exists"):
        instance.identity.create_principal("demo-agency", Role.AGENCY)
    assert instance.ledger.size() == size  # the refused change left no entry
    with pytest.raises(RuntimeError), instance.ledger.transaction() as connection:
        instance.ledger.append(actor="a", role="r", action="a.b", subject="s", connection=connection)
        raise RuntimeError("domain change failed after the append")
    assert instance.ledger.size() == size
    instance.identity.create_principal("acme-ops", Role.OPERATOR)
    assert instance.ledger.entries(subject="principal:acme-ops")[0].action == "principal.created"


def test_api_key_exchange_and_suspension_are_ledgered(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    issued = instance.identity.exchange(tokens["operator"], code_for(tokens["operator"]))
    instance.identity.set_active("demo-operator", False, reason="3 months without use")
    actions = [(e.action, e.actor, e.payload) for e in instance.ledger.entries(subject="principal:demo-operator")]
    assert actions[1] == (
        "auth.token_issued",
        "demo-operator",
        {
            "jti": issued.claims.jti,
            "key_id": tokens["operator"].split("_")[1],
            "expires_at": issued.claims.expires_at.isoformat(),
        },
    )
    assert actions[2][0] == "principal.suspended" and actions[2][2] == {"reason": "3 months without use"}
    # No secret material in the ledger: the API key's secret part never appears.
    secret = tokens["operator"].split("_", 2)[2]
    assert all(secret not in json.dumps(e.as_json()) for e in instance.ledger.entries(limit=1000))


# --- the database refuses UPDATE and DELETE -------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 2",
        "DELETE FROM ledger_entries WHERE seq = 5",
        "UPDATE ledger_checkpoints SET root = '00'",
        "DELETE FROM ledger_checkpoints",
        "DELETE FROM ledger_nodes",
    ],
)
def test_database_refuses_update_and_delete(instance: Instance, statement: str) -> None:
    fill(instance.ledger, 300)  # so that every table has rows for the statement to hit
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"), instance.engine.begin() as connection:
        connection.execute(text(statement))
    assert instance.ledger.verify().ok


def test_postgres_refuses_truncate(tmp_path: Path, pg_url: str) -> None:
    instance, _ = Instance.init(Settings(home=tmp_path / "home", database_url=pg_url))
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"), instance.engine.begin() as connection:
        connection.execute(text("TRUNCATE ledger_entries"))
    assert instance.ledger.verify().ok
    instance.close()


# --- tampering behind the database's back is detected --------------------------------------


@pytest.fixture
def filled(instance: Instance) -> Ledger:
    fill(instance.ledger, 2500)  # checkpoints at 1005 and 2005 (after init's at 5)
    assert instance.ledger.verify().ok
    return instance.ledger


def test_edit_is_detected_at_the_edited_entry(instance: Instance, filled: Ledger) -> None:
    tamper(instance.engine, "UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 1234")
    assert kinds(filled) == [(1234, "hash")]


def test_payload_edit_is_detected(instance: Instance, filled: Ledger) -> None:
    tamper(instance.engine, """UPDATE ledger_entries SET payload = '{"i":1}' WHERE seq = 10""")
    assert (10, "hash") in kinds(filled)


def test_delete_is_detected_at_the_gap(instance: Instance, filled: Ledger) -> None:
    tamper(instance.engine, "DELETE FROM ledger_entries WHERE seq = 777")
    problems = kinds(filled)
    assert problems[0] == (777, "missing")
    assert (778, "link") in problems


def test_insert_is_detected(instance: Instance, filled: Ledger) -> None:
    """A forged entry slipped in by renumbering the rest up by one."""
    forged = filled.get(600)
    statements = [
        "UPDATE ledger_entries SET seq = seq + 100000 WHERE seq >= 600",
        "UPDATE ledger_entries SET seq = seq - 99999 WHERE seq >= 100000",
        "INSERT INTO ledger_entries (seq, time, actor, role, action, subject, payload, prev_hash, hash) "
        f"VALUES (600, '{forged.time}', 'mallory', 'operator', 'job.submitted', 'job:x', '{{}}', "
        f"'{forged.prev_hash}', '{'f' * 64}')",
    ]
    tamper(instance.engine, *statements)
    problems = kinds(filled)
    assert problems[0] == (600, "hash")
    assert filled.verify().entries == 2506


def test_reorder_is_detected(instance: Instance, filled: Ledger) -> None:
    tamper(
        instance.engine,
        "UPDATE ledger_entries SET seq = -1 WHERE seq = 300",
        "UPDATE ledger_entries SET seq = 300 WHERE seq = 301",
        "UPDATE ledger_entries SET seq = 301 WHERE seq = -1",
    )
    problems = kinds(filled)
    assert problems[0][0] == 300 and problems[0][1] in ("link", "hash")


def test_truncation_is_detected(instance: Instance, filled: Ledger) -> None:
    tamper(instance.engine, "DELETE FROM ledger_entries WHERE seq > 1500")
    problems = filled.verify().problems
    assert any(p.kind == "truncated" and p.seq == 1501 for p in problems)


def test_rewrite_with_recomputed_hashes_is_caught_by_signed_checkpoints(instance: Instance, filled: Ledger) -> None:
    """The attacker edits entry 1500 and recomputes every later hash so the chain is whole again."""
    rows = [filled.get(seq) for seq in range(1500, 2506)]
    prev = rows[0].prev_hash
    statements = []
    for entry in rows:
        actor = "mallory" if entry.seq == 1500 else entry.actor
        body = entry_body(
            entry.seq,
            entry.time,
            actor,
            entry.role,
            entry.action,
            entry.subject,
            canonical_json(entry.payload).decode(),
            prev,
        )
        new_hash = hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
        statements.append(
            f"UPDATE ledger_entries SET actor = '{actor}', prev_hash = '{prev}', hash = '{new_hash}' "
            f"WHERE seq = {entry.seq}"
        )
        prev = new_hash
    tamper(instance.engine, *statements)
    problems = filled.verify().problems
    # and the home's remembered head (red team 21d F8): the root at the committed size is not the one committed
    kinds = {p.kind for p in problems}
    assert "rolled_back" in kinds and kinds <= {"checkpoint_root", "merkle_node", "rolled_back"}
    root_problem = next(p for p in problems if p.kind == "checkpoint_root")
    assert root_problem.seq == 1006  # bounded to after the last checkpoint (size 1005) that still matches
    assert "2005" in root_problem.detail


def test_resigned_fake_checkpoint_is_detected(instance: Instance, filled: Ledger) -> None:
    """A checkpoint re-signed with the attacker's own key (and naming it) does not pass."""
    from ledger import checkpoint_statement, public_key_hex

    forger = Ed25519PrivateKey.generate()
    latest = filled.latest_checkpoint()
    assert latest is not None
    fake_root = "ab" * 32
    signature = forger.sign(checkpoint_statement(latest.tree_size, fake_root, latest.time)).hex()
    tamper(
        instance.engine,
        f"UPDATE ledger_checkpoints SET root = '{fake_root}', signature = '{signature}', "
        f"public_key = '{public_key_hex(forger.public_key())}' WHERE tree_size = {latest.tree_size}",
    )
    found = {p.kind for p in filled.verify().problems}
    assert {"checkpoint_key", "checkpoint_signature", "checkpoint_root"} <= found


# --- proofs and export, checked by the standalone verifier ----------------------------------


def test_inclusion_proofs_verify_offline_and_forgeries_do_not(instance: Instance, filled: Ledger) -> None:
    for seq in (1, 2, 255, 256, 257, 1000, 1999, 2505):
        proof = filled.prove(seq, checkpoint_if_needed=True).as_json()
        assert check_inclusion_proof(proof, filled.public_key), seq
        assert proof["leaf_index"] == seq - 1
        for mutate in (
            lambda p: p.update(entry_hash="00" * 32),
            lambda p: p.update(path=p["path"][:-1]),
            lambda p: p.update(path=[*p["path"], "00" * 32]),
            lambda p: p.update(leaf_index=p["leaf_index"] + 1, seq=p["seq"] + 1),
            lambda p: p["checkpoint"].update(root="11" * 32),
            lambda p: p["checkpoint"].update(signature="00" * 64),
        ):
            forged = json.loads(json.dumps(proof))
            mutate(forged)
            assert not check_inclusion_proof(forged, filled.public_key)
    other_key = Ed25519PrivateKey.generate().public_key()
    assert not check_inclusion_proof(filled.prove(5).as_json(), other_key)


def test_prove_refuses_entries_past_the_checkpoint(instance: Instance, filled: Ledger) -> None:
    size = filled.size()
    with pytest.raises(LedgerError, match="newer than the latest checkpoint"):
        filled.prove(size)
    with pytest.raises(LedgerError, match="numbered from 1"):
        filled.prove(0)


def test_consistency_proofs_verify(instance: Instance, filled: Ledger) -> None:
    for old, new in [(0, 10), (1, 1), (5, 2505), (1000, 2000), (1023, 1025), (2504, 2505)]:
        proof = filled.consistency(old, new)
        path = [bytes.fromhex(p) for p in proof.path]
        assert verify_consistency(old, new, path, bytes.fromhex(proof.old_root), bytes.fromhex(proof.new_root))
    with pytest.raises(LedgerError):
        filled.consistency(10, 5)
    with pytest.raises(LedgerError, match="fewer"):
        filled.consistency(10, 10**6)


def test_export_verifies_offline_and_detects_edits(instance: Instance, filled: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        count, cps = filled.export(handle)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count + cps
    first = json.loads(lines[0])
    assert set(first) == {"seq", "time", "actor", "role", "action", "subject", "payload", "prev_hash", "hash"}
    assert set(json.loads(lines[-1])) == {"tree_size", "root", "time", "signature", "public_key"}
    report = verify_export(path, filled.public_key)
    assert report.ok and report.entries == count and report.checkpoints == cps

    edited = [json.loads(line) for line in lines]
    edited[41]["payload"] = {"i": -1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in edited), encoding="utf-8")
    problems = verify_export(bad, filled.public_key).problems
    assert (problems[0].seq, problems[0].kind) == (42, "hash")
    assert not verify_export(path, Ed25519PrivateKey.generate().public_key()).ok


def test_trusted_state_refuses_a_rewritten_history(instance: Instance, filled: Ledger, tmp_path: Path) -> None:
    state = TrustedState(tmp_path / "trusted.json")
    first = filled.latest_checkpoint()
    assert first is not None
    state.save(first.as_json())
    fill(filled, 10, start=9000)
    newer = filled.checkpoint()
    proof = [bytes.fromhex(p) for p in filled.consistency(first.tree_size, newer.tree_size).path]
    assert state.check_with_proof(newer.as_json(), proof) is None
    forked = {**newer.as_json(), "root": "cd" * 32}
    assert state.check_with_proof(forked, proof) is not None
    assert state.check({**first.as_json(), "tree_size": first.tree_size - 1}, first.root) is not None
    assert state.check(newer.as_json(), "00" * 32) is not None


# --- checkpoints and witnesses ---------------------------------------------------------------


def test_checkpoint_every_n_entries_and_on_demand(instance: Instance) -> None:
    ledger = instance.ledger
    fill(ledger, 2995)
    sizes = [cp.tree_size for cp in _checkpoints(ledger)]
    assert sizes == [5, 1005, 2005]
    assert ledger.checkpoint().tree_size == 3000
    assert ledger.checkpoint().tree_size == 3000  # nothing new: the same checkpoint
    assert len(_checkpoints(ledger)) == 4


def _checkpoints(ledger: Ledger) -> list:  # type: ignore[type-arg]
    from ledger.storage import checkpoints

    with ledger._engine.connect() as connection:
        from sqlalchemy import select

        return list(connection.execute(select(checkpoints).order_by(checkpoints.c.tree_size)))


def test_checkpoint_after_max_age(instance: Instance) -> None:
    now = [datetime.now(UTC)]
    ledger = Ledger(
        instance.engine,
        instance.keys.ledger_key,
        origin="keyong.local/t",
        clock=lambda: now[0],
        checkpoint_max_age=timedelta(seconds=60),
    )
    ledger.append(actor="a", role="r", action="a.b", subject="s")
    assert ledger.checkpoint_if_due() is None  # init's checkpoint is fresh
    now[0] += timedelta(seconds=61)
    made = ledger.checkpoint_if_due()
    assert made is not None and made.tree_size == ledger.size()
    assert ledger.checkpoint_if_due() is None  # nothing appended since
    now[0] += timedelta(seconds=61)
    ledger.append(actor="a", role="r", action="a.b", subject="s")  # the append itself checkpoints when overdue
    assert ledger.latest_checkpoint().tree_size == ledger.size()  # type: ignore[union-attr]


def test_checkpoint_note_and_witness_cosignatures(instance: Instance) -> None:
    ledger = instance.ledger
    witnesses = [Ed25519PrivateKey.generate() for _ in range(3)]
    verifiers = [
        Verifier.from_public_key(f"witness-{i}.example", k.public_key(), KEY_TYPE_COSIGNATURE_V1)
        for i, k in enumerate(witnesses)
    ]
    policy = WitnessPolicy(threshold=2, witnesses=tuple(verifiers))
    signed = ledger.checkpoint()
    body = Checkpoint(ledger.origin, signed.tree_size, bytes.fromhex(signed.root)).body()
    note = ledger.checkpoint_note()
    assert note.startswith(body.decode())
    assert not policy.satisfied_by(note, ledger.verifier)
    line0 = cosign(body, verifiers[0].name, witnesses[0], 1_790_000_000)
    assert ledger.add_cosignature(signed.tree_size, line0, policy) == "witness-0.example"
    with pytest.raises(LedgerError, match="already cosigned"):
        ledger.add_cosignature(signed.tree_size, line0, policy)
    assert not policy.satisfied_by(ledger.checkpoint_note(), ledger.verifier)
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(LedgerError, match="does not verify"):
        ledger.add_cosignature(signed.tree_size, cosign(body, "stranger.example", stranger, 1_790_000_000), policy)
    ledger.add_cosignature(signed.tree_size, cosign(body, verifiers[2].name, witnesses[2], 1_790_000_001), policy)
    assert policy.satisfied_by(ledger.checkpoint_note(), ledger.verifier, origin=ledger.origin)
    # A cosignature over another checkpoint does not count.
    other = Checkpoint(ledger.origin, signed.tree_size, b"\x01" * 32).body()
    with pytest.raises(LedgerError):
        ledger.add_cosignature(signed.tree_size, cosign(other, verifiers[1].name, witnesses[1], 1_790_000_002), policy)
    assert add_signature_lines  # the public helper regulators use to merge cosignatures


def test_postgres_application_role_cannot_update_or_delete(pg_database: str) -> None:
    """As a non-superuser application role owning the tables, privileges refuse UPDATE/DELETE;
    granting them back to itself still leaves the trigger in the way."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from app.database import make_engine, migrate

    role = f"keyong_app_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"'))
    url = make_url(pg_database).set(username=role).update_query_dict({"options": f"-csearch_path={role}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        migrate(engine)
        ledger = Ledger(engine, Ed25519PrivateKey.generate(), origin="keyong.local/app-role")
        fill(ledger, 10)
        for statement in (
            "UPDATE ledger_entries SET actor = 'x'",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
        ):
            with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as connection:
                connection.execute(text(statement))
        with engine.begin() as connection:
            connection.execute(text("GRANT UPDATE, DELETE ON ledger_entries TO CURRENT_USER"))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE ledger_entries SET actor = 'x'"))
        assert ledger.verify().ok and ledger.size() == 10
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{role}" CASCADE'))
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_public_key_in_every_accepted_form(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ledger import public_key_hex
    from ledger.verify import load_public_key

    # Keep drawing until the base64 of the key holds '+' (the separator of a vkey's fields).
    while True:
        key = Ed25519PrivateKey.generate().public_key()
        vkey = Verifier.from_public_key("keyong.local/x", key).vkey
        if vkey.count("+") > 2:
            break
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    for spec in (public_key_hex(key), vkey, str(pem)):
        assert public_key_hex(load_public_key(spec)) == public_key_hex(key), spec
    witness_vkey = Verifier.from_public_key("w.example", key, KEY_TYPE_COSIGNATURE_V1).vkey
    for bad in ("zz" * 32, "a+b+c", witness_vkey, str(tmp_path / "missing.pem")):
        with pytest.raises((ValueError, OSError)):
            load_public_key(bad)


def test_checkpoints_land_every_n_entries_whatever_the_batch_boundaries(instance: Instance) -> None:
    ledger = Ledger(instance.engine, instance.keys.ledger_key, origin="keyong.local/t", checkpoint_every=100)
    for batch in (95, 5, 100, 250, 1, 49):  # ends exactly on, before and after multiples
        fill(ledger, batch)
    assert [cp.tree_size for cp in _checkpoints(ledger)] == [5, 105, 205, 305, 405, 505]
    assert ledger.verify().ok


@pytest.mark.parametrize(
    "payload",
    [
        {"note": "申请人 11010519491231002X"},
        {"contacts": [{"电话": "+86 13812345678"}]},
        {"11010519491231002X": "as a key"},
        {"phone_as_number": 13812345678},
    ],
)
def test_personal_data_is_refused_from_entries(instance: Instance, payload: dict[str, object]) -> None:
    size = instance.ledger.size()
    with pytest.raises(EntryError, match="never personal data"):
        instance.ledger.append(
            actor="demo-agency", role="agency", action="job.reviewed", subject="job:1", payload=payload
        )
    assert instance.ledger.size() == size


def test_hashes_and_identifiers_pass_the_screen(instance: Instance) -> None:
    digest = hashlib.sha256(b"11010519491231002X").hexdigest()
    instance.ledger.append(
        actor="demo-agency",
        role="agency",
        action="job.reviewed",
        subject="job:13812345678x",
        payload={
            "row_sha256": digest,
            "uscc": "91350100M000100Y43",
            "count": 12345678901,
            "id_not_valid": "110105194912310021",
        },
    )
