"""The chart's RBAC is least privilege: exact rules, no wildcards, scoped as configured."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.resources import RESOURCE_KINDS
from triskel.common.router_cluster import ROUTER_CONFIG_MAP_NAME

from support.helm import NAMESPACE, find, render

# What a child kind needs: read it, create it, merge-patch its drift, delete it.
CHILD = ["get", "create", "patch", "delete"]

# Why each rule, in the order the chart lists them (tests/realapi/test_chart_rbac_used.py
# checks against a real API server's audit log that each one is used):
OPERATOR_RULES = [
    # kopf lists and watches its kinds and patches finalizers and progress annotations;
    # graph checks get pools and policies (no graph is read by name); nothing creates or
    # deletes them but users.
    {
        "apiGroups": ["triskel.io"],
        "resources": ["workerpools", "routingpolicies"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["triskel.io"],
        "resources": ["servinggraphs"],
        "verbs": ["list", "watch", "patch"],
    },
    {
        "apiGroups": ["triskel.io"],
        "resources": ["workerpools/status", "servinggraphs/status", "routingpolicies/status"],
        "verbs": ["patch"],
    },
    # A ServingGraph's autoscaler writes its pools' replicas through the scale subresource.
    {"apiGroups": ["triskel.io"], "resources": ["workerpools/scale"], "verbs": ["patch"]},
    # blockOwnerDeletion on adopted children needs update on the owner's finalizers.
    {
        "apiGroups": ["triskel.io"],
        "resources": [
            "workerpools/finalizers",
            "servinggraphs/finalizers",
            "routingpolicies/finalizers",
        ],
        "verbs": ["update"],
    },
    # The children it owns.
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": CHILD},
    {"apiGroups": [""], "resources": ["services"], "verbs": CHILD},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": CHILD},
    # Each model's KV auth key: created when missing, never read ("already exists" says
    # it is there), so the operator cannot read any Secret.
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    # Drain lists a pool's pods and marks them (patch); from Kubernetes 1.22 the
    # ReplicaSet removes the marked ones (pod-deletion-cost), so the operator deletes none.
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
# The router reads each pool's status.endpoints by name; its config is a mounted file.
ROUTER_RULES = [
    {"apiGroups": ["triskel.io"], "resources": ["workerpools"], "verbs": ["get"]},
]
# The routers' one ConfigMap, in the release namespace: the operator creates it and then
# only touches that name (create cannot be limited by name).
OPERATOR_CONFIG_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [ROUTER_CONFIG_MAP_NAME],
        "verbs": ["get", "patch"],
    },
]
# kopf watches CRDs (cluster-scoped) to notice them change while it runs.
DISCOVERY_RULES = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
]
# With watchNamespaces, kopf also follows those namespaces (deleted, re-created).
NAMESPACED_DISCOVERY_RULES = [
    *DISCOVERY_RULES,
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


def _rules(
    manifests: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    matches = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"]["name"] == name
        and m["metadata"].get("namespace") == namespace
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}"
    rules: list[dict[str, Any]] = matches[0]["rules"]
    return rules


def test_cluster_wide_rules_are_exact() -> None:
    manifests = render()
    assert _rules(manifests, "ClusterRole", f"{NAMESPACE}-triskel-operator") == OPERATOR_RULES
    assert _rules(manifests, "ClusterRole", f"{NAMESPACE}-triskel-router") == ROUTER_RULES
    assert (
        _rules(manifests, "ClusterRole", f"{NAMESPACE}-triskel-operator-discovery")
        == DISCOVERY_RULES
    )


@pytest.mark.parametrize(
    ("kube_version", "pod_verbs"),
    [
        ("1.20.0", ["list", "patch", "delete"]),
        ("1.21.14", ["list", "patch", "delete"]),
        ("1.22.0", ["list", "patch"]),
        ("1.36.0", ["list", "patch"]),
    ],
)
def test_only_clusters_before_1_22_let_the_operator_delete_pods(
    kube_version: str, pod_verbs: list[str]
) -> None:
    # There ReplicaSets ignore pod-deletion-cost: the operator deletes the drained pods.
    rules = _rules(
        render(kube_version=kube_version), "ClusterRole", f"{NAMESPACE}-triskel-operator"
    )
    (pods,) = [rule for rule in rules if rule["resources"] == ["pods"]]
    assert pods["verbs"] == pod_verbs


@pytest.mark.parametrize("namespace", ["team-a", "team-b"])
def test_namespaced_rules_are_the_same_rules_in_roles(namespace: str) -> None:
    manifests = render({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    name = f"{NAMESPACE}-triskel-operator"
    assert _rules(manifests, "Role", name, namespace) == OPERATOR_RULES
    assert _rules(manifests, "Role", f"{NAMESPACE}-triskel-router", namespace) == ROUTER_RULES
    assert (
        _rules(manifests, "ClusterRole", f"{NAMESPACE}-triskel-operator-discovery")
        == NAMESPACED_DISCOVERY_RULES
    )


@pytest.mark.parametrize("values", [{}, {"operator": {"watchNamespaces": ["team-a"]}}])
def test_router_config_map_rules_stay_in_the_release_namespace(values: dict[str, Any]) -> None:
    manifests = render(values)
    assert (
        _rules(manifests, "Role", "triskel-operator-router-config", NAMESPACE)
        == OPERATOR_CONFIG_RULES
    )
    binding = find(manifests, "RoleBinding", "triskel-operator-router-config")
    assert binding["roleRef"]["name"] == "triskel-operator-router-config"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "triskel-operator", "namespace": NAMESPACE}
    ]
    # Routers read their config from the mounted ConfigMap: no API rule for it.
    assert not [
        m
        for m in manifests
        if m["kind"] == "Role" and m["metadata"]["name"] == "triskel-router-config"
    ]


@pytest.mark.parametrize("values", [{}, {"operator": {"watchNamespaces": ["team-a"]}}])
def test_no_wildcards_and_no_secrets_read(values: dict[str, Any]) -> None:
    for manifest in render(values):
        for rule in manifest.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (manifest["metadata"]["name"], rule)
            # Neither component reads Secrets (the operator only creates the KV keys),
            # nor may escalate through RBAC objects.
            if "secrets" in rule["resources"]:
                assert (rule["resources"], rule["verbs"]) == (["secrets"], ["create"]), rule
            assert not {"roles", "clusterroles", "rolebindings"} & set(rule["resources"]), rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_bindings_name_the_component_service_accounts() -> None:
    manifests = render()
    for component in ("operator", "router", "operator-discovery"):
        binding = find(manifests, "ClusterRoleBinding", f"{NAMESPACE}-triskel-{component}")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": f"{NAMESPACE}-triskel-{component}",
        }
        account = "triskel-operator" if component.startswith("operator") else "triskel-router"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_operator_rules_cover_every_custom_kind() -> None:
    # The kinds come from the API models: a new kind must get its rules here too.
    rules = _rules(render(), "ClusterRole", f"{NAMESPACE}-triskel-operator")
    triskel_resources = {
        r for rule in rules if rule["apiGroups"] == ["triskel.io"] for r in rule["resources"]
    }
    expected = set()
    for kind in RESOURCE_KINDS:
        expected |= {kind.plural, f"{kind.plural}/status", f"{kind.plural}/finalizers"}
    # And workerpools/scale: a ServingGraph's autoscaler sizes pools through it.
    assert triskel_resources == expected | {"workerpools/scale"}
