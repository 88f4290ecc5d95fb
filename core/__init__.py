"""The base every domain package stands on: who acts, the errors of a refusal, the one way a
change is made (in a transaction with its ledger entries), database base classes and time types,
and digests.

``core`` imports only ``ledger`` of ours; every domain package (registry, sandbox, operators) imports
``core``, never another domain's internals for these.

The face loads each name from its own module on first use (``core.faces``): ``Actor`` and the errors
come without SQLAlchemy or the ledger, which only ``Base``, ``Change`` and the recorders need (issue 21).
"""

from typing import TYPE_CHECKING, Any

from core.faces import LazyFace

if TYPE_CHECKING:
    from core.actors import HOST_ROLE, Actor, actor_of, require_role
    from core.changes import Change, JoinedRecorder, Recorder
    from core.crashpoints import ENVIRONMENT as CRASH_POINT_ENVIRONMENT
    from core.crashpoints import crash_point
    from core.db import MAX_ROW_ID, NAMING_CONVENTION, Base, UTCDateTime, duplicate_key, utcnow
    from core.errors import NotFoundError, PermissionDeniedError, RegistryError, UsageError
    from core.hashing import file_sha256, stream_sha256, text_sha256
    from core.storage import (
        LocalStorage,
        ObjectExistsError,
        ObjectInfo,
        ObjectMissingError,
        StagedObjectMismatchError,
        Storage,
        StorageError,
        StoredObject,
        check_key,
    )
    from core.storage_roles import (
        ROLE_ACCESS,
        ROLES,
        RoleAccess,
        aws_policies,
        new_credentials,
        seaweedfs_bucket_policy,
        seaweedfs_identities,
    )
    from core.storage_s3 import (
        S3Credentials,
        S3Storage,
        StorageAccessDeniedError,
        StorageCredentialsError,
        load_credentials_file,
    )
    from core.storage_sweep import DEFAULT_GRACE, ReferencedKeys, SweepRefusedError, SweepReport, referenced_keys, sweep
    from core.storage_urls import open_storage, parse_s3_url, storage_for_url
    from core.text import invisible_character

__all__ = [
    "CRASH_POINT_ENVIRONMENT",
    "DEFAULT_GRACE",
    "HOST_ROLE",
    "MAX_ROW_ID",
    "NAMING_CONVENTION",
    "ROLES",
    "ROLE_ACCESS",
    "Actor",
    "Base",
    "Change",
    "JoinedRecorder",
    "LazyFace",
    "LocalStorage",
    "NotFoundError",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectMissingError",
    "PermissionDeniedError",
    "Recorder",
    "ReferencedKeys",
    "RegistryError",
    "RoleAccess",
    "S3Credentials",
    "S3Storage",
    "StagedObjectMismatchError",
    "Storage",
    "StorageAccessDeniedError",
    "StorageCredentialsError",
    "StorageError",
    "StoredObject",
    "SweepRefusedError",
    "SweepReport",
    "UTCDateTime",
    "UsageError",
    "actor_of",
    "aws_policies",
    "check_key",
    "crash_point",
    "duplicate_key",
    "file_sha256",
    "invisible_character",
    "load_credentials_file",
    "new_credentials",
    "open_storage",
    "parse_s3_url",
    "referenced_keys",
    "require_role",
    "seaweedfs_bucket_policy",
    "seaweedfs_identities",
    "storage_for_url",
    "stream_sha256",
    "sweep",
    "text_sha256",
    "utcnow",
]

#: Each module of this face -> the names it gives (``public=defined`` where the face renames one).
_NAMES: dict[str, str] = {
    "core.actors": "HOST_ROLE Actor actor_of require_role",
    "core.changes": "Change JoinedRecorder Recorder",
    "core.crashpoints": "CRASH_POINT_ENVIRONMENT=ENVIRONMENT crash_point",
    "core.db": "MAX_ROW_ID NAMING_CONVENTION Base UTCDateTime duplicate_key utcnow",
    "core.errors": "NotFoundError PermissionDeniedError RegistryError UsageError",
    "core.hashing": "file_sha256 stream_sha256 text_sha256",
    "core.storage": (
        "LocalStorage ObjectExistsError ObjectInfo ObjectMissingError StagedObjectMismatchError Storage "
        "StorageError StoredObject check_key"
    ),
    "core.storage_roles": (
        "ROLE_ACCESS ROLES RoleAccess aws_policies new_credentials seaweedfs_bucket_policy seaweedfs_identities"
    ),
    "core.storage_s3": (
        "S3Credentials S3Storage StorageAccessDeniedError StorageCredentialsError load_credentials_file"
    ),
    "core.storage_urls": "open_storage parse_s3_url storage_for_url",
    "core.storage_sweep": "DEFAULT_GRACE ReferencedKeys SweepRefusedError SweepReport referenced_keys sweep",
    "core.text": "invisible_character",
}

_FACE = LazyFace("core", _NAMES, whole=False)


def __getattr__(name: str) -> Any:
    return _FACE.load(name)
