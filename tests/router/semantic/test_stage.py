"""The router's semantic stage: alias → decision → the request to serve, or 403 / 503."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from triskel.router.semantic.loader import Targets, load_semantic_policy, parse_semantic_spec
from triskel.router.semantic.metrics import SemanticMetrics
from triskel.router.semantic.signals.base import SignalContext
from triskel.router.semantic.stage import LoadedSemantic, SemanticStage
from triskel.router.types import GenerationRequest, RequestBlocked, ServiceError

from support.semantic import fixed_registry

SPEC: dict[str, Any] = {
    "alias": "auto",
    "signals": [
        {"type": "fixed", "name": "math", "parameters": {"word": "integral"}},
        {"type": "fixed", "name": "pii", "parameters": {"word": "@"}},
        {"type": "fixed", "name": "gone", "parameters": {"word": "moon"}},
    ],
    "decisions": [
        {
            "name": "no_pii",
            "priority": 100,
            "rules": {"signal": "pii"},
            "block": {"message": "no emails"},
        },
        {
            "name": "math",
            "rules": {"signal": "math"},
            "model": "large",
            "reasoning": {"enabled": True},
        },
        {
            "name": "space",
            "rules": {"signal": "gone"},
            "model": "offline",
            "fallbackModels": ["small"],
        },
        {"name": "space2", "priority": -1, "rules": {"signal": "gone"}, "model": "offline"},
    ],
    "default": {"model": "small", "category": "chat"},
}


def stage(
    served: set[str], spec: dict[str, Any] = SPEC, metrics: SemanticMetrics | None = None
) -> SemanticStage:
    policy = load_semantic_policy(
        parse_semantic_spec(spec), fixed_registry(), SignalContext(), Targets()
    )
    loaded = LoadedSemantic(policy, None)
    return SemanticStage({"auto": loaded}, lambda model: model in served, metrics)


def ask(prompt: str, model: str = "auto") -> GenerationRequest:
    return GenerationRequest("r", model, prompt=prompt)


def test_a_named_model_skips_the_stage() -> None:
    routed = stage({"small"}).route(ask("integral of x", model="small"))
    assert (routed.request.model, routed.decision, routed.category) == ("small", "none", None)


def test_the_alias_is_decided_and_the_request_changed() -> None:
    routed = stage({"small", "large"}).route(ask("integral of x"))
    assert (routed.request.model, routed.decision, routed.category) == ("large", "math", "math")
    assert routed.request.enable_thinking is True


def test_a_blocking_decision_refuses_naming_itself() -> None:
    with pytest.raises(RequestBlocked, match="refused by routing decision 'no_pii': no emails"):
        stage({"small"}).route(ask("mail a@b.c"))


def test_a_target_without_a_ready_pool_is_503_naming_it() -> None:
    spec = SPEC | {"decisions": [SPEC["decisions"][1]]}
    with pytest.raises(
        ServiceError, match=r"no worker is available for model large \(routing decision 'math'\)"
    ):
        stage({"small"}, spec).route(ask("integral of x"))


def test_a_listed_fallback_is_used_and_nothing_else() -> None:
    # "space" lists small as its fallback; "offline" is not served.
    assert stage({"small"}).route(ask("the moon")).request.model == "small"
    spec = SPEC | {"decisions": [SPEC["decisions"][3]]}
    with pytest.raises(ServiceError, match="no worker is available for model offline"):
        stage({"small"}, spec).route(ask("the moon"))


def test_decisions_and_signal_times_are_counted() -> None:
    registry = CollectorRegistry()
    routed = stage({"small", "large"}, metrics=SemanticMetrics(registry))
    routed.route(ask("integral"))
    labels = {"decision": "math", "model": "large", "category": "math"}
    assert registry.get_sample_value("triskel_semantic_decisions_total", labels) == 1
    count = registry.get_sample_value("triskel_semantic_signal_seconds_count", {"signal": "pii"})
    assert count == 1
