"""No impersonation through the host (issue 22; SATRE 3.1.06 one's own identity, 3.2.01 independent
output review; 双鸭山市公共数据管理暂行办法 第五十二条 review before release).

Running ``keyong`` on the host proves one is the host administrator, not a reviewer: a vote from the
CLI counts only with the reviewer's own credential, checked as the API checks it, and the ledger then
names that principal. Each test is an attack that must fail, or the one way that must work.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.instance import Instance
from core import Actor
from operators import Role
from tests.recovery_support import issue_key
from tests.test_release import R1, R2, done_job
from tests.test_release import instance as instance  # the licensed instance with reviewers
from tests.totp_support import code_by_name, create_enrolled

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key in the test runner's environment must not vote for anyone here."""
    monkeypatch.delenv("KEYONG_API_KEY", raising=False)


def _release(instance: Instance) -> int:
    job = done_job(instance, "pass")
    made = runner.invoke(cli, ["release", "request", str(job), "--product", f"p{job}", "--json", *_home(instance)])
    assert made.exit_code == 0, made.output
    return int(json.loads(made.stdout)["release"])


def _home(instance: Instance) -> list[str]:
    return ["--home", str(instance.home)]


def _key_file(tmp_path: Path, name: str, secret: str) -> Path:
    path = tmp_path / f"{name}.key"
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)  # a key file others can read is refused (app.cli.credentials)
    return path


def _vote(instance: Instance, release: int, *extra: str) -> tuple[int, str]:
    done = runner.invoke(cli, ["release", "approve", str(release), *extra, *_home(instance)])
    return done.exit_code, done.output


def _votes_cast(instance: Instance, release: int) -> int:
    shown = runner.invoke(cli, ["release", "show", str(release), "--json", *_home(instance)])
    return int(json.loads(shown.stdout)["votes_cast"])


def test_host_cast_vote_is_refused_and_does_not_count(instance: Instance) -> None:
    release = _release(instance)
    code, output = _vote(instance, release, "--reviewer", R1.name)
    assert code == 1
    assert "own API key" in output and "console" in output and "API" in output  # says how to vote
    code, _ = _vote(instance, release, "--reviewer", "nobody-at-all")  # a name that is no principal
    assert code == 1
    assert _votes_cast(instance, release) == 0
    assert instance.ledger.entries(action="release.voted") == []


