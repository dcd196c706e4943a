"""The pool's headless Service: every ready pod's address under one name."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.service import build_service, service_dns_name

from support.pool_objects import FEATURES, OWNER, pool_spec, validate

GPU = {"resources": {"gpus": 1}}


@pytest.mark.parametrize(
    ("fields", "ports"),
    [
        # The mock serves gRPC and its frames; its KV listeners use ports the kernel picks.
        ({"role": "decode"}, [("grpc", 50051), ("frames", 50052)]),
        (
            {"role": "prefill", "engine": {"type": "vllm"}, "kvConnector": {"type": "nixl"}, **GPU},
            [("http", 8000), ("kv", 5600)],
        ),
        (
            {
                "role": "decode",
                "engine": {"type": "sglang"},
                "kvConnector": {"type": "mooncake"},
                **GPU,
            },
            [("http", 30000)],
        ),
    ],
)
def test_service_is_headless_over_the_engine_ports(
    fields: dict[str, Any], ports: list[tuple[str, int]]
) -> None:
    spec = pool_spec(**fields)
    service = build_service("p1", "ns", spec, OWNER)
    validate(service)
    assert service["spec"]["clusterIP"] == "None"
    # Only ready pods resolve: a loading engine gets no traffic through the name.
    assert service["spec"]["publishNotReadyAddresses"] is False
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == ports
    # Each Service port targets the container port of the same name.
    container = build_deployment("p1", "ns", spec, "img", OWNER, FEATURES)["spec"]["template"][
        "spec"
    ]["containers"][0]
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["targetPort"]: p["port"] for p in service["spec"]["ports"]} == container_ports


def test_service_selects_the_deployment_pods() -> None:
    spec = pool_spec()
    service = build_service("p1", "ns", spec, OWNER)
    labels = build_deployment("p1", "ns", spec, "img", OWNER, FEATURES)["spec"]["template"][
        "metadata"
    ]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["metadata"]["ownerReferences"] == [OWNER]
    assert service["metadata"]["name"] == "p1"


def test_dns_name_is_fully_qualified() -> None:
    # Fully qualified: no search-path lookups before the answer.
    assert service_dns_name("p1", "prod") == "p1.prod.svc.cluster.local"
    assert service_dns_name("p1", "prod", "corp.internal") == "p1.prod.svc.corp.internal"
