"""dp-train's own DP-SGD step (issue 21) against opacus: the same update, the same sampling law, the same ε.

The step is written by hand for speed (dp_train.dp_sgd_step); opacus' GradSampleModule and
DPOptimizer stay the yardstick: given the same batch and the same torch seed (so the same noise
draws), both must move every parameter to the same value, with clipping active and not. The
Poisson sampler is checked for its law, and the accounting for being untouched: the ε a record
states is the one a fresh opacus accountant gives for (σ, q, steps, δ), whichever loop ran, and
the loop runs exactly ``steps`` steps.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

from dp.programs import dp_train
from tests.test_dp_programs import _train_plan


def _models(kind: str, inputs: int) -> nn.Module:
    if kind == "logistic":
        return nn.Linear(inputs, 3)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, 3))


def _opacus_step(model: nn.Module, x: Any, y: Any, sigma: float, clip: float, expected: int, lr: float) -> None:
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    module = GradSampleModule(model, loss_reduction="sum")
    optimizer = DPOptimizer(
        torch.optim.SGD(module.parameters(), lr=lr),
        noise_multiplier=sigma,
        max_grad_norm=clip,
        expected_batch_size=expected,
        loss_reduction="mean",
        secure_mode=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.zero_grad(set_to_none=True)
        nn.CrossEntropyLoss(reduction="sum")(module(x), y).backward()
        optimizer.step()
    module.remove_hooks()


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
@pytest.mark.parametrize(("clip", "sigma"), [(0.05, 0.0), (100.0, 0.0), (0.5, 1.3), (1.0, 0.7)])
def test_the_step_is_opacus_step(kind: str, clip: float, sigma: float) -> None:
    """Same batch, same seed: the same parameters after the step, whether clipping bites (C = 0.05) or not."""
    torch.manual_seed(11)
    x = torch.rand(200, 5) * 3
    y = torch.randint(0, 3, (200,))
    ours = _models(kind, 5)
    theirs = copy.deepcopy(ours)
    torch.manual_seed(5)
    dp_train.dp_sgd_step(dp_train.linear_layers(ours), x, y, sigma, clip, 180, 0.7)
    torch.manual_seed(5)
    _opacus_step(theirs, x, y, sigma, clip, 180, 0.7)
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), name


def test_an_empty_batch_moves_by_noise_alone() -> None:
    model = nn.Linear(2, 3)
    before = copy.deepcopy(model.state_dict())
    torch.manual_seed(3)
    dp_train.dp_sgd_step([model], torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 1.0, 1.0, 10, 1.0)
    torch.manual_seed(3)
    noise_w = torch.normal(mean=0.0, std=1.0, size=(3, 2))
    assert torch.allclose(model.weight, before["weight"] - noise_w / 10)


def test_other_layers_are_refused() -> None:
    """The per-example norms are exact for Linear and ReLU only: anything else is refused, not approximated."""
    with pytest.raises(dp_train.Refused):
        dp_train.linear_layers(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)))
    with pytest.raises(dp_train.Refused):
        dp_train.linear_layers(nn.Conv1d(1, 1, 2))


def test_poisson_batch_has_the_law_of_independent_coin_flips() -> None:
    """Each index in with probability q, independently: mean and variance of the size, every index's rate."""
    torch.manual_seed(0)
    n, q, draws = 2000, 0.01, 4000
    counts = torch.zeros(n)
    sizes = []
    for _ in range(draws):
        batch = dp_train.poisson_batch(n, q)
        assert batch.dtype == torch.long
        assert bool((batch[1:] > batch[:-1]).all()) and (len(batch) == 0 or (int(batch[0]) >= 0 and int(batch[-1]) < n))
        counts[batch] += 1
        sizes.append(len(batch))
    mean = sum(sizes) / draws
    variance = sum((s - mean) ** 2 for s in sizes) / (draws - 1)
    assert abs(mean - n * q) < 4 * math.sqrt(n * q * (1 - q) / draws)
    assert 0.85 < variance / (n * q * (1 - q)) < 1.15
    rate = counts / draws  # each index: Binomial(draws, q) / draws
    assert abs(float(rate.mean()) - q) < 0.001
    assert float(((rate - q).abs() > 6 * math.sqrt(q * (1 - q) / draws)).sum()) == 0
    # The first and last index are reachable (no off-by-one at either end).
    assert counts[0] > 0 and counts[-1] > 0
    assert dp_train.poisson_batch(7, 1.0).tolist() == list(range(7))


def test_poisson_batch_spans_more_than_one_block() -> None:
    """At q near 1 the first block of gaps does not reach n: the sampler keeps drawing."""
    torch.manual_seed(1)
    sizes = [len(dp_train.poisson_batch(5000, 0.99)) for _ in range(50)]
    assert all(4900 < size <= 5000 for size in sizes)


@pytest.fixture(scope="module")
def small_copy() -> pd.DataFrame:
    """social_insurance in the desensitized copy's form, as test_dp_programs builds it, smaller."""
    from samples import synthetic

    table = synthetic.generate_all(3000)["social_insurance"]
    base = table["月缴费基数"].to_numpy() // 1000 * 1000
    return pd.DataFrame(
        {
            "身份证号": table["身份证号"],
            "出生日期": table["出生日期"].dt.year.astype("Int64"),
            "月缴费基数": [f"{b}-{b + 999}" for b in base],
            "参保状态": table["参保状态"],
        }
    )


def test_the_accounting_is_unchanged(small_copy: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record's ε is a fresh opacus accountant's for (σ, q, steps, δ), whichever loop trained, and the
    loop ran exactly ``steps`` steps with the plan's σ and C."""
    from opacus.accountants import RDPAccountant

    plan = _train_plan(len(small_copy), epochs=1)
    expected = RDPAccountant()
    expected.history = [(plan["noise_multiplier"], plan["sample_rate"], plan["steps"])]
    calls: list[tuple[float, float]] = []
    original = dp_train.dp_sgd_step

    def counted(layers: Any, x: Any, y: Any, sigma: float, clip: float, expected_size: int, lr: float) -> None:
        calls.append((sigma, clip))
        original(layers, x, y, sigma, clip, expected_size, lr)

    monkeypatch.setattr(dp_train, "dp_sgd_step", counted)
    _, record = dp_train.train(plan, small_copy)
    _, old = dp_train.train(plan, small_copy, opacus_hooks=True)
    assert record["epsilon"] == old["epsilon"] == expected.get_epsilon(delta=plan["delta"])
    assert record["epsilon"] <= plan["epsilon"]
    assert len(calls) == plan["steps"] == record["steps"]
    assert set(calls) == {(plan["noise_multiplier"], plan["max_grad_norm"])}
    for key in ("noise_multiplier", "sample_rate", "steps", "delta", "max_grad_norm"):
        assert record[key] == old[key] == plan[key]
