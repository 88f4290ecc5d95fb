"""``keyong budget show|raise``: the privacy budgets of operators' licences (issue 8).

The local CLI is the host administrator's tool; raising a budget acts as the agency and needs a
reason, which goes to the ledger with the old and new totals.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.conventions import HomeOption, JsonOption, Output, open_instance, refusing
from core import Actor

budget_cli = typer.Typer(help="Privacy budgets (ε, δ) per licence and dataset.", no_args_is_help=True)


@budget_cli.command("show")
@refusing
def budget_show(
    operator: Annotated[str, typer.Argument(help="The operator.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every budget of the operator's licences: total, spent and remaining ε and δ."""
    with open_instance(home, sweep=False) as instance:
        items = [b.as_json() for b in instance.registry.budgets.show(operator, viewer=Actor.host())]

    def render(console: Console) -> None:
        table = Table(title=f"Privacy budgets of {operator}")
        for column in ("licence", "state", "dataset", "ε spent / budget", "ε remaining", "δ spent / budget"):
            table.add_column(column)
        for b in items:
            table.add_row(
                str(b["licence"]),
                str(b["licence_state"]),
                str(b["dataset"]),
                f"{b['epsilon_spent']:g} / {b['epsilon_budget']:g}",
                f"{b['epsilon_remaining']:g}",
                f"{b['delta_spent']:g} / {b['delta_budget']:g}",
            )
        console.print(table)

    Output(json_out).result({"operator": operator, "budgets": items}, render)


@budget_cli.command("raise")
@refusing
def budget_raise(
    licence: Annotated[int, typer.Option("--licence", help="The licence.")],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset of the licence.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes to the ledger).")],
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="The new total ε.")] = None,
    delta: Annotated[float | None, typer.Option("--delta", help="The new total δ.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Raise a licence's budget for one dataset, as the agency."""
    with open_instance(home) as instance:
        item = instance.registry.budgets.raise_budget(
            licence, dataset, epsilon=epsilon, delta=delta, reason=reason, by=Actor.host()
        ).as_json()
    Output(json_out).result(
        item,
        lambda c: c.print(
            f"Licence {licence}, {dataset}: ε budget {item['epsilon_budget']:g}, δ budget {item['delta_budget']:g}"
        ),
    )
