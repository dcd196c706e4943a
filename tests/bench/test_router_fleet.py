"""bench/router_fleet.py: the router config each Triskel row gets, and the row's label.

Triskel reaches the same mock workers either over their vLLM HTTP API or over its
own protocol (plain gRPC host:port, calls as frames); the config must say which, and
the report must tell the two rows apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from triskel.router.backends.addresses import WorkerApi, as_endpoint
from triskel.router.process import RouterProcessConfig

from support.bench_scripts import BENCH, load_bench_script
from support.peer_routers import HttpWorker, PeerLayout

fleet = load_bench_script("router_fleet")

POLICY = BENCH / "policies" / "triskel-http.yaml"


def worker(worker_id: str, role: str, port: int, *, frames: bool = True) -> HttpWorker:
    # Ports apart per listener, so a config listing the wrong one shows.
    return HttpWorker(
        worker_id,
        role,
        f"http://127.0.0.1:{port}",
        f"127.0.0.1:{port + 1}",
        frames_address=f"127.0.0.1:{port + 2}" if frames else None,
    )


UNIFIED = PeerLayout(unified=(worker("u0", "unified", 8000), worker("u1", "unified", 8010)))
PD = PeerLayout(prefill=(worker("p0", "prefill", 8100),), decode=(worker("d0", "decode", 8200),))


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (UNIFIED, ["127.0.0.1:8001", "127.0.0.1:8011"]),
        # P/D: both roles listed alike, no role given: each worker reports its own.
        (PD, ["127.0.0.1:8101", "127.0.0.1:8201"]),
    ],
)
def test_over_triskel_s_protocol_the_router_gets_plain_grpc_addresses(
    layout: PeerLayout, expected: list[str]
) -> None:
    config = fleet.triskel_router_config(layout, POLICY, WorkerApi.TRISKEL)
    assert config["workers"] == expected
    assert config["workerFrames"] is True
    # The router reads them as Triskel-protocol workers (no api: vllm, no http://).
    endpoints = map(as_endpoint, RouterProcessConfig.model_validate(config).workers)
    assert [(e.url, e.api) for e in endpoints] == [(a, WorkerApi.TRISKEL) for a in expected]


def test_over_vllm_s_api_the_router_gets_the_http_urls_as_before() -> None:
    config = fleet.triskel_router_config(PD, POLICY)
    assert config["workers"] == [
        {"url": "http://127.0.0.1:8100", "api": "vllm"},
        {"url": "http://127.0.0.1:8200", "api": "vllm"},
    ]
    endpoints = map(as_endpoint, RouterProcessConfig.model_validate(config).workers)
    assert {e.api for e in endpoints} == {WorkerApi.VLLM}


def test_a_worker_serving_no_frames_is_refused_over_triskel_s_protocol() -> None:
    # Called over gRPC instead, it would measure something else than its label says.
    layout = PeerLayout(unified=(worker("u0", "unified", 8000, frames=False),))
    with pytest.raises(ValueError, match="u0 serve no frames"):
        fleet.triskel_workers(layout, WorkerApi.TRISKEL)
    assert fleet.triskel_workers(layout, WorkerApi.VLLM)


def test_a_policy_file_without_routing_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "empty.yaml"
    policy.write_text("plugins: []\n")
    with pytest.raises(ValueError, match="no `routing:` key"):
        fleet.triskel_router_config(UNIFIED, policy, WorkerApi.TRISKEL)


@pytest.mark.parametrize(
    ("contender", "expected"),
    [
        # Today's rows keep their labels: reports before and after compare by name.
        (fleet.Contender(fleet.RouterKind.TRISKEL, str(POLICY)), "triskel-http.yaml"),
        (
            fleet.Contender(fleet.RouterKind.TRISKEL, str(POLICY), WorkerApi.TRISKEL),
            "triskel-http.yaml (workers over frames)",
        ),
        (fleet.Contender(fleet.RouterKind.SMG, "cache_aware"), "cache_aware"),
    ],
)
def test_the_policy_label_says_how_triskel_reaches_the_workers(
    contender: Any, expected: str
) -> None:
    assert contender.policy_label == expected


def test_a_peer_over_triskel_s_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="vLLM's HTTP API only"):
        fleet.Contender(fleet.RouterKind.SMG, "cache_aware", WorkerApi.TRISKEL)


def test_this_triskel_serves_vllm_workers() -> None:
    # The guard compare_routers keeps for the vllm rows finds nothing to refuse here.
    assert fleet.triskel_serves_vllm_workers() is None
