"""From the operator's router config to wanted workers and per-model settings (pure)."""

from __future__ import annotations

from typing import Any

from triskel.common.api import Role
from triskel.common.router_cluster import RouterClusterConfig
from triskel.common.shipped_routing import shipped_routing
from triskel.router.backends.addresses import WorkerApi
from triskel.router.discovery.desired import (
    pools_to_watch,
    settings_per_model,
    wanted_workers,
)


def config(policy: dict[str, Any] | None = None, engine: str = "mock") -> RouterClusterConfig:
    pools = [
        {
            "name": name,
            "role": role,
            "model": "m",
            "engine": engine,
            "service": f"{name}.ns.svc.cluster.local",
            "ports": {"grpc": 50051},
        }
        for name, role in (("prefill", "prefill"), ("decode", "decode"))
    ]
    document: dict[str, Any] = {
        "graphs": [
            {
                "namespace": "ns",
                "name": "g",
                "model": "m",
                "pools": pools,
                "slo": {"ttftMs": 500, "tpotMs": 50, "attainment": 0.9},
                "disaggregation": {"mode": "conditional", "maxLocalPrefillTokens": 64},
                "routingPolicy": "p" if policy is not None else None,
            }
        ],
        "routingPolicies": (
            [{"namespace": "ns", "name": "p", "spec": policy}] if policy is not None else []
        ),
    }
    return RouterClusterConfig.model_validate(document)


def test_every_endpoint_of_every_pool_is_wanted_with_its_role() -> None:
    endpoints = {("ns", "prefill"): ["10.0.0.1:50051"], ("ns", "decode"): ["10.0.0.2:50051"]}
    wanted = wanted_workers(config(), endpoints)
    assert {a: (w.role, w.model) for a, w in wanted.items()} == {
        "10.0.0.1:50051": (Role.PREFILL, "m"),
        "10.0.0.2:50051": (Role.DECODE, "m"),
    }
    assert pools_to_watch(config()) == [("ns", "decode"), ("ns", "prefill")]


def test_vllm_pools_are_driven_over_their_http_api_with_the_pools_role() -> None:
    # vLLM does not report its role or model: the pool's are given to the client.
    wanted = wanted_workers(config(engine="vllm"), {("ns", "decode"): ["10.0.0.2:8000"]})
    endpoint = wanted["10.0.0.2:8000"].endpoint()
    assert (endpoint.url, endpoint.api, endpoint.role, endpoint.model) == (
        "http://10.0.0.2:8000",
        WorkerApi.VLLM,
        Role.DECODE,
        "m",
    )
    assert pools_to_watch(config(engine="vllm")) == [("ns", "decode"), ("ns", "prefill")]


def test_sglang_pools_are_not_routed_to() -> None:
    # Their P/D needs SGLang's bootstrap protocol, which this router does not speak.
    assert pools_to_watch(config(engine="sglang")) == []
    assert wanted_workers(config(engine="sglang"), {("ns", "decode"): ["10.0.0.2:30000"]}) == {}


def test_settings_take_the_policy_from_the_policy_and_slos_from_the_graph() -> None:
    policy = {
        "plugins": [{"type": "least-load-scorer"}, {"type": "max-score-picker"}],
        "profiles": [
            {
                "name": "decode",
                "plugins": [
                    {"pluginRef": "least-load-scorer", "weight": 2},
                    {"pluginRef": "max-score-picker"},
                ],
            }
        ],
        "admission": {"maxInFlight": 8, "maxQueued": 2},
        "maxAttempts": 3,
        "migrationLimit": 1,
        "timeouts": {"workerSilenceS": 10, "tokenIdleS": 120},
    }
    settings = settings_per_model(config(policy))["m"]
    assert [p.type for p in settings.plugins] == ["least-load-scorer", "max-score-picker"]
    assert (settings.admission.max_in_flight, settings.max_attempts) == (8, 3)
    assert settings.migration_limit == 1
    assert (settings.timeouts.worker_silence_s, settings.timeouts.token_idle_s) == (10, 120)
    assert (settings.slo.ttft_ms, settings.slo.tpot_ms) == (500, 50)
    assert settings.disaggregation.max_local_prefill_tokens == 64


def test_a_graph_without_a_published_policy_is_served_by_the_shipped_default() -> None:
    settings = settings_per_model(config())["m"]
    assert settings.scheduling() == shipped_routing()
    assert settings.slo.ttft_ms == 500


def test_a_policy_without_profiles_keeps_its_limits_and_the_shipped_scheduling() -> None:
    settings = settings_per_model(config({"admission": {"maxInFlight": 8, "maxQueued": 2}}))["m"]
    assert settings.scheduling() == shipped_routing()
    assert settings.admission.max_in_flight == 8
