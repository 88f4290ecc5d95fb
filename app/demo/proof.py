"""The demo's last step: the ledger verified, exported with an inclusion proof, and both checked by the
regulator's standalone verifier as its own process (双鸭山 第六十条, 第六十四条).
"""

import json
import subprocess
import sys
from pathlib import Path

from rich.progress import Progress

from app.demo.report import DemoReport
from app.demo.scenario import LEDGER_DIR
from app.instance import Instance


def prove(instance: Instance, report: DemoReport, progress: Progress) -> None:
    """Verify the ledger, then let the regulator's standalone verifier check an export and an inclusion proof.

    ``python -m ledger.verify`` runs as its own process over files only (no database, no instance): what a
    regulator would run on the export it was handed (双鸭山 第六十条, 第六十四条).
    """
    ledger = instance.ledger
    task = progress.add_task("verifying the ledger", total=ledger.size())
    verified = ledger.verify(progress=lambda n: progress.advance(task, n))
    report.ledger = {
        "entries": verified.entries,
        "ok": verified.ok,
        "head": verified.head,
        "checkpoints": verified.checkpoints,
        "problems": [p.as_json() for p in verified.problems],
    }
    # The entry to prove: the registration of the product the objection was about (else the latest product).
    subject = report.objection.get("product") or (report.products[-1]["name"] if report.products else None)
    found = ledger.entries(action="product.registered", subject=f"product:{subject}", limit=1) if subject else []
    entry = found[0] if found else ledger.get(ledger.size())
    proof = ledger.prove(entry.seq, checkpoint_if_needed=True)
    out_dir = report.home / LEDGER_DIR
    out_dir.mkdir(exist_ok=True)
    export, proof_file = out_dir / "ledger.jsonl", out_dir / f"proof-{entry.seq}.json"
    proof_file.write_text(json.dumps(proof.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    exported = progress.add_task(f"exporting to {export.name}", total=ledger.size())
    with export.open("w", encoding="utf-8") as handle:
        count, checkpoints = ledger.export(handle, progress=lambda n: progress.advance(exported, n))
    command = [sys.executable, "-m", "ledger.verify", str(export), "--public-key", ledger.public_key_hex,
               "--proof", str(proof_file)]  # fmt: skip
    standalone = progress.add_task("standalone verifier (python -m ledger.verify)", total=1)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=out_dir)
    progress.advance(standalone)
    try:
        verdict: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError:
        verdict = {"ok": False, "problems": [{"kind": "output", "detail": done.stderr.strip()[-500:]}]}
    report.ledger["export"] = {"file": str(export), "entries": count, "checkpoints": checkpoints,
                               "public_key": ledger.public_key_hex}  # fmt: skip
    report.ledger["proof"] = {
        "seq": entry.seq,
        "action": entry.action,
        "subject": entry.subject,
        "entry_hash": proof.entry_hash,
        "tree_size": proof.tree_size,
        "root": proof.root,
        "file": str(proof_file),
        "matches_export": _in_export(export, proof.as_json()),
    }
    report.ledger["standalone"] = {
        "command": ["python", "-m", "ledger.verify", str(export), "--public-key", ledger.public_key_hex,
                    "--proof", str(proof_file)],
        "exit_code": done.returncode,
        "ok": verdict.get("ok"),
        "proof": verdict.get("proof"),
        "entries": verdict.get("entries"),
        "checkpoints": verdict.get("checkpoints"),
        "problems": verdict.get("problems", []),
    }  # fmt: skip


def _in_export(export: Path, proof: dict[str, object]) -> bool:
    """The proved entry and its checkpoint are the export's own (same entry hash, same signed root).

    The verifier checks the proof against the key; this ties it to the very file the regulator was given.
    """
    entry_ok = checkpoint_ok = False
    checkpoint = proof.get("checkpoint")
    with export.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("seq") == proof["seq"] and "hash" in record:
                entry_ok = record["hash"] == proof["entry_hash"]
            if isinstance(checkpoint, dict) and "signature" in record and record.get("tree_size") == proof["tree_size"]:
                checkpoint_ok = record.get("root") == proof["root"] and record["signature"] == checkpoint.get(
                    "signature"
                )
    return entry_ok and checkpoint_ok
