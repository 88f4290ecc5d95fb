"""``keyong storage …``: the object store's role policies, a reachability check, and the sweeper (issue 19).

The sweep is composed here from every domain service whose rows name storage objects
(:data:`SWEEP_SOURCES`: one line per provider). A prefix is swept only when a provider that
implements :class:`core.ReferencedKeys` covers it; a prefix without one is left alone and reported
(fail closed: an object whose owner cannot say it is unreferenced is never deleted).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing, settings_for
from core import (
    DEFAULT_GRACE,
    ROLES,
    ReferencedKeys,
    StorageError,
    SweepReport,
    aws_policies,
    new_credentials,
    parse_s3_url,
    referenced_keys,
    seaweedfs_bucket_policy,
    seaweedfs_identities,
    sweep,
)

if TYPE_CHECKING:
    from app.instance import Instance

storage_cli = typer.Typer(
    help="Object storage: role policies, a reachability check, the sweeper.", no_args_is_help=True
)


@dataclass(frozen=True)
class SweepSource:
    """Prefixes whose every live key ``provider(instance)`` names (the sweeper deletes the rest there)."""

    prefixes: tuple[str, ...]
    provider: Callable[[Instance], object]


def _registry(instance: Instance) -> object:
    return instance.registry


def _sandbox(instance: Instance) -> object:
    """Job outputs, their attempts' logs and product artifacts: the sandbox's rows name them."""
    from sandbox import SandboxKeys

    return SandboxKeys(instance.engine, instance.home, instance.registry.licences.workdir)


#: Who names which objects. Add a provider in one line; its object must have ``storage_keys()``.
#: A provider that does not implement it leaves its prefixes unswept (reported as such).
SWEEP_SOURCES: tuple[SweepSource, ...] = (
    SweepSource(("vault", "copies", "fingerprints", "licence-copies"), _registry),
    SweepSource(("work", "products"), _sandbox),
)


@dataclass(frozen=True)
class SweepPlan:
    """The prefixes a sweep may touch, the providers it asks, and the prefixes left alone (no provider)."""

    prefixes: tuple[str, ...]
    providers: tuple[ReferencedKeys, ...]
    unswept: tuple[str, ...]


def sweep_plan(instance: Instance, sources: tuple[SweepSource, ...] = SWEEP_SOURCES) -> SweepPlan:
    prefixes: list[str] = []
    providers: list[ReferencedKeys] = []
    unswept: list[str] = []
    for source in sources:
        provider = source.provider(instance)
        if isinstance(provider, ReferencedKeys):
            prefixes.extend(p for p in source.prefixes if p not in prefixes)
            providers.append(provider)
        else:
            unswept.extend(source.prefixes)
    return SweepPlan(tuple(prefixes), tuple(providers), tuple(p for p in unswept if p not in prefixes))


def sweep_storage(
    instance: Instance,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
    sources: tuple[SweepSource, ...] = SWEEP_SOURCES,
) -> tuple[SweepReport, tuple[str, ...]]:
    """One sweep of the instance's storage, ledgered as ``storage.swept`` (unless a dry run).

    Every provider is read whole before anything is listed (``core.referenced_keys``); one that
    fails makes the sweep delete nothing. Returns the report and the prefixes left unswept.
    """
    plan = sweep_plan(instance, sources)
    referenced = referenced_keys(plan.providers)
    report = sweep(
        instance.storage, prefixes=plan.prefixes, referenced=referenced, grace=grace, now=now, dry_run=dry_run
    )
    if not dry_run:
        from operators import host_actor

        actor, role = host_actor()
        instance.ledger.append(
            actor=actor,
            role=role,
            action="storage.swept",
            subject=f"storage:{instance.storage.url}",
            payload={
                "count": report.count,
                "bytes": report.bytes,
                "prefixes": list(report.prefixes),
                "unswept": list(plan.unswept),
                "grace_seconds": report.grace_seconds,
                "errors": len(report.errors),
            },
        )
    return report, plan.unswept


@storage_cli.command("sweep")
@refusing
def sweep_command(
    grace_hours: Annotated[
        float, typer.Option("--grace-hours", min=0, help="Keep unreferenced objects younger than this (default 24).")
    ] = DEFAULT_GRACE.total_seconds() / 3600,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Remove objects no database row refers to and older than the grace period (run it from one host)."""
    with open_instance(home) as instance:
        report, unswept = sweep_storage(instance, grace=timedelta(hours=grace_hours), dry_run=dry_run)
        url = instance.storage.url
    data = {"storage": url, **report.as_json(), "unswept": list(unswept)}

    def render(console: Console) -> None:
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{url}: {verb} {report.count} object(s), {report.bytes} bytes", markup=False)
        for key in report.deleted:
            console.print(f"  {key}", markup=False)
        console.print(f"kept: {report.kept_referenced} referenced, {report.kept_young} younger than the grace period")
        if unswept:
            console.print(f"not swept (no provider names their keys yet): {', '.join(unswept)}", markup=False)
        for error in report.errors:
            console.print(f"could not delete: {error}", markup=False)

    Output(json_out).result(data, render)


