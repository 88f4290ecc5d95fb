"""Instance settings, read from the environment (``KEYONG_*``) by pydantic-settings.

One instance is one home directory (DESIGN.md, Storage). Everything that differs between a
laptop demo and a production deployment — where the home lies, which database holds the
metadata, how long a token lives — is a setting here, never a constant in a package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.database import DatabaseSslMode
from core import S3Credentials, Storage, StorageError, load_credentials_file, open_storage
from registry import IngestLimits

_INGEST = IngestLimits()  # the bounds are declared once, in the registry; these settings override them


class Settings(BaseSettings):
    """Settings of one Keyong instance; every field can be set as ``KEYONG_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="KEYONG_", extra="ignore")

    home: Path = Field(
        default=Path(".keyong"),
        description="Instance home: secrets, embedded database, vault and artifacts.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the metadata, queue and ledger database. Unset: the URL recorded "
            "in the home at `init`, else SQLite (WAL) inside the home."
        ),
    )
    token_ttl_seconds: int = Field(
        default=900,
        ge=30,
        le=86_400,
        description="Lifetime of a JWT issued by POST /auth/token; short so that a leaked token dies soon.",
    )
    jwt_issuer: str = Field(default="keyong", description="`iss` of issued tokens, checked on verification.")
    jwt_audience: str = Field(default="keyong-api", description="`aud` of issued tokens, checked on verification.")

    ledger_origin: str | None = Field(
        default=None,
        description="Origin line of the ledger's C2SP checkpoints; default `keyong.local/<instance id>`.",
    )
    ledger_checkpoint_every: int = Field(default=1000, ge=1, description="Checkpoint at least every N entries.")
    publicity_days: int = Field(
        default=7, ge=0, le=365, description="Licence 公示 period in days before it may become active (0: at once)."
    )
    dataset_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description=(
            "Days a dataset version is kept when its catalog entry sets no retention period (SATRE 3.1.09); "
            "unset: kept until purged. Logs and the ledger are kept at least 3 years regardless."
        ),
    )
    violation_limit: int = Field(
        default=3, ge=1, description="Violations within violation_window_hours that suspend an operator automatically."
    )
    violation_window_hours: float = Field(default=24.0, gt=0, description="Window the violation limit counts in.")
    job_concurrent_limit: int = Field(
        default=4, ge=1, description="Queued or running jobs an operator may have at once."
    )
    job_daily_limit: int = Field(default=200, ge=1, description="Jobs an operator may submit in any 24 hours.")
    release_reviewers: int = Field(
        default=2, ge=1, le=9, description="Independent agency reviewers who must vote on a release."
    )
    job_cpu_seconds_daily: float = Field(
        default=3600.0, gt=0, description="CPU seconds an operator's jobs may use in any 24 hours."
    )
    console_secure_cookies: bool = Field(
        default=False,
        description="Always mark the console's session cookie Secure (it is marked Secure anyway on https requests).",
    )
    transport_secure: bool = Field(
        default=False,
        description=(
            "Clients reach this server over TLS only (its own certificate, or a TLS-terminating proxy in front): "
            "every response carries Strict-Transport-Security and console cookies are Secure. `keyong serve` "
            "sets it with --tls-cert/--tls-key or --behind-tls-proxy (SATRE 2.8.01)."
        ),
    )
    hsts_max_age_seconds: int = Field(
        default=31_536_000,
        ge=0,
        description="max-age of the Strict-Transport-Security header sent when transport_secure (a year).",
    )
    database_sslmode: DatabaseSslMode | None = Field(
        default=None,
        description=(
            "libpq sslmode for a PostgreSQL database (require: encrypted; verify-full: encrypted to a server whose "
            "certificate and name check out against database_sslrootcert). The stricter of this and an "
            "`sslmode` in the URL applies. Refused with SQLite, which has no connection to encrypt."
        ),
    )
    database_sslrootcert: Path | None = Field(
        default=None,
        description="CA certificate(s) the PostgreSQL server's certificate must chain to (verify-ca, verify-full).",
    )
    console_origins: list[str] = Field(
        default_factory=list,
        description=(
            "Origins besides the server's own (scheme://host[:port]) the console accepts form posts from, "
            "e.g. the public address of a proxy that rewrites the Host header; a JSON list in the environment."
        ),
    )
    ledger_checkpoint_seconds: float = Field(
        default=60.0, gt=0, description="Checkpoint when entries were appended and the last checkpoint is older."
    )
    ledger_verify_lock_timeout_seconds: float = Field(
        default=10.0,
        ge=0.001,
        le=300,
        description=(
            "How long the API's GET /ledger/verify and the regulator's console wait on a lock another database "
            "session holds on the ledger's tables (PostgreSQL lock_timeout) before answering 503 with Retry-After."
        ),
    )
    request_profile: Literal["heilongjiang", "shuangyashan", "jiyuan"] = Field(
        default="shuangyashan",
        description=(
            "The region whose regulation gives requests (data applications, demands, corrections, catalog updates) "
            "their time limits in working days; each rule cites its article (registry.request_rules, issue 24)."
        ),
    )
    ingest_max_upload_bytes: int = Field(
        default=_INGEST.max_upload_bytes, ge=1, description="Largest API upload, declared and received (413 above)."
    )
    ingest_max_xlsx_inflated_bytes: int = Field(
        default=_INGEST.max_xlsx_inflated_bytes, ge=1, description="Largest decompressed size of an XLSX (413 above)."
    )
    ingest_max_columns: int = Field(default=_INGEST.max_columns, ge=1, description="Most columns of an ingested file.")
    ingest_max_rows: int = Field(default=_INGEST.max_rows, ge=1, description="Most rows of an ingested file.")
    ingest_max_cell_chars: int = Field(
        default=_INGEST.max_cell_chars, ge=1, description="Most characters of one text cell of an ingested file."
    )
    storage_url: str | None = Field(
        default=None,
        description=(
            "Where artifacts (vault, copies, fingerprints, job outputs, products, published checkpoints) lie. "
            "Unset: the home, as always. `s3://bucket/prefix`: an S3-compatible object store (issue 19); every "
            "process of the instance (API nodes, workers, the host) must name the same one."
        ),
    )
    storage_endpoint_url: str | None = Field(
        default=None,
        description="The object store's endpoint, e.g. `https://s3.example.gov.cn` or SeaweedFS's S3 port; unset: AWS.",
    )
    storage_region: str | None = Field(default=None, description="The object store's region (AWS; others ignore it).")
    storage_access_key_id: str | None = Field(
        default=None,
        description=(
            "Access key id of this process's role (server, ingest or worker; `keyong storage policy`). Unset with "
            "no credentials file: the standard AWS chain (environment, instance profile)."
        ),
    )
    storage_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret of storage_access_key_id; never shown (prefer storage_credentials_file)."
    )
    storage_credentials_file: Path | None = Field(
        default=None,
        description=(
            "A file only its owner can read (mode 0600) holding this role's key: JSON with access_key_id and "
            "secret_access_key, or AWS INI. Refused when others can read it; wins over the two settings above."
        ),
    )

    def storage_credentials(self) -> S3Credentials | None:
        """This process's object-store key: the credentials file, else the two settings, else ``None``."""
        if self.storage_credentials_file is not None:
            return load_credentials_file(self.storage_credentials_file)
        secret = self.storage_secret_access_key
        if self.storage_access_key_id and secret is not None:
            return S3Credentials(self.storage_access_key_id, secret.get_secret_value())
        if self.storage_access_key_id or secret is not None:
            raise StorageError("set both storage_access_key_id and storage_secret_access_key, or neither")
        return None

    def open_storage(self) -> Storage:
        """The instance's :class:`core.Storage` per these settings (the home when storage_url is unset)."""
        creds = self.storage_credentials() if self.storage_url else None
        return open_storage(
            self.storage_url,
            home=self.home,
            endpoint_url=self.storage_endpoint_url,
            key_id=creds.key_id if creds else None,
            secret=creds.secret if creds else None,
            region=self.storage_region,
        )

    @property
    def ledger_verify_lock_timeout_ms(self) -> int:
        """:attr:`ledger_verify_lock_timeout_seconds` in whole milliseconds (PostgreSQL's unit), at least 1."""
        return max(1, round(self.ledger_verify_lock_timeout_seconds * 1000))

    def ingest_limits(self) -> IngestLimits:
        """The registry's ingest bounds with the ones set here."""
        return IngestLimits(
            max_upload_bytes=self.ingest_max_upload_bytes,
            max_xlsx_inflated_bytes=self.ingest_max_xlsx_inflated_bytes,
            max_columns=self.ingest_max_columns,
            max_rows=self.ingest_max_rows,
            max_cell_chars=self.ingest_max_cell_chars,
        )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # A relative home would silently change meaning with the working directory of a worker.
        return value.expanduser().absolute()

    def with_home(self, home: Path | None) -> Settings:
        """These settings with ``home`` replaced (the CLI's ``--home`` wins over the environment)."""
        if home is None:
            return self
        return self.model_copy(update={"home": home.expanduser().absolute()})
