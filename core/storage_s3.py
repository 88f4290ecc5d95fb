"""The S3 backend of :class:`core.Storage` (``KEYONG_STORAGE_URL=s3://bucket/prefix``), over s3fs.

Why (issue 19; DESIGN.md, Storage and Scale-out): workers on other hosts share nothing with the
server but PostgreSQL and an object store. The semantics are those of :mod:`core.storage`:

* create-only: every write carries ``If-None-Match: *`` (a single PUT for small objects; for large
  ones the *complete* of a multipart upload carries it, so parts may stream but the object appears
  whole or not at all). A second writer gets :class:`ObjectExistsError`; the first object stays.
  SeaweedFS 4.48 and moto 5.2 both refuse the second writer (tests/test_storage.py proves it on
  whichever runs);
* nothing is renamed or rewritten; objects no row names are removed by the sweeper
  (:mod:`core.storage_sweep`) after a grace period;
* every key passes :func:`core.storage.check_key` and lies under the URL's prefix, so a forged row
  cannot reach another prefix of the bucket;
* errors name the key, the bucket and the endpoint, never a credential: access refused by the
  server is :class:`StorageAccessDeniedError` (credentials of a role that may not touch the key,
  e.g. a worker's on ``vault/``), rejected credentials :class:`StorageCredentialsError`; a body that fails
  while it streams (a reset, a 5xx, the object replaced) is a :class:`StorageError` as well.

s3fs speaks through aiobotocore; we call its request layer (``call_s3``) for writes and listings
so that the create-only condition and multipart abort are in our hands, and its buffered file for
streaming reads.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, cast

from core.storage import (
    BLOCK,
    ObjectExistsError,
    ObjectInfo,
    ObjectMissingError,
    StorageError,
    StoredObject,
    _source,
    check_key,
    verify_staged,
)
from core.storage_urls import parse_s3_url, safe_url

__all__ = [
    "PART_SIZE",
    "S3Credentials",
    "S3Storage",
    "StorageAccessDeniedError",
    "StorageCredentialsError",
    "load_credentials_file",
]

#: Parts of a multipart upload (and the threshold for one): S3 wants ≥ 5 MiB for all but the last.
PART_SIZE = 16 << 20
#: Parts uploading at once: throughput on a loopback or LAN store, with memory bounded to a few parts.
UPLOADS_IN_FLIGHT = 4
#: How long a multipart writer waits after its complete before reading the object back (see
#: ``S3Storage._check_completed_is_ours``); small beside the upload of ≥ 16 MiB it follows.
COMPLETE_SETTLE_SECONDS = 0.5
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}
_BAD_CREDENTIALS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}


class StorageAccessDeniedError(StorageError):
    """The object store refused these credentials for this key (a role's policy, e.g. a worker on ``vault/``)."""


class StorageCredentialsError(StorageAccessDeniedError):
    """The object store rejected the credentials themselves (unknown key id or wrong secret)."""


@dataclass(frozen=True)
class S3Credentials:
    """One role's access key; ``repr`` hides the secret so it never reaches a log or a traceback."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"S3Credentials(key_id={self.key_id!r}, secret=***)"


def load_credentials_file(path: Path) -> S3Credentials:
    """A role's access key from a file only its owner may read (mode 0600 or stricter).

    JSON ``{"access_key_id": ..., "secret_access_key": ...}`` or the AWS INI form
    (``[default]`` with ``aws_access_key_id``/``aws_secret_access_key``). A file others can read is
    refused (fail closed): the secret in it would be every local user's.
    """
    try:
        info = os.stat(path)
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot read the storage credentials file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StorageError(
            f"the storage credentials file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}): "
            "chmod 600 it"
        )
    values: dict[str, str] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise StorageError(f"the storage credentials file {path} is not valid JSON") from None
        if isinstance(data, dict):
            values = {str(k): str(v) for k, v in data.items()}
    else:
        parser = configparser.ConfigParser()
        try:
            parser.read_string(text)
        except configparser.Error:
            raise StorageError(f"the storage credentials file {path} is neither JSON nor INI") from None
        section = parser["default"] if parser.has_section("default") else next(iter(parser.values()))
        values = dict(section)
    key_id = values.get("access_key_id") or values.get("aws_access_key_id")
    secret = values.get("secret_access_key") or values.get("aws_secret_access_key")
    if not key_id or not secret:
        raise StorageError(f"the storage credentials file {path} lacks access_key_id or secret_access_key")
    return S3Credentials(key_id, secret)


def _code(exc: BaseException) -> str:
    """The S3 error code behind an s3fs/botocore exception ('' when none)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            error = response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            return code or status
    if isinstance(exc, FileExistsError):
        return "PreconditionFailed"
    if isinstance(exc, FileNotFoundError):
        return "NoSuchKey"
    if isinstance(exc, PermissionError):
        return "AccessDenied"
    return ""


class S3Storage:
    """Objects in ``s3://bucket/prefix`` of an S3-compatible service (AWS, SeaweedFS, MinIO, moto)."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        key_id: str | None = None,
        secret: str | None = None,
        region: str | None = None,
        retries: int = 3,
    ) -> None:
        import s3fs  # a runtime dependency, but only object-storage deployments pay its import

        self.bucket, self.prefix = parse_s3_url(url)
        # S3 signs requests with the key, never with user-info in the endpoint: any there is dropped, so it
        # never reaches a message, a repr or a log line (red team 19, B7); core.open_storage refuses it outright.
        endpoint_url = safe_url(endpoint_url) if endpoint_url else endpoint_url
        self.endpoint_url = endpoint_url
        client_kwargs: dict[str, Any] = {}
        if region:
            client_kwargs["region_name"] = region
        self._make: Callable[[], Any] = lambda: s3fs.S3FileSystem(
            key=key_id,
            secret=secret,
            endpoint_url=endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs={"retries": {"max_attempts": retries, "mode": "standard"}},
            use_listings_cache=False,
            skip_instance_cache=True,  # never share a client (and its credentials) with another role
            default_block_size=PART_SIZE,
        )
        self._retries = retries
        self._client: Any = None
        self._pid = -1

    @property
    def _fs(self) -> Any:
        """The s3fs client of this process: fsspec's event loop does not survive a fork, so a forked
        worker (the sandbox's job processes) gets its own client on first use."""
        if self._client is None or self._pid != os.getpid():
            self._client = self._make()
            self._client.retries = self._retries  # s3fs's own retry of throttling and dropped connections
            self._pid = os.getpid()
        return self._client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint_url={self.endpoint_url!r})"

    def _where(self) -> str:
        return f"{self.url}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: BaseException, key: str, doing: str) -> NoReturn:
        """The right :class:`StorageError` for a failed request; the message names key and bucket only."""
        code = _code(exc)
        where = self._where()
        if code in _BAD_CREDENTIALS:
            raise StorageCredentialsError(
                f"{where} rejected the storage credentials ({code}) while {doing} {key}: "
                "check the access key id and secret of this role"
            ) from None
        if code in _DENIED:
            raise StorageAccessDeniedError(
                f"{where} denied {doing} {key} with these credentials: this role may not touch that key"
            ) from None
        if code in _MISSING:
            raise ObjectMissingError(f"no object {key} in {where}") from None
        if type(exc).__name__ == "FileExpired":  # s3fs: the ETag changed between two ranges of one read
            raise StorageError(
                f"{where}: {key} was replaced while it was being read; nothing read of it holds"
            ) from None
        if code == "NoSuchBucket":
            raise StorageError(f"no bucket {self.bucket} at {self.endpoint_url or 'the S3 service'}") from None
        reason = code or type(exc).__name__
        raise StorageError(f"{where}: {doing} {key} failed ({reason})") from None

    def _explain(self, exc: BaseException, name: str) -> BaseException:
        """A HEAD answer carries no body, so a bare 403 does not say whether the policy denied the key or
        the credentials were wrong: one ranged GET of a byte asks again and brings the S3 error code."""
        if _code(exc) not in ("403", "AccessDenied"):
            return exc
        try:
            self._fs.call_s3("get_object", Bucket=self.bucket, Key=name, Range="bytes=0-0")
        except Exception as again:
            return again
        return exc

    def _call(self, method: str, key: str, doing: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self._fs.call_s3(method, Bucket=self.bucket, **kwargs))
        except Exception as exc:  # s3fs translates ClientError into OSError subclasses; _code reads both
            self._fail(exc, key, doing)

    def put(self, key: str, data: bytes | Path | BinaryIO) -> StoredObject:
        name = self._name(key)
        digest = hashlib.sha256()
        with _source(data) as stream:
            first = _read_full(stream, PART_SIZE)
            digest.update(first)
            if len(first) < PART_SIZE:
                self._call_put(key, Key=name, Body=first, IfNoneMatch="*")
                return StoredObject(key, digest.hexdigest(), len(first))
            size = self._multipart(key, name, first, stream, digest)
        return StoredObject(key, digest.hexdigest(), size)

    def _call_put(self, key: str, **kwargs: Any) -> None:
        try:
            self._fs.call_s3("put_object", Bucket=self.bucket, **kwargs)
        except Exception as exc:
            if _code(exc) in _EXISTS:
                raise ObjectExistsError(f"{key} already exists in {self._where()}: objects are written once") from None
            self._fail(exc, key, "writing")

    def _multipart(self, key: str, name: str, first: bytes, stream: BinaryIO, digest: Any) -> int:
        """Stream ``first`` + the rest of ``stream`` as parts (a few in flight, memory bounded by
        :data:`UPLOADS_IN_FLIGHT` parts); complete create-only; abort the upload on any failure."""
        upload = self._call("create_multipart_upload", key, "writing", Key=name)["UploadId"]
        etags: dict[int, Future[dict[str, Any]]] = {}
        size = 0
        chunk = first
        try:
            with ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="s3-part") as pool:
                while chunk:
                    number = len(etags) + 1
                    etags[number] = pool.submit(
                        self._call,
                        "upload_part",
                        key,
                        "writing",
                        Key=name,
                        UploadId=upload,
                        PartNumber=number,
                        Body=chunk,
                    )
                    size += len(chunk)
                    if number > UPLOADS_IN_FLIGHT:
                        etags[number - UPLOADS_IN_FLIGHT].result()  # back-pressure: read no further ahead
                    chunk = _read_full(stream, PART_SIZE)
                    digest.update(chunk)
                parts = [{"PartNumber": n, "ETag": f.result()["ETag"]} for n, f in sorted(etags.items())]
            self._call_put_complete(key, name, upload, parts)
        except BaseException:
            # The upload may be complete or gone already; a bucket lifecycle rule reaps what an abort missed.
            with contextlib.suppress(Exception):
                self._fs.call_s3("abort_multipart_upload", Bucket=self.bucket, Key=name, UploadId=upload)
            raise
        return size

    def _call_put_complete(self, key: str, name: str, upload: str, parts: list[dict[str, Any]]) -> None:
        try:
            done = self._fs.call_s3(
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=name,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except Exception as exc:
            if _code(exc) in _EXISTS:
                raise ObjectExistsError(f"{key} already exists in {self._where()}: objects are written once") from None
            self._fail(exc, key, "writing")
        self._check_completed_is_ours(key, name, done.get("ETag"))

    def _check_completed_is_ours(self, key: str, name: str, etag: object) -> None:
        """After a create-only complete, the object must still be the one this upload completed.

        Why: SeaweedFS (4.48) checks ``If-None-Match`` on CompleteMultipartUpload without a lock, so two
        writers racing to complete one key can both be told they succeeded, the later replacing the earlier
        whole (measured: 5 of 30 rounds of three racing writers; single PUTs were atomic in 200 rounds of
        six). Each writer waits :data:`COMPLETE_SETTLE_SECONDS` (a racing complete that passed its check
        writes within it) and reads the object's ETag back: a writer who finds another's lost the race and
        gets :class:`ObjectExistsError`, as it would have on a store that locks (AWS). A store that loses the
        object in between is a :class:`StorageError`, never a success."""
        if not isinstance(etag, str) or not etag:
            raise StorageError(f"{key}: {self._where()} completed the upload without an ETag; nothing is trusted")
        time.sleep(COMPLETE_SETTLE_SECONDS)
        try:
            head = self._fs.call_s3("head_object", Bucket=self.bucket, Key=name)
        except Exception as exc:
            self._fail(self._explain(exc, name), key, "checking what was written to")
        if head.get("ETag") != etag:
            raise ObjectExistsError(
                f"{key} already exists in {self._where()}: another writer completed it at the same time "
                "(objects are written once)"
            )

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        try:
            stream = self._fs.open(f"{self.bucket}/{name}", "rb", cache_type="readahead")
        except Exception as exc:
            self._fail(self._explain(exc, name), key, "reading")
        return cast(BinaryIO, _ObjectStream(stream, lambda exc: self._fail(self._explain(exc, name), key, "reading")))

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            self._fs.call_s3("head_object", Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _code(exc) in _MISSING:
                return False
            self._fail(self._explain(exc, name), key, "looking up")
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", key, "deleting", Key=self._name(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        name = self._name(prefix) + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", prefix, "listing", Prefix=name, **extra)
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][strip:], int(item["Size"]), item["LastModified"].astimezone(UTC))
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def stage(self, key: str, target: Path, *, sha256: str | None) -> Path:
        name = self._name(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.unlink(missing_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner-only before a byte lands
        try:
            self._fs.get_file(f"{self.bucket}/{name}", str(target))  # one streamed GET, written in place
        except Exception as exc:
            target.unlink(missing_ok=True)
            self._fail(self._explain(exc, name), key, "reading")
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return verify_staged(target, key, sha256, self.url)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None


class _ObjectStream(io.BufferedIOBase):
    """An object's body as s3fs streams it, whose failures mid-way are :class:`StorageError` too.

    Why: the body is fetched range by range while it is read, so a connection reset, a 5xx after the
    retries, or the object removed or replaced meanwhile (s3fs's ``FileExpired``) surface in ``read``, as
    botocore, aiohttp, urllib3 or bare ``OSError`` exceptions that no caller handles (a worker's staging, a
    release, a verification would end in a traceback). ``fail`` is :meth:`S3Storage._fail`: the message
    names the key and the bucket, never a credential or a URL's query.
    """

    def __init__(self, raw: Any, fail: Callable[[BaseException], NoReturn]) -> None:
        super().__init__()
        self._raw = raw
        self._fail = fail

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check_closed()
        try:
            return cast(bytes, self._raw.read(-1 if size is None else size))
        except StorageError:
            raise
        except Exception as exc:
            self._fail(exc)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_closed()
        try:
            return int(self._raw.seek(offset, whence))
        except Exception as exc:
            self._fail(exc)

    def tell(self) -> int:
        self._check_closed()
        return int(self._raw.tell())

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):  # a failed close of a read-only body loses nothing
                self._raw.close()
        super().close()

    def _check_closed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


def _read_full(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the stream): short reads of pipes are topped up."""
    chunks: list[bytes] = []
    wanted = size
    while wanted > 0:
        chunk = stream.read(min(wanted, BLOCK * 8))
        if not chunk:
            break
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)
