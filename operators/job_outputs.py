"""An operator's own outputs of a job the export guard passed (issue 18): read once judged, every read ledgered.

Why an operator may read them: the export guard runs "over exactly the bytes the operator would receive"
(DESIGN.md, Export guard) and gives ``pass`` only to what the platform can account for as aggregate (tables
tied to the source, signed DP answers, certified models, charts of a passing table). What it sends to
review, or blocks, stays inside until the release review decides (原始数据不出域, 数据可用不可见; 双鸭山
第三十五条). So: the job's own operator, a finished (``done``) job, the verdict ``pass``, the output named in
its judged manifest, nothing held (its operator suspended, 第三十一条; the platform frozen, 第六十一条, decided
again where the read is recorded), the bytes' SHA-256 the manifest's; and each read is ledgered
(``job.output_read``; usage logs kept, 第二十条), as a product's delivery is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core import Actor, RegistryError, StorageError, require_role
from registry import Registry, VaultError, require_not_frozen
from sandbox import JobQueue

#: The largest output read through the API or the console (bytes); larger ones leave as a product.
MAX_OUTPUT_BYTES = 32 * 1024 * 1024


class OutputRefusedError(RegistryError):
    """The output may not be read now; the message says why."""


@dataclass(frozen=True, slots=True)
class JobOutput:
    """One output's name, size, hash and bytes."""

    job: int
    name: str
    sha256: str
    data: bytes


def read_output(registry: Registry, queue: JobQueue, job_id: int, name: str, *, by: Actor) -> JobOutput:
    """The bytes of output ``name`` of ``by``'s own passed job ``job_id``, the read ledgered; else a refusal."""
    require_role(by, "operator")
    view = queue.get(job_id, viewer=by)  # another operator's job: "no job" (its existence not revealed)
    if view.operator != by.name:
        raise OutputRefusedError(f"no job {job_id}")
    shown = view.for_operator()
    if shown.state != "done" or shown.verdict != "pass":
        verdict = shown.verdict if shown.state == "done" else None
        raise OutputRefusedError(
            f"job {job_id} is {shown.state}"
            + (f" with the verdict {verdict}" if verdict else " without a verdict")
            + ": only a finished job's outputs the export guard passed are readable; others leave only as a "
            "product approved by the release review"
        )
    if shown.held:
        raise OutputRefusedError(shown.held)
    judged = {str(o.get("name")): o for o in shown.outputs}
    stored = {str(o.get("name")): o for o in view.outputs}
    if name not in judged or name not in stored:
        raise OutputRefusedError(f"job {job_id} has no output named {name[:128]!r}")
    entry = stored[name]
    if int(entry.get("bytes") or 0) > MAX_OUTPUT_BYTES:
        raise OutputRefusedError(f"output {name!r} exceeds {MAX_OUTPUT_BYTES:,} bytes: request its release instead")
    source = str(entry.get("path"))
    try:  # from the storage (issue 19): the worker that wrote it may be on another host, or gone
        chunks = registry.at_rest.artifact_chunks(source)  # a key, never any absolute path (red team 19, B1)
        data = b"".join(chunks)
    except (VaultError, StorageError) as exc:
        raise OutputRefusedError(f"output {name!r} of job {job_id} cannot be opened: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        raise OutputRefusedError(f"output {name!r} of job {job_id} does not match its judged hash; not delivered")
    with registry.recorder.change(by) as change:
        require_not_frozen(change.session, f"reading an output of job {job_id}")
        change.log("job.output_read", f"job:{job_id}", {"name": name, "sha256": digest, "bytes": len(data)})
    return JobOutput(job=job_id, name=name, sha256=digest, data=data)


__all__ = ["MAX_OUTPUT_BYTES", "JobOutput", "OutputRefusedError", "read_output"]
