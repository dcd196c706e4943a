"""`helm template` of charts/triskel: what each set of values renders, and that every
manifest is valid against the real Kubernetes 1.32 schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from triskel.common.resources import RESOURCE_KINDS
from triskel.common.router_cluster import ROUTER_CONFIG_KEY, ROUTER_CONFIG_MAP_NAME

from support.helm import CHART, NAMESPACE, container, find, render

KUBERNETES_VERSION = "1.32.0"

EXTRAS: dict[str, Any] = {
    "redis": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "router": {
        "replicas": 3,
        "nodeSelector": {"triskel.io/node-role": "cpu"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "triskel", "effect": "NoSchedule"}
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/component": "router"}
                            },
                        },
                    },
                ]
            }
        },
    },
    "imagePullSecrets": [{"name": "regcred"}],
}
NAMESPACED: dict[str, Any] = {"operator": {"watchNamespaces": ["team-a", "team-b"]}}

VALUE_SETS = {"defaults": {}, "extras": EXTRAS, "namespaced": NAMESPACED}

# Release "triskel" in NAMESPACE: names are "triskel-<component>"; cluster-scoped ones
# and Roles in watched namespaces carry the release namespace too.
COMMON = {
    ("ServiceAccount", "triskel-operator"),
    ("ServiceAccount", "triskel-router"),
    ("Deployment", "triskel-operator"),
    ("Deployment", "triskel-router"),
    ("Service", "triskel-router"),
    ("ClusterRole", f"{NAMESPACE}-triskel-operator-discovery"),
    ("ClusterRoleBinding", f"{NAMESPACE}-triskel-operator-discovery"),
    # The routers' ConfigMap in the release namespace: the operator writes, routers read.
    ("Role", "triskel-operator-router-config"),
    ("RoleBinding", "triskel-operator-router-config"),
}
CLUSTER_WIDE_RBAC = {
    (kind, f"{NAMESPACE}-triskel-{component}")
    for kind in ("ClusterRole", "ClusterRoleBinding")
    for component in ("operator", "router")
}
EXPECTED_OBJECTS = {
    "defaults": COMMON | CLUSTER_WIDE_RBAC,
    "extras": COMMON
    | CLUSTER_WIDE_RBAC
    | {
        ("Deployment", "triskel-redis"),
        ("Service", "triskel-redis"),
        # Redis' password (redis.auth.existingSecret unset: the chart makes it).
        ("Secret", "triskel-redis"),
        ("ServiceMonitor", "triskel-router"),
        # What the operator's ServiceMonitor finds its pod through.
        ("Service", "triskel-operator"),
        ("ServiceMonitor", "triskel-operator"),
    },
    # One Role and RoleBinding per component in each watched namespace, none cluster-wide.
    "namespaced": COMMON
    | {
        (kind, f"{NAMESPACE}-triskel-{component}")
        for kind in ("Role", "RoleBinding")
        for component in ("operator", "router")
    },
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(VALUE_SETS[request.param])


def test_renders_exactly_the_expected_objects(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, manifests = rendered
    objects = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert objects == EXPECTED_OBJECTS[name]


def test_every_manifest_is_valid_kubernetes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    for manifest in manifests:
        if manifest["kind"] == "ServiceMonitor":
            continue  # a custom kind: no schema in kubernetes-validate (fields tested below)
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_namespaced_objects_go_where_they_belong() -> None:
    manifests = render(NAMESPACED)
    namespaces = {
        (m["kind"], m["metadata"]["name"], m["metadata"].get("namespace"))
        for m in manifests
        if m["kind"] in ("Role", "RoleBinding", "Deployment")
    }
    assert namespaces == {
        ("Deployment", "triskel-operator", NAMESPACE),
        ("Deployment", "triskel-router", NAMESPACE),
        *{
            (kind, f"{NAMESPACE}-triskel-{component}", watched)
            for kind in ("Role", "RoleBinding")
            for component in ("operator", "router")
            for watched in ("team-a", "team-b")
        },
        *{(kind, "triskel-operator-router-config", NAMESPACE) for kind in ("Role", "RoleBinding")},
    }
    for binding in (m for m in manifests if m["kind"] == "RoleBinding"):
        (subject,) = binding["subjects"]
        # The ServiceAccount lives with the release, not in the watched namespace.
        assert subject["namespace"] == NAMESPACE


def test_operator_runs_alone_with_kopf_liveness() -> None:
    manifests = render()
    deployment = find(manifests, "Deployment", "triskel-operator")
    # kopf runs without peering: never two operators at once.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    operator = container(manifests, "triskel-operator")
    assert operator["image"] == "ghcr.io/triskel-io/triskel:0.1.0"  # tag "" → appVersion
    assert operator["args"] == [
        "operator",
        # No --namespace: every namespace.
        f"--router-namespace={NAMESPACE}",
        "--worker-image=ghcr.io/triskel-io/triskel:0.1.0",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-address=0.0.0.0:9090",
        "--log-level=info",
    ]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["ports"] == [
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]


def operator_metrics(values: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """The operator's --metrics-address flags and its container ports by name."""
    operator = container(render(values), "triskel-operator")
    flags = [a for a in operator["args"] if a.startswith("--metrics-address")]
    return flags, {p["name"]: p["containerPort"] for p in operator["ports"]}


