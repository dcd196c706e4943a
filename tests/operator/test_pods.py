"""A pool's pods as the operator reads them: addresses, readiness, drain marks, victims."""

from __future__ import annotations

from typing import Any

from triskel.operator.pods import (
    choose_victims,
    drain_patch,
    grpc_address,
    is_draining,
    pods_of_pool,
    serving_endpoints,
    undrain_patch,
)


def pod(
    name: str,
    ip: str | None = "10.0.0.1",
    ready: bool = True,
    draining: bool = False,
    pool: str = "decode",
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"triskel.io/pool": pool}}
    if draining:
        metadata["annotations"] = drain_patch("2026-11-24T00:00:00Z")["metadata"]["annotations"]
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-24T00:00:00Z"
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    ports = [{"name": "grpc", "containerPort": 50051}]
    return {"metadata": metadata, "spec": {"containers": [{"ports": ports}]}, "status": status}


def test_only_the_pools_live_pods_count_sorted_by_name() -> None:
    pods = [pod("b"), pod("a"), pod("x", pool="other"), pod("gone", deleting=True)]
    assert [p["metadata"]["name"] for p in pods_of_pool(pods, "decode")] == ["a", "b"]


def test_routers_get_ready_undrained_pods_with_an_ip() -> None:
    pods = [
        pod("a", ip="10.0.0.1"),
        pod("b", ip="10.0.0.2", draining=True),  # being drained: no new work
        pod("c", ip="10.0.0.3", ready=False),  # not ready yet
        pod("d", ip=None),  # no IP yet
    ]
    assert serving_endpoints(pods) == ["10.0.0.1:50051"]
    assert grpc_address(pods[3]) is None


def test_vllm_pods_are_reached_on_their_http_api_port() -> None:
    # vLLM containers name their OpenAI-compatible port "http" and have no gRPC port.
    vllm = pod("v", ip="10.0.0.9")
    vllm["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8000}]
    assert serving_endpoints([vllm]) == ["10.0.0.9:8000"]
    assert grpc_address(vllm) is None


def test_undraining_clears_the_mark_even_where_a_null_is_stored() -> None:
    marked = pod("a", draining=True)
    assert is_draining(marked)
    # A real API server deletes null annotations; an emulator may keep them as null.
    marked["metadata"]["annotations"].update(undrain_patch()["metadata"]["annotations"])
    assert not is_draining(marked)


def test_victims_are_draining_pods_first_then_the_least_busy() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d", draining=True)]
    work = {"a": 5, "b": 0, "c": 2, "d": 9}
    # d is already draining (finish that first), then b (idle), then c (2 in flight).
    assert [p["metadata"]["name"] for p in choose_victims(pods, 3, work)] == ["d", "b", "c"]
    assert choose_victims(pods, 0, work) == []
