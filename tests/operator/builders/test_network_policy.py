"""The pool's NetworkPolicy: routers and the operator reach the serving ports, workers of
the same model reach every port, nobody else reaches anything.

`admits` evaluates a policy as the NetworkPolicy API defines it (rules are ORed, a peer's
pod and namespace selectors ANDed, a podSelector alone means the policy's namespace, a
rule without ports allows every port), so the cases read as who may connect where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from triskel.operator.builders.labels import pool_labels
from triskel.operator.builders.network_policy import (
    WorkerCallers,
    build_network_policy,
    parse_labels,
    worker_callers,
)

from support.pool_objects import OWNER, pool_spec, validate

ROUTER = {"app.kubernetes.io/instance": "t", "app.kubernetes.io/component": "router"}
OPERATOR = {"app.kubernetes.io/instance": "t", "app.kubernetes.io/component": "operator"}
GPU = {"resources": {"gpus": 1}}
ENGINES: dict[str, dict[str, Any]] = {
    "mock": {"role": "prefill", "kvConnector": {"type": "mooncake"}},
    "mock-ep": {"parallelism": {"ep": 2}, "profile": {"name": "deepseek-v2-lite-ep-h100"}},
    "vllm-nixl": {"role": "prefill", "engine": {"type": "vllm"}, "kvConnector": {"type": "nixl"}},
    "sglang": {
        "role": "prefill",
        "engine": {"type": "sglang"},
        "kvConnector": {"type": "mooncake"},
    },
}


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]


def policy(fields: dict[str, Any], namespace: str = "ns", callers_ns: str = "ns") -> Any:
    spec = pool_spec(**GPU, **fields) if "engine" in fields else pool_spec(**fields)
    return build_network_policy(
        "p1", namespace, spec, OWNER, WorkerCallers(callers_ns, ROUTER, OPERATOR)
    )


def admits(obj: dict[str, Any], source: Pod, port_name: str) -> bool:
    """Whether `obj` lets `source` open a connection to its pods' port `port_name`."""
    namespace = obj["metadata"]["namespace"]
    namespace_labels = {"kubernetes.io/metadata.name": source.namespace}
    for rule in obj["spec"]["ingress"]:
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and port_name not in ports:
            continue
        for peer in rule["from"]:
            pods = peer["podSelector"]["matchLabels"]
            if "namespaceSelector" in peer:
                wanted = peer["namespaceSelector"]["matchLabels"]
                in_namespace = wanted.items() <= namespace_labels.items()
            else:
                in_namespace = source.namespace == namespace
            if in_namespace and pods.items() <= source.labels.items():
                return True
    return False


def worker(model: str, pool: str = "other", namespace: str = "ns") -> Pod:
    return Pod(namespace, pool_labels(pool, pool_spec(role="decode", model=model)))


@pytest.mark.parametrize("fields", ENGINES.values(), ids=ENGINES.keys())
def test_every_policy_fits_the_kubernetes_schema(fields: dict[str, Any]) -> None:
    validate(policy(fields))
    validate(policy(fields, namespace="team-a", callers_ns="triskel-system"))


@pytest.mark.parametrize("fields", ENGINES.values(), ids=ENGINES.keys())
def test_the_policy_holds_the_pools_pods_only_and_is_owned(fields: dict[str, Any]) -> None:
    obj = policy(fields)
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["spec"]["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "triskel",
            "app.kubernetes.io/component": "worker",
            "triskel.io/pool": "p1",
        }
    }
    # Ingress only: egress (DNS, model downloads, KV peers) is not this policy's business.
    assert obj["spec"]["policyTypes"] == ["Ingress"]


@pytest.mark.parametrize(
    ("case", "port"),
    [
        ("mock", "grpc"),
        ("mock", "frames"),
        ("mock-ep", "grpc"),
        ("mock-ep", "http"),
        ("vllm-nixl", "http"),
        ("sglang", "http"),
    ],
)
def test_routers_and_the_operator_reach_the_serving_ports(case: str, port: str) -> None:
    obj = policy(ENGINES[case])
    assert admits(obj, Pod("ns", {**ROUTER, "pod-template-hash": "x"}), port)
    # Drain probes (grpc StreamStats) and elastic EP calls (http).
    assert admits(obj, Pod("ns", OPERATOR), port)
    # Any other pod in the namespace, or a router of another release, is refused.
    assert not admits(obj, Pod("ns", {"app": "curl"}), port)
    assert not admits(obj, Pod("ns", {**ROUTER, "app.kubernetes.io/instance": "u"}), port)


@pytest.mark.parametrize("case", ["vllm-nixl", "sglang"])
def test_routers_do_not_reach_the_kv_port(case: str) -> None:
    assert not admits(policy(ENGINES[case]), Pod("ns", ROUTER), "kv")


@pytest.mark.parametrize("fields", ENGINES.values(), ids=ENGINES.keys())
def test_kv_flows_between_workers_of_one_model_only(fields: dict[str, Any]) -> None:
    obj = policy(fields)
    # The data planes pick ports at run time: a worker of the model reaches any port.
    for port in ("kv", "41873"):
        assert admits(obj, worker("m"), port)
        assert not admits(obj, worker("another-model"), port)
        # The same model in another namespace holds another key: refused too.
        assert not admits(obj, worker("m", namespace="elsewhere"), port)


def test_callers_in_another_namespace_are_named_by_it() -> None:
    obj = policy(ENGINES["mock"], namespace="team-a", callers_ns="triskel-system")
    assert admits(obj, Pod("triskel-system", ROUTER), "grpc")
    # The same labels in the pool's own namespace are not the release's router.
    assert not admits(obj, Pod("team-a", ROUTER), "grpc")
    # Same namespace: a podSelector alone (no namespace label needed, as before 1.21).
    peers = policy(ENGINES["mock"])["spec"]["ingress"][0]["from"]
    assert all("namespaceSelector" not in peer for peer in peers)


def test_labels_parse_from_the_flag() -> None:
    assert parse_labels("a=1, b/c=x", "--f") == {"a": "1", "b/c": "x"}
    with pytest.raises(ValueError, match="--f: expected key=value"):
        parse_labels("a=1,b", "--f")


def test_the_operators_flags_give_callers_together_or_not_at_all() -> None:
    assert worker_callers("rel", None, None) is None
    callers = worker_callers("rel", "a=1", "b=2")
    assert callers == WorkerCallers("rel", {"a": "1"}, {"b": "2"})
    # One without the other would lock out the routers or the operator's drain probes.
    with pytest.raises(
        ValueError, match="--network-policy-router-labels needs --network-policy-operator-labels"
    ):
        worker_callers("rel", "a=1", None)
    with pytest.raises(ValueError, match="--network-policy-operator-labels needs"):
        worker_callers("rel", None, "b=2")
