"""C2SP signed-note / tlog-checkpoint / tlog-cosignature: known answers, round trips, rejections.

External vectors, copied verbatim from the sources named beside each constant:

* golang.org/x/mod ``sumdb/note/note_test.go``: the PeterNeumann signer and verifier keys, the
  signed note, the EnochRoot key and signature, and Go's malformed-note table;
* sigsum-go ``pkg/checkpoint/checkpoint_test.go``: a real sum.golang.org checkpoint with the Go
  checksum database key, a log checkpoint signed with seed {17, 0, ...} and a cosignature/v1
  line by the same key at time 1234;
* C2SP ``tlog-checkpoint.md`` / ``tlog-cosignature.md``: the example checkpoint and cosignature.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.note import (
    EMPTY_TREE_ROOT,
    KEY_TYPE_COSIGNATURE_V1,
    KEY_TYPE_ED25519,
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    PolicyError,
    UnverifiedNoteError,
    Verifier,
    WitnessPolicy,
    add_signature_lines,
    cosign,
    cosignature_message,
    format_skey,
    format_vkey,
    key_hash,
    open_note,
    parse_checkpoint_body,
    parse_skey,
    parse_vkey,
    sign_note,
    verify_cosignature,
)

EM = "\u2014"

# --- golang.org/x/mod/sumdb/note/note_test.go -------------------------------------------------
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    f"{EM} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    f"{EM} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# --- sigsum-go pkg/checkpoint/checkpoint_test.go (TestGoSumDBCheckpoint: sum.golang.org, 2024-09-23)
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n"
    f"{EM} sum.golang.org "
    "Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n"
)
# --- sigsum-go: crypto.NewEd25519Signer(&crypto.PrivateKey{17}), testTreeHead {10, {28, 14, 71}} --
SIGSUM_SEED = bytes([17]) + bytes(31)
SIGSUM_ROOT = bytes([28, 14, 71]) + bytes(29)
SIGSUM_ORIGIN = "sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69"
SIGSUM_LOG_NOTE = (
    f"{SIGSUM_ORIGIN}\n10\nHA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
    f"{EM} {SIGSUM_ORIGIN} "
    "gJ2ho0n8F8olcerUF1FFdv235A/5as/coWrpLrtE7ovMeP5whgwouYExowG/lTznxu6OUGjjt5yJQ6bXtTcf718MqAQ=\n"
)
SIGSUM_COSIG = (
    f"{EM} example.org/witness "
    "ys8uUAAAAAAAAATSftMzceM8zssdZ9jin9SjwIxzx9iADMf63VqirX2hafol9RsqNqbofIz0LVRqHXI2kpEBSki5RTXFtxz1vo9+Cg=="
)
# --- C2SP tlog-checkpoint.md and tlog-cosignature.md examples --------------------------------
C2SP_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
C2SP_LOG_SIG = (
    f"{EM} example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
C2SP_COSIG = (
    f"{EM} witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def _key(n: int) -> Ed25519PrivateKey:
    """A deterministic test key: seed = n repeated."""
    return Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)


def _flip_blob_byte(line: str, index: int) -> str:
    """The signature line with byte ``index`` of its decoded blob inverted."""
    head, b64 = line.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(b64))
    blob[index] ^= 0xFF
    return f"{head} {base64.b64encode(bytes(blob)).decode()}\n"


# =============================================================================================
# Known answers


def test_go_vkey_fields_and_reformat() -> None:
    v = parse_vkey(PETER_VKEY)
    assert (v.name, v.key_type, v.key_hash.hex(), v.key_id) == ("PeterNeumann", 1, "c74f20a3", 0xC74F20A3)
    assert v.vkey == PETER_VKEY
    assert format_vkey("PeterNeumann", v.public_key) == PETER_VKEY
    assert key_hash("PeterNeumann", 1, v.public_key) == bytes.fromhex("c74f20a3")
    assert parse_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3")) == v  # Go's ParseUint takes either case


def test_go_vkey_manglings_rejected() -> None:
    """Go TestNewVerifier: every proper substring and every single-byte increment must fail."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    parse_vkey(PETER_VKEY[i:j])
    for i, ch in enumerate(PETER_VKEY):
        with pytest.raises(NoteError):
            parse_vkey(PETER_VKEY[:i] + chr(ord(ch) + 1) + PETER_VKEY[i + 1 :])
    with pytest.raises(NoteError):  # wrong length key, with adjusted key hash
        parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError):  # unknown algorithm, with adjusted key hash
        parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_go_skey_and_manglings() -> None:
    signer = parse_skey(PETER_SKEY)
    assert signer.name == "PeterNeumann" and signer.key_type == KEY_TYPE_ED25519
    assert signer.verifier == parse_vkey(PETER_VKEY)
    assert format_skey("PeterNeumann", signer.private_key) == PETER_SKEY
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(NoteError):
                    parse_skey(PETER_SKEY[i:j])
    for i, ch in enumerate(PETER_SKEY):
        with pytest.raises(NoteError):
            parse_skey(PETER_SKEY[:i] + chr(ord(ch) + 1) + PETER_SKEY[i + 1 :])


