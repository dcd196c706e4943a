"""A loaded semantic policy: evaluate every signal once, then the decisions by priority.

Pure: the router, the operator and the simulator call the same `decide`. The
clock, when given, only times each signal for metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from triskel.common.semantic_api import Reasoning, SystemPrompt
from triskel.router.semantic.rules import Rule
from triskel.router.semantic.signals.base import Signal, SignalInput

DEFAULT_DECISION = "default"


@dataclass(frozen=True, slots=True)
class RouteAction:
    """What a decision does to a request. `models` is the target, then its fallbacks."""

    category: str
    models: tuple[str, ...] = ()
    system_prompt: SystemPrompt | None = None
    reasoning: Reasoning | None = None
    max_tokens: int | None = None
    # Set: refuse with 403 and this message.
    block_message: str | None = None

    @property
    def is_block(self) -> bool:
        return self.block_message is not None


@dataclass(frozen=True, slots=True)
class CompiledDecision:
    name: str
    priority: int
    rule: Rule
    action: RouteAction


@dataclass(frozen=True, slots=True)
class SemanticDecision:
    decision: str
    action: RouteAction
    # Every fact that held ("domain:math", "code_words"...), for logs and tests.
    facts: frozenset[str]
    # (signal name, seconds) per signal, when a clock was given.
    signal_seconds: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class SemanticPolicy:
    alias: str
    max_classify_chars: int
    signals: tuple[Signal, ...]
    # Highest priority first; equal priorities in the order configured.
    decisions: tuple[CompiledDecision, ...]
    default: RouteAction
    # Every model a decision may send to (targets and fallbacks).
    models: frozenset[str] = field(default_factory=frozenset)

    def decide(
        self, request: SignalInput, clock: Callable[[], float] | None = None
    ) -> SemanticDecision:
        facts, timings = evaluate_signals(self.signals, request, clock)
        by_name = {d.name: d for d in self.decisions}
        memo: dict[str, bool] = {}

        def decided(name: str) -> bool:
            # Loader refused cycles, so this recursion ends.
            if name not in memo:
                memo[name] = by_name[name].rule.holds(facts, decided)
            return memo[name]

        for decision in self.decisions:
            if decided(decision.name):
                return SemanticDecision(decision.name, decision.action, facts, timings)
        return SemanticDecision(DEFAULT_DECISION, self.default, facts, timings)


def evaluate_signals(
    signals: Sequence[Signal], request: SignalInput, clock: Callable[[], float] | None = None
) -> tuple[frozenset[str], tuple[tuple[str, float], ...]]:
    """The facts that hold for `request`, and each signal's time when `clock` is given."""
    facts: set[str] = set()
    timings: list[tuple[str, float]] = []
    for signal in signals:
        started = clock() if clock is not None else 0.0
        result = signal.evaluate(request)
        if clock is not None:
            timings.append((signal.name, clock() - started))
        if result.fired:
            facts.add(signal.name)
            facts.update(f"{signal.name}:{value}" for value in result.values)
    return frozenset(facts), tuple(timings)
