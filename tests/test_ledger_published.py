"""The ledger published to the storage (issue 19): checkpoints, signed notes, entries and cosignatures
written once under ``ledger/``, and ``keyong ledger verify-published`` checking them with no database.

Security claims are tested by attacks on the bucket: an entries object altered, rewritten (chain
recomputed), removed or overlapped; a stray object; a checkpoint's note or ``.json`` removed or
altered; a consistency proof altered; a checkpoint (or a whole log) forged with another key; a
cosignature altered or removed; a rollback to an earlier checkpoint. Each is found and named.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine
from typer.testing import CliRunner

import ledger.published
from app import Instance
from app.cli import cli
from app.ledger_publish import PublicationLoop, storage_for_url
from core import LocalStorage, Storage
from ledger import (
    Ledger,
    LedgerPublisher,
    PublishConflictError,
    PublishedReport,
    Record,
    WitnessPolicy,
    metadata,
    verify_published,
)
from ledger.merkle import root_from_leaf_hashes
from ledger.note import KEY_TYPE_COSIGNATURE_V1, Checkpoint, Verifier, cosign, sign_note
from ledger.tiles import TileHasher, parse_tile_path, tile_path, tiles_between


@pytest.fixture
def store(storage: Storage) -> Storage:
    """The bucket: files under a temporary directory, and a fresh prefix of a real S3 server (the
    ``storage`` fixture); the tests only use the Storage API."""
    return storage


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Ledger]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    yield Ledger(engine, Ed25519PrivateKey.generate(), origin="keyong.test/published", checkpoint_every=10)
    engine.dispose()


def fill(log: Ledger, n: int, start: int = 0) -> None:
    log.append_many(
        Record("op", "operator", "job.submitted", f"job:{i}", {"i": i, "名": "值"}) for i in range(start, n)
    )


def published(log: Ledger, store: Storage, n: int = 25) -> None:
    """``n`` entries (checkpoints every 10, then one at ``n``), all published."""
    fill(log, n)
    log.checkpoint()
    LedgerPublisher(log._engine, store).publish()


def check(store: Storage, log: Ledger, **options: object) -> PublishedReport:
    return verify_published(store, [log.public_key], origin=log.origin, **options)  # type: ignore[arg-type]


def kinds(report: PublishedReport) -> set[str]:
    return {p.kind for p in report.problems}


def replace(store: Storage, key: str, data: bytes) -> None:
    """The attacker's write (full bucket rights): delete, then put other bytes under the same key."""
    store.delete(key)
    store.put(key, data)


# --- publishing --------------------------------------------------------------------------------


def test_published_ledger_verifies_from_the_bucket_alone(log: Ledger, store: Storage) -> None:
    published(log, store)
    keys = sorted(item.key for item in store.list("ledger"))
    assert keys == sorted(
        [f"ledger/checkpoints/{s}" for s in (10, 20, 25)]
        + [f"ledger/checkpoints/{s}.json" for s in (10, 20, 25)]
        + ["ledger/entries/1-10.jsonl", "ledger/entries/11-20.jsonl", "ledger/entries/21-25.jsonl"]
        + [f"ledger/tile/0/000.p/{s}" for s in (10, 20, 25)]  # C2SP tlog-tiles: partial tiles, one per size
    )
    note = store.read("ledger/checkpoints/25").decode()
    assert note == log.checkpoint_note(25)  # the C2SP signed note, as the log signed it
    report = check(store, log)
    assert report.ok, report.problems
    database = log.verify().as_json()
    data = report.as_json()
    assert {k: data[k] for k in database} == database  # the same keys mean the same as `keyong ledger verify`
    assert data["latest"]["tree_size"] == 25 and data["latest"]["root"] == log.latest_checkpoint().root  # type: ignore[union-attr]


