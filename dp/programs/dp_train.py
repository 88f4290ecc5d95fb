"""dp-train: a small classifier trained with DP-SGD (opacus) on a desensitized copy, run inside the sandbox.

Run as ``python -I -B /job/dp_train.py [PLAN [OUT_DIR]]`` (defaults ``/job/plan.json``, ``/out``);
writes ``OUT_DIR/model.pt`` (the plain module's state dict) and ``OUT_DIR/training.json``.

The host chose everything the guarantee rests on: the noise multiplier σ (from
``opacus.accountants.utils.get_noise_multiplier`` for the charged ε, δ), the Poisson sampling
rate q and the number of steps. This program honours them exactly — it samples each step's
batch with probability q per example, runs exactly ``steps`` steps, clips per-example gradients
at ``max_grad_norm`` and adds N(0, σ²·C²) noise — and then re-derives the spent ε with a fresh
accountant fed the same history, so the record shows what was actually spent.

Why persons and not rows: contribution bounding (at most ``k`` rows per person, see
``dp_query.bound_contributions``) and a train/holdout split by person make the unit of the
guarantee and of the membership-inference check a person. With k > 1 the per-example DP-SGD
guarantee covers a person only via group privacy; the host accounts for that.

The membership-inference AUC (loss of training vs holdout examples) is an empirical check that
the model does not remember who was in the training set; ~0.5 is what DP should give.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # Before pyarrow loads (see dp_query.py): mimalloc's 1 GiB arena reservation plus torch's
    # libraries would exceed the sandbox's address-space limit.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import numpy as np
import pandas as pd

if __package__:
    from . import dp_query as common
else:  # run as a script: `python -I` puts neither the cwd nor the script's directory on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dp_query as common  # type: ignore[no-redef]  # the host mounts dp_query.py next to this file

PlanError = common.PlanError
Refused = common.Refused

__all__ = ["build_model", "encode", "main", "train"]

MIA_ROWS = 2000
INPUT_ENCODING = "numeric scaled to [0,1] by bounds; categorical one-hot"


# --------------------------------------------------------------------------- encoding


def _label_codes(plan: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Each row's index into ``label.values`` (-1: not listed, the row is dropped)."""
    label = plan["label"]
    if label["column"] not in frame.columns:
        raise PlanError(f"the label column {label['column']!r} is not in the table")
    if len(label.get("values") or []) < 2:
        raise Refused("the label needs at least two declared values")
    lookup = {str(v): i for i, v in enumerate(label["values"])}
    codes = common.group_strings(frame[label["column"]]).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(codes), -1, codes).astype(np.int64)


def _features(plan: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The design matrix: bounded numerics scaled to [0, 1] (NaN -> 0.5), one-hot categoricals."""
    blocks: list[np.ndarray] = []
    for feature in plan["features"]:
        column = feature["column"]
        if column not in frame.columns:
            raise PlanError(f"the feature column {column!r} is not in the table")
        if feature.get("type") == "numeric":
            bounds = feature.get("bounds")
            if not isinstance(bounds, list | tuple) or len(bounds) != 2 or not float(bounds[0]) < float(bounds[1]):
                raise Refused(f"the numeric feature {column!r} needs bounds lower < upper from the catalog")
            lo, hi = float(bounds[0]), float(bounds[1])
            scaled = (np.clip(common.numeric_values(frame[column]), lo, hi) - lo) / (hi - lo)
            blocks.append(np.where(np.isnan(scaled), 0.5, scaled)[:, None])
        elif feature.get("type") == "categorical":
            values = list(feature.get("values") or [])
            if not values:
                raise Refused(f"the categorical feature {column!r} needs the catalog's values")
            lookup = {str(v): i for i, v in enumerate(values)}
            codes = common.group_strings(frame[column]).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
            onehot = np.zeros((len(frame), len(values)))
            listed = ~np.isnan(codes)
            onehot[np.flatnonzero(listed), codes[listed].astype(np.int64)] = 1.0
            blocks.append(onehot)
        else:
            raise PlanError(f"feature {column!r}: type must be numeric or categorical")
    if not blocks:
        raise PlanError("the plan has no features")
    return np.hstack(blocks).astype(np.float32)


def encode(plan: dict[str, Any], frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(X float32 [n, d], y int64 [n])`` for the rows whose label is listed (no contribution bounding here)."""
    codes = _label_codes(plan, frame)
    kept = frame[codes >= 0]
    return _features(plan, kept), codes[codes >= 0]


# --------------------------------------------------------------------------- model


def build_model(plan: dict[str, Any], n_inputs: int) -> Any:
    """logistic: Linear(d, classes); mlp: Linear(d, hidden) → ReLU → Linear(hidden, classes)."""
    from torch import nn

    classes = len(plan["label"]["values"])
    if plan.get("model", "logistic") == "logistic":
        return nn.Linear(n_inputs, classes)
    if plan["model"] == "mlp":
        hidden = int(plan.get("hidden", 32))
        return nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))
    raise PlanError("model must be logistic or mlp")


