"""Downloads from the console carry the same attribution as the API's (issue 18).

双鸭山市公共数据管理暂行办法 第四十一条: 开发的数据产品和服务应当注明数据的来源和获取日期. The delivered
file is already stamped inside where its format allows (``registry.attribution.stamp_artifact``); the API's
``GET /products/{name}/artifacts/{file}`` also names the 数据来源 and 获取日期 in the ``X-Keyong-Attribution``
header, since a CSV has nowhere inside to keep them. The console's download gave the file without the header:
this module builds the one response both give, so a file fetched in the browser says the same as one
fetched over the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

#: The header the API sets on every product download (``app.api.releases``).
HEADER = "X-Keyong-Attribution"


def attribution_headers(attribution: Mapping[str, Any]) -> dict[str, str]:
    """The attribution block as the API sends it: JSON, percent-encoded (a header is ASCII; the block is Chinese)."""
    return {HEADER: quote(json.dumps(dict(attribution), ensure_ascii=False, sort_keys=True))}


def attributed_file(delivered: Mapping[str, Any], match: Mapping[str, Any], cleanup: BackgroundTask) -> FileResponse:
    """The delivered artifact ``match`` (one of ``delivered["files"]``, from ``Releases.fetch``) as a download
    with the delivery's attribution header; ``cleanup`` removes the delivery's directory once it is sent."""
    path = Path(str(match["path"]))
    return FileResponse(
        path, filename=path.name, headers=attribution_headers(delivered["attribution"]), background=cleanup
    )


__all__ = ["HEADER", "attributed_file", "attribution_headers"]
