"""The root of ``keyong`` builds a command group only when it runs or its help is shown (issue 21).

Typer turns the whole tree into click commands before it parses anything: every command module
imported, every signature resolved, for the one command a person runs. Here the root lists its groups
(and the commands that live in other modules) by name and where they are defined; ``keyong job show 7``
imports ``app.cli.job`` and builds the ``job`` group alone. What is built is exactly what
``Typer.add_typer`` and ``Typer.command`` would have built (the same typer functions, the root's
settings), so help, parsing and exit codes are unchanged. ``keyong --help`` lists each by the one line
of help it shows there, kept beside its name (a test holds it equal to the built command's), and builds none.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info

from app.cli.coercion import defer_coercion


@dataclass(frozen=True)
class Entry:
    """One name of the root: a group (a ``typer.Typer``) or a command (a function) of ``module``.

    ``help`` is the line ``keyong --help`` shows for it; ``also`` are modules imported first because they
    add commands to this group (``app.cli.egress`` adds its own to ``dataset`` and ``release``); ``then``
    adds the root's own commands to it, once."""

    name: str
    module: str
    attribute: str
    help: str
    group: bool = True
    also: tuple[str, ...] = ()
    then: Callable[[typer.Typer], None] | None = field(default=None, compare=False)

    def load(self) -> Any:
        for extra in self.also:
            importlib.import_module(extra)
        value = getattr(importlib.import_module(self.module), self.attribute)
        if self.then is not None:
            self.then(value)
        return value


def group(name: str, module: str, attribute: str, *, help: str, **options: Any) -> Entry:
    return Entry(name, module, attribute, help, group=True, **options)


def command(name: str, module: str, attribute: str, *, help: str) -> Entry:
    return Entry(name, module, attribute, help, group=False)


class LazyCommands(MutableMapping[str, Any]):
    """The root's commands by name, each built on first look-up; names and order known without building."""

    def __init__(self, built: Mapping[str, Any], entries: Sequence[Entry], build: Callable[[Entry], Any]) -> None:
        self.built = dict(built)
        self.entries = {entry.name: entry for entry in entries}
        self.order = [*self.built, *(name for name in self.entries if name not in self.built)]
        self.build = build
        self.listing = False  # while the root's help is drawn: an unbuilt entry is its name and help line

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            entry = self.entries.get(name)
            if entry is None:
                raise KeyError(name)
            if self.listing:
                return TyperCommand(name=name, help=entry.help)
            self.built[name] = self.build(entry)
        return self.built[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self.order:
            self.order.append(name)
        self.built[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self.order:
            raise KeyError(name)
        self.order.remove(name)
        self.built.pop(name, None)
        self.entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.order

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.order))

    def __len__(self) -> int:
        return len(self.order)


class LazyGroup(TyperGroup):
    """A typer group whose ``entries`` are built when first asked for (subclass it and set both class
    attributes: ``entries`` and ``source``, the ``typer.Typer`` whose settings the built ones take)."""

    entries: ClassVar[tuple[Entry, ...]] = ()
    source: ClassVar[typer.Typer | None] = None

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        defer_coercion([self, *self.commands.values()])  # the root's --home is processed on every run
        self.commands: MutableMapping[str, Any] = LazyCommands(self.commands, self.entries, self._build)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # names only: TyperGroup's own reads every command's items

    def format_help(self, ctx: Any, formatter: Any) -> None:
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            return super().format_help(ctx, formatter)
        commands.listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            commands.listing = False

    def _build(self, entry: Entry) -> Any:
        source = self.source if self.source is not None else typer.Typer()
        holder = typer.Typer()  # records the entry as add_typer / command would on the root
        value = entry.load()
        built: Any
        if entry.group:
            holder.add_typer(value, name=entry.name)
            built = get_group_from_info(
                holder.registered_groups[0],
                pretty_exceptions_short=source.pretty_exceptions_short,
                rich_markup_mode=source.rich_markup_mode,
                suggest_commands=source.suggest_commands,
            )
        else:
            holder.command(entry.name)(value)
            built = get_command_from_info(
                holder.registered_commands[0],
                pretty_exceptions_short=source.pretty_exceptions_short,
                rich_markup_mode=source.rich_markup_mode,
            )
        defer_coercion([built])  # no pydantic for an absent option or a plain number (app.cli.coercion)
        return built