def _architecture(model: Any) -> str:
    from torch import nn

    parts = [model] if isinstance(model, nn.Linear) else list(model)
    return " → ".join(
        f"Linear({p.in_features}, {p.out_features})" if isinstance(p, nn.Linear) else type(p).__name__ for p in parts
    )


def _split_persons(keys: pd.Series, holdout: float, rng: np.random.Generator) -> np.ndarray:
    """True for rows of persons drawn into the holdout (all of a person's rows go to one side)."""
    codes, uniques = pd.factorize(keys)
    persons = len(uniques)
    n_holdout = round(holdout * persons)
    in_holdout = np.zeros(persons, dtype=bool)
    in_holdout[rng.permutation(persons)[:n_holdout]] = True
    return np.asarray(in_holdout[codes])


def _dp_parameters(plan: dict[str, Any]) -> tuple[float, int, float, float]:
    """``(q, steps, σ, C)`` from the plan, refused unless each is in range."""
    q = float(plan["sample_rate"])
    steps = int(plan["steps"])
    sigma = float(plan["noise_multiplier"])
    clip = float(plan["max_grad_norm"])
    if not (0 < q <= 1 and steps > 0 and sigma > 0 and clip > 0):
        raise Refused("the plan's sample_rate, steps, noise_multiplier and max_grad_norm must be positive (q ≤ 1)")
    return q, steps, sigma, clip


def poisson_batch(n: int, q: float) -> Any:
    """The indices of a Poisson sample of ``n`` examples: each one in with probability ``q``, independently.

    Drawn as the gaps between chosen indices, which are i.i.d. Geometric(q) (the waiting times of
    n coin flips: the same law as ``torch.rand(n) < q``), so a step costs ~q·n random numbers
    instead of n: at q = 256/160,000 the coin flips alone took longer than a plain SGD step.
    ``G = ⌊log(1 - U) / log(1 - q)⌋ + 1`` for U uniform on [0, 1) is Geometric(q) on {1, 2, ...}.
    """
    import torch

    if q >= 1.0:
        return torch.arange(n)
    log_keep = math.log1p(-q)
    expected = n * q
    block = int(expected + 6 * math.sqrt(expected) + 16)
    chosen = []
    position = -1.0
    while True:
        gaps = torch.floor(torch.log1p(-torch.rand(block, dtype=torch.float64)) / log_keep) + 1
        positions = position + torch.cumsum(gaps, 0)
        inside = positions[positions < n]
        chosen.append(inside.long())
        if len(inside) < block:
            return torch.cat(chosen)
        position = float(positions[-1])


def linear_layers(model: Any) -> list[Any]:
    """The model as its Linear and ReLU layers in order; anything else is refused (fail closed):
    the per-example norms below are exact for exactly these layers."""
    from torch import nn

    layers = [model] if isinstance(model, nn.Linear) else list(model) if isinstance(model, nn.Sequential) else []
    if not layers or not all(isinstance(layer, nn.Linear | nn.ReLU) for layer in layers):
        raise Refused("DP-SGD here trains Linear and ReLU layers only")
    return layers