def test_own_key_vote_counts_and_the_ledger_names_that_principal(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    key = _key_file(tmp_path, R1.name, issue_key(instance.identity, R1.name))
    code, output = _vote(instance, release, "--key-file", str(key), "--reviewer", R1.name)
    assert code == 1 and "second factor refused" in output and "--totp" in output  # a key alone is one factor
    code, output = _vote(instance, release, "--key-file", str(key), "--reviewer", R1.name, "--totp", "000000")
    assert code == 1 and "second factor refused" in output
    assert _votes_cast(instance, release) == 0
    failed = instance.registry.security.events(viewer=Actor.host(), kind="login_failed", principal=R1.name)
    assert sum(int(e["count"]) for e in failed) == 2 and {e["route"] for e in failed} == {"keyong (CLI)"}
    code, output = _vote(
        instance, release, "--key-file", str(key), "--reviewer", R1.name, "--totp", code_by_name(R1.name)
    )
    assert code == 0, output
    assert _votes_cast(instance, release) == 1
    voted = instance.ledger.entries(action="release.voted")
    assert [(e.actor, e.role) for e in voted] == [(R1.name, "agency")]


def test_key_from_the_environment_votes_as_its_principal(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    release = _release(instance)
    monkeypatch.setenv("KEYONG_API_KEY", issue_key(instance.identity, R2.name))
    monkeypatch.setenv("KEYONG_TOTP", code_by_name(R2.name))
    code, output = _vote(instance, release)
    assert code == 0, output
    assert [e.actor for e in instance.ledger.entries(action="release.voted")] == [R2.name]


def test_a_key_cannot_vote_in_another_reviewers_name(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    key = _key_file(tmp_path, R1.name, issue_key(instance.identity, R1.name))
    code, output = _vote(instance, release, "--key-file", str(key), "--reviewer", R2.name)
    assert code == 1 and "not 'reviewer-2''s" in output
    assert _votes_cast(instance, release) == 0


def test_revoked_key_cannot_vote(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    issued = instance.identity.issue_api_key(R1.name)
    instance.identity.revoke_api_key(issued.key_id)
    code, output = _vote(instance, release, "--key-file", str(_key_file(tmp_path, R1.name, issued.api_key)))
    assert code == 1 and "revoked" in output
    assert _votes_cast(instance, release) == 0


def test_suspended_reviewer_cannot_vote(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    key = _key_file(tmp_path, R2.name, issue_key(instance.identity, R2.name))
    instance.identity.set_active(R2.name, False, reason="left the agency")
    code, output = _vote(instance, release, "--key-file", str(key))
    assert code == 1 and "suspended" in output
    assert _votes_cast(instance, release) == 0


def test_operator_key_cannot_vote(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    operator = instance.jobs.show(instance.releases.get(release, viewer=R1).job).operator
    key = _key_file(tmp_path, operator, instance.identity.create_principal(operator, Role.OPERATOR).api_key)
    for decision in (["approve"], ["reject", "--reason", "x"], ["return", "--reason", "x"]):
        done = runner.invoke(cli, ["release", *decision, str(release), "--key-file", str(key), *_home(instance)])
        assert done.exit_code == 1 and "needs a key of role 'agency'" in done.output
    assert _votes_cast(instance, release) == 0


def test_forged_credentials_are_refused(instance: Instance, tmp_path: Path) -> None:
    release = _release(instance)
    real = instance.identity.issue_api_key(R1.name)
    forged_secret = f"ky_{real.key_id}_{'A' * 43}"  # a real key id with a guessed secret
    forged_jwt = jwt.encode(  # a token naming the reviewer, signed with a key that is not the instance's
        {"sub": R1.name, "role": "agency", "kid": real.key_id, "exp": datetime.now(UTC) + timedelta(hours=1)},
        "not-the-instance-secret-" * 2,
        algorithm="HS256",
    )
    expired = instance.identity.tokens.issue(
        R1.name, Role.AGENCY, key_id=real.key_id, now=datetime.now(UTC) - timedelta(days=2)
    ).token
    for name, text in (("guessed", forged_secret), ("jwt", forged_jwt), ("expired", expired), ("junk", "hello")):
        code, output = _vote(instance, release, "--key-file", str(_key_file(tmp_path, name, text)))
        assert code == 1 and "credential refused" in output, (name, output)
    missing = _vote(instance, release, "--key-file", str(tmp_path / "absent.key"))
    assert missing[0] == 1
    assert _votes_cast(instance, release) == 0
    assert instance.ledger.entries(action="release.voted") == []


def test_operator_acts_carry_the_operators_key_or_name_the_host(instance: Instance, tmp_path: Path) -> None:
    """An operator's act from the CLI: with the operator's own key the ledger names that operator; without
    one the host acts for it and the ledger names the host as actor, the operator as subject."""
    job = done_job(instance, "pass")
    operator = instance.jobs.show(job).operator
    own = _key_file(tmp_path, operator, create_enrolled(instance.identity, operator, Role.OPERATOR))
    other = _key_file(tmp_path, "rival", create_enrolled(instance.identity, "rival-ops", Role.OPERATOR))
    request = ["release", "request", str(job), "--product", "owned", "--json", *_home(instance)]
    stolen = runner.invoke(cli, [*request, "--key-file", str(other), "--totp", code_by_name("rival-ops")])
    assert stolen.exit_code == 1  # another operator's key: not its job
    made = runner.invoke(cli, [*request, "--key-file", str(own), "--totp", code_by_name(operator)])
    assert made.exit_code == 0, made.output
    requested = instance.ledger.entries(action="release.requested")
    assert [(e.actor, e.role) for e in requested] == [(operator, "operator")]
    hosted = runner.invoke(cli, ["release", "withdraw", str(json.loads(made.stdout)["release"]), *_home(instance)])
    assert hosted.exit_code == 0, hosted.output
    withdrawn = instance.ledger.entries(action="release.withdrawn")
    assert [e.role for e in withdrawn] == ["host"] and withdrawn[0].actor != operator
    agency_key = _key_file(tmp_path, R1.name, issue_key(instance.identity, R1.name))
    second = str(done_job(instance, "pass"))
    wrong_role = runner.invoke(
        cli, ["release", "request", second, "--product", "x", "--key-file", str(agency_key), *_home(instance)]
    )
    assert wrong_role.exit_code == 1 and "needs a key of role 'operator'" in wrong_role.output
