"""The router's semantic aliases follow the published RoutingPolicies."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.resources import GraphSlo, RoutingPolicySpec
from triskel.common.router_cluster import GraphRoute, PolicyEntry, RouterClusterConfig
from triskel.common.routing_api import DisaggregationSpec
from triskel.router.discovery.semantic_sync import SemanticSync
from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic.setup import EmbedderCache
from triskel.router.semantic.stage import SemanticStage


def semantic(model: str, alias: str = "auto", word: str = "sum") -> dict[str, Any]:
    return {
        "semantic": {
            "alias": alias,
            "signals": [{"type": "keywords", "name": "w", "parameters": {"any": [word]}}],
            "decisions": [{"name": "math", "rules": {"signal": "w"}, "model": model}],
            "default": {"model": model},
        }
    }


def config(
    *policies: tuple[str, str, dict[str, Any]], models: tuple[str, ...] = ("m",)
) -> RouterClusterConfig:
    graphs = [
        GraphRoute(
            namespace="prod",
            name=f"g-{model}",
            model=model,
            slo=GraphSlo(),
            disaggregation=DisaggregationSpec(),
        )
        for model in models
    ]
    entries = [
        PolicyEntry(namespace=ns, name=name, spec=RoutingPolicySpec.model_validate(spec))
        for ns, name, spec in policies
    ]
    return RouterClusterConfig(graphs=graphs, routing_policies=entries)


@pytest.fixture
def sync_and_stage(embedder: Embedder) -> tuple[SemanticSync, SemanticStage]:
    stage = SemanticStage({}, lambda model: True)
    # The session's model: no second load.
    return SemanticSync(stage, EmbedderCache.holding(embedder)), stage


def test_a_policy_with_a_semantic_section_serves_its_alias(
    sync_and_stage: tuple[SemanticSync, SemanticStage],
) -> None:
    sync, stage = sync_and_stage
    sync.apply(config(("prod", "auto", semantic("m"))))
    assert set(stage.aliases()) == {"auto"}
    sync.apply(config())
    assert stage.aliases() == {}


def test_an_unchanged_policy_is_not_loaded_again(
    sync_and_stage: tuple[SemanticSync, SemanticStage],
) -> None:
    sync, stage = sync_and_stage
    sync.apply(config(("prod", "auto", semantic("m"))))
    first = stage.aliases()["auto"]
    sync.apply(config(("prod", "auto", semantic("m"))))
    assert stage.aliases()["auto"] is first
    sync.apply(config(("prod", "auto", semantic("m", word="total"))))
    assert stage.aliases()["auto"] is not first


def test_a_policy_that_fails_to_load_keeps_the_last_good_one(
    sync_and_stage: tuple[SemanticSync, SemanticStage],
) -> None:
    sync, stage = sync_and_stage
    sync.apply(config(("prod", "auto", semantic("m"))))
    good = stage.aliases()["auto"]
    # The new version sends to a model no graph of its namespace serves.
    sync.apply(config(("prod", "auto", semantic("gone"))))
    assert stage.aliases()["auto"] is good


def test_the_first_policy_by_namespace_and_name_keeps_a_shared_alias(
    sync_and_stage: tuple[SemanticSync, SemanticStage],
) -> None:
    sync, stage = sync_and_stage
    sync.apply(
        config(
            ("prod", "a-first", semantic("m")),
            ("prod", "b-second", semantic("n")),
            models=("m", "n"),
        )
    )
    assert stage.aliases()["auto"].models == frozenset({"m"})
