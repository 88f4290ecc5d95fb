"""Storage URLs: the one place a ``KEYONG_STORAGE_URL``, an endpoint or a regulator's ``--storage-url`` is parsed.

Why one owner: a storage URL may arrive with credentials in it (user-info, a pre-signed query) pasted by
someone; every refusal must be a :class:`core.StorageError` with a clear reason (a malformed URL never a
traceback) that repeats neither user-info nor query nor fragment (red team 19, B7). The instance's storage
(:func:`open_storage`) and a storage named alone (:func:`storage_for_url`) go through the same checks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from core.storage import LocalStorage, Storage, StorageError, check_key

__all__ = ["open_storage", "parse_s3_url", "safe_url", "split_url", "storage_for_url"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; anything else (credentials in it, a query, a fragment)
    is refused."""
    parts = split_url(url)
    if parts.scheme != "s3" or not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise StorageError(f"not an object storage URL (s3://bucket/prefix, no credentials in it): {safe_url(url)}")
    bucket = parts.netloc
    if not _BUCKET.match(bucket):  # what follows a ':' is not shown: ``s3://KEY:SECRET/…`` (red team 21d)
        raise StorageError(
            f"not an S3 bucket name: {bucket.split(':', 1)[0]!r}" + (" (with a ':')" if ":" in bucket else "")
        )
    prefix = parts.path.strip("/")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def split_url(url: str) -> SplitResult:
    """``urlsplit`` whose refusal of a malformed URL (``s3://[x``) is a :class:`StorageError`, not a traceback."""
    try:
        return urlsplit(url)
    except ValueError:
        raise StorageError("a storage or endpoint URL does not parse (an unclosed '[' in its host?)") from None


def safe_url(url: str) -> str:
    """The URL for messages: without user-info, query or fragment (a pasted signature or secret stays out)."""
    parts = split_url(url)
    shown = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment="").geturl()
    if "@" in shown:  # user-info urlsplit did not see as such (``s3:\\key:secret@bucket``): none of it shown
        shown = f"{parts.scheme}:…@{shown.rsplit('@', 1)[-1]}" if parts.scheme else f"…@{shown.rsplit('@', 1)[-1]}"
    return shown


def _refuse_secrets_in(url: str, endpoint_url: str | None) -> None:
    """Fail closed on credentials or a signature in a storage or endpoint URL: they go in their own settings
    or files, where ``ps``, a shell history or an error message does not show them (red team 19, B7)."""
    for given in (url, endpoint_url or ""):
        if "@" in split_url(given).netloc:
            raise StorageError(
                f"{safe_url(given)} carries user-info (a name or secret before '@'): refused; give credentials "
                "in KEYONG_STORAGE_ACCESS_KEY_ID/KEYONG_STORAGE_SECRET_ACCESS_KEY or a credentials file"
            )
    if endpoint_url and (split_url(endpoint_url).query or split_url(endpoint_url).fragment):
        raise StorageError(f"the storage endpoint {safe_url(endpoint_url)} carries a query or fragment: refused")


def open_storage(
    url: str | None,
    *,
    home: Path,
    endpoint_url: str | None = None,
    key_id: str | None = None,
    secret: str | None = None,
    region: str | None = None,
) -> Storage:
    """The instance's storage: unset or ``file:`` -> :class:`LocalStorage` under the home (as always);
    ``s3://bucket/prefix`` -> :class:`S3Storage`. Any other scheme is refused (fail closed)."""
    if not url:
        return LocalStorage(home)
    scheme = split_url(url).scheme
    _refuse_secrets_in(url, endpoint_url)
    if scheme == "file":
        path = split_url(url).path
        if path and Path(path).resolve() != Path(home).resolve():
            raise StorageError(f"a file: storage URL must name the home ({home}), not {safe_url(url)}")
        return LocalStorage(home)
    if scheme == "s3":
        return _s3(url, endpoint_url=endpoint_url, key_id=key_id, secret=secret, region=region)
    raise StorageError(f"unsupported storage URL {safe_url(url)}: use s3://bucket/prefix, or leave it unset (the home)")


def storage_for_url(
    url: str,
    *,
    endpoint_url: str | None = None,
    key_id: str | None = None,
    secret: str | None = None,
    region: str | None = None,
) -> Storage:
    """A storage named by its URL alone, with no instance: a directory, ``file://DIR`` or ``s3://BUCKET/PREFIX``.

    Why beside :func:`open_storage`: a regulator verifies a published ledger from a bucket or a downloaded
    copy anywhere on its disk, not from a home; the checks on the URL are the same (no user-info, no query,
    malformed URLs refused as :class:`StorageError`, never echoed with their query).
    """
    parts = split_url(url)
    if parts.scheme == "s3":
        _refuse_secrets_in(url, endpoint_url)
        return _s3(url, endpoint_url=endpoint_url, key_id=key_id, secret=secret, region=region)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise StorageError(
                f"refused {safe_url(url)}: a file: storage URL is file:///DIR, with no other host, user-info, "
                "query or fragment"
            )
        path = Path(unquote(parts.path))
    elif parts.scheme in ("", "local") or len(parts.scheme) == 1:  # a path (a drive letter is a one-letter scheme)
        path = Path(url.removeprefix("local:"))
    else:
        raise StorageError(
            f"unsupported storage URL {safe_url(url)}: use a directory, file:///DIR or s3://BUCKET/PREFIX"
        )
    if not path.is_dir():
        raise StorageError(f"no directory {path}: the storage URL must name the storage root (the home, locally)")
    return LocalStorage(path)


def _s3(url: str, **options: Any) -> Storage:
    """The S3 backend, imported when an ``s3://`` URL is named (``core.storage_s3`` parses with this module)."""
    from core.storage_s3 import S3Storage

    return S3Storage(url, **options)
