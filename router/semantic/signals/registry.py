"""Building signals by type name from YAML, each parsing its own typed parameters.

    signals:
      - type: keywords                 # which factory
        name: code_words               # what decision rules call it (defaults to the type)
        parameters: {any: [python, def]}

A bad entry fails at load, naming its path (`semantic.signals[1].parameters.any`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import Signal, SignalContext

P = TypeVar("P", bound="SignalParameters")


class SignalParameters(BaseModel):
    """Base of every signal's parameter model: camelCase in YAML, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


# (name, parameters, context, path of the entry for errors) -> Signal
Factory = Callable[[str, Mapping[str, Any], SignalContext, str], Signal]


@dataclass(frozen=True, slots=True)
class SignalType:
    type_name: str
    factory: Factory
    summary: str


def parse_parameters(model: type[P], raw: Mapping[str, Any], path: str) -> P:
    """`raw` validated against `model`; the first problem as a SemanticConfigError whose
    path ends at the field (`<path>.parameters.any[2]`)."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        issue = error.errors()[0]
        where = f"{path}.parameters" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in issue["loc"]
        )
        got = "" if issue["type"] == "missing" else f" (got {_short(issue['input'])})"
        raise SemanticConfigError(where, f"{issue['msg']}{got}") from None


class SignalRegistry:
    """Type name → factory. Built explicitly (see `default_signal_registry`), never global."""

    def __init__(self) -> None:
        self._types: dict[str, SignalType] = {}

    def register(self, type_name: str, factory: Factory, summary: str) -> None:
        if type_name in self._types:
            raise ValueError(f"signal type {type_name!r} registered twice")
        self._types[type_name] = SignalType(type_name, factory, summary)

    def types(self) -> list[SignalType]:
        return [self._types[name] for name in sorted(self._types)]

    def build(
        self,
        type_name: str,
        name: str,
        parameters: Mapping[str, Any],
        context: SignalContext,
        path: str,
    ) -> Signal:
        signal_type = self._types.get(type_name)
        if signal_type is None:
            known = ", ".join(sorted(self._types))
            raise SemanticConfigError(
                f"{path}.type", f"unknown signal type {type_name!r}; known: {known}"
            )
        return signal_type.factory(name, parameters, context, path)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