def test_go_sign_is_byte_exact() -> None:
    """Go TestSign: Ed25519 is deterministic, so our note must equal Go's byte for byte."""
    signer = parse_skey(PETER_SKEY)
    assert sign_note(GO_TEXT.encode(), signer.name, signer.private_key) == GO_NOTE


def test_go_open() -> None:
    """Go TestOpen: which signatures verify, unknown ones ignored, none known -> rejected."""
    peter, enoch = parse_vkey(PETER_VKEY), parse_vkey(ENOCH_VKEY)
    both = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(both, [peter]) == (GO_TEXT.encode(), [peter])
    assert open_note(both, [peter, enoch]) == (GO_TEXT.encode(), [peter, enoch])
    assert open_note(both, [enoch]) == (GO_TEXT.encode(), [enoch])
    with pytest.raises(UnverifiedNoteError, match="no verifiable signatures"):
        open_note(both, [])
    # Repeated verified and unverified signatures (the corrupted Enoch one is from an unknown key).
    repeated = GO_TEXT + "\n" + PETER_SIG * 2 + ENOCH_SIG * 2 + ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    assert open_note(repeated, [peter]) == (GO_TEXT.encode(), [peter])
    # The same corruption on a known key is an invalid signature, not an ignored one.
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])


def test_go_too_many_signatures() -> None:
    peter = parse_vkey(PETER_VKEY)
    assert MAX_SIGNATURES == 100
    assert open_note(GO_TEXT + "\n" + PETER_SIG * 100, [peter])[1] == [peter]
    for known in ([peter], []):
        with pytest.raises(NoteError, match="more than 100"):
            open_note(GO_TEXT + "\n" + PETER_SIG * 101, known)


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        (b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode()),
        GO_TEXT
        + "\n"
        + f"{EM} Bad Name "
        + "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_go_malformed_notes(message: str | bytes) -> None:
    """Go TestOpen's badMsgs table: each is malformed, not merely unverified."""
    with pytest.raises(NoteError) as info:
        open_note(message, [parse_vkey(PETER_VKEY)])
    assert not isinstance(info.value, UnverifiedNoteError)


def test_real_sum_golang_org_checkpoint() -> None:
    body, signers = open_note(SUMDB_NOTE, [parse_vkey(SUMDB_VKEY)])
    assert [v.name for v in signers] == ["sum.golang.org"]
    cp = parse_checkpoint_body(body)
    assert (cp.origin, cp.tree_size) == ("go.sum database tree", 30055305)
    assert cp.root_hash == base64.b64decode("mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=")
    assert cp.body() == body
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(SUMDB_NOTE.replace("30055305", "30055306"), [parse_vkey(SUMDB_VKEY)])


def test_sigsum_log_checkpoint_is_byte_exact() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SIGSUM_SEED)
    assert SIGSUM_ORIGIN.endswith(hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest())
    cp = Checkpoint(SIGSUM_ORIGIN, 10, SIGSUM_ROOT)
    assert sign_note(cp.body(), SIGSUM_ORIGIN, key) == SIGSUM_LOG_NOTE
    log = Verifier.from_public_key(SIGSUM_ORIGIN, key.public_key())
    assert open_note(SIGSUM_LOG_NOTE, [log]) == (cp.body(), [log])