@pytest.mark.parametrize(
    ("metrics", "flags", "ports"),
    [
        # On by default: KEDA users read the desired-replicas gauge from it.
        ({}, ["--metrics-address=0.0.0.0:9090"], {"health": 8080, "metrics": 9090}),
        ({"port": 9464}, ["--metrics-address=0.0.0.0:9464"], {"health": 8080, "metrics": 9464}),
        # Off: no listener, so no port to declare.
        ({"enabled": False}, [], {"health": 8080}),
    ],
)
def test_operator_serves_its_metrics_on_the_pod_ip_and_declares_the_port(
    metrics: dict[str, Any], flags: list[str], ports: dict[str, int]
) -> None:
    # 0.0.0.0: Prometheus scrapes the pod IP, never the pod's loopback.
    assert operator_metrics({"operator": {"metrics": metrics}}) == (flags, ports)


def test_namespaced_operator_gets_one_flag_per_namespace() -> None:
    args = container(render(NAMESPACED), "triskel-operator")["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_router_serves_http_and_grpc_with_its_config_map_mounted() -> None:
    manifests = render()
    router = container(manifests, "triskel-router")
    assert router["args"] == [
        "router",
        f"--cluster-config=/etc/triskel/router/{ROUTER_CONFIG_KEY}",
        "--http-address=0.0.0.0:8080",
        "--grpc-address=0.0.0.0:50051",
        "--processes=1",  # one per core of the 500m CPU request
        # /metrics on a port of its own, no longer on the API's.
        "--metrics-address=0.0.0.0:9090",
        "--log-level=info",
    ]
    assert {p["name"]: p["containerPort"] for p in router["ports"]} == {
        "http": 8080,
        "grpc": 50051,
        "metrics": 9090,
    }
    assert router["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert {"name": "config", "mountPath": "/etc/triskel/router", "readOnly": True} in router[
        "volumeMounts"
    ]
    pod = find(manifests, "Deployment", "triskel-router")["spec"]["template"]["spec"]
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    # The operator writes it (under this name and key); routers must start before it does.
    assert config["configMap"] == {"name": ROUTER_CONFIG_MAP_NAME, "optional": True}
    service = find(manifests, "Service", "triskel-router")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8080, "http"),
        ("grpc", 50051, "grpc"),
        ("metrics", 9090, "metrics"),
    ]
    assert (
        service["spec"]["selector"]
        == find(manifests, "Deployment", "triskel-router")["spec"]["selector"]["matchLabels"]
    )


