"""Red team 21c: the console's own forms against the API's edge guard.

F8: the edge (``app.api.edge``) caps every request body at ``MAX_JSON_BYTES`` (2 MiB) except the streamed raw
upload of the API; the console's upload form streams and bounds its body through the same code
(``app.api.ingest.receive_upload``) but was not let through, so a custodian's upload of any file over 2 MiB got
the API's JSON 413 instead of being ingested, although the form states the upload bound (512 MiB by default;
资源目录 registration, 双鸭山 第十一条, needs the whole file). Over the upload bound it is the form again, 413.
"""

from __future__ import annotations

from typing import Any

import pytest

from app import Instance
from app.api.limits import MAX_JSON_BYTES
from tests.console_support import console_client, csrf_of
from tests.test_ingest_limits import set_limits

CODE = "91230500MA0000002G"  # a valid 统一社会信用代码 (GB 32100)


@pytest.fixture
def database_url() -> None:
    """SQLite: the edge refuses before any database work."""
    return None


def _csv_over(size: int) -> bytes:
    rows = "".join(f"S{i:07d},站点{i},{20 + i % 40},{'东西南北'[i % 4]}区\n" for i in range(size // 30 + 1))
    return ("站点编号,站点名称,年龄,区县\n" + rows).encode()


def _upload(client: Any, content: bytes) -> Any:
    fields = {"csrf": csrf_of(client, "/console/custodian/upload"), "name": "stops", "provider": "市交通运输局",
              "provider_code": CODE, "level": "", "encoding": "auto"}  # fmt: skip
    return client.post(
        "/console/custodian/upload", data=fields, files={"file": ("stops.csv", content, "text/csv")},
        follow_redirects=False,
    )  # fmt: skip


def test_a_console_upload_over_the_json_cap_is_ingested(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens["custodian"])
    content = _csv_over(MAX_JSON_BYTES + 100_000)
    assert len(content) > MAX_JSON_BYTES
    made = _upload(client, content)
    assert made.status_code == 303, made.text[:500]
    assert instance.registry.catalog.get("stops").versions[0].kind == "raw"


def test_a_console_upload_over_the_upload_bound_is_the_form_again(
    initialised: tuple[Instance, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, tokens = initialised
    set_limits(instance, monkeypatch, max_upload_bytes=MAX_JSON_BYTES + 1024)
    client = console_client(instance, tokens["custodian"])
    refused = _upload(client, _csv_over(MAX_JSON_BYTES + 200_000))
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("text/html") and "bytes" in refused.text
    assert "stops" not in {e.name for e in instance.registry.catalog.list()}