def test_sigsum_cosignature_is_byte_exact() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SIGSUM_SEED)
    body = Checkpoint("example.org/log", 10, SIGSUM_ROOT).body()
    assert body == b"example.org/log\n10\nHA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    witness = Verifier.from_public_key("example.org/witness", key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    assert cosign(body, "example.org/witness", key, 1234) == SIGSUM_COSIG + "\n"
    assert verify_cosignature(body, SIGSUM_COSIG, witness) == 1234
    # sigsum's own negative variants: other key ID, other name, other signature size.
    assert verify_cosignature(body, SIGSUM_COSIG.replace(" ys8u", " yX8u"), witness) is None
    assert verify_cosignature(body, SIGSUM_COSIG.replace("witness ", "witness-2 "), witness) is None
    assert verify_cosignature(body, SIGSUM_COSIG[:-2] + "XX", witness) is None
    # The log-signature key type (0x01) gives a different key ID for the same name and key.
    assert witness.key_hash != key_hash("example.org/witness", KEY_TYPE_ED25519, witness.public_key)


def test_c2sp_spec_examples_parse() -> None:
    """The spec's example is well formed; its keys are not published, so it is 'unverified'."""
    cp = parse_checkpoint_body(C2SP_BODY.encode())
    assert (cp.origin, cp.tree_size) == ("example.com/behind-the-sofa", 20852163)
    note = add_signature_lines(C2SP_BODY + "\n" + C2SP_LOG_SIG, [C2SP_COSIG])
    assert note == C2SP_BODY + "\n" + C2SP_LOG_SIG + C2SP_COSIG
    # tlog-cosignature's example message says "time 1679315147": the line's bytes 4..12 agree.
    blob = base64.b64decode(C2SP_COSIG.split()[-1])
    assert len(blob) == 4 + 8 + 64 and int.from_bytes(blob[4:12], "big") == 1679315147
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [parse_vkey(PETER_VKEY)])


def test_cosignature_message_layout() -> None:
    """tlog-cosignature's example signed message, byte for byte."""
    assert cosignature_message(C2SP_BODY.encode(), 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


# =============================================================================================
# Rejections


@pytest.fixture(scope="module")
def signed() -> tuple[str, Verifier, bytes]:
    key = _key(1)
    body = Checkpoint("keyong.example/ledger", 7, hashlib.sha256(b"root").digest()).body()
    return (
        sign_note(body, "keyong.example/ledger", key),
        Verifier.from_public_key("keyong.example/ledger", key.public_key()),
        body,
    )


def test_tampered_body(signed: tuple[str, Verifier, bytes]) -> None:
    note, log, _ = signed
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note.replace("\n7\n", "\n8\n", 1), [log])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note.replace("keyong.example/ledger\n", "keyong.example/ledgeR\n", 1), [log])


def test_every_signature_byte_flip_rejected(signed: tuple[str, Verifier, bytes]) -> None:
    note, log, _ = signed
    body, line = note.split("\n\n")
    for index in range(4 + 64):
        tampered = body + "\n\n" + _flip_blob_byte(line, index)
        with pytest.raises(NoteError) as info:
            open_note(tampered, [log])
        # A flipped key ID names an unknown key (ignored, so nothing verifies); a flipped
        # signature byte names the known key and must be reported as forged.
        assert isinstance(info.value, UnverifiedNoteError) == (index < 4)


def test_wrong_key_and_bad_signature_from_known_name(signed: tuple[str, Verifier, bytes]) -> None:
    note, log, body = signed
    impostor = Verifier.from_public_key(log.name, _key(2).public_key())
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [impostor])  # same name, other key ID: ignored
    forged = body.decode() + "\n" + f"{EM} {log.name} " + base64.b64encode(log.key_hash + bytes(64)).decode() + "\n"
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [log])
    # A valid signature cannot be rescued by a forged one from the same known key next to it.
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note + forged.split("\n\n")[1], [log])
    # A signature by the right key over different text does not transplant.
    other = sign_note(b"other text\n", log.name, _key(1))
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(body.decode() + "\n" + other.split("\n\n")[1], [log])


def test_malformed_notes(signed: tuple[str, Verifier, bytes]) -> None:
    """Each malformation is reported as such -- not as a forged or an unverified note."""
    note, log, body_bytes = signed
    body, sig = body_bytes.decode(), note.split("\n\n")[1]
    bad = [
        note[:-1],  # missing final newline
        body + sig,  # no blank line
        body.replace("\n7\n", "\r\n7\n") + "\n" + sig,  # control character
        body + "\n" + sig.replace(EM, "-"),  # not an em dash
        body + "\n" + sig.replace(EM + " ", EM + "  "),  # empty key name
        body + "\n" + sig.replace("=\n", "\n"),  # base64 without padding
        body + "\n" + sig[: sig.rindex(" ")] + " AAAA\n",  # shorter than key ID + 1 byte
        note + "\n",  # empty signature line
        body + "\n",  # no signature at all
        note.encode()[:-5] + b"\xc3\n",  # invalid UTF-8
        body.replace("ledger\n", "ledger\udcff\n", 1) + "\n" + sig,  # lone surrogate
        "x" * MAX_NOTE_SIZE + note,  # too large
        (b"x" * MAX_NOTE_SIZE) + note.encode(),
    ]
    for message in bad:
        with pytest.raises(NoteError, match=r"malformed|too large|UTF-8") as info:
            open_note(message, [log])
        assert not isinstance(info.value, UnverifiedNoteError)


