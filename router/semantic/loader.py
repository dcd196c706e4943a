"""`semantic:` configuration → a `SemanticPolicy`, refusing any fault by its path.

The router (at start and on every reload) and the operator (judging a RoutingPolicy)
call the same loader, so a policy the operator accepts is one the router runs.

    semantic.signals[1].type: unknown signal type 'keywordz'; known: ...
    semantic.decisions[2].rules.any[1].signal: unknown signal 'mathh'; defined: ...
    semantic.decisions[0].model: unknown model 'gpt-9'; served: llama-3.1-8b, qwen2.5-32b
    semantic.decisions[3].rules: decisions refer to each other in a cycle: a → b → a
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from triskel.common.semantic_api import Action, SemanticSpec
from triskel.common.validation_errors import issue_message
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.policy import CompiledDecision, RouteAction, SemanticPolicy
from triskel.router.semantic.rules import parse_rule, referenced_decisions
from triskel.router.semantic.signals.base import Signal, SignalContext
from triskel.router.semantic.signals.registry import SignalRegistry


@dataclass(frozen=True, slots=True)
class Targets:
    """What decisions may send to. `models` None: not checked (nothing known yet)."""

    models: Collection[str] | None = None
    # ServingGraph name → its model.
    graphs: Mapping[str, str] = field(default_factory=dict)


def parse_semantic_spec(raw: object, path: str = "semantic") -> SemanticSpec:
    """The section as its model; the first fault as a SemanticConfigError with its path."""
    try:
        return SemanticSpec.model_validate(raw)
    except ValidationError as error:
        raise config_error(error, path) from None


def config_error(error: ValidationError, path: str) -> SemanticConfigError:
    issue = error.errors()[0]
    where = path + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in issue["loc"]
    )
    return SemanticConfigError(where, issue_message(issue))


def load_semantic_policy(
    spec: SemanticSpec,
    registry: SignalRegistry,
    context: SignalContext,
    targets: Targets | None = None,
    path: str = "semantic",
) -> SemanticPolicy:
    targets = targets or Targets()
    signals = _signals(spec, registry, context, path)
    outputs = {signal.name: signal.outputs for signal in signals}
    names = [d.name for d in spec.decisions]
    compiled: list[CompiledDecision] = []
    for index, decision in enumerate(spec.decisions):
        where = f"{path}.decisions[{index}]"
        if names.index(decision.name) != index:
            raise SemanticConfigError(f"{where}.name", f"decision {decision.name!r} named twice")
        rule = parse_rule(decision.rules, f"{where}.rules", outputs)
        for ref in referenced_decisions(rule):
            if ref not in names:
                raise SemanticConfigError(
                    f"{where}.rules", f"refers to decision {ref!r}, which is not defined"
                )
        action = _action(decision, decision.category or decision.name, targets, where)
        compiled.append(CompiledDecision(decision.name, decision.priority, rule, action))
    _refuse_cycles(compiled, path)
    default = _action(spec.default, spec.default.category or "default", targets, f"{path}.default")
    ordered = sorted(compiled, key=lambda d: -d.priority)  # stable: ties keep their order
    models = frozenset(m for d in (*compiled,) for m in d.action.models) | set(default.models)
    return SemanticPolicy(
        alias=spec.alias,
        max_classify_chars=spec.max_classify_chars,
        signals=tuple(signals),
        decisions=tuple(ordered),
        default=default,
        models=frozenset(models),
    )


def _signals(
    spec: SemanticSpec, registry: SignalRegistry, context: SignalContext, path: str
) -> list[Signal]:
    signals: list[Signal] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(spec.signals):
        where = f"{path}.signals[{index}]"
        if entry.ref in seen:
            raise SemanticConfigError(
                f"{where}.name",
                f"signal name {entry.ref!r} already used by signals[{seen[entry.ref]}]",
            )
        seen[entry.ref] = index
        signals.append(registry.build(entry.type, entry.ref, entry.parameters, context, where))
    return signals


def _action(action: Action, category: str, targets: Targets, path: str) -> RouteAction:
    models: list[str] = []
    if action.serving_graph is not None:
        model = targets.graphs.get(action.serving_graph)
        if model is None:
            known = ", ".join(sorted(targets.graphs)) or "none"
            raise SemanticConfigError(
                f"{path}.servingGraph",
                f"unknown ServingGraph {action.serving_graph!r}; known: {known}",
            )
        models.append(model)
    if action.model is not None:
        models.append(_known(action.model, targets, f"{path}.model"))
    for index, fallback in enumerate(action.fallback_models):
        models.append(_known(fallback, targets, f"{path}.fallbackModels[{index}]"))
    return RouteAction(
        category=category,
        models=tuple(dict.fromkeys(models)),
        system_prompt=action.system_prompt,
        reasoning=action.reasoning,
        max_tokens=action.max_tokens,
        block_message=None if action.block is None else action.block.message,
    )


def _known(model: str, targets: Targets, path: str) -> str:
    if targets.models is not None and model not in targets.models:
        served = ", ".join(sorted(targets.models)) or "none"
        raise SemanticConfigError(path, f"unknown model {model!r}; served: {served}")
    return model


def _refuse_cycles(decisions: list[CompiledDecision], path: str) -> None:
    edges = {d.name: referenced_decisions(d.rule) for d in decisions}
    index_of = {d.name: i for i, d in enumerate(decisions)}
    state: dict[str, int] = {}  # 1: on the current walk, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name) :], name]
            raise SemanticConfigError(
                f"{path}.decisions[{index_of[cycle[0]]}].rules",
                f"decisions refer to each other in a cycle: {' → '.join(cycle)}",
            )
        state[name] = 1
        for ref in edges[name]:
            visit(ref, [*trail, name])
        state[name] = 2

    for decision in decisions:
        visit(decision.name, [])