def test_publishing_is_create_only_and_catches_up(log: Ledger, store: Storage) -> None:
    published(log, store)
    publisher = LedgerPublisher(log._engine, store)
    again = publisher.publish()
    assert again.written == 0 and again.published == []
    assert publisher.publish(recheck=True).present == 12  # every object re-derived: the same bytes
    fill(log, 32, 25)
    log.checkpoint()
    more = publisher.publish()
    assert more.published == [32] and more.latest == 32 and more.written == 4
    assert store.exists("ledger/entries/26-32.jsonl")
    assert check(store, log).ok


def test_big_ranges_are_cut_in_batches(log: Ledger, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.published, "BATCH", 4)
    published(log, store, 13)
    entries = sorted(
        (item.key for item in store.list("ledger/entries")), key=lambda k: int(k.split("/")[2].split("-")[0])
    )
    assert entries == [f"ledger/entries/{a}-{b}.jsonl" for a, b in ((1, 4), (5, 8), (9, 10), (11, 12), (13, 13))]
    assert check(store, log).ok


def test_a_published_object_with_other_bytes_is_a_loud_error(log: Ledger, store: Storage) -> None:
    published(log, store)
    forged = store.read("ledger/entries/11-20.jsonl").replace(b'"op"', b'"xx"', 1)
    replace(store, "ledger/entries/11-20.jsonl", forged)
    with pytest.raises(PublishConflictError, match=r"ledger/entries/11-20\.jsonl"):
        LedgerPublisher(log._engine, store).publish(recheck=True)
    assert store.read("ledger/entries/11-20.jsonl") == forged  # nothing overwritten: the evidence stays


def test_the_server_loop_publishes_only_on_a_change(instance: Instance) -> None:
    loop = PublicationLoop(instance)
    first = loop.tick()
    assert first is not None and first.latest == instance.ledger.latest_checkpoint().tree_size  # type: ignore[union-attr]
    assert loop.tick() is None  # nothing new: one query, no listing
    instance.ledger.append(actor="a", role="host", action="test.done", subject="s")
    instance.ledger.checkpoint()
    assert loop.tick() is not None
    assert (instance.home / "ledger" / "checkpoints").is_dir()  # embedded: the home is the storage