def test_non_canonical_base64_signature_rejected(signed: tuple[str, Verifier, bytes]) -> None:
    """68 bytes encode to 92 chars ending in '=': the last data char carries 2 unused bits."""
    note, log, _ = signed
    head, b64 = note.rstrip("\n").rsplit(" ", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(b64[-2])
    respelled = b64[:-2] + alphabet[last ^ 1] + "="
    assert base64.b64decode(respelled) == base64.b64decode(b64)  # a lenient decoder sees the same bytes
    with pytest.raises(NoteError, match="malformed"):
        open_note(f"{head} {respelled}\n", [log])


def test_ambiguous_known_keys(signed: tuple[str, Verifier, bytes]) -> None:
    """Two different known keys with one name and key ID (a 2^32 search, simulated) -> error."""
    note, log, _ = signed
    twin = Verifier.from_public_key(log.name, _key(3).public_key())
    object.__setattr__(twin, "key_hash", log.key_hash)  # simulate the collision
    with pytest.raises(NoteError, match="ambiguous key"):
        open_note(note, [log, twin])
    assert open_note(note, [log, log])[1] == [log]  # the same key listed twice is not ambiguous


@pytest.mark.parametrize(
    "body",
    [
        b"origin\n010\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        b"origin\n00\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        b"origin\n+10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        b"origin\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        b"origin\n 10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        b"origin\n1_000\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n\u0661\u0662\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".encode(),  # int() accepts these
        b"origin\n9223372036854775808\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # 2^63
        b"origin\n\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        b"origin\n10\n" + base64.b64encode(bytes(31)) + b"\n",  # root of 31 bytes
        b"origin\n10\n" + base64.b64encode(bytes(33)) + b"\n",  # root of 33 bytes
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # padding missing
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # non-canonical final char
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",  # URL-safe alphabet
        b"\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty origin
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",  # no final newline
        b"origin\n10\n",  # no root line
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",  # empty extension line
        b"origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\r\n",  # CR
        b"orig\xffin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # not UTF-8
        b"origin\n0\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty tree, non-empty root
        b"o" * 256 + b"\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # origin > 255 bytes
    ],
)
def test_checkpoint_body_rejections(body: bytes) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint_body(body)


def test_checkpoint_body_accepts_edges() -> None:
    empty = b"o\n0\n" + base64.b64encode(EMPTY_TREE_ROOT) + b"\n"
    assert parse_checkpoint_body(empty) == Checkpoint("o", 0, EMPTY_TREE_ROOT)
    big = b"o" * 255 + b"\n9223372036854775807\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next 1\next 2\n"
    cp = parse_checkpoint_body(big)
    assert cp.tree_size == 2**63 - 1 and cp.extensions == ("ext 1", "ext 2") and cp.body() == big


def test_checkpoint_constructor_rejects() -> None:
    root = bytes(32)
    for args in [
        ("", 1, root),
        ("a\nb", 1, root),
        ("o", -1, root),
        ("o", True, root),
        ("o", 2**63, root),
        ("o", 1, bytes(31)),
        ("o", 0, root),
    ]:
        with pytest.raises(NoteError):
            Checkpoint(*args)
    with pytest.raises(NoteError):
        Checkpoint("o", 1, root, ("",))
    with pytest.raises(NoteError):
        Checkpoint("o", 1, root, ("a\nb",))
    assert Checkpoint("o", 1, root, ["x"]).extensions == ("x",)  # type: ignore[arg-type]


def test_key_name_rules() -> None:
    public = _key(4).public_key()
    for name in ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u2028b", "a\u3000b", "a\x01b", "\udc80"]:
        with pytest.raises(NoteError):
            Verifier.from_public_key(name, public)
        with pytest.raises(NoteError):
            sign_note(b"text\n", name, _key(4))
    # Unicode is fine, and U+001C (which Python's isspace() calls a space, Unicode does not) is
    # refused anyway because notes cannot hold control characters.
    assert Verifier.from_public_key("日志.example/名", public).name == "日志.example/名"
    with pytest.raises(NoteError):
        Verifier.from_public_key("a\x1cb", public)


def test_sign_note_rejects_bad_text() -> None:
    for body in [b"abc", b"", b"a\x00b\n", b"\xff\n"]:
        with pytest.raises(NoteError):
            sign_note(body, "name", _key(5))


def test_small_order_keys_refused() -> None:
    """OpenSSL accepts (R = identity, S = 0) for any message under the identity key; such a
    witness key would let anyone forge that witness. Small-order and non-canonical keys fail."""
    identity = bytes([1]) + bytes(31)
    Ed25519PublicKey.from_public_bytes(identity).verify(identity + bytes(32), b"any message at all")
    p = 2**255 - 19
    y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
    encodings = []
    for y in [0, 1, p - 1, y8, p - y8, p, p + 1]:  # the last two: non-canonical spellings of 0 and 1
        for sign in (0, 1 << 255):
            encodings.append((y | sign).to_bytes(32, "little"))
    for encoding in encodings:
        for key_type in (KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1):
            with pytest.raises(NoteError):
                Verifier.from_public_key("w", encoding, key_type)
            key64 = base64.b64encode(bytes([key_type]) + encoding).decode()
            vkey = f"w+{key_hash('w', key_type, encoding).hex()}+{key64}"
            with pytest.raises(NoteError):
                parse_vkey(vkey)
    with pytest.raises(NoteError, match="canonical"):
        Verifier.from_public_key("w", (p + 5).to_bytes(32, "little"))


def test_verifier_fields_must_agree() -> None:
    good = Verifier.from_public_key("n", _key(6).public_key())
    with pytest.raises(NoteError):
        Verifier("n", 1, b"\x00\x00\x00\x00", good.public_key)
    with pytest.raises(NoteError):
        Verifier("n", 2, good.key_hash, good.public_key)
    with pytest.raises(NoteError):
        Verifier("m", 1, good.key_hash, good.public_key)


# =============================================================================================
# Cosignatures


def test_cosign_and_verify() -> None:
    body = Checkpoint("log.example", 3, bytes(range(32)), ("ext",)).body()
    key = _key(7)
    witness = Verifier.from_public_key("w.example", key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    line = cosign(body, "w.example", key, 1_700_000_000)
    assert line.endswith("\n") and line.startswith(f"{EM} w.example ")
    blob = base64.b64decode(line.split()[-1])
    assert blob[:4] == witness.key_hash and int.from_bytes(blob[4:12], "big") == 1_700_000_000
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(blob[12:], cosignature_message(body, 1_700_000_000))
    assert verify_cosignature(body, line, witness) == 1_700_000_000
    assert verify_cosignature(body, line.rstrip("\n"), witness) == 1_700_000_000
    # Extension lines are signed (tlog-cosignature: they MUST be included).
    assert verify_cosignature(body.replace(b"ext\n", b"exu\n"), line, witness) is None
    # Another witness, a shifted timestamp, a non-checkpoint body, two lines: all None.
    other = Verifier.from_public_key("w.example", _key(8).public_key(), KEY_TYPE_COSIGNATURE_V1)
    assert verify_cosignature(body, line, other) is None
    assert verify_cosignature(body, _flip_blob_byte(line, 11), witness) is None
    assert verify_cosignature(b"not a checkpoint\n", line, witness) is None
    assert verify_cosignature(body, line + line, witness) is None
    assert verify_cosignature(body, "garbage", witness) is None
    with pytest.raises(ValueError):
        verify_cosignature(body, line, Verifier.from_public_key("w.example", key.public_key()))


def test_cosignature_timestamp_bounds() -> None:
    body = Checkpoint("log.example", 1, bytes(32)).body()
    key = _key(9)
    witness = Verifier.from_public_key("w", key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    assert verify_cosignature(body, cosign(body, "w", key, 0), witness) == 0
    assert verify_cosignature(body, cosign(body, "w", key, 2**63 - 1), witness) == 2**63 - 1
    for bad in (-1, 2**63, True):
        with pytest.raises(NoteError):
            cosign(body, "w", key, bad)  # type: ignore[arg-type]
    # A correctly signed message with time 2^63 is still refused on the verifying side.
    signature = key.sign(cosignature_message(body, 2**63))
    line = f"{EM} w " + base64.b64encode(witness.key_hash + (2**63).to_bytes(8, "big") + signature).decode()
    assert verify_cosignature(body, line, witness) is None


def test_cosign_refuses_non_checkpoints() -> None:
    for body in [b"hello\n", b"o\n01\n" + base64.b64encode(bytes(32)) + b"\n"]:
        with pytest.raises(NoteError):
            cosign(body, "w", _key(10), 1)


def test_add_signature_lines() -> None:
    body = Checkpoint("log.example", 1, bytes(32)).body()
    note = sign_note(body, "log.example", _key(11))
    line = cosign(body, "w", _key(12), 5)
    once = add_signature_lines(note, [line])
    assert once == note + line
    assert add_signature_lines(once, [line, line.rstrip("\n")]) == once  # no duplicates
    for bad in ["not a signature", line + line, "\u2014 w AAAA", line.replace("\u2014", "\x01")]:
        with pytest.raises(NoteError):
            add_signature_lines(note, [bad])
    with pytest.raises(NoteError):
        add_signature_lines(body.decode(), [line])  # not a signed note
    many = [cosign(body, f"w{i}", _key(12), i) for i in range(MAX_SIGNATURES)]
    with pytest.raises(NoteError, match="more than"):
        add_signature_lines(note, many)


def test_open_note_reports_cosigners() -> None:
    body = Checkpoint("log.example", 1, bytes(32)).body()
    log_key, w_key = _key(13), _key(14)
    log = Verifier.from_public_key("log.example", log_key.public_key())
    witness = Verifier.from_public_key("w", w_key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    note = add_signature_lines(sign_note(body, "log.example", log_key), [cosign(body, "w", w_key, 9)])
    assert open_note(note, [log, witness]) == (body, [log, witness])
    assert open_note(note, [witness]) == (body, [witness])


# =============================================================================================
# Witness policy


class _World:
    """A log, three witnesses in a 2-of-3 policy, and one checkpoint signed by the log."""

    def __init__(self) -> None:
        self.log_key = _key(20)
        self.log = Verifier.from_public_key("keyong.example/log", self.log_key.public_key())
        self.w_keys = [_key(21), _key(22), _key(23)]
        self.names = ["w1.example", "w2.example", "w3.example"]
        self.witnesses = [
            Verifier.from_public_key(n, k.public_key(), KEY_TYPE_COSIGNATURE_V1)
            for n, k in zip(self.names, self.w_keys, strict=True)
        ]
        self.policy = WitnessPolicy(2, self.witnesses)
        self.body = Checkpoint("keyong.example/log", 42, hashlib.sha256(b"42").digest()).body()
        self.note = sign_note(self.body, self.log.name, self.log_key)

    def cosig(self, i: int, timestamp: int = 1000, body: bytes | None = None) -> str:
        return cosign(self.body if body is None else body, self.names[i], self.w_keys[i], timestamp)


@pytest.fixture(scope="module")
def world() -> _World:
    return _World()


def test_policy_two_of_three_satisfied(world: _World) -> None:
    note = add_signature_lines(world.note, [world.cosig(0, 1001), world.cosig(2, 1003)])
    assert world.policy.satisfied_by(note, world.log)
    result = world.policy.verify(note, world.log, origin="keyong.example/log")
    assert result.checkpoint == parse_checkpoint_body(world.body)
    assert dict(result.cosignatures) == {world.witnesses[0]: 1001, world.witnesses[2]: 1003}
    all_three = add_signature_lines(note, [world.cosig(1, 1002)])
    assert len(world.policy.verify(all_three, world.log).cosignatures) == 3


def test_policy_one_cosignature_is_not_enough(world: _World) -> None:
    note = add_signature_lines(world.note, [world.cosig(1)])
    assert not world.policy.satisfied_by(note, world.log)
    with pytest.raises(PolicyError, match="1 witness cosignatures, policy requires 2"):
        world.policy.verify(note, world.log)
    assert not world.policy.satisfied_by(world.note, world.log)


def test_policy_same_witness_twice_counts_once(world: _World) -> None:
    line = world.cosig(0, 1000)
    doubled = world.note + line + line  # bypasses add_signature_lines' de-duplication
    assert not world.policy.satisfied_by(doubled, world.log)
    two_times = add_signature_lines(world.note, [line, world.cosig(0, 2000)])
    assert not world.policy.satisfied_by(two_times, world.log)
    assert WitnessPolicy(1, world.witnesses).verify(two_times, world.log).cosignatures == {world.witnesses[0]: 2000}


def test_policy_rejects_cosignature_over_other_checkpoint(world: _World) -> None:
    other = Checkpoint("keyong.example/log", 43, hashlib.sha256(b"43").digest()).body()
    note = add_signature_lines(world.note, [world.cosig(0), world.cosig(1, body=other)])
    assert not world.policy.satisfied_by(note, world.log)
    with pytest.raises(PolicyError, match=r"invalid signature for key w2\.example"):
        world.policy.verify(note, world.log)


def test_policy_requires_the_logs_signature(world: _World) -> None:
    cosigs = world.cosig(0) + world.cosig(1) + world.cosig(2)
    unsigned = world.body.decode() + "\n" + cosigs
    assert not world.policy.satisfied_by(unsigned, world.log)
    with pytest.raises(PolicyError, match="not signed by the log"):
        world.policy.verify(unsigned, world.log)
    # Signed by some other log key under the same name: the configured log did not sign.
    rogue = sign_note(world.body, world.log.name, _key(30)) + cosigs
    assert not world.policy.satisfied_by(rogue, world.log)
    with pytest.raises(PolicyError):
        world.policy.verify(world.note + cosigs, world.witnesses[0])  # a witness key is no log key


def test_policy_ignores_plain_signatures_by_witness_keys(world: _World) -> None:
    """A type-0x01 note signature by a witness's key is not a cosignature and must not count."""
    plain = [sign_note(world.body, world.names[i], world.w_keys[i]).split("\n\n")[1] for i in range(3)]
    note = add_signature_lines(world.note, plain)
    assert not world.policy.satisfied_by(note, world.log)


def test_policy_origin_and_threshold_zero(world: _World) -> None:
    note = add_signature_lines(world.note, [world.cosig(0), world.cosig(1)])
    assert not world.policy.satisfied_by(note, world.log, origin="someone.else/log")
    assert WitnessPolicy(0, world.witnesses).satisfied_by(world.note, world.log)
    assert not WitnessPolicy(0, world.witnesses).satisfied_by(world.note.replace("42", "41", 1), world.log)


def test_policy_refuses_one_key_under_two_names(world: _World) -> None:
    """cosignature/v1 does not sign the witness name, so w1's line re-labelled as an alias
    verifies for the alias: a policy listing both would count one witness twice."""
    alias = Verifier.from_public_key("alias.example", world.w_keys[0].public_key(), KEY_TYPE_COSIGNATURE_V1)
    blob = base64.b64decode(world.cosig(0).split()[-1])
    relabelled = f"{EM} alias.example " + base64.b64encode(alias.key_hash + blob[4:]).decode()
    assert verify_cosignature(world.body, relabelled, alias) == 1000
    with pytest.raises(PolicyError, match="listed twice"):
        WitnessPolicy(2, [world.witnesses[0], alias])
    with pytest.raises(PolicyError, match="listed twice"):
        WitnessPolicy(1, [world.witnesses[0], world.witnesses[0]])
    with pytest.raises(PolicyError, match="log's own key"):
        WitnessPolicy(1, world.witnesses).verify(
            world.note, Verifier.from_public_key("l", world.w_keys[0].public_key())
        )


def test_policy_constructor_rejects(world: _World) -> None:
    for threshold in (-1, 4, True):
        with pytest.raises(PolicyError):
            WitnessPolicy(threshold, world.witnesses)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="type 0x04"):
        WitnessPolicy(1, [world.log])


def test_policy_parse(world: _World) -> None:
    text = (
        "# regulator witness policy\n\n"
        + "".join(f"witness  w{i}\t{w.vkey}\n" for i, w in enumerate(world.witnesses))
        + "quorum 2\n"
    )
    policy = WitnessPolicy.parse(text)
    assert policy == world.policy
    assert WitnessPolicy.parse(policy.to_text()) == policy
    w0, w1 = world.witnesses[0].vkey, world.witnesses[1].vkey
    alias = format_vkey("alias", world.w_keys[0].public_key(), KEY_TYPE_COSIGNATURE_V1)
    bad = {
        f"witness a {w0}\nwitness b {w1}\nquorum 3\n": "outside",
        f"witness a {w0}\nquorum -1\n": "quorum",
        f"witness a {w0}\nquorum one\n": "quorum",
        f"witness a {w0}\n": "no quorum",
        f"witness a {w0}\nquorum 1\nquorum 1\n": "more than one",
        f"witness a {w0}\nwitness a {w1}\nquorum 1\n": "duplicate witness label",
        f"witness a {w0}\nwitness b {alias}\nquorum 1\n": "listed twice",
        f"witness a {world.log.vkey}\nquorum 1\n": "0x04",
        f"witness a {w0[:-2]}\nquorum 1\n": "line 1",
        "witness a\nquorum 0\n": "line 1",
        f"witness a {w0} extra\nquorum 1\n": "line 1",
        f"log {w0}\nquorum 0\n": "unknown keyword",
    }
    for config, message in bad.items():
        with pytest.raises(PolicyError, match=message):
            WitnessPolicy.parse(config)


# =============================================================================================
# Property tests

_TEXT_CHARS = st.characters(blacklist_categories=("Cs", "Cc"))
_ORIGINS = st.text(_TEXT_CHARS, min_size=1, max_size=40).filter(lambda s: len(s.encode()) <= 255)
_SEEDS = st.binary(min_size=32, max_size=32)
_NAMES = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="+\x85\u180e"),
    min_size=1,
    max_size=30,
)


@st.composite
def _checkpoints(draw: st.DrawFn) -> Checkpoint:
    size = draw(st.integers(min_value=0, max_value=2**63 - 1))
    root = EMPTY_TREE_ROOT if size == 0 else draw(st.binary(min_size=32, max_size=32))
    extensions = draw(st.lists(st.text(_TEXT_CHARS, min_size=1, max_size=20), max_size=3))
    return Checkpoint(draw(_ORIGINS), size, root, tuple(extensions))


@settings(max_examples=150, deadline=None)
@given(_checkpoints())
def test_checkpoint_round_trip(cp: Checkpoint) -> None:
    body = cp.body()
    assert parse_checkpoint_body(body) == cp
    assert body.count(b"\n") == 3 + len(cp.extensions)


@settings(max_examples=100, deadline=None)
@given(_NAMES, _SEEDS, st.sampled_from([KEY_TYPE_ED25519, KEY_TYPE_COSIGNATURE_V1]))
def test_vkey_round_trip(name: str, seed: bytes, key_type: int) -> None:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    vkey = format_vkey(name, public, key_type)
    verifier = parse_vkey(vkey)
    assert verifier == Verifier.from_public_key(name, public, key_type)
    assert verifier.vkey == vkey


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(_TEXT_CHARS, max_size=30), min_size=1, max_size=5), _NAMES, _SEEDS)
def test_note_sign_open_round_trip(lines: list[str], name: str, seed: bytes) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    body = "".join(line + "\n" for line in lines).encode()
    note = sign_note(body, name, key)
    verifier = Verifier.from_public_key(name, key.public_key())
    assert open_note(note, [verifier]) == (body, [verifier])
    assert open_note(note.encode(), [verifier]) == (body, [verifier])


