"""Typer's coercion of a parameter's value, built only for a value that needs it (issue 21).

Typer 0.29 builds a parameter's coercion (``typer._coercion.build_runtime_param``) the first time the
parameter is processed, and building it imports pydantic (``typer._adapters``, a tenth of a second) whatever
the value. Click processes every parameter of every command on the way to the one invoked, the root's
``--home`` included, so ``keyong ledger verify --help`` paid for pydantic to coerce an absent ``--home``, and
``keyong job show 7`` to turn ``"7"`` into 7.

:func:`defer_coercion` gives each typer parameter of a built command a :class:`DeferredCoercion` instead.
Typer's own ``RuntimeParam.coerce`` answers an absent value (``None``, or ``()`` for a multiple one) without
it, as it always did; an integer in range (given in decimal, or a default), a string, or a path spelt as
``Path`` spells it becomes what typer's pydantic adapter would make of it (:func:`_plain`); any other value
builds typer's coercion, which then takes the parameter over: the same values, messages and checks. With a
typer that lacks these internals the parameters keep typer's own coercion, only slower to start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # typer's internals (0.29): without them typer coerces as it always did, only slower to start
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - another typer
    RuntimeParam = None  # type: ignore[assignment,misc]
    _TyperParameter = None  # type: ignore[assignment,misc]

#: A decimal integer as pydantic reads it unchanged: no sign, no leading zero, no separator, no spaces, and
#: short enough that no size check (pydantic's or a column's) is near.
_PLAIN_INT = re.compile(r"(?:0|[1-9][0-9]{0,17})")
_NOT_PLAIN = object()


def _plain(descriptor: TypeDescriptor, value: Any, param: Any, ctx: Any) -> Any:
    """What typer's pydantic adapter makes of ``value`` when that is plain to see, else ``_NOT_PLAIN``.

    ``int``: an ``int`` (a default) or a decimal string within the parameter's ``min``/``max`` (no ``clamp``),
    what ``TypeAdapter(int)`` or ``Annotated[int, Field(ge=min, le=max)]`` returns for it; out of range it is
    the adapter's to refuse. ``str``: a ``str`` as is (``_parse_cli_str`` then ``TypeAdapter(str)``). ``Path``:
    typer's own path checks (``coerce_cli_path``) given the ``Path`` pydantic makes of a string, when that
    string is the path's own spelling (so the file checked and the name in a message are the string's). A
    ``parser``, a ``clamp``, ``allow_dash`` or another type is the adapter's."""
    info = descriptor.parameter_info
    annotation = descriptor.annotation
    if info.parser is not None or type(value) not in (str, int):
        return _NOT_PLAIN
    if annotation is str and type(value) is str:
        return value
    if annotation is Path and info.path_type is None and not info.allow_dash and type(value) is str and value:
        path = Path(value)
        if str(path) == value:
            return coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)
        return _NOT_PLAIN
    if annotation is not int or info.clamp:
        return _NOT_PLAIN
    if type(value) is int:
        number = value
    elif _PLAIN_INT.fullmatch(value):
        number = int(value)
    else:
        return _NOT_PLAIN
    if (info.min is None or number >= info.min) and (info.max is None or number <= info.max):
        return number
    return _NOT_PLAIN


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class DeferredCoercion(RuntimeParam):
        """A parameter's coercion until a value needs typer's own: then built, kept on the parameter, used."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = _plain(self.descriptor, value, param, ctx)
            if plain is not _NOT_PLAIN:
                return plain
            built = build_runtime_param(self.descriptor)
            param._runtime_param = built  # the next value goes straight to typer's coercion
            return built._coerce_value(value, param=param, ctx=ctx)


def defer_coercion(commands: Iterable[Any]) -> None:
    """Give the typer parameters of ``commands`` and of their sub-commands (built ones only: a lazy group's
    mapping is not walked), their ``--help`` included, a deferred coercion."""
    if RuntimeParam is None:  # pragma: no cover - another typer
        return
    for command in commands:
        for param in getattr(command, "params", ()):
            _defer(param)
        if hasattr(command, "get_help_option") and "get_help_option" not in vars(command):
            command.get_help_option = _deferring_help_option(command.get_help_option)
        subcommands = getattr(command, "commands", None)
        if isinstance(subcommands, dict):
            defer_coercion(subcommands.values())


def _defer(param: Any) -> None:
    if isinstance(param, _TyperParameter) and getattr(param, "_runtime_param", False) is None:
        descriptor = param.type_descriptor
        param._runtime_param = DeferredCoercion(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, descriptor=descriptor
        )


def _deferring_help_option(made: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The command's ``get_help_option``, whose option (made on first use, then kept) defers its coercion: an
    absent ``--help`` is processed on every command on the way to the one invoked."""

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            _defer(option)
        return option

    return get_help_option