def test_publication_goes_to_the_instances_storage_or_fails_loudly(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signer publishes where the instance's storage is (``KEYONG_STORAGE_URL``), never to the home
    instead; a storage that cannot be opened is an error, not a silent publication elsewhere."""
    bucket = LocalStorage(tmp_path / "bucket")
    monkeypatch.setattr(instance, "_storage", bucket)
    assert PublicationLoop(instance).tick() is not None
    assert bucket.exists(f"ledger/checkpoints/{instance.ledger.latest_checkpoint().tree_size}.json")  # type: ignore[union-attr]
    assert not (instance.home / "ledger").exists()

    from core import StorageError

    monkeypatch.setattr(instance, "_storage", None)
    monkeypatch.setattr(instance.settings, "storage_url", "gs://elsewhere/ledger")
    with pytest.raises(StorageError, match="unsupported storage URL"):
        PublicationLoop(instance).tick()
    assert not (instance.home / "ledger").exists()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_servers_checkpoint_loop_publishes(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook where the server signs checkpoints (``app/api/factory.py``) publishes them."""
    import asyncio

    from app.api import factory

    monkeypatch.setattr(factory, "CHECKPOINT_POLL_SECONDS", 0.01)
    size = instance.ledger.latest_checkpoint().tree_size  # type: ignore[union-attr]
    storage = LocalStorage(instance.home)

    async def serve_a_while() -> None:
        task = asyncio.create_task(factory._checkpoint_loop(instance))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if storage.exists(f"ledger/checkpoints/{size}.json"):
                break
        task.cancel()

    asyncio.run(serve_a_while())
    assert storage.exists(f"ledger/checkpoints/{size}.json")
    assert verify_published(storage, [instance.ledger.public_key]).ok


# --- attacks on the bucket -------------------------------------------------------------------


def _alter_entry(store: Storage) -> str:
    data = store.read("ledger/entries/11-20.jsonl")
    replace(store, "ledger/entries/11-20.jsonl", data.replace(b'"job:12"', b'"job:99"'))
    return "hash"


def _rewrite_chain(store: Storage) -> str:
    """Alter entry 12 and recompute every later hash in the batch: only the signed roots catch it."""
    import hashlib

    from ledger import canonical_json

    lines = [json.loads(line) for line in store.read("ledger/entries/11-20.jsonl").splitlines()]
    lines[1]["subject"] = "job:99"
    prev = lines[0]["hash"]
    for line in lines[1:]:
        line["prev_hash"] = prev
        body = canonical_json({k: v for k, v in line.items() if k != "hash"})
        line["hash"] = prev = hashlib.sha256(bytes.fromhex(line["prev_hash"]) + body).hexdigest()
    replace(store, "ledger/entries/11-20.jsonl", b"".join(canonical_json(line) + b"\n" for line in lines))
    return "checkpoint_root"


def _remove_entries(store: Storage) -> str:
    store.delete("ledger/entries/11-20.jsonl")
    return "missing"


def _insert_entries(store: Storage) -> str:
    store.put("ledger/entries/15-20.jsonl", b"\n".join(store.read("ledger/entries/11-20.jsonl").splitlines()[4:]))
    return "order"


def _stray_object(store: Storage) -> str:
    store.put("ledger/checkpoints/latest", b"25\n")
    return "format"


def _remove_checkpoint_json(store: Storage) -> str:
    store.delete("ledger/checkpoints/20.json")
    return "incomplete"


def _remove_checkpoint(store: Storage) -> str:
    store.delete("ledger/checkpoints/20.json")
    store.delete("ledger/checkpoints/20")
    return "missing"


def _alter_checkpoint_root(store: Storage) -> str:
    doc = json.loads(store.read("ledger/checkpoints/20.json"))
    doc["root"] = "00" * 32
    replace(store, "ledger/checkpoints/20.json", json.dumps(doc).encode())
    return "checkpoint_signature"


def _alter_note_signature(store: Storage) -> str:
    note = store.read("ledger/checkpoints/20").decode()
    body, signature = note.rsplit(" ", 1)
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    replace(store, "ledger/checkpoints/20", f"{body} {flipped}".encode())
    return "note"


def _alter_consistency(store: Storage) -> str:
    doc = json.loads(store.read("ledger/checkpoints/20.json"))
    doc["consistency"]["path"][0] = "11" * 32
    replace(store, "ledger/checkpoints/20.json", json.dumps(doc).encode())
    return "consistency"


def _alter_tile(store: Storage) -> str:
    replace(store, "ledger/tile/0/000.p/20", bytes(32) + store.read("ledger/tile/0/000.p/20")[32:])
    return "tile"


def _remove_tile(store: Storage) -> str:
    store.delete("ledger/tile/0/000.p/10")
    return "tile"


TAMPERING = [
    _alter_tile,
    _remove_tile,
    _alter_entry,
    _rewrite_chain,
    _remove_entries,
    _insert_entries,
    _stray_object,
    _remove_checkpoint_json,
    _remove_checkpoint,
    _alter_checkpoint_root,
    _alter_note_signature,
    _alter_consistency,
]


@pytest.mark.parametrize("attack", TAMPERING, ids=[t.__name__.strip("_") for t in TAMPERING])
def test_tampering_with_the_bucket_is_detected_and_named(log: Ledger, store: Storage, attack: object) -> None:
    published(log, store)
    expected = attack(store)  # type: ignore[operator]
    report = check(store, log)
    assert not report.ok
    assert expected in kinds(report), report.problems


def _forge_checkpoint(store: Storage, log: Ledger, forger: Ed25519PrivateKey, size: int) -> None:
    """A checkpoint over the true size and root, signed (JSON and note) by the forger's key."""
    from ledger import checkpoint_statement, public_key_hex

    doc = json.loads(store.read(f"ledger/checkpoints/{size}.json"))
    doc["signature"] = forger.sign(checkpoint_statement(size, doc["root"], doc["time"])).hex()
    doc["public_key"] = public_key_hex(forger.public_key())
    replace(store, f"ledger/checkpoints/{size}.json", json.dumps(doc).encode())
    body = Checkpoint(log.origin, size, bytes.fromhex(doc["root"])).body()
    replace(store, f"ledger/checkpoints/{size}", sign_note(body, log.origin, forger).encode())


def test_a_checkpoint_signed_by_another_key_is_refused(log: Ledger, store: Storage) -> None:
    published(log, store)
    _forge_checkpoint(store, log, Ed25519PrivateKey.generate(), 25)
    report = check(store, log)
    assert {"checkpoint_key", "checkpoint_signature"} <= kinds(report), report.problems


def test_a_whole_log_forged_with_another_key_is_refused(log: Ledger, store: Storage, tmp_path: Path) -> None:
    published(log, store)
    engine = create_engine(f"sqlite:///{tmp_path / 'forged.db'}")
    metadata.create_all(engine)
    forged = Ledger(engine, Ed25519PrivateKey.generate(), origin=log.origin, checkpoint_every=10)
    bucket = LocalStorage(tmp_path / "forged-bucket")
    published(forged, bucket)
    assert verify_published(bucket, [forged.public_key]).ok
    report = verify_published(bucket, [log.public_key], origin=log.origin)
    assert "checkpoint_signature" in kinds(report) and not report.ok
    engine.dispose()


def test_an_empty_bucket_does_not_verify(log: Ledger, store: Storage) -> None:
    report = check(store, log)
    assert not report.ok and kinds(report) == {"missing"}


# --- tlog-tiles ------------------------------------------------------------------------------


def test_tile_paths_are_the_specs() -> None:
    assert tile_path(0, 1234067, 256) == "tile/0/x001/x234/067"
    assert tile_path(1, 5, 7) == "tile/1/005.p/7"
    assert parse_tile_path("tile/0/x001/x234/067") == (0, 1234067, 256)
    assert parse_tile_path("tile/1/005.p/7") == (1, 5, 7)
    for wrong in ("tile/0/1234067", "tile/0/x000/067", "tile/6/000", "tile/0/000.p/256", "tile/0/000.p/0", "tile/0/67"):
        assert parse_tile_path(wrong) is None, wrong


def test_published_tiles_hold_the_tree(log: Ledger, store: Storage) -> None:
    """600 entries, checkpoints at 300 and 600: two full level-0 tiles, partial edges, a level-1 tile,
    and the hashes in them rebuild the signed roots (what any tlog client does with them)."""
    log.checkpoint_every = 300
    published(log, store, 600)
    tiles = sorted(item.key for item in store.list("ledger/tile"))
    assert tiles == [
        "ledger/tile/0/000",
        "ledger/tile/0/001",
        "ledger/tile/0/001.p/44",
        "ledger/tile/0/002.p/88",
        "ledger/tile/1/000.p/1",
        "ledger/tile/1/000.p/2",
    ]
    leaves = store.read("ledger/tile/0/000") + store.read("ledger/tile/0/001") + store.read("ledger/tile/0/002.p/88")
    hashes = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
    assert root_from_leaf_hashes(hashes).hex() == log.latest_checkpoint().root  # type: ignore[union-attr]
    level1 = store.read("ledger/tile/1/000.p/2")
    assert level1 == root_from_leaf_hashes(hashes[:256]) + root_from_leaf_hashes(hashes[256:512])
    assert check(store, log).ok


def test_the_publishers_tiles_are_the_verifiers_tiles_at_any_size() -> None:
    """Without a database: the tiles a publisher writes checkpoint after checkpoint are exactly those a
    verifier expects from the leaves, across level 2 (65,536 leaves)."""
    sizes = [1, 255, 256, 257, 65_535, 65_536, 65_800, 70_000]
    hasher, published_paths, previous = TileHasher(), set(), 0
    for size in sizes:
        published_paths |= {tile_path(*tile) for tile in tiles_between(previous, size)}
        previous = size
    for n in range(1, sizes[-1] + 1):
        hasher.add(n.to_bytes(32, "big"))
        if n in sizes:
            hasher.edge()
    assert set(hasher.digests) == published_paths
    assert "tile/2/000.p/1" in published_paths and "tile/1/000" in published_paths


# --- witnesses and rotations -------------------------------------------------------------------


def _witnessed(log: Ledger, store: Storage) -> WitnessPolicy:
    published(log, store)
    keys = [Ed25519PrivateKey.generate() for _ in range(2)]
    verifiers = tuple(
        Verifier.from_public_key(f"w{i}.example", k.public_key(), KEY_TYPE_COSIGNATURE_V1) for i, k in enumerate(keys)
    )
    policy = WitnessPolicy(2, verifiers)
    body = Checkpoint(log.origin, 25, bytes.fromhex(log.latest_checkpoint().root)).body()  # type: ignore[union-attr]
    for i, key in enumerate(keys):
        log.add_cosignature(25, cosign(body, verifiers[i].name, key, 1_790_000_000 + i), policy)
    LedgerPublisher(log._engine, store).publish()  # cosignatures arrive after the checkpoint was published
    return policy


def test_cosignatures_are_published_and_counted(log: Ledger, store: Storage) -> None:
    policy = _witnessed(log, store)
    assert len(list(store.list("ledger/cosignatures"))) == 2
    report = check(store, log, policy=policy)
    assert report.ok, report.problems
    assert report.witnessed == {"tree_size": 25, "witnesses": ["w0.example", "w1.example"]}


def test_an_altered_or_removed_cosignature_is_detected(log: Ledger, store: Storage) -> None:
    policy = _witnessed(log, store)
    first, _ = sorted(item.key for item in store.list("ledger/cosignatures"))
    replace(store, first, store.read(first).replace(b"w", b"v", 1))
    assert "cosignature" in kinds(check(store, log, policy=policy))
    store.delete(first)
    report = check(store, log, policy=policy)
    assert kinds(report) == {"witnesses"} and report.witnessed is None


def test_rotations_are_followed_from_either_key(log: Ledger, store: Storage) -> None:
    fill(log, 12)
    old = log.public_key
    log.rotate_key(Ed25519PrivateKey.generate(), actor="host:root", role="host")
    fill(log, 30, 12)
    log.checkpoint()
    LedgerPublisher(log._engine, store).publish()
    for key in (old, log.public_key):
        report = verify_published(store, [key], origin=log.origin)
        assert report.ok, report.problems


# --- the commands ------------------------------------------------------------------------------


def _invoke(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_commands_publish_verify_and_refuse_a_rollback(instance: Instance, tmp_path: Path) -> None:
    home = str(instance.home)
    code, key = _invoke("ledger", "public-key", "--home", home)
    vkey = str(key["vkey"])
    code, signed = _invoke("ledger", "checkpoint", "--home", home)
    assert code == 0 and signed["published"]["latest"] == signed["tree_size"]  # type: ignore[index]
    code, caught_up = _invoke("ledger", "publish", "--home", home)
    assert code == 0 and caught_up["written"] == 0
    state = tmp_path / "trusted.json"
    verify = ("ledger", "verify-published", "--storage-url", instance.home.as_uri(), "--public-key", vkey)
    code, report = _invoke(*verify, "--state", str(state))
    assert code == 0, report
    copy = tmp_path / "regulator-copy"  # only the bucket's ledger/ prefix: no database, no home, no secrets
    shutil.copytree(instance.home / "ledger", copy / "ledger")
    code, alone = _invoke("ledger", "verify-published", "--storage-url", str(copy), "--public-key", vkey)
    assert code == 0 and alone["entries"] == report["entries"] and not (copy / "keyong.db").exists()
    assert {"ok", "entries", "head", "checkpoints", "problems"} <= set(report) and report["ok"] is True
    assert report["trusted"]["tree_size"] == signed["tree_size"]  # type: ignore[index]
    for n in range(3):
        instance.ledger.append(actor="a", role="host", action="test.done", subject=f"s{n}")
    code, newer = _invoke("ledger", "checkpoint", "--home", home)
    code, report = _invoke(*verify, "--state", str(state))
    assert code == 0 and report["trusted"]["tree_size"] == newer["tree_size"]  # type: ignore[index]
    # Roll the bucket back to the first checkpoint: each object left verifies, the state refuses it.
    storage = LocalStorage(instance.home)
    size = int(newer["tree_size"])  # type: ignore[call-overload]
    first_new = int(signed["tree_size"]) + 1  # type: ignore[call-overload]
    newer_objects = (f"ledger/checkpoints/{size}", f"ledger/entries/{first_new}-", f"ledger/tile/0/000.p/{size}")
    for item in list(storage.list("ledger")):
        if item.key.startswith(newer_objects):
            storage.delete(item.key)
    code, report = _invoke(*verify, "--state", str(state))
    assert code == 1 and "trusted_checkpoint" in {p["kind"] for p in report["problems"]}  # type: ignore[attr-defined]
    code, report = _invoke("ledger", "verify-published", "--storage-url", home, "--public-key", "00" * 32)
    assert code == 1 and report["ok"] is False  # another key: refused
    code, exported = _invoke("ledger", "export", "--to-storage", "--home", home)
    assert code == 0 and storage.exists(str(exported["key"])) and str(exported["key"]).startswith("ledger/exports/")


def test_the_standalone_verifier_reads_a_downloaded_copy(
    log: Ledger, store: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m ledger.published_verify DIR``: the ledger package alone, on a copy of ``ledger/``."""
    from ledger.published_verify import main

    published(log, store)
    copy = tmp_path / "download"
    for item in store.list("ledger"):
        target = copy / item.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read(item.key))
    vkey = log.verifier.vkey
    assert main([str(copy), "--public-key", vkey]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 25
    (copy / "ledger/entries/1-10.jsonl").write_bytes(b"")
    assert main([str(copy), "--public-key", vkey]) == 1
    assert main([str(copy), "--public-key", "not-a-key"]) == 2


def test_storage_urls_for_a_regulator(tmp_path: Path) -> None:
    assert isinstance(storage_for_url(str(tmp_path)), LocalStorage)
    assert isinstance(storage_for_url(tmp_path.as_uri()), LocalStorage)
    from core import StorageError

    with pytest.raises(StorageError):
        storage_for_url(str(tmp_path / "absent"))
    with pytest.raises(StorageError):
        storage_for_url("ftp://example.org/x")


@pytest.mark.attack
@pytest.mark.parametrize("url", ["file://[x/ledger?sig=S3CR3TVALUE", "file:///srv/ledger?X-Amz-Signature=S3CR3TVALUE"])
def test_verify_published_refuses_a_bad_storage_url_in_one_line(url: str) -> None:
    """``keyong ledger verify-published --storage-url`` with a malformed URL, or one carrying a query:
    exit 1 with a clear reason, no traceback, and the query (a signature may be in it) not repeated."""
    result = CliRunner().invoke(cli, ["ledger", "verify-published", "--storage-url", url, "--public-key", "00" * 32])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a refusal, not a traceback
    assert "storage" in result.stderr and "S3CR3TVALUE" not in result.output + result.stderr
