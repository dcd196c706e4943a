"""The mock worker's container, down to a real `triskel worker` started with its args."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from triskel.cli.supervisor import READY_PREFIX
from triskel.common.api import WorkerPoolSpec
from triskel.operator.builders.deployment import build_deployment
from triskel.operator.builders.engines.mock import (
    FRAME_PORT,
    GRPC_PORT,
    HTTP_PORT,
    mock_pod,
    pool_json,
)
from triskel.operator.builders.kv_key import (
    KV_KEY_FILE,
    KV_KEY_VOLUME,
    build_kv_key_secret,
    new_kv_key,
)
from triskel.v1 import worker_pb2, worker_pb2_grpc

from support.pool_objects import FEATURES, OWNER, expand, pool_spec
from support.processes import read_until, start_triskel

IMAGE = "registry.example/triskel:1.2.3"


def test_pool_json_is_the_spec_without_replicas() -> None:
    spec = pool_spec(
        role="prefill",
        replicas={"min": 2, "max": 9, "desired": 5},
        kvConnector={"type": "mooncake", "params": {"protocol": "tcp"}},
    )
    text = pool_json(spec)
    assert "replicas" not in json.loads(text)
    # Everything else survives the trip: the worker builds the same engine.
    parsed = WorkerPoolSpec.model_validate_json(text)
    assert parsed == spec.model_copy(update={"replicas": parsed.replicas})


def test_args_give_the_pod_its_identity() -> None:
    args = list(mock_pod(pool_spec(), IMAGE).args)
    # Kubernetes substitutes $(POD_NAME) and $(POD_IP) from the downward API env.
    assert args[args.index("--worker-id") + 1] == "$(POD_NAME)"
    assert args[args.index("--kv-host") + 1] == "$(POD_IP)"
    assert args[args.index("--grpc-address") + 1] == f"0.0.0.0:{GRPC_PORT}"
    # The frame port is declared: a pool's NetworkPolicy admits routers to declared ports.
    assert args[args.index("--frame-port") + 1] == str(FRAME_PORT)


def test_an_ep_group_also_serves_http_for_its_elastic_ep_endpoint() -> None:
    dense = mock_pod(pool_spec(), IMAGE)
    assert "--http-address" not in dense.args
    assert [p.name for p in dense.ports] == ["grpc", "frames"]
    group = mock_pod(
        pool_spec(parallelism={"ep": 4}, profile={"name": "deepseek-v2-lite-ep-h100"}), IMAGE
    )
    args = list(group.args)
    assert args[args.index("--http-address") + 1] == f"0.0.0.0:{HTTP_PORT}"
    assert [(p.name, p.port) for p in group.ports] == [
        ("grpc", GRPC_PORT),
        ("frames", FRAME_PORT),
        ("http", HTTP_PORT),
    ]


@pytest.mark.parametrize(
    ("engine", "expected"),
    [({}, IMAGE), ({"image": "mine/triskel:dev"}, "mine/triskel:dev")],
)
def test_image_is_the_triskel_image_unless_the_pool_names_one(
    engine: dict[str, Any], expected: str
) -> None:
    assert mock_pod(pool_spec(engine=engine), IMAGE).image == expected


def test_dollar_signs_reach_the_worker_unexpanded() -> None:
    # A `$(X)` a user wrote must not be replaced by Kubernetes: it is escaped as `$$(X)`.
    spec = pool_spec(
        engine={"args": ["--log-level", "$(LEVEL)"]},
        kvConnector={"type": "mooncake", "params": {"device": "$(NIC)"}},
    )
    args = list(mock_pod(spec, IMAGE).args)
    env = {"LEVEL": "debug", "NIC": "mlx5_0", "POD_NAME": "w", "POD_IP": "10.0.0.1"}
    expanded = [expand(arg, env) for arg in args]
    assert expanded[-1] == "$(LEVEL)"
    assert json.loads(expanded[1])["kvConnector"]["params"] == {"device": "$(NIC)"}


def test_the_worker_reads_the_models_kv_key_from_the_mounted_secret() -> None:
    pod = mock_pod(pool_spec(), IMAGE)
    args = list(pod.args)
    assert args[args.index("--kv-auth-key-file") + 1] == KV_KEY_FILE
    # The Deployment then mounts the model's key Secret where that file is.
    assert pod.reads_kv_auth_key


@pytest.mark.asyncio
async def test_a_worker_started_with_the_pod_args_serves(tmp_path: Path) -> None:
    spec = pool_spec(role="prefill", profile={"kvCapacityTokens": 4096, "timeScale": 0})
    pod_spec = build_deployment("p1", "ns", spec, IMAGE, OWNER, FEATURES)["spec"]["template"][
        "spec"
    ]
    container = pod_spec["containers"][0]
    # What the kubelet would run in pod p1-5d8f7-x2x9q with IP 127.0.0.2 (a loopback
    # address, yet not the worker's default 127.0.0.1, so --kv-host visibly takes effect).
    env = {"POD_NAME": "p1-5d8f7-x2x9q", "POD_IP": "127.0.0.2"}
    argv = [expand(arg, env) for arg in [*container["command"], *container["args"]]]
    assert argv[:2] == ["triskel", "worker"]
    # The one change: free ports instead of 50051 and 50052, which may be taken on this
    # machine (a CI run met 50052 in use).
    argv[argv.index("--grpc-address") + 1] = "127.0.0.1:0"
    argv[argv.index("--frame-port") + 1] = "0"
    # The key Secret's volume, as a kubelet fills it: each item's key at its path,
    # under the mount's path (here a folder of this test).
    secret = build_kv_key_secret("ns", spec.model, new_kv_key())
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == KV_KEY_VOLUME]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == KV_KEY_VOLUME]
    for item in volume["secret"]["items"]:
        (tmp_path / item["path"]).write_bytes(base64.b64decode(secret["data"][item["key"]]))
    argv = [arg.replace(mount["mountPath"], str(tmp_path)) for arg in argv]
    process = await start_triskel(argv[1:])
    try:
        lines = await read_until(process, READY_PREFIX, timeout_s=60)
        ready = json.loads(lines[-1].split(READY_PREFIX, 1)[1])
        assert ready["worker_id"] == "p1-5d8f7-x2x9q"
        async with grpc.aio.insecure_channel(ready["grpc"]) as channel:
            # What the pod's gRPC probes ask.
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = worker_pb2_grpc.WorkerStub(channel)
            info = await stub.GetInfo(worker_pb2.GetInfoRequest(), timeout=10)
            assert (info.worker_id, info.role) == ("p1-5d8f7-x2x9q", "prefill")
            # A short hold: on SIGTERM the worker drains (waits for it to expire) and exits.
            prefill = await stub.Prefill(
                worker_pb2.PrefillRequest(
                    request_id="r", token_ids=list(range(40)), max_tokens=2, kv_hold_ms=300
                ),
                timeout=10,
            )
        # Decode workers in other pods pull KV from the pod IP the handle advertises.
        assert prefill.kv.address.startswith("127.0.0.2:")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