def dp_sgd_step(layers: list[Any], x: Any, y: Any, sigma: float, clip: float, expected: int, lr: float) -> None:
    """One DP-SGD step with per-example clipping, exactly what opacus' DPOptimizer does, without its hooks.

    Why by hand: on the demo's models (a few hundred weights, batches of ~256) opacus' per-step
    Python (hooks, per-sample gradient tensors, per-parameter clipping) cost 5-11x a plain step,
    whatever its grad_sample_mode (bench/dp.py). For a Linear layer the per-example gradient is
    ``δᵢ aᵢᵀ`` (δᵢ: the loss gradient at the layer's output, aᵢ: its input), so its norm is
    ``‖δᵢ‖·‖aᵢ‖`` (and ``‖δᵢ‖`` for the bias) and the clipped sum is one matrix product
    ``(c ⊙ δ)ᵀ a``: "ghost clipping" (Li et al. 2022; opacus' grad_sample_mode="ghost"). The rest
    is opacus' arithmetic to the letter: per-example norm over all parameters, clip factor
    ``min(1, C / (‖g‖ + 1e-6))``, noise ``N(0, (σC)²)`` per parameter in ``parameters()`` order from
    torch's generator, sum plus noise divided by the expected batch size, then SGD. A test holds
    it to opacus' own step on the same batch and seed. Loss: cross-entropy summed over the batch.
    """
    import torch
    from torch import nn

    with torch.no_grad():
        inputs: list[Any] = []
        masks: list[Any] = []
        h = x
        for layer in layers:
            if isinstance(layer, nn.Linear):
                inputs.append(h)
                h = torch.nn.functional.linear(h, layer.weight, layer.bias)
            else:
                masks.append(h > 0)
                h = torch.relu(h)
        delta = torch.softmax(h, dim=1)
        delta[torch.arange(len(y)), y] -= 1.0  # d(Σ cross-entropy)/d(logits), one row per example
        deltas: list[Any] = []
        for layer in reversed(layers):
            if isinstance(layer, nn.Linear):
                deltas.append(delta)
                delta = delta @ layer.weight
            else:
                delta = delta * masks.pop()
        deltas.reverse()
        linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        squared = torch.zeros(len(y), dtype=x.dtype)
        for layer, a, d in zip(linears, inputs, deltas, strict=True):
            d2 = (d * d).sum(dim=1)
            squared += d2 * (a * a).sum(dim=1) + (d2 if layer.bias is not None else 0.0)
        factor = (clip / (squared.sqrt() + 1e-6)).clamp(max=1.0)
        for layer, a, d in zip(linears, inputs, deltas, strict=True):
            scaled = d * factor[:, None]
            sums = [(layer.weight, scaled.T @ a)]
            if layer.bias is not None:
                sums.append((layer.bias, scaled.sum(dim=0)))
            for parameter, total in sums:
                noisy = total + torch.normal(mean=0.0, std=sigma * clip, size=total.shape)
                parameter.add_(noisy / expected, alpha=-lr)


def _train_private(model: Any, x: Any, y: Any, plan: dict[str, Any]) -> None:
    """DP-SGD: Poisson sampling at exactly q, exactly ``steps`` steps, per-example clipping, Gaussian noise σ·C."""
    q, steps, sigma, clip = _dp_parameters(plan)
    layers = linear_layers(model)
    n = len(y)
    expected = max(1, round(q * n))
    lr = float(plan["learning_rate"])
    model.train()
    for _ in range(steps):
        batch = poisson_batch(n, q)
        dp_sgd_step(layers, x[batch], y[batch], sigma, clip, expected, lr)


