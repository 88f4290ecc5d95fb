"""The release review in the console (issue 18), without a browser: every output in full (a table paged and
sorted, images served only through a checked route with a strict policy, JSON whole), each table's SDC summary,
the job's code and the licence's scenarios; comments per file and on the whole release; no default vote; a
return needs a comment; the queue's age and assignment; the operator's thread page, its reply and
resubmission; and each refusal (wrong role, another operator, bad ids, forged values) a 4xx or a message.

双鸭山市公共数据管理暂行办法 第五十二条: the agency reviews what leaves before it is released.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import Instance
from core import Actor
from operators import Role
from tests.console_support import console_client, csrf_in, flash, vote_shown
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, FakeResult, licensed
from tests.recovery_support import confirm
from tests.totp_support import token_body

OPERATOR = "demo-operator"
ACME = Actor(OPERATOR, "operator")
R1 = Actor("demo-agency", "agency")
#: A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script><rect/></svg>\n'
ROWS = [(f"区{i:02d}", 10 + i) for i in range(60)]  # 60 rows: two pages of 50


def files_runner(kind: str, code: str, *, datasets: Mapping[str, Path], out_dir: Path, limits: Any = None) -> Any:
    """A stand-in run leaving a table, two images and a JSON, as an analysis with a chart would."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "table.csv": ("区县,人数\n" + "".join(f"{r},{n}\n" for r, n in ROWS)).encode(),
        "chart.svg": SVG,
        "chart.png": PNG,
        "summary.json": json.dumps({"rows": len(ROWS), "note": "汇总"}, ensure_ascii=False).encode(),
    }
    for name, body in files.items():
        (out_dir / name).write_bytes(body)
    return FakeResult(
        status="ok",
        exit_code=0,
        reason=None,
        wall_seconds=0.01,
        cpu_seconds=0.1,
        max_rss_bytes=1024,
        stdout="",
        out_dir=out_dir,
        outputs=[{"name": n, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()],
    )


def _done_job(instance: Instance, code: str = "print('chart')") -> int:
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", code, SCENARIO, by=ACME)
    instance.worker(runner=files_runner, worker_id="console-review").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET verdict = 'pass', findings = '[]' WHERE id = :id"), {"id": job})
    return job


@pytest.fixture
def review(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Instance, dict[str, str], int]:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    licensed(instance.registry, instance.home, operator=OPERATOR)
    keys = dict(tokens)
    keys["agency2"] = instance.identity.create_principal("reviewer-2", Role.AGENCY).api_key
    confirm(instance.identity, "reviewer-2")
    release = instance.releases.request(_done_job(instance), product="review-product", by=ACME).id
    return instance, keys, release


def _files(decision: str) -> dict[str, str]:
    return {f"file:{n}": decision for n in ("table.csv", "chart.svg", "chart.png", "summary.json")}


def test_every_output_is_shown_in_full_with_its_sdc_summary(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    page = agency.get(f"/console/agency/releases/{release}")
    assert page.status_code == 200
    html = page.text
    assert "区00" in html and "区49" in html and "区50" not in html  # page 1 of 2, 50 rows
    assert "第 1 / 2 页" in html and "共 60 行" in html
    second = agency.get(f"/console/agency/releases/{release}?t=0&page=2").text
    assert "区50" in second and "区59" in second and "区49" not in second
    ordered = agency.get(f"/console/agency/releases/{release}?t=0&sort=1&desc=1&per=10").text
    assert ordered.index("区59") < ordered.index("区58") and "区49" not in ordered  # numbers sorted as numbers
    # The SDC summary from sandbox.sdc, with the guard's threshold (10), even though the guard passed.
    assert 'data-sdc="table.csv"' in html and "≥ 10" in html and "n/a" in html
    assert "&#34;rows&#34;: 60" in html or '"rows": 60' in html  # the JSON pretty-printed in full
    assert "print(&#39;chart&#39;)" in html or "print('chart')" in html  # the job's code
    assert SCENARIO in html  # the licence's scenarios (jobs state no purpose yet: said so on the page)
    assert f'src="/console/agency/releases/{release}/files/1"' in html
    assert 'type="radio"' in html and "checked" not in html.split('id="vote-form"')[1]  # no default vote


def test_images_are_served_checked_and_without_script(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    svg = agency.get(f"/console/agency/releases/{release}/files/1")
    assert svg.status_code == 200 and svg.content == SVG
    assert svg.headers["content-type"].startswith("image/svg+xml")
    policies = svg.headers.get_list("content-security-policy")
    assert any("sandbox" in p and "default-src 'none'" in p for p in policies)
    assert svg.headers["x-content-type-options"] == "nosniff"
    png = agency.get(f"/console/agency/releases/{release}/files/2")
    assert png.status_code == 200 and png.content == PNG and png.headers["content-type"] == "image/png"
    assert agency.get(f"/console/agency/releases/{release}/files/0").status_code == 404  # a table: on the page
    assert agency.get(f"/console/agency/releases/{release}/files/9").status_code == 404
    assert agency.get(f"/console/agency/releases/{release}/files/-1").status_code == 422
    assert agency.get(f"/console/agency/releases/{release + 99}/files/1").status_code == 404
    operator = console_client(instance, keys["operator"])
    assert operator.get(f"/console/agency/releases/{release}/files/1").status_code == 403
    # A changed file is never shown: the route checks the SHA-256 the release recorded.
    job = instance.jobs.show(instance.releases.get(release, viewer=R1).job, viewer=R1)
    path = instance.home / str(next(o["path"] for o in job.outputs if o["name"] == "chart.svg"))
    path.write_bytes(path.read_bytes() + b"x")
    assert agency.get(f"/console/agency/releases/{release}/files/1").status_code == 409


def test_no_default_vote_and_a_return_needs_a_comment(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    page = agency.get(f"/console/agency/releases/{release}").text
    token, shown = csrf_in(page), vote_shown(page)
    url = f"/console/agency/releases/{release}/vote"
    partial = {k: v for k, v in _files("approve").items() if "png" not in k}
    missing = agency.post(url, data={"csrf": token, **shown, **partial}, follow_redirects=False)
    assert missing.status_code == 303 and "chart.png" in flash(missing)
    forged = agency.post(
        url, data={"csrf": token, **shown, **_files("approve"), "file:evil.csv": "approve"}, follow_redirects=False
    )
    assert "no file" in flash(forged)
    bad = agency.post(url, data={"csrf": token, **shown, **_files("maybe")}, follow_redirects=False)
    assert "decision is one of" in flash(bad)
    returned = {**_files("approve"), "file:table.csv": "changes_requested", "reason": "合并小区县"}
    no_comment = agency.post(url, data={"csrf": token, **shown, **returned}, follow_redirects=False)
    assert "need your comment" in flash(no_comment)
    assert instance.releases.get(release, viewer=R1).votes_cast == 0
    done = agency.post(
        url, data={"csrf": token, **shown, **returned, "comment": "请合并人数小于 20 的区县"}, follow_redirects=False
    )
    assert "your vote recorded; others sealed" in flash(done)
    assert [c.body for c in instance.releases.comments.list(release, viewer=ACME)] == ["请合并人数小于 20 的区县"]


def test_a_vote_is_bound_to_the_round_and_files_the_page_showed(
    review: tuple[Instance, dict[str, str], int],
) -> None:
    """Red team 18, F5: the vote form carries the round and each file's SHA-256 it showed; a form without
    them, for another round, or with another file's hash is refused with the reload message, nothing recorded."""
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    page = agency.get(f"/console/agency/releases/{release}").text
    token, shown = csrf_in(page), vote_shown(page)
    view = instance.releases.get(release, viewer=R1)
    assert shown == {"round": str(view.round), **{f"sha256:{o['name']}": o["sha256"] for o in view.outputs}}
    url = f"/console/agency/releases/{release}/vote"
    size = instance.ledger.size()
    other = {**shown, "sha256:table.csv": "0" * 64}
    for forged in ({}, {**shown, "round": str(view.round + 1)}, {**shown, "round": "²"}, other):
        refused = agency.post(url, data={"csrf": token, **forged, **_files("approve")}, follow_redirects=False)
        assert refused.status_code == 303 and "reload" in flash(refused), forged
    assert instance.releases.get(release, viewer=R1).votes_cast == 0 and instance.ledger.size() == size
    done = agency.post(url, data={"csrf": token, **shown, **_files("approve")}, follow_redirects=False)
    assert "your vote recorded" in flash(done)


def test_comments_thread_and_the_operator_page(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    token = csrf_in(agency.get(f"/console/agency/releases/{release}").text)
    posted = agency.post(
        f"/console/agency/releases/{release}/comments",
        data={"csrf": token, "file": "table.csv", "body": "区00 人数 10，接近阈值"},
        follow_redirects=False,
    )
    assert "comment posted" in flash(posted)
    empty = agency.post(
        f"/console/agency/releases/{release}/comments", data={"csrf": token, "body": " "}, follow_redirects=False
    )
    assert "1-4000" in flash(empty)
    wrong = agency.post(
        f"/console/agency/releases/{release}/comments",
        data={"csrf": token, "file": "nope.csv", "body": "x"},
        follow_redirects=False,
    )
    assert "no file" in flash(wrong)
    gone = agency.post(
        "/console/agency/releases/999999/comments", data={"csrf": token, "body": "x"}, follow_redirects=False
    )
    assert gone.headers["location"].split("?")[0].endswith("/console/agency")

    operator = console_client(instance, keys["operator"])
    page = operator.get(f"/console/operator/releases/{release}")
    assert page.status_code == 200 and "区00 人数 10，接近阈值" in page.text and 'id="reply-form"' in page.text
    reply = operator.post(
        f"/console/operator/releases/{release}/comments",
        data={"csrf": csrf_in(page.text), "body": "已知悉，将合并", "file": ""},
        follow_redirects=False,
    )
    assert "comment posted" in flash(reply)
    assert "已知悉，将合并" in agency.get(f"/console/agency/releases/{release}").text
    # The job page links to the thread (one line in operator/job.html).
    job = instance.releases.get(release, viewer=ACME).job
    assert f"/console/operator/releases/{release}" in operator.get(f"/console/operator/jobs/{job}").text
    # Refusals: a regulator and a custodian never see the operator's page; another release is not found.
    for role in ("regulator", "custodian"):
        assert console_client(instance, keys[role]).get(f"/console/operator/releases/{release}").status_code == 403
    missing = operator.get("/console/operator/releases/999999", follow_redirects=False)
    assert missing.status_code == 303 and "cannot open release" in flash(missing)
    assert operator.get("/console/operator/releases/abc").status_code == 422


def test_return_reply_resubmit_and_approve(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    operator = console_client(instance, keys["operator"])
    r2 = Actor("reviewer-2", "agency")
    for reviewer in (R1, r2):
        instance.releases.vote(release, "changes_requested", by=reviewer, reason="合并", comment="请合并小区县")
    page = operator.get(f"/console/operator/releases/{release}")
    assert 'id="returned-note"' in page.text and 'id="resubmit-form"' in page.text
    assert "需修改" in page.text  # each file's decision once the round is decided
    token = csrf_in(page.text)
    rerun = _done_job(instance, code="print('merged')")
    forged = operator.post(
        f"/console/operator/releases/{release}/resubmit", data={"csrf": token, "job": "x"}, follow_redirects=False
    )
    assert "choose a job" in flash(forged)
    again = operator.post(
        f"/console/operator/releases/{release}/resubmit",
        data={"csrf": token, "job": str(rerun)},
        follow_redirects=False,
    )
    assert "round 2" in flash(again)
    for reviewer in (R1, r2):
        view = instance.releases.vote(release, "approve", by=reviewer, files={})
    assert view.state == "approved" and view.product_id is not None


def test_queue_shows_age_assignment_and_my_votes(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    agency = console_client(instance, keys["agency"])
    queue = agency.get("/console/agency")
    row = queue.text.split(f'data-release="{release}"')[1].split("</tr>")[0]
    assert "分钟" in row and "data-needs-me" in row and "分配给我 Assign to me" in row
    taken = agency.post(
        f"/console/agency/releases/{release}/assign",
        data={"csrf": csrf_in(queue.text), "take": "1"},
        follow_redirects=False,
    )
    assert "assigned to you" in flash(taken)
    other = console_client(instance, keys["agency2"])
    queue2 = other.get("/console/agency").text
    assert "demo-agency" in queue2.split(f'data-release="{release}"')[1].split("</tr>")[0]
    refused = other.post(
        f"/console/agency/releases/{release}/assign",
        data={"csrf": csrf_in(queue2), "take": "1"},
        follow_redirects=False,
    )
    assert "unassign first" in flash(refused)
    back = agency.post(
        f"/console/agency/releases/{release}/assign",
        data={"csrf": csrf_in(queue.text), "take": "0"},
        follow_redirects=False,
    )
    assert "unassigned" in flash(back)
    operator = console_client(instance, keys["operator"])
    assert operator.post(f"/console/agency/releases/{release}/assign", data={"take": "1"}).status_code == 403


def test_api_comments_are_the_same_core(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    from app import create_app

    api = TestClient(create_app(instance=instance))

    def auth(role: str) -> dict[str, str]:
        token = api.post("/auth/token", json=token_body(keys[role], api)).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    agency = auth("agency")
    made = api.post(f"/releases/{release}/comments", json={"body": "API 评论", "file": "table.csv"}, headers=agency)
    assert made.status_code == 201, made.text
    assert made.json()["file"] == "table.csv" and made.json()["author"] == "demo-agency"
    listed = api.get(f"/releases/{release}/comments", headers=auth("operator"))
    assert listed.status_code == 200 and [c["body"] for c in listed.json()] == ["API 评论"]
    regulator = auth("regulator")
    assert api.get(f"/releases/{release}/comments", headers=regulator).status_code == 403
    assert api.post(f"/releases/{release}/comments", json={"body": ""}, headers=agency).status_code in (409, 422)
    assert api.post(f"/releases/{release}/assignment", json={"take": True}, headers=agency).json() == {
        "release": release,
        "assigned_to": "demo-agency",
    }


def test_a_split_vote_says_so_and_names_what_is_needed(review: tuple[Instance, dict[str, str], int]) -> None:
    instance, keys, release = review
    r2 = Actor("reviewer-2", "agency")
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "changes_requested", by=r2, reason="取整", comment="请取整")
    agency = console_client(instance, keys["agency"])
    page = agency.get(f"/console/agency/releases/{release}").text
    note = page.split('id="split-vote"')[1].split("</p>")[0]
    assert "评审意见不一致" in note and "需第 3 位审核员投票" in note and "further reviewer" in note
    assert "approve" not in note and "changes_requested" not in note  # the votes stay sealed
    queue = agency.get("/console/agency").text
    assert "data-split" in queue.split(f'data-release="{release}"')[1].split("</tr>")[0]
