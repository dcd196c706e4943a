"""Building plugins by type name from YAML, each parsing its own typed parameters.

    plugins:
      - type: queue-scorer            # which factory
        name: queue                   # how profiles refer to it (defaults to the type)
        parameters: {maxQueue: 64}    # parsed by the plugin's own pydantic model

A bad entry fails at load time, naming the plugin and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from triskel.router.scheduling.plugin import Plugin, PluginContext

P = TypeVar("P", bound="PluginParameters")


class PluginParameters(BaseModel):
    """Base of every plugin's parameter model: camelCase in YAML, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class PluginConfigError(ValueError):
    """A plugin entry is wrong; the message names the plugin and the field."""


Factory = Callable[[str, Mapping[str, Any], PluginContext], Plugin]


@dataclass(frozen=True, slots=True)
class PluginType:
    type_name: str
    factory: Factory
    summary: str


def parse_parameters(model: type[P], plugin_name: str, raw: Mapping[str, Any]) -> P:
    """`raw` validated against `model`; PluginConfigError naming plugin and field."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        problems = "; ".join(
            f"parameters.{'.'.join(str(p) for p in issue['loc']) or '(root)'}: {issue['msg']}"
            + ("" if issue["type"] == "missing" else f" (got {issue['input']!r})")
            for issue in error.errors()
        )
        raise PluginConfigError(f"plugin {plugin_name!r}: {problems}") from None


class PluginRegistry:
    """Type name → factory. Built explicitly (see `default_registry`), never global."""

    def __init__(self) -> None:
        self._types: dict[str, PluginType] = {}

    def register(self, type_name: str, factory: Factory, summary: str) -> None:
        if type_name in self._types:
            raise ValueError(f"plugin type {type_name!r} registered twice")
        self._types[type_name] = PluginType(type_name, factory, summary)

    def types(self) -> list[PluginType]:
        return [self._types[name] for name in sorted(self._types)]

    def build(
        self, type_name: str, name: str, parameters: Mapping[str, Any], context: PluginContext
    ) -> Plugin:
        plugin_type = self._types.get(type_name)
        if plugin_type is None:
            known = ", ".join(sorted(self._types))
            raise PluginConfigError(f"plugin {name!r}: unknown type {type_name!r}; known: {known}")
        return plugin_type.factory(name, parameters, context)