@storage_cli.command("check")
@refusing
def check_command(
    prefix: Annotated[str, typer.Option("--prefix", help="A prefix this role may list (worker: copies).")] = "copies",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Reach the configured storage with this process's credentials: list a prefix (no home needed)."""
    settings = settings_for(home)
    storage = settings.open_storage()
    count = sum(1 for _ in storage.list(prefix))
    data = {"storage": storage.url, "endpoint": settings.storage_endpoint_url, "prefix": prefix, "objects": count}
    Output(json_out).result(
        data, lambda console: console.print(f"{storage.url}: {count} object(s) under {prefix}/", markup=False)
    )


@storage_cli.command("policy")
@refusing
def policy_command(
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="The instance's bucket (default: from KEYONG_STORAGE_URL).")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="The instance's prefix in the bucket (default: from the URL).")
    ] = None,
    credentials_dir: Annotated[
        Path | None,
        typer.Option(
            "--credentials-dir",
            help="Also write new random keys: one 0600 JSON file per role and SeaweedFS's s3-config.json.",
        ),
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Print each role's object-store policy: SeaweedFS identities (-s3.config) and AWS IAM documents.

    Roles: ingest (the only one with vault/ and secrets/), server (all else; reads ledger/), signer (the
    server's reach, and the only writer of ledger/), worker (reads copies, fingerprints, licence copies;
    writes work/, never deletes), regulator (reads ledger/). SeaweedFS also needs the bucket policy
    (PutBucketPolicy) that takes delete out of ``Write`` for the worker and on ledger/."""
    if bucket is None:
        url = settings_for(home).storage_url
        if not url:
            raise typer.BadParameter("give --bucket, or set KEYONG_STORAGE_URL=s3://bucket/prefix")
        bucket, configured = parse_s3_url(url)
        prefix = configured if prefix is None else prefix
    prefix = (prefix or "").strip("/")
    parse_s3_url(f"s3://{bucket}/{prefix}")  # the same checks as KEYONG_STORAGE_URL
    creds = {role: new_credentials(role) for role in ROLES}
    identities = seaweedfs_identities(bucket, prefix, creds)
    bucket_policy = seaweedfs_bucket_policy(bucket, prefix)
    if credentials_dir is not None:  # the real keys go to owner-only files, never to stdout
        _write_credentials(credentials_dir, creds, identities, bucket_policy)
    identities = json.loads(json.dumps(identities))
    for identity in identities["identities"]:
        identity["credentials"] = [{"accessKey": "<access key id>", "secretKey": "<secret>"}]
    data: dict[str, Any] = {
        "seaweedfs": identities,
        "seaweedfs_bucket_policy": bucket_policy,
        "aws": aws_policies(bucket, prefix),
    }
    Output(json_out).result(data, lambda console: console.print(json.dumps(data, indent=2), markup=False))


def _write_credentials(
    directory: Path, creds: dict[str, Any], identities: dict[str, Any], bucket_policy: dict[str, Any]
) -> None:
    """One 0600 file per role's key, SeaweedFS's identities and bucket policy; all or none (a file already
    there refuses the set before a key is written, and one that appears meanwhile removes those written)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = {f"{role}.json": {"access_key_id": c.key_id, "secret_access_key": c.secret} for role, c in creds.items()}
    files["s3-config.json"] = identities
    files["s3-bucket-policy.json"] = bucket_policy
    taken = [name for name in files if (directory / name).exists() or (directory / name).is_symlink()]
    if taken:
        raise StorageError(f"{directory / taken[0]} exists: choose an empty --credentials-dir (nothing was written)")
    written: list[Path] = []
    try:
        for name, content in files.items():
            try:
                fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise StorageError(f"{directory / name} exists: choose an empty --credentials-dir") from None
            written.append(directory / name)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(content, out, indent=2)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
