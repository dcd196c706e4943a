from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from triskel.cli.autoscale_graphs import graph_plans
from triskel.cli.up import worker_configs
from triskel.cli.up_config import (
    UpConfigError,
    load_up_config,
    parse_up_config,
    with_router_addresses,
)
from triskel.common.api import ConnectorType


def test_built_in_default_is_two_models_with_semantic_routing_over_tcp() -> None:
    config, source = load_up_config(None)
    assert source == "built-in defaults"
    workers = worker_configs(config)
    # The small model: encode, two prefill, two decode; the large one: prefill + decode.
    assert [(w.worker_id, w.pool.model) for w in workers] == [
        ("encode-0", "llama-3.1-8b"),
        ("prefill-0", "llama-3.1-8b"),
        ("prefill-1", "llama-3.1-8b"),
        ("decode-0", "llama-3.1-8b"),
        ("decode-1", "llama-3.1-8b"),
        ("large-prefill-0", "qwen2.5-32b"),
        ("large-decode-0", "qwen2.5-32b"),
    ]
    assert {w.pool.kv_connector.type for w in workers} == {ConnectorType.TCP}
    assert (config.router.http, config.router.grpc) == ("127.0.0.1:8080", "127.0.0.1:50051")
    semantic, cache = config.routing.semantic, config.routing.cache
    assert semantic is not None and semantic.alias == "auto"
    assert cache is not None and {c.name for c in cache.categories} == {"code", "math", "chat"}
    # The demo autoscales the small model's P/D pools (2 to 4, switching roles allowed).
    assert config.autoscale is not None and config.autoscale.role_switch_s == 3
    plans = graph_plans(config.autoscale, config.pools)
    assert [(s.name, s.min_replicas, s.max_replicas) for s in plans[0].stages] == [
        ("prefill", 2, 4),
        ("decode", 2, 4),
    ]


def test_a_bad_semantic_rule_is_refused_naming_its_path() -> None:
    text = resources.files("triskel.cli").joinpath("default_up.yaml").read_text()
    broken = text.replace('rules: {signal: "domain:code"}', 'rules: {signal: "domain:cod"}')
    with pytest.raises(UpConfigError) as caught:
        parse_up_config(broken, "up.yaml")
    assert "routing.semantic.decisions[2].rules.signal: signal 'domain' never reports 'cod'" in (
        str(caught.value)
    )


def test_router_addresses_can_be_overridden() -> None:
    config, _ = load_up_config(None)
    moved = with_router_addresses(config, "127.0.0.1:0", None)
    assert (moved.router.http, moved.router.grpc) == ("127.0.0.1:0", "127.0.0.1:50051")
    with pytest.raises(UpConfigError, match="--http: expected host:port"):
        with_router_addresses(config, "localhost", None)


def test_examples_parse() -> None:
    for example in sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml")):
        load_up_config(example)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("pools: []", "pools: List should have at least 1 item"),
        (
            "pools:\n  - {name: a, role: prefill, model: m, surprise: 1}",
            "pools[0](a).surprise: Extra inputs are not permitted (got 1)",
        ),
        ("pools:\n  - {name: A_B, role: prefill, model: m}", "pools[0](A_B).name"),
        (
            "pools:\n  - {name: a, role: unified, model: m}\n"
            "  - {name: a, role: unified, model: m}",
            "pool name 'a' is used twice",
        ),
        ("- just a list", "expected a mapping with `pools`, got list"),
    ],
)
def test_errors_name_source_field_and_value(text: str, fragment: str) -> None:
    with pytest.raises(UpConfigError) as caught:
        parse_up_config(text, "deploy.yaml")
    message = str(caught.value)
    assert message.startswith("deploy.yaml: ")
    assert fragment in message, message


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UpConfigError, match=r"missing\.yaml: cannot read"):
        load_up_config(tmp_path / "missing.yaml")