def test_redis_is_wired_to_the_router_when_enabled() -> None:
    manifests = render(EXTRAS)
    router = container(manifests, "triskel-router")
    # The Service name and port below, so routers reach the one Redis.
    assert "--redis-url=redis://triskel-redis:6379" in router["args"]
    redis_service = find(manifests, "Service", "triskel-redis")
    assert [(p["port"], p["targetPort"]) for p in redis_service["spec"]["ports"]] == [
        (6379, "redis")
    ]
    redis = container(manifests, "triskel-redis")
    assert redis["image"] == "redis:7"
    assert "--redis-url" not in " ".join(container(render(), "triskel-router")["args"])


def test_service_monitor_scrapes_the_router_metrics() -> None:
    manifests = render(EXTRAS)
    monitor = find(manifests, "ServiceMonitor", "triskel-router")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    router_service = find(manifests, "Service", "triskel-router")
    assert monitor["spec"]["selector"] == {"matchLabels": router_service["spec"]["selector"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # Port "metrics" of the router Service: the router serves /metrics there only.
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    router = container(manifests, "triskel-router")
    assert "--metrics-address=0.0.0.0:9090" in router["args"]
    service_port = next(p for p in router_service["spec"]["ports"] if p["name"] == "metrics")
    assert service_port["targetPort"] == "metrics"


def test_service_monitor_scrapes_the_operator_metrics_through_its_service() -> None:
    manifests = render(EXTRAS)
    monitor = find(manifests, "ServiceMonitor", "triskel-operator")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = find(manifests, "Service", "triskel-operator")
    deployment = find(manifests, "Deployment", "triskel-operator")
    # Monitor -> Service -> operator pod, each by the next one's labels.
    assert monitor["spec"]["selector"] == {"matchLabels": service["spec"]["selector"]}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("metrics", 9090, "metrics")
    ]
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    # The router Service does not select the operator pod (nor the reverse).
    router_service = find(manifests, "Service", "triskel-router")
    assert router_service["spec"]["selector"] != service["spec"]["selector"]


def test_without_operator_metrics_nothing_scrapes_the_operator() -> None:
    manifests = render(EXTRAS | {"operator": {"metrics": {"enabled": False}}})
    objects = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert ("ServiceMonitor", "triskel-router") in objects
    assert not {("Service", "triskel-operator"), ("ServiceMonitor", "triskel-operator")} & objects


def test_placement_and_pull_secrets_reach_the_pods() -> None:
    manifests = render(EXTRAS)
    pod = find(manifests, "Deployment", "triskel-router")["spec"]["template"]["spec"]
    assert find(manifests, "Deployment", "triskel-router")["spec"]["replicas"] == 3
    assert pod["nodeSelector"] == EXTRAS["router"]["nodeSelector"]
    assert pod["tolerations"] == EXTRAS["router"]["tolerations"]
    assert pod["affinity"] == EXTRAS["router"]["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    operator_pod = find(manifests, "Deployment", "triskel-operator")["spec"]["template"]["spec"]
    assert "nodeSelector" not in operator_pod and "tolerations" not in operator_pod


@pytest.mark.parametrize("deployment", ["triskel-operator", "triskel-router", "triskel-redis"])
def test_pods_run_as_non_root_without_privileges(deployment: str) -> None:
    manifests = render(EXTRAS)
    pod = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = container(manifests, deployment)["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_image_tag_and_full_name_overrides() -> None:
    manifests = render(
        {"image": {"repository": "registry.local/triskel", "tag": "dev"}, "fullnameOverride": "llm"}
    )
    assert container(manifests, "llm-router")["image"] == "registry.local/triskel:dev"
    assert find(manifests, "ServiceAccount", "llm-operator")


def _crd_documents() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted((CHART / "crds").glob("*.yaml"))
    return [(f, doc) for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]


def test_chart_ships_every_crd_and_each_is_valid() -> None:
    # crds/ is generated from the API models (`triskel crds`), never edited by hand.
    documents = _crd_documents()
    assert {doc["metadata"]["name"] for _, doc in documents} == {
        kind.crd_name for kind in RESOURCE_KINDS
    }, f"{CHART / 'crds'} must hold the generated CRDs of {[k.kind for k in RESOURCE_KINDS]}"
    for path, doc in documents:
        assert (doc["apiVersion"], doc["kind"]) == (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
        ), path
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
