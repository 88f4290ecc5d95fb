"""The base every domain package stands on: who acts, the errors of a refusal, the one way a
change is made (in a transaction with its ledger entries), database base classes and time types,
and digests.

``core`` imports only ``ledger`` of ours; every domain package (registry, sandbox, operators) imports
``core``, never another domain's internals for these.
"""

from core.actors import HOST_ROLE, Actor, actor_of, require_role
from core.changes import Change, JoinedRecorder, Recorder
from core.crashpoints import ENVIRONMENT as CRASH_POINT_ENVIRONMENT
from core.crashpoints import crash_point
from core.db import MAX_ROW_ID, NAMING_CONVENTION, Base, UTCDateTime, utcnow
from core.errors import NotFoundError, PermissionDeniedError, RegistryError, UsageError
from core.hashing import file_sha256, text_sha256
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
from core.text import invisible_character

__all__ = [
    "CRASH_POINT_ENVIRONMENT",
    "HOST_ROLE",
    "MAX_ROW_ID",
    "NAMING_CONVENTION",
    "Actor",
    "Base",
    "Change",
    "JoinedRecorder",
    "LocalStorage",
    "NotFoundError",
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectMissingError",
    "PermissionDeniedError",
    "Recorder",
    "RegistryError",
    "StagedObjectMismatchError",
    "Storage",
    "StorageError",
    "StoredObject",
    "UTCDateTime",
    "UsageError",
    "actor_of",
    "check_key",
    "crash_point",
    "file_sha256",
    "invisible_character",
    "require_role",
    "text_sha256",
    "utcnow",
]