def _train_private_opacus(model: Any, x: Any, y: Any, plan: dict[str, Any]) -> None:
    """The same DP-SGD through opacus' hooks (issue 8's loop): the benchmark's baseline and the tests' yardstick."""
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    q, steps, sigma, clip = _dp_parameters(plan)
    n = len(y)
    # Per-example losses are summed (loss_reduction="sum" in the module, so per-sample gradients
    # are those of single examples, and an empty Poisson batch is a zero sum rather than a NaN
    # mean); the optimizer divides clipped sum + noise by the expected batch size q·n.
    module = GradSampleModule(model, loss_reduction="sum")
    optimizer = DPOptimizer(
        torch.optim.SGD(module.parameters(), lr=float(plan["learning_rate"])),
        noise_multiplier=sigma,
        max_grad_norm=clip,
        expected_batch_size=max(1, round(q * n)),
        loss_reduction="mean",
        # secure_mode=True needs torchcsprng, which is not installed: the noise comes from torch's
        # generator, seeded from the OS CSPRNG in train(). Sampling uses the same generator.
        secure_mode=False,
    )
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    module.train()
    with warnings.catch_warnings():
        # Inputs never require gradients here; torch warns that the full backward hooks opacus
        # uses for per-example gradients then fire on the module outputs, which is what it needs.
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        for _ in range(steps):
            batch = torch.nonzero(torch.rand(n) < q, as_tuple=False).reshape(-1)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(module(x[batch]), y[batch]).backward()
            optimizer.step()
    module.remove_hooks()
    optimizer.zero_grad(set_to_none=True)


def _train_plain(model: Any, x: Any, y: Any, plan: dict[str, Any]) -> None:
    """The same model without DP: shuffled mini-batches of batch_size, the plan's epochs, plain SGD."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=float(plan["learning_rate"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    batch_size = max(1, int(plan["batch_size"]))
    model.train()
    for _ in range(int(plan["epochs"])):
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()


def _spent_epsilon(plan: dict[str, Any]) -> float:
    """ε spent, from a fresh accountant of the plan's kind fed the history actually run."""
    from opacus.accountants import create_accountant

    accountant = create_accountant(plan.get("accountant", "rdp"))
    accountant.history = [(float(plan["noise_multiplier"]), float(plan["sample_rate"]), int(plan["steps"]))]
    return float(accountant.get_epsilon(delta=float(plan["delta"])))


def _evaluate(
    model: Any, x_train: Any, y_train: Any, x_hold: Any, y_hold: Any, rng: np.random.Generator
) -> tuple[float | None, float | None]:
    """Holdout accuracy and the loss-threshold membership-inference AUC (members = training rows)."""
    import torch
    from sklearn.metrics import roc_auc_score

    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_hold).argmax(dim=1) == y_hold).float().mean()) if len(y_hold) else None
        if len(y_hold) == 0 or len(y_train) == 0:
            return accuracy, None
        members = torch.from_numpy(rng.permutation(len(y_train))[:MIA_ROWS])
        others = torch.from_numpy(rng.permutation(len(y_hold))[:MIA_ROWS])
        loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
        member_loss = loss_fn(model(x_train[members]), y_train[members]).numpy()
        other_loss = loss_fn(model(x_hold[others]), y_hold[others]).numpy()
    truth = np.concatenate([np.ones(len(member_loss)), np.zeros(len(other_loss))])
    auc = float(roc_auc_score(truth, -np.concatenate([member_loss, other_loss])))
    return accuracy, auc


def _majority_share(labels: Any) -> float | None:
    """Share of the most common label among ``labels`` (a 1-D integer tensor), to four decimals."""
    import torch

    if len(labels) == 0:
        return None
    return round(float(torch.bincount(labels).max()) / len(labels), 4)


