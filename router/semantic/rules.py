"""Rule trees over signal facts: parsed from free-form YAML with path errors, then evaluated.

    {signal: domain:math}                      a fact: the signal fired with that value
    {signal: code_words}                       a fact: the signal fired
    {decision: math}                           another decision's rules hold
    {all: [...]} / {any: [...]} / {not: {...}} nested freely

Parsing checks names against the signals that exist (and the values each declares)
and leaves decision references to the loader, which also refuses cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from triskel.router.semantic.errors import SemanticConfigError

# Deeper trees are a mistake, and recursion must stay bounded.
MAX_DEPTH = 16
_KEYS = ("signal", "decision", "all", "any", "not")


@dataclass(frozen=True, slots=True)
class Fact:
    name: str  # "domain:math" or "code_words"

    def holds(self, facts: frozenset[str], decided: Callable[[str], bool]) -> bool:
        return self.name in facts


@dataclass(frozen=True, slots=True)
class DecisionRef:
    decision: str

    def holds(self, facts: frozenset[str], decided: Callable[[str], bool]) -> bool:
        return decided(self.decision)


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Rule, ...]

    def holds(self, facts: frozenset[str], decided: Callable[[str], bool]) -> bool:
        return all(child.holds(facts, decided) for child in self.children)


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Rule, ...]

    def holds(self, facts: frozenset[str], decided: Callable[[str], bool]) -> bool:
        return any(child.holds(facts, decided) for child in self.children)


@dataclass(frozen=True, slots=True)
class NotOf:
    child: Rule

    def holds(self, facts: frozenset[str], decided: Callable[[str], bool]) -> bool:
        return not self.child.holds(facts, decided)


Rule = Fact | DecisionRef | AllOf | AnyOf | NotOf


def parse_rule(raw: object, path: str, signal_outputs: Mapping[str, frozenset[str]]) -> Rule:
    """`raw` as a rule; `signal_outputs` maps each signal name to the values it may report."""
    return _parse(raw, path, signal_outputs, 0)


def referenced_decisions(rule: Rule) -> list[str]:
    """Every decision the rule names, in order."""
    if isinstance(rule, DecisionRef):
        return [rule.decision]
    if isinstance(rule, AllOf | AnyOf):
        return [name for child in rule.children for name in referenced_decisions(child)]
    if isinstance(rule, NotOf):
        return referenced_decisions(rule.child)
    return []


def _parse(raw: object, path: str, outputs: Mapping[str, frozenset[str]], depth: int) -> Rule:
    if depth > MAX_DEPTH:
        raise SemanticConfigError(path, f"rules nest deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SemanticConfigError(
            path, f"a rule is an object with exactly one of {', '.join(_KEYS)}; got {_shown(raw)}"
        )
    ((key, value),) = raw.items()
    if key == "signal":
        return _fact(value, f"{path}.signal", outputs)
    if key == "decision":
        if not isinstance(value, str) or not value:
            raise SemanticConfigError(f"{path}.decision", "must name a decision")
        return DecisionRef(value)
    if key in ("all", "any"):
        return _group(key, value, f"{path}.{key}", outputs, depth)
    if key == "not":
        return NotOf(_parse(value, f"{path}.not", outputs, depth + 1))
    raise SemanticConfigError(f"{path}.{key}", f"unknown rule kind; use one of {', '.join(_KEYS)}")


def _group(
    key: str, value: object, path: str, outputs: Mapping[str, frozenset[str]], depth: int
) -> Rule:
    if not isinstance(value, list) or not value:
        raise SemanticConfigError(path, "must be a non-empty list of rules")
    children = tuple(
        _parse(item, f"{path}[{index}]", outputs, depth + 1) for index, item in enumerate(value)
    )
    return AllOf(children) if key == "all" else AnyOf(children)


def _fact(value: object, path: str, outputs: Mapping[str, frozenset[str]]) -> Fact:
    if not isinstance(value, str) or not value:
        raise SemanticConfigError(path, "must name a signal, as NAME or NAME:VALUE")
    name, _, wanted = value.partition(":")
    if name not in outputs:
        raise SemanticConfigError(
            path, f"unknown signal {name!r}; defined: {', '.join(sorted(outputs)) or 'none'}"
        )
    values = outputs[name]
    if wanted and wanted not in values:
        offered = ", ".join(sorted(values)) or "none (a yes/no signal)"
        raise SemanticConfigError(
            path, f"signal {name!r} never reports {wanted!r}; its values: {offered}"
        )
    return Fact(value)


def _shown(raw: object) -> str:
    if isinstance(raw, dict):
        return "an object with keys " + ", ".join(map(str, raw)) if raw else "an empty object"
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return "a list"
    return repr(raw)[:40]
