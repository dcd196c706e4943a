"""`--help` that shows a flag as a flag: `--goodput`, never `--goodput <bool>`.

Typer's rich help prints a type for every option, flags included, so a flag reads as
if it took a value, and `--goodput true` is refused ("unexpected extra argument").
An empty metavar leaves a flag's type column blank; options that take a value keep
theirs. Every command of the app takes `cls=FlagHelpCommand`, and the app
`cls=FlagHelpGroup` (for its own `--help` and `--version`).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup, TyperOption


def without_flag_placeholders(params: list[Any]) -> list[Any]:
    """`params`, each flag given an empty metavar (unless it names one itself)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


# `Any`: typer types `ctx` and the parameters with its private click classes.
class FlagHelpCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return without_flag_placeholders(super().get_params(ctx))


class FlagHelpGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return without_flag_placeholders(super().get_params(ctx))