def train(
    plan: dict[str, Any], frame: pd.DataFrame, *, private: bool = True, opacus_hooks: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state_dict, record)``: contribution bounding, person split, (DP-)SGD, evaluation.

    ``private=False`` trains the same model with plain SGD (for the benchmark's comparison); its
    record has ``"private": false`` and no ε. ``opacus_hooks=True`` runs DP-SGD through opacus'
    GradSampleModule and DPOptimizer instead of :func:`dp_sgd_step` (the benchmark's old mode).
    """
    import torch

    person_key = plan.get("person_key")
    if not person_key:
        raise Refused("the plan names no person key (the protected unit is a person)")
    k = int(plan.get("max_rows_per_person", 1))
    holdout = float(plan.get("holdout", 0.2))
    if not 0.0 <= holdout < 1.0:
        raise PlanError("holdout must be within [0, 1)")
    rng = common.secure_generator()
    torch.manual_seed(secrets.randbits(63))

    bounded = common.bound_contributions(frame, person_key, k, rng)
    bounded = bounded[_label_codes(plan, bounded) >= 0]
    in_holdout = _split_persons(bounded[person_key], holdout, rng)
    x_all, y_all = encode(plan, bounded)
    x = torch.from_numpy(x_all)
    y = torch.from_numpy(y_all)
    hold = torch.from_numpy(in_holdout)
    x_train, y_train, x_hold, y_hold = x[~hold], y[~hold], x[hold], y[hold]
    if len(y_train) == 0:
        raise PlanError("no training rows after contribution bounding and label filtering")

    model = build_model(plan, x.shape[1])
    if private:
        (_train_private_opacus if opacus_hooks else _train_private)(model, x_train, y_train, plan)
    else:
        _train_plain(model, x_train, y_train, plan)
    accuracy, auc = _evaluate(model, x_train, y_train, x_hold, y_hold, rng)
    record: dict[str, Any] = {
        "kind": "dp-train",
        "dataset": plan.get("dataset"),
        "model": plan.get("model", "logistic"),
        "architecture": _architecture(model),
        "features": plan["features"],
        "label": plan["label"],
        "input_encoding": INPUT_ENCODING,
        "epsilon": _spent_epsilon(plan) if private else None,
        "delta": float(plan["delta"]) if private else None,
        "noise_multiplier": float(plan["noise_multiplier"]) if private else None,
        "sample_rate": float(plan["sample_rate"]) if private else None,
        "steps": int(plan["steps"]) if private else None,
        "accountant": plan.get("accountant", "rdp") if private else None,
        "max_grad_norm": float(plan["max_grad_norm"]) if private else None,
        "max_rows_per_person": k,
        "train_rows": len(y_train),
        "holdout_rows": len(y_hold),
        # Four decimals: the metrics are estimates, and fewer digits leak less about the held-out rows.
        "holdout_accuracy": None if accuracy is None else round(float(accuracy), 4),
        # The baseline that accuracy must beat to mean anything: always answering the most common label.
        "holdout_majority_share": _majority_share(y_hold),
        "mia_auc": None if auc is None else round(float(auc), 4),
    }
    if not private:
        record["private"] = False
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return state, record


# --------------------------------------------------------------------------- program


def _train_body(plan: dict[str, Any], out_dir: Path) -> str:
    import torch

    for key in ("features", "label", "noise_multiplier", "sample_rate", "steps", "delta", "max_grad_norm"):
        if plan.get(key) is None:
            raise PlanError(f"the plan has no {key}")
    columns = [plan.get("person_key"), plan["label"]["column"], *(f["column"] for f in plan["features"])]
    frame = common.read_table(plan, [c for c in columns if c])
    state, record = train(plan, frame, private=True)
    if not math.isfinite(record["epsilon"]) or record["epsilon"] > float(plan["epsilon"]) * 1.0001 + 1e-9:
        raise Refused("the accountant's ε exceeds the charged budget; nothing is released")
    torch.save(state, out_dir / "model.pt")
    common.write_json(out_dir / "training.json", record)
    return f"dp-train {record['model']} trained; see its certificate"


def main(argv: Sequence[str] | None = None) -> int:
    """``dp_train.py [PLAN [OUT_DIR]]``: writes OUT_DIR/model.pt and OUT_DIR/training.json."""
    return common.run_program(argv, "dp-train", _train_body)


if __name__ == "__main__":
    sys.exit(main())
