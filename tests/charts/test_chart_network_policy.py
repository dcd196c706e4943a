"""`networkPolicy.enabled`: the chart's own NetworkPolicies, and the operator told which
pods may call workers, so the policies it builds per pool admit exactly the chart's
router and operator pods."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from triskel.operator.builders.network_policy import (
    WorkerCallers,
    build_network_policy,
    parse_labels,
)

from support.helm import NAMESPACE, container, find, render
from support.pool_objects import OWNER, pool_spec

KUBERNETES_VERSION = "1.32.0"
ENABLED: dict[str, Any] = {"networkPolicy": {"enabled": True}, "redis": {"enabled": True}}
POLICY_RULE = {
    "apiGroups": ["networking.k8s.io"],
    "resources": ["networkpolicies"],
    "verbs": ["get", "create", "patch", "delete"],
}
LABEL_FLAGS = ("--network-policy-router-labels=", "--network-policy-operator-labels=")


def pod_labels(manifests: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    labels: dict[str, str] = find(manifests, "Deployment", deployment)["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def flag(args: list[str], prefix: str) -> str:
    (value,) = [a.removeprefix(prefix) for a in args if a.startswith(prefix)]
    return value


def operator_rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(manifests, "ClusterRole", f"{NAMESPACE}-triskel-operator")[
        "rules"
    ]
    return rules


def test_off_by_default_nothing_is_rendered_or_granted() -> None:
    manifests = render({"redis": {"enabled": True}})
    assert [m for m in manifests if m["kind"] == "NetworkPolicy"] == []
    args = container(manifests, "triskel-operator")["args"]
    assert not [a for a in args if a.startswith(LABEL_FLAGS)]
    assert POLICY_RULE not in operator_rules(manifests)


def test_enabled_renders_valid_policies_for_each_component() -> None:
    manifests = render(ENABLED)
    policies = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}
    assert sorted(policies) == ["triskel-operator", "triskel-redis", "triskel-router"]
    for name, policy in policies.items():
        kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
        assert policy["metadata"]["namespace"] == NAMESPACE
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        # Each holds its own component's pods.
        selected = policy["spec"]["podSelector"]["matchLabels"]
        assert selected.items() <= pod_labels(manifests, name).items()


def test_the_router_api_is_open_unless_clients_are_named() -> None:
    router = find(render(ENABLED), "NetworkPolicy", "triskel-router")
    [rule, scrape] = router["spec"]["ingress"]
    assert "from" not in rule  # any source: it is the front door
    assert [p["port"] for p in rule["ports"]] == ["http", "grpc"]
    clients = [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]
    values = ENABLED | {"networkPolicy": {"enabled": True, "routerClients": clients}}
    [rule, scrape] = find(render(values), "NetworkPolicy", "triskel-router")["spec"]["ingress"]
    assert rule["from"] == clients
    # /metrics has a port of its own, open to the scraper whoever the clients are.
    assert "from" not in scrape
    assert [p["port"] for p in scrape["ports"]] == ["metrics"]


def test_only_routers_reach_redis() -> None:
    manifests = render(ENABLED)
    [rule] = find(manifests, "NetworkPolicy", "triskel-redis")["spec"]["ingress"]
    [peer] = rule["from"]
    assert (
        peer["podSelector"]["matchLabels"].items()
        <= pod_labels(manifests, "triskel-router").items()
    )
    assert (
        not peer["podSelector"]["matchLabels"].items()
        <= pod_labels(manifests, "triskel-operator").items()
    )
    assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}]


@pytest.mark.parametrize(("metrics", "ports"), [(True, ["metrics"]), (False, [])])
def test_the_operator_admits_its_scrape_only(metrics: bool, ports: list[str]) -> None:
    values = ENABLED | {"operator": {"metrics": {"enabled": metrics}}}
    ingress = find(render(values), "NetworkPolicy", "triskel-operator")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == ports


def test_pool_policies_admit_the_charts_router_and_operator_pods() -> None:
    manifests = render(ENABLED)
    args = container(manifests, "triskel-operator")["args"]
    router_labels = parse_labels(flag(args, LABEL_FLAGS[0]), "router")
    operator_labels = parse_labels(flag(args, LABEL_FLAGS[1]), "operator")
    # The flags name the pods the chart runs (and only them: not each other).
    assert router_labels.items() <= pod_labels(manifests, "triskel-router").items()
    assert operator_labels.items() <= pod_labels(manifests, "triskel-operator").items()
    assert not router_labels.items() <= pod_labels(manifests, "triskel-operator").items()
    assert f"--router-namespace={NAMESPACE}" in args
    callers = WorkerCallers(NAMESPACE, router_labels, operator_labels)
    policy = build_network_policy("p1", "team-a", pool_spec(), OWNER, callers)
    peers = policy["spec"]["ingress"][0]["from"]
    assert [p["podSelector"]["matchLabels"] for p in peers] == [router_labels, operator_labels]
    # And the operator may keep those policies, like its other children.
    assert POLICY_RULE in operator_rules(manifests)