@settings(max_examples=60, deadline=None)
@given(_checkpoints(), _NAMES, _SEEDS, st.integers(min_value=0, max_value=2**63 - 1))
def test_cosignature_round_trip(cp: Checkpoint, name: str, seed: bytes, timestamp: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    witness = Verifier.from_public_key(name, key.public_key(), KEY_TYPE_COSIGNATURE_V1)
    line = cosign(cp.body(), name, key, timestamp)
    assert verify_cosignature(cp.body(), line, witness) == timestamp
    blob = base64.b64decode(line.split(" ")[-1])
    try:
        Ed25519PublicKey.from_public_bytes(witness.public_key).verify(
            blob[12:], cosignature_message(cp.body(), timestamp)
        )
    except InvalidSignature:  # pragma: no cover - would mean cosign signed the wrong message
        pytest.fail("cosign did not sign the cosignature/v1 message")


@settings(max_examples=30, deadline=None)
@given(st.lists(_SEEDS, min_size=0, max_size=4, unique=True), st.data())
def test_policy_text_round_trip(seeds: list[bytes], data: st.DataObject) -> None:
    witnesses = [
        Verifier.from_public_key(f"w{i}.example", Ed25519PrivateKey.from_private_bytes(s).public_key(), 4)
        for i, s in enumerate(seeds)
    ]
    policy = WitnessPolicy(data.draw(st.integers(min_value=0, max_value=len(witnesses))), witnesses)
    assert WitnessPolicy.parse(policy.to_text()) == policy
